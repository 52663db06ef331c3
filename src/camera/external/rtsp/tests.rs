use std::net::TcpListener;
use std::thread;

use proptest::prelude::*;

use super::*;

fn parse_all(bytes: &[u8]) -> Result<Option<(Response, usize)>, Failure> {
    parse_response(bytes)
}

#[test]
fn replies_parse() {
    let raw = b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\nNEXT";
    let (r, used) = parse_all(raw).unwrap().unwrap();
    assert_eq!((r.status, r.reason.as_str(), r.body.as_slice(), used), (200, "OK", &b"v=0\r\n"[..], raw.len() - 4));
    assert_eq!(r.header("cseq"), Some("2"));
    // Incomplete head or body: wait for more.
    assert_eq!(parse_all(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n"), Ok(None));
    assert_eq!(parse_all(b"RTSP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nv=0"), Ok(None));
    // Bare LF, folded header, interleaved data first.
    let (r, _) =
        parse_all(b"$\x00\x00\x02abRTSP/1.0 401 Unauthorized\nWWW-Authenticate: Basic\n realm=x\n\n").unwrap().unwrap();
    assert_eq!((r.status, r.header("www-authenticate")), (401, Some("Basic realm=x")));
}

#[test]
fn hostile_replies_are_errors() {
    for bad in [
        &b"HTTP/1.1 200 OK\r\n\r\n"[..],
        b"RTSP/1.0 2000 OK\r\n\r\n",
        b"RTSP/1.0 abc OK\r\n\r\n",
        b"RTSP/1.0 099 Low\r\n\r\n",
        b"RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"RTSP/1.0 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"RTSP/1.0 200 OK\r\nContent-Length: 65537\r\n\r\n",
    ] {
        assert!(matches!(parse_all(bad), Err(Failure::Protocol(_))), "{}", String::from_utf8_lossy(bad));
    }
    let many = format!("RTSP/1.0 200 OK\r\n{}\r\n", "X: y\r\n".repeat(MAX_HEADERS + 1));
    assert!(matches!(parse_all(many.as_bytes()), Err(Failure::Protocol(_))));
    let huge = format!("RTSP/1.0 200 OK\r\nX: {}", "y".repeat(MAX_HEAD + 1));
    assert!(matches!(parse_all(huge.as_bytes()), Err(Failure::Protocol(_))));
}

fn reply_strategy() -> impl Strategy<Value = (u16, String, Vec<(String, String)>, Vec<u8>)> {
    (
        100u16..1000,
        "[A-Za-z ]{0,20}",
        prop::collection::vec(("[A-Za-z][A-Za-z-]{0,15}", "[ -~]{0,40}"), 0..10),
        prop::collection::vec(any::<u8>(), 0..300),
    )
}

fn render(status: u16, reason: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut s = format!("RTSP/1.0 {status} {reason}\r\n");
    for (n, v) in headers.iter().filter(|(n, _)| !n.eq_ignore_ascii_case("content-length")) {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = s.into_bytes();
    out.extend_from_slice(body);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = parse_all(&bytes);
        let mut prefixed = b"RTSP/1.0 200 OK\r\n".to_vec();
        prefixed.extend_from_slice(&bytes);
        let _ = parse_all(&prefixed);
        let _ = crate::camera::external::sdp::parse(&String::from_utf8_lossy(&bytes));
        let _ = crate::camera::external::h264::parse_sps(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = crate::camera::external::auth::challenges([text.as_ref()].into_iter());
    }

    #[test]
    fn generated_replies_round_trip_in_any_split((status, reason, headers, body) in reply_strategy(), cut in 0usize..2000) {
        let raw = render(status, &reason, &headers, &body);
        let (r, used) = parse_all(&raw).unwrap().unwrap();
        prop_assert_eq!(used, raw.len());
        prop_assert_eq!(r.status, status);
        prop_assert_eq!(&r.body, &body);
        prop_assert_eq!(r.reason.as_str(), reason.trim_end());
        // Any prefix is either incomplete or (when the cut lands after the body) the same reply.
        let cut = cut.min(raw.len());
        match parse_all(&raw[..cut]).unwrap() {
            None => prop_assert!(cut < raw.len()),
            Some((again, n)) => prop_assert_eq!((again, n), (r, used)),
        }
    }

    #[test]
    fn generated_sdp_never_panics(lines in prop::collection::vec(
        prop_oneof![
            Just("m=video 0 RTP/AVP 96".to_string()),
            Just("a=rtpmap:96 H264/90000".to_string()),
            "a=fmtp:96 sprop-parameter-sets=[A-Za-z0-9+/=,]{0,80}",
            "a=(framerate|x-framerate|framesize|x-dimensions|cliprect):[ -~]{0,30}",
            "[ -~]{0,60}",
        ], 0..20)) {
        let _ = crate::camera::external::sdp::parse(&lines.join("\r\n"));
    }
}

/// A one-connection server answering each request with the next canned reply (`{cseq}` is filled in).
fn serve(replies: Vec<&'static str>) -> (u16, thread::JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut seen = Vec::new();
        for reply in replies {
            let mut req = Vec::new();
            let mut b = [0u8; 1];
            while !req.ends_with(b"\r\n\r\n") {
                if s.read(&mut b).unwrap_or(0) == 0 {
                    return seen;
                }
                req.push(b[0]);
            }
            let text = String::from_utf8(req).unwrap();
            let cseq = text.lines().find_map(|l| l.strip_prefix("CSeq: ")).unwrap_or("0").to_string();
            seen.push(text);
            let _ = s.write_all(reply.replace("{cseq}", &cseq).as_bytes());
        }
        seen
    });
    (port, h)
}

#[test]
fn digest_challenge_is_answered_once_with_the_credentials() {
    let (port, h) = serve(vec![
        "RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\nWWW-Authenticate: Basic realm=\"m\"\r\n\
         WWW-Authenticate: Digest realm=\"m\", nonce=\"abc\"\r\n\r\n",
        "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Length: 3\r\n\r\nv=0",
        "RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\n\r\n",
    ]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut s = Session::connect("127.0.0.1", port, deadline).unwrap().with_credentials(Some(("u", "pw")));
    let uri = format!("rtsp://127.0.0.1:{port}/x");
    let r = s.request("DESCRIBE", &uri).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"v=0"[..]));
    // Already authorized: a second 401 is the answer, not another round.
    assert_eq!(s.request("OPTIONS", &uri).unwrap().status, 401);
    drop(s);
    let seen = h.join().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(!seen[0].contains("Authorization"), "no credentials before a challenge");
    assert!(seen[1].contains("Authorization: Digest username=\"u\", realm=\"m\", nonce=\"abc\""), "{}", seen[1]);
    assert!(!seen.iter().any(|r| r.contains("pw")), "the password itself is never sent");
}

#[test]
fn silence_and_floods_are_bounded() {
    // A server that accepts and never answers: Timeout at the deadline.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = Instant::now();
    let mut s = Session::connect("127.0.0.1", port, t + Duration::from_millis(300)).unwrap();
    assert_eq!(s.request("OPTIONS", "rtsp://127.0.0.1/"), Err(Failure::Timeout));
    assert!(t.elapsed() < Duration::from_secs(2));
    drop(l);
    // A server that floods interleaved data: stopped at the buffer bound, well before the deadline.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let flood = thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let frame: Vec<u8> = [b'$', 0, 0xff, 0xff].into_iter().chain(std::iter::repeat_n(0u8, 65535)).collect();
        for _ in 0..64 {
            if c.write_all(&frame).is_err() {
                break;
            }
        }
    });
    let mut s = Session::connect("127.0.0.1", port, Instant::now() + Duration::from_secs(10)).unwrap();
    assert!(matches!(s.request("OPTIONS", "rtsp://127.0.0.1/"), Err(Failure::Protocol(_))));
    drop(s);
    flood.join().unwrap();
    // Nobody listening: a connect failure, not a hang.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    assert!(matches!(
        Session::connect("127.0.0.1", closed, Instant::now() + Duration::from_secs(2)),
        Err(Failure::Connect(_))
    ));
}

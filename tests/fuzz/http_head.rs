//! HTTP request heads (`httparse` under `http::parse_head`), as both ports read them: any bytes, fed whole or in
//! pieces, give a request, "incomplete" or a 400 reason, never a panic; a complete head parses the same however it
//! was split; a decoded path never holds a NUL; nothing beyond the head limit is ever accepted.

use camera_service::http::{parse_head, ParseError, MAX_HEAD_BYTES};
use proptest::prelude::*;

use super::{cases, runner};

fn head() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        Just("GET".to_string()),
        Just("HEAD".to_string()),
        Just("POST".to_string()),
        Just(String::new()),
        "[A-Z]{1,8}",
        Just("G\0T".to_string()),
    ];
    let target = prop_oneof![
        Just("/health/live".to_string()),
        Just("/files/recordings/a%20b.mp4?token=x&expires=1".to_string()),
        Just("/files/snapshots/%2e%2e%2fetc%2fpasswd".to_string()),
        Just("/%00".to_string()),
        Just("/%ff%fe".to_string()),
        Just("/%zz%".to_string()),
        Just("http://example/".to_string()),
        Just("*".to_string()),
        "/[ -~]{0,40}",
        any::<String>(),
    ];
    let version = prop_oneof![Just("HTTP/1.1"), Just("HTTP/1.0"), Just("HTTP/2"), Just(""), Just("http/1.1")];
    let header = prop_oneof![
        Just("Host: x".to_string()),
        Just("Range: bytes=0-9".to_string()),
        Just("Upgrade: websocket".to_string()),
        Just("X: \u{e9}".to_string()),
        Just("Bad Header: y".to_string()),
        Just(": no name".to_string()),
        "[!-~]{1,10}: [ -~]{0,30}",
    ];
    let eol = prop_oneof![Just("\r\n"), Just("\n")];
    let headers = prop::collection::vec(header, 0..80);
    let tidy = (method, target, version, headers, eol).prop_map(|(m, t, v, hs, eol)| {
        let mut s = format!("{m} {t} {v}{eol}");
        for h in hs {
            s.push_str(&h);
            s.push_str(eol);
        }
        s.push_str(eol);
        s.into_bytes()
    });
    let huge = (1usize..4)
        .prop_map(|k| format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(k * MAX_HEAD_BYTES / 2)).into_bytes());
    prop_oneof![4 => tidy, 1 => huge, 2 => prop::collection::vec(any::<u8>(), 0..2048)]
}

#[test]
fn request_heads_parse_or_fail_cleanly() {
    runner(cases())
        .run(&(head(), any::<prop::sample::Index>()), |(bytes, cut)| {
            let whole = parse_head(&bytes);
            if let Ok((req, used)) = &whole {
                prop_assert!(*used <= bytes.len() && *used <= MAX_HEAD_BYTES);
                prop_assert!(req.path.starts_with('/') && !req.path.contains('\0'), "{:?}", req.path);
                prop_assert!(req.headers.iter().all(|(n, _)| *n == n.to_ascii_lowercase()));
                // Fed in two pieces (as reads deliver it), the first piece is incomplete or the same request.
                let at = cut.index(bytes.len() + 1);
                match parse_head(&bytes[..at]) {
                    Err(ParseError::Incomplete) => prop_assert!(at < *used),
                    Ok((first, n)) => prop_assert!(n == *used && first.path == req.path && first.query == req.query),
                    Err(ParseError::Bad(why)) => prop_assert!(false, "prefix of a good head refused: {why}"),
                }
            }
            if bytes.len() >= MAX_HEAD_BYTES {
                prop_assert!(!matches!(whole, Err(ParseError::Incomplete)), "no end in sight, yet incomplete");
            }
            Ok(())
        })
        .unwrap();
}

//! A loopback RTSP server for unit tests: OPTIONS answers 200, DESCRIBE of a served path answers its SDP, any
//! other path 404; optionally every request needs Basic credentials. Stops (and closes its port) on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use base64::Engine;

/// The SDP MediaMTX gives for ffmpeg's libx264 at 320x240, 10 fps.
pub const SDP_320X240_10: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=Stream\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
    m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
    a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z0LAC9kBQfsBEAAAAwAQAAADAUDxQqSA,aMuDyyA=\r\n";

pub struct FakeRtsp {
    pub port: u16,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl FakeRtsp {
    /// Serve `paths` (without leading `/`) with `sdp`; `basic` = required `user:password`.
    pub fn start(paths: &[&str], sdp: &'static str, basic: Option<&str>) -> FakeRtsp {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let paths: Vec<String> = paths.iter().map(|p| format!("rtsp://127.0.0.1:{port}/{p}")).collect();
        let auth = basic.map(|b| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(b)));
        let s = stop.clone();
        let accept = thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((c, _)) => {
                        let (paths, auth, s) = (paths.clone(), auth.clone(), s.clone());
                        thread::spawn(move || serve(c, &paths, sdp, auth.as_deref(), &s));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeRtsp { port, stop, accept: Some(accept) }
    }
}

impl Drop for FakeRtsp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve(mut c: TcpStream, paths: &[String], sdp: &str, auth: Option<&str>, stop: &AtomicBool) {
    let _ = c.set_nonblocking(false);
    let _ = c.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !stop.load(Ordering::SeqCst) {
        match c.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(_) => return,
        }
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let req = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            if c.write_all(answer(&req, paths, sdp, auth).as_bytes()).is_err() {
                return;
            }
        }
    }
}

fn answer(req: &str, paths: &[String], sdp: &str, auth: Option<&str>) -> String {
    let mut first = req.lines().next().unwrap_or("").split(' ');
    let (method, uri) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let cseq = req.lines().find_map(|l| l.strip_prefix("CSeq: ")).unwrap_or("0");
    let given = req.lines().find_map(|l| l.strip_prefix("Authorization: "));
    if auth.is_some() && given != auth {
        return format!("RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\nWWW-Authenticate: Basic realm=\"fake\"\r\n\r\n");
    }
    match method {
        "OPTIONS" => format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n"),
        "DESCRIBE" if paths.iter().any(|p| p == uri) => format!(
            "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
        _ => format!("RTSP/1.0 404 Not Found\r\nCSeq: {cseq}\r\n\r\n"),
    }
}

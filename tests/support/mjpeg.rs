//! A minimal MJPEG (`multipart/x-mixed-replace`) client for the live view: opens the stream, then yields one JPEG
//! per call, as an `<img>` tag or VLC would read it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub struct MjpegStream {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Response status and headers (names lower-cased).
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl MjpegStream {
    /// `GET path` on 127.0.0.1:`port` with extra `headers`; reads the response head.
    pub fn open(port: u16, path: &str, headers: &[(&str, &str)]) -> MjpegStream {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(super::get_head(port, path, headers).as_bytes()).unwrap();
        let mut s = MjpegStream { stream, buf: Vec::new(), status: 0, headers: Vec::new() };
        let head = s.read_head().expect("response head");
        let mut lines = head.split("\r\n");
        s.status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        s.headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        s
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Bytes up to the next blank line (consumed), or None at EOF.
    fn read_head(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                self.buf.drain(..end + 4);
                return Some(head);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next JPEG of the stream, or None when the stream ended (or nothing came within the read timeout).
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        let head = self.read_head()?;
        let head = head.trim_start_matches("\r\n");
        assert!(head.starts_with("--frame\r\n"), "part starts with the boundary: {head:?}");
        assert!(head.to_ascii_lowercase().contains("content-type: image/jpeg"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
            .and_then(|v| v.parse().ok())
            .expect("part has a Content-Length");
        while self.buf.len() < len + 2 {
            if !self.fill() {
                return None;
            }
        }
        let jpeg: Vec<u8> = self.buf.drain(..len).collect();
        assert_eq!(self.buf.drain(..2).collect::<Vec<u8>>(), b"\r\n");
        Some(jpeg)
    }

    /// Frames per second over `d` (after the first frame arrived), and the frames seen.
    pub fn measure(&mut self, d: Duration) -> (f64, usize) {
        self.next_frame().expect("a first frame");
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < d {
            self.next_frame().expect("frames keep coming");
            n += 1;
        }
        (n as f64 / start.elapsed().as_secs_f64(), n)
    }
}

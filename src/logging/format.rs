//! Line formats: the Python `logging.format` tokens for text lines, and the JSON line schema (docs/operations.md,
//! logging).

use std::fmt::Write as _;
use std::time::SystemTime;

use log::Level;

/// Everything a line may show, captured on the logging thread (thread name and correlation id are thread-local).
pub struct Fields<'a> {
    pub time: SystemTime,
    pub level: Level,
    pub target: &'a str,
    pub module: Option<&'a str>,
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub thread: &'a str,
    pub correlation: Option<&'a str>,
    pub message: &'a str,
}

/// Python level names (`log` has no CRITICAL; TRACE reads as DEBUG).
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARNING",
        Level::Info => "INFO",
        Level::Debug | Level::Trace => "DEBUG",
    }
}

fn level_no(level: Level) -> u32 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug | Level::Trace => 10,
    }
}

/// The component name shown as `logger`: our module path without the crate prefix (`camera::discovery`), `main`
/// for the crate root, or an explicit `target:` as given.
pub fn logger_name(target: &str) -> &str {
    match target {
        "camera_service" => "main",
        t => t.strip_prefix("camera_service::").unwrap_or(t),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    AscTime,
    Name,
    LevelName,
    LevelNo,
    Message,
    Correlation,
    ThreadName,
    Module,
    LineNo,
    FileName,
    PathName,
    Process,
}

impl Token {
    fn parse(name: &str) -> Option<Token> {
        Some(match name {
            "asctime" => Token::AscTime,
            "name" => Token::Name,
            "levelname" => Token::LevelName,
            "levelno" => Token::LevelNo,
            "message" => Token::Message,
            "correlation_id" => Token::Correlation,
            "threadName" => Token::ThreadName,
            "module" => Token::Module,
            "lineno" => Token::LineNo,
            "filename" => Token::FileName,
            "pathname" => Token::PathName,
            "process" => Token::Process,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Tok { token: Token, left: bool, width: usize },
}

/// A parsed `logging.format` such as `%(asctime)s - %(name)s - %(levelname)s - %(message)s`.
#[derive(Debug, Clone)]
pub struct Pattern {
    pieces: Vec<Piece>,
    has_correlation: bool,
}

impl Pattern {
    /// Unknown tokens and malformed `%` sequences are kept literally; `%%` is a percent sign.
    pub fn parse(fmt: &str) -> Pattern {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = fmt;
        while let Some(pos) = rest.find('%') {
            lit.push_str(&rest[..pos]);
            rest = &rest[pos..];
            if let Some(after) = rest.strip_prefix("%%") {
                lit.push('%');
                rest = after;
                continue;
            }
            match parse_token(rest) {
                Some((piece, used)) => {
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(piece);
                    rest = &rest[used..];
                }
                None => {
                    lit.push('%');
                    rest = &rest[1..];
                }
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        let has_correlation = pieces.iter().any(|p| matches!(p, Piece::Tok { token: Token::Correlation, .. }));
        Pattern { pieces, has_correlation }
    }

    /// Append one line (without the newline).
    pub fn render(&self, f: &Fields, out: &mut String) {
        for piece in &self.pieces {
            match piece {
                Piece::Lit(s) => out.push_str(s),
                Piece::Tok { token, left, width } => {
                    let value = self.value(*token, f);
                    let _ = if *left {
                        write!(out, "{value:<width$}", width = *width)
                    } else {
                        write!(out, "{value:>width$}", width = *width)
                    };
                }
            }
        }
    }

    fn value(&self, token: Token, f: &Fields) -> String {
        match token {
            Token::AscTime => crate::util::timefmt::rfc3339_millis(f.time),
            Token::Name => logger_name(f.target).to_string(),
            Token::LevelName => level_name(f.level).to_string(),
            Token::LevelNo => level_no(f.level).to_string(),
            // Python prefixes the message with the correlation id when the format does not show it.
            Token::Message => match f.correlation {
                Some(id) if !self.has_correlation => format!("[{id}] {}", f.message),
                _ => f.message.to_string(),
            },
            Token::Correlation => f.correlation.unwrap_or("-").to_string(),
            Token::ThreadName => f.thread.to_string(),
            Token::Module => f.module.and_then(|m| m.rsplit("::").next()).unwrap_or("-").to_string(),
            Token::LineNo => f.line.map_or_else(|| "0".into(), |l| l.to_string()),
            Token::FileName => f.file.and_then(|p| p.rsplit('/').next()).unwrap_or("-").to_string(),
            Token::PathName => f.file.unwrap_or("-").to_string(),
            Token::Process => std::process::id().to_string(),
        }
    }
}

/// `%(name)-8s` at the start of `s` → the piece and the bytes it used.
fn parse_token(s: &str) -> Option<(Piece, usize)> {
    let inner = s.strip_prefix("%(")?;
    let close = inner.find(')')?;
    let token = Token::parse(&inner[..close])?;
    let mut i = 2 + close + 1;
    let bytes = s.as_bytes();
    let left = bytes.get(i) == Some(&b'-');
    if left {
        i += 1;
    }
    let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    let width = if digits > 0 { s[i..i + digits].parse().ok()? } else { 0 };
    i += digits;
    match bytes.get(i) {
        Some(b's' | b'd' | b'r') => Some((Piece::Tok { token, left, width }, i + 1)),
        _ => None,
    }
}

/// Append one JSON line (without the newline): the Python production schema with a UTC millisecond timestamp.
pub fn json(f: &Fields, out: &mut String) {
    let s = |v: &str| serde_json::to_string(v).unwrap_or_else(|_| "\"\"".into());
    let _ = write!(
        out,
        "{{\"timestamp\":\"{}\",\"level\":\"{}\",\"logger\":{},\"message\":{},\"thread\":{}",
        crate::util::timefmt::rfc3339_millis(f.time),
        level_name(f.level),
        s(logger_name(f.target)),
        s(f.message),
        s(f.thread),
    );
    if let Some(m) = f.module {
        let _ = write!(out, ",\"module\":{}", s(m));
    }
    if let Some(l) = f.line {
        let _ = write!(out, ",\"line\":{l}");
    }
    if let Some(id) = f.correlation {
        let _ = write!(out, ",\"correlation_id\":{}", s(id));
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn fields<'a>(msg: &'a str, correlation: Option<&'a str>) -> Fields<'a> {
        Fields {
            time: UNIX_EPOCH + Duration::from_millis(1_736_951_400_123),
            level: Level::Warn,
            target: "camera_service::camera::discovery",
            module: Some("camera_service::camera::discovery"),
            file: Some("src/camera/discovery.rs"),
            line: Some(42),
            thread: "discovery",
            correlation,
            message: msg,
        }
    }

    fn render(fmt: &str, f: &Fields) -> String {
        let mut s = String::new();
        Pattern::parse(fmt).render(f, &mut s);
        s
    }

    #[test]
    fn python_default_format() {
        let f = fields("camera connected", None);
        assert_eq!(
            render("%(asctime)s - %(name)s - %(levelname)s - %(message)s", &f),
            "2025-01-15T14:30:00.123Z - camera::discovery - WARNING - camera connected"
        );
    }

    #[test]
    fn correlation_prefix_only_without_token() {
        let f = fields("hello", Some("req-7"));
        assert_eq!(render("%(levelname)s %(message)s", &f), "WARNING [req-7] hello");
        assert_eq!(render("%(correlation_id)s|%(message)s", &f), "req-7|hello");
        assert_eq!(render("%(correlation_id)s|%(message)s", &fields("x", None)), "-|x");
    }

    #[test]
    fn other_tokens_widths_and_literals() {
        let f = fields("m", None);
        assert_eq!(render("[%(levelname)-8s]", &f), "[WARNING ]");
        assert_eq!(render("[%(levelno)4d]", &f), "[  30]");
        assert_eq!(
            render("%(threadName)s %(module)s:%(lineno)d %(filename)s", &f),
            "discovery discovery:42 discovery.rs"
        );
        assert_eq!(render("100%% %(bogus)s %(name %(message)s %", &f), "100% %(bogus)s %(name m %");
        assert_eq!(logger_name("camera_service"), "main");
        assert_eq!(logger_name("ureq::unversioned"), "ureq::unversioned");
    }

    #[test]
    fn json_schema() {
        let mut s = String::new();
        json(&fields("quote \" and\nnewline", Some("hc-1a2b3c4d")), &mut s);
        assert!(!s.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["timestamp"], "2025-01-15T14:30:00.123Z");
        assert_eq!(v["level"], "WARNING");
        assert_eq!(v["logger"], "camera::discovery");
        assert_eq!(v["message"], "quote \" and\nnewline");
        assert_eq!(v["thread"], "discovery");
        assert_eq!(v["module"], "camera_service::camera::discovery");
        assert_eq!(v["line"], 42);
        assert_eq!(v["correlation_id"], "hc-1a2b3c4d");
        let mut s = String::new();
        json(&fields("x", None), &mut s);
        assert!(!s.contains("correlation_id"));
    }
}

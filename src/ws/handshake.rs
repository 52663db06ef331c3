//! The HTTP side of the WebSocket port: parse the request head ourselves so one listener can route the upgrade on
//! `server.websocket_path`, downloads under `/files/`, live views under `/live/`, the web console (`/`,
//! `/console/...`), and 404 for anything else (the Python service accepted any path).

use crate::http::{self, Request, Response};

/// What to do with a connection whose request head has been read.
pub enum Route {
    /// Upgrade to WebSocket: the 101 response to write.
    Upgrade(String),
    /// A plain HTTP request for the HTTP server (downloads, live views, the web console).
    Http(Request),
    /// Answer and close.
    Reject(Response),
}

pub fn route(req: Request, ws_path: &str) -> Route {
    if req.path == ws_path {
        if !req.is_websocket_upgrade() {
            return Route::Reject(
                Response::text(426, "WebSocket upgrade required\n").with_header("Upgrade", "websocket"),
            );
        }
        return match accept_key(&req) {
            Ok(key) => Route::Upgrade(format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {key}\r\n\r\n"
            )),
            Err(why) => Route::Reject(Response::text(400, why)),
        };
    }
    let http_path =
        req.path.starts_with("/files/") || req.path.starts_with("/live/") || crate::web::is_web_path(&req.path);
    if http_path && (req.method == "GET" || req.method == "HEAD") {
        return Route::Http(req);
    }
    Route::Reject(Response::text(404, "Not Found\n"))
}

fn accept_key(req: &Request) -> Result<String, &'static str> {
    if req.method != "GET" {
        return Err("WebSocket handshake must use GET\n");
    }
    let connection_upgrade =
        req.header("connection").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    if !connection_upgrade {
        return Err("missing Connection: Upgrade\n");
    }
    if req.header("sec-websocket-version") != Some("13") {
        return Err("unsupported Sec-WebSocket-Version (13 required)\n");
    }
    let key = req.header("sec-websocket-key").ok_or("missing Sec-WebSocket-Key\n")?;
    Ok(tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// Parse what has arrived so far.
pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, Response> {
    match http::parse_head(buf) {
        Ok(r) => Ok(Some(r)),
        Err(http::ParseError::Incomplete) => Ok(None),
        Err(http::ParseError::Bad(why)) => Err(Response::text(400, why)),
    }
}

//! The built-in web console: a small set of static files (plain HTML, CSS and JavaScript modules, embedded in the
//! binary, no build step) served on the WebSocket port, so the page, `/ws` and `/files/` share one origin.
//!
//! Routes: `/` (and `/index.html`) answer the page itself with `Cache-Control: no-cache` and an `ETag`; every other
//! file lives under `/console/<version>/`, where `<version>` is a hash of all embedded files, so those responses can
//! be cached for a year (`immutable`): a new build changes the version and the page points at the new names.
//! Every response carries a strict Content-Security-Policy: no inline script or style, scripts and styles only from
//! this origin, and network access only to this origin (WebSocket included) and MediaMTX's WebRTC (WHEP) port.
//!
//! [`Site::serve`] takes a parsed request and returns a response; it knows nothing about the HTTP engine that calls
//! it. `server.web_ui: false` turns the console off (its paths then answer 404 like any unknown path).

mod assets;

use crate::config::Config;
use crate::http::{Request, Response};

/// Prefix of the versioned asset paths.
const ASSET_PREFIX: &str = "/console/";

/// Bytes of the page and all its files, uncompressed (the console's weight).
pub fn page_weight() -> usize {
    assets::total_size()
}

/// True for the paths the console answers (the WebSocket listener hands these to the HTTP side).
pub fn is_web_path(path: &str) -> bool {
    path == "/" || path == "/index.html" || path.starts_with(ASSET_PREFIX)
}

/// The console, ready to serve: the rendered page and what the security policy needs from the configuration.
pub struct Site {
    enabled: bool,
    index: Vec<u8>,
    index_etag: String,
    /// MediaMTX's WebRTC port when MediaMTX is enabled (the page plays live views from it).
    webrtc_port: Option<u16>,
    mediamtx: crate::config::MediaMtxConfig,
}

impl Site {
    pub fn new(config: &Config) -> Site {
        let version = assets::version();
        let index = assets::render_index(version, &config.server.websocket_path);
        let index_etag = format!("\"{}\"", &crate::util::ids::hex(&sha256(&index))[..16]);
        Site {
            enabled: config.server.web_ui,
            index,
            index_etag,
            webrtc_port: config.mediamtx.enabled.then_some(config.mediamtx.webrtc_port),
            mediamtx: config.mediamtx.clone(),
        }
    }

    /// Answer a `GET`/`HEAD` for a console path.
    pub fn serve(&self, req: &Request) -> Response {
        if !self.enabled || !is_web_path(&req.path) {
            return Response::text(404, "Not Found\n");
        }
        if req.method != "GET" && req.method != "HEAD" {
            return Response::text(405, "Method Not Allowed\n").with_header("Allow", "GET, HEAD");
        }
        let host = req.header("host").filter(|h| is_plain_host(h));
        let resp = match req.path.strip_prefix(ASSET_PREFIX) {
            None => self.page(req),
            Some(rest) => asset(req, rest),
        };
        resp.with_header("Content-Security-Policy", self.policy(host))
            .with_header("X-Content-Type-Options", "nosniff")
            .with_header("Referrer-Policy", "no-referrer")
    }

    fn page(&self, req: &Request) -> Response {
        let resp = if if_none_match(req, &self.index_etag) {
            Response::new(304, "text/html; charset=utf-8", Vec::new())
        } else {
            Response::new(200, "text/html; charset=utf-8", self.index.clone())
        };
        // `no-cache`: always revalidate (cheap, thanks to the ETag), so a new build is picked up at once.
        resp.with_header("Cache-Control", "no-cache").with_header("ETag", self.index_etag.clone())
    }

    /// The Content-Security-Policy: everything from this origin only, plus MediaMTX's WebRTC origin for WHEP.
    fn policy(&self, host: Option<&str>) -> String {
        let mut connect = String::from("'self'");
        if let Some(h) = host {
            // Older browsers do not let 'self' cover ws: URLs; name the WebSocket origin explicitly.
            connect.push_str(&format!(" ws://{h} wss://{h}"));
        }
        if let Some(port) = self.webrtc_port {
            let client_host = host.map(|h| crate::http::host_from_header(h).unwrap_or_default());
            let mtx_host = crate::camera::streams::url_host(&self.mediamtx, client_host.as_deref());
            let mtx_host = if mtx_host.contains(':') { format!("[{mtx_host}]") } else { mtx_host.to_string() };
            if is_plain_host(&mtx_host) {
                connect.push_str(&format!(" http://{mtx_host}:{port} https://{mtx_host}:{port}"));
            }
        }
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
             media-src 'self' blob:; connect-src {connect}; manifest-src 'self'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'"
        )
    }
}

/// A versioned asset: `<version>/<name>`. An old version (a page loaded before an upgrade) gets the current file
/// but is not cached for long, so it cannot pin stale content under the old name.
fn asset(req: &Request, rest: &str) -> Response {
    let Some((version, name)) = rest.split_once('/') else { return Response::text(404, "Not Found\n") };
    let Some(a) = assets::find(name) else { return Response::text(404, "Not Found\n") };
    let current = version == assets::version();
    let etag = format!("\"{}\"", a.etag);
    let resp = if if_none_match(req, &etag) {
        Response::new(304, a.content_type, Vec::new())
    } else {
        Response::new(200, a.content_type, a.body.to_vec())
    };
    let cache = if current { "public, max-age=31536000, immutable" } else { "no-cache" };
    resp.with_header("Cache-Control", cache).with_header("ETag", etag)
}

/// `If-None-Match` lists `etag` (or `*`).
fn if_none_match(req: &Request, etag: &str) -> bool {
    req.header("if-none-match").is_some_and(|v| v.split(',').map(str::trim).any(|t| t == etag || t == "*"))
}

/// A `Host` value safe to copy into a header: a DNS name, an IPv4 address or a bracketed IPv6 address, optionally
/// with a port. Anything else (a client can send any bytes) is left out of the policy.
fn is_plain_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        && h.bytes().filter(|&b| b == b'[').count() <= 1
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            query: String::new(),
            headers: headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect(),
        }
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn body(r: &Response) -> &[u8] {
        match &r.body {
            crate::http::Body::Bytes(b) => b,
            _ => panic!("not an in-memory body"),
        }
    }

    #[test]
    fn page_points_at_versioned_assets_that_exist() {
        let site = Site::new(&Config::default());
        let r = site.serve(&get("/", &[("Host", "box:8002")]));
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(header(&r, "cache-control"), Some("no-cache"));
        let html = String::from_utf8(body(&r).to_vec()).unwrap();
        let prefix = format!("/console/{}/", assets::version());
        assert!(html.contains(&format!("{prefix}app.css")) && html.contains(&format!("{prefix}js/main.js")), "{html}");
        assert!(!html.contains("{{"), "unrendered placeholder");
        for a in assets::all() {
            // Every file is referenced by the page: scripts are preloaded, not discovered import by import.
            assert!(html.contains(&format!("{prefix}{}", a.name)), "{} is not referenced by index.html", a.name);
            let r = site.serve(&get(&format!("{prefix}{}", a.name), &[]));
            assert_eq!(r.status, 200, "{}", a.name);
            assert_eq!(header(&r, "cache-control"), Some("public, max-age=31536000, immutable"));
            assert_eq!(header(&r, "content-type"), Some(a.content_type));
        }
        assert_eq!(site.serve(&get(&format!("{prefix}nope.js"), &[])).status, 404);
        assert_eq!(site.serve(&get("/console/", &[])).status, 404);
    }

    #[test]
    fn etags_revalidate() {
        let site = Site::new(&Config::default());
        let first = site.serve(&get("/", &[]));
        let etag = header(&first, "etag").unwrap().to_string();
        let again = site.serve(&get("/", &[("If-None-Match", &etag)]));
        assert_eq!(again.status, 304);
        assert!(body(&again).is_empty());
        let a = &assets::all()[0];
        let path = format!("/console/{}/{}", assets::version(), a.name);
        let etag = header(&site.serve(&get(&path, &[])), "etag").unwrap().to_string();
        assert_eq!(site.serve(&get(&path, &[("If-None-Match", &format!("\"x\", {etag}"))])).status, 304);
        // An old version still loads, but is not cached as immutable.
        let old = site.serve(&get(&format!("/console/0000/{}", a.name), &[]));
        assert_eq!((old.status, header(&old, "cache-control")), (200, Some("no-cache")));
    }

    #[test]
    fn policy_is_strict_and_names_the_websocket_and_whep_origins() {
        let mut config = Config::default();
        let site = Site::new(&config);
        let r = site.serve(&get("/", &[("Host", "box:8002")]));
        let csp = header(&r, "content-security-policy").unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert!(csp.contains("connect-src 'self' ws://box:8002 wss://box:8002 http://box:8889"), "{csp}");
        config.mediamtx.enabled = false;
        let csp = Site::new(&config).policy(Some("box:8002"));
        assert!(!csp.contains("8889"), "{csp}");
        config.mediamtx.enabled = true;
        config.mediamtx.public_host = Some("cams.example".into());
        assert!(Site::new(&config).policy(Some("box:8002")).contains("http://cams.example:8889"));
        // A hostile Host header never reaches the header value.
        let r = Site::new(&config).serve(&get("/", &[("Host", "x; script-src *")]));
        let csp = header(&r, "content-security-policy").unwrap();
        assert!(!csp.contains("script-src *") && csp.contains("connect-src 'self' http://cams.example:8889"), "{csp}");
    }

    #[test]
    fn disabled_console_and_other_methods() {
        let mut config = Config::default();
        config.server.web_ui = false;
        assert_eq!(Site::new(&config).serve(&get("/", &[])).status, 404);
        let site = Site::new(&Config::default());
        let mut post = get("/", &[]);
        post.method = "POST".into();
        assert_eq!(site.serve(&post).status, 405);
        assert!(is_web_path("/") && is_web_path("/console/x/app.css") && !is_web_path("/files/snapshots/a.jpg"));
    }
}

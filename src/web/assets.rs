//! The console's files, embedded at compile time (no build step, nothing fetched at run time), with content hashes
//! computed once: one per file (its ETag) and one over all of them (the version in the asset paths).

use std::sync::OnceLock;

pub struct Asset {
    /// Path below `/console/<version>/`.
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    pub etag: String,
}

const JS: &str = "text/javascript; charset=utf-8";

/// (name, content type, body). JavaScript modules import each other by relative path, so they keep their names.
const FILES: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("assets/app.css")),
    ("icon.svg", "image/svg+xml", include_bytes!("assets/icon.svg")),
    ("js/main.js", JS, include_bytes!("assets/js/main.js")),
    ("js/rpc.js", JS, include_bytes!("assets/js/rpc.js")),
    ("js/session.js", JS, include_bytes!("assets/js/session.js")),
    ("js/ui.js", JS, include_bytes!("assets/js/ui.js")),
    ("js/urls.js", JS, include_bytes!("assets/js/urls.js")),
    ("js/cameras.js", JS, include_bytes!("assets/js/cameras.js")),
    ("js/live.js", JS, include_bytes!("assets/js/live.js")),
    ("js/files.js", JS, include_bytes!("assets/js/files.js")),
    ("js/system.js", JS, include_bytes!("assets/js/system.js")),
];

const INDEX: &str = include_str!("assets/index.html");

struct Table {
    version: String,
    assets: Vec<Asset>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let mut all = Sha256::new();
        all.update(INDEX.as_bytes());
        let assets = FILES
            .iter()
            .map(|&(name, content_type, body)| {
                all.update(name.as_bytes());
                all.update(body);
                let etag = crate::util::ids::hex(&Sha256::digest(body)[..8]);
                Asset { name, content_type, body, etag }
            })
            .collect();
        Table { version: crate::util::ids::hex(&all.finalize()[..6]), assets }
    })
}

/// Hash of every embedded file: changes whenever any of them changes.
pub fn version() -> &'static str {
    &table().version
}

pub fn all() -> &'static [Asset] {
    &table().assets
}

pub fn find(name: &str) -> Option<&'static Asset> {
    all().iter().find(|a| a.name == name)
}

/// The page with its placeholders filled: `{{ASSETS}}` (the versioned asset directory) and `{{WS_PATH}}`.
pub fn render_index(version: &str, ws_path: &str) -> Vec<u8> {
    let attr: String = ws_path
        .chars()
        .map(|c| match c {
            '"' => "&quot;".to_string(),
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            c => c.to_string(),
        })
        .collect();
    INDEX.replace("{{ASSETS}}", &format!("/console/{version}")).replace("{{WS_PATH}}", &attr).into_bytes()
}

/// Total bytes of the page and its files (reported in docs/performance.md).
pub fn total_size() -> usize {
    INDEX.len() + FILES.iter().map(|(_, _, b)| b.len()).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_stays_small() {
        // The goal is under 150 KB uncompressed for the whole console.
        assert!(total_size() < 150 * 1024, "console weighs {} bytes", total_size());
        assert_eq!(version().len(), 12);
    }

    #[test]
    fn index_escapes_the_websocket_path() {
        let html = String::from_utf8(render_index("v1", "/a\"b<")).unwrap();
        assert!(html.contains("/a&quot;b&lt;") && html.contains("/console/v1/app.css"));
    }
}

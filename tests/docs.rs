//! The documentation matches the code: every registered JSON-RPC method, every documented method of the contract,
//! both notifications and every wire error code have their place in docs/api.md, and links between the docs resolve.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use camera_service::error::{Error, FileKind};

/// The Python service's 21 methods plus the four that its clients call and we add.
pub const DOCUMENTED_METHODS: [&str; 25] = [
    "ping",
    "authenticate",
    "get_camera_list",
    "get_camera_status",
    "get_camera_capabilities",
    "get_streams",
    "take_snapshot",
    "start_recording",
    "stop_recording",
    "get_metrics",
    "get_status",
    "get_server_info",
    "list_recordings",
    "list_snapshots",
    "get_recording_info",
    "get_snapshot_info",
    "delete_recording",
    "delete_snapshot",
    "get_storage_info",
    "set_retention_policy",
    "cleanup_old_files",
    "get_recording_status",
    "get_download_url",
    "get_storage_threshold",
    "set_storage_threshold",
];

/// Docs other branches write; a link to one of them is fine even where the file has not landed yet.
const DOCS_OWNED_ELSEWHERE: [&str; 2] = ["configuration.md", "performance.md"];

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
}

fn read_doc(name: &str) -> String {
    let path = docs_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Names written as a method heading: a line `### \`name\``.
fn method_headings(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|rest| rest.strip_suffix('`'))
        .map(str::to_string)
        .collect()
}

/// Every inline code span's content (fenced code blocks are examples, not mentions).
fn code_spans(text: &str) -> BTreeSet<String> {
    let mut spans = BTreeSet::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(inside), Some(_)) = (parts.next(), parts.next()) {
            spans.insert(inside.to_string());
        }
    }
    spans
}

#[test]
fn heading_and_code_span_parsers_work() {
    let text = "# API\n### `ping`\nText with `get_camera_list` and `a b`.\n```json\n`not_a_span`\n```\n###  `spaced`\n";
    assert_eq!(method_headings(text), BTreeSet::from(["ping".to_string()]));
    let spans = code_spans(text);
    assert!(spans.contains("ping") && spans.contains("get_camera_list") && spans.contains("a b"));
    assert!(!spans.contains("not_a_span"));
}

#[test]
fn every_registered_method_is_documented_in_api_md() {
    let api = read_doc("api.md");
    let headings = method_headings(&api);
    let spans = code_spans(&api);
    let missing: Vec<_> = camera_service::process::daemon::method_names()
        .into_iter()
        .filter(|name| !headings.contains(*name) && !spans.contains(*name))
        .collect();
    assert!(missing.is_empty(), "registered methods missing from docs/api.md: {missing:?}");
}

#[test]
fn every_contract_method_has_its_own_section() {
    let headings = method_headings(&read_doc("api.md"));
    let missing: Vec<_> = DOCUMENTED_METHODS.iter().filter(|m| !headings.contains(**m)).collect();
    assert!(missing.is_empty(), "methods without a `### \\`name\\`` section in docs/api.md: {missing:?}");
    // The sections are methods, notifications, or nothing else we do not know about.
    let known: BTreeSet<&str> =
        DOCUMENTED_METHODS.iter().copied().chain(["camera_status_update", "recording_status_update"]).collect();
    let registered = camera_service::process::daemon::method_names();
    let unknown: Vec<_> =
        headings.iter().filter(|h| !known.contains(h.as_str()) && !registered.contains(&h.as_str())).collect();
    assert!(unknown.is_empty(), "docs/api.md documents methods the service does not know: {unknown:?}");
}

#[test]
fn both_notifications_are_documented_with_their_statuses() {
    let api = read_doc("api.md");
    let headings = method_headings(&api);
    for n in ["camera_status_update", "recording_status_update"] {
        assert!(headings.contains(n), "notification {n} has no section");
    }
    let spans = code_spans(&api);
    for status in ["STARTED", "STOPPED", "FAILED", "CONNECTED", "DISCONNECTED", "ERROR"] {
        assert!(spans.contains(status), "status {status} not documented");
    }
}

#[test]
fn every_wire_error_code_and_message_is_in_the_table() {
    let api = read_doc("api.md");
    let errors = [
        Error::Parse,
        Error::InvalidRequest,
        Error::MissingMethod,
        Error::MethodNotFound,
        Error::invalid_params("x"),
        Error::internal("x"),
        Error::AuthRequired { method: "<method>".into() },
        Error::AuthFailed("<reason>".into()),
        Error::RateLimited,
        Error::PermissionDenied { role: "<role>", method: "<method>".into() },
        Error::CameraNotFound("x".into()),
        Error::MediaMtx("x".into()),
        Error::Stream("x".into()),
        Error::FileNotFound { kind: FileKind::Recording, name: "<name>".into() },
        Error::FileNotFound { kind: FileKind::Snapshot, name: "<name>".into() },
        Error::CameraRecording("x".into()),
        Error::StorageLow("x".into()),
        Error::StorageCritical("x".into()),
    ];
    for e in errors {
        let row_start = format!("| {} | ", e.code());
        let row = api.lines().find(|l| l.starts_with(&row_start) && l.contains(&format!("`{}`", e.message())));
        assert!(row.is_some(), "no error-table row `{row_start}` with message `{}` in docs/api.md", e.message());
    }
}

/// GitHub-style heading anchor: lower case, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors_of(text: &str) -> BTreeSet<String> {
    text.lines().filter(|l| l.starts_with('#')).map(|l| anchor(l.trim_start_matches('#'))).collect()
}

/// Relative markdown links `](target)` (no scheme).
fn relative_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|t| !t.contains("://") && !t.starts_with("mailto:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn anchor_slugs_match_github() {
    assert_eq!(anchor(" 2. Authentication and roles"), "2-authentication-and-roles");
    assert_eq!(anchor(" `get_camera_list`"), "get_camera_list");
    assert_eq!(anchor(" 4. Tokens and API keys"), "4-tokens-and-api-keys");
}

#[test]
fn links_between_docs_resolve() {
    let mut broken = Vec::new();
    for entry in std::fs::read_dir(docs_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        for link in relative_links(&text) {
            let (file, frag) = link.split_once('#').map_or((link.as_str(), None), |(f, a)| (f, Some(a)));
            let target = if file.is_empty() { name.clone() } else { file.to_string() };
            let target_path = docs_dir().join(&target);
            if !target_path.exists() {
                if !DOCS_OWNED_ELSEWHERE.contains(&target.as_str()) {
                    broken.push(format!("{name}: {link} (no such file)"));
                }
                continue;
            }
            if let Some(frag) = frag {
                let target_text = std::fs::read_to_string(&target_path).unwrap();
                if !anchors_of(&target_text).contains(frag) {
                    broken.push(format!("{name}: {link} (no such heading)"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links in docs/: {broken:#?}");
}

#[test]
fn operator_docs_exist_and_name_the_ports() {
    let deployment = read_doc("deployment.md");
    for port in ["8002", "8003", "8554", "8888", "8889"] {
        assert!(deployment.contains(port), "deployment.md does not mention port {port}");
    }
    for doc in ["operations.md", "migration.md"] {
        assert!(!read_doc(doc).trim().is_empty(), "{doc} is empty");
    }
    let migration = read_doc("migration.md");
    for n in 1..=29 {
        assert!(migration.contains(&format!("| D{n} |")), "migration.md has no row for defect D{n}");
    }
}

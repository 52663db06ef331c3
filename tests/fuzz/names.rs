//! File-name validation: whatever a client sends as `filename` (JSON-RPC) or in a download path, an accepted name
//! is a bare name that cannot leave its storage directory, and resolving it never panics.

use camera_service::files::names::{self, Lookup};
use proptest::prelude::*;

use super::{cases, runner};
use crate::support::TempDir;

/// Names built from the characters that matter (separators, dots, controls, NUL, non-ASCII) plus anything.
fn name() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("/".to_string()),
        Just("\\".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("\0".to_string()),
        Just("\n".to_string()),
        Just("%2e%2e%2f".to_string()),
        Just("ü".to_string()),
        Just(" ".to_string()),
        "[a-z0-9_-]{1,12}",
        ".mp4|.jpg",
        any::<String>(),
    ];
    prop_oneof![proptest::collection::vec(pieces, 0..8).prop_map(|p| p.concat()), any::<String>(), "[a-z.]{250,260}",]
}

#[test]
fn accepted_names_are_bare_names_inside_the_directory() {
    let dir = TempDir::new("fuzz-names");
    std::fs::create_dir_all(dir.path().join("camera0")).unwrap();
    std::fs::write(dir.path().join("camera0/present.mp4"), b"x").unwrap();
    runner(cases())
        .run(&name(), |n| {
            if names::check(&n).is_err() {
                return Ok(());
            }
            prop_assert!(!n.trim().is_empty() && n.len() <= 255, "{n:?}");
            prop_assert!(!n.contains('/') && !n.contains('\\') && !n.contains(".."), "{n:?}");
            prop_assert!(!n.starts_with('.') && !n.chars().any(char::is_control), "{n:?}");
            match names::resolve(dir.path(), &n) {
                Ok(Lookup::File(path, _)) => prop_assert!(path.starts_with(dir.path()), "{n:?} -> {path:?}"),
                Ok(Lookup::Missing | Lookup::NotAFile) => {}
                Ok(Lookup::Escapes) => prop_assert!(false, "{n:?} escapes"),
                Err(e) => prop_assert!(false, "{n:?}: {e}"),
            }
            Ok(())
        })
        .unwrap();
    assert!(matches!(names::resolve(dir.path(), "present.mp4"), Ok(Lookup::File(..))));
}

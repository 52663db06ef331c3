//! The module graph stays a graph without cycles: every `crate::<module>` path in `src/` is an edge between two
//! top-level modules (`camera`, `files`, `rpc`, ...), and no chain of edges may lead back to where it started.
//! `src/process/daemon.rs` is exempt: it is the wiring that knows every component (see docs/design.md). `lib.rs` and
//! `main.rs` are roots, not modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files whose imports are the daemon's wiring, not a component's dependencies.
const WIRING: &[&str] = &["process/daemon.rs"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without `//` comments (doc links name modules without depending on them) and without string
/// literals, so that only code counts.
fn code_only(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    for line in src.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut kept = String::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !in_str && c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                kept.push(c);
            }
            prev = if prev == '\\' && c == '\\' { ' ' } else { c };
            i += 1;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// Every top-level module a file names through `crate::...`, including `crate::{a, b::c}` groups.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            found.insert(name);
        }
    }
    found
}

/// module → (module it names → files that name it).
fn module_graph() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() || p.file_name().is_some_and(|n| n != "lib.rs" && n != "main.rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let top = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
        if !modules.contains(&top) || WIRING.contains(&rel.as_str()) {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        for target in named_modules(&code) {
            if target != top && modules.contains(&target) {
                graph.entry(top.clone()).or_default().entry(target).or_default().insert(rel.clone());
            }
        }
    }
    graph
}

/// A cycle through `start`, if any (depth-first search over the edges).
fn cycle_from(graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
        start: &str,
        node: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(node).map(|e| e.keys()).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = module_graph();
    assert!(graph.contains_key("rpc") && graph.contains_key("media"), "the scan found no edges: {graph:?}");
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module) {
            let edges: Vec<String> =
                cycle.windows(2).map(|w| format!("{} -> {} (in {:?})", w[0], w[1], graph[&w[0]][&w[1]])).collect();
            panic!("import cycle {}:\n  {}", cycle.join(" -> "), edges.join("\n  "));
        }
    }
}

#[test]
fn the_scanner_sees_grouped_and_inline_paths() {
    let code =
        code_only("use crate::{auth::Role, files};\nlet x = crate::media::f(); // crate::ws\nlet s = \"crate::http\";");
    let names: Vec<String> = named_modules(&code).into_iter().collect();
    assert_eq!(names, ["auth", "files", "media"]);
    let mut graph = BTreeMap::new();
    let edge = |to: &str| BTreeMap::from([(to.to_string(), BTreeSet::from(["x.rs".to_string()]))]);
    graph.insert("a".to_string(), edge("b"));
    graph.insert("b".to_string(), edge("a"));
    assert_eq!(cycle_from(&graph, "a"), Some(vec!["a".into(), "b".into(), "a".into()]));
    graph.insert("b".to_string(), edge("c"));
    assert_eq!(cycle_from(&graph, "a"), None);
}

/// The component modules do not name the wiring or the old bag of handles.
#[test]
fn components_do_not_reach_the_wiring() {
    let graph = module_graph();
    for (module, edges) in &graph {
        if let Some(files) = edges.get("process") {
            for f in files {
                let code = code_only(
                    &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(f)).unwrap(),
                );
                assert!(!code.contains("process::daemon"), "{module} ({f}) reaches into the daemon's wiring");
            }
        }
    }
    assert!(!Path::new(env!("CARGO_MANIFEST_DIR")).join("src/app.rs").exists(), "no bag of every handle");
}

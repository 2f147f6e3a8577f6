//! The library's top-level modules form layers: no two of them depend on each other, even
//! through others. Read from the sources (every `crate::…` path outside comments and unit
//! tests, and the names the crate root re-exports), so a new `use` that closes a cycle
//! fails here, naming the modules on it. docs/architecture.md lists the layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Items the crate root re-exports, and the module each comes from.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("Host", "host"),
    ("HostBuilder", "host"),
    ("RoutingReport", "host"),
    ("RoutingUpdate", "host"),
    ("TaskHealth", "host"),
    ("DEFAULT_RETENTION", "host"),
    ("STUCK_AFTER", "host"),
    ("HOST_AUTHOR", "types"),
    ("Error", "error"),
    ("Fault", "error"),
    ("PluginFailure", "error"),
    ("PluginId", "error"),
    ("Result", "error"),
    ("IngressLimits", "serve"),
];

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

/// The identifier at the start of `text`.
fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The top-level modules a source file refers to through `crate::`.
fn references(source: &str) -> BTreeSet<String> {
    // Unit tests may reach anywhere; the layers are about the library's own code.
    let source = source
        .find("#[cfg(test)]\nmod tests")
        .map_or(source, |at| &source[..at]);
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let root: BTreeMap<&str, &str> = ROOT_ITEMS.iter().copied().collect();
    let mut found = BTreeSet::new();
    let mut note = |name: &str| {
        if let Some(module) = root.get(name) {
            found.insert((*module).to_string());
        } else if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            found.insert(name.to_string());
        }
    };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                note(identifier(item.trim()));
            }
        } else {
            note(identifier(rest));
        }
    }
    found
}

/// The dependency graph between the top-level modules of `host/src` (the binary excluded).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str();
        let top = top.to_string_lossy().trim_end_matches(".rs").to_string();
        if top == "bin" || top == "lib" {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap();
        let mut refs = references(&source);
        refs.remove(&top);
        graph.entry(top).or_default().extend(refs);
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    graph
}

/// A cycle through `start`, if there is one (depth-first search).
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        let Some(last) = path.last().cloned() else {
            return false;
        };
        for next in &graph[&last] {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    walk(graph, start, &mut path, &mut seen).then_some(path)
}

#[test]
fn the_top_level_modules_have_no_import_cycle() {
    let graph = module_graph();
    assert!(
        graph.contains_key("host") && graph["host"].contains("store"),
        "the sources were not read: {graph:?}"
    );
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|module| cycle_through(&graph, module))
        .map(|cycle| cycle.join(" → "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_check_sees_a_cycle_when_there_is_one() {
    let mut graph = module_graph();
    // `store` reaching up into `host` would close store → host → store.
    graph
        .entry("store".to_string())
        .or_default()
        .insert("host".to_string());
    let cycle = cycle_through(&graph, "store").expect("a cycle");
    assert_eq!(cycle.first().map(String::as_str), Some("store"));
    assert_eq!(cycle.last().map(String::as_str), Some("store"));
    assert!(cycle.contains(&"host".to_string()), "{cycle:?}");
}

#[test]
fn references_are_read_from_paths_groups_and_root_items_not_comments() {
    let source = "use crate::store::Store;\nuse crate::{Error, Host, routing};\n\
                  // crate::api is only mentioned\nfn f() { crate::clock::now_ms(); }\n\
                  #[cfg(test)]\nmod tests { use crate::config; }\n";
    let found: Vec<String> = references(source).into_iter().collect();
    assert_eq!(found, ["clock", "error", "host", "routing", "store"]);
}

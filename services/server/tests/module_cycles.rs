//! The server's modules depend on each other one way: this test reads the
//! source tree and fails on a cycle, between top-level modules (`control` →
//! `cluster` → `control`) or between the submodules of one module (`render::
//! logging` → `render::pod_template` → `render::logging`).
//!
//! A use of a module's parent or child does not count (a child using
//! `super::` items is how Rust modules are built), and nor do test modules.
//! It reads `crate::…` and `super::…` paths, which is how this codebase
//! names other modules; a `use` through a re-export counts as a use of the
//! module that re-exports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`cluster::executor`) → its source with test modules cut off.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            // Test modules in files of their own (`executor/tests.rs`) do
            // not count either.
            if parts == ["lib"] || parts == ["main"] || parts.last().is_some_and(|p| p == "tests") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default()
                .to_string();
            out.insert(parts.join("::"), code);
        }
    }
    out
}

/// The paths after `prefix` in `code` (`crate::store::Txn` → `store::Txn`).
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    code.match_indices(prefix)
        .filter(|(i, _)| {
            // Not the tail of a longer identifier (`my_crate::`).
            *i == 0
                || !code.as_bytes()[i - 1].is_ascii_alphanumeric() && code.as_bytes()[i - 1] != b'_'
        })
        .map(|(i, _)| {
            let rest = &code[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            rest[..end].trim_end_matches(':')
        })
        .collect()
}

/// The longest module named by the start of `path`.
fn resolve(mods: &BTreeMap<String, String>, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| mods.contains_key(m))
}

fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

/// Edges between modules at `depth` (1: top level; 2: submodules of one
/// module, only between siblings).
fn graph(mods: &BTreeMap<String, String>, depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let at = |m: &str| m.split("::").take(depth).collect::<Vec<_>>().join("::");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in mods {
        let parent: Vec<&str> = module.split("::").collect();
        let mut used: Vec<String> = paths_after(code, "crate::")
            .into_iter()
            .filter_map(|p| resolve(mods, p))
            .collect();
        if parent.len() > 1 {
            let base = parent[..parent.len() - 1].join("::");
            used.extend(
                paths_after(code, "super::")
                    .into_iter()
                    .filter_map(|p| resolve(mods, &format!("{base}::{p}"))),
            );
        }
        for target in used {
            let (from, to) = (at(module), at(&target));
            let siblings = depth == 1
                || from.rsplit_once("::").map(|x| x.0) == to.rsplit_once("::").map(|x| x.0);
            if !related(&from, &to) && siblings && from.split("::").count() == depth {
                edges.entry(from).or_default().insert(to);
            }
        }
    }
    edges
}

/// A cycle in `edges`, as the modules along it, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|start| visit(start, edges, &mut Vec::new(), &mut done))
}

#[test]
fn the_servers_modules_have_no_cycles() {
    let mods = modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(
        mods.contains_key("cluster::executor"),
        "the source tree was read"
    );
    for depth in [1, 2] {
        if let Some(cycle) = find_cycle(&graph(&mods, depth)) {
            panic!("module cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_renderers_modules_have_no_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../render/src");
    let mods = modules(&src);
    assert!(
        mods.contains_key("pod_template"),
        "the source tree was read"
    );
    if let Some(cycle) = find_cycle(&graph(&mods, 1)) {
        panic!("module cycle in sparkvc-render: {}", cycle.join(" -> "));
    }
}

#[test]
fn a_cycle_is_found() {
    let mods: BTreeMap<String, String> = [
        ("a", "use crate::b::X;"),
        ("b", "fn f() { crate::a::y(); }"),
        ("c", "use crate::a;"),
        ("r", ""),
        ("r::x", "use super::y::Z;"),
        ("r::y", "use super::x::W;"),
    ]
    .into_iter()
    .map(|(m, c)| (m.to_string(), c.to_string()))
    .collect();
    let top = find_cycle(&graph(&mods, 1)).expect("a -> b -> a");
    assert_eq!(top, ["a", "b", "a"]);
    let inner = find_cycle(&graph(&mods, 2)).expect("r::x -> r::y -> r::x");
    assert_eq!(inner, ["r::x", "r::y", "r::x"]);
}

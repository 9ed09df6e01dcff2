//! The module layering of `src/` stays as `src/lib.rs` documents it: each top-level module
//! imports only modules listed before it, so there is no import circle between stages.

use std::collections::BTreeMap;
use std::path::Path;

/// The order of `src/lib.rs`'s layout list.
const ORDER: &[&str] = &[
    "secrets",
    "scenario",
    "plan",
    "scheduler",
    "faults",
    "recorder",
    "executor",
    "report",
    "exit",
    "verdict",
    "verify",
    "telemetry",
    "sinks",
    "target",
    "run",
    "coord",
    "cli",
    "app",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Top-level modules named in `crate::X` paths and in `use crate::{X, …}` groups.
fn referenced(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for part in inner.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                found.push(name);
            }
        } else {
            found.push(
                rest.chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect(),
            );
        }
    }
    found
}

#[test]
fn every_module_imports_only_earlier_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut bad: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let me = ORDER
            .iter()
            .position(|m| *m == top)
            .unwrap_or_else(|| panic!("src/{top} is not in the layering list (src/lib.rs)"));
        let text = std::fs::read_to_string(&f).unwrap();
        for r in referenced(&text) {
            if let Some(there) = ORDER.iter().position(|m| *m == r)
                && there > me
            {
                bad.entry(rel.display().to_string()).or_default().push(r);
            }
        }
    }
    assert!(
        bad.is_empty(),
        "modules importing later stages (see src/lib.rs): {bad:?}"
    );
}

#[test]
fn the_list_matches_the_layout_in_lib_rs() {
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    let block = lib
        .split("```text")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a layout block in src/lib.rs");
    let listed: Vec<&str> = block
        .lines()
        .filter_map(|l| l.strip_prefix("//! "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_lowercase()))
        .collect();
    assert_eq!(
        listed, ORDER,
        "the layout list in src/lib.rs and ORDER here agree"
    );
}

//! The module layers of `src/`: a module imports only from modules of lower layers (or its own),
//! so there are no circles, `row` knows nothing of ClickHouse, `adjust` nothing of rows, and the
//! seams (`sink`, `pipeline`) nothing of the command line. Test-only code (unit tests, the twin,
//! the fuzzing helpers) is exempt: it may reach across layers to build its fixtures.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module with its layer; a module may import from layers below its own.
const LAYERS: &[(&str, u8)] = &[
    ("clock", 0),
    ("shutdown", 0),
    ("settings", 0),
    ("adjust", 1),
    ("metrics", 2),
    ("row", 3),
    ("sink", 4),
    ("pipeline", 5),
    ("http", 6),
    ("clickhouse", 7),
    ("callback_url", 8),
    ("cli", 9),
    ("commands", 10),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

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

/// Whether a file holds only test code.
fn test_only(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap();
    matches!(name, "tests.rs" | "twin.rs" | "fuzz.rs" | "fuzzing.rs") || rel.contains("/fuzz/")
}

/// The top-level modules a file names as `crate::<module>`, outside comments and its unit tests.
fn imports(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let lines: Vec<&str> = source.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|n| n.trim_start().starts_with("mod tests"))
        {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        let mut rest = t;
        while let Some(at) = rest.find("crate::") {
            let name: String = rest[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
            rest = &rest[at + 7..];
        }
    }
    found
}

#[test]
fn modules_import_only_from_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut top_level: BTreeSet<String> = BTreeSet::new();
    let mut violations = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let module = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(module.as_str(), "lib" | "main") || test_only(&rel) {
            continue;
        }
        top_level.insert(module.clone());
        let Some(own) = layer(&module) else {
            violations.push(format!("{rel}: module `{module}` has no layer in LAYERS"));
            continue;
        };
        let source = std::fs::read_to_string(path).unwrap();
        for imported in imports(&source) {
            if imported == module {
                continue;
            }
            match layer(&imported) {
                Some(l) if l < own => {}
                Some(l) => violations.push(format!(
                    "{rel}: `{module}` (layer {own}) imports `crate::{imported}` (layer {l})"
                )),
                None => violations.push(format!(
                    "{rel}: imports `crate::{imported}`, which has no layer"
                )),
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layer violations:\n{}",
        violations.join("\n")
    );
    // Every module of the table exists (a renamed module cannot leave the check blind).
    for (m, _) in LAYERS {
        assert!(
            top_level.contains(*m),
            "LAYERS names `{m}`, which src/ lacks"
        );
    }
}

#[test]
fn the_rules_the_layers_stand_for() {
    let below = |a: &str, b: &str| layer(a).unwrap() < layer(b).unwrap();
    // `row` does not import the ClickHouse home, `adjust` does not import `row`, the seams do
    // not import the command line.
    assert!(below("row", "clickhouse"));
    assert!(below("adjust", "row"));
    assert!(below("sink", "cli") && below("sink", "commands"));
    assert!(below("pipeline", "clickhouse"));
}

#[test]
fn main_only_parses_and_dispatches() {
    let main = include_str!("../src/main.rs");
    assert!(
        main.lines().count() < 80,
        "src/main.rs has {} lines",
        main.lines().count()
    );
}

#[test]
fn the_scanner_sees_imports_and_skips_comments_and_unit_tests() {
    let source = "//! See [`crate::cli`].\n\
                  use crate::row::Column;\n\
                  fn f() -> String { crate::clickhouse::quote(\"x\") }\n\
                  #[cfg(test)]\n\
                  mod tests { use crate::commands; }\n";
    let want: BTreeSet<String> = ["clickhouse", "row"].map(String::from).into();
    assert_eq!(imports(source), want);
}

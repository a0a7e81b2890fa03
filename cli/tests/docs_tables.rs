//! The benchmark tables in docs/ are what `socklab bench --markdown-from` makes of the committed JSON.
//!
//! Each table sits between `<!-- socklab bench --markdown-from docs/bench/NAME.json -->` and
//! `<!-- end -->`; this test regenerates every such block from its JSON file and fails on any
//! difference, so a table cannot drift from the measurement it claims to show.

use std::fs;
use std::path::{Path, PathBuf};

use socklab_host::bench::report::markdown_from_json;

const OPEN: &str = "<!-- socklab bench --markdown-from ";
const CLOSE: &str = "<!-- end -->";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every generated block in one Markdown file: (JSON path from the root, the block's text).
fn blocks(markdown: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let (name, body) = after
            .split_once(" -->\n")
            .expect("a generated block's opening comment ends with ` -->` and a newline");
        let end = body
            .find(CLOSE)
            .unwrap_or_else(|| panic!("the block for {name} has no `{CLOSE}`"));
        found.push((name.to_owned(), body[..end].to_owned()));
        rest = &body[end + CLOSE.len()..];
    }
    found
}

#[test]
fn every_committed_bench_table_is_what_its_json_produces() {
    let mut checked = 0;
    for entry in fs::read_dir(root().join("docs")).expect("docs/ exists") {
        let path = entry.expect("docs/ is readable").path();
        if path.extension().is_none_or(|ext| ext != "md") {
            continue;
        }
        let markdown = fs::read_to_string(&path).expect("docs are UTF-8");
        for (json_path, table) in blocks(&markdown) {
            let text = fs::read_to_string(root().join(&json_path))
                .unwrap_or_else(|e| panic!("{}: {json_path}: {e}", path.display()));
            let json: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{json_path} is not JSON: {e}"));
            let expected = markdown_from_json(&json).unwrap_or_else(|e| panic!("{json_path}: {e}"));
            assert_eq!(
                table.trim_end(),
                expected.trim_end(),
                "{}: the table for {json_path} differs from `socklab bench --markdown-from {json_path}`; \
                 paste that command's output between the comments",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 4,
        "found {checked} generated tables in docs/, expected at least 4"
    );
}

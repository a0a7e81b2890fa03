//! Every table of figures in README.md and docs/*.md is what the `socklab`
//! command named above it prints from a committed JSON file.
//!
//! A generated table sits between `<!-- socklab ARGS -->` and `<!-- end -->`,
//! where `socklab ARGS` is `socklab bench --markdown-from FILE.json` or
//! `socklab report FILE.json`: commands that render, never measure. This test
//! runs the built `socklab` with those arguments and fails on any difference,
//! so a table cannot drift from the measurement it claims to show; each table
//! must say when it was measured and on what machine; and a table of figures
//! (one with a right-aligned, numeric column) outside such a block fails: its
//! figures would have no command behind them. Every JSON file in
//! docs/figures/ must be shown somewhere.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOCKLAB: &str = env!("CARGO_BIN_EXE_socklab");
const OPEN: &str = "<!-- socklab ";
const CLOSE: &str = "<!-- end -->";
/// Where the committed figures of `scripts/image-sizes` and `scripts/page-cost` live.
const FIGURES: &str = "docs/figures";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// README.md and every docs/*.md, as (path from the root, text).
fn markdown_files() -> Vec<(String, String)> {
    let mut files = vec!["README.md".to_owned()];
    for entry in fs::read_dir(root().join("docs")).expect("docs/ exists") {
        let path = entry.expect("docs/ is readable").path();
        if path.extension().is_some_and(|ext| ext == "md") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.push(format!("docs/{name}"));
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = fs::read_to_string(root().join(&f)).expect("docs are UTF-8");
            (f, text)
        })
        .collect()
}

/// One generated block: the command's arguments, the JSON file they name,
/// the block's text and its line range in the file.
struct Block {
    args: Vec<String>,
    json: String,
    text: String,
    lines: std::ops::Range<usize>,
}

/// The arguments of a rendering command, and the JSON file they read;
/// panics on anything else (a block may not name a measuring command).
fn rendering_command(file: &str, comment: &str) -> (Vec<String>, String) {
    let args: Vec<String> = comment.split_whitespace().map(str::to_owned).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let json = match words[..] {
        ["bench", "--markdown-from", json] | ["report", json] => json,
        _ => panic!(
            "{file}: `<!-- socklab {comment} -->` is not `socklab bench --markdown-from FILE.json` \
             or `socklab report FILE.json`"
        ),
    };
    assert!(
        json.ends_with(".json"),
        "{file}: {json} is not a .json file"
    );
    (args.clone(), json.to_owned())
}

/// Every generated block of one Markdown file: an opening comment on a line
/// of its own, the block's lines, `<!-- end -->` on a line of its own.
fn blocks(file: &str, markdown: &str) -> Vec<Block> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut found = Vec::new();
    let mut n = 0;
    while n < lines.len() {
        let Some(comment) = lines[n]
            .strip_prefix(OPEN)
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            n += 1;
            continue;
        };
        let (args, json) = rendering_command(file, comment);
        let end = (n + 1..lines.len())
            .find(|&k| lines[k] == CLOSE)
            .unwrap_or_else(|| {
                panic!(
                    "{file}:{}: the block of `socklab {comment}` has no `{CLOSE}`",
                    n + 1
                )
            });
        let text: String = lines[n + 1..end].iter().map(|l| format!("{l}\n")).collect();
        found.push(Block {
            args,
            json,
            text,
            lines: n..end + 1,
        });
        n = end + 1;
    }
    found
}

/// What `socklab ARGS` prints, run from the repository's root.
fn socklab(args: &[String]) -> String {
    let out = Command::new(SOCKLAB)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("run {SOCKLAB}: {e}"));
    assert!(
        out.status.success(),
        "socklab {}: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("socklab prints UTF-8")
}

/// True if `line` is a Markdown table's delimiter row with a right-aligned column.
fn right_aligned_delimiter(line: &str) -> bool {
    let line = line.trim();
    line.starts_with('|')
        && line
            .trim_matches('|')
            .split('|')
            .all(|cell| cell.trim().trim_matches(':').chars().all(|c| c == '-'))
        && line.split('|').any(|cell| cell.trim().ends_with("-:"))
}

#[test]
fn every_committed_table_is_what_its_command_prints() {
    let mut checked = 0;
    for (file, markdown) in markdown_files() {
        for block in blocks(&file, &markdown) {
            assert!(
                root().join(&block.json).is_file(),
                "{file}: {} does not exist",
                block.json
            );
            let expected = socklab(&block.args);
            assert_eq!(
                block.text.trim_end(),
                expected.trim_end(),
                "{file}: the table differs from what `socklab {}` prints; paste that \
                 command's output between the comments",
                block.args.join(" ")
            );
            checked += 1;
        }
    }
    // The bench's results, the image sizes of both bare-metal boards and the
    // page's cost on two boards.
    assert!(
        checked >= 8,
        "found {checked} generated tables in README.md and docs/, expected at least 8"
    );
}

#[test]
fn every_table_says_when_and_where_it_was_measured() {
    for (file, markdown) in markdown_files() {
        for block in blocks(&file, &markdown) {
            let opening = block.text.trim_start().lines().next().unwrap_or("");
            let dated = opening.strip_prefix("Measured on ").is_some_and(|rest| {
                let date = rest.get(..10).unwrap_or("");
                date.len() == 10
                    && date.char_indices().all(|(i, c)| {
                        if i == 4 || i == 7 {
                            c == '-'
                        } else {
                            c.is_ascii_digit()
                        }
                    })
            });
            assert!(
                dated,
                "{file}: the table of {} does not open with `Measured on YYYY-MM-DD`: {opening}",
                block.json
            );
            assert!(
                block.text.contains("* machine: "),
                "{file}: the table of {} names no machine",
                block.json
            );
        }
    }
}

/// The lines of each RAM table, between `<!-- scripts/image-sizes --ram --board B -->`
/// and `<!-- end -->`: that command boots the images to read their `INFO`, so the
/// suite's `image_budget::docs_ram_tables_are_what_image_sizes_prints` runs it and
/// compares, not this test.
fn ram_blocks(markdown: &str) -> Vec<std::ops::Range<usize>> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut found = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        if line.starts_with("<!-- scripts/image-sizes --ram --board ") {
            if let Some(end) = (n + 1..lines.len()).find(|&k| lines[k] == CLOSE) {
                found.push(n..end + 1);
            }
        }
    }
    found
}

#[test]
fn every_table_of_figures_is_generated() {
    for (file, markdown) in markdown_files() {
        let generated: Vec<_> = blocks(&file, &markdown)
            .into_iter()
            .map(|b| b.lines)
            .chain(ram_blocks(&markdown))
            .collect();
        for (n, line) in markdown.lines().enumerate() {
            if right_aligned_delimiter(line) {
                assert!(
                    generated.iter().any(|lines| lines.contains(&n)),
                    "{file}:{}: a table of figures (right-aligned columns) that no command \
                     renders: commit its JSON and put it between `<!-- socklab report FILE.json -->` \
                     and `{CLOSE}`, or remove it",
                    n + 1
                );
            }
        }
    }
}

#[test]
fn every_committed_file_of_figures_is_shown() {
    let shown: Vec<String> = markdown_files()
        .iter()
        .flat_map(|(file, markdown)| blocks(file, markdown))
        .map(|b| b.json)
        .collect();
    let dir = root().join(FIGURES);
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let name = entry.expect("docs/figures is readable").file_name();
        let path = format!("{FIGURES}/{}", name.to_string_lossy());
        assert!(
            shown.contains(&path),
            "{path} is committed but no table in README.md or docs/ shows it"
        );
    }
}

#[test]
fn the_block_finder_and_the_figures_detector_work() {
    let md = "intro\n<!-- socklab report docs/figures/x.json -->\nMeasured on 2026-12-06\n\n| a | b |\n|---|---:|\n| c | 1 |\n<!-- end -->\n\n| a | b |\n|---|---|\n";
    let found = blocks("t.md", md);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].json, "docs/figures/x.json");
    assert_eq!(found[0].args, ["report", "docs/figures/x.json"]);
    assert_eq!(found[0].lines, 1..8);
    assert!(found[0].text.contains("| c | 1 |"));
    assert!(right_aligned_delimiter("|---|---:|"));
    assert!(right_aligned_delimiter("| --- | ---: |"));
    assert!(!right_aligned_delimiter("|---|---|"));
    assert!(!right_aligned_delimiter("| a | -1: |"));
}

#[test]
#[should_panic(expected = "is not `socklab bench --markdown-from FILE.json`")]
fn a_block_may_not_name_a_measuring_command() {
    blocks(
        "t.md",
        "<!-- socklab bench --board tap all -->\n| a |\n<!-- end -->\n",
    );
}

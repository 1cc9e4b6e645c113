//! The documentation keeps up with the binary and with itself:
//!
//! - `docs/configuration.md` names every long flag of every command, as `--name` in backticks
//!   (the commands are read from `adjust-sink --help`, so a new command is covered too);
//! - the README stays the front door: at most 300 lines;
//! - every relative link in the README and in `docs/*.md` points at a file that exists (and, for a
//!   Markdown file with an `#anchor`, at a heading of that file).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const README_MAX_LINES: usize = 300;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `adjust-sink <args>`'s standard output; the command must succeed.
fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_adjust-sink"))
        .args(args)
        .env_clear()
        .output()
        .expect("run adjust-sink");
    assert!(
        out.status.success(),
        "adjust-sink {}: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The subcommands listed under `Commands:` of the top-level help (without `help`).
fn subcommands(top: &str) -> Vec<String> {
    top.lines()
        .skip_while(|l| l.trim_end() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // A command starts its line after two spaces; its description's continuation lines are
        // indented further.
        .filter(|l| l.starts_with("  ") && !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The long flags a help text defines: the `--name` at the start of an option line
/// (`      --name <VALUE>` or `  -h, --help`), not the ones its descriptions mention.
fn long_flags(help: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for line in help.lines() {
        let indent = line.len() - line.trim_start().len();
        if indent > 6 {
            continue;
        }
        let mut rest = line.trim_start();
        // `-h, --help`: a short flag first.
        if rest.starts_with('-') && !rest.starts_with("--") && rest.get(2..4) == Some(", ") {
            rest = &rest[4..];
        }
        let Some(after) = rest.strip_prefix("--") else {
            continue;
        };
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        if !name.is_empty() {
            flags.insert(name);
        }
    }
    flags
}

#[test]
fn configuration_md_documents_every_flag_of_every_command() {
    let doc = read(&root().join("docs/configuration.md"));
    let top = help(&["--help"]);
    let commands = subcommands(&top);
    assert!(
        commands.iter().any(|c| c == "serve"),
        "no commands found in the top-level help:\n{top}"
    );

    let mut helps = vec![("adjust-sink".to_owned(), top.clone())];
    for command in &commands {
        helps.push((
            format!("adjust-sink {command}"),
            help(&[command.as_str(), "--help"]),
        ));
    }

    let mut missing = Vec::new();
    let mut seen = 0;
    for (command, text) in &helps {
        let flags = long_flags(text);
        assert!(
            flags.contains("help"),
            "{command}: no options found in its help:\n{text}"
        );
        for flag in flags {
            if flag == "help" || flag == "version" {
                continue;
            }
            seen += 1;
            if !doc.contains(&format!("`--{flag}`")) {
                missing.push(format!("{command}: `--{flag}`"));
            }
        }
    }
    assert!(seen > 0, "no flags found in any help text");
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document these flags (as `--name`):\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn readme_is_at_most_300_lines() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move the detail into a chapter under docs/"
    );
}

/// The files whose links are checked: the README and every Markdown file directly in `docs/`.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The text of a Markdown file outside fenced code blocks and inline code spans, line by line.
fn prose(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let outside: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        out.push((i + 1, outside));
    }
    out
}

/// The targets of the inline links `[text](target)` of a line.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        let target = after[..end].split_whitespace().next().unwrap_or("");
        let target = target.trim_start_matches('<').trim_end_matches('>');
        targets.push(target.to_owned());
        rest = &after[end..];
    }
    targets
}

/// GitHub's anchor of a heading: lower case, punctuation other than `-` and `_` removed,
/// spaces turned into `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (a repeated heading gets `-1`, `-2`, … as on GitHub).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base = anchor(heading);
        let mut candidate = base.clone();
        let mut n = 0;
        while out.contains(&candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        out.insert(candidate);
    }
    out
}

#[test]
fn relative_links_point_at_files_that_exist() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in documents() {
        let text = read(&file);
        let dir = file.parent().expect("a directory");
        let shown = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .display()
            .to_string();
        for (line_no, line) in prose(&text) {
            for target in link_targets(&line) {
                let external = target.contains("://") || target.starts_with("mailto:");
                if external || target.is_empty() {
                    continue;
                }
                checked += 1;
                let (path, fragment) = match target.split_once('#') {
                    Some((p, f)) => (p, Some(f)),
                    None => (target.as_str(), None),
                };
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    dir.join(path)
                };
                if !resolved.exists() {
                    broken.push(format!("{shown}:{line_no}: {target} (no such file)"));
                    continue;
                }
                if let Some(fragment) = fragment
                    && resolved.extension().is_some_and(|e| e == "md")
                    && !anchors(&read(&resolved)).contains(fragment)
                {
                    broken.push(format!("{shown}:{line_no}: {target} (no such heading)"));
                }
            }
        }
    }
    assert!(checked > 0, "no relative links found");
    assert!(
        broken.is_empty(),
        "broken links:\n  {}",
        broken.join("\n  ")
    );
}

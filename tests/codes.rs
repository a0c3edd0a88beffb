//! Issue 33, point 4: every diagnostic code is documented in README.md
//! ("Diagnostic codes": a row with its severity, meaning and what to do)
//! and used by the code (no dead codes); README.md names no code that
//! does not exist.

mod common;

use meshgen::code::Code;
use meshgen::diagnostic::Severity;
use std::collections::BTreeMap;
use std::path::Path;

/// The codes README.md's table documents, with their severity column.
fn documented(readme: &str) -> BTreeMap<String, String> {
    let start = readme
        .find("### Diagnostic codes")
        .expect("README.md has a \"Diagnostic codes\" section");
    readme[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| Code |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_string(), cells[2].to_string())
        })
        .collect()
}

fn severity(code: Code) -> &'static str {
    match code.severity() {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Notice => "notice",
    }
}

#[test]
fn every_code_is_documented_in_the_readme_and_nothing_else() {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let table = documented(&readme);
    let mut problems = Vec::new();
    for code in Code::ALL {
        match table.get(code.name()) {
            None => problems.push(format!(
                "{code}: no row in README.md's \"Diagnostic codes\""
            )),
            Some(s) if s != severity(*code) => problems.push(format!(
                "{code}: README.md says {s}, the code is {}",
                severity(*code)
            )),
            Some(_) => {}
        }
    }
    for name in table.keys() {
        if Code::from_name(name).is_err() {
            problems.push(format!("README.md documents `{name}`, which is no code"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(table.len(), Code::ALL.len());
}

/// The text of every `.rs` file under `dir`, its tests (from the first
/// `#[cfg(test)]`) left out.
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for rel in common::walk(dir) {
        let path = dir.join(&rel);
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
            out.push((rel.to_string_lossy().replace('\\', "/"), code));
        }
    }
}

#[test]
fn every_code_is_used_outside_its_definition_and_tests() {
    let mut files = Vec::new();
    sources(&common::root().join("src"), &mut files);
    let unused: Vec<String> = Code::ALL
        .iter()
        .filter(|code| {
            let used = format!("Code::{code:?}");
            !files
                .iter()
                .any(|(rel, text)| rel != "code.rs" && text.contains(&used))
        })
        .map(|code| format!("{code} (Code::{code:?})"))
        .collect();
    assert!(
        unused.is_empty(),
        "codes no diagnostic uses: remove them (and their README.md rows):\n{}",
        unused.join("\n")
    );
}

/// The check notices a code missing from the table.
#[test]
fn an_undocumented_code_is_found() {
    let readme = "### Diagnostic codes\n\n| Code | Severity | Meaning | What to do |\n|---|---|---|---|\n| `schema` | error | a | b |\n| `nope` | warning | a | b |\n\nafter\n";
    let table = documented(readme);
    assert_eq!(table.len(), 2);
    assert_eq!(table["schema"], "error");
    assert!(!table.contains_key("input"));
    assert!(Code::from_name("nope").is_err());
}

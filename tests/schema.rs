//! The shipped values schema (`schemas/values.schema.json`) and the
//! embedded defaults (`default_values.yaml`):
//!
//! - the committed schema is the merge of the schema derived from
//!   `src/config` and the generated `schemas/deploykf-sections.json`;
//!   when it is stale, `MESHGEN_BLESS=1 cargo test --test schema`
//!   rewrites it;
//! - the defaults pass that schema, and deserialize into the types;
//! - every key of the defaults is explained by a comment.

use meshgen::config::Config;
use meshgen::schema::derive::{shipped_text, SHIPPED_PATH};
use meshgen::schema::SCHEMA_TEXT;
use meshgen::values::DEFAULT_VALUES;
use serde_json::Value;
use std::path::Path;

fn defaults_json() -> Value {
    let mut docs = meshgen::yaml::load_json_documents(DEFAULT_VALUES).expect("defaults parse");
    assert_eq!(docs.len(), 1, "default_values.yaml holds one document");
    docs.remove(0)
}

#[test]
fn committed_schema_is_the_merge_of_types_and_deploykf_sections() {
    let want = shipped_text().expect("the schema sources merge");
    if SCHEMA_TEXT == want {
        return;
    }
    if std::env::var_os("MESHGEN_BLESS").is_some_and(|v| v == "1") {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(SHIPPED_PATH);
        std::fs::write(&path, &want).expect("write the schema");
        eprintln!("wrote {}", path.display());
        return;
    }
    let first = SCHEMA_TEXT
        .lines()
        .zip(want.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(SCHEMA_TEXT.lines().count().min(want.lines().count()));
    panic!(
        "{SHIPPED_PATH} is stale (first difference at line {}): regenerate it with\n    MESHGEN_BLESS=1 cargo test --test schema\n(after scripts/gen-deploykf-sections.py, when deployKF's defaults changed)",
        first + 1
    );
}

#[test]
fn defaults_pass_the_shipped_schema_and_fit_the_types() {
    let schema: Value = serde_json::from_str(SCHEMA_TEXT).expect("schema is JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("schema compiles");
    let defaults = defaults_json();
    let errors: Vec<String> = validator
        .iter_errors(&defaults)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert_eq!(errors, Vec::<String>::new());
    let config: Result<Config, _> = serde_json::from_value(defaults);
    assert!(config.is_ok(), "{:?}", config.err());
}

#[test]
fn every_object_with_keys_rejects_unknown_keys() {
    fn walk(node: &Value, at: &str, out: &mut Vec<String>) {
        let Some(map) = node.as_object() else { return };
        if map.contains_key("properties")
            && map.get("additionalProperties") != Some(&Value::Bool(false))
        {
            out.push(at.to_string());
        }
        for (k, v) in map {
            match k.as_str() {
                "properties" => {
                    for (name, child) in v.as_object().into_iter().flatten() {
                        walk(child, &format!("{at}.{name}"), out);
                    }
                }
                "items" | "additionalProperties" => walk(v, &format!("{at}[]"), out),
                _ => {}
            }
        }
    }
    let schema: Value = serde_json::from_str(SCHEMA_TEXT).expect("schema is JSON");
    let mut open = Vec::new();
    walk(&schema, "", &mut open);
    assert_eq!(open, Vec::<String>::new());
}

/// Every key of `default_values.yaml` is explained by a comment: either a
/// `#` comment on the line directly above it (no blank line between; a
/// comment above a run of keys explains the first one only), or a `#`
/// comment at the end of its own line. Keys of list items count too.
#[test]
fn every_default_key_carries_a_comment() {
    let missing = uncommented_keys(DEFAULT_VALUES);
    assert!(
        missing.is_empty(),
        "keys of default_values.yaml without a comment above or at the end of the line:\n{}",
        missing.join("\n")
    );
}

/// `line: key` of every key without a comment.
fn uncommented_keys(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut previous_is_comment = false;
    let mut block_scalar: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let content = line.trim();
        if let Some(parent) = block_scalar {
            if content.is_empty() || indent > parent {
                continue;
            }
            block_scalar = None;
        }
        if content.is_empty() {
            previous_is_comment = false;
            continue;
        }
        if content.starts_with('#') {
            previous_is_comment = true;
            continue;
        }
        let (code, trailing) = split_comment(content);
        if let Some((key, value)) = key_of(code) {
            if !previous_is_comment && !trailing {
                out.push(format!("{}: {key}", n + 1));
            }
            if value.starts_with('|') || value.starts_with('>') {
                block_scalar = Some(indent);
            }
        }
        previous_is_comment = false;
    }
    out
}

/// The line without its trailing comment, and whether it had one.
fn split_comment(line: &str) -> (&str, bool) {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single && prev != '\\' => double = !double,
            '#' if !single && !double && prev.is_whitespace() => {
                return (line[..i].trim_end(), true)
            }
            _ => {}
        }
        prev = c;
    }
    (line, false)
}

/// The key and value of a block mapping entry (`key: value`, `- key: value`,
/// `"quoted.key": value`), if the line holds one.
fn key_of(code: &str) -> Option<(&str, &str)> {
    let mut code = code;
    while let Some(rest) = code.strip_prefix("- ") {
        code = rest.trim_start();
    }
    let end = if let Some(q) = code.strip_prefix('"') {
        q.find('"')? + 2
    } else if code.starts_with(['[', '{', '\'', '-']) {
        return None;
    } else {
        code.find(':')?
    };
    let rest = code.get(end..)?.strip_prefix(':')?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some((&code[..end], rest.trim()))
}

#[test]
fn the_comment_checker_reads_keys_and_comments() {
    let text =
        "## a\na:\n  b: 1 # b\n  c: \"x # y\"\n\n  ## d\n  - d: |\n      e: not a key\n  f: 2\n";
    assert_eq!(uncommented_keys(text), ["4: c", "9: f"]);
}

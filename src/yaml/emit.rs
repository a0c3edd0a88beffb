//! Emit JSON values as YAML that every reader reads back the same.
//!
//! A string is written plain only when it is made of `[A-Za-z0-9_./-]`,
//! starts with a letter, `_` or `/`, and is not one of the words YAML 1.1
//! reads as a boolean or null (`yes`, `on`, `n`, ...). Anything else is
//! written as a JSON string, which is also a valid YAML double-quoted
//! scalar: quotes, newlines and `: ` inside it cannot create keys. This is
//! the only place where meshgen turns a value into YAML text.
//!
//! JSON leaves some characters raw that YAML 1.2 forbids unescaped or
//! reads as a line break: DEL, the C1 controls (U+0080–U+009F, with
//! U+0085 NEL), U+2028/U+2029, the byte-order mark and the non-characters
//! U+FFFE/U+FFFF (YAML 1.2.2 §5.1 `c-printable`, §5.4 `b-char`). Every
//! quoted string, key and flow collection goes through [`escape_json`],
//! which writes them as `\uXXXX`; a literal block is used only when the
//! string holds none of them.

use serde_json::Value;
use std::fmt::Write;

const YAML11_WORDS: &[&str] = &[
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
];

/// Whether `s` can be written without quotes.
pub fn is_plain_safe(s: &str) -> bool {
    let first_ok =
        matches!(s.bytes().next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b'/');
    first_ok
        && s.len() <= 256
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-'))
        && !YAML11_WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
}

/// Whether `c` may not appear raw in YAML text: outside `c-printable`,
/// a line break other than `\n`, or the byte-order mark.
pub fn needs_escape(c: char) -> bool {
    let printable = matches!(c, '\t' | '\n' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
    !printable || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Whether `text` is made only of printable ASCII, tabs and newlines (so
/// [`needs_escape`] names none of its characters). Checked 64 bytes at a
/// time without an early exit, which the compiler vectorizes: at 10,000
/// profiles this runs over every byte meshgen writes.
pub fn only_printable_ascii(text: &str) -> bool {
    text.as_bytes().chunks(64).all(|chunk| {
        !chunk.iter().fold(false, |bad, &b| {
            bad | ((b < 0x20 && b != b'\n' && b != b'\t') | (b >= 0x7f))
        })
    })
}

/// JSON text with every character [`needs_escape`] names written as a
/// `\uXXXX` escape (valid in a JSON, YAML or TOML string). serde_json
/// leaves such characters raw only inside strings, and all of them are in
/// the Basic Multilingual Plane, so one four-digit escape each is exact.
pub fn escape_json(json: String) -> String {
    if only_printable_ascii(&json) || !json.chars().any(needs_escape) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if needs_escape(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

fn quote(s: &str) -> String {
    // serde_json cannot fail on a string.
    escape_json(serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\"")))
}

/// A string as a YAML scalar: plain when safe, else double-quoted.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_string(&mut out, s);
    out
}

/// Append [`string`]`(s)` to `out`. Printable ASCII without a quote or a
/// backslash (most e-mail addresses, paths with `*`) is its own JSON
/// string between quotes, which [`escape_json`] leaves as it is, so it is
/// copied without building one.
pub fn push_string(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else if s
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&quote(s));
    }
}

/// [`block`] of a list of strings, written from the borrowed strings
/// without a JSON value in between: the same text.
pub fn block_of_strings(items: &[&str], indent: usize) -> String {
    if items.is_empty() {
        return "[]".into();
    }
    let mut out = String::with_capacity(items.iter().map(|s| s.len() + indent + 5).sum());
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push('\n');
            pad(&mut out, indent);
        }
        out.push_str("- ");
        push_string(&mut out, item);
    }
    out
}

/// [`block`] of a map of strings to strings, as [`block_of_strings`].
pub fn block_of_string_map(entries: &[(&str, &str)], indent: usize) -> String {
    if entries.is_empty() {
        return "{}".into();
    }
    let mut out = String::new();
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.push('\n');
            pad(&mut out, indent);
        }
        push_string(&mut out, key);
        out.push_str(": ");
        push_string(&mut out, value);
    }
    out
}

/// A number as YAML text. A float is written in the one form both YAML
/// 1.1 and 1.2 read as a float (issue 30): YAML 1.1's float needs a dot
/// and a signed exponent (`[-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?`,
/// yaml.org/type/float.html), which 1.2's core schema also reads
/// (`[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, YAML 1.2.2
/// §10.3.2); PyYAML read Rust's `1e300`, `5e-324` and `1e-5` as strings.
fn number(n: &serde_json::Number) -> String {
    if !n.is_f64() {
        return n.to_string();
    }
    let text = format!("{:?}", n.as_f64().unwrap_or(0.0));
    let (mantissa, exponent) = match text.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (text.as_str(), None),
    };
    let mut out = mantissa.to_string();
    if !out.contains('.') {
        out.push_str(".0");
    }
    if let Some(e) = exponent {
        out.push('e');
        if !e.starts_with('-') {
            out.push('+');
        }
        out.push_str(e);
    }
    out
}

/// A multi-line string as a YAML literal block scalar (`|-` or `|`), its
/// lines indented by `indent` spaces; the content cannot break out of the
/// block, since every line is indented. Falls back to a double-quoted
/// scalar when a block could not hold the string exactly (tabs, control
/// characters, trailing blanks, a leading blank, or a single line).
pub fn literal(s: &str, indent: usize) -> String {
    let fits = s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && s.chars()
            .all(|c| c == '\n' || !(c.is_control() || needs_escape(c)))
        && s.lines().all(|l| l == l.trim_end());
    if !fits {
        return quote(s);
    }
    let body = s.strip_suffix('\n').unwrap_or(s);
    if body.ends_with('\n') {
        return quote(s);
    }
    let pad = " ".repeat(indent);
    let mut out = String::from(if s.ends_with('\n') { "|" } else { "|-" });
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    out
}

/// Any value as one inline YAML node: scalars as above, maps and lists in
/// JSON flow style.
pub fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => string(s),
        Value::Array(_) | Value::Object(_) => {
            escape_json(serde_json::to_string(v).unwrap_or_else(|_| "null".into()))
        }
    }
}

fn is_collection(v: &Value) -> bool {
    match v {
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => false,
    }
}

/// A value in block style. The first line carries no indentation (the
/// caller places it); following lines are indented by `indent` spaces.
/// Empty maps and lists are `{}` and `[]`; no trailing newline.
pub fn block(v: &Value, indent: usize) -> String {
    let mut out = String::new();
    write_block(&mut out, v, indent, true);
    out
}

/// A whole YAML document ending with one newline.
pub fn document(v: &Value) -> String {
    let mut out = block(v, 0);
    out.push('\n');
    out
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_block(out: &mut String, v: &Value, indent: usize, first: bool) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (i, (k, val)) in map.iter().enumerate() {
                if i > 0 || !first {
                    out.push('\n');
                    pad(out, indent);
                }
                out.push_str(&string(k));
                out.push(':');
                write_value_after_key(out, val, indent);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 || !first {
                    out.push('\n');
                    pad(out, indent);
                }
                out.push_str("- ");
                if is_collection(item) {
                    write_block(out, item, indent + 2, true);
                } else {
                    out.push_str(&inline(item));
                }
            }
        }
        other => out.push_str(&inline(other)),
    }
}

fn write_value_after_key(out: &mut String, val: &Value, indent: usize) {
    match val {
        Value::Object(m) if !m.is_empty() => write_block(out, val, indent + 2, false),
        Value::Array(a) if !a.is_empty() => write_block(out, val, indent + 2, false),
        other => {
            let _ = write!(out, " {}", inline(other));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quotes_everything_a_yaml_reader_could_misread() {
        for s in [
            "yes", "No", "on", "OFF", "y", "true", "null", "~", "", "1.30", "010", "1_000", "0x1F",
            "-a", ".inf", "*/host", "a: b", "a\nb", "x\"", "#c", "@x", "a b", "&a", "!tag", "%x",
            "`x", "{a}", "[a]", "a,b", "=", "<<",
        ] {
            assert!(!is_plain_safe(s), "{s:?} must be quoted");
            let q = string(s);
            assert!(q.starts_with('"') && q.ends_with('"'), "{q}");
        }
        for s in [
            "deploykf-gateway",
            "docker.io/istio/pilot",
            "a.b.c",
            "/dev/stdout",
            "_x",
        ] {
            assert_eq!(string(s), s);
        }
    }

    #[test]
    fn printable_ascii_is_told_apart_from_what_needs_escaping() {
        let long = "a: b\n\tc".repeat(40);
        assert!(only_printable_ascii(&long));
        assert!(only_printable_ascii(""));
        for bad in ["\u{7f}", "\r", "\u{0}", "\u{85}", "é", "\u{2028}", "\u{1b}"] {
            let text = format!("{long}{bad}{long}");
            assert!(!only_printable_ascii(&text), "{bad:?}");
        }
        for c in (0u8..=0x7f).map(char::from) {
            assert_eq!(
                only_printable_ascii(&c.to_string()),
                !needs_escape(c),
                "{c:?}"
            );
        }
    }

    /// The borrowed-string writers are [`block`] of the same JSON, for
    /// every kind of string: plain, quoted by the shortcut, and quoted
    /// through serde_json and [`escape_json`].
    #[test]
    fn string_blocks_are_the_json_blocks() {
        let strings = [
            "a",
            "yes",
            "user@example.com",
            "*/api/kernels",
            "a\"b",
            "a\\b",
            "a\nb",
            "\u{7f}",
            "\u{85}x",
            "é",
            "",
            "{{ x }}",
            "a: b",
            "- x",
            "#c",
            "\t",
            " lead",
            "x\u{2028}",
        ];
        for indent in [0, 4, 12] {
            for n in 0..strings.len() {
                let items = &strings[..n];
                let json = Value::Array(items.iter().map(|s| json!(s)).collect());
                assert_eq!(block_of_strings(items, indent), block(&json, indent));
                let entries: Vec<(&str, &str)> = items
                    .iter()
                    .zip(items.iter().rev())
                    .map(|(k, v)| (*k, *v))
                    .collect::<std::collections::BTreeMap<_, _>>()
                    .into_iter()
                    .collect();
                let map = Value::Object(
                    entries
                        .iter()
                        .map(|(k, v)| (k.to_string(), json!(v)))
                        .collect(),
                );
                assert_eq!(block_of_string_map(&entries, indent), block(&map, indent));
            }
        }
        for s in strings {
            let slow = if is_plain_safe(s) {
                s.to_string()
            } else {
                quote(s)
            };
            assert_eq!(string(s), slow, "{s:?}");
        }
    }

    #[test]
    fn writes_nested_blocks() {
        let v =
            json!({"a": {"b": 1, "c": [1, {"d": "x y", "e": []}], "f": {}}, "g": null, "h": 1.0});
        assert_eq!(
            document(&v),
            "a:\n  b: 1\n  c:\n    - 1\n    - d: \"x y\"\n      e: []\n  f: {}\ng: null\nh: 1.0\n"
        );
        assert_eq!(
            block(&json!({"x": "1", "y": true}), 4),
            "x: \"1\"\n    \"y\": true"
        );
        assert_eq!(block(&json!({}), 4), "{}");
    }

    #[test]
    fn floats_are_written_as_yaml_1_1_and_1_2_read_floats() {
        let f = |x: f64| number(&serde_json::Number::from_f64(x).unwrap());
        assert_eq!(f(5e-324), "5.0e-324");
        assert_eq!(f(1e300), "1.0e+300");
        assert_eq!(f(1e-5), "1.0e-5");
        assert_eq!(f(2.5e20), "2.5e+20");
        assert_eq!(f(0.5), "0.5");
        assert_eq!(f(-3.0), "-3.0");
        assert_eq!(f(1e16), "1.0e+16");
    }
}

//! `--set` / `--set-string` arguments, with helm's syntax:
//!
//! - `a.b.c=v` sets one value; several are separated by commas
//!   (`a=1,b=2`); `\.`, `\,`, `\=` and `\\` escape those characters, so
//!   `annotations.example\.com/x=1` sets the key `example.com/x`.
//! - `list[2]=v` sets one list element (the list grows with nulls).
//! - `{a,b}` is a list of values.
//! - With `--set`, `true`/`false` are booleans, `null` deletes the key,
//!   integers without leading zeros are integers, everything else is a
//!   string (so `1.30` stays the string "1.30", as in helm). With
//!   `--set-string` every value is a string.

use super::path::{Segment, ValuePath};
use crate::diagnostic::Diagnostic;
use crate::source::{Origin, Pos, SourceId};
use crate::yaml::{Node, NodeKind};

/// One `path=value` of an argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub path: ValuePath,
    pub value: Node,
}

/// Split `s` at unescaped `sep` characters that are outside `{...}`,
/// keeping each piece's starting character offset.
fn split_unescaped(s: &str, sep: char, offset: usize) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = offset;
    let mut depth = 0usize;
    let mut chars = s.chars().enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some((_, n)) = chars.next() {
                    cur.push(n);
                }
            }
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            c if c == sep && depth == 0 => {
                out.push((start, std::mem::take(&mut cur)));
                start = offset + i + 1;
            }
            c => cur.push(c),
        }
    }
    out.push((start, cur));
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Find the first unescaped `=`.
fn split_assignment(s: &str) -> Option<(String, String, usize)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '=' if !escaped => {
                let col = s[..i].chars().count() + 1;
                return Some((s[..i].to_string(), s[i + 1..].to_string(), col));
            }
            _ => escaped = false,
        }
    }
    None
}

fn parse_path(key: &str) -> Result<ValuePath, String> {
    let mut path = ValuePath::root();
    if key.trim().is_empty() {
        return Err("empty key path".into());
    }
    for (_, part) in split_unescaped(key, '.', 0) {
        // `name[1][2]` → key then indexes; brackets cannot be escaped.
        let (name, mut rest) = match part.find('[') {
            Some(i) if !part[..i].ends_with('\\') => (&part[..i], &part[i..]),
            _ => (part.as_str(), ""),
        };
        if name.is_empty() {
            return Err(format!("empty key in path `{key}`"));
        }
        path.0.push(Segment::Key(unescape(name)));
        while !rest.is_empty() {
            let end = rest
                .find(']')
                .ok_or_else(|| format!("unclosed `[` in path `{key}`"))?;
            let idx: usize = rest[1..end].parse().map_err(|_| {
                format!("list index `{}` in `{key}` is not a number", &rest[1..end])
            })?;
            if idx > 10_000 {
                return Err(format!("list index {idx} in `{key}` is too large"));
            }
            path.0.push(Segment::Index(idx));
            rest = &rest[end + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(format!("unexpected `{rest}` after `]` in `{key}`"));
            }
        }
    }
    Ok(path)
}

fn typed(text: &str, force_string: bool, origin: Origin) -> Node {
    let kind = if force_string {
        NodeKind::Str(text.to_string())
    } else {
        match text {
            "true" => NodeKind::Bool(true),
            "false" => NodeKind::Bool(false),
            "null" => NodeKind::Null,
            t => {
                let digits = t.strip_prefix('-').unwrap_or(t);
                let int_like = !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && !(digits.len() > 1 && digits.starts_with('0'));
                match t.parse::<i64>() {
                    Ok(i) if int_like => NodeKind::Int(i),
                    _ => NodeKind::Str(t.to_string()),
                }
            }
        }
    };
    Node::new(kind, origin)
}

/// Parse one argument into its assignments.
pub fn parse(
    arg: &str,
    force_string: bool,
    source: SourceId,
) -> Result<Vec<Assignment>, Diagnostic> {
    let origin = |col: usize| Origin {
        source,
        pos: Pos {
            line: 1,
            col: col as u32,
        },
    };
    let mut out = Vec::new();
    for (start, part) in split_unescaped(arg, ',', 0) {
        let Some((key, raw, eq_col)) = split_assignment(&part) else {
            return Err(Diagnostic::error(format!(
                "`{part}` is not an assignment; expected PATH=VALUE, e.g. deploykf_core.deploykf_istio_gateway.gateway.hostname=ml.example.com"
            ))
            .at(Some(origin(start + 1))));
        };
        let path =
            parse_path(&key).map_err(|m| Diagnostic::error(m).at(Some(origin(start + 1))))?;
        let value_origin = origin(start + eq_col + 1);
        let value = match raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            Some(inner) if !force_string => {
                let items = if inner.is_empty() {
                    Vec::new()
                } else {
                    split_unescaped(inner, ',', 0)
                        .into_iter()
                        .map(|(_, item)| typed(&unescape(&item), false, value_origin))
                        .collect()
                };
                Node::new(NodeKind::Seq(items), value_origin)
            }
            _ => typed(&unescape(&raw), force_string, value_origin),
        };
        out.push(Assignment { path, value });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(arg: &str) -> (String, NodeKind) {
        let mut a = parse(arg, false, SourceId(0)).unwrap();
        assert_eq!(a.len(), 1);
        let a = a.remove(0);
        (a.path.to_string(), a.value.kind)
    }

    #[test]
    fn types_like_helm() {
        assert_eq!(one("a.b=1").1, NodeKind::Int(1));
        assert_eq!(one("a.b=1.30").1, NodeKind::Str("1.30".into()));
        assert_eq!(one("a.b=010").1, NodeKind::Str("010".into()));
        assert_eq!(one("a.b=true").1, NodeKind::Bool(true));
        assert_eq!(one("a.b=yes").1, NodeKind::Str("yes".into()));
        assert_eq!(one("a.b=null").1, NodeKind::Null);
        assert_eq!(one("a.b=").1, NodeKind::Str(String::new()));
        let s = parse("a=true", true, SourceId(0)).unwrap();
        assert_eq!(s[0].value.kind, NodeKind::Str("true".into()));
    }

    #[test]
    fn escapes_lists_and_indexes() {
        let (p, v) = one(r"x.annotations.example\.com/a=v\,w");
        assert_eq!(p, r#"x.annotations["example.com/a"]"#);
        assert_eq!(v, NodeKind::Str("v,w".into()));
        let (p, v) = one("a.l={1,two}");
        assert_eq!(p, "a.l");
        assert!(matches!(v, NodeKind::Seq(ref i) if i.len() == 2));
        assert_eq!(one("a.l[2].b=x").0, "a.l[2].b");
        let many = parse("a=1,b.c=2", false, SourceId(0)).unwrap();
        assert_eq!(many.len(), 2);
        assert_eq!(many[1].value.origin.pos.col, 9);
    }

    #[test]
    fn rejects_malformed_arguments() {
        for bad in ["abc", "=1", "a..b=1", "a[x]=1", "a[1=2", "a[1]b=2"] {
            assert!(parse(bad, false, SourceId(0)).is_err(), "{bad}");
        }
    }
}

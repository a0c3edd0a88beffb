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
//!
//! One argument is bound like one values file (issue 30): its paths nest
//! at most [`MAX_DEPTH`] levels (a `{...}` list is one more) and its
//! assignments create at most [`NODE_BUDGET`] nodes, counting the nulls
//! a list index pads with, so neither the merge nor the output can grow
//! past what a values file may hold.

use super::path::{Segment, ValuePath};
use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::source::{Origin, Pos, SourceId};
use crate::yaml::load::{MAX_DEPTH, NODE_BUDGET};
use crate::yaml::{Node, NodeKind};

/// The most path segments a limit error names (as the file loader's).
const MAX_SHOWN_DEPTH: usize = 12;

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

/// A malformed or too deep path: the message, the key's character
/// offset where the fault is, and (too deep) the path read so far.
struct PathError(String, usize, Option<ValuePath>);

fn parse_path(key: &str) -> Result<ValuePath, PathError> {
    let mut path = ValuePath::root();
    let fail = |m: String| Err(PathError(m, 0, None));
    let deep = |at: usize, path: &ValuePath| Err(PathError(too_deep(), at, Some(shown(path))));
    if key.trim().is_empty() {
        return fail("empty key path".into());
    }
    for (at, part) in split_unescaped(key, '.', 0) {
        if path.0.len() >= MAX_DEPTH {
            return deep(at, &path);
        }
        // `name[1][2]` → key then indexes; brackets cannot be escaped.
        let (name, mut rest) = match part.find('[') {
            Some(i) if !part[..i].ends_with('\\') => (&part[..i], &part[i..]),
            _ => (part.as_str(), ""),
        };
        if name.is_empty() {
            return fail(format!("empty key in path `{key}`"));
        }
        path.0.push(Segment::Key(unescape(name)));
        while !rest.is_empty() {
            if path.0.len() >= MAX_DEPTH {
                return deep(at, &path);
            }
            let Some(end) = rest.find(']') else {
                return fail(format!("unclosed `[` in path `{key}`"));
            };
            let Ok(idx) = rest[1..end].parse::<usize>() else {
                let m = format!("list index `{}` in `{key}` is not a number", &rest[1..end]);
                return fail(m);
            };
            if idx > 10_000 {
                return fail(format!("list index {idx} in `{key}` is too large"));
            }
            path.0.push(Segment::Index(idx));
            rest = &rest[end + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return fail(format!("unexpected `{rest}` after `]` in `{key}`"));
            }
        }
    }
    Ok(path)
}

fn too_deep() -> String {
    format!("nesting deeper than {MAX_DEPTH} levels, the limit for values files and `--set` alike")
}

/// The nodes an assignment may create: one per path segment, the nulls
/// each index pads its list with, and the value (a list and its items).
fn nodes_created(a: &Assignment) -> usize {
    let padding: usize = a
        .path
        .0
        .iter()
        .map(|s| match s {
            Segment::Index(i) => *i,
            Segment::Key(_) => 0,
        })
        .sum();
    let value = match &a.value.kind {
        NodeKind::Seq(items) => 1 + items.len(),
        _ => 1,
    };
    a.path.0.len() + padding + value
}

/// The first segments of `path`, as a limit error names it.
fn shown(path: &ValuePath) -> ValuePath {
    ValuePath(path.0.iter().take(MAX_SHOWN_DEPTH).cloned().collect())
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
    let mut nodes = 0usize;
    for (start, part) in split_unescaped(arg, ',', 0) {
        let Some((key, raw, eq_col)) = split_assignment(&part) else {
            return Err(Diagnostic::error(Code::Input, format!(
                "`{part}` is not an assignment; expected PATH=VALUE, e.g. deploykf_core.deploykf_istio_gateway.gateway.hostname=ml.example.com"
            ))
            .at(Some(origin(start + 1))));
        };
        let path = parse_path(&key).map_err(|PathError(m, at, path)| {
            let d = Diagnostic::error(Code::Input, m).at(Some(origin(start + at + 1)));
            match path {
                Some(path) => d.at_path(path),
                None => d,
            }
        })?;
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
        if matches!(value.kind, NodeKind::Seq(_)) && path.0.len() >= MAX_DEPTH {
            return Err(Diagnostic::error(Code::Input, too_deep())
                .at(Some(value_origin))
                .at_path(shown(&path)));
        }
        let assignment = Assignment { path, value };
        nodes += nodes_created(&assignment);
        if nodes > NODE_BUDGET {
            return Err(Diagnostic::error(Code::Input, format!(
                "more than {NODE_BUDGET} values (list indexes pad their lists with nulls), the limit for values files and `--set` alike"
            ))
            .at(Some(origin(start + 1)))
            .at_path(shown(&assignment.path)));
        }
        out.push(assignment);
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

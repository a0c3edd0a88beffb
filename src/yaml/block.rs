//! A fast reader for the plain block YAML meshgen writes (issue 31): at
//! 10,000 profiles a tree is 121 MB, and reading it through the event
//! parser of [`super::load`] took about 4 s of CPU before the access
//! model looked at one object.
//!
//! It reads only a narrow subset, line by line: ASCII text, block maps
//! and lists indented with spaces, comment lines, `---` between documents,
//! plain scalars without anything a reader could take for syntax, quoted
//! scalars without escapes, flat flow maps and lists of such scalars, and
//! literal block scalars (`|`, `|-`) without an indentation indicator.
//! On anything else (a tab, an anchor, a tag, a folded block, a trailing
//! comment, a multi-line scalar, a duplicate key, ...) it gives up and
//! returns `None`, and the caller loads the text with
//! [`super::load`], which also gives the errors. What it accepts, it
//! builds exactly as [`super::load::load_json_documents`] (or, with a
//! selection, [`super::load::load_selected_documents`]) would: plain
//! scalars resolve through the same [`super::load::resolve_plain`], the
//! same node budget and depth bound apply, empty documents are dropped.
//! `tests/access_parse.rs` checks that on every file of every golden tree.

use super::load::{json_scalar, resolve_non_string, Selection, MAX_DEPTH, NODE_BUDGET};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::ops::Range;

/// The documents of `text` that hold something, each in full or only the
/// parts `select` names; `None` when the text is outside the subset.
pub fn load(text: &str, select: Option<Selection>) -> Option<Vec<Value>> {
    read(text, select, None, false).map(|r| r.0)
}

/// [`load`] of a text already read in full, by this reader or the
/// loader (a file of the tree on disk that is byte for byte the render's,
/// which the check stage parsed back): a block the selection skips is
/// passed over by its indentation, unread (issue 31: `diff --access`
/// reads every file of a tree for what its objects are).
pub fn load_read(text: &str, select: Option<Selection>) -> Option<Vec<Value>> {
    read(text, select, None, true).map(|r| r.0)
}

/// The documents of `text` as [`load`] reads them with `select`, in one
/// pass: each built only in the parts `light` names (a part of
/// `select`), and written as compact JSON, the bytes `json[range]`, as
/// `serde_json` writes what [`load`] builds (issue 31: at 10,000
/// profiles, building every profile's objects in full to write them was
/// a third of the matrix's CPU).
pub fn load_split(text: &str, light: Selection, select: Selection) -> Option<Split> {
    let (docs, json, ranges) = read(text, Some(light), Some(select), false)?;
    Some(Split {
        docs: docs.into_iter().zip(ranges).collect(),
        json,
    })
}

/// What [`load_split`] reads: each document, built light, with the
/// range of its JSON in `json`.
pub struct Split {
    pub docs: Vec<(Value, Range<usize>)>,
    pub json: Vec<u8>,
}

type Read = (Vec<Value>, Vec<u8>, Vec<Range<usize>>);

fn read(text: &str, select: Option<Selection>, json: Option<Selection>, lax: bool) -> Option<Read> {
    if !printable_ascii(text.as_bytes()) {
        return None;
    }
    let mut reader = Reader {
        lines: Vec::new(),
        pos: 0,
        budget: NODE_BUDGET,
        select,
        json_select: json.unwrap_or_default(),
        json: Vec::new(),
        lax,
    };
    let mut docs = Vec::new();
    let mut ranges = Vec::new();
    let mut lines = text.split('\n').peekable();
    loop {
        reader.lines.clear();
        reader.pos = 0;
        let mut more = false;
        while let Some(line) = lines.next() {
            if line.ends_with(' ') {
                return None;
            }
            if line == "---" {
                more = true;
                break;
            }
            let body = line.trim_start_matches(' ');
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            if line.starts_with("---") || line.starts_with("...") || line.starts_with('%') {
                return None;
            }
            let indent = line.len() - body.len();
            let block = match literal_parent(indent, body) {
                None => None,
                Some(parent) => {
                    // Its lines: empty, or indented past its key or dash.
                    let mut content = Vec::new();
                    while let Some(next) = lines.next_if(|l| {
                        l.is_empty() || l.len() - l.trim_start_matches(' ').len() > parent
                    }) {
                        if next.ends_with(' ') {
                            return None;
                        }
                        content.push(next);
                    }
                    Some(literal(&content, body.ends_with('-'))?)
                }
            };
            reader.lines.push(Line {
                indent,
                text: body,
                block,
            });
        }
        if !reader.lines.is_empty() {
            let sel = match select {
                None => Sel::All,
                Some(paths) => Sel::Paths((1u64 << paths.len().min(63)) - 1),
            };
            let jsel = match json {
                None => Sel::Skip,
                Some(paths) => Sel::Paths((1u64 << paths.len().min(63)) - 1),
            };
            if reader.lines[0].text.starts_with('-') {
                return None;
            }
            let start = reader.json.len();
            let doc = reader.map(reader.lines[0].indent, 0, sel, jsel)?;
            if reader.pos != reader.lines.len() {
                return None;
            }
            docs.push(doc);
            ranges.push(start..reader.json.len());
        }
        if !more {
            return Some((docs, reader.json, ranges));
        }
    }
}

/// Only printable ASCII and line feeds. In blocks, each checked whole
/// (no early exit), which the compiler makes a vector loop (issue 31:
/// byte by byte, this check was a sixth of the reader's time).
fn printable_ascii(text: &[u8]) -> bool {
    text.chunks(64).all(|block| {
        block.iter().fold(true, |ok, &b| {
            ok & ((b == b'\n') | (b.wrapping_sub(0x20) < 0x5f))
        })
    })
}

struct Line<'a> {
    indent: usize,
    text: &'a str,
    /// The literal block scalar the line ends with (`|` or `|-`), read.
    block: Option<String>,
}

/// When the line `body` (indented `indent`) ends with a literal block
/// scalar's indicator as the value of a key or a list item, the column
/// its lines must be indented past: the key's, or the dash's.
fn literal_parent(indent: usize, body: &str) -> Option<usize> {
    let head = body
        .strip_suffix(" |")
        .or_else(|| body.strip_suffix(" |-"))?;
    let mut col = indent;
    let mut rest = head;
    let mut dash_col = None;
    while let Some(r) = rest.strip_prefix('-') {
        if !(r.is_empty() || r.starts_with(' ')) {
            break;
        }
        dash_col = Some(col);
        let after = r.trim_start_matches(' ');
        col += rest.len() - after.len();
        rest = after;
    }
    match (rest, dash_col) {
        ("", Some(dash)) => Some(dash),
        (key, _) if key.ends_with(':') && split_key(key).flatten().is_some() => Some(col),
        _ => None,
    }
}

/// The value of a literal block scalar (`|`, or `|-` when `strip`) whose
/// lines are `content` (trailing empty lines included): the indentation
/// of its first line taken off every line.
fn literal(content: &[&str], strip: bool) -> Option<String> {
    let last = content.iter().rposition(|l| !l.is_empty());
    let Some(last) = last else {
        return Some(String::new());
    };
    let lines = &content[..=last];
    let first = lines.iter().find(|l| !l.is_empty())?;
    let m = first.len() - first.trim_start_matches(' ').len();
    let mut out = String::new();
    for l in lines {
        if !l.is_empty() {
            if l.len() - l.trim_start_matches(' ').len() < m {
                return None;
            }
            out.push_str(&l[m..]);
        }
        out.push('\n');
    }
    if strip {
        out.pop();
    }
    Some(out)
}

/// What part of a node is built, as the loader's selection.
#[derive(Clone, Copy, PartialEq)]
enum Sel {
    All,
    Paths(u64),
    /// Read and checked, not built.
    Skip,
}

struct Reader<'a> {
    lines: Vec<Line<'a>>,
    pos: usize,
    budget: usize,
    select: Option<Selection>,
    /// What is written as JSON ([`load_split`]; nothing when empty).
    json_select: Selection,
    json: Vec<u8>,
    /// Skipped blocks are passed over, not read ([`load_read`]).
    lax: bool,
}

/// `a == b`, the first bytes compared before the rest (issue 31: most
/// keys a selection is asked about differ there, and a call to compare
/// the rest was a twentieth of the reader's time).
fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().first() == b.as_bytes().first() && a == b
}

/// As the loader's `child_sel`: what of the child `key` (at `depth`) of
/// a node of `sel` is built of the paths `paths`.
fn child_of(paths: Option<Selection>, sel: Sel, depth: usize, key: &str) -> Sel {
    let (Sel::Paths(mask), Some(paths)) = (sel, paths) else {
        return sel;
    };
    let mut out = 0u64;
    for (i, path) in paths.iter().enumerate().take(63) {
        if mask & (1 << i) != 0 && path.get(depth).is_some_and(|p| same_key(p, key)) {
            if path.len() == depth + 1 {
                return Sel::All;
            }
            out |= 1 << i;
        }
    }
    if out == 0 {
        Sel::Skip
    } else {
        Sel::Paths(out)
    }
}

impl<'a> Reader<'a> {
    fn spend(&mut self) -> Option<()> {
        self.budget = self.budget.checked_sub(1)?;
        Some(())
    }

    /// The child `key` of a node built `sel` and written `jsel`: how it
    /// is built, and written.
    fn child(&self, (sel, jsel): (Sel, Sel), depth: usize, key: &str) -> (Sel, Sel) {
        (
            child_of(self.select, sel, depth, key),
            child_of(Some(self.json_select), jsel, depth, key),
        )
    }

    /// Before an item written of a collection: a comma after the first.
    fn comma(&mut self, first: &mut bool) {
        if !std::mem::take(first) {
            self.json.push(b',');
        }
    }

    /// The key of an entry written, and its colon.
    fn json_key(&mut self, first: &mut bool, key: &str) -> Option<()> {
        self.comma(first);
        serde_json::to_writer(&mut self.json, key).ok()?;
        self.json.push(b':');
        Some(())
    }

    /// The block node starting at the current line, indented `indent`.
    fn node(&mut self, depth: usize, sel: Sel, jsel: Sel) -> Option<Value> {
        let line = self.lines.get(self.pos)?;
        if dash(line.text).is_some() {
            self.seq(line.indent, depth, sel, jsel)
        } else {
            self.map(line.indent, depth, sel, jsel)
        }
    }

    fn map(&mut self, indent: usize, depth: usize, sel: Sel, jsel: Sel) -> Option<Value> {
        // Short of the loader's bound, so that no scalar below is past it.
        if depth + 1 >= MAX_DEPTH {
            return None;
        }
        self.spend()?;
        let mut out = Map::new();
        let mut keys: Vec<Cow<'a, str>> = Vec::new();
        let mut first = true;
        if jsel != Sel::Skip {
            self.json.push(b'{');
        }
        while let Some(line) = self.lines.get_mut(self.pos) {
            if line.indent < indent {
                break;
            }
            if line.indent > indent || dash(line.text).is_some() {
                return None;
            }
            let block = line.block.take();
            let (key, rest) = split_key(line.text)??;
            if keys.contains(&key) {
                return None;
            }
            self.pos += 1;
            let (child, jchild) = self.child((sel, jsel), depth, &key);
            if jchild != Sel::Skip {
                self.json_key(&mut first, &key)?;
            }
            let value = if rest.is_empty() {
                if block.is_some() {
                    return None;
                }
                match self.lines.get(self.pos) {
                    Some(next)
                        if next.indent > indent
                            && self.lax
                            && child == Sel::Skip
                            && jchild == Sel::Skip =>
                    {
                        while self.lines.get(self.pos).is_some_and(|l| l.indent > indent) {
                            self.pos += 1;
                        }
                        Value::Null
                    }
                    Some(next) if next.indent > indent => self.node(depth + 1, child, jchild)?,
                    Some(next) if next.indent == indent && dash(next.text).is_some() => {
                        return None
                    }
                    _ => {
                        self.spend()?;
                        if jchild != Sel::Skip {
                            self.json.extend_from_slice(b"null");
                        }
                        Value::Null
                    }
                }
            } else {
                self.inline(rest, depth + 1, (child, jchild), block)?
            };
            if child != Sel::Skip && sel != Sel::Skip {
                out.insert(key.to_string(), value);
            }
            keys.push(key);
        }
        if jsel != Sel::Skip {
            self.json.push(b'}');
        }
        Some(Value::Object(out))
    }

    fn seq(&mut self, indent: usize, depth: usize, sel: Sel, jsel: Sel) -> Option<Value> {
        // Short of the loader's bound, so that no scalar below is past it.
        if depth + 1 >= MAX_DEPTH {
            return None;
        }
        self.spend()?;
        let (item, jitem) = self.child((sel, jsel), depth, "*");
        let mut out = Vec::new();
        let mut first = true;
        if jsel != Sel::Skip {
            self.json.push(b'[');
        }
        while let Some(line) = self.lines.get_mut(self.pos) {
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                return None;
            }
            let text = line.text;
            let rest = dash(text)?;
            if rest.is_empty() || dash(rest).is_some() {
                return None;
            }
            if jitem != Sel::Skip {
                self.comma(&mut first);
            }
            let line = &mut self.lines[self.pos];
            let value = if split_key(rest)?.is_some() {
                // `- key: value`: a map indented as its first key.
                line.indent = indent + (text.len() - rest.len());
                line.text = rest;
                let indent = line.indent;
                self.map(indent, depth + 1, item, jitem)?
            } else {
                let block = line.block.take();
                self.pos += 1;
                self.inline(rest, depth + 1, (item, jitem), block)?
            };
            if item != Sel::Skip && sel != Sel::Skip {
                out.push(value);
            }
        }
        if jsel != Sel::Skip {
            self.json.push(b']');
        }
        Some(Value::Array(out))
    }

    /// A value on the line of its key or dash: a scalar or a flat flow
    /// collection.
    fn inline(
        &mut self,
        text: &str,
        depth: usize,
        (sel, jsel): (Sel, Sel),
        block: Option<String>,
    ) -> Option<Value> {
        // Short of the loader's bound, so that no scalar below is past it.
        if depth + 1 >= MAX_DEPTH {
            return None;
        }
        self.spend()?;
        match (text, block) {
            ("|" | "|-", Some(block)) => {
                if jsel != Sel::Skip {
                    serde_json::to_writer(&mut self.json, &block).ok()?;
                }
                return Some(Value::String(block));
            }
            (_, Some(_)) | ("|" | "|-", None) => return None,
            _ => {}
        }
        let mut first = true;
        if let Some(inner) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            let mut out = Map::new();
            let mut keys: Vec<Cow<str>> = Vec::new();
            if jsel != Sel::Skip {
                self.json.push(b'{');
            }
            for item in flow_items(inner)? {
                let (key, value) = split_key(item)??;
                if keys.contains(&key) || value.is_empty() {
                    return None;
                }
                let (child, jchild) = self.child((sel, jsel), depth, &key);
                if jchild != Sel::Skip {
                    self.json_key(&mut first, &key)?;
                }
                let value = self.scalar(value, true, (child, jchild))?;
                if child != Sel::Skip && sel != Sel::Skip {
                    out.insert(key.to_string(), value);
                }
                keys.push(key);
            }
            if jsel != Sel::Skip {
                self.json.push(b'}');
            }
            return Some(Value::Object(out));
        }
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let (item, jitem) = self.child((sel, jsel), depth, "*");
            let mut out = Vec::new();
            if jsel != Sel::Skip {
                self.json.push(b'[');
            }
            for i in flow_items(inner)? {
                if jitem != Sel::Skip {
                    self.comma(&mut first);
                }
                let value = self.scalar(i, true, (item, jitem))?;
                if item != Sel::Skip && sel != Sel::Skip {
                    out.push(value);
                }
            }
            if jsel != Sel::Skip {
                self.json.push(b']');
            }
            return Some(Value::Array(out));
        }
        // The node was spent above; a scalar spends nothing more.
        self.budget += 1;
        self.scalar(text, false, (sel, jsel))
    }

    /// One scalar that is the whole of `text` (inside a flow collection
    /// when `flow`). Skipped (`sel`), it is checked the same, and not
    /// built: a selection skips most of a tree (issue 31).
    fn scalar(&mut self, text: &str, flow: bool, (sel, jsel): (Sel, Sel)) -> Option<Value> {
        self.spend()?;
        let (s, rest) = quoted(text)?;
        // The string it is; a plain scalar's other meanings are returned.
        let string = match s {
            Some(_) if !rest.is_empty() => return None,
            Some(s) => s,
            None if !plain(text, flow) => return None,
            None if sel == Sel::Skip && jsel == Sel::Skip => return Some(Value::Null),
            None => match resolve_non_string(text) {
                None => Cow::Borrowed(text),
                Some(kind) => {
                    let value = json_scalar(kind);
                    if jsel != Sel::Skip {
                        serde_json::to_writer(&mut self.json, &value).ok()?;
                    }
                    return Some(value);
                }
            },
        };
        if jsel != Sel::Skip {
            serde_json::to_writer(&mut self.json, &*string).ok()?;
        }
        Some(match sel {
            Sel::Skip => Value::Null,
            _ => Value::String(string.into_owned()),
        })
    }
}

/// After a list item's dash: the rest of the line (`None`: no dash).
fn dash(text: &str) -> Option<&str> {
    match text.strip_prefix('-')? {
        "" => Some(""),
        rest if rest.starts_with(' ') => Some(rest.trim_start_matches(' ')),
        _ => None,
    }
}

/// A quoted scalar at the start of `text` and what follows it; `(None,
/// text)` when `text` does not start with a quote; `None` for a quoted
/// scalar this reader does not take (escapes, not closed on the line).
fn quoted(text: &str) -> Option<(Option<Cow<'_, str>>, &str)> {
    if let Some(body) = text.strip_prefix('"') {
        // By bytes: the text is ASCII (issue 31: a char pattern decodes).
        let end = body.bytes().position(|b| b == b'"' || b == b'\\')?;
        if body.as_bytes()[end] != b'"' {
            return None;
        }
        return Some((Some(Cow::Borrowed(&body[..end])), &body[end + 1..]));
    }
    if let Some(body) = text.strip_prefix('\'') {
        let mut out = String::new();
        let mut rest = body;
        loop {
            let end = rest.find('\'')?;
            out.push_str(&rest[..end]);
            rest = &rest[end + 1..];
            match rest.strip_prefix('\'') {
                Some(r) => {
                    out.push('\'');
                    rest = r;
                }
                None => return Some((Some(Cow::Owned(out)), rest)),
            }
        }
    }
    Some((None, text))
}

/// A plain scalar this reader takes: nothing a YAML reader could take
/// for an indicator, a comment, a key or (`flow`) a flow separator.
fn plain(s: &str, flow: bool) -> bool {
    let b = s.as_bytes();
    let Some(first) = b.first() else {
        return false;
    };
    if b"-?:,[]{}#&*!|>'\"%@`".contains(first) || s.ends_with(':') {
        return false;
    }
    // One pass (issue 31): `: ` or (`flow`) any `:`, ` #`, or a flow
    // indicator anywhere.
    !b.iter().enumerate().any(|(i, c)| match c {
        b'{' | b'}' | b'[' | b']' | b',' => true,
        b':' => flow || b.get(i + 1) == Some(&b' '),
        b' ' => b.get(i + 1) == Some(&b'#'),
        _ => false,
    })
}

/// A plain key this reader takes.
fn plain_key(s: &str) -> bool {
    s.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
}

/// `key: rest` (or `key:`): `Some(None)` when the text is no key; `None`
/// when it is outside the subset.
fn split_key(text: &str) -> Option<Option<(Cow<'_, str>, &str)>> {
    if text.starts_with(['{', '[']) {
        return Some(None);
    }
    if let (Some(key), rest) = quoted(text)? {
        return Some(match rest.strip_prefix(':') {
            Some("") => Some((key, "")),
            Some(r) if r.starts_with(' ') => Some((key, r.trim_start_matches(' '))),
            _ => None,
        });
    }
    // The first `: `, by bytes (the text is ASCII).
    let colon = text.as_bytes().windows(2).position(|w| w == b": ");
    let (key, rest) = match colon {
        Some(i) => (&text[..i], text[i + 2..].trim_start_matches(' ')),
        None => match text.strip_suffix(':') {
            Some(k) => (k, ""),
            None => return Some(None),
        },
    };
    plain_key(key).then_some(Some((Cow::Borrowed(key), rest)))
}

/// The items of a flat flow collection's inside, split at commas (none
/// inside quotes); `None` for a nested collection.
fn flow_items(inner: &str) -> Option<Vec<&str>> {
    let inner = inner.trim_matches(' ');
    if inner.is_empty() {
        return Some(Vec::new());
    }
    let mut items = Vec::new();
    let mut start = 0;
    let mut quote = None;
    for (i, b) in inner.bytes().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if q == b => quote = None,
            (None, b'{' | b'}' | b'[' | b']') => return None,
            (None, b',') => {
                items.push(inner[start..i].trim_matches(' '));
                start = i + 1;
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return None;
    }
    items.push(inner[start..].trim_matches(' '));
    // `[a, ]` and `[a,,b]` are for the loader to judge.
    (!items.iter().any(|i| i.is_empty())).then_some(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::load::{load_json_documents, load_selected_documents};

    const SEL: Selection = &[
        &["kind"],
        &["spec", "list"],
        &["spec", "items", "*", "name"],
    ];

    /// Whatever the reader takes, it builds as the loader does.
    fn same(text: &str) -> bool {
        let Some(fast) = load(text, None) else {
            return false;
        };
        assert_eq!(fast, load_json_documents(text).unwrap(), "{text}");
        let selected = load(text, Some(SEL)).expect("selected too");
        assert_eq!(
            selected,
            load_selected_documents(text, SEL).unwrap(),
            "{text}"
        );
        // A text read before: what the selection skips is passed over,
        // and the rest is the same.
        assert_eq!(load_read(text, Some(SEL)), Some(selected.clone()), "{text}");
        // Read in one pass light and written: the light documents are
        // those of the light selection, the JSON that of the selection's.
        for (light, select) in [(LIGHT, SEL), (SEL, SEL), (LIGHT, ALL)] {
            let split = load_split(text, light, select).expect("split too");
            let built: Vec<&Value> = split.docs.iter().map(|(d, _)| d).collect();
            let want = load(text, Some(light)).unwrap();
            assert_eq!(built, want.iter().collect::<Vec<_>>(), "{text}");
            let written: Vec<&[u8]> = (split.docs.iter())
                .map(|(_, r)| &split.json[r.clone()])
                .collect();
            let want: Vec<Vec<u8>> = (load(text, Some(select)).unwrap().iter())
                .map(|d| serde_json::to_vec(d).unwrap())
                .collect();
            assert_eq!(
                written,
                want.iter().map(Vec::as_slice).collect::<Vec<_>>(),
                "{text}"
            );
        }
        true
    }

    #[test]
    fn printable_ascii_is_the_bytes_from_space_to_tilde_and_line_feeds() {
        for b in 0..=255u8 {
            let ok = b == b'\n' || (b' '..=b'~').contains(&b);
            for at in [0, 63, 64, 100] {
                let mut text = vec![b'a'; 130];
                text[at] = b;
                assert_eq!(printable_ascii(&text), ok, "{b:#x} at {at}");
            }
        }
        assert!(printable_ascii(b""));
    }

    /// A part of [`SEL`], and a selection of every key of the texts.
    const LIGHT: Selection = &[&["kind"], &["spec", "list"]];
    const ALL: Selection = &[
        &["kind"],
        &["other"],
        &["spec"],
        &["a"],
        &["b"],
        &["c"],
        &["d"],
        &["e"],
        &["f"],
        &["g"],
        &["h"],
        &["i"],
        &["j"],
        &["k"],
        &["l"],
        &["metadata"],
        &["rules"],
        &["data"],
        &["list"],
    ];

    #[test]
    fn reads_what_meshgen_writes_as_the_loader_does() {
        for text in [
            "kind: A\nother: {x: 1}\nspec:\n  list: [1, b]\n  items:\n    - {name: n, skip: s}\n    - skip: t\n      name: u\n  rest: r\n---\nkind: B\n",
            "## c\n---\na: 1\nb: 2\nc: 0.5\nd: true\ne: null\nf: ~\ng:\nh: 010\ni: \"x: y\"\nj: 'it''s'\nk: []\nl: {}\n---\n",
            "a:\n  - x\n  -   y: 1\n      z: [\"q\", 'r']\n",
            "metadata:\n  labels:\n    app.kubernetes.io/name: x\n  \"quoted key\": v\nrules:\n  - from:\n      - source:\n          principals:\n            - cluster.local/ns/a/sa/b\n    to:\n      - operation:\n          paths:\n            - \"/notebook/a/*\"\n",
        ] {
            assert!(same(text), "{text}");
        }
        assert!(same("a: 1\n"));
        assert!(same(
            "data:\n  deployment: |\n    spec:\n\n      # not a comment\n    x: 1\n\n  b: |-\n    one\n    two\n  c: |\n\n  d: 1\nlist:\n  - |\n    item\n  - k: |\n      v\n    j: 2\n"
        ));
        assert!(same("spec:\n  items:\n    - {name: n, skip: s}\n"));
    }

    #[test]
    fn gives_up_outside_the_subset() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: |+\n  x\n",
            "a: >\n  x\n",
            "a: |\n  x\n y\n",
            "a: 1 # c\n",
            "a: 1\na: 2\n",
            "a:\n- 1\n",
            "a: \"x\\ty\"\n",
            "a:\tb\n",
            "a: b\n  c\n",
            "a: {b: {c: 1}}\n",
            "- a\n",
            "a: caf\u{e9}\n",
            "a: 1 \n",
            "? a\n: b\n",
            "a: [1, , 2]\n",
            "a:\n  - - x\n",
            "a: -1\n",
            "a: \"open\n",
        ] {
            assert_eq!(load(text, None), None, "{text}");
            // A part the selection skips is checked as strictly: not
            // built is not unread (a list is no document of its own,
            // but is a value).
            if text.starts_with("- ") {
                continue;
            }
            let skipped = format!("kind: K\nskipped:\n{}", indent(text));
            assert_eq!(load(&skipped, Some(SEL)), None, "{skipped}");
        }
    }

    /// `plain` and `split_key` in one pass each (issue 31) decide as the
    /// plain reading of their rules: every string of up to 5 characters
    /// over the characters that matter.
    #[test]
    fn one_pass_checks_decide_as_the_rules_say() {
        let reference = |s: &str, flow: bool| {
            let Some(first) = s.bytes().next() else {
                return false;
            };
            !(b"-?:,[]{}#&*!|>'\"%@`".contains(&first)
                || s.ends_with(':')
                || s.contains(": ")
                || s.contains(" #")
                || s.bytes().any(|b| b"{}[],".contains(&b))
                || (flow && s.contains(':')))
        };
        let chars = ['a', ':', ' ', '#', '{', ',', ']', '-', '\''];
        let mut strings = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = (strings.iter())
                .flat_map(|s| chars.iter().map(move |c| format!("{s}{c}")))
                .collect();
            strings.extend(longer);
            strings.sort();
            strings.dedup();
        }
        for s in &strings {
            for flow in [false, true] {
                assert_eq!(plain(s, flow), reference(s, flow), "{s:?} {flow}");
            }
            let key = match s.find(": ") {
                Some(i) => Some(&s[..i]),
                None => s.strip_suffix(':'),
            };
            if let (Some(Some((k, _))), false) =
                (split_key(s), s.starts_with(['"', '\'', '{', '[']))
            {
                assert_eq!(Some(&*k), key, "{s:?}");
            }
        }
    }

    /// Passed over by its indentation, a skipped block of a text read
    /// before is not read: what is selected is the loader's.
    #[test]
    fn a_text_read_before_is_passed_over_where_skipped() {
        let text =
            "kind: K\nskipped:\n  c: >\n    folded\n  d: 1 # a comment\n  e: \"tab\\there\"\nspec:\n  list: [1, b]\n";
        assert_eq!(load(text, Some(SEL)), None, "outside the subset, read");
        let read = load_read(text, Some(SEL)).unwrap();
        assert_eq!(read, load_selected_documents(text, SEL).unwrap());
        assert_eq!(
            read,
            vec![serde_json::json!({"kind": "K", "spec": {"list": [1, "b"]}})]
        );
    }

    fn indent(text: &str) -> String {
        text.lines().map(|l| format!("  {l}\n")).collect()
    }
}

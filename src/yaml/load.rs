//! Position-tracking YAML 1.2 loader on top of `saphyr-parser`'s event
//! stream.
//!
//! Scalars resolve by the YAML 1.2 core schema with two deliberate
//! differences: numbers with leading zeros (`010`) and underscores stay
//! strings (YAML 1.1 readers disagree on them), and `.inf`/`.nan` stay
//! strings (JSON cannot hold them). YAML 1.1 booleans such as `yes` are
//! strings here, as in YAML 1.2; the schema stage turns "expected a boolean,
//! got the string yes" into a hint.
//!
//! The loader rejects what silently changes meaning elsewhere: duplicate
//! keys, non-scalar keys, unknown tags. Alias expansion is budgeted so a
//! "billion laughs" document fails instead of exhausting memory.

use crate::source::{Origin, Pos, SourceId};
use indexmap::IndexMap;
use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use std::borrow::Cow;
use std::collections::HashMap;

/// Upper bound on nodes built from one input, aliases included.
const NODE_BUDGET: usize = 2_000_000;
/// Upper bound on nesting depth.
const MAX_DEPTH: usize = 200;

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(IndexMap<String, Entry>),
}

/// A map entry: the key's own position and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key_origin: Origin,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub origin: Origin,
    /// Source text of a plain (unquoted) scalar, for hints such as
    /// "`1.30` was read as the number 1.3".
    pub plain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub message: String,
    pub origin: Origin,
}

impl Node {
    pub fn new(kind: NodeKind, origin: Origin) -> Self {
        Node {
            kind,
            origin,
            plain: None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    /// A short name of the node's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "boolean",
            NodeKind::Int(_) => "integer",
            NodeKind::Float(_) => "number",
            NodeKind::Str(_) => "string",
            NodeKind::Seq(_) => "list",
            NodeKind::Map(_) => "map",
        }
    }

    /// Convert to JSON (the shape the schema validator and templates use).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(map) => Value::Object(
                map.iter()
                    .map(|(k, e)| (k.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line() as u32,
        col: span.start.col() as u32 + 1,
    }
}

/// Parse every document of `text`. An empty document (a file holding only
/// comments, or nothing) is `None`.
pub fn load_documents(text: &str, source: SourceId) -> Result<Vec<Option<Node>>, LoadError> {
    let mut loader = Loader {
        parser: Parser::new_from_str(text),
        source,
        anchors: HashMap::new(),
        budget: NODE_BUDGET,
    };
    loader.stream()
}

struct Loader<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    source: SourceId,
    anchors: HashMap<usize, Node>,
    budget: usize,
}

impl<'a> Loader<'a> {
    fn origin(&self, pos: Pos) -> Origin {
        Origin {
            source: self.source,
            pos,
        }
    }

    fn err(&self, pos: Pos, message: impl Into<String>) -> LoadError {
        LoadError {
            message: message.into(),
            origin: self.origin(pos),
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Pos), LoadError> {
        match self.parser.next_event() {
            Some(Ok((event, span))) => Ok((event, pos_of(&span))),
            Some(Err(e)) => {
                let m = e.marker();
                Err(self.err(
                    Pos {
                        line: m.line() as u32,
                        col: m.col() as u32 + 1,
                    },
                    format!("invalid YAML: {}", e.info()),
                ))
            }
            None => Err(self.err(Pos::default(), "invalid YAML: unexpected end of input")),
        }
    }

    fn stream(&mut self) -> Result<Vec<Option<Node>>, LoadError> {
        let mut docs = Vec::new();
        loop {
            let (event, pos) = self.next()?;
            match event {
                Event::StreamStart | Event::Nothing => {}
                Event::StreamEnd => return Ok(docs),
                Event::DocumentStart(_) => {
                    self.anchors.clear();
                    let (event, pos) = self.next()?;
                    if let Event::DocumentEnd = event {
                        docs.push(None);
                        continue;
                    }
                    let node = self.node(event, pos, 0)?;
                    // An empty document parses as one empty plain scalar.
                    let empty = node.is_null() && node.plain.as_deref() == Some("");
                    docs.push(if empty { None } else { Some(node) });
                    match self.next()? {
                        (Event::DocumentEnd, _) => {}
                        (_, pos) => {
                            return Err(self.err(pos, "invalid YAML: expected end of document"))
                        }
                    }
                }
                _ => return Err(self.err(pos, "invalid YAML: unexpected event")),
            }
        }
    }

    fn spend(&mut self, n: usize, pos: Pos) -> Result<(), LoadError> {
        if self.budget < n {
            return Err(self.err(
                pos,
                "document too large (alias expansion exceeds the node budget)",
            ));
        }
        self.budget -= n;
        Ok(())
    }

    fn node(&mut self, event: Event<'a>, pos: Pos, depth: usize) -> Result<Node, LoadError> {
        if depth > MAX_DEPTH {
            return Err(self.err(pos, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.spend(1, pos)?;
        let origin = self.origin(pos);
        let (node, anchor) = match event {
            Event::Scalar(value, style, anchor, tag) => {
                (self.scalar(value, style, tag.as_deref(), pos)?, anchor)
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| self.err(pos, "alias to an unknown anchor"))?;
                self.spend(count_nodes(&node), pos)?;
                // The alias is "set" where it is used.
                return Ok(node);
            }
            Event::SequenceStart(anchor, tag) => {
                self.check_collection_tag(tag.as_deref(), "seq", pos)?;
                let mut items = Vec::new();
                loop {
                    let (event, pos) = self.next()?;
                    if let Event::SequenceEnd = event {
                        break;
                    }
                    items.push(self.node(event, pos, depth + 1)?);
                }
                (Node::new(NodeKind::Seq(items), origin), anchor)
            }
            Event::MappingStart(anchor, tag) => {
                self.check_collection_tag(tag.as_deref(), "map", pos)?;
                let mut map: IndexMap<String, Entry> = IndexMap::new();
                loop {
                    let (event, key_pos) = self.next()?;
                    if let Event::MappingEnd = event {
                        break;
                    }
                    let key = match event {
                        Event::Scalar(value, _, _, _) => value.into_owned(),
                        Event::Alias(_) => {
                            return Err(self.err(key_pos, "an alias cannot be used as a map key"))
                        }
                        _ => {
                            return Err(self
                                .err(key_pos, "map keys must be plain strings, not lists or maps"))
                        }
                    };
                    let (event, pos) = self.next()?;
                    let value = self.node(event, pos, depth + 1)?;
                    if let Some(first) = map.get(&key) {
                        return Err(self.err(
                            key_pos,
                            format!(
                                "duplicate key `{}` (first set on line {})",
                                key, first.key_origin.pos.line
                            ),
                        ));
                    }
                    map.insert(
                        key,
                        Entry {
                            key_origin: self.origin(key_pos),
                            value,
                        },
                    );
                }
                (Node::new(NodeKind::Map(map), origin), anchor)
            }
            _ => return Err(self.err(pos, "invalid YAML: unexpected event")),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn check_collection_tag(
        &self,
        tag: Option<&Tag>,
        want: &str,
        pos: Pos,
    ) -> Result<(), LoadError> {
        match tag {
            None => Ok(()),
            Some(t) if is_core(t) && t.suffix == want => Ok(()),
            Some(t) => Err(self.err(
                pos,
                format!("unsupported YAML tag `{}{}`", t.handle, t.suffix),
            )),
        }
    }

    fn scalar(
        &self,
        value: Cow<'a, str>,
        style: ScalarStyle,
        tag: Option<&Tag>,
        pos: Pos,
    ) -> Result<Node, LoadError> {
        let origin = self.origin(pos);
        let text = value.into_owned();
        if let Some(t) = tag {
            let core = is_core(t);
            let kind = match (core, t.handle.as_str(), t.suffix.as_str()) {
                (true, _, "str") | (false, "!", "") => NodeKind::Str(text),
                (true, _, "int" | "float" | "bool" | "null") => {
                    let kind = resolve_plain(&text);
                    let ok = matches!(
                        (t.suffix.as_str(), &kind),
                        ("int", NodeKind::Int(_))
                            | ("float", NodeKind::Float(_) | NodeKind::Int(_))
                            | ("bool", NodeKind::Bool(_))
                            | ("null", NodeKind::Null)
                    );
                    if !ok {
                        return Err(
                            self.err(pos, format!("`{text}` is not a valid !!{}", t.suffix))
                        );
                    }
                    match kind {
                        NodeKind::Int(i) if t.suffix == "float" => NodeKind::Float(i as f64),
                        k => k,
                    }
                }
                _ => {
                    return Err(self.err(
                        pos,
                        format!("unsupported YAML tag `{}{}`", t.handle, t.suffix),
                    ))
                }
            };
            return Ok(Node::new(kind, origin));
        }
        if style != ScalarStyle::Plain {
            return Ok(Node::new(NodeKind::Str(text), origin));
        }
        let mut node = Node::new(resolve_plain(&text), origin);
        node.plain = Some(text);
        Ok(node)
    }
}

/// `!!x` and its expanded form `tag:yaml.org,2002:x`.
fn is_core(t: &Tag) -> bool {
    t.handle == "!!" || t.handle == "tag:yaml.org,2002:"
}

fn count_nodes(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeKind::Map(map) => 1 + map.values().map(|e| count_nodes(&e.value)).sum::<usize>(),
        _ => 1,
    }
}

/// Resolve a plain scalar (see the module comment for the rules).
pub fn resolve_plain(s: &str) -> NodeKind {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return NodeKind::Null,
        "true" | "True" | "TRUE" => return NodeKind::Bool(true),
        "false" | "False" | "FALSE" => return NodeKind::Bool(false),
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if let Some(oct) = s.strip_prefix("0o") {
        if !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            if let Ok(i) = i64::from_str_radix(oct, 8) {
                return NodeKind::Int(i);
            }
        }
        return NodeKind::Str(s.to_string());
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Ok(i) = i64::from_str_radix(hex, 16) {
                return NodeKind::Int(i);
            }
        }
        return NodeKind::Str(s.to_string());
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let leading_zero = digits.len() > 1 && digits.starts_with('0');
        if !leading_zero {
            if let Ok(i) = s.parse::<i64>() {
                return NodeKind::Int(i);
            }
        }
        return NodeKind::Str(s.to_string());
    }
    if is_core_float(digits) {
        let int_part = digits.split(['.', 'e', 'E']).next().unwrap_or("");
        let leading_zero = int_part.len() > 1 && int_part.starts_with('0');
        if !leading_zero {
            if let Ok(f) = s.parse::<f64>() {
                if f.is_finite() {
                    return NodeKind::Float(f);
                }
            }
        }
    }
    NodeKind::Str(s.to_string())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, sign already stripped.
fn is_core_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((a, b)) => {
            (!a.is_empty() || !b.is_empty())
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
                && !(a.is_empty() && b.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = match exp {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
        }
    };
    mantissa_ok && exp_ok && mantissa != "."
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        load_documents(text, SourceId(0))
            .unwrap()
            .remove(0)
            .unwrap()
    }

    fn map(n: &Node) -> &IndexMap<String, Entry> {
        match &n.kind {
            NodeKind::Map(m) => m,
            k => panic!("not a map: {k:?}"),
        }
    }

    #[test]
    fn resolves_core_schema_and_keeps_traps_as_strings() {
        assert_eq!(resolve_plain("yes"), NodeKind::Str("yes".into()));
        assert_eq!(resolve_plain("on"), NodeKind::Str("on".into()));
        assert_eq!(resolve_plain("True"), NodeKind::Bool(true));
        assert_eq!(resolve_plain("~"), NodeKind::Null);
        assert_eq!(resolve_plain("010"), NodeKind::Str("010".into()));
        assert_eq!(resolve_plain("1_000"), NodeKind::Str("1_000".into()));
        assert_eq!(resolve_plain("0"), NodeKind::Int(0));
        assert_eq!(resolve_plain("-12"), NodeKind::Int(-12));
        assert_eq!(resolve_plain("0x1F"), NodeKind::Int(31));
        assert_eq!(resolve_plain("1.30"), NodeKind::Float(1.3));
        assert_eq!(resolve_plain("1.30.3"), NodeKind::Str("1.30.3".into()));
        assert_eq!(resolve_plain(".inf"), NodeKind::Str(".inf".into()));
        assert_eq!(resolve_plain("1e3"), NodeKind::Float(1000.0));
        assert_eq!(resolve_plain("."), NodeKind::Str(".".into()));
        assert_eq!(
            resolve_plain("99999999999999999999"),
            NodeKind::Str("99999999999999999999".into())
        );
    }

    #[test]
    fn records_positions_of_keys_and_values() {
        let n = one("a:\n  bb: 1\n  c: \"x\"\n");
        let a = &map(&n)["a"];
        assert_eq!(a.key_origin.pos, Pos { line: 1, col: 1 });
        let bb = &map(&a.value)["bb"];
        assert_eq!(bb.key_origin.pos, Pos { line: 2, col: 3 });
        assert_eq!(bb.value.origin.pos, Pos { line: 2, col: 7 });
        assert_eq!(bb.value.plain.as_deref(), Some("1"));
        assert_eq!(map(&a.value)["c"].value.plain, None);
    }

    #[test]
    fn rejects_duplicate_keys_with_both_lines() {
        let e = load_documents("a: 1\nb: 2\na: 3\n", SourceId(0)).unwrap_err();
        assert_eq!(e.origin.pos.line, 3);
        assert!(
            e.message
                .contains("duplicate key `a` (first set on line 1)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn empty_documents_are_none() {
        assert_eq!(load_documents("", SourceId(0)).unwrap(), vec![]);
        assert_eq!(
            load_documents("# only a comment\n", SourceId(0)).unwrap(),
            vec![]
        );
        let docs = load_documents("---\n---\na: 1\n", SourceId(0)).unwrap();
        assert_eq!(docs.len(), 2);
        assert!(docs[0].is_none());
    }

    #[test]
    fn quoted_and_tagged_scalars_are_strings() {
        let n = one("a: \"true\"\nb: !!str 10\nc: '1.30'\n");
        let m = map(&n);
        assert_eq!(m["a"].value.kind, NodeKind::Str("true".into()));
        assert_eq!(m["b"].value.kind, NodeKind::Str("10".into()));
        assert_eq!(m["c"].value.kind, NodeKind::Str("1.30".into()));
    }

    #[test]
    fn alias_bombs_fail_instead_of_exploding() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = load_documents(&text, SourceId(0)).unwrap_err();
        assert!(e.message.contains("node budget"), "{}", e.message);
    }

    #[test]
    fn malformed_yaml_reports_a_position() {
        let e = load_documents("a: [1, 2\nb: 3\n", SourceId(0)).unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{}", e.message);
        assert!(e.origin.pos.line >= 1);
        assert!(load_documents("a: !custom x\n", SourceId(0)).is_err());
        assert!(load_documents("? [a]\n: 1\n", SourceId(0)).is_err());
    }
}

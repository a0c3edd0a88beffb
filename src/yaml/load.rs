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
pub const NODE_BUDGET: usize = 2_000_000;
/// Upper bound on nesting depth.
pub const MAX_DEPTH: usize = 200;
/// Lists at least this long are converted to JSON on all cores.
const PARALLEL_ITEMS: usize = 1024;

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
    /// Whether the scalar was plain (unquoted), for hints such as
    /// "`1.30` was read as the number 1.3": see [`Node::plain_text`].
    pub plain: Option<Plain>,
}

/// The source text of a plain scalar.
#[derive(Debug, Clone, PartialEq)]
pub enum Plain {
    /// The text is the string value itself (not copied).
    AsString,
    /// The text of a plain scalar read as null, a boolean or a number.
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub message: String,
    pub origin: Origin,
    /// The keys and list indexes leading to where the error is, from the
    /// document's root (empty at the root or between documents).
    pub path: Vec<PathSeg>,
}

/// One step of [`LoadError::path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

impl Node {
    pub fn new(kind: NodeKind, origin: Origin) -> Self {
        Node {
            kind,
            origin,
            plain: None,
        }
    }

    /// The source text of a plain (unquoted) scalar.
    pub fn plain_text(&self) -> Option<&str> {
        match (&self.plain, &self.kind) {
            (Some(Plain::Text(t)), _) => Some(t),
            (Some(Plain::AsString), NodeKind::Str(s)) => Some(s),
            _ => None,
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
            // A long list (10,000 profiles) converts on all cores, in order.
            NodeKind::Seq(items) if items.len() >= PARALLEL_ITEMS => {
                use rayon::prelude::*;
                Value::Array(
                    items
                        .par_iter()
                        .with_min_len(PARALLEL_ITEMS / 4)
                        .map(Node::to_json)
                        .collect(),
                )
            }
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
    super::measure::check_expansion(text, source)?;
    Loader::new(text, source, NodeBuilder).stream()
}

/// Parse every non-empty document of `text` straight into JSON, without
/// positions: the fast path for checking meshgen's own output. Same
/// grammar and the same refusals (duplicate keys, tags, alias bombs).
pub fn load_json_documents(text: &str) -> Result<Vec<serde_json::Value>, LoadError> {
    super::measure::check_expansion(text, SourceId(0))?;
    let docs = Loader::new(text, SourceId(0), JsonBuilder).stream()?;
    Ok(docs.into_iter().flatten().flatten().collect())
}

/// Key paths of a document to build; `*` matches any list item. A path
/// that matches in full keeps the whole value below it.
pub type Selection = &'static [&'static [&'static str]];

/// Like [`load_json_documents`], but builds only the parts of each document
/// that `select` names (each document is still a map or value at its root):
/// the rest is parsed and checked exactly as strictly (tags, duplicate keys,
/// depth) but never built, which makes checking large output much cheaper.
/// A stream holding anchors or aliases is loaded in full and then reduced,
/// so an alias never points into a part that was not built.
pub fn load_selected_documents(
    text: &str,
    select: Selection,
) -> Result<Vec<serde_json::Value>, LoadError> {
    let mut loader = Loader::new(text, SourceId(0), JsonBuilder);
    loader.select = Some(select);
    match loader.stream() {
        Err(_) if loader.saw_anchor => load_json_documents(text),
        docs => Ok(docs?.into_iter().flatten().flatten().collect()),
    }
}

/// What part of a node the loader builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sel {
    /// The whole node.
    All,
    /// Only the children on the selection paths with these bits set.
    Paths(u64),
}

/// The keys of one map not being built, to refuse duplicates: they sit on
/// the loader's shared key stack from `base` on, or in `many` once the map
/// grows past a few keys. No allocation per map.
struct KeyScope<'a> {
    base: usize,
    many: Option<std::collections::HashSet<Cow<'a, str>>>,
}

/// Keys a map may hold before its duplicate check switches to hashing.
const FEW_KEYS: usize = 16;

/// What the loader builds from events: position-carrying [`Node`]s, or
/// plain JSON.
trait Build {
    /// Keep the source text of plain scalars (for hints).
    const KEEP_PLAIN: bool;
    type Out: Clone;
    type Map;
    fn scalar(&self, kind: NodeKind, origin: Origin, plain: Option<Plain>) -> Self::Out;
    fn seq(&self, items: Vec<Self::Out>, origin: Origin) -> Self::Out;
    fn map(&self) -> Self::Map;
    /// Insert; on a duplicate key, the key and the line of the first one
    /// if known.
    fn insert(
        &self,
        map: &mut Self::Map,
        key: String,
        key_origin: Origin,
        value: Self::Out,
    ) -> Result<(), (String, Option<u32>)>;
    fn finish(&self, map: Self::Map, origin: Origin) -> Self::Out;
    /// An empty document parses as one empty plain scalar.
    fn is_empty_doc(&self, out: &Self::Out) -> bool;
}

struct NodeBuilder;

impl Build for NodeBuilder {
    const KEEP_PLAIN: bool = true;
    type Out = Node;
    type Map = IndexMap<String, Entry>;
    fn scalar(&self, kind: NodeKind, origin: Origin, plain: Option<Plain>) -> Node {
        Node {
            kind,
            origin,
            plain,
        }
    }
    // Values trees live through validation: trim the spare capacity of
    // their (mostly tiny) lists and maps, which otherwise doubles their size.
    fn seq(&self, mut items: Vec<Node>, origin: Origin) -> Node {
        items.shrink_to_fit();
        Node::new(NodeKind::Seq(items), origin)
    }
    fn map(&self) -> Self::Map {
        IndexMap::new()
    }
    fn insert(
        &self,
        map: &mut Self::Map,
        key: String,
        key_origin: Origin,
        value: Node,
    ) -> Result<(), (String, Option<u32>)> {
        if let Some(first) = map.get(&key) {
            let line = first.key_origin.pos.line;
            return Err((key, Some(line)));
        }
        map.insert(key, Entry { key_origin, value });
        Ok(())
    }
    fn finish(&self, mut map: Self::Map, origin: Origin) -> Node {
        map.shrink_to_fit();
        Node::new(NodeKind::Map(map), origin)
    }
    fn is_empty_doc(&self, out: &Node) -> bool {
        out.is_null() && out.plain_text() == Some("")
    }
}

struct JsonBuilder;

/// A resolved scalar as JSON (a float JSON cannot hold is null).
pub(crate) fn json_scalar(kind: NodeKind) -> serde_json::Value {
    use serde_json::Value;
    match kind {
        NodeKind::Null => Value::Null,
        NodeKind::Bool(b) => Value::Bool(b),
        NodeKind::Int(i) => Value::from(i),
        NodeKind::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        NodeKind::Str(s) => Value::String(s),
        NodeKind::Seq(_) | NodeKind::Map(_) => Value::Null,
    }
}

impl Build for JsonBuilder {
    const KEEP_PLAIN: bool = false;
    type Out = Option<serde_json::Value>;
    type Map = serde_json::Map<String, serde_json::Value>;
    fn scalar(&self, kind: NodeKind, _: Origin, _: Option<Plain>) -> Self::Out {
        Some(json_scalar(kind))
    }
    fn seq(&self, items: Vec<Self::Out>, _: Origin) -> Self::Out {
        Some(serde_json::Value::Array(
            items
                .into_iter()
                .map(|i| i.unwrap_or(serde_json::Value::Null))
                .collect(),
        ))
    }
    fn map(&self) -> Self::Map {
        serde_json::Map::new()
    }
    fn insert(
        &self,
        map: &mut Self::Map,
        key: String,
        _: Origin,
        value: Self::Out,
    ) -> Result<(), (String, Option<u32>)> {
        if map.contains_key(&key) {
            return Err((key, None));
        }
        map.insert(key, value.unwrap_or(serde_json::Value::Null));
        Ok(())
    }
    fn finish(&self, map: Self::Map, _: Origin) -> Self::Out {
        Some(serde_json::Value::Object(map))
    }
    fn is_empty_doc(&self, out: &Self::Out) -> bool {
        // A bare null document holds nothing a manifest check could use.
        matches!(out, None | Some(serde_json::Value::Null))
    }
}

struct Loader<'a, B: Build> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    source: SourceId,
    /// Each anchored node with its size in nodes (what an alias to it
    /// spends, before it is copied).
    anchors: HashMap<usize, (B::Out, usize)>,
    budget: usize,
    build: B,
    /// Build only these paths (see [`load_selected_documents`]).
    select: Option<Selection>,
    /// An anchor or alias was met while selecting: the caller loads the
    /// stream in full instead.
    saw_anchor: bool,
    /// Keys of the maps being skipped, innermost last (see [`KeyScope`]).
    key_stack: Vec<Cow<'a, str>>,
    /// Where the loader is, for error messages: the key or list index of
    /// each node being read, outermost first.
    at: Vec<At<'a>>,
    /// An alias was expanded (names the cause when the budget runs out).
    expanded_alias: bool,
}

#[derive(Clone)]
enum At<'a> {
    Key(Cow<'a, str>),
    Index(usize),
}

impl<'a, B: Build> Loader<'a, B> {
    fn new(text: &'a str, source: SourceId, build: B) -> Self {
        Loader {
            parser: Parser::new_from_str(text),
            source,
            anchors: HashMap::new(),
            budget: NODE_BUDGET,
            build,
            select: None,
            saw_anchor: false,
            key_stack: Vec::new(),
            at: Vec::new(),
            expanded_alias: false,
        }
    }

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
            path: self
                .at
                .iter()
                .map(|a| match a {
                    At::Key(k) => PathSeg::Key(k.to_string()),
                    At::Index(i) => PathSeg::Index(*i),
                })
                .collect(),
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

    fn stream(&mut self) -> Result<Vec<Option<B::Out>>, LoadError> {
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
                    let sel = match self.select {
                        None => Sel::All,
                        Some(paths) => Sel::Paths((1u64 << paths.len().min(63)) - 1),
                    };
                    let node = self.node(event, pos, 0, sel)?;
                    let empty = self.build.is_empty_doc(&node);
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
            let why = if self.expanded_alias {
                "aliases expand it to"
            } else {
                "it has"
            };
            return Err(self.err(
                pos,
                format!("document too large: {why} more than {NODE_BUDGET} nodes (keys, values and list items), the limit for one input"),
            ));
        }
        self.budget -= n;
        Ok(())
    }

    /// The selection of a child at `depth` (its parent's depth) under `key`
    /// (`*` for a list item); `None` when it is not built.
    fn child_sel(&self, sel: Sel, depth: usize, key: &str) -> Option<Sel> {
        let (Sel::Paths(mask), Some(paths)) = (sel, self.select) else {
            return Some(Sel::All);
        };
        let mut out = 0u64;
        for (i, path) in paths.iter().enumerate().take(63) {
            if mask & (1 << i) != 0 && path.get(depth) == Some(&key) {
                if path.len() == depth + 1 {
                    return Some(Sel::All);
                }
                out |= 1 << i;
            }
        }
        (out != 0).then_some(Sel::Paths(out))
    }

    fn key_scope(&self) -> KeyScope<'a> {
        KeyScope {
            base: self.key_stack.len(),
            many: None,
        }
    }

    /// Remember `key` in `scope`; gives it back when the map already has it.
    fn remember_key(
        &mut self,
        scope: &mut KeyScope<'a>,
        key: Cow<'a, str>,
    ) -> Result<(), Cow<'a, str>> {
        if let Some(many) = scope.many.as_mut() {
            if many.contains(&key) {
                return Err(key);
            }
            many.insert(key);
            return Ok(());
        }
        if self.key_stack[scope.base..].contains(&key) {
            return Err(key);
        }
        self.key_stack.push(key);
        if self.key_stack.len() - scope.base > FEW_KEYS {
            scope.many = Some(self.key_stack.drain(scope.base..).collect());
        }
        Ok(())
    }

    fn end_scope(&mut self, scope: KeyScope<'a>) {
        self.key_stack.truncate(scope.base);
    }

    /// A refusal that only means "load this stream in full".
    fn anchor_met(&mut self, pos: Pos) -> LoadError {
        self.saw_anchor = true;
        self.err(pos, "anchor or alias while selecting")
    }

    /// Parse and check a node exactly as [`Self::node`] does, building
    /// nothing. Only used while selecting.
    fn skip(&mut self, event: Event<'a>, pos: Pos, depth: usize) -> Result<(), LoadError> {
        if depth > MAX_DEPTH {
            return Err(self.err(pos, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.spend(1, pos)?;
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                if anchor != 0 {
                    return Err(self.anchor_met(pos));
                }
                if tag.is_some() {
                    self.scalar(value, style, tag.as_deref(), pos)?;
                }
            }
            Event::Alias(_) => return Err(self.anchor_met(pos)),
            Event::SequenceStart(anchor, tag) => {
                if anchor != 0 {
                    return Err(self.anchor_met(pos));
                }
                self.check_collection_tag(tag.as_deref(), "seq", pos)?;
                for i in 0.. {
                    let (event, pos) = self.next()?;
                    if let Event::SequenceEnd = event {
                        break;
                    }
                    self.at.push(At::Index(i));
                    self.skip(event, pos, depth + 1)?;
                    self.at.pop();
                }
            }
            Event::MappingStart(anchor, tag) => {
                if anchor != 0 {
                    return Err(self.anchor_met(pos));
                }
                self.check_collection_tag(tag.as_deref(), "map", pos)?;
                let mut scope = self.key_scope();
                loop {
                    let (event, key_pos) = self.next()?;
                    if let Event::MappingEnd = event {
                        break;
                    }
                    let key = self.key(event, key_pos)?;
                    self.at.push(At::Key(key.clone()));
                    if let Err(key) = self.remember_key(&mut scope, key) {
                        return Err(self.err(key_pos, format!("duplicate key `{key}`")));
                    }
                    let (event, pos) = self.next()?;
                    self.skip(event, pos, depth + 1)?;
                    self.at.pop();
                }
                self.end_scope(scope);
            }
            _ => return Err(self.err(pos, "invalid YAML: unexpected event")),
        }
        Ok(())
    }

    /// A map key: a scalar, never an alias or a collection.
    fn key(&mut self, event: Event<'a>, key_pos: Pos) -> Result<Cow<'a, str>, LoadError> {
        match event {
            Event::Scalar(value, _, anchor, _) => {
                if anchor != 0 && self.select.is_some() {
                    return Err(self.anchor_met(key_pos));
                }
                Ok(value)
            }
            Event::Alias(_) => Err(self.err(key_pos, "an alias cannot be used as a map key")),
            _ => Err(self.err(key_pos, "map keys must be plain strings, not lists or maps")),
        }
    }

    fn node(
        &mut self,
        event: Event<'a>,
        pos: Pos,
        depth: usize,
        sel: Sel,
    ) -> Result<B::Out, LoadError> {
        if depth > MAX_DEPTH {
            return Err(self.err(pos, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let budget_before = self.budget;
        self.spend(1, pos)?;
        let origin = self.origin(pos);
        let selecting = self.select.is_some();
        let (node, anchor) = match event {
            Event::Scalar(value, style, anchor, tag) => {
                let (kind, plain) = self.scalar(value, style, tag.as_deref(), pos)?;
                (self.build.scalar(kind, origin, plain), anchor)
            }
            Event::Alias(_) if selecting => return Err(self.anchor_met(pos)),
            Event::Alias(id) => {
                let Some(&(_, n)) = self.anchors.get(&id) else {
                    return Err(self.err(pos, "alias to an unknown anchor"));
                };
                // Spent before the copy is made (issue 30): an alias bomb
                // of maps is refused without building what it would
                // expand to. This node's own 1 is already spent.
                self.expanded_alias = true;
                self.spend(n - 1, pos)?;
                let node = self.anchors[&id].0.clone();
                // The alias is "set" where it is used.
                return Ok(node);
            }
            Event::SequenceStart(anchor, tag) => {
                self.check_collection_tag(tag.as_deref(), "seq", pos)?;
                let item_sel = self.child_sel(sel, depth, "*");
                let mut items = Vec::new();
                for i in 0.. {
                    let (event, pos) = self.next()?;
                    if let Event::SequenceEnd = event {
                        break;
                    }
                    self.at.push(At::Index(i));
                    match item_sel {
                        Some(s) => items.push(self.node(event, pos, depth + 1, s)?),
                        None => self.skip(event, pos, depth + 1)?,
                    }
                    self.at.pop();
                }
                (self.build.seq(items, origin), anchor)
            }
            Event::MappingStart(anchor, tag) => {
                self.check_collection_tag(tag.as_deref(), "map", pos)?;
                let mut map = self.build.map();
                // While selecting, keys not built are still checked here.
                let mut scope = (sel != Sel::All).then(|| self.key_scope());
                loop {
                    let (event, key_pos) = self.next()?;
                    if let Event::MappingEnd = event {
                        break;
                    }
                    let key = self.key(event, key_pos)?;
                    self.at.push(At::Key(key.clone()));
                    let child = self.child_sel(sel, depth, &key);
                    if let Some(scope) = scope.as_mut() {
                        if let Err(key) = self.remember_key(scope, key.clone()) {
                            return Err(self.err(key_pos, format!("duplicate key `{key}`")));
                        }
                    }
                    let (event, pos) = self.next()?;
                    let Some(child) = child else {
                        self.skip(event, pos, depth + 1)?;
                        self.at.pop();
                        continue;
                    };
                    let value = self.node(event, pos, depth + 1, child)?;
                    self.at.pop();
                    let key_origin = self.origin(key_pos);
                    if let Err((key, first)) =
                        self.build
                            .insert(&mut map, key.into_owned(), key_origin, value)
                    {
                        let first = first
                            .map(|l| format!(" (first set on line {l})"))
                            .unwrap_or_default();
                        self.at.push(At::Key(Cow::Owned(key.clone())));
                        return Err(self.err(key_pos, format!("duplicate key `{key}`{first}")));
                    }
                }
                if let Some(scope) = scope {
                    self.end_scope(scope);
                }
                (self.build.finish(map, origin), anchor)
            }
            _ => return Err(self.err(pos, "invalid YAML: unexpected event")),
        };
        if anchor != 0 {
            if selecting {
                return Err(self.anchor_met(pos));
            }
            // Every node built below this one, aliases expanded, spent
            // from the budget: its size.
            let size = budget_before - self.budget;
            self.anchors.insert(anchor, (node.clone(), size));
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

    /// Resolve a scalar; plain scalars keep their source text.
    fn scalar(
        &self,
        value: Cow<'a, str>,
        style: ScalarStyle,
        tag: Option<&Tag>,
        pos: Pos,
    ) -> Result<(NodeKind, Option<Plain>), LoadError> {
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
            return Ok((kind, None));
        }
        if style != ScalarStyle::Plain {
            return Ok((NodeKind::Str(text), None));
        }
        match resolve_non_string(&text) {
            Some(kind) => Ok((kind, B::KEEP_PLAIN.then_some(Plain::Text(text)))),
            None => Ok((
                NodeKind::Str(text),
                B::KEEP_PLAIN.then_some(Plain::AsString),
            )),
        }
    }
}

/// `!!x` and its expanded form `tag:yaml.org,2002:x`.
fn is_core(t: &Tag) -> bool {
    t.handle == "!!" || t.handle == "tag:yaml.org,2002:"
}

/// Resolve a plain scalar (see the module comment for the rules).
pub fn resolve_plain(s: &str) -> NodeKind {
    resolve_non_string(s).unwrap_or_else(|| NodeKind::Str(s.to_string()))
}

/// The non-string meaning of a plain scalar, if it has one.
pub(crate) fn resolve_non_string(s: &str) -> Option<NodeKind> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Some(NodeKind::Null),
        "true" | "True" | "TRUE" => return Some(NodeKind::Bool(true)),
        "false" | "False" | "FALSE" => return Some(NodeKind::Bool(false)),
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if let Some(oct) = s.strip_prefix("0o") {
        if !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            if let Ok(i) = i64::from_str_radix(oct, 8) {
                return Some(NodeKind::Int(i));
            }
        }
        return None;
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Ok(i) = i64::from_str_radix(hex, 16) {
                return Some(NodeKind::Int(i));
            }
        }
        return None;
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let leading_zero = digits.len() > 1 && digits.starts_with('0');
        if !leading_zero {
            if let Ok(i) = s.parse::<i64>() {
                return Some(NodeKind::Int(i));
            }
        }
        return None;
    }
    if is_core_float(digits) {
        let int_part = digits.split(['.', 'e', 'E']).next().unwrap_or("");
        let leading_zero = int_part.len() > 1 && int_part.starts_with('0');
        if !leading_zero {
            if let Ok(f) = s.parse::<f64>() {
                if f.is_finite() {
                    return Some(NodeKind::Float(f));
                }
            }
        }
    }
    None
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
        assert_eq!(bb.value.plain_text(), Some("1"));
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
        assert!(
            e.message.contains("aliases expand it to more than"),
            "{}",
            e.message
        );
    }

    #[test]
    fn malformed_yaml_reports_a_position() {
        let e = load_documents("a: [1, 2\nb: 3\n", SourceId(0)).unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{}", e.message);
        assert!(e.origin.pos.line >= 1);
        assert!(load_documents("a: !custom x\n", SourceId(0)).is_err());
        assert!(load_documents("? [a]\n: 1\n", SourceId(0)).is_err());
    }

    const SEL: Selection = &[
        &["kind"],
        &["spec", "list"],
        &["spec", "items", "*", "name"],
    ];

    #[test]
    fn selecting_builds_only_the_named_paths() {
        let text = "kind: A\nother: {x: 1}\nspec:\n  list: [1, {b: 2}]\n  items:\n    - {name: n, skip: s}\n    - {skip: t}\n  rest: r\n---\nkind: B\n";
        let docs = load_selected_documents(text, SEL).unwrap();
        assert_eq!(
            docs,
            vec![
                serde_json::json!({"kind": "A", "spec": {"list": [1, {"b": 2}], "items": [{"name": "n"}, {}]}}),
                serde_json::json!({"kind": "B"}),
            ]
        );
    }

    #[test]
    fn selecting_still_refuses_what_a_full_load_refuses() {
        for bad in [
            "kind: A\nother: {x: 1, x: 2}\n",
            "kind: A\nother: !custom x\n",
            "kind: A\nother: !!int x\n",
            "kind: A\nother: [1, 2\n",
            "kind: A\nother:\n  ? [a]\n  : 1\n",
            "kind: A\nkind: B\n",
            "kind: A\nother: {a: *nothing}\n",
        ] {
            assert!(load_json_documents(bad).is_err(), "{bad}");
            assert!(load_selected_documents(bad, SEL).is_err(), "{bad}");
        }
        let many: String = (0..40).map(|i| format!("k{i}: 1\n")).collect();
        assert!(load_selected_documents(&format!("{many}k7: 2\n"), SEL).is_err());
        assert!(load_selected_documents(&many, SEL).is_ok());
        // The same in a nested map that is not built, after a sibling map
        // holding the same keys.
        let nested: String = (0..40).map(|i| format!("  k{i}: {{k{i}: 1}}\n")).collect();
        let ok = format!("kind: A\nfirst:\n{nested}other:\n{nested}");
        assert!(load_selected_documents(&ok, SEL).is_ok());
        for dup in ["  k3: 2\n", "  k39: 2\n"] {
            let bad = format!("kind: A\nother:\n{nested}{dup}");
            assert!(load_selected_documents(&bad, SEL).is_err(), "{dup}");
        }
    }

    #[test]
    fn selecting_a_stream_with_aliases_loads_it_in_full() {
        let text = "other: &a {x: 1}\nspec: {list: *a}\n";
        let docs = load_selected_documents(text, SEL).unwrap();
        assert_eq!(docs, load_json_documents(text).unwrap());
        assert_eq!(docs[0]["spec"]["list"], serde_json::json!({"x": 1}));
    }
}

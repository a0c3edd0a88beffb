//! Inputs and positions: every value meshgen reads comes from a [`Source`]
//! (the embedded defaults, a preset, a `--values` file, or one `--set` argument) and
//! every parsed node carries an [`Origin`] pointing back into it.
//!
//! This module owns naming sources for humans. It does not read files (that
//! is `values::load`) and it never formats diagnostics (that is
//! `diagnostic`).

use std::fmt;

/// Index of a source in a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(pub u32);

/// What kind of input a source is; decides how its origins are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// The embedded `default_values.yaml`.
    Defaults,
    /// An embedded preset (`--preset`), named `presets/<name>.yaml`.
    Preset,
    /// A `--values` file, named as the user typed it.
    File,
    /// One `--set`/`--set-string` argument, kept verbatim.
    SetArg,
}

/// One input, with the text it was parsed from.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub kind: SourceKind,
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// Where a value was set: a source and a position in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub source: SourceId,
    pub pos: Pos,
}

/// All sources of one run, in the order they were given (defaults first).
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    sources: Vec<Source>,
}

impl SourceMap {
    pub fn add(&mut self, name: impl Into<String>, kind: SourceKind) -> SourceId {
        self.sources.push(Source {
            name: name.into(),
            kind,
        });
        SourceId(self.sources.len() as u32 - 1)
    }

    pub fn get(&self, id: SourceId) -> &Source {
        &self.sources[id.0 as usize]
    }

    /// A printable location: `file:line:col`, or `--set 'a.b=c'` for
    /// arguments, whose "line" is meaningless.
    pub fn display(&self, origin: Origin) -> OriginDisplay<'_> {
        OriginDisplay {
            source: self.get(origin.source),
            pos: origin.pos,
        }
    }
}

pub struct OriginDisplay<'a> {
    source: &'a Source,
    pos: Pos,
}

impl fmt::Display for OriginDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source.kind {
            SourceKind::SetArg => write!(f, "{} (column {})", self.source.name, self.pos.col),
            _ => write!(f, "{}:{}:{}", self.source.name, self.pos.line, self.pos.col),
        }
    }
}

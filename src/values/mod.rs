//! Stage 1: read every values input once and merge them into one tree.
//!
//! `load` reads files and the embedded defaults into [`Node`] trees,
//! `setarg` parses `--set` arguments, `merge` applies everything in order,
//! `path` names values for humans. The result, [`Values`], keeps the origin
//! of every value so later stages can say where a bad value was set. This
//! stage knows nothing about the schema or templates.

pub mod load;
pub mod merge;
pub mod path;
pub mod preset;
pub mod setarg;

use crate::diagnostic::Diagnostics;
use crate::source::SourceMap;
use crate::yaml::Node;
use path::{Segment, ValuePath};
use std::path::PathBuf;

/// The embedded defaults.
pub const DEFAULT_VALUES: &str = include_str!("../../default_values.yaml");
pub const DEFAULT_VALUES_NAME: &str = "default_values.yaml";

/// What the user asked to merge, in order.
#[derive(Debug, Clone, Default)]
pub struct ValueInputs {
    /// `--preset`: an embedded values layer applied after the defaults
    /// and before `files` (`preset::ALL`).
    pub preset: Option<String>,
    pub files: Vec<PathBuf>,
    /// `--set` and `--set-string` arguments in command-line order.
    pub sets: Vec<SetArg>,
}

#[derive(Debug, Clone)]
pub struct SetArg {
    pub text: String,
    /// `--set-string`: every value is a string.
    pub force_string: bool,
}

/// The merged values: a tree whose every node knows where it was set.
#[derive(Debug, Clone)]
pub struct Values {
    pub tree: Node,
    /// Keys an explicit `null` deleted (or named, when there was nothing
    /// to delete), with where that `null` was written: a required key
    /// that is missing, or an unknown key, is reported there.
    pub deleted: Vec<(ValuePath, crate::source::Origin)>,
}

impl Values {
    /// The node at `path`, if present.
    pub fn get(&self, path: &ValuePath) -> Option<&Node> {
        let mut node = &self.tree;
        for seg in &path.0 {
            node = child(node, seg)?;
        }
        Some(node)
    }

    /// Where the value at `path` (or its nearest present ancestor) was set.
    /// For the last key of the path, the key's own position is preferred:
    /// that is where a user looks for a typo.
    pub fn origin_of(&self, path: &ValuePath) -> Option<crate::source::Origin> {
        let mut node = &self.tree;
        let mut origin = None;
        for seg in &path.0 {
            match (&node.kind, seg) {
                (crate::yaml::NodeKind::Map(m), Segment::Key(k)) => match m.get(k) {
                    Some(e) => {
                        origin = Some(e.value.origin);
                        node = &e.value;
                    }
                    None => return origin.or(Some(node.origin)),
                },
                (crate::yaml::NodeKind::Seq(items), Segment::Index(i)) => match items.get(*i) {
                    Some(n) => {
                        origin = Some(n.origin);
                        node = n;
                    }
                    None => return origin.or(Some(node.origin)),
                },
                _ => return origin.or(Some(node.origin)),
            }
        }
        origin.or(Some(node.origin))
    }

    /// Where a `null` deleted the key at `path`, if one did.
    pub fn deleted_at(&self, path: &ValuePath) -> Option<crate::source::Origin> {
        self.deleted
            .iter()
            .rev()
            .find(|(p, _)| p == path)
            .map(|(_, at)| *at)
    }

    /// Where the key at the end of `path` was written.
    pub fn key_origin(&self, path: &ValuePath) -> Option<crate::source::Origin> {
        let parent = self.get(&path.parent()?)?;
        match (&parent.kind, path.0.last()?) {
            (crate::yaml::NodeKind::Map(m), Segment::Key(k)) => m.get(k).map(|e| e.key_origin),
            _ => None,
        }
    }

    /// Where the user set something at or under `path`: the value's own
    /// place when a values file or `--set` set it, else the first place
    /// inside it that one did (a key set inside a map of the defaults),
    /// else `None` (all of it is the defaults').
    pub fn user_origin(
        &self,
        path: &ValuePath,
        sources: &SourceMap,
    ) -> Option<crate::source::Origin> {
        let node = self.get(path)?;
        first_user_origin(node, sources).map(|at| {
            // The key's own position, when the user wrote the key itself.
            match self.key_origin(path) {
                Some(k) if k.source == at.source && node.origin == at => k,
                _ => at,
            }
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        self.tree.to_json()
    }
}

/// The first origin in `node` (itself, then its entries in order) that is
/// not the embedded defaults'.
pub fn first_user_origin(node: &Node, sources: &SourceMap) -> Option<crate::source::Origin> {
    use crate::yaml::NodeKind;
    if sources.get(node.origin.source).kind != crate::source::SourceKind::Defaults {
        return Some(node.origin);
    }
    match &node.kind {
        // An entry the user wrote is located at its key, where they look.
        NodeKind::Map(m) => m.values().find_map(|e| {
            first_user_origin(&e.value, sources).map(|at| {
                if at == e.value.origin && e.key_origin.source == at.source {
                    e.key_origin
                } else {
                    at
                }
            })
        }),
        NodeKind::Seq(items) => items.iter().find_map(|n| first_user_origin(n, sources)),
        _ => None,
    }
}

fn child<'a>(node: &'a Node, seg: &Segment) -> Option<&'a Node> {
    match (&node.kind, seg) {
        (crate::yaml::NodeKind::Map(m), Segment::Key(k)) => m.get(k).map(|e| &e.value),
        (crate::yaml::NodeKind::Seq(items), Segment::Index(i)) => items.get(*i),
        _ => None,
    }
}

/// Read, parse and merge every input. Registers each input in `sources`.
pub fn build(inputs: &ValueInputs, sources: &mut SourceMap) -> Result<Values, Diagnostics> {
    let layers = load::load_all(inputs, sources)?;
    merge::merge_layers(layers)
}

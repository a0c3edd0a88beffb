//! Values too large for any object (issue 30): a string, or a list of
//! scalars, that a template writes whole into one object cannot be larger
//! than the largest object meshgen writes ([`MAX_OBJECT_BYTES`]). Refused
//! here, at its key path, instead of by the check stage naming the
//! generated file (a 2 MB annotation, 100,000 source ranges).
//!
//! Only the sections meshgen renders are walked (an ignored deployKF
//! section has no effect), and only what a user set. A list of maps (the
//! profiles) may be larger: its items go into objects of their own.

use crate::check::limits::MAX_OBJECT_BYTES;
use crate::diagnostic::Diagnostics;
use crate::registry::ALL;
use crate::source::{SourceKind, SourceMap};
use crate::values::path::{Segment, ValuePath};
use crate::values::Values;
use crate::yaml::{Node, NodeKind};

/// Refuse every user-set string or list of scalars in a rendered section
/// larger than an object may be.
pub fn check(values: &Values, sources: &SourceMap, diags: &mut Diagnostics) {
    let mut sections: Vec<&str> = ALL.iter().map(|d| d.section).collect();
    sections.sort_unstable();
    sections.dedup();
    for section in sections {
        let mut path = ValuePath::keys(section);
        if let Some(node) = values.get(&path) {
            walk(node, &mut path, values, sources, diags);
        }
    }
}

fn walk(
    node: &Node,
    path: &mut ValuePath,
    values: &Values,
    sources: &SourceMap,
    diags: &mut Diagnostics,
) {
    let user_set = sources.get(node.origin.source).kind != SourceKind::Defaults;
    let size = match &node.kind {
        NodeKind::Str(s) => s.len(),
        NodeKind::Seq(items) if items.iter().all(is_scalar) => {
            items.iter().map(|i| scalar_len(i) + 4).sum()
        }
        NodeKind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.0.push(Segment::Index(i));
                walk(item, path, values, sources, diags);
                path.0.pop();
            }
            return;
        }
        NodeKind::Map(map) => {
            for (key, entry) in map {
                path.0.push(Segment::Key(key.clone()));
                walk(&entry.value, path, values, sources, diags);
                path.0.pop();
            }
            return;
        }
        _ => return,
    };
    if user_set && size > MAX_OBJECT_BYTES {
        diags.push(super::error_at(
            values,
            path.clone(),
            format!(
                "is about {size} bytes, more than the largest object meshgen writes ({MAX_OBJECT_BYTES} bytes; Kubernetes (etcd) takes at most 1.5 MiB), and it is written whole into one object"
            ),
        ));
    }
}

fn is_scalar(n: &Node) -> bool {
    !matches!(n.kind, NodeKind::Seq(_) | NodeKind::Map(_))
}

fn scalar_len(n: &Node) -> usize {
    match &n.kind {
        NodeKind::Str(s) => s.len(),
        _ => 8,
    }
}

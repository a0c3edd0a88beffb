//! `meshgen diff --access`: the changes of access between the tree on
//! disk and a new render, one line each.

use super::matrix::{rank, Capability, Grant, Matrix, Subject, Target};
use crate::diagnostic::escape_controls;

/// One change of access: a cell of the matrix whose level differs.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub target: Target,
    pub subject: Subject,
    pub capability: Capability,
    /// `None`: no access (absent from the matrix).
    pub old: Option<Grant>,
    pub new: Option<Grant>,
}

impl Change {
    /// More access than before: a level that grants more, or the same
    /// rank with other conditions (`only …` changed: counted as widened,
    /// since the new conditions may admit requests the old did not).
    pub fn widened(&self) -> bool {
        fn level(g: &Option<Grant>) -> &str {
            g.as_ref().map_or("no", |g| g.level.as_str())
        }
        let (o, n) = (level(&self.old), level(&self.new));
        rank(n) > rank(o) || (rank(n) == rank(o) && rank(n) > 0)
    }

    /// `user alice@example.net: notebooks of profile team-b: denied →
    /// allowed, by RoleBinding/… and AuthorizationPolicy/…`, every name
    /// escaped for a terminal.
    pub fn line(&self) -> String {
        let shown = |g: &Option<Grant>| match (self.capability, g) {
            ("role", None) => "no role".to_string(),
            (_, None) => "denied".to_string(),
            (_, Some(g)) if g.level == "yes" => "allowed".to_string(),
            (_, Some(g)) => g.level.clone(),
        };
        let why = match (&self.new, &self.old) {
            (Some(n), _) if !n.by.is_empty() => format!(", by {}", n.by.join(" and ")),
            (None, Some(o)) if !o.by.is_empty() => format!(" (was by {})", o.by.join(" and ")),
            _ => String::new(),
        };
        let text = format!(
            "{} {}: {} of {} {}: {} → {}{why}",
            self.subject.kind,
            self.subject.name,
            self.capability,
            self.target.kind,
            self.target.name,
            shown(&self.old),
            shown(&self.new),
        );
        escape_controls(&text).into_owned()
    }
}

/// Every cell whose level differs between `old` and `new`, in the
/// matrix's order (target, subject, capability).
pub fn changes(old: &Matrix, new: &Matrix) -> Vec<Change> {
    let mut keys: Vec<&(Target, Subject, Capability)> =
        old.cells.keys().chain(new.cells.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (o, n) = (old.cells.get(k), new.cells.get(k));
            let same = match (o, n) {
                (Some(o), Some(n)) => o.level == n.level,
                (None, None) => true,
                _ => false,
            };
            (!same).then(|| Change {
                target: k.0.clone(),
                subject: k.1.clone(),
                capability: k.2,
                old: o.cloned(),
                new: n.cloned(),
            })
        })
        .collect()
}

/// The changes of access from the tree in `dir` to `files` (a render).
///
/// Only what differs is looked at twice: the tree on disk is parsed, the
/// render's files are parsed only where their text differs from it, and
/// when every object that differs belongs to profiles nothing else reads
/// (`matrix::local_profiles`), only those profiles' cells are computed,
/// on both sides; otherwise both matrices are computed whole.
pub fn of_dir(dir: &std::path::Path, files: &crate::write::Files) -> Result<Vec<Change>, String> {
    use super::tree::{is_manifest, parse, read_dir};
    use std::collections::BTreeSet;
    let on_disk = read_dir(dir, None)?;
    let changed: BTreeSet<String> = on_disk
        .iter()
        .filter(|(p, text)| files.get(*p) != Some(*text))
        .map(|(p, _)| p.clone())
        .chain(
            files
                .keys()
                .filter(|p| is_manifest(p) && !on_disk.contains_key(*p))
                .cloned(),
        )
        .collect();
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    let old =
        parse(&on_disk).map_err(|e| e.replacen(" --> ", &format!(" --> {}/", dir.display()), 1))?;
    drop(on_disk);
    let new_changed = parse(
        files
            .iter()
            .filter(|(p, _)| changed.contains(*p))
            .collect::<Vec<_>>(),
    )?;
    let old_docs = || old.values().flatten();
    let new_docs = || {
        old.iter()
            .filter(|(p, _)| !changed.contains(*p))
            .flat_map(|(_, d)| d)
            .chain(new_changed.values().flatten())
    };
    let touched_old: Vec<&serde_json::Value> = changed
        .iter()
        .filter_map(|p| old.get(p))
        .flatten()
        .collect();
    let touched_new: Vec<&serde_json::Value> = new_changed.values().flatten().collect();
    let only = super::matrix::local_profiles(old_docs(), new_docs(), &touched_old, &touched_new);
    let (before, after) = (
        super::matrix::compute_docs(old_docs(), only.as_ref()),
        super::matrix::compute_docs(new_docs(), only.as_ref()),
    );
    // The trees are freed by the OS when the process ends.
    std::mem::forget((old, new_changed));
    Ok(changes(&before, &after))
}

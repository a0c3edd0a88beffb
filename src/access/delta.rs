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
    /// Either tree has several gateways: the subject's `via` is printed.
    pub several: bool,
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
            if self.several {
                self.subject.label()
            } else {
                self.subject.name.clone()
            },
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
                several: old.several || new.several,
            })
        })
        .collect()
}

/// The changes of access from the tree in `dir` to `files` (a render).
///
/// Only what differs is looked at closely. Every file of the tree on disk
/// is parsed for what its objects are and where (`tree::IDENTITY`); in
/// full only the files holding an object outside the profile namespaces
/// (the gateway, the apps, the root namespace: what every cell reads) and
/// the files that differ from the render, on both sides. When every
/// object that differs belongs to profiles nothing else reads
/// (`matrix::local_profiles`), the files of those profiles are parsed in
/// full and only their cells computed; otherwise both trees are parsed
/// in full and both matrices computed whole.
pub fn of_dir(dir: &std::path::Path, files: &crate::write::Files) -> Result<Vec<Change>, String> {
    use super::matrix::{compute_docs, home_of, local_profiles, profiles_of};
    use super::tree::{
        is_manifest, parse_one, parse_rendered, read_dir_with, reread_as, Tree, IDENTITY, SELECT,
    };
    use serde_json::Value;
    use std::collections::{BTreeMap, BTreeSet};
    let located = |e: String| e.replacen(" --> ", &format!(" --> {}/", dir.display()), 1);
    // Each file of the tree on disk, as it is read: whether the render
    // differs, what its objects are, and where (`None`: an object outside
    // any namespace). Its text is not kept (issue 31: at 10,000 profiles
    // 121 MB beside the render's); the few files parsed in full below are
    // read again.
    type Homes = Option<BTreeSet<String>>;
    let homes = |docs: &Vec<Value>| -> Homes {
        docs.iter()
            .filter(|d| d.is_object())
            .map(|d| home_of(d).map(String::from))
            .collect()
    };
    let seen: BTreeMap<String, (bool, Homes, Vec<Value>)> =
        read_dir_with(dir, None, |key, text| {
            let changed = files.get(key) != Some(&text);
            let docs = if changed {
                parse_one(key, &text, Some(IDENTITY))?
            } else {
                parse_rendered(key, &text, IDENTITY)?
            };
            let h = homes(&docs);
            // What the other profiles' files are read for: which namespaces
            // are profiles, and their data-plane modes (`local_profiles`,
            // `compute_docs` of the profiles changed, which read every file
            // of those profiles in full).
            let kept = docs
                .into_iter()
                .filter(|d| matches!(d["kind"].as_str(), Some("Namespace" | "Profile")))
                .collect();
            Ok((changed, h, kept))
        })
        .map_err(located)?;
    let changed: BTreeSet<String> = seen
        .iter()
        .filter(|(_, (c, _, _))| *c)
        .map(|(p, _)| p.clone())
        .chain(
            files
                .keys()
                .filter(|p| is_manifest(p) && !seen.contains_key(*p))
                .cloned(),
        )
        .collect();
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    fn of<'t>(
        tree: &'t BTreeMap<String, String>,
        which: &dyn Fn(&String) -> bool,
    ) -> Vec<(&'t String, &'t String)> {
        tree.iter().filter(|(p, _)| which(p)).collect()
    }
    let on_disk = |which: &dyn Fn(&String) -> bool| -> Vec<String> {
        seen.keys().filter(|p| which(p)).cloned().collect()
    };
    let light: Tree = seen
        .iter()
        .map(|(p, (_, _, docs))| (p.clone(), docs.clone()))
        .collect();
    let profiles: BTreeSet<String> = profiles_of(light.values().flatten())
        .into_iter()
        .map(String::from)
        .collect();
    let global: BTreeSet<&String> = seen
        .iter()
        .filter(|(_, (_, h, _))| {
            h.as_ref()
                .is_none_or(|h| h.iter().any(|n| !profiles.contains(n)))
        })
        .map(|(p, _)| p)
        .collect();
    let full_old = reread_as(
        dir,
        on_disk(&|p| global.contains(p) || changed.contains(p)),
        Some(SELECT),
    )
    .map_err(located)?;
    let new_changed = super::tree::parse_selected(of(files, &|p| changed.contains(p)), SELECT)?;
    let touched_old: Vec<&Value> = changed
        .iter()
        .filter_map(|p| full_old.get(p))
        .flatten()
        .collect();
    let touched_new: Vec<&Value> = new_changed.values().flatten().collect();
    let base: Tree = full_old
        .iter()
        .filter(|(p, _)| !changed.contains(*p))
        .map(|(p, d)| (p.clone(), d.clone()))
        .collect();
    // One side: the files parsed in full, the others' identities.
    fn side_of<'a>(
        full: &[&'a Tree],
        light: &'a Tree,
        changed: &BTreeSet<String>,
    ) -> Vec<&'a Value> {
        let mut docs: Vec<&Value> = full.iter().flat_map(|t| t.values().flatten()).collect();
        docs.extend(
            light
                .iter()
                .filter(|(p, _)| !changed.contains(*p) && !full.iter().any(|t| t.contains_key(*p)))
                .flat_map(|(_, d)| d),
        );
        docs
    }
    let only = local_profiles(
        side_of(&[&full_old], &light, &changed).into_iter(),
        side_of(&[&base, &new_changed], &light, &changed).into_iter(),
        &touched_old,
        &touched_new,
    );
    let (before, after) = match &only {
        Some(only) => {
            // The other files of those profiles, in full.
            let theirs = reread_as(
                dir,
                on_disk(&|p| {
                    !changed.contains(p)
                        && !global.contains(p)
                        && seen
                            .get(p)
                            .and_then(|(_, h, _)| h.as_ref())
                            .is_some_and(|h| h.iter().any(|n| only.contains(n)))
                }),
                Some(SELECT),
            )
            .map_err(located)?;
            (
                compute_docs(
                    side_of(&[&full_old, &theirs], &light, &changed).into_iter(),
                    Some(only),
                ),
                compute_docs(
                    side_of(&[&base, &theirs, &new_changed], &light, &changed).into_iter(),
                    Some(only),
                ),
            )
        }
        None => {
            let old = reread_as(dir, on_disk(&|_| true), Some(SELECT)).map_err(located)?;
            let new = super::tree::parse_selected(files, SELECT)?;
            (
                compute_docs(old.values().flatten(), None),
                compute_docs(new.values().flatten(), None),
            )
        }
    };
    Ok(changes(&before, &after))
}

//! The user's `patches` (`rules::patch`) each change an object of their
//! component: kustomize applies a patch whose target matches nothing
//! without a word (a misspelt name is a patch that silently does
//! nothing), so meshgen refuses it here, where the rendered objects are
//! known, at the patch's key, naming the objects it could have meant.

use super::refs::DocFacts;
use crate::diagnostic::Diagnostics;
use crate::rules::patch::UserPatch;

/// Errors for every patch of `patches` (with the kustomize directory it is
/// written into) that no document directly in that directory matches.
pub fn check(docs: &[DocFacts], patches: &[(String, UserPatch)]) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for (dir, p) in patches {
        let prefix = format!("{dir}/");
        let here: Vec<&DocFacts> = docs
            .iter()
            .filter(|d| {
                d.path
                    .strip_prefix(&prefix)
                    .is_some_and(|rel| !rel.contains('/'))
            })
            .collect();
        if here.iter().any(|d| d.kind == p.kind && d.name == p.name) {
            continue;
        }
        let same_kind: Vec<&str> = here
            .iter()
            .filter(|d| d.kind == p.kind)
            .map(|d| d.name.as_str())
            .collect();
        let hint = match crate::schema::suggest(&p.name, same_kind.iter().copied()) {
            Some(near) => format!("; did you mean `{near}`?"),
            None if same_kind.is_empty() => format!("; it renders no {} there", p.kind),
            None => format!(
                "; its {} objects are: {}",
                p.kind,
                same_kind
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        diags.push(p.error(format!(
            "target {} `{}` is not an object of `{dir}/`, so kustomize would apply this patch to nothing{hint}",
            p.kind, p.name
        )));
    }
    diags
}

//! What applying a new tree over the one on disk does to a cluster that
//! the file diff alone does not say, for `meshgen diff` to warn about.
//! Today the Gateway API CRDs: going down across v1.5.0, or leaving the
//! tree.
//!
//! The v1.5.1 standard bundle installs the ValidatingAdmissionPolicy
//! `safe-upgrades.gateway.networking.k8s.io`
//! (kubernetes-sigs/gateway-api v1.5.1
//! `config/crd/standard/gateway.networking.k8s.io_vap_safeupgrades.yaml`:
//! its second validation, lines 24-28, refuses any Gateway API CRD whose
//! `gateway.networking.k8s.io/bundle-version` annotation matches
//! `v1.[0-4].\d+`, "Installing CRDs with version before v1.5.0 is
//! prohibited by default"). A cluster that once got Istio 1.30's bundle
//! therefore refuses the v1.4.1 CRDs of Istio 1.29 until that policy is
//! deleted.
//!
//! The old bundle is read from the tree on disk: the annotation of the
//! vendored CRDs in the component's directory (`model::gateway_api`).
//! This module only reads; it never writes, renders or changes the diff.

use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::write::Files;
use std::path::Path;

/// The component directory the CRDs are written to.
fn dir() -> &'static str {
    crate::model::gateway_api::COMPONENT.templates
}

const ANNOTATION: &str = "gateway.networking.k8s.io/bundle-version";
const POLICY: &str = "safe-upgrades.gateway.networking.k8s.io";

const PATHS: crate::yaml::load::Selection = &[
    &["kind"],
    &[
        "metadata",
        "annotations",
        "gateway.networking.k8s.io/bundle-version",
    ],
];

/// `v1.5.1` → (1, 5, 1); `None` for anything else (`v1.5.0-dev`).
fn version(tag: &str) -> Option<(u64, u64, u64)> {
    let mut parts = tag.strip_prefix('v')?.split('.');
    let mut next = || parts.next()?.parse().ok();
    Some((next()?, next()?, next()?))
}

/// The highest bundle version the CRDs among `texts` carry.
fn bundle_of<'a>(texts: impl Iterator<Item = &'a str>) -> Option<String> {
    texts
        .filter_map(|t| crate::yaml::load::load_selected_documents(t, PATHS).ok())
        .flatten()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .filter_map(|d| {
            d["metadata"]["annotations"][ANNOTATION]
                .as_str()
                .map(String::from)
        })
        .filter(|v| version(v).is_some())
        .max_by_key(|v| version(v))
}

/// The bundle of the CRDs in the new tree's files.
fn bundle_of_files(files: &Files) -> Option<String> {
    let prefix = format!("{}/", dir());
    bundle_of(
        files
            .iter()
            .filter(|(p, _)| p.starts_with(&prefix) && !p.ends_with("/kustomization.yaml"))
            .map(|(_, t)| t.as_str()),
    )
}

/// The bundle of the CRDs in the tree at `out` (none: no such directory,
/// or nothing readable in it).
fn bundle_on_disk(out: &Path) -> Option<String> {
    let dir = out.join(dir());
    let mut texts = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        // Regular files only (a FIFO would block), within what `diff`
        // reads (a tree on disk may hold anything).
        let regular = path
            .symlink_metadata()
            .is_ok_and(|m| m.is_file() && m.len() <= crate::write::diff::MAX_COMPARED_BYTES);
        if regular && name.ends_with(".yaml") && name != "kustomization.yaml" {
            if let Ok(text) = std::fs::read_to_string(&path) {
                texts.push(text);
            }
        }
    }
    bundle_of(texts.iter().map(String::as_str))
}

/// The warning for a bundle that goes from `old` to `new`, if it crosses
/// v1.5.0 downwards.
fn downgrade(old: &str, new: &str) -> Option<Diagnostic> {
    let floor = (1, 5, 0);
    let crosses = version(old)? >= floor && version(new)? < floor;
    crosses.then(|| {
        Diagnostic::warning(Code::CrdDowngrade, format!(
            "the Gateway API CRDs go down from {old} (the tree on disk) to {new}: the ValidatingAdmissionPolicy `{POLICY}` that {old} installed refuses CRDs of a bundle before v1.5.0 (\"Installing CRDs with version before v1.5.0 is prohibited by default\"), so applying this tree fails on every CRD; delete it first (`kubectl delete validatingadmissionpolicybinding,validatingadmissionpolicy {POLICY}`), or stay on the Istio minor of {old}"
        ))
    })
}

/// The warning for CRDs that leave the tree: deleting a CRD deletes
/// every object of its kind, cluster-wide. meshgen's kustomization marks
/// them kept (`render::KEEP_ANNOTATIONS`), so Argo CD and Flux leave them;
/// the warning says they are now the user's to keep or delete.
fn removal(old: &str) -> Diagnostic {
    Diagnostic::warning(Code::CrdsLeftBehind, format!(
        "the Gateway API CRDs ({old}) leave this tree (meshgen no longer installs Istio, or nothing needs them): Argo CD and Flux leave them in the cluster (meshgen annotated them `Prune=false,Delete=false` and `kustomize.toolkit.fluxcd.io/prune: disabled`), and from now on they are yours; do not delete them while anything uses the Gateway API, since deleting a CRD deletes every object of its kind in the cluster"
    ))
}

/// Warnings about applying `new` over the tree at `out`.
pub fn warnings(out: &Path, new: &Files) -> Vec<Diagnostic> {
    match (bundle_on_disk(out), bundle_of_files(new)) {
        (Some(old), Some(new)) => downgrade(&old, &new).into_iter().collect(),
        (Some(old), None) => vec![removal(&old)],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_going_below_v1_5_0_from_v1_5_or_later_warns() {
        assert!(downgrade("v1.5.1", "v1.4.1").is_some());
        assert!(downgrade("v1.5.0", "v1.4.9").is_some());
        assert!(downgrade("v1.4.1", "v1.5.1").is_none());
        assert!(downgrade("v1.5.1", "v1.5.0").is_none());
        assert!(downgrade("v1.4.1", "v1.4.0").is_none());
        assert!(downgrade("v1.5.0-dev", "v1.4.1").is_none());
        assert_eq!(version("v1.5.1"), Some((1, 5, 1)));
    }

    /// The annotation is read from the vendored CRDs, and the VAP's own
    /// (`v1.5.0-dev` upstream) is not taken for the bundle's.
    #[test]
    fn the_bundle_is_read_from_the_vendored_crds() {
        for b in crate::model::gateway_api::BUNDLES {
            let got = bundle_of(b.files.iter().map(|(_, t)| *t));
            assert_eq!(got.as_deref(), Some(b.version));
        }
    }
}

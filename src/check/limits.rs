//! Kubernetes' and the delivery engines' size limits, checked on the
//! finished tree with the lengths and counts the check stage already has
//! (no parsing): no object may exceed [`MAX_OBJECT_BYTES`], and no Argo
//! CD Application / Flux Kustomization may manage more than
//! `gitops.maxObjectsPerApplication` objects (at most 1,000).
//!
//! Why these bounds (README "Sharding the profiles"):
//! - etcd refuses a request over 1.5 MiB (its `--max-request-bytes`
//!   default), and an object must also fit a `kubectl apply` annotation
//!   and an Argo CD diff; 1 MiB leaves room.
//! - Argo CD keeps every managed resource in the Application's
//!   `.status.resources` and, after a sync, in
//!   `.status.operationState.syncResult.resources`: deployKF#224 measured
//!   ~367 KB of `.status.resources` for ~1.7k resources (~216 B each), and
//!   argo-cd#14486 reports an Application failing at ~3k resources. At
//!   1,000 objects the two lists take ~0.5 MB, a third of etcd's limit,
//!   leaving the rest for `.status.history` and `.spec`.
//! - Flux keeps one inventory entry (~80 B) per object in the
//!   Kustomization's `.status.inventory`: 1,000 objects are ~80 KB.

use crate::check::Manifest;
use crate::code::Code;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::render::RenderedFile;
use std::collections::BTreeMap;

/// Largest rendered object meshgen writes.
pub const MAX_OBJECT_BYTES: usize = 1 << 20;

/// A directory applied by one GitOps object: (its name, its directory).
pub type Unit = (String, String);

/// Refuses objects over [`MAX_OBJECT_BYTES`] and units managing more than
/// `max_objects` objects. A file no larger than the limit
/// holds no larger object; only a larger file is split at its document
/// separators to measure each object.
pub fn check(
    files: &BTreeMap<String, RenderedFile>,
    manifests: &[Manifest],
    units: &[Unit],
    max_objects: usize,
) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for (path, file) in files {
        if file.text.len() <= MAX_OBJECT_BYTES || !path.ends_with(".yaml") {
            continue;
        }
        for (i, doc) in file.text.split("\n---\n").enumerate() {
            if doc.len() > MAX_OBJECT_BYTES {
                diags.push(Diagnostic::error(Code::Limit, format!(
                    "{path}: document {} is {} bytes; Kubernetes (etcd) takes objects of at most 1.5 MiB and meshgen writes none over {} bytes",
                    i + 1,
                    doc.len(),
                    MAX_OBJECT_BYTES
                )));
            }
        }
    }
    if units.is_empty() {
        return diags;
    }
    let mut per_dir: BTreeMap<&str, usize> = BTreeMap::new();
    for m in manifests {
        if let Some((dir, _)) = m.path.rsplit_once('/') {
            *per_dir.entry(dir).or_default() += m.documents;
        }
    }
    for (name, dir) in units {
        let n = per_dir.get(dir.as_str()).copied().unwrap_or(0);
        if n > max_objects {
            diags.push(Diagnostic::error(Code::Limit, format!(
                "{dir}/: `{name}` would manage {n} objects; Argo CD keeps each in the Application's status, which etcd refuses past 1.5 MiB, so meshgen delivers at most {max_objects} (`gitops.maxObjectsPerApplication`) per Application / Kustomization"
            )));
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: String) -> RenderedFile {
        RenderedFile {
            text,
            template: None,
            declared: None,
        }
    }

    #[test]
    fn an_object_over_a_mebibyte_and_a_unit_over_the_bound_are_refused() {
        let big = format!("a: b\n---\nc: {}\n", "x".repeat(MAX_OBJECT_BYTES + 1));
        let mut files = BTreeMap::new();
        files.insert("d/big.yaml".to_string(), file(big));
        files.insert("d/small.yaml".to_string(), file("a: b\n".into()));
        let manifests = vec![
            Manifest {
                path: "d/big.yaml".into(),
                first_kind: "ConfigMap".into(),
                documents: 2,
            },
            Manifest {
                path: "d/small.yaml".into(),
                first_kind: "ConfigMap".into(),
                documents: 1,
            },
        ];
        let units = vec![("app".to_string(), "d".to_string())];
        let d = check(&files, &manifests, &units, 3);
        assert_eq!(d.0.len(), 1, "{:?}", d.0);
        assert!(
            d.0[0].message.contains("d/big.yaml: document 2 is"),
            "{:?}",
            d.0
        );
        let d = check(&files, &manifests, &units, 2);
        assert_eq!(d.0.len(), 2, "{:?}", d.0);
        assert!(
            d.0[1].message.contains("`app` would manage 3 objects"),
            "{:?}",
            d.0
        );
    }
}

//! The manifests as one multi-document stream on stdout (`meshgen
//! generate` without `-o`), the way `helm template` prints a chart: each
//! file preceded by `# Source: <path>`, in install order. This module only
//! orders and concatenates finished files; it never renders, checks or
//! touches the disk.

use crate::check::Manifest;
use crate::Generated;
use std::collections::HashMap;

/// Kinds in the order `helm template` installs them: namespaces and
/// cluster-wide definitions before what lives in them. Other kinds follow,
/// in path order.
const INSTALL_ORDER: &[&str] = &[
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

/// A manifest's place in [`INSTALL_ORDER`] (by its first document's
/// kind); kinds not listed come after all listed ones.
fn install_rank(ranks: &HashMap<&str, usize>, m: &Manifest) -> usize {
    ranks
        .get(m.first_kind.as_str())
        .copied()
        .unwrap_or(INSTALL_ORDER.len())
}

/// The manifests as one multi-document stream, each file preceded by
/// `# Source: <path>` (as `helm template` prints them), in install order.
pub fn write_manifest_stream(
    generated: &Generated,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let ranks: HashMap<&str, usize> = INSTALL_ORDER
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, i))
        .collect();
    let mut manifests: Vec<&Manifest> = generated.manifests.iter().collect();
    manifests.sort_by_key(|m| (install_rank(&ranks, m), m.path.as_str()));
    for m in manifests {
        if let Some(file) = generated.files.get(&m.path) {
            write!(out, "---\n# Source: {}\n", m.path)?;
            out.write_all(file.as_bytes())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(path: &str, kind: &str) -> Manifest {
        Manifest {
            path: path.into(),
            first_kind: kind.into(),
            documents: 1,
        }
    }

    #[test]
    fn streams_in_install_order_then_path_order() {
        let manifests = vec![
            manifest("a/Deployment-x.yaml", "Deployment"),
            manifest("b/Gateway-gw.yaml", "Gateway"),
            manifest("a/Gateway-a.yaml", "Gateway"),
            manifest("z/Namespace-z.yaml", "Namespace"),
        ];
        let files = manifests
            .iter()
            .map(|m| (m.path.clone(), format!("kind: {}\n", m.first_kind)))
            .collect();
        let generated = Generated {
            files,
            manifests,
            templates: Default::default(),
        };
        let mut out = Vec::new();
        write_manifest_stream(&generated, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "---\n# Source: z/Namespace-z.yaml\nkind: Namespace\n\
             ---\n# Source: a/Deployment-x.yaml\nkind: Deployment\n\
             ---\n# Source: a/Gateway-a.yaml\nkind: Gateway\n\
             ---\n# Source: b/Gateway-gw.yaml\nkind: Gateway\n"
        );
    }
}

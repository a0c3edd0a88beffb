//! What meshgen knows about Kubernetes objects in general, whichever stage
//! asks: which kinds are cluster-scoped, and an object's API group. The
//! rules read it to place a user's `extraManifests` in their component's
//! namespace (as deployKF does), the tree checks to require a namespace of
//! every other object.
//!
//! Facts only: this module reads no values and no rendered files.

/// Kinds that are not namespaced, by API group: the built-in ones, and
/// those of the operators a deployKF platform runs (cert-manager,
/// trust-manager, Kyverno, Kubeflow, the Gateway API). Any other kind is
/// namespaced.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("networking.k8s.io", "IngressClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("apiregistration.k8s.io", "APIService"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("cert-manager.io", "ClusterIssuer"),
    ("trust.cert-manager.io", "Bundle"),
    ("kyverno.io", "ClusterPolicy"),
    ("kyverno.io", "ClusterCleanupPolicy"),
    ("gateway.networking.k8s.io", "GatewayClass"),
    ("kubeflow.org", "Profile"),
];

/// Whether objects of `kind` in `api_version` live outside every
/// namespace.
pub fn is_cluster_scoped(api_version: &str, kind: &str) -> bool {
    let group = group(api_version);
    // The kind first: it tells almost every document apart by its length
    // alone (the tree checks ask this of every document).
    CLUSTER_SCOPED.iter().any(|&(g, k)| k == kind && g == group)
}

/// The API group of an `apiVersion` (`""` for the core group's `v1`).
pub fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_groups() {
        assert!(is_cluster_scoped("cert-manager.io/v1", "ClusterIssuer"));
        assert!(is_cluster_scoped("v1", "Namespace"));
        assert!(is_cluster_scoped(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole"
        ));
        assert!(!is_cluster_scoped("networking.k8s.io/v1", "Ingress"));
        assert!(!is_cluster_scoped("example.com/v1", "MyCustomThing"));
        // A kind's name alone does not decide: Fleet's Bundle is namespaced.
        assert!(!is_cluster_scoped("fleet.cattle.io/v1alpha1", "Bundle"));
        assert_eq!(group("v1"), "");
        assert_eq!(group("networking.k8s.io/v1"), "networking.k8s.io");
    }
}

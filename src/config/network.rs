//! meshgen's keys for Kubernetes NetworkPolicies, the second layer under
//! Istio's policies (issue 28 point 9), shared by the sections that render
//! a namespace's objects.

use schemars::JsonSchema;
use serde::Deserialize;

/// meshgen: Kubernetes NetworkPolicies for the pods of this section.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkPolicy {
    /// Render NetworkPolicies: deny ingress by default and allow only
    /// what the platform needs. false when you run your own CNI policy for
    /// these pods (then add your allows through `extraManifests`).
    pub enabled: bool,
}

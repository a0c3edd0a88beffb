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

/// meshgen: what pods in the mesh may reach outside the cluster
/// (`istio.egress`, issue 32 point 5).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Egress {
    /// `open`: any host (Istio's default, ALLOW_ANY); `registry-only`: only
    /// hosts with a ServiceEntry (mesh config `outboundTrafficPolicy`
    /// REGISTRY_ONLY), each profile's `egress.allowedHosts` visible to that
    /// profile alone.
    pub mode: EgressMode,
    /// The egress gateway: every allowed host reached through it, and a
    /// NetworkPolicy keeping profile pods from skipping their proxy.
    pub gateway: EgressGateway,
}

/// `istio.egress.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EgressMode {
    Open,
    RegistryOnly,
}

impl EgressMode {
    /// The value as written in the values file.
    pub fn as_str(self) -> &'static str {
        match self {
            EgressMode::Open => "open",
            EgressMode::RegistryOnly => "registry-only",
        }
    }
}

/// `istio.egress.gateway`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressGateway {
    /// Route each profile's allowed hosts through an egress gateway
    /// (needs `mode: registry-only`): its AuthorizationPolicy lets each
    /// profile reach only its own hosts, and a NetworkPolicy in each
    /// profile keeps its pods from skipping their proxy.
    pub enabled: bool,
    /// The namespace of the egress gateway (rendered by meshgen, Pod
    /// Security "restricted").
    #[schemars(
        pattern(super::text::DNS_LABEL),
        length(max = 63),
        extend("x-meshgen-expected" = super::text::DNS_LABEL_IS)
    )]
    pub namespace: String,
    /// The addresses of the Kubernetes API server, as the pods reach it
    /// (the endpoints of the `kubernetes` Service, e.g. 10.0.0.10/32):
    /// with the egress gateway, profile pods may reach only pods of the
    /// cluster and these; Argo's executor and the Pipelines launcher in
    /// profile pods call the API server.
    #[serde(rename = "apiServerCIDRs")]
    #[schemars(
        inner(pattern(super::text::CIDR)),
        extend("x-meshgen-expected" = "an IPv4 or IPv6 CIDR such as 10.0.0.0/8"),
        transform = super::text::expected_onto_items
    )]
    pub api_server_cidrs: Vec<String>,
}

/// meshgen: a profile's egress (`egress`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileEgress {
    /// Hosts the profile's pods may reach on port 443 (TLS) under
    /// `istio.egress.mode: registry-only`, e.g. pypi.org; each becomes a
    /// ServiceEntry visible in the profile's namespace only.
    #[schemars(
        inner(pattern(super::text::DNS_NAME), length(max = 253)),
        extend("uniqueItems" = true, "x-meshgen-expected" = super::text::DNS_NAME_IS),
        transform = super::text::expected_onto_items,
        transform = super::text::items_described("A host name.")
    )]
    pub allowed_hosts: Vec<String>,
}

//! `deploykf_dependencies.istio`: the Istio section meshgen installs.

use super::text::*;
use super::StringMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = super::section::describe::<Self>)]
pub struct Istio {
    /// `enabled`, `namespace`, `valuesOverrides`, `extraManifests`
    /// (described by `SectionDocs` below).
    #[serde(flatten)]
    pub common: super::Common,
    /// Helm charts used to install Istio.
    pub charts: IstioCharts,
    /// Container images used by Istio.
    pub images: IstioImages,
    /// Image variant appended to derived image tags.
    #[schemars(extend("enum" = ["", "debug", "distroless"]))]
    pub default_image_variant: String,
    /// meshgen: a mesh-wide STRICT PeerAuthentication in the Istio
    /// namespace (every workload of the mesh, not only meshgen's, then
    /// accepts mTLS only); false keeps STRICT to the namespaces meshgen
    /// renders.
    pub mesh_wide_strict_mtls: bool,
    /// Settings of the sidecar injection webhook.
    pub sidecar_injector_webhook: SidecarInjectorWebhook,
    /// Free-form Istio meshConfig settings; fields meshgen requires are
    /// forced to their needed values.
    /// (`null` in a values file means empty, as in deployKF.)
    #[serde(default)]
    pub mesh_config: Map<String, Value>,
    /// meshgen: the istiod revision to install; "" installs the default
    /// revision. When set, istiod is installed as istiod-<revision> and
    /// namespaces are labelled istio.io/rev.
    #[schemars(
        pattern(OPT_DNS_LABEL),
        length(max = 56),
        extend("x-meshgen-expected" = r#""" or a DNS-1123 label such as 1-30-3 (lowercase letters, digits and "-")"#)
    )]
    pub revision: String,
    /// meshgen: the Istio CNI node agent.
    pub cni: Cni,
    /// meshgen: how workloads join the mesh: `sidecar` (an Envoy in each
    /// pod) or `ambient` (ztunnel on each node, waypoints for L7 policy).
    pub dataplane_mode: DataplaneMode,
    /// meshgen: access logs, metrics, traces and dashboards of the edge.
    pub telemetry: super::Telemetry,
    /// meshgen: the NetworkPolicies of Istio's own charts
    /// (`global.networkPolicy.enabled`: istiod, and istio-cni and ztunnel
    /// when installed, admit only their ports).
    pub network_policy: super::NetworkPolicy,
    /// meshgen: what the mesh's pods may reach outside the cluster.
    pub egress: super::Egress,
}

impl super::SectionDocs for Istio {
    const ENABLED: &str = "Whether meshgen installs Istio; false when the cluster already \
        runs Istio.";
    const NAMESPACE: &str = "Namespace that holds the Istio control plane.";
    const VALUES_OVERRIDES: &str = "Free-form map merged over the chart values meshgen generates \
        for Istio.";
    const EXTRA_MANIFESTS: &str = "Additional Kubernetes manifests emitted with Istio, each a \
        YAML string or a map.";
}

/// A Pod Security Standards level, as the namespace label
/// `pod-security.kubernetes.io/enforce` names it (kubernetes/pod-security-admission
/// `api/constants.go:22-24`: privileged, baseline, restricted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurityLevel {
    Privileged,
    Baseline,
    Restricted,
}

impl PodSecurityLevel {
    /// The value as written in the values file and in the label.
    pub fn as_str(self) -> &'static str {
        match self {
            PodSecurityLevel::Privileged => "privileged",
            PodSecurityLevel::Baseline => "baseline",
            PodSecurityLevel::Restricted => "restricted",
        }
    }
}

/// How workloads join the mesh (`dataplaneMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataplaneMode {
    #[default]
    Sidecar,
    Ambient,
}

impl DataplaneMode {
    /// The value as written in the values file.
    pub fn as_str(self) -> &'static str {
        match self {
            DataplaneMode::Sidecar => "sidecar",
            DataplaneMode::Ambient => "ambient",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cni {
    /// Install the istio-cni chart and make istiod inject pods without the
    /// privileged istio-init container (which Pod Security baseline and
    /// restricted refuse). With your own Istio (`enabled: false`): whether
    /// it runs istio-cni.
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioCharts {
    /// Helm chart used for Istio's CRDs and cluster-wide base resources.
    pub istio_base: Chart,
    /// Helm chart used for the istiod control plane.
    pub istio_daemon: Chart,
}

/// A pinned Helm chart: Istio's `base` and `istiod` charts, and
/// (flattened beside its `enabled`) the gateway's `gateway` chart
/// ([`super::GatewayChart`]).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Chart {
    /// Name of the Helm chart in its repository.
    #[schemars(pattern(DNS_LABEL), length(max = 63), extend("x-meshgen-expected" = DNS_LABEL_IS))]
    pub name: String,
    /// Version of the Helm chart (semantic version).
    #[schemars(pattern(CHART_VERSION), extend("x-meshgen-expected" = CHART_VERSION_IS))]
    pub version: String,
    /// URL of the Helm chart repository (http, https or oci).
    #[schemars(pattern(CHART_REPO), extend("x-meshgen-expected" = CHART_REPO_IS))]
    pub repository: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioImages {
    /// Container image used for the Envoy sidecar and gateway proxy.
    pub istio_proxy: Image,
    /// Container image used for istiod (pilot).
    pub istio_pilot: Image,
    /// meshgen: container image of ztunnel, the per-node proxy that
    /// `dataplaneMode: ambient` installs.
    pub ztunnel: Image,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// Image repository (registry and path) without a tag.
    #[schemars(pattern(IMAGE_REPO), extend("x-meshgen-expected" = IMAGE_REPO_IS))]
    pub repository: String,
    /// Image tag; null derives it from the istiod chart version and the
    /// default image variant.
    #[serde(default)]
    #[schemars(pattern(IMAGE_TAG), extend("x-meshgen-expected" = IMAGE_TAG_IS))]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarInjectorWebhook {
    /// Extra annotations added to every pod that receives a sidecar.
    #[schemars(extend("propertyNames" = {
        "type": "string", "pattern": LABEL_KEY, "maxLength": 317, "x-meshgen-expected": LABEL_KEY_IS
    }))]
    /// (`null` in a values file means empty, as in deployKF.)
    #[serde(default)]
    pub injected_annotations: StringMap,
}

/// The Istio minor releases meshgen installs, oldest first: the ones
/// upstream supports (Istio supports its latest three minors). Each one is
/// proven by `tests/helm_istio.rs`, which renders the wrapper chart with
/// real helm over that minor's upstream charts (the reference charts in
/// `../shared/reference/istio-<version>`); the values meshgen writes have
/// the same layout in all three. Widen it only with a reference chart and
/// its trials.
pub const SUPPORTED_ISTIO_MINORS: [(u64, u64); 3] = [(1, 28), (1, 29), (1, 30)];

/// The Gateway API release whose standard-channel CRDs go with each
/// Istio minor of [`SUPPORTED_ISTIO_MINORS`]: the `sigs.k8s.io/gateway-api`
/// version in that Istio's `go.mod` (istio/istio `1.28.10:go.mod:110` and
/// `1.29.6:go.mod:110`: v1.4.1; `1.30.3:go.mod:112`: v1.5.1). meshgen
/// installs that bundle (`vendor/gateway-api/<tag>/`,
/// `model::gateway_api`) when it installs Istio, and the tree checks
/// refuse Gateway API kinds and versions it does not serve.
pub const GATEWAY_API_BUNDLES: [((u64, u64), &str); 3] = [
    ((1, 28), "v1.4.1"),
    ((1, 29), "v1.4.1"),
    ((1, 30), "v1.5.1"),
];

/// The Gateway API bundle of an Istio minor: its own from
/// [`GATEWAY_API_BUNDLES`]; for a minor older than the table (an Istio
/// meshgen does not install) the oldest, for a newer one the newest.
/// `None` (a version that names no minor) gets the oldest: it serves the
/// fewest kinds, so a check against it refuses rather than trusts.
pub fn gateway_api_bundle(minor: Option<(u64, u64)>) -> &'static str {
    let (first, last) = (
        GATEWAY_API_BUNDLES[0],
        GATEWAY_API_BUNDLES[GATEWAY_API_BUNDLES.len() - 1],
    );
    match minor {
        Some(m) if m >= last.0 => last.1,
        Some(m) => GATEWAY_API_BUNDLES
            .iter()
            .find(|(minor, _)| *minor == m)
            .map_or(first.1, |(_, b)| b),
        None => first.1,
    }
}

/// Which output relies on an entry of [`ISTIO_FEATURES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needed {
    /// Every output: an older Istio is a warning (meshgen cannot see the
    /// Istio you run, only the gateway version it deploys).
    Always,
    /// `dataplaneMode: ambient`: an older Istio is an error.
    Ambient,
    /// `api: gateway-api`: an older Istio is an error.
    GatewayApi,
}

impl Needed {
    /// Whether the output of these modes relies on the feature.
    pub fn applies(self, ambient: bool, gateway_api: bool) -> bool {
        match self {
            Needed::Always => true,
            Needed::Ambient => ambient,
            Needed::GatewayApi => gateway_api,
        }
    }
}

/// What meshgen's objects rely on in an Istio it does not install, the
/// first Istio minor that has it, and which output relies on it (see
/// README.md, "Supported Istio versions").
pub const ISTIO_FEATURES: [(&str, (u64, u64), Needed); 5] = [
    (
        "the native ext-authz `extensionProviders` entry `envoyExtAuthzHttp` (AuthorizationPolicy action CUSTOM)",
        (1, 9),
        Needed::Always,
    ),
    (
        "RequestAuthentication `outputClaimToHeaders`",
        (1, 17),
        Needed::Always,
    ),
    (
        "istiod's `PILOT_JWT_ENABLE_REMOTE_JWKS: hybrid` (the gateway fetches dex's keys through the mesh)",
        (1, 18),
        Needed::Always,
    ),
    // `targetRefs` (plural) on AuthorizationPolicy / RequestAuthentication:
    // istio/istio 81a350c1c94 "api: implement targetRefs support (#50439)",
    // first tag 1.22.0 (`pilot/pkg/model/policyattachment.go:31`
    // `GetTargetRefs()`; 1.21.0 has only the singular `GetTargetRef()`,
    // `:27`).
    (
        "policies attached to a Gateway API Gateway by `targetRefs` (for `api: gateway-api`)",
        (1, 22),
        Needed::GatewayApi,
    ),
    // Ingress traffic reaches a waypoint only when the Service or its
    // namespace has `istio.io/ingress-use-waypoint: "true"`
    // (`ENABLE_INGRESS_WAYPOINT_ROUTING`, istio/istio 1.28.10
    // `pilot/pkg/features/ambient.go:62-63`, added in 1.24.0 by e998c659786);
    // 1.24 reads the label on Services only (1.24.6
    // `pilot/pkg/serviceregistry/kube/controller/ambient/services.go:69,114`),
    // the namespace label meshgen sets is read from 1.25.0 (103e10da205,
    // `ambientindex.go:297-302`, `sidecar_interop.go:148-156`). Without it
    // gateway traffic skips the waypoints that enforce the L7 policies.
    (
        "the namespace label `istio.io/ingress-use-waypoint`, which sends gateway traffic through the waypoint enforcing a namespace's L7 policies (for `dataplaneMode: ambient`; Istio 1.24 reads it on Services only)",
        (1, 25),
        Needed::Ambient,
    ),
];

/// The entries of [`ISTIO_FEATURES`] the output of these modes relies on.
pub fn istio_features(
    ambient: bool,
    gateway_api: bool,
) -> impl Iterator<Item = &'static (&'static str, (u64, u64), Needed)> {
    ISTIO_FEATURES
        .iter()
        .filter(move |(_, _, needed)| needed.applies(ambient, gateway_api))
}

/// The supported window as text, e.g. "1.28–1.30".
pub fn supported_istio_window() -> String {
    let (first, last) = (
        SUPPORTED_ISTIO_MINORS[0],
        SUPPORTED_ISTIO_MINORS[SUPPORTED_ISTIO_MINORS.len() - 1],
    );
    format!("{}.{}–{}.{}", first.0, first.1, last.0, last.1)
}

/// The oldest Istio minor that has everything the output of these modes
/// relies on ([`istio_features`]).
pub fn minimum_own_istio(ambient: bool, gateway_api: bool) -> (u64, u64) {
    istio_features(ambient, gateway_api)
        .map(|(_, v, _)| *v)
        .max()
        .unwrap_or((1, 0))
}

/// The `major.minor` of a version or image tag such as `1.21.0`,
/// `v1.30.3` or `1.30.3-distroless`; `None` for anything else (a digest,
/// `latest`).
pub fn istio_minor(version: &str) -> Option<(u64, u64)> {
    let v = version.strip_prefix('v').unwrap_or(version);
    let mut parts = v.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway chart takes `enabled` and the flattened `Chart` keys,
    /// still refuses any other key, and its schema is the one the four
    /// keys had when it spelt them out (no description from `Chart`).
    #[test]
    fn the_gateway_chart_is_a_chart_with_enabled() {
        use crate::config::GatewayChart;
        let json = serde_json::json!({
            "enabled": true, "name": "gateway", "version": "1.30.3",
            "repository": "https://istio-release.storage.googleapis.com/charts",
        });
        let c: GatewayChart = serde_json::from_value(json.clone()).unwrap();
        assert!(c.enabled);
        assert_eq!(c.chart.version, "1.30.3");
        let mut typo = json;
        typo["verison"] = "1.30.3".into();
        let err = serde_json::from_value::<GatewayChart>(typo)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `verison`"), "{err}");
        let schema = serde_json::to_value(schemars::schema_for!(GatewayChart)).unwrap();
        let keys: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["enabled", "name", "version", "repository"]);
        assert_eq!(
            schema["required"],
            serde_json::json!(["enabled", "name", "version", "repository"])
        );
        assert_eq!(schema["additionalProperties"], false);
    }

    #[test]
    fn minors_parse_from_versions_and_tags() {
        assert_eq!(istio_minor("1.21.0"), Some((1, 21)));
        assert_eq!(istio_minor("v1.30.3"), Some((1, 30)));
        assert_eq!(istio_minor("1.30.3-distroless"), Some((1, 30)));
        assert_eq!(istio_minor("latest"), None);
        assert_eq!(supported_istio_window(), "1.28–1.30");
        assert_eq!(minimum_own_istio(false, false), (1, 18));
        assert_eq!(minimum_own_istio(false, true), (1, 22));
        assert_eq!(minimum_own_istio(true, false), (1, 25));
        assert_eq!(minimum_own_istio(true, true), (1, 25));
    }

    /// Every minor meshgen installs has its Gateway API bundle, in order.
    #[test]
    fn every_supported_minor_has_a_gateway_api_bundle() {
        let minors: Vec<(u64, u64)> = GATEWAY_API_BUNDLES.iter().map(|(m, _)| *m).collect();
        assert_eq!(minors, SUPPORTED_ISTIO_MINORS);
        assert_eq!(gateway_api_bundle(Some((1, 29))), "v1.4.1");
        assert_eq!(gateway_api_bundle(Some((1, 30))), "v1.5.1");
        assert_eq!(gateway_api_bundle(Some((1, 31))), "v1.5.1");
        assert_eq!(gateway_api_bundle(Some((1, 22))), "v1.4.1");
        assert_eq!(gateway_api_bundle(None), "v1.4.1");
    }
}

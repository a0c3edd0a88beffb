//! `deploykf_dependencies.cert_manager`: cert-manager, installed by
//! meshgen as a pinned wrapper chart (deployKF's keys), and the
//! ClusterIssuer that signs the gateway certificate. deployKF's
//! trust-manager keys (`charts.trustManager`, `images.trustManager*`) are
//! accepted and ignored: meshgen renders no trust-manager.

use super::text::*;
use super::StringMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = super::section::describe::<Self>)]
pub struct CertManager {
    /// `enabled`, `namespace`, `valuesOverrides`, `extraManifests`
    /// (described by `SectionDocs` below).
    #[serde(flatten)]
    pub common: super::Common,
    /// Helm charts used to install cert-manager.
    pub charts: CertManagerCharts,
    /// Container images of cert-manager.
    pub images: CertManagerImages,
    /// Settings of the cert-manager controller.
    pub controller: Controller,
    /// The cert-manager ClusterIssuer that signs the gateway certificate.
    pub cluster_issuer: ClusterIssuer,
}

impl super::SectionDocs for CertManager {
    const ENABLED: &str = "Whether meshgen installs cert-manager (the upstream chart, \
        CRDs included); false when the cluster already runs \
        cert-manager. Like deployKF, false also renders no \
        ClusterIssuer: the gateway certificate then names \
        `clusterIssuer.issuerName`, which you provide.";
    const NAMESPACE: &str = "Namespace cert-manager runs in (created with its release); the \
        CA Secret of the self-signed issuer chain is created there.";
    const VALUES_OVERRIDES: &str =
        "Free-form map merged over the values meshgen generates for the \
        wrapper chart (the upstream chart's values go under \
        `cert-manager:`).";
    const EXTRA_MANIFESTS: &str = "Additional Kubernetes manifests (each a YAML string or a map), \
        applied with the ClusterIssuer after cert-manager and its CRDs \
        (e.g. an ACME ClusterIssuer of your own).";
}

impl CertManager {
    /// meshgen renders the self-signed issuer chain: it installs
    /// cert-manager and `clusterIssuer.enabled` (deployKF ignores
    /// `clusterIssuer` when cert-manager is the user's). A fact of the
    /// configuration, which the rules and the model both ask.
    pub fn issuer_rendered(&self) -> bool {
        self.common.enabled
            && self.cluster_issuer.enabled
            && self.cluster_issuer.issuer_type == "SELF_SIGNED"
    }
}

// Not deny_unknown_fields: deployKF's `trustManager` is accepted (ignored).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertManagerCharts {
    /// Helm chart of cert-manager (Jetstack's `cert-manager`).
    pub cert_manager: CertManagerChart,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertManagerChart {
    /// Name of the Helm chart in its repository.
    #[schemars(pattern(DNS_LABEL), length(max = 63), extend("x-meshgen-expected" = DNS_LABEL_IS))]
    pub name: String,
    /// Version of the Helm chart, e.g. v1.21.1.
    #[schemars(pattern(V_CHART_VERSION), extend("x-meshgen-expected" = V_CHART_VERSION_IS))]
    pub version: String,
    /// URL of the Helm chart repository (http, https or oci).
    #[schemars(pattern(CHART_REPO), extend("x-meshgen-expected" = CHART_REPO_IS))]
    pub repository: String,
}

// Not deny_unknown_fields: deployKF's trust-manager images are accepted
// (ignored).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertManagerImages {
    /// Image of the cert-manager controller.
    pub cert_manager_controller: ChartImage,
    /// Image of the cert-manager webhook.
    pub cert_manager_webhook: ChartImage,
    /// Image of the cert-manager CA injector.
    pub cert_manager_cainjector: ChartImage,
    /// Image of the ACME HTTP-01 solver pods.
    pub cert_manager_acmesolver: ChartImage,
    /// Image of the startupapicheck Job (deployKF's key: cert-manager's
    /// `ctl` image ran it before v1.15).
    pub cert_manager_ctl: ChartImage,
}

/// An image of the cert-manager chart.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChartImage {
    /// Image repository (registry and path) without a tag.
    #[schemars(pattern(IMAGE_REPO), extend("x-meshgen-expected" = IMAGE_REPO_IS))]
    pub repository: String,
    /// Image tag; null uses the chart's appVersion.
    #[serde(default)]
    #[schemars(pattern(IMAGE_TAG), extend("x-meshgen-expected" = IMAGE_TAG_IS))]
    pub tag: Option<String>,
    /// Image pull policy; absent keeps the chart's (IfNotPresent).
    #[serde(default)]
    #[schemars(
        extend("enum" = ["Always", "IfNotPresent", "Never"]),
        transform = untyped
    )]
    pub pull_policy: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Controller {
    /// Extra labels on the controller pods.
    #[schemars(extend(
        "propertyNames" = {
            "type": "string", "pattern": LABEL_KEY, "maxLength": 317, "x-meshgen-expected": LABEL_KEY_IS
        },
        "additionalProperties" = {"type": "string", "pattern": LABEL_VALUE, "maxLength": 63}
    ))]
    /// (`null` in a values file means empty, as in deployKF.)
    #[serde(default)]
    pub pod_labels: StringMap,
    /// Pod securityContext of the controller, merged over the chart's
    /// (which runs it as non-root with the RuntimeDefault seccomp profile).
    /// (`null` in a values file means empty, as in deployKF.)
    #[serde(default)]
    // Its other keys are free: patterns, not `properties`, which would
    // make the map closed.
    #[schemars(extend("patternProperties" = {
        "^(fsGroup|runAsUser|runAsGroup)$": int64(),
        "^supplementalGroups$": {"type": "array", "items": int64()}
    }))]
    pub security_context: Map<String, Value>,
    /// The controller's ServiceAccount.
    pub service_account: ControllerServiceAccount,
    /// Extra command-line arguments of the controller
    /// (https://cert-manager.io/docs/cli/controller/).
    #[schemars(inner(length(min = 1)))]
    pub extra_args: Vec<String>,
}

/// A PodSecurityContext ID: Kubernetes' `format: int64` (cert-manager
/// v1.21.1 `crd-cert-manager.io_issuers.yaml:1899,1919,1938`, the
/// PodSecurityContext its CRDs embed). An integer in that range, so a
/// fraction (`fsGroup: 0.5`) or `1e300` is refused at the key (issue 30).
fn int64() -> Value {
    serde_json::json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX})
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControllerServiceAccount {
    /// Whether the chart creates the ServiceAccount.
    pub create: bool,
    /// Name of the ServiceAccount (DNS-1123 subdomain).
    #[schemars(pattern(DNS_NAME), length(max = 253), extend("x-meshgen-expected" = DNS_NAME_IS))]
    pub name: String,
    /// Annotations on the ServiceAccount.
    #[schemars(extend("propertyNames" = {
        "type": "string", "pattern": LABEL_KEY, "maxLength": 317, "x-meshgen-expected": LABEL_KEY_IS
    }))]
    /// (`null` in a values file means empty, as in deployKF.)
    #[serde(default)]
    pub annotations: StringMap,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterIssuer {
    /// Whether meshgen renders the ClusterIssuer (a self-signed CA chain);
    /// false to sign with a ClusterIssuer of your own, named by issuerName.
    /// Has no effect when cert-manager.enabled is false (no issuer is
    /// rendered then).
    pub enabled: bool,
    /// Name of the ClusterIssuer that signs the gateway certificate
    /// (DNS-1123 subdomain).
    #[schemars(pattern(DNS_NAME), length(max = 253), extend("x-meshgen-expected" = DNS_NAME_IS))]
    pub issuer_name: String,
    /// Kind of ClusterIssuer meshgen renders; only a self-signed CA chain
    /// is supported.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["SELF_SIGNED"]))]
    pub issuer_type: String,
    /// Settings of the self-signed CA chain (type SELF_SIGNED).
    pub self_signed: SelfSigned,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SelfSigned {
    /// Name of the self-signed Issuer (in the cert-manager namespace) that
    /// issues the root CA certificate (DNS-1123 subdomain).
    #[schemars(pattern(DNS_NAME), length(max = 253), extend("x-meshgen-expected" = DNS_NAME_IS))]
    pub ca_issuer_name: String,
    /// Name of the Secret, in the cert-manager namespace, that holds the
    /// root CA certificate and key (DNS-1123 subdomain).
    #[schemars(pattern(DNS_NAME), length(max = 253), extend("x-meshgen-expected" = DNS_NAME_IS))]
    pub ca_secret_name: String,
    /// Name of the ConfigMap carrying the root CA certificate for workloads
    /// that must trust the gateway (DNS-1123 subdomain); deployKF fills it
    /// with trust-manager, which meshgen does not render: setting it
    /// gives a warning.
    #[schemars(pattern(DNS_NAME), length(max = 253), extend("x-meshgen-expected" = DNS_NAME_IS))]
    pub injected_config_map_name: String,
}

//! `deploykf_core.deploykf_istio_gateway`: the ingress gateway, its
//! Deployment and Service, and the apps served behind it.

use super::text::*;
use super::StringMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = super::section::describe::<Self>)]
pub struct GatewayComponent {
    /// `enabled`, `namespace`, `valuesOverrides`, `extraManifests`
    /// (described by `SectionDocs` below).
    #[serde(flatten)]
    pub common: super::Common,
    /// meshgen: kustomize patches of this component's objects (a
    /// strategic-merge or JSON 6902 patch and its target's kind and name),
    /// written into its `kustomization.yaml`: for what meshgen has no key
    /// for (resources, tolerations, affinity, annotations).
    #[serde(default)]
    pub patches: Vec<super::Patch>,
    /// meshgen: render a namespace-wide deny-by-default AuthorizationPolicy
    /// and STRICT mTLS in the gateway namespace; null: only when meshgen
    /// deploys the gateway (`charts.istioGateway.enabled`), not into the
    /// namespace of your own gateway, nor into Istio's root namespace
    /// (where true is an error: it would apply to the whole mesh).
    #[serde(default)]
    pub namespace_zero_trust: Option<bool>,
    /// meshgen: the Pod Security level the gateway namespace enforces
    /// (label `pod-security.kubernetes.io/enforce`); null: restricted when
    /// meshgen deploys the gateway (`charts.istioGateway.enabled`), no
    /// label on the namespace of your own gateway. An error in Istio's
    /// namespace, whose Namespace meshgen does not render.
    #[serde(default)]
    #[schemars(transform = untyped)]
    pub namespace_pod_security: Option<super::PodSecurityLevel>,
    /// meshgen: NetworkPolicies admitting only the gateway's ports to its
    /// pods, and denying other ingress in its namespace where
    /// `namespaceZeroTrust` applies.
    pub network_policy: super::NetworkPolicy,
    /// meshgen: the routing API of the ingress: `istio` (Istio's Gateway
    /// and VirtualService) or `gateway-api` (the Kubernetes Gateway API's
    /// Gateway and HTTPRoute, with policies attached by `targetRefs`).
    pub api: GatewayApi,
    /// Helm charts used for the gateway.
    pub charts: GatewayCharts,
    /// Settings of the Istio Gateway resource.
    pub gateway: Gateway,
    /// Settings of the gateway Deployment.
    pub gateway_deployment: GatewayDeployment,
    /// Settings of the gateway Service.
    pub gateway_service: GatewayService,
    /// meshgen: the apps served behind the gateway.
    pub apps: Vec<App>,
    /// meshgen: more ingress gateways beside this one (the primary), e.g.
    /// an internal one for pipelines and machine clients. Each is its own
    /// Deployment, Service, ServiceAccount (so its own SPIFFE principal)
    /// and output directory, in this gateway's namespace; a key left out
    /// is taken from this gateway's, except the names (from its own
    /// `gateway.name`), `gateway.selectorLabels` (`app` and `istio`: its
    /// name), `gateway.namespace`, `gateway.wildcardHost`,
    /// `gateway.tls.credentialName` (its certificate Secret is
    /// `<gateway.name>-cert`), the Service's annotations and
    /// `loadBalancerIP`, and the ServiceAccount's annotations.
    #[serde(default)]
    #[schemars(transform = super::text::inherited_items)]
    pub additional_gateways: Vec<AdditionalGateway>,
}

impl super::SectionDocs for GatewayComponent {
    const ENABLED: &str = "Whether meshgen renders the gateway resources.";
    const NAMESPACE: &str = "Namespace that holds the gateway Deployment and its Gateway \
        resource.";
    const VALUES_OVERRIDES: &str = "deployKF's values of Istio's `gateway` chart \
        (`gateway.<key>`): meshgen renders the gateway's Deployment \
        and Service itself and applies each key with an equivalent \
        there as a kustomize patch of them (`service.externalIPs`, \
        `resources`, `tolerations`, ...); a key without one, or one \
        meshgen has its own key for, is an error.";
    const EXTRA_MANIFESTS: &str = "Additional Kubernetes manifests emitted with the gateway, each \
        a YAML string or a map.";
}

/// One of `additionalGateways`: the primary's keys, each optional, plus
/// who its users are (`auth`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdditionalGateway {
    /// login: the browser flow as on the primary gateway (oauth2-proxy,
    /// the login page); token: a bearer token is required and nothing
    /// redirects to a login page (pipelines, machine clients); none: only
    /// apps marked `auth: none`, and no identity reaches them.
    #[schemars(transform = untyped)]
    pub auth: GatewayAuth,
    /// Settings of its Gateway resource (`name` and `hostname` required).
    pub gateway: Gateway,
    /// Settings of its Deployment.
    pub gateway_deployment: GatewayDeployment,
    /// Settings of its Service.
    pub gateway_service: GatewayService,
    /// The apps served behind it.
    pub apps: Vec<App>,
}

/// Who may use an additional gateway (`additionalGateways[].auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GatewayAuth {
    Login,
    Token,
    None,
}

impl GatewayAuth {
    /// The value as written in the values file.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayAuth::Login => "login",
            GatewayAuth::Token => "token",
            GatewayAuth::None => "none",
        }
    }
}

/// An app behind the gateway.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct App {
    /// Unique name; names the rendered objects.
    #[schemars(pattern(DNS_LABEL), length(max = 63), extend("x-meshgen-expected" = DNS_LABEL_IS))]
    pub name: String,
    /// Namespace of the app's Service.
    #[schemars(pattern(DNS_LABEL), length(max = 63), extend("x-meshgen-expected" = DNS_LABEL_IS))]
    pub namespace: String,
    /// Name of the app's Service.
    #[schemars(pattern(DNS_LABEL), length(max = 63), extend("x-meshgen-expected" = DNS_LABEL_IS))]
    pub service: String,
    /// Port of the app's Service.
    #[schemars(range(min = 1))]
    pub port: u16,
    /// The port the app's pods listen on, when it differs from port (Istio
    /// authorization matches pod ports).
    #[serde(default)]
    #[schemars(with = "u16", range(min = 1))]
    pub target_port: Option<u16>,
    /// Path prefix on the main host (starts with /); exclusive with
    /// subdomain.
    #[serde(default)]
    #[schemars(with = "String")]
    pub path: Option<String>,
    /// Served at <subdomain>.<hostname>; exclusive with path.
    #[serde(default)]
    #[schemars(with = "String")]
    pub subdomain: Option<String>,
    /// required: users log in; none: public, identity headers removed.
    #[serde(default)]
    #[schemars(transform = untyped)]
    pub auth: AppAuth,
    /// Replaces the matched path prefix.
    #[serde(default)]
    #[schemars(
        with = "String",
        pattern("^/"),
        extend("x-meshgen-expected" = "a path starting with /")
    )]
    pub rewrite: Option<String>,
    /// Request timeout.
    #[serde(default)]
    #[schemars(
        with = "String",
        pattern(GO_DURATION),
        extend("x-meshgen-expected" = GO_DURATION_IS)
    )]
    pub timeout: Option<String>,
    /// Retry policy.
    #[serde(default)]
    #[schemars(with = "Retries")]
    pub retries: Option<Retries>,
    /// Labels of the app's pods; without it, the app's AuthorizationPolicy
    /// applies to its whole namespace.
    #[serde(default)]
    #[schemars(with = "StringMap")]
    pub selector: Option<StringMap>,
}

/// The routing API of the ingress (`api`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GatewayApi {
    #[default]
    Istio,
    GatewayApi,
}

impl GatewayApi {
    /// The value as written in the values file.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayApi::Istio => "istio",
            GatewayApi::GatewayApi => "gateway-api",
        }
    }
}

/// Who may reach an app (`auth`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppAuth {
    #[default]
    Required,
    None,
}

impl AppAuth {
    /// The value as written in the values file.
    pub fn as_str(self) -> &'static str {
        match self {
            AppAuth::Required => "required",
            AppAuth::None => "none",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retries {
    /// Number of retries.
    #[schemars(range(max = 100))]
    pub attempts: u32,
    /// Timeout per try.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        with = "String",
        pattern(GO_DURATION),
        extend("x-meshgen-expected" = GO_DURATION_IS)
    )]
    pub per_try_timeout: Option<String>,
    /// Envoy retry conditions, e.g. 5xx,connect-failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub retry_on: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayCharts {
    /// Helm chart used for the gateway Deployment and Service.
    pub istio_gateway: GatewayChart,
}

/// Istio's `gateway` chart: a [`super::Chart`] that may be left to the
/// user.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayChart {
    /// Whether the gateway Deployment and Service are installed; when false
    /// the user provides them.
    pub enabled: bool,
    /// `name`, `version`, `repository`: the chart, as Istio's charts are
    /// pinned.
    #[serde(flatten)]
    pub chart: super::Chart,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gateway {
    /// Name of the Gateway resource (DNS-1123 subdomain).
    #[schemars(pattern(DNS_NAME), length(max = 253), extend("x-meshgen-expected" = DNS_NAME_IS))]
    pub name: String,
    /// Host name the gateway serves, without scheme, port or path.
    #[schemars(pattern(DNS_NAME), length(max = 253), extend("x-meshgen-expected" = DNS_NAME_IS))]
    pub hostname: String,
    /// meshgen: namespace of the Istio Gateway resource (`api: istio`),
    /// when it is not the gateway namespace (Kubeflow's apps bind to
    /// `kubeflow/kubeflow-gateway`); the pods, Service, certificate Secret
    /// and policies stay in the gateway namespace. null: the gateway
    /// namespace.
    #[serde(default)]
    #[schemars(pattern(DNS_LABEL), length(max = 63), extend("x-meshgen-expected" = DNS_LABEL_IS))]
    pub namespace: Option<String>,
    /// meshgen: also serve every `*.<hostname>` on the HTTPS server (the
    /// certificate meshgen issues names it), for KServe's host-based URLs
    /// `<inference service>-<namespace>.<hostname>`: a tenant's
    /// VirtualService on this Gateway may then name its own such host.
    /// KServe's `ingressDomain` must be the hostname (`api: istio` only).
    #[serde(default)]
    pub wildcard_host: bool,
    /// Container ports the gateway pods listen on.
    pub ports: Ports,
    /// TLS behaviour of the gateway.
    pub tls: Tls,
    /// Pod labels that identify the gateway Deployment's pods.
    #[schemars(extend(
        "minProperties" = 1,
        "propertyNames" = {
            "type": "string", "pattern": LABEL_KEY, "maxLength": 317, "x-meshgen-expected": LABEL_KEY_IS
        },
        "additionalProperties" = {"type": "string", "pattern": LABEL_VALUE, "maxLength": 63}
    ))]
    pub selector_labels: StringMap,
    /// Whether the gateway expects the PROXY protocol on all its ports.
    pub enable_proxy_protocol: bool,
    /// Number of X-Forwarded-For hops, counted from the right, that are
    /// trusted.
    #[schemars(range(max = 64))]
    pub xff_num_trusted_hops: u32,
    /// Whether the user email forwarded to Kubeflow apps is lower-cased.
    pub email_to_lowercase: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    /// Container port for plain HTTP.
    #[schemars(range(min = 1))]
    pub http: u16,
    /// Container port for HTTPS.
    #[schemars(range(min = 1))]
    pub https: u16,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tls {
    /// Whether the gateway serves HTTPS; must stay true.
    pub enabled: bool,
    /// Whether browsers reach the platform over HTTPS, which sets link
    /// schemes and cookie flags.
    pub clients_use_https: bool,
    /// Whether TLS connections are matched on their SNI host name.
    #[serde(rename = "matchSNI")]
    pub match_sni: bool,
    /// Whether plain HTTP requests are redirected to HTTPS.
    pub redirect: bool,
    /// Name of an existing kubernetes.io/tls Secret, in the gateway
    /// namespace, that holds the gateway certificate; when set, meshgen
    /// renders no cert-manager Certificate and the Gateway uses this
    /// Secret; when null, meshgen renders a Certificate whose Secret is
    /// `deploykf-istio-gateway-cert`.
    #[serde(default)]
    #[schemars(pattern(DNS_NAME), length(max = 253), extend("x-meshgen-expected" = DNS_NAME_IS))]
    pub credential_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayDeployment {
    /// Number of gateway pods when autoscaling is disabled.
    #[schemars(range(min = 1, max = 1000))]
    pub replica_count: u32,
    /// ServiceAccount of the gateway pods.
    pub service_account: ServiceAccount,
    /// HorizontalPodAutoscaler of the gateway pods.
    pub autoscaling: Autoscaling,
    /// Annotations on the gateway pods.
    #[schemars(extend("propertyNames" = {
        "type": "string", "pattern": LABEL_KEY, "maxLength": 317, "x-meshgen-expected": LABEL_KEY_IS
    }))]
    /// (`null` in a values file means empty, as in deployKF.)
    #[serde(default)]
    pub pod_annotations: StringMap,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccount {
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
pub struct Autoscaling {
    /// Whether the autoscaler is created.
    pub enabled: bool,
    /// Lowest number of pods the autoscaler keeps.
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: u32,
    /// Highest number of pods the autoscaler allows.
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: u32,
    /// Average CPU use, in percent of requests, the autoscaler aims for.
    #[serde(rename = "targetCPUUtilizationPercentage")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: u32,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayService {
    /// Name of the Service (DNS-1035 label).
    #[schemars(pattern(DNS_1035), length(max = 63), extend("x-meshgen-expected" = DNS_1035_IS))]
    pub name: String,
    /// Annotations on the Service.
    #[schemars(extend("propertyNames" = {
        "type": "string", "pattern": LABEL_KEY, "maxLength": 317, "x-meshgen-expected": LABEL_KEY_IS
    }))]
    /// (`null` in a values file means empty, as in deployKF.)
    #[serde(default)]
    pub annotations: StringMap,
    /// Kubernetes Service type.
    #[serde(rename = "type")]
    pub service_type: ServiceType,
    /// Fixed IP requested for a LoadBalancer Service, or empty to let the
    /// provider choose.
    #[serde(rename = "loadBalancerIP")]
    #[schemars(pattern(IP), extend("x-meshgen-expected" = r#"an IPv4 or IPv6 address, or """#))]
    pub load_balancer_ip: String,
    /// Client CIDR ranges allowed through a LoadBalancer Service; empty
    /// allows all.
    #[schemars(
        inner(pattern(CIDR)),
        extend("x-meshgen-expected" = "an IPv4 or IPv6 CIDR such as 10.0.0.0/8"),
        transform = expected_onto_items
    )]
    pub load_balancer_source_ranges: Vec<String>,
    /// Ports the Service exposes to clients.
    pub ports: OptionalPorts,
}

/// The gateway Service's type (`gatewayService.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ServiceType {
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    /// The value as written in the values file (and in the Service).
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionalPorts {
    /// Client-facing HTTP port; null uses gateway.ports.http.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub http: Option<u16>,
    /// Client-facing HTTPS port; null uses gateway.ports.https.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub https: Option<u16>,
}

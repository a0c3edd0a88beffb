//! The typed view of the sections meshgen renders, deserialized from the
//! merged values after the schema has accepted them. Field names follow
//! deployKF's keys (`serde(rename_all = "camelCase")`, with the odd ones
//! renamed explicitly). Free-form maps stay JSON.
//!
//! Only types live here: no defaults (they come from
//! `default_values.yaml`), no rules (they are in `rules`).

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Value};

pub type StringMap = IndexMap<String, String>;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub gitops: Gitops,
    pub argocd: Argocd,
    pub deploykf_dependencies: Dependencies,
    pub deploykf_core: Core,
}

/// Ours: how the tree reaches the cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gitops {
    pub engine: String,
    pub flux: Flux,
    pub existing_namespaces: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flux {
    pub namespace: String,
    pub source_ref: SourceRef,
    pub path: String,
    pub interval: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SourceRef {
    pub kind: String,
    pub name: String,
}

/// deployKF's `argocd` keys (plus our `syncPolicy`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Argocd {
    pub app_name_prefix: String,
    pub namespace: String,
    pub project: String,
    pub source: ArgoSource,
    pub destination: ArgoDestination,
    pub sync_policy: SyncPolicy,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ArgoSource {
    pub repo: Repo,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repo {
    pub url: String,
    pub revision: String,
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ArgoDestination {
    pub server: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncPolicy {
    pub automated: bool,
    pub prune: bool,
    pub self_heal: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Dependencies {
    pub cert_manager: CertManager,
    pub istio: Istio,
}

/// Only the keys meshgen acts on; cert-manager itself is a prerequisite.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertManager {
    pub namespace: String,
    pub cluster_issuer: ClusterIssuer,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterIssuer {
    pub enabled: bool,
    pub issuer_name: String,
    #[serde(rename = "type")]
    pub issuer_type: String,
    pub self_signed: SelfSigned,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfSigned {
    pub ca_issuer_name: String,
    pub ca_secret_name: String,
    pub injected_config_map_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Core {
    pub deploykf_auth: Auth,
    pub deploykf_istio_gateway: GatewayComponent,
    pub deploykf_profiles_generator: ProfilesGenerator,
}

/// deployKF's profiles generator (plus our `output`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfilesGenerator {
    pub enabled: bool,
    pub output: String,
    #[serde(default)]
    pub extra_manifests: Vec<Value>,
    pub profile_defaults: ProfileDefaults,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub profiles: Vec<Profile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileDefaults {
    pub profile_name_prefix: String,
    pub owner_email: String,
    pub member_access: Access,
    pub plugins: Vec<Plugin>,
    pub resource_quota_spec: Map<String, Value>,
    pub tools: Tools,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    pub role: Option<String>,
    pub notebooks_access: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Plugin {
    pub kind: String,
    pub spec: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tools {
    #[serde(default)]
    pub kubeflow_pipelines: Option<KubeflowPipelines>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeflowPipelines {
    #[serde(default)]
    pub object_store_auth: Option<ObjectStoreAuth>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStoreAuth {
    #[serde(default)]
    pub existing_secret: Option<String>,
    #[serde(default)]
    pub existing_secret_namespace: Option<String>,
    #[serde(default)]
    pub existing_secret_access_key_key: Option<String>,
    #[serde(default)]
    pub existing_secret_secret_key_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    pub id: String,
    pub users: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub members: Vec<Member>,
    #[serde(default)]
    pub owner_email: Option<String>,
    #[serde(default)]
    pub plugins: Option<Vec<Plugin>>,
    #[serde(default)]
    pub resource_quota_spec: Option<Map<String, Value>>,
    #[serde(default)]
    pub tools: Option<Tools>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub access: Option<Access>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Istio {
    pub enabled: bool,
    pub namespace: String,
    pub values_overrides: Map<String, Value>,
    pub extra_manifests: Vec<Value>,
    pub charts: IstioCharts,
    pub images: IstioImages,
    pub default_image_variant: String,
    pub sidecar_injector_webhook: SidecarInjectorWebhook,
    pub mesh_config: Map<String, Value>,
    /// Ours: "" for the default revision.
    pub revision: String,
    /// Ours: the istio-cni node agent.
    pub cni: Cni,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Cni {
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioCharts {
    pub istio_base: Chart,
    pub istio_daemon: Chart,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Chart {
    pub name: String,
    pub version: String,
    pub repository: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioImages {
    pub istio_proxy: Image,
    pub istio_pilot: Image,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Image {
    pub repository: String,
    #[serde(default)]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarInjectorWebhook {
    pub injected_annotations: StringMap,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayComponent {
    pub enabled: bool,
    pub namespace: String,
    pub values_overrides: Map<String, Value>,
    pub extra_manifests: Vec<Value>,
    pub charts: GatewayCharts,
    pub gateway: Gateway,
    pub gateway_deployment: GatewayDeployment,
    pub gateway_service: GatewayService,
    /// Ours: the apps served behind the gateway.
    pub apps: Vec<App>,
}

/// Ours: one app behind the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub name: String,
    pub namespace: String,
    pub service: String,
    pub port: u16,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub subdomain: Option<String>,
    #[serde(default = "auth_required")]
    pub auth: String,
    /// The port the app's pods listen on, when it differs from `port`.
    #[serde(default)]
    pub target_port: Option<u16>,
    /// Labels of the app's pods; without it the app's policy applies to
    /// its whole namespace.
    #[serde(default)]
    pub selector: Option<StringMap>,
    #[serde(default)]
    pub rewrite: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retries: Option<Retries>,
}

fn auth_required() -> String {
    "required".into()
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Retries {
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
}

/// deployKF's `deploykf_auth` (dex and oauth2-proxy), plus ours: `dex.enabled`,
/// `oauth2Proxy.oidc`, `identity`, `extensionProvider`, `m2m`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    pub enabled: bool,
    pub namespace: String,
    pub values_overrides: Map<String, Value>,
    pub extra_manifests: Vec<Value>,
    pub images: AuthImages,
    pub dex: Dex,
    pub oauth2_proxy: Oauth2Proxy,
    pub identity: Identity,
    pub extension_provider: ExtensionProvider,
    pub m2m: M2m,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthImages {
    pub dex: PulledImage,
    pub oauth2_proxy: PulledImage,
    pub kubectl: PulledImage,
    pub password_hasher: PulledImage,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PulledImage {
    pub repository: String,
    pub tag: String,
    pub pull_policy: String,
}

/// deployKF's shape for a secret: `value` (refused by meshgen), or an
/// existing Secret, optionally generated in the cluster.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub existing_secret: String,
    #[serde(default)]
    pub existing_secret_key: String,
    #[serde(default)]
    pub generate_secret: bool,
    /// Static passwords only: `plain` or `hash`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dex {
    pub enabled: bool,
    pub static_passwords: Vec<StaticPassword>,
    pub connectors: Vec<Connector>,
    pub expiry: DexExpiry,
    pub clients: DexClients,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StaticPassword {
    pub email: String,
    pub password: SecretRef,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connector {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub config_existing_secret: Option<String>,
    #[serde(default)]
    pub config_existing_secret_key: Option<String>,
    /// Ours: environment variables (from existing Secrets) that `$VAR`
    /// references in `config` expand to.
    #[serde(default)]
    pub env: IndexMap<String, SecretRef>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DexExpiry {
    pub id_token: String,
    pub refresh_token: RefreshExpiry,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct RefreshExpiry {
    pub idle: String,
    pub total: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DexClients {
    pub oauth2_proxy: DexClient,
    pub minio_console: DexClient,
    pub argo_server: DexClient,
    #[serde(rename = "kubeflowPipelinesSDK")]
    pub kubeflow_pipelines_sdk: PublicClient,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DexClient {
    pub client_id: String,
    pub client_secret: SecretRef,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicClient {
    pub enabled: bool,
    pub client_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Oauth2Proxy {
    pub enable_sign_in_page: bool,
    pub cookie: Cookie,
    pub oidc: Oidc,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Cookie {
    pub name: String,
    pub expire: String,
    pub refresh: String,
    pub secret: SecretRef,
}

/// Ours: the external issuer used when `dex.enabled` is false.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Oidc {
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: SecretRef,
    /// JWKS of the issuer for the gateway; "" = discovered from the issuer.
    pub jwks_uri: String,
    pub scopes: Vec<String>,
}

/// Ours: how the verified identity reaches apps.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub user_header: String,
    pub groups_header: String,
    pub user_claim: String,
    pub groups_claim: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExtensionProvider {
    pub name: String,
}

/// Ours: Kubernetes ServiceAccount tokens accepted at the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct M2m {
    pub enabled: bool,
    pub issuer: String,
    pub jwks_uri: String,
    pub user_claim: String,
    pub audiences: Vec<String>,
    pub allow_anonymous_discovery: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayCharts {
    pub istio_gateway: GatewayChart,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GatewayChart {
    pub enabled: bool,
    pub name: String,
    pub version: String,
    pub repository: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    pub name: String,
    pub hostname: String,
    pub ports: Ports,
    pub tls: Tls,
    pub selector_labels: StringMap,
    pub enable_proxy_protocol: bool,
    pub xff_num_trusted_hops: u32,
    pub email_to_lowercase: bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Ports {
    pub http: u16,
    pub https: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    pub enabled: bool,
    pub clients_use_https: bool,
    #[serde(rename = "matchSNI")]
    pub match_sni: bool,
    pub redirect: bool,
    /// Ours: an existing TLS Secret; no Certificate is rendered.
    #[serde(default)]
    pub credential_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayDeployment {
    pub replica_count: u32,
    pub service_account: ServiceAccount,
    pub autoscaling: Autoscaling,
    pub pod_annotations: StringMap,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAccount {
    pub name: String,
    pub annotations: StringMap,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Autoscaling {
    pub enabled: bool,
    pub min_replicas: u32,
    pub max_replicas: u32,
    #[serde(rename = "targetCPUUtilizationPercentage")]
    pub target_cpu_utilization_percentage: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayService {
    pub name: String,
    pub annotations: StringMap,
    #[serde(rename = "type")]
    pub service_type: String,
    #[serde(rename = "loadBalancerIP")]
    pub load_balancer_ip: String,
    pub load_balancer_source_ranges: Vec<String>,
    #[serde(default)]
    pub ports: OptionalPorts,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct OptionalPorts {
    #[serde(default)]
    pub http: Option<u16>,
    #[serde(default)]
    pub https: Option<u16>,
}

//! `deploykf_core.deploykf_auth`: dex, oauth2-proxy, the identity headers
//! and the machine-to-machine tokens, and deployKF's shape for a secret.

use super::text::*;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// deployKF's `deploykf_auth` (dex and oauth2-proxy), plus ours:
/// `dex.enabled`, `oauth2Proxy.oidc`, `identity`, `extensionProvider`,
/// `m2m`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(transform = super::section::describe::<Self>)]
pub struct Auth {
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
    /// meshgen: NetworkPolicies denying ingress in the auth namespace but
    /// to dex and oauth2-proxy from the gateway (and from who else verifies
    /// dex's tokens).
    pub network_policy: super::NetworkPolicy,
    /// Images of the auth component.
    pub images: AuthImages,
    /// dex, the OIDC issuer at https://<hostname>/dex.
    pub dex: Dex,
    /// oauth2-proxy, the login step.
    pub oauth2_proxy: Oauth2Proxy,
    /// meshgen: the headers that carry the verified identity to apps.
    pub identity: Identity,
    /// meshgen: the mesh config extensionProviders entry for oauth2-proxy.
    pub extension_provider: ExtensionProvider,
    /// meshgen: Kubernetes ServiceAccount tokens accepted at the gateway.
    pub m2m: M2m,
}

impl super::SectionDocs for Auth {
    const ENABLED: &str = "Render the auth component and the gateway's login and JWT \
        policies.";
    const NAMESPACE: &str = "Namespace of oauth2-proxy, dex and the secret generator Jobs.";
    const VALUES_OVERRIDES: &str = "deployKF key, accepted; has no effect (meshgen renders plain \
        manifests).";
    const EXTRA_MANIFESTS: &str = "Extra Kubernetes manifests rendered with the auth component \
        (YAML strings or maps).";
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthImages {
    /// dex.
    pub dex: PulledImage,
    /// oauth2-proxy.
    pub oauth2_proxy: PulledImage,
    /// Runs the secret generator Jobs (kubectl, sh).
    pub kubectl: PulledImage,
    /// meshgen: computes bcrypt hashes of generated dex passwords
    /// (htpasswd).
    pub password_hasher: PulledImage,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PulledImage {
    /// Image repository.
    #[schemars(length(min = 1))]
    pub repository: String,
    /// Image tag.
    #[schemars(length(min = 1))]
    pub tag: String,
    /// Image pull policy.
    #[schemars(
        extend("enum" = ["Always", "IfNotPresent", "Never"]),
        transform = untyped
    )]
    pub pull_policy: String,
}

/// deployKF's shape for a secret: `value` (refused by meshgen), or an
/// existing Secret, optionally generated in the cluster.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    /// deployKF's plain-text value: refused by meshgen (no secret enters
    /// the output); create a Secret and set existingSecret.
    #[serde(default)]
    pub value: Option<String>,
    /// Name of an existing Secret in the auth namespace; "" when unused.
    #[serde(default)]
    #[schemars(pattern(SECRET_NAME), length(max = 253), extend("x-meshgen-expected" = SECRET_NAME_IS))]
    pub existing_secret: String,
    /// Key of the value in that Secret.
    #[serde(default)]
    #[schemars(pattern(SECRET_KEY), length(max = 253), extend("x-meshgen-expected" = SECRET_KEY_IS))]
    pub existing_secret_key: String,
    /// Have a Job create the Secret in the cluster with a random value when
    /// it does not exist (never changes an existing one).
    #[serde(default)]
    pub generate_secret: bool,
    /// hash: the Secret holds a bcrypt hash; plain (the default): it holds
    /// the password, which dex's pod hashes when it starts.
    #[serde(default, rename = "type")]
    #[schemars(with = "SecretKind", transform = untyped)]
    pub kind: Option<SecretKind>,
}

/// What a static password's Secret holds (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecretKind {
    Plain,
    Hash,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dex {
    /// meshgen: deploy dex; false uses the external issuer in
    /// oauth2Proxy.oidc.
    pub enabled: bool,
    /// Users of dex's password database.
    pub static_passwords: Vec<StaticPassword>,
    /// dex connectors (as upstream dex), plus meshgen's env.
    pub connectors: Vec<Connector>,
    /// Token lifetimes.
    pub expiry: DexExpiry,
    /// OpenID clients of dex.
    pub clients: DexClients,
}

/// A dex static password.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticPassword {
    /// Login email.
    #[schemars(pattern(EMAIL), length(max = 254), extend("x-meshgen-expected" = EMAIL_IS))]
    pub email: String,
    /// Where the password hash is read from.
    pub password: SecretRef,
}

/// A dex connector.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connector {
    /// Connector type (oidc, github, ldap, ...).
    #[serde(rename = "type")]
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Connector id.
    #[schemars(length(min = 1))]
    pub id: String,
    /// Display name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Connector config; secrets as $VAR, filled from env.
    #[serde(default)]
    pub config: Map<String, Value>,
    /// Secret in the auth namespace holding the connector's whole config
    /// (YAML, the `config` mapping), read by dex's pod when it starts;
    /// `config` is then empty.
    #[serde(default)]
    #[schemars(with = "String", pattern(SECRET_NAME), length(max = 253), extend("x-meshgen-expected" = SECRET_NAME_IS))]
    pub config_existing_secret: Option<String>,
    /// Key of the config in configExistingSecret.
    #[serde(default)]
    #[schemars(with = "String", pattern(SECRET_KEY), length(max = 253), extend("x-meshgen-expected" = SECRET_KEY_IS))]
    pub config_existing_secret_key: Option<String>,
    /// meshgen: environment variables from existing Secrets, referenced as
    /// $NAME in config.
    #[serde(default)]
    #[schemars(
        extend("propertyNames" = {"pattern": ENV_NAME}),
        transform = env_secrets
    )]
    pub env: IndexMap<String, SecretRef>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DexExpiry {
    /// Lifetime of ID tokens.
    #[schemars(pattern(GO_DURATION), extend("x-meshgen-expected" = GO_DURATION_IS))]
    pub id_token: String,
    /// Refresh tokens.
    pub refresh_token: RefreshExpiry,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshExpiry {
    /// Maximum time since last use.
    #[schemars(pattern(GO_DURATION), extend("x-meshgen-expected" = GO_DURATION_IS))]
    pub idle: String,
    /// Maximum lifetime.
    #[schemars(pattern(GO_DURATION), extend("x-meshgen-expected" = GO_DURATION_IS))]
    pub total: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DexClients {
    /// oauth2-proxy's client.
    pub oauth2_proxy: DexClient,
    /// Minio Console's client (registered when its secret is set).
    pub minio_console: DexClient,
    /// Argo Server's client (registered when its secret is set).
    pub argo_server: DexClient,
    /// Public client of the Kubeflow Pipelines SDK.
    #[serde(rename = "kubeflowPipelinesSDK")]
    pub kubeflow_pipelines_sdk: PublicClient,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DexClient {
    /// Client id.
    #[schemars(length(min = 1))]
    pub client_id: String,
    /// Client secret.
    #[schemars(transform = secret_without_type)]
    pub client_secret: SecretRef,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublicClient {
    /// Register it.
    pub enabled: bool,
    /// Client id.
    #[schemars(length(min = 1))]
    pub client_id: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Oauth2Proxy {
    /// Show a sign-in page before redirecting to the issuer.
    pub enable_sign_in_page: bool,
    /// Session cookie.
    pub cookie: Cookie,
    /// meshgen: the external issuer, when dex.enabled is false.
    pub oidc: Oidc,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cookie {
    /// Cookie name.
    #[schemars(
        pattern(COOKIE_NAME),
        extend("x-meshgen-expected" = "a cookie name (no spaces or separators)")
    )]
    pub name: String,
    /// --cookie-expire.
    #[schemars(pattern(GO_DURATION), extend("x-meshgen-expected" = GO_DURATION_IS))]
    pub expire: String,
    /// --cookie-refresh.
    #[schemars(pattern(GO_DURATION), extend("x-meshgen-expected" = GO_DURATION_IS))]
    pub refresh: String,
    /// --cookie-secret (16, 24 or 32 bytes).
    #[schemars(transform = secret_without_type)]
    pub secret: SecretRef,
}

/// The external issuer used when `dex.enabled` is false.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Oidc {
    /// Issuer URL, as in the tokens' iss claim; "" with dex.
    #[schemars(pattern(OPT_HTTP_URL), extend("x-meshgen-expected" = OPT_HTTP_URL_IS))]
    pub issuer_url: String,
    /// oauth2-proxy's client id at the issuer.
    pub client_id: String,
    /// oauth2-proxy's client secret at the issuer.
    #[schemars(transform = secret_without_type)]
    pub client_secret: SecretRef,
    /// JWKS URI for the gateway; "" discovers it.
    #[schemars(pattern(OPT_HTTP_URL), extend("x-meshgen-expected" = OPT_HTTP_URL_IS))]
    pub jwks_uri: String,
    /// Scopes oauth2-proxy requests.
    #[schemars(inner(length(min = 1)))]
    pub scopes: Vec<String>,
}

/// How the verified identity reaches apps.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identity {
    /// Header with the user's id.
    #[schemars(pattern(HEADER), length(max = 128), extend("x-meshgen-expected" = HEADER_IS))]
    pub user_header: String,
    /// Header with the user's groups.
    #[schemars(pattern(HEADER), length(max = 128), extend("x-meshgen-expected" = HEADER_IS))]
    pub groups_header: String,
    /// Claim copied into userHeader.
    #[schemars(length(min = 1))]
    pub user_claim: String,
    /// Claim copied into groupsHeader.
    #[schemars(length(min = 1))]
    pub groups_claim: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionProvider {
    /// Its name.
    #[schemars(pattern(DNS_LABEL), length(max = 63), extend("x-meshgen-expected" = DNS_LABEL_IS))]
    pub name: String,
}

/// Kubernetes ServiceAccount tokens accepted at the gateway.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct M2m {
    /// Accept them.
    pub enabled: bool,
    /// The cluster's service account issuer.
    #[schemars(pattern(HTTP_URL), extend("x-meshgen-expected" = HTTP_URL_IS))]
    pub issuer: String,
    /// Its JWKS URI; "" serves the cluster's keys through meshgen's
    /// in-cluster JWKS relay over HTTP (as Kubeflow's cluster-jwks-proxy).
    #[schemars(pattern(OPT_HTTP_URL), extend("x-meshgen-expected" = OPT_HTTP_URL_IS))]
    pub jwks_uri: String,
    /// Claim copied into the user header.
    #[schemars(length(min = 1))]
    pub user_claim: String,
    /// Accepted audiences (`aud`); at least one when enabled.
    #[schemars(inner(length(min = 1)))]
    pub audiences: Vec<String>,
    /// Render a ClusterRoleBinding letting unauthenticated clients read the
    /// issuer's keys.
    pub allow_anonymous_discovery: bool,
}

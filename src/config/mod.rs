//! The typed view of the sections meshgen renders, deserialized from the
//! merged values after the schema has accepted them, and the single
//! description of those sections: the JSON Schema of every key they hold
//! is derived from these types (`schemars`; doc comments become
//! `description`s, `#[schemars(...)]` attributes carry the constraints)
//! by `schema::derive`, which merges in the generated nodes of the deployKF
//! sections meshgen ignores.
//!
//! Field names follow deployKF's keys (`serde(rename_all = "camelCase")`,
//! with the odd ones renamed explicitly). Free-form maps stay JSON. Every
//! struct denies unknown fields, except the few whose node in the schema
//! also holds ignored deployKF keys (the schema rejects a misspelt key
//! there; serde skips the ignored ones).
//!
//! Only types live here: no rules (they are in `rules`), and no default
//! values of the sections, which come from `default_values.yaml`. The
//! `#[serde(default)]` fields are the optional keys that file does not
//! set (an app's `path`, a profile's `members`, a secret's
//! `existingSecret`, ...): an absent one reads as `None`, empty, `false`,
//! or the value its attribute names (an app's `auth` is `required`).

mod auth;
mod cert_manager;
mod gateway;
mod istio;
mod network;
mod patch;
mod profiles;
mod section;
pub mod telemetry;
pub mod text;

pub use auth::*;
pub use cert_manager::*;
pub use gateway::*;
pub use istio::*;
pub use network::*;
pub use patch::*;
pub use profiles::*;
pub use section::{Common, SectionDocs};
pub use telemetry::*;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use text::*;

pub type StringMap = IndexMap<String, String>;

/// Values accepted by meshgen: deployKF-compatible keys; the Istio,
/// cert-manager and gateway sections are checked in detail, other deployKF
/// sections are accepted and ignored.
// No deny_unknown_fields here and on the other structs holding ignored
// deployKF keys: the schema lists those keys, serde skips them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(title = "meshgen values")]
pub struct Config {
    /// yaml-language-server modeline key; meshgen ignores it.
    #[serde(rename = "$schema", default)]
    #[schemars(with = "String")]
    pub schema: Option<String>,
    pub gitops: Gitops,
    pub argocd: Argocd,
    pub deploykf_dependencies: Dependencies,
    pub deploykf_core: Core,
}

/// meshgen: how the tree is delivered to the cluster.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gitops {
    /// argocd (an app-of-apps, deployKF's way), flux (Kustomizations and
    /// HelmReleases), or none (plain kustomize).
    #[schemars(transform = untyped)]
    pub engine: GitopsEngine,
    /// Flux settings (gitops.engine: flux).
    pub flux: Flux,
    /// Namespaces that exist in your cluster and that rendered objects
    /// (e.g. extraManifests) may live in, beyond those meshgen creates or
    /// relies on.
    #[schemars(
        inner(pattern(DNS_LABEL), length(max = 63)),
        extend("uniqueItems" = true, "x-meshgen-expected" = DNS_LABEL_IS),
        transform = expected_onto_items,
        transform = items_described("A namespace name.")
    )]
    pub existing_namespaces: Vec<String>,
    /// Most objects one Argo CD Application or Flux Kustomization manages;
    /// the profiles are split into shards that fit. At most 1000: Argo CD
    /// keeps every managed object in the Application's status, which etcd
    /// refuses past 1.5 MiB (README: "Sharding the profiles").
    #[schemars(range(min = 100, max = 1000))]
    pub max_objects_per_application: usize,
}

/// How the tree reaches the cluster (`gitops.engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GitopsEngine {
    Argocd,
    Flux,
    None,
}

impl GitopsEngine {
    /// The value as written in the values file (and passed to templates).
    pub fn as_str(self) -> &'static str {
        match self {
            GitopsEngine::Argocd => "argocd",
            GitopsEngine::Flux => "flux",
            GitopsEngine::None => "none",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Flux {
    /// Namespace of the Flux objects.
    #[schemars(pattern(DNS_LABEL), length(max = 63), extend("x-meshgen-expected" = DNS_LABEL_IS))]
    pub namespace: String,
    /// The Flux source holding the generated tree (what `flux bootstrap`
    /// creates).
    pub source_ref: SourceRef,
    /// Path of the generated tree inside the source, e.g.
    /// ./clusters/prod/meshgen (empty: the root).
    #[schemars(
        pattern(REL_PATH),
        length(max = 255),
        extend("x-meshgen-expected" = "a relative path inside the source")
    )]
    pub path: String,
    /// How often Flux reconciles, e.g. 10m.
    #[schemars(
        pattern(FLUX_INTERVAL),
        extend("x-meshgen-expected" = "a Go duration such as 10m or 1h30m")
    )]
    pub interval: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRef {
    /// Kind of the source.
    #[schemars(
        extend("enum" = ["GitRepository", "OCIRepository", "Bucket"]),
        transform = untyped
    )]
    pub kind: String,
    /// Name of the source, in the Flux namespace.
    #[schemars(pattern(DNS_NAME), length(max = 253), extend("x-meshgen-expected" = DNS_NAME_IS))]
    pub name: String,
}

/// Argo CD: the app-of-apps meshgen renders when `gitops.engine` is argocd
/// (deployKF's keys, plus `syncPolicy`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Argocd {
    /// Prefix of every Application name; when set, the destination must be
    /// a remote cluster.
    #[schemars(
        pattern(NAME_PREFIX),
        length(max = 40),
        extend("x-meshgen-expected" = r#""" or a name prefix of lowercase letters, digits and "-" (e.g. prod-eu-)"#)
    )]
    pub app_name_prefix: String,
    /// Namespace Argo CD runs in (where the Applications are created).
    #[schemars(pattern(DNS_LABEL), length(max = 63), extend("x-meshgen-expected" = DNS_LABEL_IS))]
    pub namespace: String,
    /// Argo CD project of the Applications.
    #[schemars(pattern(DNS_NAME), length(max = 253), extend("x-meshgen-expected" = DNS_NAME_IS))]
    pub project: String,
    /// The git repository holding the generated tree.
    pub source: ArgoSource,
    /// The cluster the Applications deploy to; `name` wins over `server`.
    pub destination: ArgoDestination,
    /// meshgen: the sync policy of every Application.
    pub sync_policy: SyncPolicy,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ArgoSource {
    /// Where the generated tree is committed.
    pub repo: Repo,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Repo {
    /// Git URL of the repository (https://, ssh:// or git@host:path); empty
    /// renders no Argo CD objects.
    #[schemars(
        pattern(GIT_URL),
        extend("x-meshgen-expected" = "a git URL: https://..., ssh://... or git@host:owner/repo.git")
    )]
    pub url: String,
    /// Branch, tag or commit Argo CD follows (required with `url`).
    #[schemars(
        pattern(NO_SPACE_OR_QUOTE),
        length(max = 255),
        extend("x-meshgen-expected" = "a git revision without spaces or quotes")
    )]
    pub revision: String,
    /// Path of the generated tree inside the repository, e.g.
    /// ./GENERATOR_OUTPUT/ (required with `url`; ./ for the repository root).
    #[schemars(
        pattern(REL_PATH),
        length(max = 255),
        extend("x-meshgen-expected" = "a relative path inside the repository, e.g. ./GENERATOR_OUTPUT/")
    )]
    pub path: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArgoDestination {
    /// API server URL of the destination cluster.
    #[schemars(pattern(HTTPS_URL), extend("x-meshgen-expected" = "an https:// URL"))]
    pub server: String,
    /// Name of the destination cluster in Argo CD (takes precedence over
    /// server).
    #[schemars(
        pattern(NO_SPACE_OR_QUOTE),
        length(max = 253),
        extend("x-meshgen-expected" = "a cluster name without spaces or quotes")
    )]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncPolicy {
    /// Sync automatically when the repository changes (deployKF syncs by
    /// hand).
    pub automated: bool,
    /// With automated sync, delete objects that left the tree.
    pub prune: bool,
    /// With automated sync, undo changes made in the cluster.
    pub self_heal: bool,
}

/// deployKF dependencies installed before the platform's own components.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct Dependencies {
    /// cert-manager, which meshgen installs as a pinned wrapper chart, and
    /// the ClusterIssuer that signs the gateway certificate.
    pub cert_manager: CertManager,
    /// The Istio service mesh (CRDs and control plane) that meshgen
    /// installs.
    pub istio: Istio,
}

/// deployKF core components.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct Core {
    /// deployKF's auth component: oauth2-proxy behind Istio's ext-authz,
    /// dex or an external OIDC issuer, JWT verification at the gateway.
    pub deploykf_auth: Auth,
    /// The Istio ingress gateway that fronts the platform.
    pub deploykf_istio_gateway: GatewayComponent,
    /// Profiles (deployKF's profiles generator): one namespace per team
    /// with its RBAC and Istio authorization, rendered directly.
    pub deploykf_profiles_generator: ProfilesGenerator,
}

//! The component types: every output component meshgen knows is
//! described once by a [`Descriptor`] that its own model module defines
//! (`model::istio::COMPONENT`, ...) and `registry::ALL` registers. This
//! module names no component (the registry lives apart, so that the types
//! import no model module: no import cycle).
//!
//! A descriptor owns what the generic stages need to know about a
//! component: its id, values section, template folder, sync wave,
//! packaging, what its `valuesOverrides` and `extraManifests` mean, the
//! namespaces it uses, the collections its templates fan out over, its
//! rules and the function deriving its model. The rules (each component's
//! own, extraManifests, overrides, reserved namespaces), the model, GitOps
//! ordering and the render read descriptors instead of naming components;
//! the tree checks see only what the model derived from them.
//!
//! This module describes; it derives nothing itself and renders nothing.

use crate::config::{Config, GatewayAuth};
use crate::facts::Facts;
use crate::values::path::ValuePath;
use serde::Serialize;
use serde_json::{Map, Value};

/// How a component's directory reaches the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Packaging {
    /// Plain manifests with a generated `kustomization.yaml`.
    Kustomize,
    /// A Helm chart (rendered by Helm, Argo CD or Flux).
    HelmChart,
}

/// What a component does with its section's `valuesOverrides`.
#[derive(Debug, Clone, Copy)]
pub enum Overrides {
    /// The section has none.
    Absent,
    /// Merged into the values of the chart the component renders.
    Chart,
    /// The component renders plain manifests: setting any is a warning
    /// with this reason.
    Unused(&'static str),
    /// The component renders plain manifests in place of a chart users
    /// tune through `valuesOverrides`: each key (under the path given)
    /// becomes a patch of those manifests, or an error naming it.
    Patches(fn(&Config, &ValuePath) -> Vec<crate::rules::patch::Mapped>),
}

/// A template path placeholder `{placeholder}`: the template renders once
/// per item of the list at `collection` in the component's model (or, for
/// templates outside every component, in the whole model). Each item needs
/// a non-empty string `name`, which replaces the placeholder.
///
/// A second placeholder may follow in the same path when its fan-out is
/// declared `within` the first: its collection is then read in each item
/// of the first (`flux/{helm}/HelmRelease-{release}.yaml`).
#[derive(Debug, Clone, Copy)]
pub struct FanOut {
    pub placeholder: &'static str,
    pub collection: &'static [&'static str],
    /// The placeholder whose items hold this collection; `None`: the
    /// component's model (or the whole model).
    pub within: Option<&'static str>,
}

/// A fan-out template whose output the check stage need not parse back.
///
/// Why that is safe: in a `.yaml.j2` template a value reaches the text
/// only through `yaml::emit` (`{{ }}`, `toyaml`, `toblock`; see
/// `render/env.rs`), which writes it as one YAML node that no string can
/// break out of (`tests/hostile.rs`, `tests/fuzz.rs`), so every key,
/// document boundary and indentation is the template's own: the
/// template's control flow (its `if`s and `for`s) alone decides which
/// documents a file holds. `documents` mirrors that control flow, reading
/// the same model the template reads; it returns `None` when the item is
/// not as it expects (the file is then parsed back as any other).
///
/// Only templates whose documents hold no free-form user YAML that could
/// add objects (`extraManifests`, `valuesOverrides`, mesh config) may be
/// declared. In debug builds (every `cargo test`, the goldens and the CLI
/// and hostile-string tests through the binary) the check stage parses
/// declared files anyway and fails with an internal error when what was
/// parsed is not what was declared.
pub struct Declared {
    /// Its path under `templates/`.
    pub template: &'static str,
    /// The documents it renders for `item` (the fan-out item) with `model`
    /// (the whole model, as the template sees it), in order.
    pub documents:
        fn(item: &minijinja::Value, model: &minijinja::Value) -> Option<Vec<DeclaredDoc>>,
}

/// One document a [`Declared`] template renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredDoc {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub name: String,
    /// Empty for a cluster-scoped object.
    pub namespace: String,
}

/// Settings of the component's Argo CD Application.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delivery {
    /// Argo CD creates the namespace (the component renders no Namespace).
    pub create_namespace: bool,
    /// Objects too large for client-side apply (CRDs).
    pub server_side_apply: bool,
    /// Webhooks whose caBundle and failurePolicy a controller rewrites.
    pub ignore_webhook_fields: bool,
    /// The GitOps engine never deletes these objects (CRDs: deleting one
    /// deletes every object of its kind, yours included), not when they
    /// leave the tree, nor with their Application or Kustomization: the
    /// directory's `kustomization.yaml` annotates them with Argo CD's
    /// `Prune=false,Delete=false` and Flux's `prune: disabled`.
    pub keep: bool,
}

impl Delivery {
    /// No special sync options.
    pub const PLAIN: Delivery = Delivery {
        create_namespace: false,
        server_side_apply: false,
        ignore_webhook_fields: false,
        keep: false,
    };
    /// A wrapper chart that installs CRDs and admission webhooks (Istio,
    /// cert-manager): its namespace is created with the release, the large
    /// CRDs are applied server-side, and the webhook fields its controller
    /// rewrites (istiod, cainjector) are ignored.
    pub const WEBHOOK_CHART: Delivery = Delivery {
        create_namespace: true,
        server_side_apply: true,
        ignore_webhook_fields: true,
        keep: false,
    };
    /// Plain CRDs (the Gateway API's): applied server-side, since the
    /// largest exceed the 262,144-byte annotation client-side apply
    /// writes; cluster-scoped, so no namespace to create; kept.
    pub const CRDS: Delivery = Delivery {
        create_namespace: false,
        server_side_apply: true,
        ignore_webhook_fields: false,
        keep: true,
    };
}

/// What a component's model derivation reads.
pub struct Input<'a> {
    pub config: &'a Config,
    pub facts: &'a Facts,
    /// Its `extraManifests`, parsed and checked by the rules.
    pub extra_manifests: &'a [Value],
    /// Which instance: `None` the component's own (its section), `Some(i)`
    /// the `i`th of [`Descriptor::more`].
    pub index: Option<usize>,
    /// What every instance adds to the others ([`Descriptor::contribute`]).
    pub contributions: &'a Contributions,
}

/// What instances add to other components (issue 33.2): each instance
/// returns its own, computed from its own config
/// ([`Descriptor::contribute`]); `model::derive` collects them over every
/// instance, in the registry's order (`ALL`), before any model is derived, and a
/// component that needs another's reads them here (auth and profiles ask
/// for the gateways, the Istio install for the mesh config entries).
/// `Facts` keeps only facts of the whole install.
#[derive(Debug, Clone, Default)]
pub struct Contributions {
    /// The gateways, the primary first.
    pub gateways: Vec<GatewayContribution>,
    /// Entries of the mesh config's `extensionProviders` (the telemetry
    /// providers, auth's ext-authz provider).
    pub extension_providers: Vec<Value>,
    /// Environment istiod needs (auth's JWKS mode).
    pub istiod_env: Map<String, Value>,
    /// Namespaces its objects may live in that exist without this tree
    /// rendering a Namespace (created by Helm, a controller, the user).
    pub namespaces: Vec<String>,
}

/// A gateway as the components behind it admit it.
#[derive(Debug, Clone)]
pub struct GatewayContribution {
    /// Its instance id (`deploykf-istio-gateway[-<gateway.name>]`).
    pub id: String,
    /// The primary gateway (`deploykf_core.deploykf_istio_gateway`), not
    /// one of `additionalGateways`.
    pub primary: bool,
    /// Who its users are.
    pub auth: GatewayAuth,
    /// The SPIFFE principal of its pods' ServiceAccount.
    pub principal: String,
    /// Its pods, as a NetworkPolicy peer.
    pub pods: Value,
}

impl Contributions {
    /// Adds `other`'s after its own.
    pub fn extend(&mut self, other: Contributions) {
        self.gateways.extend(other.gateways);
        self.extension_providers.extend(other.extension_providers);
        self.istiod_env.extend(other.istiod_env);
        self.namespaces.extend(other.namespaces);
    }

    /// Names of the declared extension providers.
    pub fn provider_names(&self) -> Vec<String> {
        self.extension_providers
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect()
    }

    /// The primary gateway's principal (`""` with no gateway contributed).
    pub fn primary_gateway_principal(&self) -> String {
        (self.gateways.first()).map_or_else(String::new, |g| g.principal.clone())
    }

    /// The gateways whose `auth` is one of `auth`, the primary first.
    pub fn gateways_with<'a>(
        &'a self,
        auth: &'a [GatewayAuth],
    ) -> impl Iterator<Item = &'a GatewayContribution> {
        self.gateways.iter().filter(move |g| auth.contains(&g.auth))
    }

    /// The additional gateways (all but the primary) whose `auth` is one
    /// of `auth`.
    pub fn additional_gateways_with<'a>(
        &'a self,
        auth: &'a [GatewayAuth],
    ) -> impl Iterator<Item = &'a GatewayContribution> {
        self.gateways_with(auth).filter(|g| !g.primary)
    }
}

/// Gateways whose users sign in (`login`).
pub const LOGIN_GATEWAYS: &[GatewayAuth] = &[GatewayAuth::Login];
/// Gateways that verify an identity (`login` and `token`): those a
/// profile admits.
pub const IDENTITY_GATEWAYS: &[GatewayAuth] = &[GatewayAuth::Login, GatewayAuth::Token];

/// A component's derived model.
pub struct Part {
    /// What its templates read as `model.<key>`.
    pub data: minijinja::Value,
    /// The chart it renders, for a [`Packaging::HelmChart`] component.
    pub chart: Option<HelmChart>,
    /// Files it writes as they are, beside its templates' output.
    pub files: Vec<Verbatim>,
}

impl Part {
    pub fn of(model: &impl Serialize) -> Part {
        Part {
            data: minijinja::Value::from(minijinja::value::Serde(model)),
            chart: None,
            files: Vec::new(),
        }
    }
}

/// A file a component writes into its directory byte for byte: upstream
/// files meshgen vendors and embeds (`include_str!`), such as the Gateway
/// API CRDs. The render never evaluates them (a `{{` in them stays as it
/// is); the check stage parses them back like every rendered file, so
/// the tree checks know their documents.
#[derive(Debug, Clone, Copy)]
pub struct Verbatim {
    /// Its file name in the component's directory (no `/`).
    pub name: &'static str,
    pub text: &'static str,
}

/// The upstream charts a Helm-chart component wraps, and their values,
/// for delivery objects that install them one by one (Flux HelmReleases).
/// Each wrapper chart's model (`model::istio::IstioChart`,
/// `model::cert_manager::CertManagerChart`) holds it flattened, so its
/// templates read `chart.dependencies` and `chart.values`
/// (`templates/_helm-chart.yaml.j2`).
#[derive(Debug, Clone, Serialize)]
pub struct HelmChart {
    pub repository_url: String,
    pub dependencies: Vec<ChartDependency>,
    /// The whole `values.yaml` of the wrapper chart.
    pub values: Value,
}

/// One dependency of a wrapper chart.
#[derive(Debug, Clone, Serialize)]
pub struct ChartDependency {
    pub name: String,
    pub alias: &'static str,
    /// Its release name when installed on its own (not a Chart.yaml key).
    #[serde(skip)]
    pub release: &'static str,
    pub version: String,
    pub repository: String,
}

pub struct Descriptor {
    /// Stable identifier, e.g. `deploykf-istio-gateway`; also the name of
    /// its Argo CD Application and Flux Kustomization.
    pub id: &'static str,
    /// What it is, in one phrase (the output README's layout table).
    pub summary: &'static str,
    /// Its model in templates: `model.<key>`.
    pub key: &'static str,
    /// Its values section, dotted.
    pub section: &'static str,
    /// Its folder under `templates/`; also its output folder (an
    /// [`Instance`] carries the output folder, so that a second instance
    /// can render the same templates elsewhere).
    pub templates: &'static str,
    /// Sync wave / dependency rank: lower is applied first.
    pub wave: i32,
    pub packaging: Packaging,
    pub delivery: Delivery,
    pub overrides: Overrides,
    pub fan_out: &'static [FanOut],
    pub enabled: fn(&Config) -> bool,
    /// The namespace it runs in; `None` when its objects live in
    /// namespaces of their own (profiles); `Some("")` when they are all
    /// cluster-scoped (CRDs).
    pub namespace: fn(&Config) -> Option<String>,
    pub extra_manifests: fn(&Config) -> &[Value],
    pub values_overrides: fn(&Config) -> Option<&Map<String, Value>>,
    /// Its `patches` (kustomize patches of its objects; a kustomize
    /// directory's only, [`no_patches`] elsewhere).
    pub patches: fn(&Config) -> &[crate::config::Patch],
    /// Its cross-field rules (`crate::rules::<component>`).
    pub rules: fn(&crate::rules::Ctx, &mut crate::rules::Findings),
    pub derive: fn(&Input) -> Part,
    /// Further instances of it that the config asks for, by name (the
    /// additional gateways): each renders the same templates into
    /// `<templates>-<name>`, delivered as `<id>-<name>`, from the model
    /// `derive` makes with [`Input::index`] set ([`single`]: none).
    pub more: fn(&Config) -> Vec<String>,
    /// Subdirectories its objects are split into, each delivered by its
    /// own Argo CD Application / Flux Kustomization so that none manages
    /// more than `gitops.maxObjectsPerApplication` objects (empty: the
    /// component directory is one unit).
    pub shards: fn(&Config) -> Vec<String>,
    /// What its instance `index` (as [`Input::index`]) adds to other
    /// components, from its own config ([`contributes_nothing`]: nothing):
    /// see [`Contributions`].
    pub contribute: fn(&Config, Option<usize>) -> Contributions,
}

impl Descriptor {
    /// The path of a key in its section.
    pub fn key_path(&self, key: &str) -> ValuePath {
        ValuePath::keys(self.section).key(key)
    }
}

/// No extra manifests, no overrides: the common case, for descriptors to
/// point at.
pub fn no_extra_manifests(_: &Config) -> &[Value] {
    &[]
}

pub fn no_overrides(_: &Config) -> Option<&Map<String, Value>> {
    None
}

pub fn no_patches(_: &Config) -> &[crate::config::Patch] {
    &[]
}

/// A component with one instance.
pub fn single(_: &Config) -> Vec<String> {
    Vec::new()
}

/// A component that adds nothing to others.
pub fn contributes_nothing(_: &Config, _: Option<usize>) -> Contributions {
    Contributions::default()
}

/// The shards of a component delivered as one unit.
pub fn no_shards(_: &Config) -> Vec<String> {
    Vec::new()
}

/// One component of this run: its descriptor, resolved against the config.
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub id: String,
    /// `None` for the component's own instance, else its index in
    /// [`Descriptor::more`].
    #[serde(skip)]
    pub index: Option<usize>,
    pub summary: &'static str,
    /// Output directory relative to the output root.
    pub dir: String,
    pub enabled: bool,
    /// "" when its objects live in namespaces of their own.
    pub namespace: String,
    pub wave: i32,
    pub helm_chart: bool,
    /// Its objects are all cluster-scoped (`namespace` is `Some("")`).
    pub cluster_scoped: bool,
    /// Applied server-side ([`Delivery::server_side_apply`]).
    pub server_side_apply: bool,
    #[serde(skip)]
    pub descriptor: &'static Descriptor,
}

impl std::fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Descriptor").field("id", &self.id).finish()
    }
}

//! Profiles, resolved: each profile's namespace, owner, members with their
//! most permissive access (groups expanded), plugins, quota and the names
//! of its object-store credentials. Linear in profiles × members.

use crate::component::{
    no_overrides, Delivery, Descriptor, FanOut, Input, Overrides, Packaging, Part,
    IDENTITY_GATEWAYS,
};
use crate::config::{Access, Config, ObjectStoreAuth, Plugin, ProfilesOutput, StringMap};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

pub static COMPONENT: Descriptor = Descriptor {
    id: "deploykf-profiles-generator",
    summary: "the tenants: one namespace (or Kubeflow Profile) per profile with its ServiceAccounts, RoleBindings, quota and AuthorizationPolicies",
    key: "profiles",
    section: "deploykf_core.deploykf_profiles_generator",
    templates: "manifests/deploykf-core/deploykf-profiles-generator",
    wave: 20,
    packaging: Packaging::Kustomize,
    delivery: Delivery::PLAIN,
    overrides: Overrides::Absent,
    fan_out: &[
        FanOut {
            placeholder: "profile",
            collection: &["profiles"],
            within: None,
        },
        FanOut {
            placeholder: "shard",
            collection: &["shards"],
            within: None,
        },
        FanOut {
            placeholder: "shard_profile",
            collection: &["profiles"],
            within: Some("shard"),
        },
    ],
    enabled: |c| c.deploykf_core.deploykf_profiles_generator.enabled,
    // Each profile has its own namespace.
    namespace: |_| None,
    extra_manifests: |c| &c.deploykf_core.deploykf_profiles_generator.extra_manifests,
    values_overrides: no_overrides,
    patches: crate::component::no_patches,
    rules: |ctx, f| {
        crate::rules::profiles::check(ctx.config, ctx.values, ctx.sources, &mut f.errors);
        crate::rules::profiles::check_idp_groups(ctx, f);
    },
    derive: |input| Part::of(&derive(input).into_template_values()),
    more: crate::component::single,
    shards: |c| {
        let pg = &c.deploykf_core.deploykf_profiles_generator;
        if !pg.enabled {
            return Vec::new();
        }
        let plan = shard_plan(c);
        // Only shards that hold a profile are rendered.
        let mut used = vec![false; plan.names.len()];
        for s in &plan.of {
            if let Some(u) = used.get_mut(*s) {
                *u = true;
            }
        }
        plan.names
            .into_iter()
            .zip(used)
            .filter_map(|(n, u)| u.then_some(n))
            .collect()
    },
    // The profiles' namespaces, which Kubeflow's profile controller
    // creates from the Profiles.
    contribute: |c, _| crate::component::Contributions {
        namespaces: profile_controller_namespaces(c),
        ..Default::default()
    },
};

/// How the profiles are split into shards (one GitOps object each): shard
/// the top log2(count) bits of `shard_hash(namespace)`, `count` the smallest power of two for
/// which no shard exceeds the bound. A profile added or removed changes
/// only its own shard; when a shard would overflow, `count` doubles and
/// each shard splits in two (its profiles stay or move to the new one).
#[derive(Debug, Clone, PartialEq)]
pub struct ShardPlan {
    pub count: usize,
    /// Directory (and GitOps object suffix) of each shard; empty when one
    /// shard holds everything (the profiles stay in the component
    /// directory, as without sharding).
    pub names: Vec<String>,
    /// The shard of each profile, in `profiles` order.
    pub of: Vec<usize>,
    /// Most objects each shard's profiles render (an upper bound).
    pub load: Vec<usize>,
}

/// FNV-1a (64 bit) and MurmurHash3's 64-bit finalizer (FNV alone leaves
/// names that differ in their last letter in the same top bits): a stable
/// hash, the same on every platform and release.
fn shard_hash(s: &str) -> u64 {
    let mut h = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Most objects one profile renders (an upper bound: the tree check counts
/// the real ones).
fn objects_bound(
    config: &Config,
    p: &crate::config::Profile,
    group_sizes: &HashMap<&str, usize>,
) -> usize {
    let pg = &config.deploykf_core.deploykf_profiles_generator;
    let istio = &config.deploykf_dependencies.istio;
    let ambient = istio.dataplane_mode == crate::config::DataplaneMode::Ambient;
    let idp = if p.members.iter().any(|m| m.idp_group.is_some()) {
        4
    } else {
        0
    };
    // In either output: the NetworkPolicies (`default-deny-ingress`,
    // `allow-ingress`, with the egress gateway `allow-egress`), the egress ServiceEntry under registry-only, and
    // in ambient the waypoint's Telemetry (counted whenever it may apply).
    // `profile_documents` lists what is rendered; tests/shards.rs renders
    // shards at the bound with each of these on.
    let common = idp
        + if pg.network_policy.enabled { 2 } else { 0 }
        + usize::from(crate::model::egress_gateway::confines_profiles(config))
        + usize::from(istio.egress.mode == crate::config::EgressMode::RegistryOnly)
        + usize::from(ambient);
    match pg.output {
        // Namespace, PeerAuthentication, 2 ServiceAccounts, 2 of their
        // RoleBindings, the owner's, a ResourceQuota, 2 policies and
        // one RoleBinding per role; in ambient the waypoint Gateway, its
        // ConfigMap and the ztunnel policy.
        ProfilesOutput::Namespaces => 12 + common + if ambient { 3 } else { 0 },
        // Profile, notebook policy, per member a RoleBinding and a policy.
        ProfilesOutput::Profiles => {
            let members: usize = p
                .members
                .iter()
                .map(|m| match (&m.user, &m.group) {
                    (Some(_), _) => 1,
                    (_, Some(g)) => group_sizes.get(g.as_str()).copied().unwrap_or(0),
                    _ => 0,
                })
                .sum();
            2 + 2 * members + common
        }
    }
}

/// The shards of the profiles for `config` (see [`ShardPlan`]).
pub fn shard_plan(config: &Config) -> ShardPlan {
    let pg = &config.deploykf_core.deploykf_profiles_generator;
    let bound = config.gitops.max_objects_per_application;
    let prefix = &pg.profile_defaults.profile_name_prefix;
    let group_sizes: HashMap<&str, usize> = pg
        .groups
        .iter()
        .map(|g| (g.id.as_str(), g.users.len()))
        .collect();
    let items: Vec<(u64, usize)> = pg
        .profiles
        .iter()
        .map(|p| {
            (
                shard_hash(&format!("{prefix}{}", p.name)),
                objects_bound(config, p, &group_sizes),
            )
        })
        .collect();
    let total: usize = items.iter().map(|i| i.1).sum();
    let mut count = 1usize;
    // Start where an even split would fit, then double until every shard does.
    while count * bound < total {
        count *= 2;
    }
    // The top bits of the hash: doubling `count` splits
    // shard i into 2i and 2i + 1.
    let shard = |h: u64, count: usize| -> usize {
        if count == 1 {
            0
        } else {
            (h >> (64 - count.trailing_zeros())) as usize
        }
    };
    let load = loop {
        let mut load = vec![0usize; count];
        for (h, n) in &items {
            load[shard(*h, count)] += n;
        }
        if load.iter().all(|l| *l <= bound) || count >= 1 << 16 {
            break load;
        }
        count *= 2;
    };
    let of = items.iter().map(|(h, _)| shard(*h, count)).collect();
    let names = if count == 1 {
        Vec::new()
    } else {
        let width = format!("{:x}", count - 1).len();
        (0..count).map(|i| format!("shard-{i:0width$x}")).collect()
    };
    ShardPlan {
        count,
        names,
        of,
        load,
    }
}

/// With `output: profiles`, the Kubeflow Profiles controller creates the
/// profile namespaces.
fn profile_controller_namespaces(config: &Config) -> Vec<String> {
    let pg = &config.deploykf_core.deploykf_profiles_generator;
    if !(pg.enabled && pg.output == ProfilesOutput::Profiles) {
        return Vec::new();
    }
    let prefix = &pg.profile_defaults.profile_name_prefix;
    pg.profiles
        .iter()
        .map(|p| format!("{prefix}{}", p.name))
        .collect()
}

/// The documents of a profile's file (`_profile.yaml.j2` and the
/// `_idp-groups.yaml.j2` it includes, rendered by `{profile}.yaml.j2` with
/// one shard and by `{shard}/{shard_profile}.yaml.j2` with several), for
/// the check stage (see [`crate::component::Declared`]): the templates'
/// `if`s and `for`s, over the same model. Keep them together: in debug
/// builds a difference fails every test that renders a profile.
pub static DECLARED: crate::component::Declared = crate::component::Declared {
    template: "manifests/deploykf-core/deploykf-profiles-generator/{profile}.yaml.j2",
    documents: profile_documents,
};

/// [`DECLARED`], for the profiles of a shard.
pub static DECLARED_IN_SHARD: crate::component::Declared = crate::component::Declared {
    template: "manifests/deploykf-core/deploykf-profiles-generator/{shard}/{shard_profile}.yaml.j2",
    documents: profile_documents,
};

fn profile_documents(
    p: &minijinja::Value,
    model: &minijinja::Value,
) -> Option<Vec<crate::component::DeclaredDoc>> {
    use crate::component::DeclaredDoc;
    let attr = |v: &minijinja::Value, key: &str| v.get_attr(key).ok().filter(|v| !v.is_undefined());
    let pm = attr(model, "profiles")?;
    let output = attr(&pm, "output")?;
    let profiles_output = match output.as_str()? {
        "profiles" => true,
        "namespaces" => false,
        _ => return None,
    };
    let ns = attr(p, "name")?.as_str()?.to_string();
    let ambient = attr(&pm, "ambient")?.is_true();
    let mut docs = Vec::with_capacity(12);
    let mut doc = |api_version, kind, name: &str| {
        docs.push(DeclaredDoc {
            api_version,
            kind,
            name: name.to_string(),
            namespace: ns.clone(),
        })
    };
    const RBAC: &str = "rbac.authorization.k8s.io/v1";
    const SECURITY: &str = "security.istio.io/v1";
    if profiles_output {
        doc("kubeflow.org/v1", "Profile", &ns);
    } else {
        doc("v1", "Namespace", &ns);
        if !attr(&attr(model, "istio")?, "mesh_wide_strict_mtls")?.is_true() {
            doc(SECURITY, "PeerAuthentication", "default");
        }
        doc("v1", "ServiceAccount", "default-editor");
        doc("v1", "ServiceAccount", "default-viewer");
        doc(RBAC, "RoleBinding", "default-editor");
        doc(RBAC, "RoleBinding", "default-viewer");
        doc(RBAC, "RoleBinding", "namespaceAdmin");
        if attr(p, "quota")?.is_true() {
            doc("v1", "ResourceQuota", "kf-resource-quota");
        }
        if ambient {
            doc("gateway.networking.k8s.io/v1", "Gateway", "waypoint");
            doc("v1", "ConfigMap", "waypoint-params");
            if attr(&attr(model, "telemetry")?, "waypoint_spec")?.is_true() {
                doc("telemetry.istio.io/v1", "Telemetry", "waypoint");
            }
        }
        doc(SECURITY, "AuthorizationPolicy", "profile-access");
        if ambient {
            doc(SECURITY, "AuthorizationPolicy", "profile-access-ztunnel");
        }
        for (role, users) in [("edit", "editors"), ("view", "viewers")] {
            if attr(p, users)?.is_true() {
                doc(RBAC, "RoleBinding", &format!("members-kubeflow-{role}"));
            }
        }
    }
    if profiles_output {
        for m in attr(p, "members")?.try_iter().ok()? {
            let binding = attr(&m, "binding_name")?;
            let binding = binding.as_str()?;
            doc(RBAC, "RoleBinding", binding);
            doc(SECURITY, "AuthorizationPolicy", binding);
        }
    }
    // _idp-groups.yaml.j2
    let idp = attr(p, "idp")?;
    if attr(&idp, "allowed")?.is_true() {
        if attr(&attr(model, "auth")?, "enabled")?.is_true() {
            doc(SECURITY, "RequestAuthentication", "idp-groups-jwt");
        }
        doc(SECURITY, "AuthorizationPolicy", "idp-groups");
        for (role, groups) in [("edit", "editors"), ("view", "viewers")] {
            if attr(&idp, groups)?.is_true() {
                doc(RBAC, "RoleBinding", &format!("idp-groups-kubeflow-{role}"));
            }
        }
    }
    doc(SECURITY, "AuthorizationPolicy", "notebook-access");
    if attr(p, "egress_hosts")?.is_true() {
        doc("networking.istio.io/v1", "ServiceEntry", "allowed-hosts");
    }
    for np in attr(&pm, "network_policies")?.try_iter().ok()? {
        let name = attr(&np, "name")?;
        doc("networking.k8s.io/v1", "NetworkPolicy", name.as_str()?);
    }
    // Cluster-scoped: the Namespace, the Profile.
    for d in &mut docs {
        if matches!(d.kind, "Namespace" | "Profile") {
            d.namespace.clear();
        }
    }
    Some(docs)
}

/// The profiles' model; `P` is how one profile is held, and `N` each
/// NetworkPolicy: typed while it is derived, then as the value templates
/// read ([`ProfilesModel::into_template_values`]).
#[derive(Debug, Clone, Serialize)]
pub struct ProfilesModel<P = ProfileModel, N = super::netpol::NetworkPolicyModel> {
    /// `namespaces` or `profiles`.
    pub output: ProfilesOutput,
    pub user_id_header: String,
    /// SPIFFE principal of the gateway pods' ServiceAccount.
    pub gateway_principal: String,
    /// The additional gateways that verify an identity (`login`,
    /// `token`): each profile admits them as it admits the primary.
    pub more_gateway_principals: Vec<String>,
    /// Kubeflow's default for `ISTIO_INGRESS_GATEWAY_PRINCIPAL`, its own
    /// gateway's (kubeflow/kubeflow v1.10.0
    /// components/profile-controller/controllers/profile_controller.go:424-426);
    /// the output README asks for no change when `gateway_principal` is it.
    pub kubeflow_gateway_principal: &'static str,
    /// Kubeflow's defaults for `KFP_UI_PRINCIPAL` and
    /// `NOTEBOOK_CONTROLLER_PRINCIPAL` (kubeflow/dashboard
    /// components/profile-controller/controllers/profile_controller.go).
    pub pipelines_ui_principal: &'static str,
    pub notebook_controller_principal: &'static str,
    /// The profile namespaces' mesh labels (`facts::IstioFacts::mesh_labels`).
    pub mesh_labels: StringMap,
    /// The profile namespaces' Pod Security label (`namespacePodSecurity`,
    /// "baseline" by default as Kubeflow's profile controller sets it:
    /// kubeflow/manifests 26.03 applications/profiles/pss, built
    /// `profiles.yaml:405-428` `namespace-labels.yaml`). Baseline keeps an
    /// editor (ClusterRole kubeflow-edit creates pods) from a privileged
    /// pod, host namespaces or a hostPath (kubernetes/pod-security-admission
    /// `policy/check_privileged.go`, `check_hostNamespaces.go`,
    /// `check_hostPathVolumes.go`), through which it could read the node's
    /// credentials and become the gateway. Rendered with `output:
    /// namespaces`; with `profiles` the controller sets it.
    pub pod_security: StringMap,
    /// `dataplaneMode: ambient`: each profile namespace gets a waypoint
    /// (`Gateway/waypoint`, `ConfigMap/waypoint-params`), its L7 policies
    /// attach to it, and `profile-access-ztunnel` is what ztunnel enforces.
    pub ambient: bool,
    /// Labels of the waypoint Gateway: `istio.io/waypoint-for: service`,
    /// and `istio.io/rev` with a revision (as `istioctl waypoint generate`,
    /// istio/istio 1.30.3 `istioctl/pkg/waypoint/waypoint.go:98-118`).
    pub waypoint_labels: StringMap,
    /// `request.auth.claims[<idpGroups.claim>]`: what the profile policies
    /// match `idpGroup` members by.
    pub idp_claim_key: String,
    /// [`IDP_CONNECTOR_KEY`], matched when a profile's groups are bound
    /// to a connector ([`IdpGroupsModel::connector`]).
    pub idp_connector_key: &'static str,
    /// Whether any profile has `idpGroup` members, with the claim and
    /// prefix (for the output README).
    pub idp_in_use: bool,
    pub idp_claim: String,
    pub idp_prefix: String,
    /// The NetworkPolicies of every profile namespace, the same in each
    /// (`networkPolicy.enabled`; empty when off).
    pub network_policies: Vec<N>,
    /// The profiles, when one shard holds them all (else empty).
    pub profiles: Vec<P>,
    /// The shards, each with its profiles (empty with one shard).
    pub shards: Vec<ShardModel<P>>,
    pub extra_manifests: Vec<Value>,
}

impl ProfilesModel {
    /// The model as its templates read it, each profile converted on its
    /// own, on all cores (at 10,000 profiles, converting the whole model in
    /// one piece took a tenth of a run). A converted profile is embedded
    /// in the component's value as it is, so the templates see exactly
    /// what one conversion of the typed model gives them.
    ///
    /// The NetworkPolicies' specs, the same in every profile, are written
    /// as YAML here, once ([`NetworkPolicyModel::template_value`]), not
    /// by `toyaml` in each profile's file: at 10,000 profiles that took
    /// the render stage from ~150 ms to ~400 ms.
    ///
    /// [`NetworkPolicyModel::template_value`]: super::netpol::NetworkPolicyModel::template_value
    pub fn into_template_values(self) -> ProfilesModel<minijinja::Value, minijinja::Value> {
        let convert = |profiles: Vec<ProfileModel>| -> Vec<minijinja::Value> {
            profiles
                .into_iter()
                .map(|p| minijinja::Value::from(minijinja::value::Serde(&p)))
                .collect()
        };
        let profiles = self
            .profiles
            .into_par_iter()
            .with_min_len(64)
            .map(|p| minijinja::Value::from(minijinja::value::Serde(&p)))
            .collect();
        let shards = self
            .shards
            .into_par_iter()
            .map(|s| ShardModel {
                name: s.name,
                profiles: convert(s.profiles),
            })
            .collect();
        ProfilesModel {
            output: self.output,
            user_id_header: self.user_id_header,
            gateway_principal: self.gateway_principal,
            more_gateway_principals: self.more_gateway_principals,
            kubeflow_gateway_principal: self.kubeflow_gateway_principal,
            pipelines_ui_principal: self.pipelines_ui_principal,
            notebook_controller_principal: self.notebook_controller_principal,
            mesh_labels: self.mesh_labels,
            pod_security: self.pod_security,
            ambient: self.ambient,
            waypoint_labels: self.waypoint_labels,
            idp_claim_key: self.idp_claim_key,
            idp_connector_key: self.idp_connector_key,
            idp_in_use: self.idp_in_use,
            idp_claim: self.idp_claim,
            idp_prefix: self.idp_prefix,
            network_policies: (self.network_policies.iter())
                .map(|np| np.template_value(2))
                .collect(),
            profiles,
            shards,
            extra_manifests: self.extra_manifests,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ShardModel<P = ProfileModel> {
    /// Its directory under the component's.
    pub name: String,
    pub profiles: Vec<P>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileModel {
    /// The namespace (prefix + name); also the output file name.
    pub name: String,
    pub profile_name: String,
    pub owner: String,
    /// Members other than the owner, sorted by email; only with
    /// `output: profiles` (per-member objects). `output: namespaces` binds
    /// by role through `editors` and `viewers`, and at 10,000 profiles the
    /// templates' copy of unused member maps is tens of megabytes.
    pub members: Vec<MemberModel>,
    /// Members by ClusterRole, for the aggregated bindings of
    /// `output: namespaces`.
    pub editors: Vec<String>,
    pub viewers: Vec<String>,
    /// Everyone who may reach the profile through the gateway.
    pub allowed_users: Vec<String>,
    /// Everyone who may connect to its notebooks.
    pub notebook_users: Vec<String>,
    /// Annotations of the `default-editor` ServiceAccount (plugins).
    pub editor_annotations: StringMap,
    pub plugins: Vec<Plugin>,
    pub quota: Option<Map<String, Value>>,
    pub namespace_annotations: StringMap,
    /// Its `idpGroup` members, resolved (empty: none).
    pub idp: IdpGroupsModel,
    /// The hosts of its `egress.allowedHosts` (else the defaults'), only
    /// under `istio.egress.mode: registry-only` (else empty): its
    /// ServiceEntry `allowed-hosts`, visible in its namespace alone.
    pub egress_hosts: Vec<String>,
}

/// The dex connector that issued the verified token, a nested claim
/// (dex's `federated_claims.connector_id`; Istio reads nested claims as
/// `[a][b]`).
pub const IDP_CONNECTOR_KEY: &str = "request.auth.claims[federated_claims][connector_id]";

/// A profile's `idpGroup` members: who the gateway lets through by the
/// verified token's groups claim, and the Kubernetes groups bound by role.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdpGroupsModel {
    /// Claim values admitted through the gateway, sorted.
    pub allowed: Vec<String>,
    /// Claim values that may connect to notebooks, sorted.
    pub notebooks: Vec<String>,
    /// Kubernetes groups (`prefix` + group) bound to ClusterRole/kubeflow-edit.
    pub editors: Vec<String>,
    /// ... and to ClusterRole/kubeflow-view.
    pub viewers: Vec<String>,
    /// The dex connector the groups must come from (`idpConnector`, or
    /// `idpGroups.connector`), matched as [`IDP_CONNECTOR_KEY`].
    pub connector: Option<String>,
}

impl IdpGroupsModel {
    /// Each group's most permissive access over every `idpGroup` member
    /// naming it. (Across kinds, user and static-group memberships, the
    /// cluster resolves it: RBAC and ALLOW policies are unions, and the
    /// notebook DENY rule spares a request that either list admits.)
    fn resolve<'a>(members: impl Iterator<Item = (&'a str, (String, bool))>, prefix: &str) -> Self {
        let mut by_group: BTreeMap<&str, (String, bool)> = BTreeMap::new();
        for (g, (role, nb)) in members {
            let e = by_group.entry(g).or_insert_with(|| (role.clone(), nb));
            if rank(&role) > rank(&e.0) {
                e.0 = role;
            }
            e.1 |= nb;
        }
        let mut out = IdpGroupsModel::default();
        for (g, (role, nb)) in by_group {
            out.allowed.push(g.to_string());
            if nb {
                out.notebooks.push(g.to_string());
            }
            let subject = format!("{prefix}{g}");
            if role == "edit" {
                out.editors.push(subject);
            } else {
                out.viewers.push(subject);
            }
        }
        out
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberModel {
    pub email: String,
    /// `edit` or `view`.
    pub role: String,
    pub notebooks_access: bool,
    /// Name of its RoleBinding and AuthorizationPolicy (Kubeflow KFAM's
    /// `user-<email>-clusterrole-<role>`).
    pub binding_name: String,
}

/// KFAM's binding name, made a valid Kubernetes name.
fn binding_name(email: &str, role: &str) -> String {
    let mut s = String::with_capacity(email.len() + 24);
    s.push_str("user-");
    for c in email.chars() {
        let c = c.to_ascii_lowercase();
        s.push(if c.is_ascii_alphanumeric() { c } else { '-' });
    }
    s.push_str("-clusterrole-");
    s.push_str(role);
    s
}

fn rank(role: &str) -> u8 {
    if role == "edit" {
        2
    } else {
        1
    }
}

fn derive(input: &Input) -> ProfilesModel {
    let config = input.config;
    let pg = &config.deploykf_core.deploykf_profiles_generator;
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let registry_only =
        config.deploykf_dependencies.istio.egress.mode == crate::config::EgressMode::RegistryOnly;
    let lower = gw.gateway.email_to_lowercase;
    let norm = |e: &str| {
        if lower {
            e.to_lowercase()
        } else {
            e.to_string()
        }
    };
    let defaults = &pg.profile_defaults;
    let emails: HashMap<&str, String> = pg
        .users
        .iter()
        .map(|u| (u.id.as_str(), norm(&u.email)))
        .collect();
    let groups: HashMap<&str, &Vec<String>> = pg
        .groups
        .iter()
        .map(|g| (g.id.as_str(), &g.users))
        .collect();
    let resolve = |a: &Option<Access>| -> (String, bool) {
        let a = a.clone().unwrap_or_default();
        (
            a.role
                .or_else(|| defaults.member_access.role.clone())
                .unwrap_or_else(|| "view".into()),
            a.notebooks_access
                .or(defaults.member_access.notebooks_access)
                .unwrap_or(false),
        )
    };
    let per_member = pg.output == ProfilesOutput::Profiles;
    // Each profile resolves on its own (from the shared users and
    // groups), so on all cores; `collect` keeps their order.
    let profiles = pg
        .profiles
        .par_iter()
        .with_min_len(256)
        .map(|p| {
            let namespace = format!("{}{}", defaults.profile_name_prefix, p.name);
            let owner = norm(p.owner_email.as_deref().unwrap_or(&defaults.owner_email));
            // email -> (role, notebooks), most permissive wins.
            let mut access: BTreeMap<String, (String, bool)> = BTreeMap::new();
            let mut grant = |email: &str, (role, nb): &(String, bool)| {
                let e = access
                    .entry(email.to_string())
                    .or_insert_with(|| (role.clone(), *nb));
                if rank(role) > rank(&e.0) {
                    e.0 = role.clone();
                }
                e.1 |= *nb;
            };
            for m in &p.members {
                let a = resolve(&m.access);
                if let Some(u) = &m.user {
                    if let Some(email) = emails.get(u.as_str()) {
                        grant(email, &a);
                    }
                }
                if let Some(g) = &m.group {
                    for u in groups.get(g.as_str()).into_iter().flat_map(|v| v.iter()) {
                        if let Some(email) = emails.get(u.as_str()) {
                            grant(email, &a);
                        }
                    }
                }
            }
            access.remove(&owner);
            let mut idp = IdpGroupsModel::resolve(
                p.members
                    .iter()
                    .filter_map(|m| Some((m.idp_group.as_deref()?, resolve(&m.access)))),
                &pg.idp_groups.prefix,
            );
            if !idp.allowed.is_empty() {
                idp.connector = p
                    .idp_connector
                    .clone()
                    .or_else(|| pg.idp_groups.connector.clone());
            }
            let members: Vec<MemberModel> = access
                .into_iter()
                .map(|(email, (role, nb))| MemberModel {
                    binding_name: if per_member {
                        binding_name(&email, &role)
                    } else {
                        String::new()
                    },
                    email,
                    role,
                    notebooks_access: nb,
                })
                .collect();
            let mut allowed_users = vec![owner.clone()];
            allowed_users.extend(members.iter().map(|m| m.email.clone()));
            let mut notebook_users = vec![owner.clone()];
            notebook_users.extend(
                members
                    .iter()
                    .filter(|m| m.notebooks_access)
                    .map(|m| m.email.clone()),
            );
            let plugins = p
                .plugins
                .clone()
                .unwrap_or_else(|| defaults.plugins.clone());
            let mut editor_annotations = StringMap::new();
            for plugin in &plugins {
                let (key, field) = match plugin.kind.as_str() {
                    "AwsIamForServiceAccount" => ("eks.amazonaws.com/role-arn", "awsIamRole"),
                    _ => ("iam.gke.io/gcp-service-account", "gcpServiceAccount"),
                };
                if let Some(v) = plugin.spec.get(field).and_then(Value::as_str) {
                    editor_annotations.insert(key.into(), v.into());
                }
            }
            let quota = p
                .resource_quota_spec
                .clone()
                .unwrap_or_else(|| defaults.resource_quota_spec.clone());
            let mut namespace_annotations = StringMap::new();
            namespace_annotations.insert("owner".into(), owner.clone());
            let osa = object_store(p.tools.as_ref(), &defaults.tools);
            if let Some(secret) = osa.existing_secret.filter(|s| !s.is_empty()) {
                let k = "meshgen.dev/kfp-object-store";
                namespace_annotations.insert(
                    format!("{k}-secret"),
                    secret.replace("{profile_name}", &p.name),
                );
                let ns = osa
                    .existing_secret_namespace
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| namespace.clone());
                namespace_annotations.insert(format!("{k}-secret-namespace"), ns);
                if let Some(v) = osa.existing_secret_access_key_key {
                    namespace_annotations.insert(format!("{k}-access-key-key"), v);
                }
                if let Some(v) = osa.existing_secret_secret_key_key {
                    namespace_annotations.insert(format!("{k}-secret-key-key"), v);
                }
            }
            let editors = members
                .iter()
                .filter(|m| m.role == "edit")
                .map(|m| m.email.clone())
                .collect();
            let viewers = members
                .iter()
                .filter(|m| m.role != "edit")
                .map(|m| m.email.clone())
                .collect();
            let members = if per_member { members } else { Vec::new() };
            ProfileModel {
                editors,
                viewers,
                name: namespace,
                profile_name: p.name.clone(),
                owner,
                members,
                allowed_users,
                notebook_users,
                editor_annotations,
                plugins,
                quota: (!quota.is_empty()).then_some(quota),
                namespace_annotations,
                idp,
                // In ambient the hosts are the egress waypoint's
                // ServiceEntries (`model::egress_gateway`): one of the
                // profile's own would be seen mesh-wide and bound to no
                // waypoint (ztunnel ignores `exportTo`).
                egress_hosts: if registry_only && !input.facts.istio.ambient {
                    (p.egress.as_ref().unwrap_or(&defaults.egress))
                        .allowed_hosts
                        .clone()
                } else {
                    Vec::new()
                },
            }
        })
        .collect::<Vec<ProfileModel>>();
    let plan = shard_plan(config);
    let idp_in_use = profiles.iter().any(|p| !p.idp.allowed.is_empty());
    let (profiles, shards) = if plan.names.is_empty() {
        (profiles, Vec::new())
    } else {
        let mut shards: Vec<ShardModel> = plan
            .names
            .iter()
            .map(|name| ShardModel {
                name: name.clone(),
                profiles: Vec::new(),
            })
            .collect();
        for (p, s) in profiles.into_iter().zip(&plan.of) {
            shards[*s].profiles.push(p);
        }
        shards.retain(|s| !s.profiles.is_empty());
        (Vec::new(), shards)
    };
    ProfilesModel {
        shards,
        idp_in_use,
        idp_claim: pg.idp_groups.claim.clone(),
        idp_prefix: pg.idp_groups.prefix.clone(),
        output: pg.output,
        user_id_header: config
            .deploykf_core
            .deploykf_auth
            .identity
            .user_header
            .clone(),
        gateway_principal: input.contributions.primary_gateway_principal(),
        more_gateway_principals: (input.contributions)
            .additional_gateways_with(IDENTITY_GATEWAYS)
            .map(|g| g.principal.clone())
            .collect(),
        kubeflow_gateway_principal:
            "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
        pipelines_ui_principal: "cluster.local/ns/kubeflow/sa/ml-pipeline-ui",
        notebook_controller_principal:
            "cluster.local/ns/kubeflow/sa/notebook-controller-service-account",
        mesh_labels: input.facts.istio.mesh_labels.clone(),
        pod_security: crate::facts::pod_security_labels(pg.namespace_pod_security),
        ambient: input.facts.istio.ambient,
        waypoint_labels: {
            let mut l = StringMap::new();
            l.insert("istio.io/waypoint-for".into(), "service".into());
            if !input.facts.istio.revision.is_empty() {
                l.insert("istio.io/rev".into(), input.facts.istio.revision.clone());
            }
            l
        },
        idp_claim_key: format!("request.auth.claims[{}]", pg.idp_groups.claim),
        idp_connector_key: IDP_CONNECTOR_KEY,
        network_policies: network_policies(input),
        profiles,
        extra_manifests: input.extra_manifests.to_vec(),
    }
}

/// Where Kubeflow runs the controllers that reach into profiles, and the
/// `app` label of their pods (kubeflow-26.03 built manifests:
/// `pipeline.yaml:7117-7126` Deployment `ml-pipeline-ui`,
/// `notebook-controller.yaml:9645-9652` Deployment
/// `notebook-controller-deployment`, in `kubeflow`; `knative-serving.yaml:8866-8874`
/// `activator`, `:8960-8968` `autoscaler`, `:9048-9056` `controller`, in
/// `knative-serving`).
pub const KUBEFLOW_CONTROLLERS: [(&str, &[&str]); 2] = [
    ("kubeflow", &["ml-pipeline-ui", "notebook-controller"]),
    (
        "knative-serving",
        &["activator", "autoscaler", "controller"],
    ),
];

/// A profile namespace's NetworkPolicies: `default-deny-ingress`, and
/// `allow-ingress` from what `profile-access` admits on L4: the
/// namespace's own pods (its waypoint too, in ambient), the gateway pods,
/// the Pipelines UI and the notebook controller, and Knative's activator
/// and controllers (the probe paths `profile-access` opens to any source:
/// Knative's are the callers Kubeflow's profile controller names). The
/// rules name no port: the gateway reaches any app port, and in ambient
/// every connection arrives on HBONE (15008) anyway. In ambient, also the
/// kubelet's probes (`netpol::PROBE_SNAT_CIDR`).
fn network_policies(input: &Input) -> Vec<super::netpol::NetworkPolicyModel> {
    use super::netpol;
    let pg = &input.config.deploykf_core.deploykf_profiles_generator;
    if !pg.network_policy.enabled {
        return Vec::new();
    }
    let mut rules = vec![
        serde_json::json!({"from": [netpol::same_namespace()]}),
        serde_json::json!({"from": (input.contributions.gateways_with(IDENTITY_GATEWAYS))
            .map(|g| g.pods.clone())
            .collect::<Vec<_>>()}),
    ];
    rules.push(serde_json::json!({"from": (KUBEFLOW_CONTROLLERS.iter())
        .map(|(ns, apps)| serde_json::json!({
            "namespaceSelector": {"matchLabels": {netpol::NAMESPACE_NAME_LABEL: ns}},
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": apps}]},
        }))
        .collect::<Vec<_>>()}));
    if input.facts.istio.ambient {
        rules.push(netpol::probe_rule());
    }
    let mut policies = vec![
        netpol::default_deny_ingress(),
        netpol::allow_namespace("allow-ingress", rules),
    ];
    policies.extend(super::egress_gateway::profile_egress_policy(input.config));
    policies
}

/// The profile's object-store settings over the defaults, key by key.
fn object_store(
    own: Option<&crate::config::Tools>,
    defaults: &crate::config::Tools,
) -> ObjectStoreAuth {
    let get = |t: Option<&crate::config::Tools>| {
        t.and_then(|t| t.kubeflow_pipelines.as_ref())
            .and_then(|k| k.object_store_auth.clone())
    };
    let d = get(Some(defaults)).unwrap_or_default();
    match get(own) {
        None => d,
        Some(o) => ObjectStoreAuth {
            existing_secret: o.existing_secret.or(d.existing_secret),
            existing_secret_namespace: o.existing_secret_namespace.or(d.existing_secret_namespace),
            existing_secret_access_key_key: o
                .existing_secret_access_key_key
                .or(d.existing_secret_access_key_key),
            existing_secret_secret_key_key: o
                .existing_secret_secret_key_key
                .or(d.existing_secret_secret_key_key),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_names_follow_kfam_and_stay_valid() {
        assert_eq!(
            binding_name("User.One+x@Example.com", "edit"),
            "user-user-one-x-example-com-clusterrole-edit"
        );
    }
}

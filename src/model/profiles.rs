//! Profiles, resolved: each profile's namespace, owner, members with their
//! most permissive access (groups expanded), plugins, quota and the names
//! of its object-store credentials. Linear in profiles × members.

use crate::component::{
    no_overrides, Delivery, Descriptor, FanOut, Input, Overrides, Packaging, Part,
};
use crate::config::{Access, Config, ObjectStoreAuth, Plugin, ProfilesOutput, StringMap};
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
    fan_out: &[FanOut {
        placeholder: "profile",
        collection: &["profiles"],
        within: None,
    }],
    enabled: |c| c.deploykf_core.deploykf_profiles_generator.enabled,
    // Each profile has its own namespace.
    namespace: |_| None,
    assumed_namespaces: profile_controller_namespaces,
    extra_manifests: |c| &c.deploykf_core.deploykf_profiles_generator.extra_manifests,
    values_overrides: no_overrides,
    rules: |ctx, f| {
        crate::rules::profiles::check(ctx.config, ctx.values, ctx.sources, &mut f.errors)
    },
    derive: |input| Part::of(&derive(input)),
};

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

/// The documents of `{profile}.yaml.j2`, for the check stage (see
/// [`crate::component::Declared`]): the template's `if`s and `for`s,
/// over the same model. Keep the two together: in debug builds a
/// difference fails every test that renders a profile.
pub static DECLARED: crate::component::Declared = crate::component::Declared {
    template: "manifests/deploykf-core/deploykf-profiles-generator/{profile}.yaml.j2",
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
        if !attr(&attr(model, "istio")?, "managed")?.is_true() {
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
        doc(SECURITY, "AuthorizationPolicy", "profile-access");
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
    doc(SECURITY, "AuthorizationPolicy", "notebook-access");
    // Cluster-scoped: the Namespace, the Profile.
    for d in &mut docs {
        if matches!(d.kind, "Namespace" | "Profile") {
            d.namespace.clear();
        }
    }
    Some(docs)
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfilesModel {
    /// `namespaces` or `profiles`.
    pub output: ProfilesOutput,
    pub user_id_header: String,
    /// SPIFFE principal of the gateway pods' ServiceAccount.
    pub gateway_principal: String,
    pub injection_labels: StringMap,
    pub profiles: Vec<ProfileModel>,
    pub extra_manifests: Vec<Value>,
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
    let profiles = pg
        .profiles
        .iter()
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
            }
        })
        .collect();
    ProfilesModel {
        output: pg.output,
        user_id_header: config
            .deploykf_core
            .deploykf_auth
            .identity
            .user_header
            .clone(),
        gateway_principal: input.facts.gateway.principal.clone(),
        injection_labels: input.facts.istio.injection_labels.clone(),
        profiles,
        extra_manifests: input.extra_manifests.to_vec(),
    }
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

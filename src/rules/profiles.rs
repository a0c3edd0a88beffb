//! Rules for `deploykf_core.deploykf_profiles_generator`: unique ids and
//! namespaces, members that resolve, namespaces that fit and are free.
//! Linear in the number of profiles, users, groups and members (hash
//! lookups only), so 10,000 profiles check in milliseconds.

use super::{error_at, located};
use crate::config::{Config, Plugin};
use crate::diagnostic::Diagnostics;
use crate::source::SourceMap;
use crate::values::path::ValuePath;
use crate::values::Values;
use std::collections::HashMap;

const PG: &str = "deploykf_core.deploykf_profiles_generator";

/// Namespaces no profile may take, with who uses them: Kubernetes' own,
/// every component's, and the delivery engines'.
pub fn reserved_namespaces(config: &Config) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        ["kube-system", "kube-public", "kube-node-lease", "default"]
            .iter()
            .map(|n| (n.to_string(), "Kubernetes".to_string()))
            .collect();
    for d in crate::component::ALL {
        if let Some(ns) = (d.namespace)(config) {
            out.push((ns, format!("`{}`", d.key_path("namespace"))));
        }
    }
    out.push((config.argocd.namespace.clone(), "`argocd.namespace`".into()));
    out.push((
        config.gitops.flux.namespace.clone(),
        "`gitops.flux.namespace`".into(),
    ));
    out
}

pub fn check(config: &Config, values: &Values, sources: &SourceMap, diags: &mut Diagnostics) {
    let pg = &config.deploykf_core.deploykf_profiles_generator;
    if !pg.enabled {
        return;
    }
    let base = ValuePath::keys(PG);
    let mut fail = |path: ValuePath, message: String| diags.push(error_at(values, path, message));
    let place = |path: &ValuePath| located(values, sources, path);

    let mut users: HashMap<&str, usize> = HashMap::with_capacity(pg.users.len());
    for (i, u) in pg.users.iter().enumerate() {
        if let Some(&first) = users.get(u.id.as_str()) {
            let first_path = base.key("users").index(first).key("id");
            fail(
                base.key("users").index(i).key("id"),
                format!(
                    "duplicate user id `{}`, first defined as {}",
                    u.id,
                    place(&first_path)
                ),
            );
        } else {
            users.insert(&u.id, i);
        }
    }
    let mut groups: HashMap<&str, usize> = HashMap::with_capacity(pg.groups.len());
    for (i, g) in pg.groups.iter().enumerate() {
        if let Some(&first) = groups.get(g.id.as_str()) {
            let first_path = base.key("groups").index(first).key("id");
            fail(
                base.key("groups").index(i).key("id"),
                format!(
                    "duplicate group id `{}`, first defined as {}",
                    g.id,
                    place(&first_path)
                ),
            );
        } else {
            groups.insert(&g.id, i);
        }
        for (j, u) in g.users.iter().enumerate() {
            if !users.contains_key(u.as_str()) {
                fail(
                    base.key("groups").index(i).key("users").index(j),
                    format!("unknown user id `{u}`; define it under `{PG}.users`"),
                );
            }
        }
    }

    let prefix = &pg.profile_defaults.profile_name_prefix;
    let reserved = reserved_namespaces(config);
    let mut namespaces: HashMap<String, usize> = HashMap::with_capacity(pg.profiles.len());
    check_plugins(
        &pg.profile_defaults.plugins,
        &base.key("profileDefaults").key("plugins"),
        &mut fail,
    );
    for (i, p) in pg.profiles.iter().enumerate() {
        let ppath = base.key("profiles").index(i);
        let ns = format!("{prefix}{}", p.name);
        if ns.len() > 63 {
            fail(
                ppath.key("name"),
                format!(
                    "namespace `{ns}` (profileNamePrefix + name) is {} characters; Kubernetes allows at most 63",
                    ns.len()
                ),
            );
        }
        // Each profile is the file `<namespace>.yaml` beside these.
        if ["kustomization", "extra-manifests"].contains(&ns.as_str()) {
            fail(
                ppath.key("name"),
                format!("namespace `{ns}` would be written to `{ns}.yaml`, a file meshgen writes for the component itself; choose another profile name"),
            );
        }
        if let Some((_, who)) = reserved.iter().find(|(r, _)| *r == ns) {
            fail(
                ppath.key("name"),
                format!("namespace `{ns}` is already used by {who}; choose another profile name"),
            );
        }
        if let Some(&first) = namespaces.get(&ns) {
            let first_path = base.key("profiles").index(first).key("name");
            fail(
                ppath.key("name"),
                format!(
                    "duplicate profile `{}` (namespace `{ns}`), first defined as {}",
                    p.name,
                    place(&first_path)
                ),
            );
        } else {
            namespaces.insert(ns, i);
        }
        for (j, m) in p.members.iter().enumerate() {
            let mpath = ppath.key("members").index(j);
            match (&m.user, &m.group) {
                (Some(u), None) => {
                    if !users.contains_key(u.as_str()) {
                        fail(
                            mpath.key("user"),
                            format!("unknown user id `{u}`; define it under `{PG}.users`"),
                        );
                    }
                }
                (None, Some(g)) => {
                    if !groups.contains_key(g.as_str()) {
                        fail(
                            mpath.key("group"),
                            format!("unknown group id `{g}`; define it under `{PG}.groups`"),
                        );
                    }
                }
                (Some(_), Some(_)) => fail(
                    mpath,
                    "a member has either `user` or `group`, not both".into(),
                ),
                (None, None) => fail(mpath, "a member needs `user` or `group`".into()),
            }
        }
        if let Some(plugins) = &p.plugins {
            check_plugins(plugins, &ppath.key("plugins"), &mut fail);
        }
    }
}

fn check_plugins(plugins: &[Plugin], path: &ValuePath, fail: &mut impl FnMut(ValuePath, String)) {
    for (i, p) in plugins.iter().enumerate() {
        let key = match p.kind.as_str() {
            "AwsIamForServiceAccount" => "awsIamRole",
            _ => "gcpServiceAccount",
        };
        let value = p.spec.get(key).and_then(|v| v.as_str()).unwrap_or("");
        if value.is_empty() {
            fail(
                path.index(i).key("spec"),
                format!(
                    "a {} plugin needs `spec.{key}` (a non-empty string)",
                    p.kind
                ),
            );
        }
    }
}

//! Rules for `deploykf_core.deploykf_profiles_generator`: unique ids and
//! namespaces, members that resolve, namespaces that fit and are free.
//! Linear in the number of profiles, users, groups and members (hash
//! lookups only), so 10,000 profiles check in milliseconds.

use super::{error_at, located, Ctx, Findings};
use crate::code::Code;
use crate::config::{Config, Plugin};
use crate::diagnostic::{Diagnostic, Diagnostics};
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
    for d in crate::registry::ALL {
        // `Some("")`: cluster-scoped objects only.
        if let Some(ns) = (d.namespace)(config).filter(|ns| !ns.is_empty()) {
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

    // In ambient, meshgen must own the profile namespaces: their labels
    // (ambient, waypoint) and the split of their policies into waypoint and
    // ztunnel ones. With `output: profiles` the Kubeflow Profiles
    // controller creates the namespace (labelled for sidecar injection) and
    // a namespace-wide header-matching ALLOW policy, whose rules ztunnel
    // would drop (istio/istio 1.30.3
    // pilot/pkg/serviceregistry/ambient/authorization.go:599-603).
    if pg.output == crate::config::ProfilesOutput::Profiles
        && config.deploykf_dependencies.istio.dataplane_mode
            == crate::config::DataplaneMode::Ambient
    {
        fail(
            base.key("output"),
            format!(
                "`profiles` cannot be used with `deploykf_dependencies.istio.dataplaneMode: ambient` ({}): the Kubeflow Profiles controller labels its namespaces for sidecar injection and renders header policies only a sidecar or waypoint enforces; use `namespaces`",
                place(&ValuePath::keys("deploykf_dependencies.istio").key("dataplaneMode"))
            ),
        );
    }

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
            match (&m.user, &m.group, &m.idp_group) {
                (Some(u), None, None) => {
                    if !users.contains_key(u.as_str()) {
                        fail(
                            mpath.key("user"),
                            format!("unknown user id `{u}`; define it under `{PG}.users`"),
                        );
                    }
                }
                (None, Some(g), None) => {
                    if !groups.contains_key(g.as_str()) {
                        fail(
                            mpath.key("group"),
                            format!("unknown group id `{g}`; define it under `{PG}.groups`"),
                        );
                    }
                }
                // Checked in `check_idp_groups`.
                (None, None, Some(_)) => {}
                (None, None, None) => {
                    fail(mpath, "a member needs `user`, `group` or `idpGroup`".into())
                }
                _ => fail(
                    mpath,
                    "a member has exactly one of `user`, `group` or `idpGroup`".into(),
                ),
            }
        }
        if let Some(plugins) = &p.plugins {
            check_plugins(plugins, &ppath.key("plugins"), &mut fail);
        }
    }
}

/// Kubernetes reserves the `system:` prefix for its own users and groups
/// (`system:authenticated`, `system:masters`, ...).
const RESERVED_GROUP_PREFIX: &str = "system:";

/// The rules of `idpGroup` members: a Kubernetes group name that is not
/// one of Kubernetes' own, a login that can deliver the groups claim at
/// all, and profiles whose members can never be admitted (warnings).
pub fn check_idp_groups(ctx: &Ctx, found: &mut Findings) {
    let config = ctx.config;
    let pg = &config.deploykf_core.deploykf_profiles_generator;
    if !pg.enabled {
        return;
    }
    let base = ValuePath::keys(PG);
    let prefix = &pg.idp_groups.prefix;
    if prefix.starts_with(RESERVED_GROUP_PREFIX) {
        found.errors.push(ctx.error(
            base.key("idpGroups").key("prefix"),
            format!("`{prefix}` starts with `{RESERVED_GROUP_PREFIX}`, which Kubernetes reserves for its own groups; use the API server's --oidc-groups-prefix, e.g. `oidc:`"),
        ));
    }
    let why_never = idp_groups_never_delivered(config);
    let mut any_idp = false;
    let empty_groups: std::collections::HashSet<&str> = pg
        .groups
        .iter()
        .filter(|g| g.users.is_empty())
        .map(|g| g.id.as_str())
        .collect();
    for (i, p) in pg.profiles.iter().enumerate() {
        let ppath = base.key("profiles").index(i);
        let mut admits = false;
        for (j, m) in p.members.iter().enumerate() {
            match (&m.user, &m.group, &m.idp_group) {
                (Some(_), None, None) => admits = true,
                (None, Some(g), None) => admits |= !empty_groups.contains(g.as_str()),
                (None, None, Some(g)) => {
                    any_idp = true;
                    admits |= why_never.is_none();
                    let subject = format!("{prefix}{g}");
                    if subject.starts_with(RESERVED_GROUP_PREFIX)
                        && !prefix.starts_with(RESERVED_GROUP_PREFIX)
                    {
                        found.errors.push(ctx.error(
                            ppath.key("members").index(j).key("idpGroup"),
                            format!("the Kubernetes group `{subject}` (idpGroups.prefix + idpGroup) starts with `{RESERVED_GROUP_PREFIX}`, which Kubernetes reserves for its own groups; set `{PG}.idpGroups.prefix` as the API server's --oidc-groups-prefix"),
                        ));
                    }
                }
                _ => admits = true, // an error of `check`
            }
        }
        if !p.members.is_empty() && !admits {
            let mut reasons = Vec::new();
            if p.members.iter().any(|m| m.group.is_some()) {
                reasons.push("its static groups have no users".to_string());
            }
            if let Some(w) = why_never
                .as_ref()
                .filter(|_| p.members.iter().any(|m| m.idp_group.is_some()))
            {
                reasons.push(w.clone());
            }
            let why = reasons.join("; ");
            found.warnings.push(
                Diagnostic::warning(Code::MembersNeverAdmitted, format!(
                    "no member of profile `{}` can ever be admitted ({why}); only its owner can reach it",
                    p.name
                ))
                .at(ctx.values.origin_of(&ppath.key("members")))
                .at_path(ppath.key("members")),
            );
        }
    }
    if let (true, Some(why)) = (any_idp, &why_never) {
        found.warnings.push(ctx.warning(
            Code::MembersNeverAdmitted,
            base.key("idpGroups").key("claim"),
            format!("`idpGroup` members can never be admitted: {why}"),
        ));
    }
    let dex = &config.deploykf_core.deploykf_auth.dex;
    // Each key naming a connector: `idpGroups.connector`, each profile's
    // `idpConnector`.
    let keys = std::iter::once((
        base.key("idpGroups").key("connector"),
        pg.idp_groups.connector.as_deref(),
    ))
    .chain(pg.profiles.iter().enumerate().map(|(i, p)| {
        (
            base.key("profiles").index(i).key("idpConnector"),
            p.idp_connector.as_deref(),
        )
    }));
    for (path, id) in keys {
        let Some(id) = id else { continue };
        if !dex.enabled {
            found.errors.push(ctx.error(
                path,
                format!("names a dex connector, but `{DEX}.enabled` is false: only dex's tokens carry federated_claims.connector_id; set it to null"),
            ));
        } else if !dex.connectors.iter().any(|c| c.id == id) {
            let ids: Vec<&str> = dex.connectors.iter().map(|c| c.id.as_str()).collect();
            found.errors.push(ctx.error(
                path,
                format!("`{id}` is not the id of one of dex's connectors ({}); set it to the connector whose groups the profiles trust", ids.join(", ")),
            ));
        }
    }
    // The connectors whose groups some profile trusts: the bound ones, or
    // all while one profile with `idpGroup` members is bound to none.
    let unbound = pg.profiles.iter().any(|p| {
        p.members.iter().any(|m| m.idp_group.is_some())
            && p.idp_connector.is_none()
            && pg.idp_groups.connector.is_none()
    });
    let bound: Vec<&str> = (pg.profiles.iter())
        .filter(|p| p.members.iter().any(|m| m.idp_group.is_some()))
        .filter_map(|p| (p.idp_connector.as_deref()).or(pg.idp_groups.connector.as_deref()))
        .collect();
    if any_idp && why_never.is_none() && dex.enabled {
        let trusted = (!unbound).then_some(bound.as_slice());
        check_group_connectors(ctx, &dex.connectors, trusted, found);
    }
}

const DEX: &str = "deploykf_core.deploykf_auth.dex";

/// Issue 28, point 7: a group name is trusted whichever connector issued
/// it. A GitHub or Gitea connector with `loadAllGroups` and no `orgs` or
/// `org` returns every organisation the user belongs to, which anyone can
/// create under any free name (dex v2.45.1 `connector/github/github.go:317-327`
/// `getGroups`: `orgs`, then `org`, then `loadAllGroups`;
/// `connector/gitea/gitea.go:281`): refused, for each connector whose
/// groups some profile trusts (`bound`: those profiles are bound to these
/// connectors; `None`: some profile takes groups from any). Several
/// connectors and a profile bound to none: warned.
fn check_group_connectors(
    ctx: &Ctx,
    connectors: &[crate::config::Connector],
    bound: Option<&[&str]>,
    found: &mut Findings,
) {
    let base = ValuePath::keys(DEX).key("connectors");
    let trusted = |c: &crate::config::Connector| bound.is_none_or(|b| b.contains(&c.id.as_str()));
    for (i, c) in connectors.iter().enumerate().filter(|(_, c)| trusted(c)) {
        let cfg = &c.config;
        let set = |k: &str| match cfg.get(k) {
            Some(serde_json::Value::Array(a)) => !a.is_empty(),
            Some(serde_json::Value::String(s)) => !s.is_empty(),
            _ => false,
        };
        let all_groups = cfg.get("loadAllGroups") == Some(&serde_json::Value::Bool(true));
        if matches!(c.kind.as_str(), "github" | "gitea")
            && all_groups
            && !set("orgs")
            && !set("org")
        {
            found.errors.push(ctx.error(
                base.index(i).key("config").key("loadAllGroups"),
                format!("with `idpGroup` members in `{PG}.profiles`, a {} connector may not load all of a user's groups without `orgs`: it returns every organisation the user belongs to, and anyone can create one named like an `idpGroup`; list the organisations to trust in `config.orgs`", c.kind),
            ));
        }
    }
    if connectors.len() > 1 && bound.is_none() {
        let ids: Vec<&str> = connectors.iter().map(|c| c.id.as_str()).collect();
        found.warnings.push(ctx.warning(Code::GroupsFromAnyConnector,
            base,
            format!("`idpGroup` members are admitted by group name whichever of dex's connectors ({}) issued the group: a group of the same name from another identity provider counts too; keep to one connector that returns groups, or set `{PG}.idpGroups.connector` to the one whose groups the profiles trust", ids.join(", ")),
        ));
    }
}

/// Why no verified token can carry the groups claim, if so.
fn idp_groups_never_delivered(config: &Config) -> Option<String> {
    let a = &config.deploykf_core.deploykf_auth;
    let claim = &config
        .deploykf_core
        .deploykf_profiles_generator
        .idp_groups
        .claim;
    if !a.common.enabled {
        return Some("`deploykf_core.deploykf_auth.enabled` is false, so no request carries a verified token".into());
    }
    if !a.dex.enabled {
        return None;
    }
    // dex writes the connector's groups into the ID token's `groups`
    // claim, and only there (dex v2.39.1 server/oauth2.go, newIDToken:
    // `case scope == scopeGroups: tok.Groups = claims.Groups`, JSON name
    // `groups` in idTokenClaims).
    if claim != "groups" {
        return Some(format!(
            "dex puts groups only in the `groups` claim, not `{claim}`"
        ));
    }
    // dex's static passwords have no groups (v2.39.1 storage/storage.go:
    // `Password` has no Groups field): only connectors deliver them.
    if a.dex.connectors.is_empty() {
        return Some("dex has no connectors, and its static passwords carry no groups".into());
    }
    None
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

//! Fleet-wide checks: what no single cluster's values can show. Each
//! finding names the clusters and the key, and points at the cluster's
//! entry in the fleet file.

use super::facts::ClusterFacts;
use super::file::Fleet;
use crate::code::Code;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::values::path::ValuePath;
use std::collections::BTreeMap;

/// One rendered cluster, as the checks see it.
#[derive(Debug, Clone)]
pub struct Found {
    pub facts: ClusterFacts,
    /// The same facts of the base alone (defaults, preset, `base` files).
    pub base: ClusterFacts,
    /// Where the cluster's value of a security key was set (`file:line:col`).
    pub set_at: BTreeMap<&'static str, String>,
}

/// Before anything renders: duplicate cluster names and destinations.
pub fn spec(fleet: &Fleet) -> Diagnostics {
    let mut out = Diagnostics::default();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut destinations: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, c) in fleet.clusters.iter().enumerate() {
        if let Some(&first) = names.get(c.name.as_str()) {
            out.push(
                Diagnostic::error(Code::Fleet, format!(
                    "cluster `{}` is listed twice (clusters[{first}] and clusters[{i}]): each cluster needs a name of its own, its directory `clusters/{}/`",
                    c.name, c.name
                ))
                .at_path(ValuePath::keys("clusters").index(i).key("name"))
                .at(Some(c.origin)),
            );
        } else {
            names.insert(&c.name, i);
        }
        if let Some((d, origin)) = &c.destination {
            if let Some(&first) = destinations.get(d.text()) {
                out.push(
                    Diagnostic::error(Code::Fleet, format!(
                        "clusters `{}` and `{}` both deploy to `{}`: one cluster holds one platform; give each cluster its own destination",
                        fleet.clusters[first].name,
                        c.name,
                        d.text()
                    ))
                    .at_path(ValuePath::keys("clusters").index(i).key("destination"))
                    .at(Some(*origin)),
                );
            } else {
                destinations.insert(d.text(), i);
            }
        }
    }
    out
}

/// A path in the repository without `./` and trailing slashes.
fn clean(path: &str) -> &str {
    path.trim_start_matches("./").trim_end_matches('/')
}

/// Does the repository path `path` name the fleet's directory of
/// cluster `name` (`<anything>/clusters/<name>`)?
pub fn points_at_cluster(path: &str, name: &str) -> bool {
    let p = clean(path);
    let tail = format!("clusters/{name}");
    p == tail || p.ends_with(&format!("/{tail}"))
}

/// After every cluster rendered: the checks across clusters. `found`
/// is in the fleet's order.
pub fn clusters(fleet: &Fleet, found: &[Found]) -> Diagnostics {
    let mut out = Diagnostics::default();
    let at_path = |i: usize, path: ValuePath, d: Diagnostic| {
        d.at_path(path).at(Some(fleet.clusters[i].origin))
    };
    let at = |i: usize, key: &str, d: Diagnostic| at_path(i, ValuePath::keys(key), d);
    let name = |i: usize| fleet.clusters[i].name.as_str();

    // One public host name or gateway address, two clusters (whichever
    // of their gateways claims it).
    let mut claimed: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, f) in found.iter().enumerate() {
        for (key, value) in f.facts.hostnames.iter().chain(&f.facts.addresses) {
            match claimed.get(value.as_str()) {
                Some(&first) => out.push(at_path(
                    i,
                    key.clone(),
                    Diagnostic::error(Code::Fleet, format!(
                        "clusters `{}` and `{}` both claim `{value}`: DNS and clients would reach either; give each cluster its own",
                        name(first),
                        name(i)
                    )),
                )),
                None => {
                    claimed.insert(value, i);
                }
            }
        }
    }

    // Istio minors more than one apart.
    let minors: Vec<(usize, &str, &str, (u64, u64))> = found
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let (key, version) = f.facts.istio.as_ref()?;
            Some((i, *key, version.as_str(), super::facts::minor(version)?))
        })
        .collect();
    if let (Some(low), Some(high)) = (
        minors.iter().min_by_key(|m| m.3),
        minors.iter().max_by_key(|m| m.3),
    ) {
        if low.3 .0 != high.3 .0 || high.3 .1 > low.3 .1 + 1 {
            out.push(at(
                low.0,
                low.1,
                Diagnostic::warning(Code::FleetIstioSkew, format!(
                    "clusters run Istio minors more than one apart: `{}` {} and `{}` {}; Istio upgrades one minor at a time, so keep the fleet within one minor (promote `{}` first)",
                    name(low.0),
                    low.2,
                    name(high.0),
                    high.2,
                    name(low.0)
                )),
            ));
        }
    }

    // An overlay weakening what the base sets.
    for (i, f) in found.iter().enumerate() {
        for (mine, base) in f.facts.security.iter().zip(&f.base.security) {
            if mine.strength < base.strength {
                let set_at = f
                    .set_at
                    .get(mine.key)
                    .map(|s| format!(", set at {s}"))
                    .unwrap_or_default();
                out.push(at(
                    i,
                    mine.key,
                    Diagnostic::warning(Code::FleetWeakerThanBase, format!(
                        "cluster `{}` turns off what the base turns on: `{}` (base: `{}`){set_at}; check that the cluster means to run weaker than the base",
                        name(i),
                        mine.shown,
                        base.shown
                    )),
                ));
            }
        }
    }

    // Delivery: the ApplicationSet and the Flux entries point at
    // `clusters/<name>/`, so each cluster's tree must say it lives there.
    let mut prefixes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut namespaces: BTreeMap<&str, usize> = BTreeMap::new();
    let mut no_repo: Vec<usize> = Vec::new();
    for (i, f) in found.iter().enumerate() {
        let n = name(i);
        match f.facts.engine.as_str() {
            "argocd" => {
                let a = &f.facts.argo;
                if a.repo_url.is_empty() {
                    no_repo.push(i);
                    continue;
                }
                if !points_at_cluster(&a.repo_path, n) {
                    out.push(at(i, "argocd.source.repo.path", Diagnostic::error(Code::Fleet, format!(
                        "is `{}` in cluster `{n}`, but the fleet writes that cluster to `clusters/{n}/`: set it to the fleet output's folder in the repository followed by `clusters/{n}/`",
                        a.repo_path
                    ))));
                }
                if let Some(&first) = prefixes.get(a.app_name_prefix.as_str()) {
                    out.push(at(i, "argocd.appNamePrefix", Diagnostic::error(Code::Fleet, format!(
                        "is `{}` in clusters `{}` and `{n}`: their Applications would have the same names in one Argo CD; give each cluster its own, e.g. `{n}-`",
                        a.app_name_prefix,
                        name(first)
                    ))));
                } else {
                    prefixes.insert(&a.app_name_prefix, i);
                }
                if let Some((&ns, &first)) = namespaces.iter().next() {
                    if ns != a.namespace {
                        out.push(at(i, "argocd.namespace", Diagnostic::error(Code::Fleet, format!(
                            "is `{}` in cluster `{n}` and `{ns}` in cluster `{}`: the fleet's one ApplicationSet lives in one Argo CD namespace",
                            a.namespace,
                            name(first)
                        ))));
                    }
                } else {
                    namespaces.insert(&a.namespace, i);
                }
            }
            "flux" if !points_at_cluster(&f.facts.flux.path, n) => {
                out.push(at(i, "gitops.flux.path", Diagnostic::error(Code::Fleet, format!(
                    "is `{}` in cluster `{n}`, but the fleet writes that cluster to `clusters/{n}/`: set it to the fleet output's folder in the repository followed by `clusters/{n}/`",
                    f.facts.flux.path
                ))));
            }
            _ => {}
        }
    }
    if let Some(&first) = no_repo.first() {
        let names: Vec<String> = no_repo.iter().map(|&i| format!("`{}`", name(i))).collect();
        out.push(at(first, "argocd.source.repo.url", Diagnostic::warning(Code::FleetRepoUnset, format!(
            "is empty in cluster{} {}, which render{} no Argo CD objects then, so the fleet's ApplicationSet leaves {} out: set `argocd.source.repo.url`, `revision` and `path` (e.g. in the base values)",
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            if names.len() == 1 { "s" } else { "" },
            if names.len() == 1 { "it" } else { "them" },
        ))));
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_path_names_the_clusters_directory() {
        assert!(points_at_cluster("./fleet/clusters/dev/", "dev"));
        assert!(points_at_cluster("clusters/dev", "dev"));
        assert!(!points_at_cluster("./fleet/clusters/dev-2/", "dev"));
        assert!(!points_at_cluster("./fleet/myclusters/dev/", "dev"));
        assert!(!points_at_cluster("", "dev"));
    }
}

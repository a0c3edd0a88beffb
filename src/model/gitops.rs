//! Delivery objects: the Argo CD app-of-apps or the Flux Kustomizations
//! (and HelmReleases) that apply the component directories in order, or,
//! with no engine, the order for plain kustomize.
//!
//! Order, lowest first: Istio (CRDs and istiod), cert-manager (chart and
//! CRDs), the certificate issuers, the gateway; later components (auth,
//! profiles) follow. Every Helm-chart component is delivered the same way:
//! an Argo CD Helm source, or (Flux) a HelmRepository and one HelmRelease
//! per upstream chart of its wrapper.

use crate::component::{FanOut, HelmChart, Instance};
use crate::config::{Config, GitopsEngine};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Fan-out collections of the templates outside every component (the
/// delivery objects), as paths in the whole model.
pub const FAN_OUT: &[FanOut] = &[
    FanOut {
        placeholder: "application",
        collection: &["gitops", "argocd", "applications"],
        within: None,
    },
    FanOut {
        placeholder: "kustomization",
        collection: &["gitops", "flux", "kustomizations"],
        within: None,
    },
    FanOut {
        placeholder: "helm",
        collection: &["gitops", "flux", "helm"],
        within: None,
    },
    FanOut {
        placeholder: "release",
        collection: &["releases"],
        within: Some("helm"),
    },
];

#[derive(Debug, Clone, Serialize)]
pub struct GitopsModel {
    pub engine: GitopsEngine,
    /// Rendered Argo CD objects (`None` without a repository URL).
    pub argocd: Option<ArgoModel>,
    pub flux: Option<FluxModel>,
    /// Kustomize components in apply order (for `engine: none`).
    pub kustomize_order: Vec<String>,
    /// Every kustomize directory applied as one unit, with the name of the
    /// GitOps object applying it (its directory with `engine: none`), for
    /// the size limits of `check::limits`.
    pub units: Vec<(String, String)>,
    /// `gitops.maxObjectsPerApplication`.
    pub max_objects: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArgoModel {
    /// `argocd.source.repo.path` as given.
    pub repo_path: String,
    pub namespace: String,
    pub project: String,
    pub repo_url: String,
    pub revision: String,
    pub root: ArgoApp,
    pub applications: Vec<ArgoApp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArgoApp {
    pub name: String,
    pub wave: i32,
    /// Path inside the repository.
    pub path: String,
    /// A Helm chart source (else a directory/kustomize source).
    pub helm: bool,
    pub release_name: String,
    pub namespace: String,
    pub destination_name: String,
    pub destination_server: String,
    /// Argo CD creates the namespace (meshgen renders no Namespace object).
    pub create_namespace: bool,
    /// Large CRDs exceed client-side apply's annotation limit.
    pub server_side_apply: bool,
    /// istiod rewrites its webhooks' caBundle and failurePolicy at run time.
    pub ignore_webhook_fields: bool,
    pub automated: bool,
    pub prune: bool,
    pub self_heal: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FluxModel {
    /// `gitops.flux.path` as given.
    pub path: String,
    /// Path (in the source) of the `flux/` directory users point Flux at.
    pub entry_path: String,
    pub namespace: String,
    pub source_kind: String,
    pub source_name: String,
    pub interval: String,
    pub kustomizations: Vec<FluxKustomization>,
    /// Each enabled Helm-chart component as a HelmRepository and
    /// HelmReleases (one per upstream chart), in `flux/<id>/`.
    pub helm: Vec<FluxHelm>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FluxKustomization {
    pub name: String,
    pub path: String,
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FluxHelm {
    /// The component id (its directory under `flux/`).
    pub name: String,
    /// Directory (relative to the output root) holding the objects below.
    pub dir: String,
    pub repository_name: String,
    pub repository_url: String,
    pub releases: Vec<FluxRelease>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FluxRelease {
    pub name: String,
    /// The wrapper chart whose pinned chart and values this installs.
    pub chart_dir: String,
    pub repository_name: String,
    pub target_namespace: String,
    pub chart: String,
    pub version: String,
    pub depends_on: Vec<String>,
    pub values: Value,
}

/// `./a/b/` → `a/b`; `""` and `./` → `""`.
pub fn clean_repo_path(p: &str) -> String {
    p.trim_start_matches("./").trim_matches('/').to_string()
}

/// `rel` without the repository prefix `join` put before it.
fn unprefixed(prefix: &str, path: &str) -> String {
    if prefix.is_empty() {
        path.to_string()
    } else {
        path.strip_prefix(&format!("{prefix}/"))
            .unwrap_or(path)
            .to_string()
    }
}

fn join(prefix: &str, rel: &str) -> String {
    if prefix.is_empty() {
        rel.to_string()
    } else {
        format!("{prefix}/{rel}")
    }
}

/// Namespaces the delivery objects and the cluster have without this
/// tree creating them.
pub fn assumed_namespaces(config: &Config) -> Vec<String> {
    let mut out = vec![
        "kube-system".to_string(),
        config.argocd.namespace.clone(),
        config.gitops.flux.namespace.clone(),
    ];
    out.extend(config.gitops.existing_namespaces.iter().cloned());
    out
}

impl GitopsModel {
    /// Directories of delivery objects that get a `kustomization.yaml`.
    pub fn kustomize_dirs(&self) -> Vec<String> {
        match (&self.argocd, &self.flux) {
            (Some(_), _) => vec!["argocd-applications".into()],
            (_, Some(f)) => {
                let mut dirs = vec!["flux".to_string()];
                dirs.extend(f.helm.iter().map(|h| h.dir.clone()));
                dirs
            }
            _ => Vec::new(),
        }
    }
}

/// The kustomize directories a component is applied as, with the suffix of
/// their GitOps objects' names: its own directory, or one per shard (plus
/// its own directory for its `extraManifests`, if any).
pub fn units_of(config: &Config, c: &Instance) -> Vec<(String, String)> {
    let shards = (c.descriptor.shards)(config);
    if shards.is_empty() {
        return vec![(c.id.to_string(), c.dir.clone())];
    }
    let mut out = Vec::new();
    if !(c.descriptor.extra_manifests)(config).is_empty() {
        out.push((c.id.to_string(), c.dir.clone()));
    }
    out.extend(
        shards
            .iter()
            .map(|s| (format!("{}-{s}", c.id), format!("{}/{s}", c.dir))),
    );
    out
}

pub fn derive(
    config: &Config,
    components: &[Instance],
    charts: &BTreeMap<&'static str, HelmChart>,
) -> GitopsModel {
    let g = &config.gitops;
    let mut ordered: Vec<&Instance> = components.iter().filter(|c| c.enabled).collect();
    ordered.sort_by_key(|c| c.wave);
    let kustomize_order: Vec<String> = ordered
        .iter()
        .filter(|c| !c.helm_chart)
        .flat_map(|c| units_of(config, c))
        .map(|(_, dir)| dir)
        .collect();
    let argocd = (g.engine == GitopsEngine::Argocd && !config.argocd.source.repo.url.is_empty())
        .then(|| argo(config, &ordered));
    let flux = (g.engine == GitopsEngine::Flux).then(|| flux(config, &ordered, charts));
    let units = match (&argocd, &flux) {
        (Some(a), _) => {
            let prefix = clean_repo_path(&a.repo_path);
            a.applications
                .iter()
                .filter(|x| !x.helm)
                .map(|x| (x.name.clone(), unprefixed(&prefix, &x.path)))
                .collect()
        }
        (_, Some(f)) => {
            let prefix = clean_repo_path(&f.path);
            f.kustomizations
                .iter()
                .map(|k| {
                    (
                        k.name.clone(),
                        unprefixed(&prefix, k.path.trim_start_matches("./")),
                    )
                })
                .collect()
        }
        _ => kustomize_order
            .iter()
            .map(|d| (d.clone(), d.clone()))
            .collect(),
    };
    GitopsModel {
        engine: g.engine,
        argocd,
        flux,
        kustomize_order,
        units,
        max_objects: g.max_objects_per_application,
    }
}

fn argo(config: &Config, ordered: &[&Instance]) -> ArgoModel {
    let a = &config.argocd;
    let prefix = clean_repo_path(&a.source.repo.path);
    let sync = &a.sync_policy;
    let app = |name: String, wave: i32, path: String, namespace: String| ArgoApp {
        name,
        wave,
        path,
        helm: false,
        release_name: String::new(),
        namespace,
        destination_name: a.destination.name.clone(),
        destination_server: if a.destination.name.is_empty() {
            a.destination.server.clone()
        } else {
            String::new()
        },
        create_namespace: false,
        server_side_apply: false,
        ignore_webhook_fields: false,
        automated: sync.automated,
        prune: sync.prune,
        self_heal: sync.self_heal,
    };
    let prefix_ref = &prefix;
    let app = &app;
    let applications = ordered
        .iter()
        .flat_map(|c| {
            let units = if c.helm_chart {
                vec![(c.id.to_string(), c.dir.clone())]
            } else {
                units_of(config, c)
            };
            units.into_iter().map(move |(id, dir)| {
                let mut x = app(
                    format!("{}{}", a.app_name_prefix, id),
                    c.wave,
                    join(prefix_ref, &dir),
                    c.namespace.clone(),
                );
                let delivery = c.descriptor.delivery;
                x.helm = c.helm_chart;
                x.release_name = c.id.to_string();
                x.create_namespace = delivery.create_namespace;
                x.server_side_apply = delivery.server_side_apply;
                x.ignore_webhook_fields = delivery.ignore_webhook_fields;
                x
            })
        })
        .collect();
    // The root app always lives in Argo CD's own cluster and namespace.
    let mut root = app(
        format!("{}deploykf-app-of-apps", a.app_name_prefix),
        0,
        join(&prefix, "argocd-applications"),
        a.namespace.clone(),
    );
    root.destination_name = String::new();
    root.destination_server = "https://kubernetes.default.svc".into();
    ArgoModel {
        repo_path: a.source.repo.path.clone(),
        namespace: a.namespace.clone(),
        project: a.project.clone(),
        repo_url: a.source.repo.url.clone(),
        revision: if a.source.repo.revision.is_empty() {
            "HEAD".into()
        } else {
            a.source.repo.revision.clone()
        },
        root,
        applications,
    }
}

fn flux(
    config: &Config,
    ordered: &[&Instance],
    charts: &BTreeMap<&'static str, HelmChart>,
) -> FluxModel {
    let f = &config.gitops.flux;
    let prefix = clean_repo_path(&f.path);
    let mut kustomizations: Vec<FluxKustomization> = Vec::new();
    let mut helm = Vec::new();
    for c in ordered {
        let chart = (charts.get(c.descriptor.id)).filter(|_| c.helm_chart && c.index.is_none());
        let units: Vec<(String, String)> = match chart {
            Some(chart) => {
                let dir = format!("flux/{}", c.id);
                let path = join(&prefix, &dir);
                helm.push(flux_helm(c, chart, dir));
                vec![(c.id.to_string(), path)]
            }
            None => units_of(config, c)
                .into_iter()
                .map(|(id, dir)| (id, join(&prefix, &dir)))
                .collect(),
        };
        // A component's units (its shards) each wait for the component
        // before it, not for each other.
        let depends_on: Vec<String> = kustomizations
            .last()
            .map(|k| vec![k.name.clone()])
            .unwrap_or_default();
        for (name, path) in units {
            kustomizations.push(FluxKustomization {
                name,
                path: format!("./{path}"),
                depends_on: depends_on.clone(),
            });
        }
    }
    FluxModel {
        path: f.path.clone(),
        entry_path: format!("./{}", join(&prefix, "flux")),
        namespace: f.namespace.clone(),
        source_kind: f.source_ref.kind.clone(),
        source_name: f.source_ref.name.clone(),
        interval: f.interval.clone(),
        kustomizations,
        helm,
    }
}

/// The wrapper chart's values, split per upstream chart, each with the
/// shared `global` block (if the wrapper has one).
fn flux_helm(c: &Instance, chart: &HelmChart, dir: String) -> FluxHelm {
    let global = chart.values.get("global");
    let values_of = |alias: &str| {
        let mut v = chart.values.get(alias).cloned().unwrap_or(json!({}));
        if let (Value::Object(m), Some(g)) = (&mut v, global) {
            m.insert("global".into(), g.clone());
        }
        v
    };
    let mut releases = Vec::new();
    let mut previous: Option<String> = None;
    for dep in &chart.dependencies {
        releases.push(FluxRelease {
            name: dep.release.to_string(),
            chart_dir: c.dir.clone(),
            repository_name: c.id.to_string(),
            target_namespace: c.namespace.clone(),
            chart: dep.name.clone(),
            version: dep.version.clone(),
            depends_on: previous.iter().cloned().collect(),
            values: values_of(dep.alias),
        });
        previous = Some(dep.release.to_string());
    }
    FluxHelm {
        name: c.id.to_string(),
        dir,
        repository_name: c.id.to_string(),
        repository_url: chart.repository_url.clone(),
        releases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_paths_are_normalised() {
        assert_eq!(clean_repo_path("./GENERATOR_OUTPUT/"), "GENERATOR_OUTPUT");
        assert_eq!(clean_repo_path(""), "");
        assert_eq!(clean_repo_path("./"), "");
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("x/y", "a"), "x/y/a");
    }
}

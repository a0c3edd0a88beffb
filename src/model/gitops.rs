//! Delivery objects: the Argo CD app-of-apps or the Flux Kustomizations
//! (and HelmReleases) that apply the component directories in order, or,
//! with no engine, the order for plain kustomize.
//!
//! Order, lowest first: Istio (CRDs and istiod), the certificate issuers,
//! the gateway; later components (auth, profiles) follow.

use super::istio::{IstioChart, BASE_ALIAS, CNI_ALIAS, DAEMON_ALIAS};
use super::Component;
use crate::config::Config;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Serialize)]
pub struct GitopsModel {
    pub engine: String,
    /// Rendered Argo CD objects (`None` without a repository URL).
    pub argocd: Option<ArgoModel>,
    pub flux: Option<FluxModel>,
    /// Kustomize components in apply order (for `engine: none`).
    pub kustomize_order: Vec<String>,
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
    /// The Istio install as HelmReleases (when meshgen manages Istio).
    pub istio: Option<FluxIstio>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FluxKustomization {
    pub name: String,
    pub path: String,
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FluxIstio {
    /// Directory (relative to the output root) holding the objects below.
    pub dir: String,
    pub repository_name: String,
    pub repository_url: String,
    pub target_namespace: String,
    pub releases: Vec<FluxRelease>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FluxRelease {
    pub name: String,
    pub chart: String,
    pub version: String,
    pub depends_on: Vec<String>,
    pub values: Value,
}

/// `./a/b/` → `a/b`; `""` and `./` → `""`.
pub fn clean_repo_path(p: &str) -> String {
    p.trim_start_matches("./").trim_matches('/').to_string()
}

fn join(prefix: &str, rel: &str) -> String {
    if prefix.is_empty() {
        rel.to_string()
    } else {
        format!("{prefix}/{rel}")
    }
}

/// Sync wave / dependency rank of a component.
pub fn wave(id: &str) -> i32 {
    match id {
        "istio" => -10,
        "cert-manager" => -5,
        "deploykf-istio-gateway" => 0,
        "deploykf-auth" => 10,
        "deploykf-profiles-generator" => 20,
        _ => 30,
    }
}

pub fn derive(config: &Config, components: &[Component], istio: &IstioChart) -> GitopsModel {
    let g = &config.gitops;
    let mut ordered: Vec<&Component> = components.iter().filter(|c| c.enabled).collect();
    ordered.sort_by_key(|c| wave(c.id));
    let kustomize_order = ordered
        .iter()
        .filter(|c| !c.helm_chart)
        .map(|c| c.dir.to_string())
        .collect();
    let argocd = (g.engine == crate::config::GitopsEngine::Argocd
        && !config.argocd.source.repo.url.is_empty())
    .then(|| argo(config, &ordered));
    let flux =
        (g.engine == crate::config::GitopsEngine::Flux).then(|| flux(config, &ordered, istio));
    GitopsModel {
        engine: g.engine.as_str().to_owned(),
        argocd,
        flux,
        kustomize_order,
    }
}

fn argo(config: &Config, ordered: &[&Component]) -> ArgoModel {
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
    let applications = ordered
        .iter()
        .map(|c| {
            let mut x = app(
                format!("{}{}", a.app_name_prefix, c.id),
                wave(c.id),
                join(&prefix, c.dir),
                c.namespace.clone(),
            );
            x.helm = c.helm_chart;
            x.release_name = c.id.to_string();
            // Only the gateway component renders its own Namespace.
            x.create_namespace = c.id == "istio";
            x.server_side_apply = c.id == "istio";
            x.ignore_webhook_fields = c.id == "istio";
            x
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

fn flux(config: &Config, ordered: &[&Component], istio: &IstioChart) -> FluxModel {
    let f = &config.gitops.flux;
    let prefix = clean_repo_path(&f.path);
    let mut kustomizations: Vec<FluxKustomization> = Vec::new();
    let mut istio_model = None;
    for c in ordered {
        let (path, name) = if c.helm_chart {
            let dir = "flux/istio".to_string();
            istio_model = Some(flux_istio(config, istio, &dir));
            (join(&prefix, &dir), c.id.to_string())
        } else {
            (join(&prefix, c.dir), c.id.to_string())
        };
        let depends_on = kustomizations
            .last()
            .map(|k| vec![k.name.clone()])
            .unwrap_or_default();
        kustomizations.push(FluxKustomization {
            name,
            path: format!("./{path}"),
            depends_on,
        });
    }
    FluxModel {
        path: f.path.clone(),
        entry_path: format!("./{}", join(&prefix, "flux")),
        namespace: f.namespace.clone(),
        source_kind: f.source_ref.kind.clone(),
        source_name: f.source_ref.name.clone(),
        interval: f.interval.clone(),
        kustomizations,
        istio: istio_model,
    }
}

/// The wrapper chart's values, split per upstream chart, each with the
/// shared `global` block.
fn flux_istio(config: &Config, chart: &IstioChart, dir: &str) -> FluxIstio {
    let istio = &config.deploykf_dependencies.istio;
    let global = chart.values.get("global").cloned().unwrap_or(json!({}));
    let values_of = |alias: &str| {
        let mut v = chart.values.get(alias).cloned().unwrap_or(json!({}));
        if let Value::Object(m) = &mut v {
            m.insert("global".into(), global.clone());
        }
        v
    };
    let mut releases = Vec::new();
    let mut previous: Option<String> = None;
    for dep in &chart.dependencies {
        let name = match dep.alias {
            a if a == BASE_ALIAS => "istio-base",
            a if a == DAEMON_ALIAS => "istiod",
            a if a == CNI_ALIAS => "istio-cni",
            other => other,
        };
        releases.push(FluxRelease {
            name: name.to_string(),
            chart: dep.name.clone(),
            version: dep.version.clone(),
            depends_on: previous.iter().cloned().collect(),
            values: values_of(dep.alias),
        });
        previous = Some(name.to_string());
    }
    FluxIstio {
        dir: dir.to_string(),
        repository_name: "istio".into(),
        repository_url: istio.charts.istio_daemon.repository.clone(),
        target_namespace: istio.namespace.clone(),
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

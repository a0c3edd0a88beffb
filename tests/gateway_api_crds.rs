//! Issue 18: the Gateway API CRDs as the component
//! `manifests/deploykf-dependencies/gateway-api` (`model::gateway_api`):
//! when it is on, that its files are the vendored upstream bytes of the
//! bundle pinned to the Istio minor, and how Argo CD and Flux deliver it.

mod common;

use serde_json::Value;

const DIR: &str = "manifests/deploykf-dependencies/gateway-api";
const API: &str = "deploykf_core.deploykf_istio_gateway.api=gateway-api";

fn pin(version: &str) -> Vec<String> {
    vec![
        format!("deploykf_dependencies.istio.charts.istioBase.version={version}"),
        format!("deploykf_dependencies.istio.charts.istioDaemon.version={version}"),
        format!("deploykf_core.deploykf_istio_gateway.charts.istioGateway.version={version}"),
    ]
}

fn generate(sets: &[String]) -> meshgen::Generated {
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    common::generate(&common::inputs(vec![], &sets))
}

fn component_files(g: &meshgen::Generated) -> Vec<(&str, &str)> {
    g.files
        .iter()
        .filter_map(|(p, t)| {
            p.strip_prefix(&format!("{DIR}/"))
                .map(|rel| (rel, t.as_str()))
        })
        .collect()
}

/// On only when meshgen installs Istio and something needs the CRDs:
/// never in the default tree, nor with your own Istio (then a
/// prerequisite, README "The routing API").
#[test]
fn on_only_with_meshgen_s_istio_and_the_gateway_api() {
    assert!(component_files(&generate(&[])).is_empty());
    let own = generate(&[
        API.to_string(),
        "deploykf_dependencies.istio.enabled=false".into(),
    ]);
    assert!(component_files(&own).is_empty());
    // With your own Istio, the exact install of your minor's bundle.
    let mut sets = pin("1.29.6");
    sets.extend([
        API.to_string(),
        "deploykf_dependencies.istio.enabled=false".into(),
    ]);
    let required = &generate(&sets).files["REQUIRED-MESH-CONFIG.md"];
    assert!(
        required.contains("bundle **v1.4.1** (the one Istio 1.29 is built against;"),
        "{required}"
    );
    assert!(required.contains("\n```sh\nkubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.1/standard-install.yaml\n```\n"));
    assert!(!component_files(&generate(&[API.to_string()])).is_empty());
}

/// The files are the vendored ones, byte for byte (never evaluated as
/// templates), of the bundle of the Istio minor: `sigs.k8s.io/gateway-api`
/// in istio/istio `1.29.6:go.mod:110` is v1.4.1, in `1.30.3:go.mod:112`
/// v1.5.1, whose safe-upgrades ValidatingAdmissionPolicy comes along.
#[test]
fn the_files_are_the_pinned_bundle_as_upstream_ships_it() {
    for (istio, bundle) in [
        ("1.28.10", &meshgen::model::gateway_api::V1_4_1),
        ("1.29.6", &meshgen::model::gateway_api::V1_4_1),
        ("1.30.3", &meshgen::model::gateway_api::V1_5_1),
    ] {
        let mut sets = pin(istio);
        sets.push(API.into());
        let g = generate(&sets);
        let files = component_files(&g);
        let (kustomization, crds): (Vec<_>, Vec<_>) = files
            .into_iter()
            .partition(|(rel, _)| *rel == "kustomization.yaml");
        let want: Vec<(&str, &str)> = bundle.files.to_vec();
        assert_eq!(crds, want, "Istio {istio}");
        let k = common::docs(kustomization[0].1);
        let listed: Vec<&str> = k[0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        let names: Vec<&str> = bundle.files.iter().map(|(n, _)| *n).collect();
        assert_eq!(listed, names);
        let vap = crds.iter().any(|(_, t)| {
            common::docs(t)
                .iter()
                .any(|d| d["kind"] == "ValidatingAdmissionPolicy")
        });
        assert_eq!(vap, bundle.version == "v1.5.1", "Istio {istio}");
    }
}

fn doc(g: &meshgen::Generated, path: &str) -> Value {
    let text = g.files.get(path).unwrap_or_else(|| panic!("no {path}"));
    common::docs(text).remove(0)
}

/// Argo CD applies it server-side (the HTTPRoute CRD is over the
/// 262,144-byte last-applied annotation), one wave before Istio, with no
/// destination namespace (cluster-scoped objects).
#[test]
fn argo_cd_applies_it_server_side_before_istio() {
    let g = generate(&[
        API.to_string(),
        "argocd.source.repo.url=https://example.com/repo.git".into(),
        "argocd.source.repo.revision=main".into(),
        "argocd.source.repo.path=./".into(),
    ]);
    let app = doc(&g, "argocd-applications/gateway-api.yaml");
    let istio = doc(&g, "argocd-applications/istio.yaml");
    let wave = |d: &Value| {
        d["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
            .as_str()
            .unwrap()
            .parse::<i32>()
            .unwrap()
    };
    assert!(wave(&app) < wave(&istio));
    assert_eq!(
        app["spec"]["syncPolicy"]["syncOptions"],
        serde_json::json!(["ServerSideApply=true"])
    );
    assert!(app["spec"]["destination"]["namespace"].is_null());
    assert!(app["spec"]["source"]["path"]
        .as_str()
        .unwrap()
        .ends_with(DIR));
    let largest = meshgen::model::gateway_api::V1_4_1
        .files
        .iter()
        .map(|(_, t)| t.len())
        .max()
        .unwrap();
    assert!(largest > 262_144, "{largest}");
}

/// Flux: Istio's Kustomization depends on it.
#[test]
fn flux_applies_it_before_istio() {
    let g = generate(&[API.to_string(), "gitops.engine=flux".into()]);
    let crds = doc(&g, "flux/gateway-api.yaml");
    assert_eq!(crds["spec"]["path"], format!("./{DIR}"));
    assert!(crds["spec"]["dependsOn"].is_null());
    let istio = doc(&g, "flux/istio.yaml");
    assert_eq!(
        istio["spec"]["dependsOn"],
        serde_json::json!([{"name": "gateway-api"}])
    );
}

/// Neither Argo CD nor Flux ever deletes the CRDs (deleting one deletes
/// every object of its kind): the component's kustomization annotates
/// every object it applies, the vendored files keep their bytes, and no
/// other component's objects are annotated.
#[test]
fn the_gitops_engines_never_delete_the_crds() {
    let g = generate(&[API.to_string()]);
    let k = doc(&g, &format!("{DIR}/kustomization.yaml"));
    assert_eq!(
        k["commonAnnotations"],
        serde_json::json!({
            "argocd.argoproj.io/sync-options": "Prune=false,Delete=false",
            "kustomize.toolkit.fluxcd.io/prune": "disabled",
        })
    );
    for (path, text) in &g.files {
        if path.ends_with("kustomization.yaml") && !path.starts_with(DIR) {
            assert!(!text.contains("commonAnnotations"), "{path}");
        }
    }
}

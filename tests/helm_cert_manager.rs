//! The cert-manager wrapper chart, rendered by the real `helm` with the
//! real upstream chart (`../shared/reference/cert-manager-v1.21.1`): the
//! images, controller settings and `valuesOverrides` meshgen writes into
//! `values.yaml` must take effect, the CRDs must be in the release, and
//! every pod must meet Pod Security "restricted".
//!
//! Needs a helm binary, found (or the tests ignored, or failed under
//! `MESHGEN_REQUIRE_TOOLS=1`) by `common::helm`.

mod common;

use common::helm::HelmTest;
use common::root;
use serde_json::{json, Value};
use std::path::Path;

const UPSTREAM: &str = "../shared/reference/cert-manager-v1.21.1/charts/cert-manager";
const CHART_DIR: &str = "manifests/deploykf-dependencies/cert-manager";

fn main() {
    let tests: [(&str, HelmTest); 3] = [
        (
            "defaults_install_cert_manager_with_its_crds_and_restricted_pods",
            defaults_install_cert_manager_with_its_crds_and_restricted_pods,
        ),
        (
            "images_and_controller_settings_reach_the_render",
            images_and_controller_settings_reach_the_render,
        ),
        (
            "values_overrides_win_over_meshgen_s_values",
            values_overrides_win_over_meshgen_s_values,
        ),
    ];
    common::helm::run(&tests)
}

/// Generate with `values` (YAML), then `helm template` the wrapper chart
/// with the upstream chart as its dependency.
fn render(helm: &Path, values: &str) -> Vec<Value> {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("values.yaml");
    std::fs::write(&file, values).unwrap();
    let g = common::generate(&common::inputs(vec![file], &[]));
    let chart = tmp.path().join("chart");
    common::helm::write_chart(&g.files, CHART_DIR, &chart);
    // Place the upstream chart the wrapper depends on, as
    // `helm dependency build` would.
    let chart_yaml = common::docs(&g.files[&format!("{CHART_DIR}/Chart.yaml")]).remove(0);
    let deps = chart_yaml["dependencies"].as_array().unwrap();
    assert_eq!(deps.len(), 1, "{deps:?}");
    assert_eq!(deps[0]["name"], "cert-manager");
    assert_eq!(deps[0]["version"], "v1.21.1");
    assert_eq!(deps[0]["repository"], "https://charts.jetstack.io");
    common::copy_tree(&root().join(UPSTREAM), &chart.join("charts/cert-manager"));
    common::helm::template(helm, "cert-manager", &chart, "cert-manager")
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} not rendered"))
}

/// The pod spec of a Deployment or Job.
fn pod<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    &find(docs, kind, name)["spec"]["template"]["spec"]
}

fn container<'a>(docs: &'a [Value], deployment: &str) -> &'a Value {
    &pod(docs, "Deployment", deployment)["containers"][0]
}

fn crds(docs: &[Value]) -> Vec<&str> {
    let mut v: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    v.sort();
    v
}

fn defaults_install_cert_manager_with_its_crds_and_restricted_pods(helm: &Path) {
    let docs = render(helm, "");
    assert_eq!(
        crds(&docs),
        [
            "certificaterequests.cert-manager.io",
            "certificates.cert-manager.io",
            "challenges.acme.cert-manager.io",
            "clusterissuers.cert-manager.io",
            "issuers.cert-manager.io",
            "orders.acme.cert-manager.io",
        ]
    );
    for (deployment, image) in [
        (
            "cert-manager",
            "quay.io/jetstack/cert-manager-controller:v1.21.1",
        ),
        (
            "cert-manager-webhook",
            "quay.io/jetstack/cert-manager-webhook:v1.21.1",
        ),
        (
            "cert-manager-cainjector",
            "quay.io/jetstack/cert-manager-cainjector:v1.21.1",
        ),
    ] {
        assert_eq!(container(&docs, deployment)["image"], image);
        assert_eq!(
            find(&docs, "Deployment", deployment)["metadata"]["namespace"],
            "cert-manager"
        );
    }
    assert_eq!(
        pod(&docs, "Job", "cert-manager-startupapicheck")["containers"][0]["image"],
        "quay.io/jetstack/cert-manager-startupapicheck:v1.21.1"
    );
    let args = container(&docs, "cert-manager")["args"].as_array().unwrap();
    for arg in [
        "--enable-certificate-owner-ref=true",
        "--acme-http01-solver-image=quay.io/jetstack/cert-manager-acmesolver:v1.21.1",
    ] {
        assert!(args.contains(&json!(arg)), "{arg} not in {args:?}");
    }
    let controller = pod(&docs, "Deployment", "cert-manager");
    assert_eq!(controller["serviceAccountName"], "cert-manager");
    find(&docs, "ServiceAccount", "cert-manager");
    // deployKF's fsGroup is merged over the chart's pod securityContext.
    assert_eq!(
        controller["securityContext"],
        json!({"fsGroup": 1001, "runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}})
    );
    // Pod Security "restricted", for every pod the release runs.
    let pods: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "Deployment" || d["kind"] == "Job")
        .map(|d| &d["spec"]["template"]["spec"])
        .collect();
    assert_eq!(pods.len(), 4);
    for p in pods {
        assert_eq!(p["securityContext"]["runAsNonRoot"], true, "{p}");
        assert_eq!(
            p["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{p}"
        );
        assert!(p["hostNetwork"].is_null() && p["hostPID"].is_null(), "{p}");
        for c in p["containers"].as_array().unwrap() {
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{c}");
            assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{c}");
            assert!(
                sc["privileged"].is_null() || sc["privileged"] == false,
                "{c}"
            );
        }
    }
}

fn images_and_controller_settings_reach_the_render(helm: &Path) {
    let values = r#"
deploykf_dependencies:
  cert_manager:
    images:
      certManagerController:
        repository: registry.example.com/jetstack/cert-manager-controller
        tag: v1.21.0
        pullPolicy: Always
      certManagerWebhook:
        repository: registry.example.com/jetstack/cert-manager-webhook
      certManagerAcmesolver:
        repository: registry.example.com/jetstack/cert-manager-acmesolver
        tag: v1.21.0
      certManagerCtl:
        repository: registry.example.com/jetstack/cert-manager-startupapicheck
    controller:
      podLabels:
        team: platform
      serviceAccount:
        annotations:
          eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/cert-manager
      extraArgs:
        - --dns01-recursive-nameservers-only
"#;
    let docs = render(helm, values);
    let c = container(&docs, "cert-manager");
    assert_eq!(
        c["image"],
        "registry.example.com/jetstack/cert-manager-controller:v1.21.0"
    );
    assert_eq!(c["imagePullPolicy"], "Always");
    let args = c["args"].as_array().unwrap();
    assert!(
        args.contains(&json!("--dns01-recursive-nameservers-only")),
        "{args:?}"
    );
    // extraArgs replaces the list (deployKF's default is gone).
    assert!(
        !args.contains(&json!("--enable-certificate-owner-ref=true")),
        "{args:?}"
    );
    assert!(
        args.contains(&json!(
            "--acme-http01-solver-image=registry.example.com/jetstack/cert-manager-acmesolver:v1.21.0"
        )),
        "{args:?}"
    );
    assert_eq!(
        container(&docs, "cert-manager-webhook")["image"],
        "registry.example.com/jetstack/cert-manager-webhook:v1.21.1"
    );
    assert_eq!(
        pod(&docs, "Job", "cert-manager-startupapicheck")["containers"][0]["image"],
        "registry.example.com/jetstack/cert-manager-startupapicheck:v1.21.1"
    );
    let labels =
        &find(&docs, "Deployment", "cert-manager")["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["team"], "platform");
    assert_eq!(
        find(&docs, "ServiceAccount", "cert-manager")["metadata"]["annotations"]
            ["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/cert-manager"
    );
}

fn values_overrides_win_over_meshgen_s_values(helm: &Path) {
    let values = r#"
deploykf_dependencies:
  cert_manager:
    valuesOverrides:
      cert-manager:
        replicaCount: 2
        crds:
          enabled: false
        webhook:
          resources:
            requests:
              cpu: 50m
"#;
    let docs = render(helm, values);
    assert_eq!(crds(&docs), Vec::<&str>::new());
    assert_eq!(
        find(&docs, "Deployment", "cert-manager")["spec"]["replicas"],
        2
    );
    assert_eq!(
        container(&docs, "cert-manager-webhook")["resources"]["requests"]["cpu"],
        "50m"
    );
    // What the overrides do not touch stays meshgen's.
    assert_eq!(
        container(&docs, "cert-manager")["image"],
        "quay.io/jetstack/cert-manager-controller:v1.21.1"
    );
}

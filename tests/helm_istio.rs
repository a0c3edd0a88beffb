//! The Istio wrapper chart, rendered by the real `helm` with the real
//! upstream Istio charts of every version meshgen installs
//! (`../shared/reference/istio-<version>/charts`, one per minor of
//! `meshgen::config::SUPPORTED_ISTIO_MINORS`): what meshgen writes into
//! `values.yaml` must take effect in each. Every test runs once per
//! version, as `<version>::<test>`, with meshgen's charts, images and
//! gateway pinned to that version.
//!
//! Needs a helm binary, found (or the tests ignored, or failed under
//! `MESHGEN_REQUIRE_TOOLS=1`) by `common::helm`.

mod common;

use common::helm::NamedTest;
use common::root;
use meshgen::access::netpol::selector_matches;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The reference charts, one per supported minor.
const VERSIONS: [&str; 3] = ["1.28.10", "1.29.6", "1.30.3"];
const CHART_DIR: &str = "manifests/deploykf-dependencies/istio";

type Test = fn(&Path, &str);
fn main() {
    let tests: [(&str, Test); 11] = [
        (
            "defaults_take_effect_in_the_upstream_charts",
            defaults_take_effect_in_the_upstream_charts,
        ),
        (
            "user_mesh_config_survives_and_required_keys_win",
            user_mesh_config_survives_and_required_keys_win,
        ),
        (
            "image_pins_and_variants_reach_the_render",
            image_pins_and_variants_reach_the_render,
        ),
        (
            "revision_and_cni_install_a_canary_istiod_with_the_cni_agent",
            revision_and_cni_install_a_canary_istiod_with_the_cni_agent,
        ),
        (
            "regression_issue_16_extra_manifests_are_never_evaluated_by_helm",
            regression_issue_16_extra_manifests_are_never_evaluated_by_helm,
        ),
        (
            "ambient_installs_ztunnel_and_cni_with_the_ambient_profile",
            ambient_installs_ztunnel_and_cni_with_the_ambient_profile,
        ),
        (
            "ambient_profile_variant_does_not_override_the_pinned_images",
            ambient_profile_variant_does_not_override_the_pinned_images,
        ),
        (
            "issue_32_telemetry_providers_reach_the_mesh_config_and_ztunnel",
            issue_32_telemetry_providers_reach_the_mesh_config_and_ztunnel,
        ),
        (
            "network_policies_of_the_charts_admit_only_their_ports",
            network_policies_of_the_charts_admit_only_their_ports,
        ),
        (
            "registry_only_egress_reaches_the_mesh_config",
            registry_only_egress_reaches_the_mesh_config,
        ),
        (
            "egress_gateway_pods_are_injected_with_the_gateway_template",
            egress_gateway_pods_are_injected_with_the_gateway_template,
        ),
    ];
    let mut trials: Vec<(String, NamedTest)> = vec![(
        "reference_versions_are_the_supported_window".into(),
        Box::new(|_: &Path| {
            let minors: Vec<_> = VERSIONS
                .iter()
                .map(|v| meshgen::config::istio_minor(v).unwrap())
                .collect();
            assert_eq!(minors, meshgen::config::SUPPORTED_ISTIO_MINORS);
        }),
    )];
    for version in VERSIONS {
        for (name, test) in tests {
            trials.push((
                format!("{version}::{name}"),
                Box::new(move |helm: &Path| test(helm, version)),
            ));
        }
    }
    common::helm::run_named(trials)
}

/// The upstream charts of `version`.
fn upstream(version: &str) -> std::path::PathBuf {
    root().join(format!("../shared/reference/istio-{version}/charts"))
}

/// Generate with `values` (YAML) and `sets`, Istio pinned to `version`,
/// then `helm template` the wrapper chart with that version's upstream
/// charts as its dependencies.
fn render(helm: &Path, version: &str, values: &str, sets: &[&str]) -> Vec<Value> {
    render_generated(helm, version, values, sets).1
}

/// [`render`], with the whole generated tree.
fn render_generated(
    helm: &Path,
    version: &str,
    values: &str,
    sets: &[&str],
) -> (meshgen::Generated, Vec<Value>) {
    render_generated_in(helm, version, values, sets, "istio-system")
}

/// [`render_generated`] into the release namespace `namespace` (the Istio
/// namespace of `values`: Argo CD, Flux and helm install the wrapper
/// chart there).
fn render_generated_in(
    helm: &Path,
    version: &str,
    values: &str,
    sets: &[&str],
    namespace: &str,
) -> (meshgen::Generated, Vec<Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("values.yaml");
    std::fs::write(&file, values).unwrap();
    let pins = [
        format!("deploykf_dependencies.istio.charts.istioBase.version={version}"),
        format!("deploykf_dependencies.istio.charts.istioDaemon.version={version}"),
        format!("deploykf_core.deploykf_istio_gateway.charts.istioGateway.version={version}"),
    ];
    let mut all: Vec<&str> = pins.iter().map(String::as_str).collect();
    all.extend(sets);
    let g = common::generate(&common::inputs(vec![file], &all));
    let chart = tmp.path().join("chart");
    common::helm::write_chart(&g.files, CHART_DIR, &chart);
    let chart_yaml = parse(&g.files[&format!("{CHART_DIR}/Chart.yaml")]).remove(0);
    assert_eq!(chart_yaml["version"], version);
    // Place the upstream charts the wrapper depends on, as
    // `helm dependency build` would.
    let upstream = upstream(version);
    for dep in chart_yaml["dependencies"].as_array().unwrap() {
        let name = dep["name"].as_str().unwrap();
        assert_eq!(dep["version"], version, "{name}");
        let source = match name {
            "base" => "base",
            "istiod" => "istio-control/istio-discovery",
            "cni" => "istio-cni",
            "ztunnel" => "ztunnel",
            other => panic!("unexpected dependency {other}"),
        };
        common::copy_tree(&upstream.join(source), &chart.join("charts").join(name));
    }
    let docs = common::helm::template(helm, "istio", &chart, namespace);
    (g, docs)
}

fn parse(text: &str) -> Vec<Value> {
    common::docs(text)
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} not rendered"))
}

fn mesh(docs: &[Value], configmap: &str) -> Value {
    let text = find(docs, "ConfigMap", configmap)["data"]["mesh"]
        .as_str()
        .unwrap()
        .to_string();
    parse(&text).remove(0)
}

fn merged_values(docs: &[Value], configmap: &str) -> Value {
    let text = find(docs, "ConfigMap", configmap)["data"]["merged-values"]
        .as_str()
        .unwrap()
        .to_string();
    serde_json::from_str(&text).unwrap()
}

fn istiod_image(docs: &[Value], name: &str) -> Value {
    find(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]["image"].clone()
}

fn kinds_and_names(docs: &[Value]) -> BTreeSet<(String, String)> {
    docs.iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn defaults_take_effect_in_the_upstream_charts(helm: &Path, version: &str) {
    let docs = render(helm, version, "", &[]);
    let m = mesh(&docs, "istio");
    assert_eq!(m["defaultConfig"]["holdApplicationUntilProxyStarts"], true);
    assert_eq!(
        m["defaultConfig"]["proxyMetadata"]["ISTIO_META_DNS_CAPTURE"],
        "true"
    );
    assert_eq!(
        m["defaultConfig"]["proxyMetadata"]["ISTIO_META_DNS_AUTO_ALLOCATE"],
        "true"
    );
    assert_eq!(m["trustDomain"], "cluster.local");
    // The login's ext-authz provider is in the mesh config istiod reads,
    // and istiod lets the gateway fetch dex's keys through the mesh.
    let providers = m["extensionProviders"]
        .as_array()
        .expect("extensionProviders");
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0]["name"], "deploykf-oauth2-proxy");
    assert_eq!(
        providers[0]["envoyExtAuthzHttp"]["service"],
        "oauth2-proxy.deploykf-auth.svc.cluster.local"
    );
    assert_eq!(providers[0]["envoyExtAuthzHttp"]["port"], 4180);
    let istiod = find(&docs, "Deployment", "istiod");
    let env = istiod["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    assert!(
        env.iter()
            .any(|e| e["name"] == "PILOT_JWT_ENABLE_REMOTE_JWKS" && e["value"] == "hybrid"),
        "{env:?}"
    );
    let values = merged_values(&docs, "values");
    assert_eq!(
        values["sidecarInjectorWebhook"]["enableNamespacesByDefault"],
        false
    );
    assert_eq!(
        values["global"]["proxy"]["image"],
        format!("docker.io/istio/proxyv2:{version}-distroless")
    );
    assert_eq!(
        istiod_image(&docs, "istiod"),
        format!("docker.io/istio/pilot:{version}-distroless")
    );
    let crds: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    for crd in [
        "gateways.networking.istio.io",
        "virtualservices.networking.istio.io",
        "authorizationpolicies.security.istio.io",
    ] {
        assert!(crds.contains(&crd), "CRD {crd} missing: {crds:?}");
    }
    // istio-cni is on by default (issue 28: Pod Security baseline refuses
    // istio-init), and the injector knows it: its templates choose
    // istio-validation over istio-init by `pilot.cni.enabled`
    // (files/injection-template.yaml:82-86).
    let injector: Value = serde_json::from_str(
        find(&docs, "ConfigMap", "istio-sidecar-injector")["data"]["values"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(injector["pilot"]["cni"]["enabled"], json!(true));
    // Same objects as the upstream istiod and istio-cni charts rendered
    // with their defaults, plus the base chart's.
    let charts = upstream(version);
    let mut upstream = kinds_and_names(&common::helm::template(
        helm,
        "istiod",
        &charts.join("istio-control/istio-discovery"),
        "istio-system",
    ));
    upstream.extend(kinds_and_names(&common::helm::template(
        helm,
        "istio-cni",
        &charts.join("istio-cni"),
        "istio-system",
    )));
    let ours: BTreeSet<_> = kinds_and_names(&docs)
        .into_iter()
        .filter(|(k, _)| k != "CustomResourceDefinition")
        .collect();
    let missing: Vec<_> = upstream.difference(&ours).collect();
    assert!(missing.is_empty(), "missing upstream objects: {missing:?}");
    let extra: BTreeSet<_> = ours.difference(&upstream).cloned().collect();
    let named = |k: &str, n: &str| (k.to_string(), n.to_string());
    let mut expected = BTreeSet::from([
        // `istio.networkPolicy.enabled` (issue 28 point 9).
        named("NetworkPolicy", "istiod"),
        named("ServiceAccount", "istio-reader-service-account"),
        named("ValidatingWebhookConfiguration", "istiod-default-validator"),
    ]);
    // istio-cni (on by default, issue 28 point 2) has a NetworkPolicy of
    // its own from Istio 1.29 (`templates/networkpolicy.yaml`; 1.28's chart
    // has none).
    if charts
        .join("istio-cni/templates/networkpolicy.yaml")
        .is_file()
    {
        expected.insert(named("NetworkPolicy", "istio-cni"));
    }
    assert_eq!(
        extra, expected,
        "only the base chart and the charts' NetworkPolicies add objects"
    );
}

fn user_mesh_config_survives_and_required_keys_win(helm: &Path, version: &str) {
    let values = r#"
deploykf_dependencies:
  istio:
    meshConfig:
      accessLogFile: /dev/stdout
      defaultConfig:
        holdApplicationUntilProxyStarts: false
        proxyMetadata:
          ISTIO_META_DNS_CAPTURE: "false"
          EXTRA_FLAG: "on"
    valuesOverrides:
      istio-daemon:
        sidecarInjectorWebhook:
          enableNamespacesByDefault: true
        resources:
          requests:
            cpu: 250m
"#;
    let docs = render(helm, version, values, &[]);
    let m = mesh(&docs, "istio");
    assert_eq!(m["accessLogFile"], "/dev/stdout");
    assert_eq!(m["defaultConfig"]["proxyMetadata"]["EXTRA_FLAG"], "on");
    assert_eq!(m["defaultConfig"]["holdApplicationUntilProxyStarts"], true);
    assert_eq!(
        m["defaultConfig"]["proxyMetadata"]["ISTIO_META_DNS_CAPTURE"],
        "true"
    );
    let merged = merged_values(&docs, "values");
    assert_eq!(
        merged["sidecarInjectorWebhook"]["enableNamespacesByDefault"],
        false
    );
    let istiod = find(&docs, "Deployment", "istiod");
    assert_eq!(
        istiod["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
        "250m"
    );
}

fn image_pins_and_variants_reach_the_render(helm: &Path, version: &str) {
    let pilot_tag = format!("deploykf_dependencies.istio.images.istioPilot.tag={version}-debug");
    let docs = render(
        helm,
        version,
        "",
        &[
            &pilot_tag,
            "deploykf_dependencies.istio.images.istioProxy.repository=registry.example.com/istio/proxyv2",
            "deploykf_dependencies.istio.defaultImageVariant=",
        ],
    );
    assert_eq!(
        istiod_image(&docs, "istiod"),
        format!("docker.io/istio/pilot:{version}-debug")
    );
    let injector = merged_values(&docs, "values");
    assert_eq!(
        injector["global"]["proxy"]["image"],
        format!("registry.example.com/istio/proxyv2:{version}")
    );
    let sidecar_values = find(&docs, "ConfigMap", "istio-sidecar-injector")["data"]["values"]
        .as_str()
        .unwrap()
        .to_string();
    let sidecar_values: Value = serde_json::from_str(&sidecar_values).unwrap();
    assert_eq!(
        sidecar_values["global"]["proxy"]["image"],
        format!("registry.example.com/istio/proxyv2:{version}")
    );
}

fn revision_and_cni_install_a_canary_istiod_with_the_cni_agent(helm: &Path, version: &str) {
    let revision = version.replace('.', "-");
    let set = format!(
        "deploykf_dependencies.istio.revision={revision},deploykf_dependencies.istio.cni.enabled=true"
    );
    let docs = render(helm, version, "", &[&set]);
    let istiod = find(&docs, "Deployment", &format!("istiod-{revision}"));
    assert_eq!(
        istiod["metadata"]["labels"]["istio.io/rev"],
        revision.as_str()
    );
    assert!(docs
        .iter()
        .any(|d| d["kind"] == "DaemonSet" && d["metadata"]["name"] == "istio-cni-node"));
    let sidecar_values = find(
        &docs,
        "ConfigMap",
        &format!("istio-sidecar-injector-{revision}"),
    )["data"]["values"]
        .as_str()
        .unwrap()
        .to_string();
    let sidecar_values: Value = serde_json::from_str(&sidecar_values).unwrap();
    assert_eq!(sidecar_values["pilot"]["cni"]["enabled"], json!(true));
}

/// Issue 16, point 5: `extraManifests` were written into the wrapper
/// chart's `templates/`, so Helm evaluated what users wrote: `{{ 7*7 }}`
/// broke the render, `{{ .Release.Name }}` was substituted. They are now a
/// kustomize directory beside the chart: the chart renders, holds none of
/// the user's text, and the manifest is applied exactly as written.
/// (Written in Helm's escape, as deployKF users do and meshgen requires
/// since issue 29; meshgen writes the literal it means.)
fn regression_issue_16_extra_manifests_are_never_evaluated_by_helm(helm: &Path, version: &str) {
    const NOTE: &str = "{{ 7*7 }} and {{ .Release.Name }}";
    const SCRIPT: &str = "{{- fail \"evaluated\" -}}{{ lookup \"v1\" \"Secret\" \"\" \"\" }}";
    let (note, script) = (
        format!("{{{{ `{NOTE}` }}}}"),
        format!("{{{{ `{SCRIPT}` }}}}"),
    );
    let values = format!(
        r#"
deploykf_dependencies:
  istio:
    extraManifests:
      - apiVersion: v1
        kind: ConfigMap
        metadata:
          name: notes
          namespace: istio-system
        data:
          note: "{note}"
      - |
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: script
          namespace: istio-system
        data:
          script: '{script}'
"#
    );
    // `render` fails the test if helm cannot render the chart.
    let (g, docs) = render_generated(helm, version, &values, &[]);
    let chart: Vec<&String> = g
        .files
        .keys()
        .filter(|p| p.starts_with(&format!("{CHART_DIR}/")))
        .collect();
    assert_eq!(
        chart,
        [
            &format!("{CHART_DIR}/Chart.yaml"),
            &format!("{CHART_DIR}/values.yaml")
        ],
        "the chart holds no template"
    );
    for path in &chart {
        assert!(!g.files[*path].contains("7*7"), "{path}");
    }
    assert!(
        !docs.iter().any(|d| d["kind"] == "ConfigMap"
            && ["notes", "script"].contains(&d["metadata"]["name"].as_str().unwrap_or(""))),
        "extra manifests are not part of the chart's render"
    );
    let extra =
        common::docs(&g.files["manifests/deploykf-dependencies/istio-extra/extra-manifests.yaml"]);
    assert_eq!(extra.len(), 2);
    assert_eq!(extra[0]["metadata"]["name"], "notes");
    assert_eq!(extra[0]["data"]["note"], NOTE);
    assert_eq!(extra[1]["data"]["script"], SCRIPT);
    let kustomization =
        common::docs(&g.files["manifests/deploykf-dependencies/istio-extra/kustomization.yaml"]);
    assert_eq!(
        kustomization[0]["resources"],
        json!(["extra-manifests.yaml"])
    );
}

/// A container's environment as (name, value) pairs.
fn env_of(container: &Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["value"].is_string())
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has_env(env: &[(String, String)], name: &str, value: &str) -> bool {
    env.iter().any(|(n, v)| n == name && v == value)
}

/// The values istiod's injection templates (sidecar, gateway, waypoint)
/// read, from the injector ConfigMap.
fn injector_values(docs: &[Value]) -> Value {
    let text = find(docs, "ConfigMap", "istio-sidecar-injector")["data"]["values"]
        .as_str()
        .unwrap()
        .to_string();
    serde_json::from_str(&text).unwrap()
}

/// Issue 18: `dataplaneMode: ambient` in the wrapper chart. One
/// `global.profile: ambient` reaches every aliased subchart
/// (`charts/*/templates/zzz_profile.yaml:27`), whose
/// `files/profile-ambient.yaml` turns on `PILOT_ENABLE_AMBIENT`, the CNI
/// agent's ambient redirection and HBONE; the profile is merged under
/// meshgen's values map by map, so meshgen's required mesh config and the
/// user's own keys survive beside the profile's
/// `ISTIO_META_ENABLE_HBONE`.
fn ambient_installs_ztunnel_and_cni_with_the_ambient_profile(helm: &Path, version: &str) {
    let values = r#"
deploykf_dependencies:
  istio:
    namespace: mesh-system
    dataplaneMode: ambient
    meshConfig:
      defaultConfig:
        proxyMetadata:
          EXTRA_FLAG: "on"
"#;
    let docs = render_generated_in(helm, version, values, &[], "mesh-system").1;

    // istiod: the profile's env and meshgen's, merged; it signs
    // certificates for ztunnel's ServiceAccount in its own namespace
    // (`templates/deployment.yaml:176-180`), where the chart puts ztunnel.
    let istiod = &find(&docs, "Deployment", "istiod")["spec"]["template"]["spec"]["containers"][0];
    let env = env_of(istiod);
    assert!(
        has_env(&env, "CA_TRUSTED_NODE_ACCOUNTS", "mesh-system/ztunnel"),
        "{env:?}"
    );
    assert_eq!(
        find(&docs, "ServiceAccount", "ztunnel")["metadata"]["namespace"],
        "mesh-system"
    );
    assert!(has_env(&env, "PILOT_ENABLE_AMBIENT", "true"), "{env:?}");
    assert!(
        has_env(&env, "PILOT_JWT_ENABLE_REMOTE_JWKS", "hybrid"),
        "{env:?}"
    );

    // The mesh config: the profile's HBONE beside meshgen's required keys,
    // the user's key and the login's provider.
    let m = mesh(&docs, "istio");
    let meta = &m["defaultConfig"]["proxyMetadata"];
    assert_eq!(meta["ISTIO_META_ENABLE_HBONE"], "true", "{m}");
    assert_eq!(meta["ISTIO_META_DNS_CAPTURE"], "true");
    assert_eq!(meta["ISTIO_META_DNS_AUTO_ALLOCATE"], "true");
    assert_eq!(meta["EXTRA_FLAG"], "on");
    assert_eq!(m["defaultConfig"]["holdApplicationUntilProxyStarts"], true);
    assert_eq!(m["trustDomain"], "cluster.local");
    assert_eq!(
        m["extensionProviders"][0]["name"], "deploykf-oauth2-proxy",
        "{m}"
    );
    assert!(m["serviceScopeConfigs"].is_array(), "the profile's: {m}");
    let merged = merged_values(&docs, "values");
    assert_eq!(
        merged["sidecarInjectorWebhook"]["enableNamespacesByDefault"],
        false
    );

    // istio-cni: installed although `cni.enabled` is false, with ambient
    // redirection (`charts/istio-cni/templates/configmap-cni.yaml:17`) and
    // the ztunnel socket mounted into the agent.
    let cni_config = find(&docs, "ConfigMap", "istio-cni-config");
    assert_eq!(
        cni_config["data"]["AMBIENT_ENABLED"], "true",
        "{cni_config}"
    );
    let cni = find(&docs, "DaemonSet", "istio-cni-node");
    let mounts = cni["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap();
    assert!(
        mounts.iter().any(|m| m["mountPath"] == "/var/run/ztunnel"),
        "{mounts:?}"
    );
    // istiod injects sidecars (the gateway's) without istio-init.
    assert_eq!(injector_values(&docs)["pilot"]["cni"]["enabled"], true);

    // ztunnel: the pinned image, the Istio namespace for its CA and XDS,
    // the chart's per-node requests (the README's numbers).
    let ztunnel = find(&docs, "DaemonSet", "ztunnel");
    let z = &ztunnel["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        z["image"],
        format!("docker.io/istio/ztunnel:{version}-distroless")
    );
    let zenv = env_of(z);
    for key in ["CA_ADDRESS", "XDS_ADDRESS"] {
        assert!(
            has_env(&zenv, key, "istiod.mesh-system.svc:15012"),
            "{key}: {zenv:?}"
        );
    }
    assert_eq!(
        z["resources"],
        json!({"requests": {"cpu": "200m", "memory": "512Mi"}}),
        "requests only, no limits"
    );

    // Waypoints istiod deploys get a pod seccompProfile: the waypoint
    // template reads `.Values.gateways.seccompProfile`
    // (`charts/istio-control/istio-discovery/files/waypoint.yaml:253-255`,
    // 250-252 in 1.28) from the injector ConfigMap's values
    // (`templates/istiod-injector-configmap.yaml:19-20`).
    let injector = injector_values(&docs);
    assert_eq!(
        injector["gateways"]["seccompProfile"],
        json!({"type": "RuntimeDefault"}),
        "{injector}"
    );
    let config = find(&docs, "ConfigMap", "istio-sidecar-injector")["data"]["config"]
        .as_str()
        .unwrap();
    assert!(
        config.contains("waypoint:") && config.contains(".Values.gateways.seccompProfile"),
        "the waypoint template reads the value"
    );
}

/// The ambient profile sets `global.variant: distroless`; meshgen's images
/// are whole references (they contain a "/"), which every chart uses as
/// written, so a plain `defaultImageVariant` stays plain.
fn ambient_profile_variant_does_not_override_the_pinned_images(helm: &Path, version: &str) {
    let docs = render(
        helm,
        version,
        "",
        &[
            "deploykf_dependencies.istio.dataplaneMode=ambient",
            "deploykf_dependencies.istio.defaultImageVariant=",
            "deploykf_dependencies.istio.images.ztunnel.repository=registry.example.com/istio/ztunnel",
        ],
    );
    assert_eq!(
        istiod_image(&docs, "istiod"),
        format!("docker.io/istio/pilot:{version}")
    );
    assert_eq!(
        injector_values(&docs)["global"]["proxy"]["image"],
        format!("docker.io/istio/proxyv2:{version}")
    );
    let ztunnel = find(&docs, "DaemonSet", "ztunnel");
    assert_eq!(
        ztunnel["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("registry.example.com/istio/ztunnel:{version}")
    );
    // The profile did apply (its variant reaches the merged values).
    assert_eq!(
        merged_values(&docs, "values")["global"]["variant"],
        "distroless"
    );
}

/// Issue 32: the access log and tracing providers of
/// `deploykf_dependencies.istio.telemetry` are in the mesh config istiod
/// reads (beside the login's provider and a user's own), and with JSON
/// access logs ztunnel logs JSON (`LOG_FORMAT=json`, the chart's
/// `logAsJson`).
fn issue_32_telemetry_providers_reach_the_mesh_config_and_ztunnel(helm: &Path, version: &str) {
    let values = r#"
deploykf_dependencies:
  istio:
    dataplaneMode: ambient
    meshConfig:
      extensionProviders:
        - name: my-zipkin
          zipkin: {service: zipkin.tracing.svc.cluster.local, port: 9411}
    telemetry:
      accessLogs: {enabled: true, format: json, includeUserIdentity: true}
      tracing:
        enabled: true
        otlpEndpoint: "otel-collector.observability.svc.cluster.local:4317"
        samplingPercent: 5
"#;
    let docs = render(helm, version, values, &[]);
    let m = mesh(&docs, "istio");
    let providers = m["extensionProviders"].as_array().unwrap();
    let names: Vec<&str> = providers
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "my-zipkin",
            "meshgen-access-log",
            "meshgen-otel",
            "deploykf-oauth2-proxy"
        ],
        "{m}"
    );
    let log = &providers[1]["envoyFileAccessLog"];
    assert_eq!(log["path"], "/dev/stdout");
    let labels = &log["logFormat"]["labels"];
    assert_eq!(
        labels["path"],
        "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%"
    );
    assert_eq!(labels["response_flags"], "%RESPONSE_FLAGS%");
    assert_eq!(labels["user"], "%REQ(kubeflow-userid)%");
    assert!(
        labels.get("downstream_remote_address").is_none(),
        "{labels}"
    );
    assert_eq!(
        providers[2]["opentelemetry"],
        json!({"service": "otel-collector.observability.svc.cluster.local", "port": 4317})
    );
    let ztunnel = &find(&docs, "DaemonSet", "ztunnel")["spec"]["template"]["spec"]["containers"][0];
    assert!(has_env(&env_of(ztunnel), "LOG_FORMAT", "json"), "{ztunnel}");

    // Text logs: ztunnel keeps its own format.
    let docs = render(
        helm,
        version,
        values,
        &["deploykf_dependencies.istio.telemetry.accessLogs.format=text"],
    );
    let ztunnel = &find(&docs, "DaemonSet", "ztunnel")["spec"]["template"]["spec"]["containers"][0];
    assert!(
        !env_of(ztunnel).iter().any(|(k, _)| k == "LOG_FORMAT"),
        "{ztunnel}"
    );
    let m = mesh(&docs, "istio");
    let text = m["extensionProviders"][1]["envoyFileAccessLog"]["logFormat"]["text"]
        .as_str()
        .unwrap();
    assert!(
        text.ends_with("%ROUTE_NAME% \"%REQ(kubeflow-userid)%\"\n"),
        "{text:?}"
    );
}

/// Issue 28 point 9: `istio.networkPolicy.enabled` (the default) reaches
/// every upstream chart through `global.networkPolicy.enabled`: istiod
/// admits its webhook and xDS ports, and in ambient ztunnel admits HBONE
/// (15008) and istio-cni its metrics and readiness ports; `false` renders
/// none.
fn network_policies_of_the_charts_admit_only_their_ports(helm: &Path, version: &str) {
    let ports = |np: &Value| -> BTreeSet<u64> {
        (np["spec"]["ingress"].as_array().unwrap().iter())
            .flat_map(|r| r["ports"].as_array().unwrap().iter())
            .map(|p| p["port"].as_u64().unwrap())
            .collect()
    };
    let ambient = "deploykf_dependencies:\n  istio:\n    dataplaneMode: ambient\n";
    let docs = render(helm, version, ambient, &[]);
    let istiod = find(&docs, "NetworkPolicy", "istiod");
    assert_eq!(
        istiod["spec"]["podSelector"]["matchLabels"]["app"],
        "istiod"
    );
    let istiod_ports = ports(istiod);
    for p in [15017, 15010, 15012] {
        assert!(istiod_ports.contains(&p), "{p}: {istiod_ports:?}");
    }
    // ztunnel's and istio-cni's charts have the template from 1.29 (1.28.10
    // has none: `charts/ztunnel/templates/`, `charts/istio-cni/templates/`).
    if meshgen::config::istio_minor(version) >= Some((1, 29)) {
        assert!(ports(find(&docs, "NetworkPolicy", "ztunnel")).contains(&15008));
        assert!(docs.iter().any(|d| d["kind"] == "NetworkPolicy"
            && d["spec"]["podSelector"]["matchLabels"]["k8s-app"] == "istio-cni-node"));
    }

    let off = render(
        helm,
        version,
        ambient,
        &["deploykf_dependencies.istio.networkPolicy.enabled=false"],
    );
    assert!(
        !off.iter().any(|d| d["kind"] == "NetworkPolicy"),
        "{:?}",
        kinds_and_names(&off)
    );
}

/// Issue 32 point 5: `istio.egress.mode: registry-only` is the mesh
/// config's `outboundTrafficPolicy` istiod reads, over a user's
/// `meshConfig`; `open` leaves Istio's default (no key: ALLOW_ANY).
fn registry_only_egress_reaches_the_mesh_config(helm: &Path, version: &str) {
    let values = r#"
deploykf_dependencies:
  istio:
    egress:
      mode: registry-only
    meshConfig:
      outboundTrafficPolicy:
        mode: ALLOW_ANY
"#;
    let m = mesh(&render(helm, version, values, &[]), "istio");
    assert_eq!(m["outboundTrafficPolicy"]["mode"], "REGISTRY_ONLY", "{m}");
    let open = mesh(&render(helm, version, "{}", &[]), "istio");
    assert!(open.get("outboundTrafficPolicy").is_none(), "{open}");
}

/// Issue 32 point 5: the egress gateway's pods (`image: auto`) are
/// injected by the chart's webhook, which selects them by their
/// namespace's and their own labels (a MutatingWebhookConfiguration's
/// `namespaceSelector` and `objectSelector`, both must match), with the
/// injector's `gateway` template that their annotation names; for the
/// default revision and a canary one.
fn egress_gateway_pods_are_injected_with_the_gateway_template(helm: &Path, version: &str) {
    const DIR: &str = "manifests/deploykf-dependencies/istio-egress-gateway";
    let values = r#"
deploykf_dependencies:
  istio:
    egress:
      mode: registry-only
      gateway:
        enabled: true
        apiServerCIDRs: ["10.0.0.10/32"]
"#;
    for sets in [
        &[][..],
        &["deploykf_dependencies.istio.revision=canary"][..],
    ] {
        let (g, docs) = render_generated(helm, version, values, sets);
        let labels = |d: &Value| -> BTreeMap<String, String> {
            serde_json::from_value(d.clone()).unwrap_or_default()
        };
        let namespace = parse(&g.files[&format!("{DIR}/Namespace.yaml")]).remove(0);
        let deployment = parse(&g.files[&format!("{DIR}/Deployment.yaml")]).remove(0);
        let ns_labels = labels(&namespace["metadata"]["labels"]);
        let pod = &deployment["spec"]["template"]["metadata"];
        let pod_labels = labels(&pod["labels"]);
        let webhook = docs
            .iter()
            .filter(|d| d["kind"] == "MutatingWebhookConfiguration")
            .flat_map(|d| d["webhooks"].as_array().unwrap().iter())
            .find(|w| {
                selector_matches(&w["namespaceSelector"], &ns_labels)
                    && selector_matches(&w["objectSelector"], &pod_labels)
            });
        assert!(
            webhook.is_some(),
            "{sets:?}: no injection webhook selects {ns_labels:?} / {pod_labels:?}"
        );
        assert_eq!(pod["annotations"]["inject.istio.io/templates"], "gateway");
        let injector = docs
            .iter()
            .filter(|d| d["kind"] == "ConfigMap")
            .find(|d| {
                d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("istio-sidecar-injector"))
            })
            .unwrap();
        let config = parse(injector["data"]["config"].as_str().unwrap()).remove(0);
        assert!(config["templates"].get("gateway").is_some(), "{sets:?}");
    }
}

//! `deploykf_dependencies.istio.telemetry` (issue 32, points 1-4), on
//! parsed documents of the cases `telemetry-sidecar` (`api: istio`,
//! sidecars, everything on) and `telemetry-ambient` (`api: gateway-api`,
//! ambient, text logs, no Prometheus Operator): each Telemetry reaches the
//! proxies it is for and names providers the mesh config declares, the user
//! identity is logged only when asked, the dashboards are Istio's files
//! byte for byte, and the defaults render none of it.

mod common;

use serde_json::Value;

use common::Objects;

/// Every manifest document, by (kind, namespace, name), and the istio
/// chart's values.
fn objects(case: &str, sets: &[&str]) -> (Objects, Value) {
    let g = common::generate(&common::cases_inputs(&[case], sets));
    let values =
        common::docs(&g.files["manifests/deploykf-dependencies/istio/values.yaml"]).remove(0);
    (common::objects(&g), values)
}

fn of_kind<'a>(objects: &'a Objects, kind: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|((k, _, _), _)| k == kind)
        .map(|(_, v)| v)
        .collect()
}

fn providers(values: &Value) -> Vec<Value> {
    values["istio-daemon"]["meshConfig"]["extensionProviders"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn provider<'a>(providers: &'a [Value], name: &str) -> &'a Value {
    providers
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no provider {name}: {providers:?}"))
}

/// Every provider a Telemetry names is declared in the mesh config.
fn assert_providers_declared(objects: &Objects, values: &Value) {
    let declared: Vec<Value> = providers(values)
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    for t in of_kind(objects, "Telemetry") {
        for section in ["accessLogging", "tracing"] {
            for entry in t["spec"][section].as_array().into_iter().flatten() {
                for p in entry["providers"].as_array().unwrap() {
                    assert!(
                        declared.contains(&p["name"]),
                        "{t}: {p} not in {declared:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn sidecar_gateway_telemetry_selects_the_gateway_pods_and_declared_providers() {
    let (o, values) = objects("telemetry-sidecar", &[]);
    let telemetries = of_kind(&o, "Telemetry");
    assert_eq!(
        telemetries.len(),
        1,
        "only the gateway's, no waypoints: {telemetries:?}"
    );
    let t = telemetries[0];
    let gw = &o[&(
        "Deployment".to_string(),
        "deploykf-istio-gateway".to_string(),
        "deploykf-gateway".to_string(),
    )];
    assert_eq!(t["metadata"]["namespace"], gw["metadata"]["namespace"]);
    let pod_labels = gw["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .unwrap();
    let selector = t["spec"]["selector"]["matchLabels"].as_object().unwrap();
    assert!(!selector.is_empty());
    for (k, v) in selector {
        assert_eq!(
            pod_labels.get(k),
            Some(v),
            "selector {k} on the gateway pods"
        );
    }
    assert_eq!(
        t["spec"]["accessLogging"][0]["providers"][0]["name"],
        "meshgen-access-log"
    );
    assert_eq!(t["spec"]["tracing"][0]["randomSamplingPercentage"], 10.0);
    assert_providers_declared(&o, &values);
    let p = providers(&values);
    assert_eq!(
        provider(&p, "meshgen-otel")["opentelemetry"]["service"],
        "otel-collector.observability.svc.cluster.local"
    );
    // JSON lines with the verified user, under the header the gateway sets.
    let labels = &provider(&p, "meshgen-access-log")["envoyFileAccessLog"]["logFormat"]["labels"];
    assert_eq!(labels["user"], "%REQ(kubeflow-userid)%");
    for personal in ["downstream_remote_address", "x_forwarded_for", "user_agent"] {
        assert!(labels.get(personal).is_none(), "{personal}");
    }
    let (_, values) = objects(
        "telemetry-sidecar",
        &["deploykf_core.deploykf_auth.identity.userHeader=x-user"],
    );
    let p = providers(&values);
    assert_eq!(
        provider(&p, "meshgen-access-log")["envoyFileAccessLog"]["logFormat"]["labels"]["user"],
        "%REQ(x-user)%"
    );
}

/// The user identity is personal data: logged only with
/// `includeUserIdentity: true`, and only a verified one (with the login).
#[test]
fn the_user_identity_is_logged_only_when_asked_and_verified() {
    for (case, sets) in [
        (
            "telemetry-sidecar",
            &["deploykf_dependencies.istio.telemetry.accessLogs.includeUserIdentity=false"][..],
        ),
        (
            "telemetry-sidecar",
            &[
                "deploykf_dependencies.istio.telemetry.accessLogs.includeUserIdentity=false",
                "deploykf_dependencies.istio.telemetry.accessLogs.format=text",
            ][..],
        ),
        // No login: the header is whatever the client sent.
        (
            "defaults",
            &[
                "deploykf_core.deploykf_auth.enabled=false",
                "deploykf_dependencies.istio.telemetry.accessLogs.enabled=true",
                "deploykf_dependencies.istio.telemetry.accessLogs.includeUserIdentity=true",
            ][..],
        ),
    ] {
        let (_, values) = objects(case, sets);
        let log = provider(&providers(&values), "meshgen-access-log").to_string();
        assert!(
            !log.contains("userid") && !log.contains("\"user\""),
            "{sets:?}: {log}"
        );
    }
}

#[test]
fn ambient_telemetries_target_the_gateway_and_every_waypoint() {
    let (o, values) = objects("telemetry-ambient", &[]);
    let gateways: Vec<&Value> = of_kind(&o, "Gateway")
        .into_iter()
        .filter(|g| {
            g["apiVersion"]
                .as_str()
                .unwrap()
                .starts_with("gateway.networking.k8s.io")
        })
        .collect();
    let telemetries = of_kind(&o, "Telemetry");
    let waypoints: Vec<&&Value> = gateways
        .iter()
        .filter(|g| g["spec"]["gatewayClassName"] == "istio-waypoint")
        .collect();
    assert_eq!(waypoints.len(), 2);
    assert_eq!(telemetries.len(), waypoints.len() + 1);
    for t in &telemetries {
        // A Telemetry reaches proxies of its own namespace only: its
        // target is a Gateway there.
        let refs = t["spec"]["targetRefs"].as_array().unwrap();
        assert_eq!(refs.len(), 1, "{t}");
        assert!(t["spec"].get("selector").is_none());
        let target = gateways.iter().find(|g| {
            g["metadata"]["namespace"] == t["metadata"]["namespace"]
                && g["metadata"]["name"] == refs[0]["name"]
        });
        assert!(target.is_some(), "{t} targets no Gateway of its namespace");
        assert_eq!(refs[0]["kind"], "Gateway");
        assert_eq!(refs[0]["group"], "gateway.networking.k8s.io");
        assert_eq!(t["spec"]["tracing"][0]["randomSamplingPercentage"], 100.0);
    }
    assert_providers_declared(&o, &values);
    // Text lines; no operator objects, no dashboards.
    let p = providers(&values);
    let log = &provider(&p, "meshgen-access-log")["envoyFileAccessLog"]["logFormat"];
    assert!(
        log["text"].as_str().unwrap().ends_with("%ROUTE_NAME%\n"),
        "{log}"
    );
    assert!(of_kind(&o, "PodMonitor").is_empty());
    assert!(of_kind(&o, "ServiceMonitor").is_empty());
    assert!(of_kind(&o, "ConfigMap")
        .iter()
        .all(|c| c["metadata"]["labels"].get("grafana_dashboard").is_none()));
    // Text logs: ztunnel keeps its own format.
    assert!(values["ztunnel"].get("logAsJson").is_none());
    let (_, values) = objects(
        "telemetry-ambient",
        &["deploykf_dependencies.istio.telemetry.accessLogs.format=json"],
    );
    assert_eq!(values["ztunnel"]["logAsJson"], true);
}

/// Istio's dashboards of the installed minor, byte for byte, plus
/// meshgen's, each a ConfigMap with the Grafana sidecar's label, small
/// enough for client-side apply's annotation (262,144 bytes).
#[test]
fn dashboards_are_istio_s_files_of_the_installed_minor() {
    for (version, set) in [
        ("1.30.3", "1.30.3"),
        ("1.29.6", "1.28.10"),
        ("1.28.10", "1.28.10"),
    ] {
        let pins = [
            format!("deploykf_dependencies.istio.charts.istioBase.version={version}"),
            format!("deploykf_dependencies.istio.charts.istioDaemon.version={version}"),
            format!("deploykf_core.deploykf_istio_gateway.charts.istioGateway.version={version}"),
        ];
        let sets: Vec<&str> = pins.iter().map(String::as_str).collect();
        let (o, _) = objects("telemetry-sidecar", &sets);
        let maps: Vec<&Value> = of_kind(&o, "ConfigMap")
            .into_iter()
            .filter(|c| c["metadata"]["labels"]["grafana_dashboard"] == "1")
            .collect();
        assert_eq!(maps.len(), 8, "{version}");
        let dir = common::root().join("vendor/istio-dashboards").join(set);
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let name = path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .replace(".gen.json", ".json");
            let vendored = std::fs::read_to_string(&path).unwrap();
            let holder = maps
                .iter()
                .find(|c| c["data"].get(&name).is_some())
                .unwrap_or_else(|| panic!("{version}: no ConfigMap holds {name}"));
            assert_eq!(
                holder["data"][&name].as_str().unwrap(),
                vendored,
                "{version}: {name}"
            );
            assert_eq!(holder["metadata"]["namespace"], "istio-system");
            assert!(
                serde_json::to_string(holder).unwrap().len() < 262_144,
                "{name}"
            );
        }
    }
}

/// meshgen's edge dashboard queries only Istio's standard metrics and
/// labels (cited in `src/model/telemetry.rs`), for the gateway meshgen
/// deploys.
#[test]
fn the_edge_dashboard_uses_only_istio_s_standard_metrics() {
    let (o, _) = objects("telemetry-sidecar", &[]);
    let d = edge_dashboard(&o);
    let titles: Vec<&str> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["Logins", "401/403 by profile", "p99 latency by app"]
    );
    let labels = [
        "reporter",
        "source_workload",
        "source_workload_namespace",
        "destination_service_name",
        "destination_service_namespace",
        "response_code",
        "le",
    ];
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            assert!(
                expr.contains("istio_requests_total{")
                    || expr.contains("istio_request_duration_milliseconds_bucket{"),
                "{expr}"
            );
            // Every label matched or grouped by is a standard one.
            let words = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            for w in words.filter(|w| {
                w.contains('_') && !w.starts_with("istio_") && *w != "histogram_quantile"
            }) {
                assert!(labels.contains(&w), "{w} in {expr}");
            }
        }
    }
    let logins = d["panels"][0]["targets"][0]["expr"].as_str().unwrap();
    assert!(
        logins.contains("source_workload=\"deploykf-gateway\""),
        "{logins}"
    );
    assert!(
        logins.contains("destination_service_namespace=\"deploykf-auth\""),
        "{logins}"
    );
}

/// Secrets and personal data are off by default: the defaults render no
/// Telemetry, monitor, dashboard or provider of these keys.
#[test]
fn the_defaults_render_no_telemetry() {
    let (o, values) = objects("defaults", &[]);
    for kind in ["Telemetry", "PodMonitor", "ServiceMonitor"] {
        assert!(of_kind(&o, kind).is_empty(), "{kind}");
    }
    let names: Vec<Value> = providers(&values)
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, ["deploykf-oauth2-proxy"]);
}

/// With several gateways (issue 33: the `two-gateways` case with the
/// telemetry of `telemetry-sidecar`), the edge dashboard's gateway panels
/// count the requests of every gateway's pods, not only the primary's;
/// the PodMonitor selects the sidecars and gateways of every namespace
/// (`namespaceSelector: any`), so it covers each gateway's pods as it is.
#[test]
fn the_edge_dashboard_covers_every_gateway() {
    let g = common::generate(&common::cases_inputs(
        &["telemetry-sidecar", "two-gateways"],
        &[],
    ));
    let o = common::objects(&g);
    let d = edge_dashboard(&o);
    let at_gateway = "reporter=\"source\", source_workload=~\"deploykf-gateway|internal-gateway\", source_workload_namespace=\"deploykf-istio-gateway\"";
    for (panel, target) in [(0, 0), (1, 0), (2, 0)] {
        let expr = d["panels"][panel]["targets"][target]["expr"]
            .as_str()
            .unwrap();
        assert!(expr.contains(at_gateway), "{expr}");
    }
    let monitors = of_kind(&o, "PodMonitor");
    assert_eq!(monitors.len(), 1);
    assert_eq!(monitors[0]["spec"]["namespaceSelector"]["any"], true);
}

/// meshgen's edge dashboard (its ConfigMap's JSON) among `o`'s objects.
fn edge_dashboard(o: &Objects) -> Value {
    let map = &o[&(
        "ConfigMap".to_string(),
        "istio-system".to_string(),
        "grafana-meshgen-edge-dashboard".to_string(),
    )];
    serde_json::from_str(map["data"]["meshgen-edge-dashboard.json"].as_str().unwrap()).unwrap()
}

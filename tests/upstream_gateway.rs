//! Equivalence with upstream: what the Istio 1.30.3 `gateway` chart renders
//! with deployKF's values (`../shared/reference/istio-1.30.3/gateway.yaml`)
//! against meshgen's native manifests for the defaults, field by field on
//! the points that matter. Where meshgen is stricter (Pod Security
//! "restricted"), the test says so explicitly.

mod common;

use meshgen::source::SourceId;
use meshgen::values::ValueInputs;
use meshgen::Session;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A copy of `../shared/reference/istio-1.30.3/gateway.yaml`
/// (`tests/fixtures/upstream/SOURCES.md`).
const REFERENCE: &str = "istio-1.30.3/gateway.yaml";

fn by_kind(docs: Vec<Value>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for d in docs {
        let kind = d["kind"].as_str().unwrap().to_string();
        assert!(
            out.insert(kind.clone(), d).is_none(),
            "two {kind} documents"
        );
    }
    out
}

fn upstream() -> BTreeMap<String, Value> {
    let path = common::upstream(REFERENCE);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs = meshgen::yaml::load_documents(&text, SourceId(0)).unwrap();
    by_kind(docs.into_iter().flatten().map(|n| n.to_json()).collect())
}

/// Every document of every manifest file, with its path.
fn manifest_docs(g: &meshgen::Generated) -> Vec<(String, Value)> {
    g.manifests
        .iter()
        .flat_map(|m| {
            meshgen::yaml::load_json_documents(&g.files[&m.path])
                .unwrap()
                .into_iter()
                .map(move |d| (m.path.clone(), d))
        })
        .collect()
}

fn ours() -> BTreeMap<String, Value> {
    let g = meshgen::generate(&ValueInputs::default(), &mut Session::default()).unwrap();
    let docs = manifest_docs(&g)
        .into_iter()
        .filter(|(path, _)| path.starts_with("manifests/deploykf-core/deploykf-istio-gateway/"))
        .map(|(_, d)| d)
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some(
                    "ServiceAccount"
                        | "Role"
                        | "RoleBinding"
                        | "Service"
                        | "Deployment"
                        | "HorizontalPodAutoscaler"
                )
            )
        })
        .collect();
    by_kind(docs)
}

#[test]
fn same_objects_in_the_same_namespace() {
    let (up, us) = (upstream(), ours());
    assert_eq!(up.keys().collect::<Vec<_>>(), us.keys().collect::<Vec<_>>());
    for (kind, u) in &up {
        assert_eq!(
            u["metadata"]["name"], us[kind]["metadata"]["name"],
            "{kind} name"
        );
        assert_eq!(
            u["metadata"]["namespace"], us[kind]["metadata"]["namespace"],
            "{kind} namespace"
        );
    }
}

#[test]
fn rbac_lets_the_gateway_read_secrets_only() {
    let (up, us) = (upstream(), ours());
    assert_eq!(up["Role"]["rules"], us["Role"]["rules"]);
    assert_eq!(up["RoleBinding"]["roleRef"], us["RoleBinding"]["roleRef"]);
    let subject = &us["RoleBinding"]["subjects"][0];
    assert_eq!(subject["kind"], up["RoleBinding"]["subjects"][0]["kind"]);
    assert_eq!(subject["name"], up["RoleBinding"]["subjects"][0]["name"]);
    assert_eq!(subject["namespace"], "deploykf-istio-gateway");
}

#[test]
fn service_ports_type_and_selector_match() {
    let (up, us) = (upstream(), ours());
    for field in ["type", "ports", "selector"] {
        assert_eq!(
            up["Service"]["spec"][field], us["Service"]["spec"][field],
            "Service spec.{field}"
        );
    }
    assert_eq!(
        us["Service"]["spec"]["ports"][0]["port"], 15021,
        "status port first"
    );
}

#[test]
fn deployment_matches_upstream_and_is_stricter() {
    let (up, us) = (upstream(), ours());
    let (u, o) = (&up["Deployment"]["spec"], &us["Deployment"]["spec"]);
    assert!(
        u.get("replicas").is_none() && o.get("replicas").is_none(),
        "the HPA owns replicas"
    );
    assert_eq!(u["selector"], o["selector"]);
    let (ut, ot) = (&u["template"], &o["template"]);
    for label in [
        "sidecar.istio.io/inject",
        "app",
        "istio",
        "istio.io/dataplane-mode",
    ] {
        assert_eq!(
            ut["metadata"]["labels"][label], ot["metadata"]["labels"][label],
            "pod label {label}"
        );
    }
    for ann in [
        "inject.istio.io/templates",
        "prometheus.io/path",
        "prometheus.io/port",
        "prometheus.io/scrape",
    ] {
        assert_eq!(
            ut["metadata"]["annotations"][ann], ot["metadata"]["annotations"][ann],
            "pod annotation {ann}"
        );
    }
    let (us_, os) = (&ut["spec"], &ot["spec"]);
    assert_eq!(us_["serviceAccountName"], os["serviceAccountName"]);
    assert_eq!(
        us_["securityContext"]["sysctls"],
        os["securityContext"]["sysctls"]
    );
    assert_eq!(
        us_["terminationGracePeriodSeconds"],
        os["terminationGracePeriodSeconds"]
    );
    let (uc, oc) = (&us_["containers"][0], &os["containers"][0]);
    assert_eq!(os["containers"].as_array().unwrap().len(), 1);
    for field in ["name", "image", "ports", "resources"] {
        assert_eq!(uc[field], oc[field], "container {field}");
    }
    // Every hardening field upstream sets, we set identically ...
    for (k, v) in uc["securityContext"].as_object().unwrap() {
        assert_eq!(
            &oc["securityContext"][k], v,
            "container securityContext.{k}"
        );
    }
    // ... and we add what Pod Security "restricted" needs and upstream lacks.
    assert!(uc["securityContext"].get("seccompProfile").is_none());
    assert_eq!(
        oc["securityContext"]["seccompProfile"],
        json!({"type": "RuntimeDefault"})
    );
    assert_eq!(
        os["securityContext"]["seccompProfile"],
        json!({"type": "RuntimeDefault"})
    );
    assert_eq!(oc["securityContext"]["runAsUser"], 1337);
    assert_eq!(oc["securityContext"]["runAsGroup"], 1337);
}

#[test]
fn autoscaler_matches_upstream() {
    let (up, us) = (upstream(), ours());
    assert_eq!(
        up["HorizontalPodAutoscaler"]["spec"],
        us["HorizontalPodAutoscaler"]["spec"]
    );
}

/// Pod Security "restricted" (v1.30+), checked on every pod template.
#[test]
fn every_pod_template_meets_pod_security_restricted() {
    let g = meshgen::generate(&ValueInputs::default(), &mut Session::default()).unwrap();
    let mut checked = 0;
    for (path, d) in manifest_docs(&g) {
        {
            let spec = match d["kind"].as_str() {
                Some("Deployment" | "StatefulSet" | "DaemonSet" | "Job") => {
                    &d["spec"]["template"]["spec"]
                }
                Some("Pod") => &d["spec"],
                _ => continue,
            };
            checked += 1;
            assert_restricted(&path, spec);
        }
    }
    assert!(checked >= 1);
}

/// The securityContext of the waypoint's only container, as istiod's
/// waypoint template renders it (istio 1.30.3
/// `charts/istio-control/istio-discovery/files/waypoint.yaml:241-256`, not
/// on OpenShift). Its seccomp block renders only with
/// `gateways.seccompProfile`, `{}` by default (`values.yaml:571`).
const WAYPOINT_CONTAINER_SC: &str = "        securityContext:
          privileged: false
        {{- if not (eq .Values.global.platform \"openshift\") }}
          runAsGroup: 1337
          runAsUser: 1337
        {{- end }}
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          runAsNonRoot: true
          capabilities:
            drop:
            - ALL
{{- if .Values.gateways.seccompProfile }}
          seccompProfile:
{{- toYaml .Values.gateways.seccompProfile | nindent 12 }}
{{- end }}
";

/// Deep merge of maps (what a strategic merge patch does to maps; the
/// overlay holds no lists).
fn merge(into: &mut Value, patch: &Value) {
    match (into, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// Ambient: istiod deploys each profile's waypoint from its template with
/// the `deployment` overlay of `ConfigMap/waypoint-params` applied
/// (`pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go:620-628`
/// the Gateway's parametersRef ConfigMap, `:694-696` its `deployment` key,
/// `:723` a strategic merge patch). The pod that results is "restricted";
/// without the overlay it is not (no seccomp profile).
#[test]
fn ambient_waypoint_pods_meet_pod_security_restricted() {
    let path = common::upstream("istio-1.30.3/waypoint.yaml");
    let template =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // The template's one securityContext is the container's (no pod-level
    // one, no init containers), exactly as above.
    assert!(template.contains(WAYPOINT_CONTAINER_SC));
    assert_eq!(template.matches("securityContext:").count(), 1);
    assert!(!template.contains("initContainers"));
    let upstream_pod = json!({"containers": [{"name": "istio-proxy", "securityContext": {
        "privileged": false, "runAsGroup": 1337, "runAsUser": 1337,
        "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
        "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]},
    }}]});
    let bare = std::panic::catch_unwind(|| assert_restricted("upstream waypoint", &upstream_pod));
    assert!(
        bare.is_err(),
        "istiod's waypoint pod alone is restricted: the overlay is moot"
    );

    let g = common::generate(&common::case_inputs("istio-ambient"));
    let mut checked = 0;
    for (path, d) in manifest_docs(&g) {
        if d["kind"] != "ConfigMap" || d["metadata"]["name"] != "waypoint-params" {
            continue;
        }
        let overlay = meshgen::yaml::load_json_documents(d["data"]["deployment"].as_str().unwrap())
            .unwrap()
            .remove(0);
        let mut pod = upstream_pod.clone();
        merge(&mut pod, &overlay["spec"]["template"]["spec"]);
        assert_restricted(&path, &pod);
        checked += 1;
    }
    // One per profile namespace of the case (analytics, research).
    assert_eq!(checked, 2);
}

fn assert_restricted(path: &str, spec: &Value) {
    let pod_sc = &spec["securityContext"];
    for c in spec["containers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(spec["initContainers"].as_array().into_iter().flatten())
    {
        let sc = &c["securityContext"];
        let name = &c["name"];
        assert_eq!(
            sc["allowPrivilegeEscalation"], false,
            "{path} {name}: allowPrivilegeEscalation"
        );
        assert_eq!(
            sc["capabilities"]["drop"],
            json!(["ALL"]),
            "{path} {name}: drop ALL"
        );
        let adds = sc["capabilities"]["add"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            adds.iter().all(|a| a == "NET_BIND_SERVICE"),
            "{path} {name}: capabilities.add"
        );
        assert!(
            sc["runAsNonRoot"] == true || pod_sc["runAsNonRoot"] == true,
            "{path} {name}: runAsNonRoot"
        );
        assert_ne!(sc["runAsUser"], 0, "{path} {name}: runAsUser 0");
        assert_ne!(sc["privileged"], true, "{path} {name}: privileged");
        let seccomp = if sc["seccompProfile"].is_null() {
            &pod_sc["seccompProfile"]
        } else {
            &sc["seccompProfile"]
        };
        assert!(
            seccomp["type"] == "RuntimeDefault" || seccomp["type"] == "Localhost",
            "{path} {name}: seccompProfile"
        );
    }
    for sysctl in pod_sc["sysctls"].as_array().into_iter().flatten() {
        assert!(
            [
                "kernel.shm_rmid_forced",
                "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range",
                "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time",
                "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes",
            ]
            .contains(&sysctl["name"].as_str().unwrap()),
            "{path}: unsafe sysctl {sysctl}"
        );
    }
    assert!(
        spec.get("hostNetwork").is_none_or(|v| v == false),
        "{path}: hostNetwork"
    );
    assert!(
        spec.get("hostPID").is_none_or(|v| v == false),
        "{path}: hostPID"
    );
}

//! The destination side of the request model: a request at a
//! workload's sidecar, after the gateway or another pod sent it.

use super::*;

// The model: `meshgen::access::sidecar` (and `ambient`, `admission`).

pub(crate) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    claims(pairs)
}

pub(crate) fn pod(ns: &str, l: &[(&str, &str)], port: u16) -> Pod {
    Pod {
        namespace: ns.into(),
        labels: labels(l),
        port,
    }
}

pub(crate) fn inbound(
    p: &Pod,
    principal: Option<&str>,
    method: &str,
    path: &str,
    user: Option<&str>,
) -> Inbound {
    Inbound {
        pod: p.clone(),
        principal: principal.map(String::from),
        method: method.into(),
        path: path.into(),
        headers: user
            .map(|u| claims(&[("kubeflow-userid", u)]))
            .unwrap_or_default(),
        token: None,
        sni: None,
    }
}

pub(crate) fn apps_and_teams() -> Tree {
    render_inputs(&common::cases_inputs(&["apps", "multi-team"], &[]))
}

/// Replays the destination-side scenarios; returns what went wrong.
pub(crate) fn destination_violations(t: &Tree) -> Vec<String> {
    let mut bad = Vec::new();
    let mut expect = |what: &str, req: &Inbound, want: bool| {
        if at_destination(t, req) != want {
            bad.push(format!(
                "{what}: {} expected, {req:?}",
                if want { "allowed" } else { "denied" }
            ));
        }
    };
    // Gateway -> app pods. The dashboard's Service maps 80 -> 8082
    // (targetPort given); minio's console Service 9090 reaches the pods on
    // 9001 (no targetPort in the values: meshgen cannot know the pod port).
    let dashboard = pod("kubeflow", &[("app", "centraldashboard")], 8082);
    let minio = pod("minio", &[("app", "minio")], 9001);
    let minio_api = pod("minio", &[("app", "minio-api")], 9000);
    let status = pod("status", &[("app", "statuspage")], 8080);
    let gw = Some(GATEWAY_PRINCIPAL);
    for (name, p) in [
        ("dashboard", &dashboard),
        ("minio-console", &minio),
        ("status", &status),
    ] {
        expect(
            &format!("gateway -> {name} pod"),
            &inbound(p, gw, "GET", "/", Some("alice@example.com")),
            true,
        );
        expect(
            &format!("a tenant pod -> {name} pod"),
            &inbound(
                p,
                Some("cluster.local/ns/kf-research/sa/default-editor"),
                "GET",
                "/",
                None,
            ),
            false,
        );
    }
    // The dashboard's policy names its pod port: another port of that pod
    // stays closed to the gateway.
    let mut other_port = dashboard.clone();
    other_port.port = 9090;
    expect(
        "gateway -> dashboard pod, another port",
        &inbound(&other_port, gw, "GET", "/", None),
        false,
    );
    // A selector keeps the policy on its pods: a neighbour in minio's
    // namespace keeps its callers.
    expect(
        "a neighbour's caller -> minio API pod",
        &inbound(
            &minio_api,
            Some("cluster.local/ns/ml/sa/trainer"),
            "GET",
            "/",
            None,
        ),
        true,
    );
    // Profiles: the gateway with a member's verified identity reaches the
    // profile; a pod of another profile never does, whatever it claims.
    let research = pod("kf-research", &[("app", "nb")], 8888);
    let analytics = pod("kf-analytics", &[("app", "nb")], 8888);
    let alice = "alice@example.com";
    let admin = "ml-platform-admin@example.com";
    expect(
        "gateway as a member -> its profile",
        &inbound(&research, gw, "GET", "/", Some(alice)),
        true,
    );
    expect(
        "gateway as a non-member -> a profile",
        &inbound(&analytics, gw, "GET", "/", Some(alice)),
        false,
    );
    expect(
        "a pod of kf-research -> kf-analytics, claiming its owner",
        &inbound(
            &analytics,
            Some("cluster.local/ns/kf-research/sa/default-editor"),
            "GET",
            "/",
            Some(admin),
        ),
        false,
    );
    expect(
        "a pod of kf-research -> kf-research",
        &inbound(
            &research,
            Some("cluster.local/ns/kf-research/sa/default-editor"),
            "GET",
            "/",
            None,
        ),
        true,
    );
    expect(
        "plaintext -> a profile",
        &inbound(&research, None, "GET", "/", Some(alice)),
        false,
    );
    // Only STRICT mTLS keeps a caller without a sidecar off the paths
    // every mesh workload may probe.
    expect(
        "plaintext -> a profile's probe path",
        &inbound(&research, None, "GET", "/healthz", None),
        false,
    );
    expect(
        "plaintext -> minio console",
        &inbound(&minio, None, "GET", "/", Some(alice)),
        false,
    );
    // Kubeflow parity (profile_controller.go, getAuthorizationPolicy).
    let kfp_ui = Some("cluster.local/ns/kubeflow/sa/ml-pipeline-ui");
    let nb_ctl = Some("cluster.local/ns/kubeflow/sa/notebook-controller-service-account");
    let activator = Some("cluster.local/ns/knative-serving/sa/controller");
    expect(
        "Pipelines UI for a member",
        &inbound(&research, kfp_ui, "GET", "/artifacts", Some(alice)),
        true,
    );
    expect(
        "Pipelines UI for a non-member",
        &inbound(&analytics, kfp_ui, "GET", "/artifacts", Some(alice)),
        false,
    );
    // The activator probes pods by IP: past a waypoint, so in ambient
    // mode ztunnel refuses it (README, ambient "Limits"; fail closed).
    let probes = !in_ambient(t, "kf-research");
    let mut by_pod_ip = Vec::new();
    for path in ["/healthz", "/metrics", "/wait-for-drain"] {
        let req = inbound(&research, activator, "GET", path, None);
        if at_destination_by_pod_ip(t, &req) != probes {
            by_pod_ip.push(format!("Knative probe {path}: {probes} expected"));
        }
    }
    expect(
        "Knative's controller elsewhere",
        &inbound(&research, activator, "GET", "/api", None),
        false,
    );
    let kernels = "/notebook/kf-research/nb/api/kernels";
    expect(
        "notebook controller polls kernels",
        &inbound(&research, nb_ctl, "GET", kernels, None),
        true,
    );
    expect(
        "notebook controller POSTs kernels",
        &inbound(&research, nb_ctl, "POST", kernels, None),
        false,
    );
    expect(
        "notebook controller elsewhere",
        &inbound(
            &research,
            nb_ctl,
            "GET",
            "/notebook/kf-research/nb/lab",
            None,
        ),
        false,
    );
    // A tenant's VirtualService bound to the gateway, which sets the
    // identity header on its route after the gateway verified alice.
    for (key, level) in [
        ("set", "route"),
        ("add", "destination"),
        ("set", "destination"),
    ] {
        let header = json!({"request": {key: {"Kubeflow-Userid": admin}}});
        let mut route = json!({
            "match": [{"uri": {"prefix": "/notebook/kf-research/x/"}}],
            "route": [{"destination": {"host": "nb.kf-analytics.svc.cluster.local"}}],
        });
        if level == "route" {
            route["headers"] = header;
        } else {
            route["route"][0]["headers"] = header;
        }
        let vs = json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "steal", "namespace": "kf-research"},
            "spec": {"gateways": ["deploykf-istio-gateway/deploykf-gateway"], "hosts": ["deploykf.example.com"], "http": [route.clone()]},
        });
        if !admitted(t, &vs) {
            continue;
        }
        let seen = through_tenant_route(&gateway_identity(t, alice), &route);
        let req = Inbound {
            pod: analytics.clone(),
            principal: gw.map(String::from),
            method: "GET".into(),
            path: "/notebook/kf-research/x/".into(),
            headers: seen,
            token: None,
            sni: None,
        };
        if at_destination(t, &req) {
            bad.push(format!(
                "a tenant VirtualService ({key} on the {level}) made kf-analytics see {admin}"
            ));
        }
    }
    bad.extend(by_pod_ip);
    bad
}

#[test]
pub(crate) fn the_destination_admits_only_verified_callers() {
    let t = apps_and_teams();
    let bad = destination_violations(&t);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The destination replay notices when any one safeguard is missing.
#[test]
pub(crate) fn the_destination_replay_notices_a_missing_safeguard() {
    let base = apps_and_teams();
    let mut mutants: Vec<(String, Tree)> = Vec::new();
    // Drop one document.
    for (path, what) in [
        (
            format!("{GW_DIR}/ValidatingAdmissionPolicy-identity-headers.yaml"),
            "the identity-header admission policy",
        ),
        (
            format!("{GW_DIR}/app-minio-console.yaml"),
            "minio's app policy",
        ),
    ] {
        let mut t = base.clone();
        assert!(t.remove(&path).is_some(), "{path}");
        mutants.push((what.into(), t));
    }
    let mut t = base.clone();
    for docs in t.values_mut() {
        docs.retain(|d| d["kind"] != "PeerAuthentication");
    }
    mutants.push(("every PeerAuthentication".into(), t));
    // The selector of minio's policy.
    let mut t = base.clone();
    t.get_mut(&format!("{GW_DIR}/app-minio-console.yaml"))
        .unwrap()[1]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("selector");
    mutants.push(("the selector of minio's policy".into(), t));
    // The dashboard's port.
    let mut t = base.clone();
    t.get_mut(&format!("{GW_DIR}/app-dashboard.yaml")).unwrap()[0]["spec"]["rules"][0]
        .as_object_mut()
        .unwrap()
        .remove("to");
    mutants.push(("the dashboard policy's port".into(), t));
    // Each rule of a profile's profile-access policy.
    let file = "manifests/deploykf-core/deploykf-profiles-generator/kf-research.yaml";
    let at = base[file]
        .iter()
        .position(|d| d["metadata"]["name"] == "profile-access")
        .unwrap();
    // (Rules on the groups header or claim are another replay's: this one
    // sends no groups.)
    let profile_rules = base[file][at]["spec"]["rules"].as_array().unwrap();
    for (i, rule) in profile_rules.iter().enumerate() {
        if rule.to_string().contains("groups") {
            continue;
        }
        let mut t = base.clone();
        t.get_mut(file).unwrap()[at]["spec"]["rules"]
            .as_array_mut()
            .unwrap()
            .remove(i);
        mutants.push((format!("rule {i} of kf-research's profile-access"), t));
    }
    // A header missing from the admission policy's list.
    let mut t = base.clone();
    let vap = &mut t
        .get_mut(&format!(
            "{GW_DIR}/ValidatingAdmissionPolicy-identity-headers.yaml"
        ))
        .unwrap()[0];
    vap["spec"]["variables"][0]["expression"] = json!("[\"kubeflow-groups\"]");
    mutants.push(("kubeflow-userid in the admission policy".into(), t));
    for (what, t) in mutants {
        assert!(
            !destination_violations(&t).is_empty(),
            "without {what} the replay still passes"
        );
    }
}

#[test]
pub(crate) fn app_policies_match_the_pod_port_and_warn_without_selector() {
    let t = case("apps");
    let rules = |name: &str| {
        t[&format!("{GW_DIR}/app-{name}.yaml")].last().unwrap()["spec"]["rules"].clone()
    };
    // targetPort given: the pod port; none: no port list.
    assert_eq!(
        rules("dashboard"),
        json!([{"from": [{"source": {"principals": [GATEWAY_PRINCIPAL]}}], "to": [{"operation": {"ports": ["8082"]}}]}])
    );
    assert_eq!(
        rules("minio-console"),
        json!([{"from": [{"source": {"principals": [GATEWAY_PRINCIPAL]}}]}])
    );
    let warnings = warnings_of(&common::case_inputs("apps"));
    let about = |key: &str| {
        warnings
            .iter()
            .any(|w| w.contains(key) && w.contains("no `selector`"))
    };
    assert!(about("apps[0]"), "{warnings:?}");
    assert!(!about("apps[1]"), "{warnings:?}");
}

#[test]
pub(crate) fn the_identity_header_guard_reads_every_header_operation() {
    let t = case("apps");
    let docs = &t[&format!("{GW_DIR}/ValidatingAdmissionPolicy-identity-headers.yaml")];
    let vap = &docs[0]["spec"];
    assert_eq!(vap["failurePolicy"], "Fail");
    assert_eq!(
        vap["matchConstraints"]["resourceRules"][0]["resources"],
        json!(["virtualservices"])
    );
    assert_eq!(
        vap["variables"][0]["expression"],
        "[\"kubeflow-userid\", \"kubeflow-groups\"]"
    );
    let cel = vap["validations"][0]["expression"].as_str().unwrap();
    for level in ["r", "d"] {
        for op in ["set", "add", "remove"] {
            assert!(
                cel.contains(&format!("{level}.headers.request.{op}.all(h, !(h.lowerAscii() in variables.identityHeaders))")),
                "{level}.{op}: {cel}"
            );
        }
    }
    assert!(cel.contains("r.route.all(d, "), "{cel}");
    assert_eq!(docs[1]["spec"]["validationActions"], json!(["Deny"]));
    assert_eq!(
        docs[1]["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]["values"],
        json!(["deploykf-istio-gateway"])
    );
}

/// Issue 14, point 4: with `output: profiles`, Kubeflow's profile controller
/// and KFAM name the principal in `ISTIO_INGRESS_GATEWAY_PRINCIPAL`
/// (kubeflow/dashboard `components/profile-controller/controllers/
/// profile_controller.go` and `components/access-management/kfam/
/// bindings.go`, `getAuthorizationPolicy`; default
/// `cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account`),
/// read by both containers from the ConfigMap `config` (kubeflow/manifests
/// `applications/profiles/upstream/manager/kustomization.yaml`): the output
/// README gives the merge that points it at meshgen's gateway.
#[test]
pub(crate) fn with_kubeflow_profiles_the_readme_sets_the_gateway_principal() {
    let inputs = common::inputs(
        vec![],
        &["deploykf_core.deploykf_profiles_generator.output=profiles"],
    );
    let g = common::generate(&inputs);
    let readme = &g.files["README.md"];
    assert!(
        readme.contains(&format!(
            "        - ISTIO_INGRESS_GATEWAY_PRINCIPAL={GATEWAY_PRINCIPAL}\n"
        )),
        "{readme}"
    );
    assert!(
        readme.contains("        - USERID_HEADER=kubeflow-userid\n"),
        "{readme}"
    );
    assert!(
        readme.contains("    - name: config\n      behavior: merge\n"),
        "{readme}"
    );
    // With `output: namespaces` meshgen renders the policies itself.
    let g = common::generate(&common::inputs(vec![], &[]));
    assert!(!g.files["README.md"].contains("ISTIO_INGRESS_GATEWAY_PRINCIPAL"));
}

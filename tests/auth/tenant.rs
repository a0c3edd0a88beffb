//! Tenant isolation, second pass (issue 28): replays of what a tenant (a
//! profile's editor) or a value could do to the platform, each failing on
//! the tree before its fix.

use super::*;

/// A values file (JSON is YAML) in a temporary directory, rendered.
pub(crate) fn render_values(values: &Value, sets: &[&str]) -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("values.yaml");
    std::fs::write(&file, serde_json::to_string_pretty(values).unwrap()).unwrap();
    render_files(vec![file], sets)
}

fn strings_of(v: &Value) -> Option<Vec<String>> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
}

// ---------------------------------------------------------------------
// dex runs no template engine over its config (point 4)

/// The files the dex image's entrypoint hands to gomplate for a
/// container. The image (dexidp/dex v2.45.1 Dockerfile:92-93) has
/// `ENTRYPOINT ["/usr/local/bin/docker-entrypoint"]` and
/// `CMD ["dex", "serve", "/etc/dex/config.docker.yaml"]`; Kubernetes runs
/// `command` instead of the ENTRYPOINT (then without the CMD) and `args`
/// instead of the CMD. For `dex serve`, the entrypoint runs gomplate over
/// every argument ending in `.tpl`, `.tmpl` or `.yaml`
/// (cmd/docker-entrypoint/main.go:71-95, gomplate at :58).
pub(crate) fn gomplate_inputs(container: &Value) -> Vec<String> {
    let command = strings_of(&container["command"]);
    let args = strings_of(&container["args"]);
    let mut argv = command
        .clone()
        .unwrap_or_else(|| vec!["/usr/local/bin/docker-entrypoint".into()]);
    argv.extend(args.unwrap_or_else(|| {
        match command {
            Some(_) => vec![],
            None => ["dex", "serve", "/etc/dex/config.docker.yaml"]
                .map(String::from)
                .to_vec(),
        }
    }));
    let entrypoint = ["docker-entrypoint", "/usr/local/bin/docker-entrypoint"];
    if !entrypoint.contains(&argv[0].as_str())
        || argv.len() < 3
        || !["dex", "/usr/local/bin/dex"].contains(&argv[1].as_str())
        || argv[2] != "serve"
    {
        return vec![];
    }
    argv[1..]
        .iter()
        .filter(|a| [".tpl", ".tmpl", ".yaml"].iter().any(|s| a.ends_with(s)))
        .cloned()
        .collect()
}

/// Every container of the tree running the dex image, with its path.
fn dex_containers(t: &Tree) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (path, d) in all_docs(t) {
        let spec = &d["spec"]["template"]["spec"];
        for list in ["initContainers", "containers"] {
            for c in spec[list].as_array().into_iter().flatten() {
                let image = c["image"].as_str().unwrap_or_default();
                if image.contains("/dexidp/dex") {
                    out.push((path.clone(), c.clone()));
                }
            }
        }
    }
    out
}

/// Connector names and configs that gomplate would evaluate: the name is
/// shown on dex's login page, so `{{ .Env.… }}` there published a secret
/// of dex's environment; a Secret's `{{` made gomplate fail and dex
/// crash-loop.
pub(crate) fn templating_tree() -> Tree {
    render_values(
        &json!({"deploykf_core": {"deploykf_auth": {"dex": {"connectors": [
            {"type": "oidc", "id": "corp", "name": "Corp {{ .Env.MESHGEN_DEX_CLIENT_SECRET_OAUTH2_PROXY }}",
             "config": {"issuer": "https://login.example.org", "clientID": "{{ (ds \"x\") }}"}},
            {"type": "oidc", "id": "kept", "name": "In a Secret",
             "configExistingSecret": "dex-connector", "configExistingSecretKey": "config.yaml"},
        ]}}}}),
        &[],
    )
}

pub(crate) fn templating_violations(t: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    let containers = dex_containers(t);
    if containers.is_empty() {
        out.push("no dex container".into());
    }
    for (path, c) in containers {
        let files = gomplate_inputs(&c);
        if !files.is_empty() {
            out.push(format!(
                "{path}: container {} hands {files:?} to gomplate",
                c["name"]
            ));
        }
    }
    out
}

#[test]
pub(crate) fn regression_issue_28_dex_evaluates_no_template() {
    for (name, t) in [
        ("defaults", render_files(vec![], &[])),
        ("dex-secrets", case("dex-secrets")),
        ("istio-ambient", case("istio-ambient")),
        ("templating", templating_tree()),
    ] {
        let v = templating_violations(&t);
        assert!(v.is_empty(), "{name}: {v:?}");
    }
    // The user's text reaches dex's config verbatim, read by dex alone.
    let t = templating_tree();
    let cm = one(&t, &format!("{AUTH_DIR}/ConfigMap-dex.yaml"));
    let c = common::docs(cm["data"]["connector-0000.yaml"].as_str().unwrap()).remove(0);
    assert_eq!(
        c[0]["name"],
        "Corp {{ .Env.MESHGEN_DEX_CLIENT_SECRET_OAUTH2_PROXY }}"
    );
    assert_eq!(c[0]["config"]["clientID"], "{{ (ds \"x\") }}");
    let d = one(&t, &format!("{AUTH_DIR}/Deployment-dex.yaml"));
    let dex = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        dex["command"],
        json!(["/usr/local/bin/dex", "serve", "/etc/dex/config.yaml"])
    );
}

#[test]
pub(crate) fn the_templating_replay_notices_a_missing_safeguard() {
    // The tree before the fix: `args: [dex, serve, /etc/dex/config.yaml]`
    // through the image's entrypoint.
    let mut t = templating_tree();
    let path = format!("{AUTH_DIR}/Deployment-dex.yaml");
    let d = &mut t.get_mut(&path).unwrap()[0];
    let c = &mut d["spec"]["template"]["spec"]["containers"][0];
    let c = c.as_object_mut().unwrap();
    c.remove("command");
    c.insert(
        "args".into(),
        json!(["dex", "serve", "/etc/dex/config.yaml"]),
    );
    let v = templating_violations(&t);
    assert!(
        v.len() == 1 && v[0].contains("/etc/dex/config.yaml"),
        "{v:?}"
    );
}

// ---------------------------------------------------------------------
// Tenants keep to their own paths on the platform host (point 1)

const PLATFORM_GATEWAY: &str = "deploykf-istio-gateway/deploykf-gateway";
const MAIN_HOST: &str = "deploykf.example.com";

fn tenant_vs(ns: &str, gateways: &[&str], hosts: &[&str], http: Value) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "tenant", "namespace": ns},
        "spec": {"gateways": gateways, "hosts": hosts, "http": http},
    })
}

fn tenant_route(m: Value) -> Value {
    json!({"name": "tenant", "match": [m], "route": [{"destination": {"host": "grab.kf-research.svc.cluster.local"}}]})
}

/// A profile's editor in `kf-research` binds a VirtualService to the
/// platform Gateway; if the API server admits it, it is added to the tree
/// (after meshgen's documents: created later) and a verified user's
/// request for a path that is not the tenant's is replayed through the
/// gateway. Each attack names the path it aims at.
pub(crate) fn path_takeover_violations(t: &Tree) -> Vec<String> {
    let prefix = |p: &str| tenant_route(json!({"uri": {"prefix": p}}));
    let attacks: Vec<(&str, Value, &'static str)> = vec![
        (
            "/api/ on the platform host",
            tenant_vs(
                "kf-research",
                &[PLATFORM_GATEWAY],
                &[MAIN_HOST],
                json!([prefix("/api/")]),
            ),
            "/api/workgroup/env-info",
        ),
        (
            "/api/ for every host",
            tenant_vs(
                "kf-research",
                &[PLATFORM_GATEWAY],
                &["*"],
                json!([prefix("/api/")]),
            ),
            "/api/workgroup/env-info",
        ),
        (
            "a regex",
            tenant_vs(
                "kf-research",
                &[PLATFORM_GATEWAY],
                &[MAIN_HOST],
                json!([tenant_route(json!({"uri": {"regex": "/api/.*"}}))]),
            ),
            "/api/workgroup/env-info",
        ),
        (
            "the legacy gateway name",
            tenant_vs(
                "kf-research",
                &["deploykf-gateway.deploykf-istio-gateway.svc.cluster.local"],
                &[MAIN_HOST],
                json!([prefix("/api/")]),
            ),
            "/api/workgroup/env-info",
        ),
        (
            "another profile's notebooks",
            tenant_vs(
                "kf-research",
                &[PLATFORM_GATEWAY],
                &["*"],
                json!([prefix("/notebook/kf-analytics/")]),
            ),
            "/notebook/kf-analytics/nb/lab",
        ),
        (
            "a prefix without its slash",
            tenant_vs(
                "kf-research",
                &[PLATFORM_GATEWAY],
                &["*"],
                json!([prefix("/notebook/kf-research")]),
            ),
            "/notebook/kf-researchers/nb/lab",
        ),
        (
            "/ with a header match (not a catch-all, so not moved last)",
            tenant_vs(
                "kf-research",
                &[PLATFORM_GATEWAY],
                &[MAIN_HOST],
                json!([tenant_route(
                    json!({"uri": {"prefix": "/"}, "headers": {"cookie": {"regex": ".*"}}})
                )]),
            ),
            "/",
        ),
    ];
    let mut bad = Vec::new();
    for (what, vs, path) in attacks {
        if !admitted(t, &vs) {
            continue;
        }
        let mut with = t.clone();
        with.insert("tenant/VirtualService-tenant.yaml".into(), vec![vs]);
        let req = Request {
            token: Some((
                "https://deploykf.example.com/dex".into(),
                claims(&[
                    ("sub", "bob"),
                    ("email", "bob@example.com"),
                    ("aud", "oauth2-proxy"),
                ]),
            )),
            ..get(MAIN_HOST, path)
        };
        if let Outcome::Upstream(route, _) = through_gateway(&with, &req) {
            if route == "tenant" {
                bad.push(format!("{what}: the tenant's route took {path}"));
            }
        }
    }
    bad
}

/// What Kubeflow's controllers create in a profile namespace is admitted.
fn kubeflow_routes_admitted(t: &Tree) -> Vec<String> {
    let mut bad = Vec::new();
    for (what, prefix) in [
        ("a notebook", "/notebook/kf-research/nb/"),
        ("a tensorboard", "/tensorboard/kf-research/tb/"),
        ("a PVC viewer", "/pvcviewers/kf-research/v/"),
        ("an inference service path", "/serving/kf-research/m/"),
    ] {
        // The notebook controller's shape: hosts `*` (ISTIO_HOST),
        // kubeflow/kubeflow v1.9.2 notebook_controller.go:500-516.
        let vs = tenant_vs(
            "kf-research",
            &[PLATFORM_GATEWAY],
            &["*"],
            json!([{"match": [{"uri": {"prefix": prefix}}], "rewrite": {"uri": prefix},
                    "route": [{"destination": {"host": "nb.kf-research.svc.cluster.local", "port": {"number": 80}}}]}]),
        );
        if !admitted(t, &vs) {
            bad.push(format!("{what} ({prefix}) refused"));
        }
    }
    bad
}

#[test]
pub(crate) fn regression_issue_28_tenants_keep_to_their_own_paths() {
    let t = apps_and_teams();
    let bad = path_takeover_violations(&t);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let refused = kubeflow_routes_admitted(&t);
    assert!(refused.is_empty(), "{refused:?}");
    // meshgen's own VirtualServices are exempt (the gateway's namespace).
    let main = one(&t, &format!("{GW_DIR}/VirtualService-routes.yaml"));
    assert!(admitted(&t, &main));
}

#[test]
pub(crate) fn the_path_takeover_replay_notices_a_missing_safeguard() {
    let mut t = apps_and_teams();
    let path = format!("{GW_DIR}/ValidatingAdmissionPolicy-tenant-routes.yaml");
    assert!(t.remove(&path).is_some(), "{path}");
    let bad = path_takeover_violations(&t);
    assert_eq!(bad.len(), 7, "{}", bad.join("\n"));
}

/// The rendered CEL tests what [`tenant_routes_admit`] models (its
/// evaluation on sample VirtualServices: `tests/cel/tenant_routes.py`).
#[test]
pub(crate) fn the_tenant_routes_cel_reads_what_the_model_reads() {
    let t = apps_and_teams();
    let docs = &t[&format!("{GW_DIR}/ValidatingAdmissionPolicy-tenant-routes.yaml")];
    let (policy, binding) = (&docs[0], &docs[1]);
    let var = |n: &str| {
        policy["spec"]["variables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == n)
            .unwrap()["expression"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        var("tenantPrefixes"),
        "variables.tenantPrefixBases.map(p, p + object.metadata.namespace + \"/\")"
    );
    let bound = var("bound");
    assert!(
        bound.contains("object.spec.gateways.exists(g,") && bound.contains("m.gateways.exists(g,")
    );
    let v: Vec<&str> = policy["spec"]["validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["expression"].as_str().unwrap())
        .collect();
    assert_eq!(v.len(), 3);
    assert!(v.iter().all(|e| e.starts_with("!variables.bound || ")));
    assert!(v[0].contains("h.lowerAscii() in variables.tenantHosts"));
    assert!(v[1].contains("object.spec.tcp") && v[1].contains("object.spec.tls"));
    assert!(v[2].contains("has(r.match) && size(r.match) > 0 && r.match.all(m, has(m.uri)"));
    assert!(
        v[2].contains("m.uri.prefix.startsWith(p)") && v[2].contains("m.uri.exact.startsWith(p)")
    );
    assert!(!v[2].contains("regex"));
    // Every namespace of meshgen's, and no profile's, is left out.
    let exempt = &binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0];
    assert_eq!(exempt["operator"], "NotIn");
    let values: Vec<&str> = exempt["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        values.contains(&"deploykf-istio-gateway") && values.contains(&"deploykf-auth"),
        "{values:?}"
    );
    assert!(!values.iter().any(|n| n.starts_with("kf-")), "{values:?}");
}

// ---------------------------------------------------------------------
// Gateway port translation (point 3)

/// istiod listens for a Gateway server (label selector) whose port is a
/// Service port on that port's targetPort (istio/istio 1.30.3
/// `pilot/pkg/model/gateway.go:482-507`): a pod port equal to the other
/// listener's Service port moves the server. The issue's two examples.
#[test]
pub(crate) fn regression_issue_28_a_pod_port_equal_to_another_service_port_is_refused() {
    let gw = "deploykf_core.deploykf_istio_gateway";
    let run = |http: u16, https: u16, s_http: u16, s_https: u16| {
        let sets = [
            format!("{gw}.gateway.ports.http={http}"),
            format!("{gw}.gateway.ports.https={https}"),
            format!("{gw}.gatewayService.ports.http={s_http}"),
            format!("{gw}.gatewayService.ports.https={s_https}"),
        ];
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        errors_of(&common::inputs(vec![], &sets))
    };
    // HTTPS would move onto 8080, beside HTTP.
    let e = run(8080, 8443, 8443, 443);
    assert!(
        e.len() == 1
            && e[0].starts_with(&format!(
                "error[rule]: `{gw}.gateway.ports.https`: 8443 is also the gateway Service's http port"
            )),
        "{e:?}"
    );
    // Each server would move onto the other's pod port.
    let e = run(443, 80, 80, 443);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].contains("gateway.ports.http`: 443 is also the gateway Service's https port"),
        "{e:?}"
    );
    assert!(
        e[1].contains("gateway.ports.https`: 80 is also the gateway Service's http port"),
        "{e:?}"
    );
    // A pod port equal to its own Service port, or to none, is fine.
    assert_eq!(run(80, 443, 80, 443), Vec::<String>::new());
    assert_eq!(run(8080, 8443, 80, 443), Vec::<String>::new());
}

// ---------------------------------------------------------------------
// Cookies and redirects for the served hosts only (point 6)

/// oauth2-proxy v7.15.3 lets a login end on `url`'s host when a
/// `whitelist_domains` entry allows it (`pkg/util/util.go:143-183`
/// `IsEndpointAllowed`: an exact host, or a `.`/`*.` entry for its
/// subdomains; `:*` any port).
fn redirect_allowed(whitelist: &Value, host: &str) -> bool {
    whitelist.as_array().unwrap().iter().any(|w| {
        let w = w.as_str().unwrap();
        let allowed = w.strip_suffix(":*").unwrap_or(w);
        host == allowed.trim_start_matches('.').trim_start_matches("*.")
            || (allowed.starts_with('.') && host.ends_with(allowed))
            || (allowed.starts_with("*.") && host.ends_with(&allowed[1..]))
    })
}

#[test]
pub(crate) fn regression_issue_28_cookies_and_redirects_name_the_served_hosts_only() {
    for (name, served) in [
        (
            "apps",
            vec!["deploykf.example.com", "minio-console.deploykf.example.com"],
        ),
        ("defaults", vec!["deploykf.example.com"]),
    ] {
        let t = if name == "defaults" {
            render_files(vec![], &[])
        } else {
            case(name)
        };
        let cfg = super::edge::oauth2_proxy_cfg(&t);
        for h in &served {
            assert!(
                redirect_allowed(&cfg["whitelist_domains"], h),
                "{name}: {h}"
            );
        }
        // A tenant's or KServe's host under the base domain.
        for other in [
            "m-kf-research.deploykf.example.com",
            "evil.deploykf.example.com",
        ] {
            assert!(
                !redirect_allowed(&cfg["whitelist_domains"], other),
                "{name}: a login may end on {other}: {}",
                cfg["whitelist_domains"]
            );
        }
        // Every cookie domain is a served host (none a `.` suffix).
        if let Some(d) = cfg.get("cookie_domains") {
            for d in d.as_array().unwrap() {
                assert!(
                    served.contains(&d.as_str().unwrap()),
                    "{name}: cookie domain {d}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------
// Ambient: dex admits the waypoints that need its keys, by name (point 8)

/// `apps` and `idp-groups` in ambient, with a third profile `plain` that
/// has no identity-provider group member.
fn ambient_idp_tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain.yaml");
    let profiles = json!({"deploykf_core": {"deploykf_profiles_generator": {"profiles": [
        {"name": "research", "members": [{"idpGroup": "ml-platform-admins", "access": {"role": "edit", "notebooksAccess": true}}]},
        {"name": "plain", "members": [{"user": "bob", "access": {"role": "edit", "notebooksAccess": true}}]},
    ]}}});
    std::fs::write(&file, serde_json::to_string(&profiles).unwrap()).unwrap();
    let mut inputs = common::cases_inputs(
        &["apps", "idp-groups"],
        &["deploykf_dependencies.istio.dataplaneMode=ambient"],
    );
    inputs.files.push(file);
    render_inputs(&inputs)
}

/// Who reaches dex's port in ambient, as ztunnel enforces dex's policies.
pub(crate) fn dex_key_violations(t: &Tree) -> Vec<String> {
    let dex = pod("deploykf-auth", &[("app.kubernetes.io/name", "dex")], 5556);
    let as_ = |principal: &str| Inbound {
        pod: dex.clone(),
        principal: Some(principal.into()),
        method: "GET".into(),
        path: "/dex/keys".into(),
        headers: BTreeMap::new(),
        token: None,
        sni: None,
    };
    let mut bad = Vec::new();
    // The waypoint of a profile with idpGroup members fetches the keys.
    if !at_destination(t, &as_("cluster.local/ns/research/sa/waypoint")) {
        bad.push("research's waypoint can not fetch dex's keys".into());
    }
    // An editor's pod in another profile, running as a ServiceAccount it
    // names `waypoint` (kubeflow-edit may create both).
    for ns in ["plain", "kubeflow"] {
        if at_destination(t, &as_(&format!("cluster.local/ns/{ns}/sa/waypoint"))) {
            bad.push(format!(
                "a pod as {ns}'s ServiceAccount waypoint reaches dex"
            ));
        }
    }
    bad
}

#[test]
pub(crate) fn regression_issue_28_dex_admits_only_the_waypoints_that_need_its_keys() {
    let t = ambient_idp_tree();
    assert_eq!(
        waypoint_of(&t, "plain").as_deref(),
        Some("waypoint"),
        "plain has a waypoint"
    );
    let bad = dex_key_violations(&t);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // (The idp-groups replay in ambient, with the profiles' waypoints
    // fetching dex's keys: `ambient_destinations_admit_only_verified_callers`.)
}

// ---------------------------------------------------------------------
// Image digests (point 10)

/// Every image key accepts `tag@sha256:<digest>`, and the image is then
/// `repository:tag@sha256:<digest>`, pulled by its digest.
#[test]
pub(crate) fn regression_issue_28_every_image_key_accepts_a_digest() {
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let keys = [
        "deploykf_dependencies.cert_manager.images.certManagerController",
        "deploykf_dependencies.cert_manager.images.certManagerWebhook",
        "deploykf_dependencies.cert_manager.images.certManagerCainjector",
        "deploykf_dependencies.cert_manager.images.certManagerAcmesolver",
        "deploykf_dependencies.istio.images.istioProxy",
        "deploykf_dependencies.istio.images.istioPilot",
        "deploykf_dependencies.istio.images.ztunnel",
        "deploykf_core.deploykf_auth.images.dex",
        "deploykf_core.deploykf_auth.images.oauth2Proxy",
        "deploykf_core.deploykf_auth.images.passwordHasher",
    ];
    // Istio's images keep a version meshgen installs (its rules read it).
    let tag = |k: &str| {
        if k.contains(".istio.") {
            "1.30.3"
        } else {
            "v9.9.9"
        }
    };
    let mut sets: Vec<String> = keys
        .iter()
        .map(|k| format!("{k}.tag={}@{digest}", tag(k)))
        .collect();
    sets.push("deploykf_dependencies.istio.dataplaneMode=ambient".into());
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let inputs = common::cases_inputs(&["dex-secrets"], &sets);
    let errors = errors_of(&inputs);
    assert!(errors.is_empty(), "{errors:?}");
    let t = render_inputs(&inputs);
    // Each pinned image, wherever the tree names it.
    let mut images: Vec<String> = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    for (_, d) in all_docs(&t) {
        walk(d, &mut images);
    }
    for repo in [
        "ghcr.io/dexidp/dex",
        "quay.io/oauth2-proxy/oauth2-proxy",
        "docker.io/library/httpd",
        "docker.io/istio/pilot",
        "docker.io/istio/proxyv2",
        "docker.io/istio/ztunnel",
    ] {
        let want = format!(
            "{repo}:{}@{digest}",
            tag(repo.replace("docker.io/istio", ".istio.").as_str())
        );
        assert!(images.contains(&want), "{want} not in the tree");
    }
    // cert-manager's chart joins `repository:tag` itself.
    let cm = one(
        &t,
        "manifests/deploykf-dependencies/cert-manager/values.yaml",
    );
    assert_eq!(
        cm["cert-manager"]["image"]["tag"],
        json!(format!("v9.9.9@{digest}")),
        "{cm}"
    );
}

// ---------------------------------------------------------------------
// checkov's findings that are meshgen's to fix (point 10)

/// checkov CKV_K8S_10/12/13 (CPU and memory requests, memory limit on
/// every container) and CKV_K8S_49 (no `*` in a Role's or ClusterRole's
/// rules), on parsed documents of each tree.
pub(crate) fn checkov_violations(t: &Tree) -> Vec<String> {
    let mut bad = Vec::new();
    for (path, d) in all_docs(t) {
        let kind = d["kind"].as_str().unwrap_or_default();
        if kind == "Role" || kind == "ClusterRole" {
            for r in d["rules"].as_array().into_iter().flatten() {
                for k in ["apiGroups", "resources", "verbs"] {
                    if r[k].as_array().into_iter().flatten().any(|x| x == "*") {
                        bad.push(format!(
                            "{path}: {kind} {} has * in {k}",
                            d["metadata"]["name"]
                        ));
                    }
                }
            }
        }
        let spec = if kind == "CronJob" {
            &d["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        } else {
            &d["spec"]["template"]["spec"]
        };
        for list in ["initContainers", "containers"] {
            for c in spec[list].as_array().into_iter().flatten() {
                let r = &c["resources"];
                for (what, v) in [
                    ("CPU request", &r["requests"]["cpu"]),
                    ("memory request", &r["requests"]["memory"]),
                    ("memory limit", &r["limits"]["memory"]),
                ] {
                    if v.is_null() {
                        bad.push(format!("{path}: container {} has no {what}", c["name"]));
                    }
                }
            }
        }
    }
    bad
}

#[test]
pub(crate) fn regression_issue_28_containers_have_resources_and_roles_no_wildcard() {
    for name in ["defaults", "dex-secrets", "istio-ambient", "auth-m2m"] {
        let t = if name == "defaults" {
            render_files(vec![], &[])
        } else {
            case(name)
        };
        let bad = checkov_violations(&t);
        assert!(bad.is_empty(), "{name}:\n{}", bad.join("\n"));
    }
}

// ---------------------------------------------------------------------
// IdP groups and the connectors that issue them (point 7, in part)

/// A GitHub connector with `loadAllGroups` and no `orgs` returns every
/// organisation of the user (dex v2.45.1 `connector/github/github.go:317-327`),
/// and anyone can create one named like an `idpGroup`: refused while
/// `idpGroup` members exist. Several connectors: a warning.
#[test]
pub(crate) fn regression_issue_28_idp_groups_from_any_github_organisation_are_refused() {
    let with = |connector: Value| {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("github.yaml");
        let v = json!({"deploykf_core": {"deploykf_auth": {"dex": {"connectors": [connector]}}}});
        std::fs::write(&file, serde_json::to_string(&v).unwrap()).unwrap();
        let mut inputs = common::cases_inputs(&["idp-groups"], &[]);
        inputs.files.push(file);
        let errors = errors_of(&inputs);
        let warnings = if errors.is_empty() {
            warnings_of(&inputs)
        } else {
            vec![]
        };
        (errors, warnings)
    };
    let github = |config: Value| json!({"type": "github", "id": "github", "name": "GitHub", "config": config});
    let (errors, _) = with(github(json!({"clientID": "x", "loadAllGroups": true})));
    assert!(
        errors.len() == 1
            && errors[0].starts_with("error[rule]: `deploykf_core.deploykf_auth.dex.connectors[0].config.loadAllGroups`: with `idpGroup` members"),
        "{errors:?}"
    );
    // An allow-list of organisations: their teams only.
    let (errors, _) = with(github(
        json!({"clientID": "x", "loadAllGroups": true, "orgs": [{"name": "example"}]}),
    ));
    assert_eq!(errors, Vec::<String>::new());
    // Several connectors that may issue groups: warned.
    let inputs = common::cases_inputs(&["idp-groups"], &[]);
    let mut two = inputs.clone();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("two.yaml");
    let v = json!({"deploykf_core": {"deploykf_auth": {"dex": {"connectors": [
        {"type": "oidc", "id": "corp", "name": "Corp", "config": {"issuer": "https://login.example.org"}},
        {"type": "ldap", "id": "ldap", "name": "LDAP", "config": {"host": "ldap.example.org:636"}},
    ]}}}});
    std::fs::write(&file, serde_json::to_string(&v).unwrap()).unwrap();
    two.files.push(file);
    let w = warnings_of(&two);
    assert!(
        w.iter()
            .any(|w| w.contains("whichever of dex's connectors (corp, ldap) issued the group")),
        "{w:?}"
    );
}

/// With `idpGroups.connector`, a group counts only from the bound dex
/// connector: dex puts the connector's id in `federated_claims` (for the
/// `federated:id` scope, dex v2.45.1 `server/oauth2.go:368-372`), and the
/// profile's policies match it. A GitHub organisation named like the
/// admins' group, from a second connector, opens nothing.
#[test]
pub(crate) fn regression_issue_28_idp_groups_bound_to_a_connector() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("two.yaml");
    let v = json!({"deploykf_core": {
        "deploykf_auth": {"dex": {"connectors": [
            {"type": "oidc", "id": "corp", "name": "Corp", "config": {"issuer": "https://login.example.org", "insecureEnableGroups": true}},
            {"type": "github", "id": "github", "name": "GitHub", "config": {"clientID": "x", "orgs": [{"name": "example"}]}},
        ]}},
    }});
    std::fs::write(&file, serde_json::to_string(&v).unwrap()).unwrap();
    // For every profile, or for `research` alone.
    let every = "deploykf_core.deploykf_profiles_generator.idpGroups.connector=corp";
    let one = "deploykf_core.deploykf_profiles_generator.profiles[0].idpConnector=corp";
    for (ambient, key) in [(false, every), (true, every), (false, one), (true, one)] {
        let mut sets = vec![key];
        if ambient {
            sets.push("deploykf_dependencies.istio.dataplaneMode=ambient");
        }
        let mut inputs = common::cases_inputs(&["apps", "idp-groups"], &sets);
        inputs.files.push(file.clone());
        let t = render_inputs(&inputs);
        let cfg = super::edge::oauth2_proxy_cfg(&t);
        assert!(
            cfg["scope"].as_str().unwrap().contains("federated:id"),
            "{cfg:?}"
        );
        let from_as = |who: &str, connector: &str, path: &str| {
            let mut req =
                crate::idp_groups::via_gateway(&t, who, Some(&["ml-platform-admins"]), &[], path)
                    .expect("through the gateway");
            let (_, claims) = req.token.as_mut().expect("the forwarded token");
            claims["federated_claims"] = json!({"connector_id": connector, "user_id": "1"});
            crate::idp_groups::into_profile(&t, "research", &req)
        };
        let from = |connector: &str, path: &str| from_as("mallory@example.com", connector, path);
        for path in ["/api/v1/x", "/notebook/research/nb-1/"] {
            assert!(
                from("corp", path),
                "ambient {ambient}: corp's group refused at {path}"
            );
            assert!(
                !from("github", path),
                "ambient {ambient}: github's group admitted at {path}"
            );
        }
        // bob is a member by email without notebooks; the group's
        // notebook access spares him only from the bound connector.
        let nb = "/notebook/research/nb-1/";
        assert!(from_as("bob@example.com", "corp", nb), "ambient {ambient}");
        assert!(
            !from_as("bob@example.com", "github", nb),
            "ambient {ambient}: bob's notebooks through github's group"
        );
        assert!(
            from_as("bob@example.com", "github", "/api/v1/x"),
            "ambient {ambient}: bob is a member"
        );
        // Several connectors: warned while a profile takes groups from any.
        let w = warnings_of(&inputs);
        let warned = w
            .iter()
            .any(|w| w.contains("whichever of dex's connectors"));
        assert_eq!(warned, key == one, "{key}: {w:?}");
    }
    // A connector dex does not have: refused, naming the key.
    let mut inputs = common::cases_inputs(
        &["idp-groups"],
        &["deploykf_core.deploykf_profiles_generator.idpGroups.connector=nope"],
    );
    inputs.files.clear();
    inputs
        .files
        .extend(common::cases_inputs(&["idp-groups"], &[]).files);
    let e = errors_of(&inputs);
    assert!(
        e.len() == 1
            && e[0].starts_with("error[rule]: `deploykf_core.deploykf_profiles_generator.idpGroups.connector`: `nope` is not the id of one of dex's connectors (corp)"),
        "{e:?}"
    );
}

// ---------------------------------------------------------------------
// KServe's host-based URLs on the platform Gateway (issue 27)

/// The VirtualService KServe writes for InferenceService `name` in `ns`
/// behind `gateway`, with `ingressDomain` `domain` and Kubeflow's
/// `pathTemplate` (kserve/kserve v0.16.0
/// `pkg/controller/v1beta1/inferenceservice/reconcilers/ingress/ingress_reconciler.go`
/// `createIngress`, :456-696: hosts :503-505,562-565,661; the predict route
/// :538-551 with `createHTTPMatchRequest` :378-429; the path route
/// :611-659; `constants.HostRegExp`, `pkg/constants/constants.go:696-713`).
fn kserve_virtual_service(name: &str, ns: &str, domain: &str, gateway: &str) -> Value {
    let quote = |h: &str| format!("^{}(?::\\d{{1,5}})?$", h.replace('.', "\\."));
    let local = "knative-serving/knative-local-gateway";
    let internal = format!("{name}.{ns}.svc.cluster.local");
    let host = format!("{name}-{ns}.{domain}");
    let path = format!("/serving/{ns}/{name}");
    let dest = json!([{"destination": {"host": "knative-local-gateway.istio-system.svc.cluster.local", "port": {"number": 80}}, "weight": 100}]);
    let set = json!({"request": {"set": {"Host": format!("{name}-predictor.{ns}.svc.cluster.local"), "KServe-Isvc-Name": name, "KServe-Isvc-Namespace": ns}}});
    json!({
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "hosts": [internal, host, domain],
            "gateways": [local, "mesh", gateway],
            "http": [
                {"match": [
                    {"authority": {"regex": format!("^{}(\\.{ns}(\\.svc(\\.cluster\\.local)?)?)?(?::\\d{{1,5}})?$", name)}, "gateways": [local, "mesh"]},
                    {"authority": {"regex": quote(&host)}, "gateways": [gateway]}
                 ], "route": dest, "headers": set},
                {"match": [
                    {"uri": {"prefix": format!("{path}/")}, "authority": {"regex": quote(domain)}, "gateways": [gateway]},
                    {"uri": {"exact": path}, "authority": {"regex": quote(domain)}, "gateways": [gateway]}
                 ], "rewrite": {"uri": "/"}, "route": dest, "headers": set}
            ]
        }
    })
}

/// `gateway.wildcardHost`: the Gateway serves `*.<hostname>`, its
/// certificate names it, and the tenant-routes policy admits KServe's
/// VirtualService for an InferenceService of the namespace (host-based and
/// path-based URLs) while refusing a host or an authority that is not the
/// VirtualService's own (`<its name>-<its namespace>.<hostname>`). Failed
/// before issue 27's wildcard: the key did not exist, and KServe's
/// VirtualService was refused on the platform Gateway (below, without it).
#[test]
pub(crate) fn regression_issue_27_kserve_host_based_urls_on_the_wildcard_host() {
    const HOST: &str = "kubeflow.example.com";
    const GATEWAY: &str = "kubeflow/kubeflow-gateway";
    let t = case("kserve-wildcard");
    let gw = one(
        &t,
        "manifests/deploykf-core/deploykf-istio-gateway/Gateway.yaml",
    );
    assert_eq!(
        gw["spec"]["servers"][0]["hosts"],
        json!([format!("*/{HOST}"), format!("*/*.{HOST}")])
    );
    let cert = one(
        &t,
        "manifests/deploykf-core/deploykf-istio-gateway/Certificate.yaml",
    );
    assert!(cert["spec"]["dnsNames"]
        .as_array()
        .unwrap()
        .contains(&json!(format!("*.{HOST}"))));
    // The CEL the model above stands for (evaluated with cel-python on
    // the same shapes: tests/cel/tenant_routes.py).
    let policy = &t["manifests/deploykf-core/deploykf-istio-gateway/ValidatingAdmissionPolicy-tenant-routes.yaml"][0];
    let var = |n: &str| {
        (policy["spec"]["variables"].as_array().unwrap().iter())
            .find(|v| v["name"] == n)
            .map(|v| v["expression"].as_str().unwrap().to_string())
    };
    assert_eq!(
        var("tenantHost").as_deref(),
        Some(
            "object.metadata.name + \"-\" + object.metadata.namespace + \".kubeflow.example.com\""
        )
    );
    assert_eq!(
        var("tenantAuthority").as_deref(),
        Some("\"^\" + object.metadata.name + \"-\" + object.metadata.namespace + \"\\\\.kubeflow\\\\.example\\\\.com(?::\\\\d{1,5})?$\"")
    );
    let isvc = kserve_virtual_service("sklearn", "team-1", HOST, GATEWAY);
    assert!(admitted(&t, &isvc), "KServe's VirtualService refused");
    // Another namespace's host (`sklearn-team-2`), named from team-1.
    let mut theft = isvc.clone();
    theft["spec"]["hosts"][1] = json!(format!("sklearn-team-2.{HOST}"));
    assert!(!admitted(&t, &theft), "another namespace's host admitted");
    // Its own host in the list, but a route by another authority.
    let mut other = isvc.clone();
    other["spec"]["http"][0]["match"][1]["authority"]["regex"] = json!(".*");
    assert!(!admitted(&t, &other), "a route by any authority admitted");
    let mut platform = isvc.clone();
    platform["spec"]["http"][0]["match"][1]["authority"]["regex"] =
        json!(format!("^{}(?::\\d{{1,5}})?$", HOST.replace('.', "\\.")));
    assert!(
        !admitted(&t, &platform),
        "a route for the platform host admitted"
    );
    // A cluster-local host of another namespace.
    let mut local = isvc.clone();
    local["spec"]["hosts"][0] = json!("x.team-2.svc.cluster.local");
    assert!(
        !admitted(&t, &local),
        "another namespace's local host admitted"
    );
    // Without the key the platform Gateway takes no host-based route.
    let without = case("kubeflow");
    let isvc = kserve_virtual_service("sklearn", "team-1", "deploykf.example.com", GATEWAY);
    assert!(!admitted(&without, &isvc));
}

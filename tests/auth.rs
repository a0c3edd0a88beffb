//! The login edge on parsed documents: no secret in any output, pods meet
//! Pod Security "restricted", the Istio install declares the provider, and
//! (on the rendered policies and routes) no client can make an app see an
//! identity that was not verified.

mod common;

use common::root;
use meshgen::values::ValueInputs;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

const GW_DIR: &str = "manifests/deploykf-core/deploykf-istio-gateway";
const AUTH_DIR: &str = "manifests/deploykf-core/deploykf-auth";

type Tree = BTreeMap<String, Vec<Value>>;

fn render_files(files: Vec<PathBuf>, sets: &[&str]) -> Tree {
    render_inputs(&common::inputs(files, sets))
}

fn render_inputs(inputs: &ValueInputs) -> Tree {
    let g = common::generate(inputs);
    g.files
        .iter()
        .filter(|(p, _)| p.ends_with(".yaml"))
        .map(|(p, text)| (p.clone(), common::docs(text)))
        .collect()
}

fn case(name: &str) -> Tree {
    render_inputs(&common::case_inputs(name))
}

fn one(t: &Tree, path: &str) -> Value {
    let docs = t.get(path).unwrap_or_else(|| panic!("{path} not rendered"));
    assert_eq!(docs.len(), 1, "{path}");
    docs[0].clone()
}

fn all_docs(t: &Tree) -> impl Iterator<Item = (&String, &Value)> {
    t.iter().flat_map(|(p, d)| d.iter().map(move |x| (p, x)))
}

// ---------------------------------------------------------------------
// No secret in the output

#[test]
fn no_secret_object_and_no_literal_secret_in_any_golden_tree() {
    let mut files = 0;
    let golden = root().join("tests/golden");
    for rel in common::walk(&golden) {
        let entry = golden.join(rel);
        let text = std::fs::read_to_string(&entry).unwrap();
        files += 1;
        for line in text.lines() {
            assert!(
                line.trim() != "kind: Secret",
                "{}: renders a Secret",
                entry.display()
            );
        }
        // deployKF's plain-text defaults for client and cookie secrets.
        for literal in ["bbbbbbbbbbbbbbbb", "cccccccccccccccc"] {
            assert!(!text.contains(literal), "{}: {literal}", entry.display());
        }
        assert!(
            !text.contains("BEGIN RSA PRIVATE KEY") && !text.contains("$2y$"),
            "{}",
            entry.display()
        );
    }
    assert!(files > 500, "only {files} files under tests/golden");
}

#[test]
fn secrets_are_referenced_by_name_and_generated_in_the_cluster() {
    let t = render_files(vec![], &[]);
    let o = one(&t, &format!("{AUTH_DIR}/Deployment-oauth2-proxy.yaml"));
    let env = &o["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(
        env,
        &json!([
            {"name": "OAUTH2_PROXY_CLIENT_SECRET", "valueFrom": {"secretKeyRef": {"name": "generated--dex-oauth2-proxy-client", "key": "client_secret"}}},
            {"name": "OAUTH2_PROXY_COOKIE_SECRET", "valueFrom": {"secretKeyRef": {"name": "generated--oauth2-proxy-cookie-secret", "key": "cookie_secret"}}},
        ])
    );
    // dex reads the same client secret, and password hashes, from the environment.
    let dex = one(&t, &format!("{AUTH_DIR}/ConfigMap-dex.yaml"));
    let cfg = common::docs(dex["data"]["config.yaml"].as_str().unwrap()).remove(0);
    assert_eq!(cfg["issuer"], "https://deploykf.example.com/dex");
    assert_eq!(
        cfg["staticClients"][0]["secretEnv"],
        "MESHGEN_DEX_CLIENT_SECRET_OAUTH2_PROXY"
    );
    assert!(cfg["staticClients"][0].get("secret").is_none());
    assert_eq!(cfg["staticPasswords"][0]["email"], "admin@example.com");
    assert_eq!(
        cfg["staticPasswords"][0]["hashFromEnv"],
        "MESHGEN_DEX_PASSWORD_HASH_0"
    );
    assert!(cfg["staticPasswords"][0].get("hash").is_none());
    // One Job per generated Secret; its Role reads only that Secret.
    let jobs: Vec<&String> = t
        .keys()
        .filter(|p| p.starts_with(&format!("{AUTH_DIR}/Job-")))
        .collect();
    assert_eq!(jobs.len(), 5, "{jobs:?}");
    let admin = &t[&format!("{AUTH_DIR}/Job-generate-generated--dex-password-admin.yaml")];
    let kinds: Vec<&str> = admin.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding", "Job"]);
    assert_eq!(
        admin[1]["rules"][0],
        json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["generated--dex-password-admin"], "verbs": ["get"]})
    );
    let job = &admin[3]["spec"]["template"]["spec"];
    let env: BTreeMap<&str, &str> = job["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["value"].as_str().unwrap()))
        .collect();
    assert_eq!(env["SECRET"], "generated--dex-password-admin");
    assert_eq!(env["KEY"], "password_hash");
    assert_eq!(env["KIND"], "password");
    assert_eq!(job["initContainers"][0]["name"], "hash");
    // The script never changes a Secret that exists.
    let script = job["containers"][0]["command"][2].as_str().unwrap();
    assert!(script.contains("left unchanged"), "{script}");
}

#[test]
fn deploykf_sample_values_generate_their_secrets() {
    let sample = root().join("../shared/reference/deploykf-0.1.5/sample-values.yaml");
    let t = render_files(vec![sample], &[]);
    let secrets: Vec<String> = all_docs(&t)
        .filter(|(_, d)| d["kind"] == "Job")
        .map(|(_, d)| {
            d["spec"]["template"]["spec"]["containers"][0]["env"][2]["value"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for s in [
        "generated--dex-oauth2-proxy-client",
        "generated--dex-minio-console-client",
        "generated--dex-argo-server-client",
        "generated--oauth2-proxy-cookie-secret",
    ] {
        assert!(
            secrets.iter().any(|x| x == s),
            "{s} not generated: {secrets:?}"
        );
    }
}

// ---------------------------------------------------------------------
// Pod Security "restricted"

fn assert_restricted(path: &str, pod: &Value) {
    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true, "{path}");
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault", "{path}");
    assert!(
        pod.get("hostNetwork").is_none() && pod.get("hostPID").is_none(),
        "{path}"
    );
    for v in pod["volumes"].as_array().into_iter().flatten() {
        assert!(v.get("hostPath").is_none(), "{path}: hostPath");
    }
    let containers = pod["containers"]
        .as_array()
        .into_iter()
        .chain(pod["initContainers"].as_array())
        .flatten();
    for c in containers {
        let sc = &c["securityContext"];
        assert_eq!(
            sc["allowPrivilegeEscalation"], false,
            "{path} {}",
            c["name"]
        );
        assert_eq!(
            sc["capabilities"]["drop"],
            json!(["ALL"]),
            "{path} {}",
            c["name"]
        );
        assert!(sc["capabilities"].get("add").is_none(), "{path}");
        assert_ne!(sc["privileged"], true, "{path}");
        assert_ne!(sc["runAsUser"], 0, "{path}");
    }
}

#[test]
fn every_pod_meets_pod_security_restricted() {
    for name in ["apps", "auth-external-issuer", "auth-m2m"] {
        let t = case(name);
        let mut pods = 0;
        for (path, d) in all_docs(&t) {
            let pod = match d["kind"].as_str().unwrap_or_default() {
                "Deployment" | "Job" | "DaemonSet" | "StatefulSet" => {
                    &d["spec"]["template"]["spec"]
                }
                _ => continue,
            };
            assert_restricted(path, pod);
            pods += 1;
        }
        assert!(pods >= 2, "{name}: {pods} pods");
    }
}

// ---------------------------------------------------------------------
// Istio integration

#[test]
fn the_managed_istio_declares_the_provider_next_to_the_users() {
    let t = render_files(
        vec![],
        &["deploykf_dependencies.istio.meshConfig.extensionProviders[0].name=opa,deploykf_dependencies.istio.meshConfig.extensionProviders[0].envoyExtAuthzGrpc.service=opa.opa.svc.cluster.local,deploykf_dependencies.istio.meshConfig.extensionProviders[0].envoyExtAuthzGrpc.port=9191"],
    );
    let values = one(&t, "manifests/deploykf-dependencies/istio/values.yaml");
    let daemon = &values["istio-daemon"];
    let providers = daemon["meshConfig"]["extensionProviders"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = providers
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["opa", "deploykf-oauth2-proxy"]);
    assert_eq!(
        providers[1]["envoyExtAuthzHttp"]["service"],
        "oauth2-proxy.deploykf-auth.svc.cluster.local"
    );
    assert_eq!(daemon["env"]["PILOT_JWT_ENABLE_REMOTE_JWKS"], "hybrid");
    let login = one(&t, &format!("{GW_DIR}/AuthorizationPolicy-login.yaml"));
    assert_eq!(login["spec"]["action"], "CUSTOM");
    assert_eq!(login["spec"]["provider"]["name"], "deploykf-oauth2-proxy");
}

#[test]
fn an_external_issuer_replaces_dex() {
    let t = case("auth-external-issuer");
    assert!(!t.keys().any(|p| p.contains("dex")), "dex rendered");
    let ra = one(&t, &format!("{GW_DIR}/RequestAuthentication-jwt.yaml"));
    let rule = &ra["spec"]["jwtRules"][0];
    assert_eq!(rule["issuer"], "https://login.example.org/realms/ml");
    assert_eq!(
        rule["jwksUri"],
        "https://login.example.org/realms/ml/protocol/openid-connect/certs"
    );
    assert_eq!(rule["audiences"], json!(["kubeflow"]));
    assert_eq!(
        rule["outputClaimToHeaders"],
        json!([{"header": "x-user-email", "claim": "email"}, {"header": "x-user-groups", "claim": "groups"}])
    );
    let cm = one(&t, &format!("{AUTH_DIR}/ConfigMap-oauth2-proxy.yaml"));
    let cfg = cm["data"]["oauth2_proxy.cfg"].as_str().unwrap();
    assert!(
        cfg.contains("oidc_issuer_url = \"https://login.example.org/realms/ml\"\n"),
        "{cfg}"
    );
    assert!(cfg.contains("skip_provider_button = false\n"), "{cfg}");
    assert!(!cfg.contains("skip_oidc_discovery"), "{cfg}");
    let values = one(&t, "manifests/deploykf-dependencies/istio/values.yaml");
    assert_eq!(
        values["istio-daemon"]["meshConfig"]["extensionProviders"][0]["name"],
        "corp-oauth2-proxy"
    );
    // istiod fetches an external issuer's keys itself.
    assert!(values["istio-daemon"].get("env").is_none());
    // Profiles trust the configured header.
    let team = &t["manifests/deploykf-core/deploykf-profiles-generator/team-1.yaml"];
    let access = team
        .iter()
        .find(|d| d["metadata"]["name"] == "profile-access")
        .unwrap();
    assert_eq!(
        access["spec"]["rules"][0]["when"][0]["key"],
        "request.headers[x-user-email]"
    );
}

#[test]
fn machine_identities_are_verified_like_users() {
    let t = case("auth-m2m");
    let ra = one(&t, &format!("{GW_DIR}/RequestAuthentication-jwt.yaml"));
    let m2m = &ra["spec"]["jwtRules"][1];
    assert_eq!(
        m2m["issuer"],
        "https://kubernetes.default.svc.cluster.local"
    );
    assert_eq!(m2m["audiences"], json!(["istio-ingressgateway"]));
    assert_eq!(
        m2m["outputClaimToHeaders"],
        json!([{"header": "kubeflow-userid", "claim": "sub"}])
    );
    let crb = one(
        &t,
        &format!("{AUTH_DIR}/ClusterRoleBinding-m2m-discovery.yaml"),
    );
    assert_eq!(
        crb["roleRef"]["name"],
        "system:service-account-issuer-discovery"
    );
    // The connector's secret comes from the environment.
    let dex = one(&t, &format!("{AUTH_DIR}/Deployment-dex.yaml"));
    let env = dex["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    assert!(env.iter().any(|e| e["name"] == "GITHUB_CLIENT_SECRET"
        && e["valueFrom"]["secretKeyRef"]["name"] == "github-oauth-app"));
}

// ---------------------------------------------------------------------
// Zero trust

#[test]
fn namespaces_are_strict_and_deny_by_default() {
    let t = case("apps");
    for dir in [GW_DIR, AUTH_DIR] {
        let ns = all_docs(&t)
            .find(|(p, d)| p.starts_with(dir) && d["kind"] == "Namespace")
            .unwrap()
            .1["metadata"]["name"]
            .clone();
        let strict = all_docs(&t).any(|(_, d)| {
            d["kind"] == "PeerAuthentication"
                && d["metadata"]["namespace"] == ns
                && d["spec"].get("selector").is_none()
                && d["spec"]["mtls"]["mode"] == "STRICT"
        });
        assert!(strict, "{ns}: no namespace-wide STRICT mTLS");
        let deny = all_docs(&t).any(|(_, d)| {
            d["kind"] == "AuthorizationPolicy"
                && d["metadata"]["namespace"] == ns
                && d["spec"] == json!({})
        });
        assert!(deny, "{ns}: no deny-by-default policy");
    }
    // PERMISSIVE only on the gateway pods.
    let permissive: Vec<String> = all_docs(&t)
        .filter(|(_, d)| d["kind"] == "PeerAuthentication" && d["spec"]["mtls"]["mode"] != "STRICT")
        .map(|(_, d)| d["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(permissive, ["deploykf-gateway"]);
    let mesh = one(&t, &format!("{GW_DIR}/PeerAuthentication-mesh.yaml"));
    assert_eq!(mesh["metadata"]["namespace"], "istio-system");
    // Each app lets the gateway (only) reach its pods' port.
    let dash = &t[&format!("{GW_DIR}/app-dashboard.yaml")];
    assert_eq!(dash.len(), 1);
    assert_eq!(dash[0]["metadata"]["namespace"], "kubeflow");
    assert_eq!(
        dash[0]["spec"]["rules"],
        json!([{"from": [{"source": {"principals": ["cluster.local/ns/deploykf-istio-gateway/sa/deploykf-gateway"]}}], "to": [{"operation": {"ports": ["8082"]}}]}])
    );
    let minio = &t[&format!("{GW_DIR}/app-minio-console.yaml")];
    assert_eq!(minio[0]["kind"], "VirtualService");
    assert_eq!(
        minio[0]["spec"]["hosts"],
        json!(["minio-console.deploykf.example.com"])
    );
    assert_eq!(
        minio[1]["spec"]["selector"]["matchLabels"],
        json!({"app": "minio"})
    );
}

#[test]
fn with_your_own_istio_every_rendered_namespace_is_strict() {
    let t = case("own-istio");
    assert!(!t
        .keys()
        .any(|p| p.ends_with("PeerAuthentication-mesh.yaml")));
    let namespaces: Vec<&Value> = all_docs(&t)
        .filter(|(_, d)| d["kind"] == "Namespace")
        .map(|(_, d)| &d["metadata"]["name"])
        .collect();
    assert!(namespaces.len() >= 4, "{namespaces:?}");
    for ns in namespaces {
        let strict = all_docs(&t).any(|(_, d)| {
            d["kind"] == "PeerAuthentication"
                && &d["metadata"]["namespace"] == ns
                && d["spec"].get("selector").is_none()
                && d["spec"]["mtls"]["mode"] == "STRICT"
        });
        assert!(strict, "{ns}: no namespace-wide STRICT mTLS");
    }
}

// ---------------------------------------------------------------------
// A request through the rendered gateway policies: who can make an app
// see which identity.

/// Istio's string match: exact, `prefix*`, `*suffix`, or `*` (present).
fn istio_match(pattern: &str, value: Option<&str>) -> bool {
    let Some(v) = value else { return false };
    if pattern == "*" {
        return !v.is_empty();
    }
    if let Some(p) = pattern.strip_suffix('*') {
        return v.starts_with(p);
    }
    if let Some(s) = pattern.strip_prefix('*') {
        return v.ends_with(s);
    }
    v == pattern
}

fn any_match(list: &Value, value: Option<&str>) -> bool {
    list.as_array()
        .unwrap()
        .iter()
        .any(|p| istio_match(p.as_str().unwrap(), value))
}

#[derive(Clone, Debug)]
struct Request {
    host: &'static str,
    path: &'static str,
    /// Headers as the client sent them.
    headers: BTreeMap<String, String>,
    /// A token in `Authorization`: (issuer, claims), valid.
    token: Option<(String, BTreeMap<String, String>)>,
}

/// What an attribute of the request is, for AuthorizationPolicy.
fn attribute(req: &Request, principal: Option<&str>, key: &str) -> Option<String> {
    if let Some(h) = key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'))
    {
        return req.headers.get(h).cloned();
    }
    if let Some(c) = key
        .strip_prefix("request.auth.claims[")
        .and_then(|k| k.strip_suffix(']'))
    {
        return principal
            .and(req.token.as_ref())
            .and_then(|(_, claims)| claims.get(c).cloned());
    }
    panic!("attribute {key} not modelled");
}

fn rule_matches(rule: &Value, req: &Request, principal: Option<&str>) -> bool {
    if let Some(from) = rule.get("from") {
        let ok = from.as_array().unwrap().iter().any(|f| {
            let s = &f["source"];
            let mut ok = true;
            if let Some(l) = s.get("requestPrincipals") {
                ok &= any_match(l, principal);
            }
            if let Some(l) = s.get("notRequestPrincipals") {
                ok &= !any_match(l, principal);
            }
            assert!(s.get("principals").is_none(), "not modelled");
            ok
        });
        if !ok {
            return false;
        }
    }
    if let Some(to) = rule.get("to") {
        let ok = to.as_array().unwrap().iter().any(|t| {
            let o = &t["operation"];
            let mut ok = true;
            if let Some(l) = o.get("hosts") {
                ok &= any_match(l, Some(req.host));
            }
            if let Some(l) = o.get("notHosts") {
                ok &= !any_match(l, Some(req.host));
            }
            if let Some(l) = o.get("paths") {
                ok &= any_match(l, Some(req.path));
            }
            if let Some(l) = o.get("notPaths") {
                ok &= !any_match(l, Some(req.path));
            }
            ok
        });
        if !ok {
            return false;
        }
    }
    for w in rule["when"].as_array().into_iter().flatten() {
        let v = attribute(req, principal, w["key"].as_str().unwrap());
        if let Some(l) = w.get("values") {
            if !any_match(l, v.as_deref()) {
                return false;
            }
        }
        if let Some(l) = w.get("notValues") {
            if any_match(l, v.as_deref()) {
                return false;
            }
        }
    }
    true
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Denied,
    /// Reached an upstream with these identity headers.
    Upstream(String, BTreeMap<String, String>),
}

/// The gateway's filter chain on `req`, as Istio orders it: CUSTOM
/// (ext-authz), then JWT authentication, then DENY policies, then the
/// route (with its header removals). The ext-authz server is assumed to
/// allow without adding a token (the worst case: a session oauth2-proxy
/// accepts but whose token is missing); JWT authentication is modelled
/// conservatively: a claim the token lacks leaves the client's header as
/// it was.
fn through_gateway(t: &Tree, req: &Request) -> Outcome {
    let ra = one(t, &format!("{GW_DIR}/RequestAuthentication-jwt.yaml"));
    let deny = one(t, &format!("{GW_DIR}/AuthorizationPolicy-require-jwt.yaml"));
    let mut headers = req.headers.clone();
    let mut principal = None;
    if let Some((iss, claims)) = &req.token {
        let rule = ra["spec"]["jwtRules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["issuer"] == iss.as_str());
        if let Some(rule) = rule {
            principal = Some(format!(
                "{iss}/{}",
                claims.get("sub").cloned().unwrap_or_default()
            ));
            for o in rule["outputClaimToHeaders"].as_array().unwrap() {
                if let Some(v) = claims.get(o["claim"].as_str().unwrap()) {
                    headers.insert(o["header"].as_str().unwrap().into(), v.clone());
                }
            }
        }
    }
    let mut seen = req.clone();
    seen.headers = headers.clone();
    if req.token.is_some() {
        seen.headers
            .insert("authorization".into(), "Bearer x".into());
    }
    for rule in deny["spec"]["rules"].as_array().unwrap() {
        if rule_matches(rule, &seen, principal.as_deref()) {
            return Outcome::Denied;
        }
    }
    // Route: the main host's VirtualService, or an app's own.
    // Routing ignores the port in `:authority`.
    let host = req.host.split(':').next().unwrap();
    let mut routes = Vec::new();
    for (_, d) in all_docs(t) {
        if d["kind"] == "VirtualService"
            && d["spec"]["hosts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h == host)
        {
            routes.extend(d["spec"]["http"].as_array().unwrap().iter().cloned());
        }
    }
    let Some(route) = routes.iter().find(|r| {
        let prefix = r["match"][0]["uri"]["prefix"].as_str().unwrap();
        req.path.starts_with(prefix)
    }) else {
        return Outcome::Denied; // 404
    };
    for h in route["headers"]["request"]["remove"]
        .as_array()
        .into_iter()
        .flatten()
    {
        headers.remove(h.as_str().unwrap());
    }
    let identity: BTreeMap<String, String> = headers
        .into_iter()
        .filter(|(k, _)| k == "kubeflow-userid" || k == "kubeflow-groups")
        .collect();
    Outcome::Upstream(route["name"].as_str().unwrap().into(), identity)
}

fn claims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Replays every scenario through the tree; returns what went wrong.
fn impersonation_violations(t: &Tree) -> Vec<String> {
    let dex = "https://deploykf.example.com/dex".to_string();
    let k8s = "https://kubernetes.default.svc.cluster.local".to_string();
    let spoof = claims(&[
        ("kubeflow-userid", "admin@example.com"),
        ("kubeflow-groups", "admins"),
    ]);
    let alice = claims(&[("sub", "alice"), ("email", "alice@example.com")]);
    let no_email = claims(&[("sub", "bob")]);
    let sa = claims(&[("sub", "system:serviceaccount:team-1:default-editor")]);
    let targets = [
        ("deploykf.example.com", "/", "dashboard", false),
        ("deploykf.example.com", "/status/x", "status", true),
        ("deploykf.example.com", "/dex/auth", "dex", true),
        (
            "deploykf.example.com",
            "/oauth2/start",
            "oauth2-proxy",
            true,
        ),
        (
            "minio-console.deploykf.example.com",
            "/",
            "minio-console",
            false,
        ),
        (
            "minio-console.deploykf.example.com:8443",
            "/",
            "minio-console",
            false,
        ),
    ];
    let mut bad = Vec::new();
    let mut checked = 0;
    for (host, path, app, public) in targets {
        for (token, headers) in [
            None,
            Some((dex.clone(), alice.clone())),
            Some((dex.clone(), no_email.clone())),
            Some((k8s.clone(), sa.clone())),
            Some(("https://evil.example.com".to_string(), alice.clone())),
        ]
        .into_iter()
        .flat_map(|t| [(t.clone(), spoof.clone()), (t, BTreeMap::new())])
        {
            let req = Request {
                host,
                path,
                headers: headers.clone(),
                token: token.clone(),
            };
            let out = through_gateway(t, &req);
            let verified = matches!(&token, Some((i, _)) if *i == dex || *i == k8s);
            checked += 1;
            match (&out, public) {
                // Public routes: reachable by anyone, with no identity at all.
                (Outcome::Upstream(name, ids), true) => {
                    if name != app || !ids.is_empty() {
                        bad.push(format!("{req:?} reached {name} with {ids:?}"));
                    }
                }
                // Protected routes: only with a verified token, and then
                // only the token's identity.
                (Outcome::Upstream(name, ids), false) => {
                    let Some((iss, c)) = token.as_ref().filter(|_| verified) else {
                        bad.push(format!("{req:?} reached {name} unverified"));
                        continue;
                    };
                    let expected = if *iss == dex {
                        c.get("email")
                    } else {
                        c.get("sub")
                    };
                    // ... and the token names the user.
                    if name != app
                        || expected.is_none()
                        || ids.get("kubeflow-userid") != expected
                        || ids.get("kubeflow-groups").map(String::as_str) == Some("admins")
                    {
                        bad.push(format!("{req:?} reached {name} as {ids:?}"));
                    }
                }
                (Outcome::Denied, true) => bad.push(format!("{req:?} denied on a public route")),
                (Outcome::Denied, false) => {
                    // A forged identity header is refused outright; a
                    // verified user who sends none gets through.
                    let named = match &token {
                        Some((i, c)) if *i == dex => c.contains_key("email"),
                        Some((i, _)) if *i == k8s => true,
                        _ => false,
                    };
                    if named && headers.is_empty() {
                        bad.push(format!("{req:?}: a verified user was denied"));
                    }
                }
            }
        }
    }
    assert_eq!(checked, 60);
    bad
}

fn apps_and_m2m() -> Tree {
    render_inputs(&common::cases_inputs(&["apps", "auth-m2m"], &[]))
}

#[test]
fn a_client_can_not_impersonate_a_user() {
    let t = apps_and_m2m();
    let bad = impersonation_violations(&t);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // Routes on the main host: most specific prefix first.
    let routes = one(&t, &format!("{GW_DIR}/VirtualService-routes.yaml"));
    let names: Vec<&str> = routes["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dex", "oauth2-proxy", "status", "dashboard"]);
}

/// The replay notices when any one safeguard is missing.
#[test]
fn the_impersonation_replay_notices_a_missing_safeguard() {
    let base = apps_and_m2m();
    let deny = format!("{GW_DIR}/AuthorizationPolicy-require-jwt.yaml");
    let routes = format!("{GW_DIR}/VirtualService-routes.yaml");
    // (what is removed, the tree without it)
    let mut mutants: Vec<(&str, Tree)> = Vec::new();
    let mut t = base.clone();
    t.get_mut(&routes).unwrap()[0]["spec"]["http"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .for_each(|r| {
            r.as_object_mut().unwrap().remove("headers");
        });
    mutants.push(("header removal on public routes", t));
    for (i, what) in [
        (0, "the rule requiring a verified token"),
        (1, "the rule requiring the user claim"),
        (
            3,
            "the rule refusing a groups header the token did not fill",
        ),
    ] {
        let mut t = base.clone();
        t.get_mut(&deny).unwrap()[0]["spec"]["rules"]
            .as_array_mut()
            .unwrap()
            .remove(i);
        mutants.push((what, t));
    }
    for (what, t) in mutants {
        assert!(
            !impersonation_violations(&t).is_empty(),
            "without {what} the replay still passes"
        );
    }
}

// ---------------------------------------------------------------------
// Destination side: a request at a workload's sidecar (inbound), after the
// gateway or another pod sent it. Semantics modelled, with their source
// (istio/istio at the fetched HEAD):
// - PeerAuthentication: the workload's own (selector) policy wins over the
//   namespace's, which wins over the root namespace's
//   (`pilot/pkg/security/authn/policy_applier.go`, ComposePeerAuthentication);
//   STRICT refuses plaintext, and only mTLS gives a source principal.
// - AuthorizationPolicy applies from the root namespace and the workload's
//   namespace when its selector matches the pod's labels, or it has none
//   (`pilot/pkg/model/authorization.go`, ListAuthorizationPolicies).
// - DENY before ALLOW; with any ALLOW policy applied, a request no rule
//   matches is denied; `spec: {}` is an ALLOW policy without rules, so it
//   denies everything (`pilot/pkg/security/authz/builder/builder.go`, one
//   Envoy RBAC filter per action).
// - `ports` is the workload's port (`model.go` -> `destPortGenerator` ->
//   `permissionDestinationPort`, Envoy RBAC `destination_port`);
//   `principals`/`namespaces` come from the peer certificate
//   (`source.principal`, `source.namespace` in `model.go`).
// - A route's `headers.request` is applied by the router after the
//   gateway's filters (`pilot/pkg/networking/core/route/route.go`,
//   TranslateRoute sets `request_headers_to_add`/`_to_remove`), so what a
//   VirtualService sets reaches the destination unchecked.

const ROOT_NS: &str = "istio-system";
const GATEWAY_SA: &str = "cluster.local/ns/deploykf-istio-gateway/sa/deploykf-gateway";

#[derive(Clone, Debug)]
struct Pod {
    namespace: String,
    labels: BTreeMap<String, String>,
    /// The port the container listens on.
    port: u16,
}

#[derive(Clone, Debug)]
struct Inbound {
    pod: Pod,
    /// The caller's SPIFFE identity; `None`: plaintext (no sidecar).
    principal: Option<String>,
    method: &'static str,
    path: String,
    headers: BTreeMap<String, String>,
}

fn selects(spec: &Value, labels: &BTreeMap<String, String>) -> bool {
    match spec.get("selector") {
        None => true,
        Some(s) => s["matchLabels"]
            .as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str()),
    }
}

fn peer_mode(t: &Tree, pod: &Pod) -> String {
    let mut best: Option<(u8, String)> = None;
    for (_, d) in all_docs(t) {
        let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
        if d["kind"] != "PeerAuthentication" || !selects(&d["spec"], &pod.labels) {
            continue;
        }
        let rank = match (ns == pod.namespace, d["spec"].get("selector").is_some()) {
            (true, true) => 3,
            (true, false) => 2,
            (false, false) if ns == ROOT_NS => 1,
            _ => continue,
        };
        let mode = d["spec"]["mtls"]["mode"].as_str().unwrap_or("PERMISSIVE").to_string();
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, mode));
        }
    }
    best.map_or("PERMISSIVE".into(), |(_, m)| m)
}

fn source_namespace(principal: Option<&str>) -> Option<String> {
    principal
        .and_then(|p| p.strip_prefix("cluster.local/ns/"))
        .and_then(|p| p.split('/').next())
        .map(String::from)
}

fn inbound_rule_matches(rule: &Value, req: &Inbound) -> bool {
    let principal = req.principal.as_deref();
    let src_ns = source_namespace(principal);
    let from_ok = rule.get("from").is_none_or(|from| {
        from.as_array().unwrap().iter().any(|f| {
            let s = &f["source"];
            s.get("principals").is_none_or(|l| any_match(l, principal))
                && s.get("namespaces").is_none_or(|l| any_match(l, src_ns.as_deref()))
                && s.get("requestPrincipals").is_none()
        })
    });
    let port = req.pod.port.to_string();
    let to_ok = rule.get("to").is_none_or(|to| {
        to.as_array().unwrap().iter().any(|t| {
            let o = &t["operation"];
            o.get("ports").is_none_or(|l| any_match(l, Some(&port)))
                && o.get("paths").is_none_or(|l| any_match(l, Some(&req.path)))
                && o.get("methods").is_none_or(|l| any_match(l, Some(req.method)))
                && o.get("hosts").is_none()
        })
    });
    let when_ok = rule["when"].as_array().into_iter().flatten().all(|w| {
        let key = w["key"].as_str().unwrap();
        let v = if key == "source.namespace" {
            src_ns.clone()
        } else if let Some(h) = key
            .strip_prefix("request.headers[")
            .and_then(|k| k.strip_suffix(']'))
        {
            req.headers.get(h).cloned()
        } else {
            panic!("attribute {key} not modelled at the sidecar")
        };
        w.get("values").is_none_or(|l| any_match(l, v.as_deref()))
            && w.get("notValues").is_none_or(|l| !any_match(l, v.as_deref()))
    });
    from_ok && to_ok && when_ok
}

/// Whether the sidecar of `req.pod` lets `req` through to the container.
fn at_sidecar(t: &Tree, req: &Inbound) -> bool {
    if req.principal.is_none() && peer_mode(t, &req.pod) == "STRICT" {
        return false;
    }
    let mut allow_policies = 0;
    let mut allowed = false;
    for (_, d) in all_docs(t) {
        let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
        if d["kind"] != "AuthorizationPolicy"
            || !(ns == req.pod.namespace || ns == ROOT_NS)
            || !selects(&d["spec"], &req.pod.labels)
        {
            continue;
        }
        let rules = d["spec"]["rules"].as_array().cloned().unwrap_or_default();
        let hit = rules.iter().any(|r| inbound_rule_matches(r, req));
        match d["spec"]["action"].as_str().unwrap_or("ALLOW") {
            "DENY" if hit => return false,
            "ALLOW" => {
                allow_policies += 1;
                allowed |= hit;
            }
            _ => {}
        }
    }
    allow_policies == 0 || allowed
}

/// A VirtualService as the API server sees it: does an admission policy
/// refuse it? The rendered ValidatingAdmissionPolicy is read for its
/// header list and its binding's namespaces; its CEL expression is checked
/// to test `set`, `add` and `remove` on both route levels
/// (`the_identity_header_guard_reads_every_header_operation`).
fn admitted(t: &Tree, vs: &Value) -> bool {
    let ns = vs["metadata"]["namespace"].as_str().unwrap();
    for (_, d) in all_docs(t) {
        if d["kind"] != "ValidatingAdmissionPolicy" {
            continue;
        }
        let name = &d["metadata"]["name"];
        let Some((_, b)) = all_docs(t).find(|(_, b)| {
            b["kind"] == "ValidatingAdmissionPolicyBinding" && &b["spec"]["policyName"] == name
        }) else {
            continue;
        };
        let exempt = b["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["operator"] == "NotIn" && e["values"].as_array().unwrap().iter().any(|v| v == ns));
        if exempt {
            continue;
        }
        let list: Vec<String> = serde_json::from_str(
            d["spec"]["variables"][0]["expression"].as_str().unwrap(),
        )
        .unwrap();
        let touches = |h: &Value| {
            let r = &h["request"];
            ["set", "add"]
                .iter()
                .flat_map(|o| r[o].as_object().into_iter().flatten().map(|(k, _)| k.clone()))
                .chain(r["remove"].as_array().into_iter().flatten().map(|v| v.as_str().unwrap().to_string()))
                .any(|k| list.contains(&k.to_ascii_lowercase()))
        };
        for r in vs["spec"]["http"].as_array().into_iter().flatten() {
            if touches(&r["headers"])
                || r["route"].as_array().into_iter().flatten().any(|d| touches(&d["headers"]))
            {
                return false;
            }
        }
    }
    true
}

/// The identity headers the gateway writes for a verified dex user
/// (`outputClaimToHeaders` of the gateway's RequestAuthentication).
fn gateway_identity(t: &Tree, email: &str) -> BTreeMap<String, String> {
    let ra = one(t, &format!("{GW_DIR}/RequestAuthentication-jwt.yaml"));
    let rule = &ra["spec"]["jwtRules"][0];
    rule["outputClaimToHeaders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["claim"] == "email")
        .map(|o| (o["header"].as_str().unwrap().to_string(), email.to_string()))
        .collect()
}

/// A verified user's request through a tenant's VirtualService route: the
/// route's header operations run after the gateway's authorization.
fn through_tenant_route(headers: &BTreeMap<String, String>, route: &Value) -> BTreeMap<String, String> {
    let mut h = headers.clone();
    for level in std::iter::once(&route["headers"]).chain(
        route["route"].as_array().into_iter().flatten().map(|d| &d["headers"]),
    ) {
        for (k, v) in level["request"]["set"].as_object().into_iter().flatten() {
            h.insert(k.to_ascii_lowercase(), v.as_str().unwrap().to_string());
        }
        for (k, v) in level["request"]["add"].as_object().into_iter().flatten() {
            h.insert(k.to_ascii_lowercase(), v.as_str().unwrap().to_string());
        }
        for k in level["request"]["remove"].as_array().into_iter().flatten() {
            h.remove(&k.as_str().unwrap().to_ascii_lowercase());
        }
    }
    h
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    claims(pairs)
}

fn pod(ns: &str, l: &[(&str, &str)], port: u16) -> Pod {
    Pod {
        namespace: ns.into(),
        labels: labels(l),
        port,
    }
}

fn inbound(p: &Pod, principal: Option<&str>, method: &'static str, path: &str, user: Option<&str>) -> Inbound {
    Inbound {
        pod: p.clone(),
        principal: principal.map(String::from),
        method,
        path: path.into(),
        headers: user
            .map(|u| claims(&[("kubeflow-userid", u)]))
            .unwrap_or_default(),
    }
}

fn apps_and_teams() -> Tree {
    render_inputs(&common::cases_inputs(&["apps", "multi-team"], &[]))
}

/// Replays the destination-side scenarios; returns what went wrong.
fn destination_violations(t: &Tree) -> Vec<String> {
    let mut bad = Vec::new();
    let mut expect = |what: &str, req: &Inbound, want: bool| {
        if at_sidecar(t, req) != want {
            bad.push(format!("{what}: {} expected, {req:?}", if want { "allowed" } else { "denied" }));
        }
    };
    // Gateway -> app pods. The dashboard's Service maps 80 -> 8082
    // (targetPort given); minio's console Service 9090 reaches the pods on
    // 9001 (no targetPort in the values: meshgen cannot know the pod port).
    let dashboard = pod("kubeflow", &[("app", "centraldashboard")], 8082);
    let minio = pod("minio", &[("app", "minio")], 9001);
    let minio_api = pod("minio", &[("app", "minio-api")], 9000);
    let status = pod("status", &[("app", "statuspage")], 8080);
    let gw = Some(GATEWAY_SA);
    for (name, p) in [("dashboard", &dashboard), ("minio-console", &minio), ("status", &status)] {
        expect(&format!("gateway -> {name} pod"), &inbound(p, gw, "GET", "/", Some("alice@example.com")), true);
        expect(
            &format!("a tenant pod -> {name} pod"),
            &inbound(p, Some("cluster.local/ns/kf-research/sa/default-editor"), "GET", "/", None),
            false,
        );
    }
    // The dashboard's policy names its pod port: another port of that pod
    // stays closed to the gateway.
    let mut other_port = dashboard.clone();
    other_port.port = 9090;
    expect("gateway -> dashboard pod, another port", &inbound(&other_port, gw, "GET", "/", None), false);
    // A selector keeps the policy on its pods: a neighbour in minio's
    // namespace keeps its callers.
    expect(
        "a neighbour's caller -> minio API pod",
        &inbound(&minio_api, Some("cluster.local/ns/ml/sa/trainer"), "GET", "/", None),
        true,
    );
    // Profiles: the gateway with a member's verified identity reaches the
    // profile; a pod of another profile never does, whatever it claims.
    let research = pod("kf-research", &[("app", "nb")], 8888);
    let analytics = pod("kf-analytics", &[("app", "nb")], 8888);
    let alice = "alice@example.com";
    let admin = "ml-platform-admin@example.com";
    expect("gateway as a member -> its profile", &inbound(&research, gw, "GET", "/", Some(alice)), true);
    expect("gateway as a non-member -> a profile", &inbound(&analytics, gw, "GET", "/", Some(alice)), false);
    expect(
        "a pod of kf-research -> kf-analytics, claiming its owner",
        &inbound(&analytics, Some("cluster.local/ns/kf-research/sa/default-editor"), "GET", "/", Some(admin)),
        false,
    );
    expect(
        "a pod of kf-research -> kf-research",
        &inbound(&research, Some("cluster.local/ns/kf-research/sa/default-editor"), "GET", "/", None),
        true,
    );
    expect("plaintext -> a profile", &inbound(&research, None, "GET", "/", Some(alice)), false);
    // Only STRICT mTLS keeps a caller without a sidecar off the paths
    // every mesh workload may probe.
    expect("plaintext -> a profile's probe path", &inbound(&research, None, "GET", "/healthz", None), false);
    expect("plaintext -> minio console", &inbound(&minio, None, "GET", "/", Some(alice)), false);
    // Kubeflow parity (profile_controller.go, getAuthorizationPolicy).
    let kfp_ui = Some("cluster.local/ns/kubeflow/sa/ml-pipeline-ui");
    let nb_ctl = Some("cluster.local/ns/kubeflow/sa/notebook-controller-service-account");
    let activator = Some("cluster.local/ns/knative-serving/sa/controller");
    expect("Pipelines UI for a member", &inbound(&research, kfp_ui, "GET", "/artifacts", Some(alice)), true);
    expect("Pipelines UI for a non-member", &inbound(&analytics, kfp_ui, "GET", "/artifacts", Some(alice)), false);
    for path in ["/healthz", "/metrics", "/wait-for-drain"] {
        expect(&format!("Knative probe {path}"), &inbound(&research, activator, "GET", path, None), true);
    }
    expect("Knative's controller elsewhere", &inbound(&research, activator, "GET", "/api", None), false);
    let kernels = "/notebook/kf-research/nb/api/kernels";
    expect("notebook controller polls kernels", &inbound(&research, nb_ctl, "GET", kernels, None), true);
    expect("notebook controller POSTs kernels", &inbound(&research, nb_ctl, "POST", kernels, None), false);
    expect("notebook controller elsewhere", &inbound(&research, nb_ctl, "GET", "/notebook/kf-research/nb/lab", None), false);
    // A tenant's VirtualService bound to the gateway, which sets the
    // identity header on its route after the gateway verified alice.
    for (key, level) in [("set", "route"), ("add", "destination"), ("set", "destination")] {
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
            method: "GET",
            path: "/notebook/kf-research/x/".into(),
            headers: seen,
        };
        if at_sidecar(t, &req) {
            bad.push(format!("a tenant VirtualService ({key} on the {level}) made kf-analytics see {admin}"));
        }
    }
    bad
}

#[test]
fn the_destination_admits_only_verified_callers() {
    let t = apps_and_teams();
    let bad = destination_violations(&t);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The destination replay notices when any one safeguard is missing.
#[test]
fn the_destination_replay_notices_a_missing_safeguard() {
    let base = apps_and_teams();
    let mut mutants: Vec<(String, Tree)> = Vec::new();
    // Drop one document.
    for (path, what) in [
        (format!("{GW_DIR}/ValidatingAdmissionPolicy-identity-headers.yaml"), "the identity-header admission policy"),
        (format!("{GW_DIR}/app-minio-console.yaml"), "minio's app policy"),
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
    t.get_mut(&format!("{GW_DIR}/app-minio-console.yaml")).unwrap()[1]["spec"]
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
    let at = base[file].iter().position(|d| d["metadata"]["name"] == "profile-access").unwrap();
    for i in 0..base[file][at]["spec"]["rules"].as_array().unwrap().len() {
        let mut t = base.clone();
        t.get_mut(file).unwrap()[at]["spec"]["rules"].as_array_mut().unwrap().remove(i);
        mutants.push((format!("rule {i} of kf-research's profile-access"), t));
    }
    // A header missing from the admission policy's list.
    let mut t = base.clone();
    let vap = &mut t.get_mut(&format!("{GW_DIR}/ValidatingAdmissionPolicy-identity-headers.yaml")).unwrap()[0];
    vap["spec"]["variables"][0]["expression"] = json!("[\"kubeflow-groups\"]");
    mutants.push(("kubeflow-userid in the admission policy".into(), t));
    for (what, t) in mutants {
        assert!(!destination_violations(&t).is_empty(), "without {what} the replay still passes");
    }
}

#[test]
fn app_policies_match_the_pod_port_and_warn_without_selector() {
    let t = case("apps");
    let rules = |name: &str| t[&format!("{GW_DIR}/app-{name}.yaml")].last().unwrap()["spec"]["rules"].clone();
    // targetPort given: the pod port; none: no port list.
    assert_eq!(
        rules("dashboard"),
        json!([{"from": [{"source": {"principals": [GATEWAY_SA]}}], "to": [{"operation": {"ports": ["8082"]}}]}])
    );
    assert_eq!(rules("minio-console"), json!([{"from": [{"source": {"principals": [GATEWAY_SA]}}]}]));
    let mut session = meshgen::Session::default();
    meshgen::generate(&common::case_inputs("apps"), &mut session).unwrap();
    let warnings: Vec<String> = session
        .warnings
        .0
        .iter()
        .map(|w| w.display(&session.sources).to_string())
        .collect();
    let about = |key: &str| warnings.iter().any(|w| w.contains(key) && w.contains("no `selector`"));
    assert!(about("apps[0]"), "{warnings:?}");
    assert!(!about("apps[1]"), "{warnings:?}");
}

#[test]
fn the_identity_header_guard_reads_every_header_operation() {
    let t = case("apps");
    let docs = &t[&format!("{GW_DIR}/ValidatingAdmissionPolicy-identity-headers.yaml")];
    let vap = &docs[0]["spec"];
    assert_eq!(vap["failurePolicy"], "Fail");
    assert_eq!(vap["matchConstraints"]["resourceRules"][0]["resources"], json!(["virtualservices"]));
    assert_eq!(vap["variables"][0]["expression"], "[\"kubeflow-userid\", \"kubeflow-groups\"]");
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

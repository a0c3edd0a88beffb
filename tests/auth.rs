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
// Members by identity-provider group (issue 17): a request reaches a
// profile's workload through the gateway, and the profile namespace's
// sidecar decides by the verified token's groups claim.

const PG_DIR: &str = "manifests/deploykf-core/deploykf-profiles-generator";
const GATEWAY_PRINCIPAL: &str = "cluster.local/ns/deploykf-istio-gateway/sa/deploykf-gateway";

/// A request as a profile workload's sidecar receives it.
#[derive(Clone, Debug)]
struct Inbound {
    /// The peer's mTLS identity (STRICT mTLS in profile namespaces).
    principal: String,
    path: String,
    headers: BTreeMap<String, String>,
    /// The forwarded token: (issuer, claims with list values kept as lists).
    token: Option<(String, Value)>,
}

/// An attribute as the destination sidecar sees it: a header, or a claim
/// of a token one of the namespace's RequestAuthentications verified
/// (Istio adds the JWT filter only when a RequestAuthentication selects
/// the workload: pilot/pkg/security/authn/policy_applier.go, JwtFilter
/// returns nil without JWT rules, so no claim exists without one).
fn idp_attribute(req: &Inbound, claims: Option<&Value>, key: &str) -> Vec<String> {
    if let Some(h) = key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'))
    {
        return req.headers.get(h).into_iter().cloned().collect();
    }
    if let Some(c) = key
        .strip_prefix("request.auth.claims[")
        .and_then(|k| k.strip_suffix(']'))
    {
        // A list claim matches if one of its elements does: Istio's
        // requestClaimGenerator.extendedPrincipal
        // (pilot/pkg/security/authz/model/generator.go) builds a
        // MetadataListValueMatcher, a ListMatcher `OneOf`
        // (pilot/pkg/security/authz/matcher/metadata.go).
        return match claims.and_then(|c2| c2.get(c)) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
    }
    panic!("attribute {key} not modelled at the destination");
}

fn idp_any(list: &Value, values: &[String]) -> bool {
    values.iter().any(|v| any_match(list, Some(v)))
}

fn idp_rule_matches(rule: &Value, req: &Inbound, claims: Option<&Value>, ns_of_peer: &str) -> bool {
    if let Some(from) = rule.get("from") {
        let ok = from.as_array().unwrap().iter().any(|f| {
            let s = &f["source"];
            let mut ok = true;
            if let Some(l) = s.get("principals") {
                ok &= any_match(l, Some(&req.principal));
            }
            if let Some(l) = s.get("namespaces") {
                ok &= any_match(l, Some(ns_of_peer));
            }
            if let Some(l) = s.get("requestPrincipals") {
                let rp = claims.zip(req.token.as_ref()).map(|(c, (iss, _))| {
                    format!("{iss}/{}", c["sub"].as_str().unwrap_or_default())
                });
                ok &= any_match(l, rp.as_deref());
            }
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
            if let Some(l) = o.get("paths") {
                ok &= any_match(l, Some(&req.path));
            }
            if let Some(l) = o.get("notPaths") {
                ok &= !any_match(l, Some(&req.path));
            }
            ok
        });
        if !ok {
            return false;
        }
    }
    for w in rule["when"].as_array().into_iter().flatten() {
        let v = idp_attribute(req, claims, w["key"].as_str().unwrap());
        if let Some(l) = w.get("values") {
            if !idp_any(l, &v) {
                return false;
            }
        }
        if let Some(l) = w.get("notValues") {
            if idp_any(l, &v) {
                return false;
            }
        }
    }
    true
}

/// The sidecar of a workload in namespace `ns`: JWT verification by the
/// namespace's RequestAuthentications (a token of no listed issuer is
/// refused, one that verifies yields its claims), then DENY policies,
/// then ALLOW policies (when any exists, one must match). Policies here
/// have no selector, so each applies to every workload of the namespace.
fn into_profile(t: &Tree, ns: &str, req: &Inbound) -> bool {
    let docs: Vec<&Value> = t
        .iter()
        .filter(|(p, _)| p.starts_with(PG_DIR))
        .flat_map(|(_, d)| d.iter())
        .filter(|d| d["metadata"]["namespace"] == ns)
        .collect();
    let issuers: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "RequestAuthentication")
        .flat_map(|d| d["spec"]["jwtRules"].as_array().unwrap().iter())
        .collect();
    let mut claims = None;
    if let Some((iss, c)) = &req.token {
        if !issuers.is_empty() {
            if !issuers.iter().any(|r| r["issuer"] == iss.as_str()) {
                return false;
            }
            claims = Some(c);
        }
    }
    let peer_ns = req
        .principal
        .split("/ns/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_default()
        .to_string();
    let policies: Vec<&Value> = docs
        .iter()
        .copied()
        .filter(|d| d["kind"] == "AuthorizationPolicy")
        .collect();
    let rules = |action: &str| -> Vec<&Value> {
        policies
            .iter()
            .filter(|p| p["spec"]["action"].as_str().unwrap_or("ALLOW") == action)
            .flat_map(|p| p["spec"]["rules"].as_array().into_iter().flatten())
            .collect()
    };
    if rules("DENY")
        .iter()
        .any(|r| idp_rule_matches(r, req, claims, &peer_ns))
    {
        return false;
    }
    let allow = rules("ALLOW");
    allow.is_empty()
        || allow
            .iter()
            .any(|r| idp_rule_matches(r, req, claims, &peer_ns))
}

/// A browser login: the gateway verifies dex's token (`through_gateway`)
/// and forwards it when its rule says `forwardOriginalToken`; the
/// identity headers are the gateway's, the others the client's.
fn via_gateway(
    t: &Tree,
    email: &str,
    groups: Option<&[&str]>,
    forged: &[(&str, &str)],
    path: &str,
) -> Option<Inbound> {
    let dex = "https://deploykf.example.com/dex";
    let mut flat = claims(&[("sub", email), ("email", email)]);
    let mut full = json!({"sub": email, "email": email});
    if let Some(g) = groups {
        flat.insert("groups".into(), g.join(","));
        full["groups"] = json!(g);
    }
    let headers: BTreeMap<String, String> = forged
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let req = Request {
        host: "deploykf.example.com",
        path: "/",
        headers: headers.clone(),
        token: Some((dex.to_string(), flat)),
    };
    let Outcome::Upstream(_, identity) = through_gateway(t, &req) else {
        return None;
    };
    let ra = one(t, &format!("{GW_DIR}/RequestAuthentication-jwt.yaml"));
    let forwarded = ra["spec"]["jwtRules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["issuer"] == dex && r["forwardOriginalToken"] == true);
    let mut headers = headers;
    headers.extend(identity);
    Some(Inbound {
        principal: GATEWAY_PRINCIPAL.into(),
        path: path.into(),
        headers,
        token: forwarded.then(|| (dex.to_string(), full)),
    })
}

fn idp_tree() -> Tree {
    render_inputs(&common::cases_inputs(&["apps", "idp-groups"], &[]))
}

/// (who, the token's groups, headers the client sends, namespace, path,
/// admitted?)
type IdpCase<'a> = (
    &'a str,
    Option<&'a [&'a str]>,
    &'a [(&'a str, &'a str)],
    &'a str,
    String,
    bool,
);

/// Replays IdP-group scenarios against the `idp-groups` case; returns what
/// went wrong.
fn idp_group_violations(t: &Tree) -> Vec<String> {
    let api = "/api/v1/x";
    let nb = |ns: &str| format!("/notebook/{ns}/nb-1/");
    let forged: &[(&str, &str)] = &[
        ("groups", "ml-platform-admins"),
        ("kubeflow-groups", "ml-platform-admins"),
    ];
    let only_groups: &[(&str, &str)] = &[("groups", "ml-platform-admins")];
    let admins: &[&str] = &["ml-platform-admins"];
    let eu: &[&str] = &["staff", "ML Research (EU)"];
    let reviewers: &[&str] = &["model-reviewers"];
    let near: &[&str] = &["ml-platform-admins-x", "ML Research", "ml-platform-admin"];
    let cases: Vec<IdpCase> = vec![
        // A token with the group claim admits a member.
        (
            "carol@example.com",
            Some(admins),
            &[],
            "research",
            api.into(),
            true,
        ),
        (
            "carol@example.com",
            Some(admins),
            &[],
            "research",
            nb("research"),
            true,
        ),
        (
            "carol@example.com",
            Some(eu),
            &[],
            "research",
            api.into(),
            true,
        ),
        // notebooksAccess merged over the members naming the group.
        (
            "carol@example.com",
            Some(eu),
            &[],
            "research",
            nb("research"),
            true,
        ),
        (
            "carol@example.com",
            Some(reviewers),
            &[],
            "reviewers",
            api.into(),
            true,
        ),
        (
            "carol@example.com",
            Some(reviewers),
            &[],
            "reviewers",
            nb("reviewers"),
            false,
        ),
        (
            "carol@example.com",
            Some(reviewers),
            &[],
            "research",
            api.into(),
            false,
        ),
        // Forged group headers admit nobody.
        (
            "carol@example.com",
            None,
            forged,
            "research",
            api.into(),
            false,
        ),
        (
            "carol@example.com",
            None,
            only_groups,
            "research",
            api.into(),
            false,
        ),
        (
            "carol@example.com",
            Some(reviewers),
            only_groups,
            "research",
            api.into(),
            false,
        ),
        (
            "carol@example.com",
            Some(&[]),
            only_groups,
            "research",
            nb("research"),
            false,
        ),
        // Exact names only.
        (
            "carol@example.com",
            Some(near),
            &[],
            "research",
            api.into(),
            false,
        ),
        // Static members keep working, the most permissive access wins.
        ("bob@example.com", None, &[], "research", api.into(), true),
        (
            "bob@example.com",
            Some(admins),
            &[],
            "research",
            nb("research"),
            true,
        ),
        (
            "bob@example.com",
            None,
            &[],
            "research",
            nb("research"),
            false,
        ),
        (
            "admin@example.com",
            None,
            &[],
            "reviewers",
            nb("reviewers"),
            true,
        ),
    ];
    let mut bad = Vec::new();
    for (email, groups, headers, ns, path, want) in &cases {
        let got =
            via_gateway(t, email, *groups, headers, path).is_some_and(|r| into_profile(t, ns, &r));
        if got != *want {
            bad.push(format!(
                "{email} groups {groups:?} headers {headers:?} -> {ns}{path}: admitted {got}, expected {want}"
            ));
        }
    }
    // Only through the gateway: a pod of another profile with a member's
    // token is not admitted.
    let from_pod = Inbound {
        principal: "cluster.local/ns/reviewers/sa/default-editor".into(),
        path: api.into(),
        headers: BTreeMap::new(),
        token: Some((
            "https://deploykf.example.com/dex".into(),
            json!({"sub": "carol", "email": "carol@example.com", "groups": ["ml-platform-admins"]}),
        )),
    };
    if into_profile(t, "research", &from_pod) {
        bad.push("a pod of another profile was admitted by a token's groups".into());
    }
    bad
}

#[test]
fn idp_group_members_are_admitted_by_the_verified_claim_only() {
    let t = idp_tree();
    let bad = idp_group_violations(&t);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // RBAC: Group subjects named as the API server names them.
    let research = &t[&format!("{PG_DIR}/research.yaml")];
    let subjects = |name: &str| -> Value {
        research
            .iter()
            .find(|d| d["kind"] == "RoleBinding" && d["metadata"]["name"] == name)
            .map(|d| d["subjects"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        subjects("idp-groups-kubeflow-edit"),
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "oidc:ml-platform-admins"}])
    );
    assert_eq!(
        subjects("idp-groups-kubeflow-view"),
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "oidc:ML Research (EU)"}])
    );
    // bob: a user (view) and in a static group (view), edit only by IdP group.
    assert_eq!(
        subjects("members-kubeflow-view"),
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice@example.com"}, {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob@example.com"}])
    );
    // dex is asked for the groups scope, without which its ID token has no
    // `groups` claim (dex v2.39.1 server/oauth2.go newIDToken: `case scope
    // == scopeGroups: tok.Groups = claims.Groups`); oauth2-proxy sends the
    // ID token as `Authorization: Bearer` (v7.6.0
    // pkg/apis/options/legacy_options.go getAuthorizationHeader, claim
    // `id_token`), which the ext-authz provider passes upstream.
    let cm = one(&t, &format!("{AUTH_DIR}/ConfigMap-oauth2-proxy.yaml"));
    let cfg = cm["data"]["oauth2_proxy.cfg"].as_str().unwrap();
    assert!(
        cfg.contains("scope = \"openid email profile groups offline_access\"\n")
            && cfg.contains("set_authorization_header = true\n"),
        "{cfg}"
    );
    let values = one(&t, "manifests/deploykf-dependencies/istio/values.yaml");
    assert_eq!(
        values["istio-daemon"]["meshConfig"]["extensionProviders"][0]["envoyExtAuthzHttp"]
            ["headersToUpstreamOnAllow"],
        json!(["authorization"])
    );
}

/// The IdP-group replay notices when any one safeguard is missing.
#[test]
fn the_idp_group_replay_notices_a_missing_safeguard() {
    let base = idp_tree();
    let research = format!("{PG_DIR}/research.yaml");
    let find = |t: &mut Tree, kind: &str, name: &str| -> usize {
        t[&research]
            .iter()
            .position(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind}/{name}"))
    };
    let mut mutants: Vec<(&str, Tree)> = Vec::new();
    let mut t = base.clone();
    let i = find(&mut t, "RequestAuthentication", "idp-groups-jwt");
    t.get_mut(&research).unwrap().remove(i);
    mutants.push(("the profile's RequestAuthentication", t));
    let mut t = base.clone();
    let i = find(&mut t, "AuthorizationPolicy", "idp-groups");
    t.get_mut(&research).unwrap()[i]["spec"]["rules"][0]
        .as_object_mut()
        .unwrap()
        .remove("from");
    mutants.push(("the gateway principal of the group rule", t));
    let mut t = base.clone();
    t.get_mut(&research).unwrap()[i]["spec"]["rules"][0]["when"][0]["key"] =
        json!("request.headers[groups]");
    mutants.push(("the claim (a header instead)", t));
    let mut t = base.clone();
    let n = find(&mut t, "AuthorizationPolicy", "notebook-access");
    t.get_mut(&research).unwrap()[n]["spec"]["rules"][0]["when"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    mutants.push(("the groups clause of the notebook rule", t));
    let mut t = base.clone();
    t.get_mut(&format!("{GW_DIR}/RequestAuthentication-jwt.yaml"))
        .unwrap()[0]["spec"]["jwtRules"][0]["forwardOriginalToken"] = json!(false);
    mutants.push(("the gateway forwarding the token", t));
    for (what, t) in mutants {
        assert!(
            !idp_group_violations(&t).is_empty(),
            "without {what} the replay still passes"
        );
    }
}

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
    // One Job per generated Secret; its Role may create Secrets and read
    // none (a token Secret it created for another ServiceAccount could
    // otherwise be read back).
    let jobs: Vec<&String> = t
        .keys()
        .filter(|p| p.starts_with(&format!("{AUTH_DIR}/Job-")))
        .collect();
    assert_eq!(jobs.len(), 5, "{jobs:?}");
    let admin = &t[&format!("{AUTH_DIR}/Job-generate-generated--dex-password-admin.yaml")];
    let kinds: Vec<&str> = admin.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding", "Job"]);
    assert_eq!(
        admin[1]["rules"],
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}])
    );
    // Every Role of the auth component that names Secrets: no read verb.
    for (path, d) in all_docs(&t) {
        if d["kind"] == "Role" && path.contains("/Job-") {
            for r in d["rules"].as_array().unwrap() {
                assert_eq!(r["verbs"], json!(["create"]), "{path}");
            }
        }
    }
    // The image is pinned by digest.
    let image = admin[3]["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    let digest = image
        .split_once("@sha256:")
        .map(|x| x.1)
        .unwrap_or_default();
    assert!(
        digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
        "{image}"
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
    // The script never changes a Secret that exists, and never reads one:
    // it creates, and takes AlreadyExists as success.
    let script = job["containers"][0]["command"][2].as_str().unwrap();
    assert!(script.contains("left unchanged"), "{script}");
    assert!(script.contains("*AlreadyExists*"), "{script}");
    assert!(!script.contains(" get "), "{script}");
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
    // The cluster's keys come from meshgen's relay, over in-mesh HTTP.
    assert_eq!(
        m2m["jwksUri"],
        "http://jwks-relay.deploykf-auth.svc.cluster.local/openid/v1/jwks"
    );
    assert!(jwks_fetch(&t, m2m).is_ok(), "{:?}", jwks_fetch(&t, m2m));
    assert_eq!(
        m2m["outputClaimToHeaders"],
        json!([{"header": "kubeflow-userid", "claim": "sub"}])
    );
    // The relay reads the keys with its own ServiceAccount: discovery is
    // opened to unauthenticated clients only when asked (as this case does).
    let crb = one(
        &t,
        &format!("{AUTH_DIR}/ClusterRoleBinding-m2m-discovery.yaml"),
    );
    assert_eq!(
        crb["roleRef"]["name"],
        "system:service-account-issuer-discovery"
    );
    let plain = render_inputs(&common::cases_inputs(
        &["auth-m2m"],
        &["deploykf_core.deploykf_auth.m2m.allowAnonymousDiscovery=false"],
    ));
    assert!(!plain.contains_key(&format!("{AUTH_DIR}/ClusterRoleBinding-m2m-discovery.yaml")));
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
    // Mesh-wide STRICT (every workload of the mesh, not only ours) is
    // opt-in.
    assert!(!t.contains_key(&format!("{GW_DIR}/PeerAuthentication-mesh.yaml")));
    let opted = render_inputs(&common::cases_inputs(
        &["apps"],
        &["deploykf_dependencies.istio.meshWideStrictMtls=true"],
    ));
    let mesh = one(&opted, &format!("{GW_DIR}/PeerAuthentication-mesh.yaml"));
    assert_eq!(mesh["metadata"]["namespace"], "istio-system");
    assert_eq!(mesh["spec"], json!({"mtls": {"mode": "STRICT"}}));
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
    if key == "request.auth.audiences" {
        // The token's `aud` (one value in this model).
        return principal
            .and(req.token.as_ref())
            .and_then(|(_, claims)| claims.get("aud").cloned());
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

/// The gateway's filter chain on `req` at its HTTPS listener, as Istio
/// orders it (see `at_listener`): CUSTOM (ext-authz), then JWT
/// authentication, then DENY and ALLOW policies, then the route (with its
/// header removals). The ext-authz server is assumed to allow without
/// adding a token (the worst case: a session oauth2-proxy accepts but
/// whose token is missing); JWT authentication is modelled
/// conservatively: a claim the token lacks leaves the client's header as
/// it was.
fn through_gateway(t: &Tree, req: &Request) -> Outcome {
    match at_listener(t, req, gw_port(t, "https"), Session::Valid) {
        Edge::Upstream {
            route, identity, ..
        } => Outcome::Upstream(route, identity),
        _ => Outcome::Denied,
    }
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
    let alice = claims(&[
        ("sub", "alice"),
        ("email", "alice@example.com"),
        ("aud", "oauth2-proxy"),
    ]);
    let no_email = claims(&[("sub", "bob"), ("aud", "oauth2-proxy")]);
    let sa = claims(&[
        ("sub", "system:serviceaccount:team-1:default-editor"),
        ("aud", "istio-ingressgateway"),
    ]);
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
// The gateway's listeners (issue 14, point 1): which policies apply on
// which pod port, what the HTTP port answers, which VirtualServices each
// listener serves, and the gateway's hop to itself.
//
// Filter order on a gateway listener, as Istio builds it (istio/istio
// `pilot/pkg/networking/core/listener_builder.go`, the HTTP filters of a
// gateway's HCM: authz CUSTOM (ext_authz), then authn (jwt_authn, from
// RequestAuthentication), then authz DENY and ALLOW (RBAC)); the route
// (with its header changes) comes after every filter.
//
// Ports: an AuthorizationPolicy's `ports` become `destination.port`
// (istio/istio `pilot/pkg/security/authz/model/model.go`: `ports` and
// `notPorts` go through `destPortGenerator`, `generator.go`, into an
// Envoy RBAC `destination_port` permission, `permission.go`
// `permissionDestinationPort`), the local port of the downstream
// connection: on a gateway pod, the port its listener is bound to, i.e.
// the Gateway server's port (the pod port), never the Service port.

/// What a request at one of the gateway's listeners ends in.
#[derive(Debug, Clone, PartialEq)]
enum Edge {
    /// The route answered with a redirect to this URL.
    Redirect(String),
    /// oauth2-proxy (ext-authz) answered: a login redirect with its
    /// `Secure` CSRF cookie, or 401; on this pod port.
    Login(u16),
    /// Refused at the gateway (401, 403, 404, a reset connection).
    Denied(String),
    /// Reached an upstream route.
    Upstream {
        route: String,
        /// The pod port of the listener that served the route.
        port: u16,
        identity: BTreeMap<String, String>,
        /// The response carries Strict-Transport-Security.
        hsts: bool,
    },
}

/// What oauth2-proxy knows of the client when ext-authz asks it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Session {
    /// No session cookie: it answers with a login redirect (or 401).
    None,
    /// A valid session: it allows, and (worst case) adds no token.
    Valid,
}

fn gw_port(t: &Tree, which: &str) -> u16 {
    let name = if which == "http" {
        "Gateway-https-redirect.yaml"
    } else {
        "Gateway.yaml"
    };
    let g = one(t, &format!("{GW_DIR}/{name}"));
    g["spec"]["servers"][0]["port"]["number"].as_u64().unwrap() as u16
}

/// `rule` as it applies on pod port `port`: `to` entries whose
/// `ports`/`notPorts` exclude the port are dropped (and the port keys
/// removed from the rest), `destination.port` conditions decided; `None`
/// when the rule can not match on this port.
fn rule_at_port(rule: &Value, port: u16) -> Option<Value> {
    let p = port.to_string();
    let mut rule = rule.clone();
    if let Some(to) = rule.get("to").cloned() {
        let kept: Vec<Value> = to
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| {
                let o = &t["operation"];
                let listed = |k: &str| {
                    o.get(k)
                        .map(|l| l.as_array().unwrap().iter().any(|x| x == p.as_str()))
                };
                listed("ports").unwrap_or(true) && !listed("notPorts").unwrap_or(false)
            })
            .map(|t| {
                let mut t = t.clone();
                if let Some(o) = t["operation"].as_object_mut() {
                    o.remove("ports");
                    o.remove("notPorts");
                }
                t
            })
            .collect();
        if kept.is_empty() {
            return None;
        }
        rule["to"] = json!(kept);
    }
    if let Some(when) = rule.get("when").cloned() {
        let mut rest = Vec::new();
        for w in when.as_array().unwrap() {
            if w["key"] != "destination.port" {
                rest.push(w.clone());
                continue;
            }
            if let Some(l) = w.get("values") {
                if !any_match(l, Some(&p)) {
                    return None;
                }
            }
            if let Some(l) = w.get("notValues") {
                if any_match(l, Some(&p)) {
                    return None;
                }
            }
        }
        rule["when"] = json!(rest);
    }
    Some(rule)
}

/// The gateway's AuthorizationPolicies of one action.
fn gateway_policies<'a>(t: &'a Tree, action: &str) -> Vec<&'a Value> {
    all_docs(t)
        .map(|(_, d)| d)
        .filter(|d| {
            d["kind"] == "AuthorizationPolicy"
                && d["metadata"]["namespace"] == "deploykf-istio-gateway"
                && d["spec"].get("selector").is_some()
                && d["spec"]["action"].as_str().unwrap_or("ALLOW") == action
        })
        .collect()
}

fn policies_match(policies: &[&Value], req: &Request, principal: Option<&str>, port: u16) -> bool {
    policies.iter().any(|p| {
        p["spec"]["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| rule_at_port(r, port))
            .any(|r| rule_matches(&r, req, principal))
    })
}

/// A Gateway server's host (`namespace/dnsName`) admits a VirtualService
/// of `vs_ns` (the Gateway in `gw_ns`) for `host`: `*` any namespace, `.`
/// the Gateway's own (Istio's Gateway `hosts`).
fn server_admits(server_host: &str, gw_ns: &str, vs_ns: &str, host: &str) -> bool {
    let (ns, dns) = server_host.split_once('/').unwrap_or(("*", server_host));
    let ns_ok = match ns {
        "*" => true,
        "." => vs_ns == gw_ns,
        n => vs_ns == n,
    };
    let dns_ok = dns == "*"
        || dns == host
        || dns
            .strip_prefix("*.")
            .is_some_and(|s| host.ends_with(&format!(".{s}")));
    ns_ok && dns_ok
}

/// The HTTP routes a listener serves for `host`, in document order.
fn listener_routes(t: &Tree, gateway: &Value, host: &str) -> Vec<Value> {
    let gw_ns = gateway["metadata"]["namespace"].as_str().unwrap();
    let gw_name = gateway["metadata"]["name"].as_str().unwrap();
    let server_hosts: Vec<&str> = gateway["spec"]["servers"][0]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    let (mut routes, mut wildcard) = (Vec::new(), Vec::new());
    for (_, d) in all_docs(t) {
        if d["kind"] != "VirtualService" {
            continue;
        }
        let vs_ns = d["metadata"]["namespace"].as_str().unwrap();
        let bound = d["spec"]["gateways"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|g| {
                let g = g.as_str().unwrap();
                g == format!("{gw_ns}/{gw_name}") || (g == gw_name && vs_ns == gw_ns)
            });
        let hosts = d["spec"]["hosts"].as_array().unwrap();
        let exact = hosts.iter().any(|h| h == host);
        if (exact || hosts.iter().any(|h| h == "*"))
            && bound
            && server_hosts
                .iter()
                .any(|s| server_admits(s, gw_ns, vs_ns, host))
        {
            let r = d["spec"]["http"].as_array().unwrap().iter().cloned();
            if exact {
                routes.extend(r);
            } else {
                wildcard.extend(r);
            }
        }
    }
    // Envoy picks the most specific virtual host (domain) first: a
    // VirtualService naming the host shadows one for `*`.
    if routes.is_empty() {
        wildcard
    } else {
        routes
    }
}

/// A request at the gateway listener bound to pod port `port`.
fn at_listener(t: &Tree, req: &Request, port: u16, session: Session) -> Edge {
    at_listener_hop(t, req, port, session, 0)
}

fn at_listener_hop(t: &Tree, req: &Request, port: u16, session: Session, hops: u8) -> Edge {
    assert!(hops < 3, "the gateway relays to itself in a loop");
    let gateway = all_docs(t)
        .map(|(_, d)| d)
        .find(|d| {
            d["kind"] == "Gateway"
                && d["spec"]["servers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["port"]["number"] == port)
        })
        .unwrap_or_else(|| panic!("no Gateway listens on {port}"))
        .clone();
    let https = gateway["spec"]["servers"][0]["port"]["protocol"] == "HTTPS";
    // 1. CUSTOM: ext-authz (before any token is verified).
    let mut raw = req.clone();
    if req.token.is_some() {
        raw.headers
            .insert("authorization".into(), "Bearer x".into());
    }
    if policies_match(&gateway_policies(t, "CUSTOM"), &raw, None, port) && session == Session::None
    {
        return Edge::Login(port);
    }
    // 2. jwt_authn, 3. DENY and ALLOW.
    let (headers, principal) = match verify_token(t, req) {
        Ok(x) => x,
        Err(why) => return Edge::Denied(why),
    };
    let mut seen = req.clone();
    seen.headers = headers.clone();
    if req.token.is_some() {
        seen.headers
            .insert("authorization".into(), "Bearer x".into());
    }
    if policies_match(
        &gateway_policies(t, "DENY"),
        &seen,
        principal.as_deref(),
        port,
    ) {
        return Edge::Denied(format!("DENY on {port}"));
    }
    let allow = gateway_policies(t, "ALLOW");
    if !allow.is_empty() && !policies_match(&allow, &seen, principal.as_deref(), port) {
        return Edge::Denied(format!("no ALLOW on {port}"));
    }
    // 4. The route. Routing ignores the port in `:authority`.
    let host = req.host.split(':').next().unwrap();
    let routes = listener_routes(t, &gateway, host);
    let Some(route) = routes
        .iter()
        .find(|r| match r["match"][0]["uri"]["prefix"].as_str() {
            Some(prefix) => req.path.starts_with(prefix),
            None => true,
        })
    else {
        return Edge::Denied("404".into());
    };
    if let Some(r) = route.get("redirect") {
        let port = r["port"].as_u64().unwrap();
        let scheme = r["scheme"].as_str().unwrap();
        let default = (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
        let port = if default {
            String::new()
        } else {
            format!(":{port}")
        };
        return Edge::Redirect(format!("{scheme}://{host}{port}{}", req.path));
    }
    let dest = &route["route"][0]["destination"];
    let gw_host = one(t, &format!("{GW_DIR}/ServiceEntry.yaml"))["spec"]["hosts"][0].clone();
    if dest["host"] == gw_host {
        // The gateway's hop to itself (the HTTP listener relaying to HTTPS).
        return self_hop(
            t,
            req,
            dest["port"]["number"].as_u64().unwrap() as u16,
            session,
            hops,
        );
    }
    for h in route["headers"]["request"]["remove"]
        .as_array()
        .into_iter()
        .flatten()
    {
        headers_remove(&mut seen.headers, h.as_str().unwrap());
    }
    let hsts = https
        && route["headers"]["response"]["set"]["strict-transport-security"]
            .as_str()
            .is_some_and(|v| v.starts_with("max-age=") && v != "max-age=0");
    Edge::Upstream {
        route: route["name"].as_str().unwrap().into(),
        port,
        identity: seen
            .headers
            .into_iter()
            .filter(|(k, _)| k == "kubeflow-userid" || k == "kubeflow-groups")
            .collect(),
        hsts,
    }
}

fn headers_remove(h: &mut BTreeMap<String, String>, name: &str) {
    h.remove(name);
}

/// jwt_authn: the token (if any) verified against the RequestAuthentication;
/// (headers after `outputClaimToHeaders`, the request principal). A token
/// of an issuer no rule names is not verified and yields no principal.
fn verify_token(
    t: &Tree,
    req: &Request,
) -> Result<(BTreeMap<String, String>, Option<String>), String> {
    let mut headers = req.headers.clone();
    let Some((iss, claims)) = &req.token else {
        return Ok((headers, None));
    };
    let ra = one(t, &format!("{GW_DIR}/RequestAuthentication-jwt.yaml"));
    let Some(rule) = ra["spec"]["jwtRules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["issuer"] == iss.as_str())
    else {
        return Ok((headers, None));
    };
    // A token whose audience the rule does not list is invalid (401); no
    // `audiences` checks none (istio/istio
    // `pilot/pkg/security/authn/policy_applier.go`: `Audiences` copied to
    // the Envoy provider as they are).
    if let Some(auds) = rule.get("audiences").and_then(Value::as_array) {
        if !auds.is_empty()
            && !auds
                .iter()
                .any(|a| Some(a.as_str().unwrap()) == claims.get("aud").map(String::as_str))
        {
            return Err(format!(
                "401: audience {:?} not accepted",
                claims.get("aud")
            ));
        }
    }
    jwks_fetch(t, rule)?;
    for o in rule["outputClaimToHeaders"].as_array().unwrap() {
        if let Some(v) = claims.get(o["claim"].as_str().unwrap()) {
            headers.insert(o["header"].as_str().unwrap().into(), v.clone());
        }
    }
    let principal = format!("{iss}/{}", claims.get("sub").cloned().unwrap_or_default());
    Ok((headers, Some(principal)))
}

/// The gateway's hop to itself: a connection from the gateway pod to the
/// ServiceEntry's target port, as the HTTP listener's relay makes it.
fn self_hop(t: &Tree, req: &Request, public_port: u16, session: Session, hops: u8) -> Edge {
    let se = one(t, &format!("{GW_DIR}/ServiceEntry.yaml"));
    let p = se["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["number"] == public_port)
        .unwrap();
    let target = p["targetPort"].as_u64().unwrap() as u16;
    // The HTTPS listener speaks TLS: the hop must originate it, and verify
    // the certificate the listener serves (its Secret's CA, its name).
    let gateway = one(t, &format!("{GW_DIR}/Gateway.yaml"));
    let server = &gateway["spec"]["servers"][0];
    let host = se["spec"]["hosts"][0].as_str().unwrap();
    let tls = all_docs(t)
        .map(|(_, d)| d)
        .filter(|d| d["kind"] == "DestinationRule" && d["spec"]["host"] == host)
        .flat_map(|d| {
            d["spec"]["trafficPolicy"]["portLevelSettings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|s| s["port"]["number"] == public_port)
        .map(|s| s["tls"].clone());
    let Some(tls) = tls.filter(|t| t["mode"] == "SIMPLE") else {
        return Edge::Denied("the relay speaks plain text to the HTTPS listener".into());
    };
    if tls["insecureSkipVerify"] == true
        || tls["credentialName"] != server["tls"]["credentialName"]
        || !tls["subjectAltNames"]
            .as_array()
            .is_some_and(|l| l.iter().any(|n| n == host))
        || tls["sni"] != host
    {
        return Edge::Denied(format!(
            "the relay does not verify the gateway's certificate: {tls}"
        ));
    }
    // A PROXY protocol listener filter on every gateway listener expects a
    // PROXY header on each connection; the relay's connection has none.
    let proxy_protocol = all_docs(t).any(|(_, d)| {
        d["kind"] == "EnvoyFilter"
            && d["spec"]["configPatches"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| {
                    p["patch"]["value"]["listener_filters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|f| f["name"] == "envoy.filters.listener.proxy_protocol")
                })
    });
    if proxy_protocol {
        return Edge::Denied("the relay's connection carries no PROXY header".into());
    }
    at_listener_hop(t, req, target, session, hops + 1)
}

fn get(host: &'static str, path: &'static str) -> Request {
    Request {
        host,
        path,
        headers: BTreeMap::new(),
        token: None,
    }
}

/// A tenant's VirtualService bound to the gateway's HTTP listener: it
/// would serve its route without any login check (those apply only on
/// the HTTPS port), so the HTTP Gateway must not admit it.
fn with_tenant_http_route(t: &Tree) -> Tree {
    let mut t = t.clone();
    let http = one(&t, &format!("{GW_DIR}/Gateway-https-redirect.yaml"));
    let gw = format!(
        "{}/{}",
        http["metadata"]["namespace"].as_str().unwrap(),
        http["metadata"]["name"].as_str().unwrap()
    );
    t.insert(
        "tenant/VirtualService.yaml".into(),
        vec![json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "sneak", "namespace": "team-1"},
            "spec": {
                "gateways": [gw],
                "hosts": ["deploykf.example.com", "kubeflow.internal.example.net"],
                "http": [{
                    "name": "sneak",
                    "match": [{"uri": {"prefix": "/sneak"}}],
                    "route": [{"destination": {"host": "notebook.team-1.svc.cluster.local"}}],
                    "headers": {"request": {"set": {"kubeflow-userid": "admin@example.com"}}},
                }],
            },
        })],
    );
    t
}

/// Replays browser and SDK visits on the HTTP and HTTPS listeners;
/// returns what went wrong.
fn listener_violations(t: &Tree, redirect: bool) -> Vec<String> {
    let http = gw_port(t, "http");
    let https = gw_port(t, "https");
    let t = with_tenant_http_route(t);
    let mut bad = Vec::new();
    let hosts: [&'static str; 2] = if redirect {
        ["deploykf.example.com", "minio-console.deploykf.example.com"]
    } else {
        [
            "kubeflow.internal.example.net",
            "kubeflow.internal.example.net",
        ]
    };
    let paths = ["/", "/status/x", "/oauth2/callback", "/dex/auth", "/sneak"];
    for host in hosts {
        for path in paths {
            let req = get(host, path);
            let on_http = at_listener(&t, &req, http, Session::None);
            if path == "/sneak" {
                if matches!(on_http, Edge::Upstream { .. }) {
                    bad.push(format!(
                        "{req:?}: a tenant route on the HTTP port: {on_http:?}"
                    ));
                }
                continue;
            }
            if redirect {
                // The HTTP port only redirects: no login (its cookie is
                // `Secure`), no 403.
                let want = Edge::Redirect(format!("https://{host}{path}"));
                if on_http != want {
                    bad.push(format!("{req:?} on HTTP: {on_http:?}, want {want:?}"));
                }
            } else {
                // Relayed to HTTPS, where the login applies.
                let on_https = at_listener(&t, &req, https, Session::None);
                if on_http != on_https {
                    bad.push(format!(
                        "{req:?} on HTTP: {on_http:?}, on HTTPS {on_https:?}"
                    ));
                }
            }
            // An SDK client with a token on http:// is redirected too.
            let mut sdk = req.clone();
            sdk.token = Some((
                "https://deploykf.example.com/dex".into(),
                claims(&[
                    ("sub", "a"),
                    ("email", "a@example.com"),
                    ("aud", "oauth2-proxy"),
                ]),
            ));
            let out = at_listener(&t, &sdk, http, Session::None);
            if redirect && !matches!(out, Edge::Redirect(_)) {
                bad.push(format!("{sdk:?} on HTTP: {out:?}"));
            }
        }
    }
    // On HTTPS, a browser without a session logs in on the HTTPS port;
    // with one, it reaches the app, told to stay on HTTPS.
    let main = hosts[0];
    let login = at_listener(&t, &get(main, "/"), https, Session::None);
    if login != Edge::Login(https) {
        bad.push(format!("GET {main}/ on HTTPS without a session: {login:?}"));
    }
    let mut user = get(main, "/dex/auth");
    user.token = Some((
        format!(
            "{}/dex",
            if redirect {
                "https://deploykf.example.com"
            } else {
                "http://kubeflow.internal.example.net"
            }
        ),
        claims(&[
            ("sub", "a"),
            ("email", "a@example.com"),
            ("aud", "oauth2-proxy"),
        ]),
    ));
    match at_listener(&t, &user, https, Session::Valid) {
        Edge::Upstream { port, hsts, .. } if port == https && hsts == redirect => {}
        other => bad.push(format!(
            "{user:?} on HTTPS: {other:?} (HSTS expected: {redirect})"
        )),
    }
    bad
}

fn http_behind_proxy() -> Tree {
    case("http-behind-proxy")
}

#[test]
fn http_visits_are_redirected_and_logins_happen_on_https() {
    let t = apps_and_m2m();
    let bad = listener_violations(&t, true);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // With `tls.redirect: false` the HTTP port relays to HTTPS.
    let t = http_behind_proxy();
    let bad = listener_violations(&t, false);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn login_and_token_checks_name_the_https_pod_port_and_responses_carry_hsts() {
    let t = case("nonstandard-ports");
    let https = gw_port(&t, "https");
    for name in ["login", "require-jwt"] {
        let p = one(&t, &format!("{GW_DIR}/AuthorizationPolicy-{name}.yaml"));
        for r in p["spec"]["rules"].as_array().unwrap() {
            for to in r["to"].as_array().unwrap() {
                assert_eq!(
                    to["operation"]["ports"],
                    json!([https.to_string()]),
                    "{name}"
                );
            }
        }
    }
    let http = one(&t, &format!("{GW_DIR}/Gateway-https-redirect.yaml"));
    for h in http["spec"]["servers"][0]["hosts"].as_array().unwrap() {
        assert!(h.as_str().unwrap().starts_with("./"), "{h}");
    }
    let routes = one(&t, &format!("{GW_DIR}/VirtualService-routes.yaml"));
    for r in routes["spec"]["http"].as_array().unwrap() {
        assert_eq!(
            r["headers"]["response"]["set"]["strict-transport-security"], "max-age=31536000",
            "{r}"
        );
    }
    // Clients on plain HTTP get no HSTS.
    let t = http_behind_proxy();
    let routes = one(&t, &format!("{GW_DIR}/VirtualService-routes.yaml"));
    for r in routes["spec"]["http"].as_array().unwrap() {
        assert!(r["headers"].get("response").is_none(), "{r}");
    }
}

/// Removing any one safeguard of the listeners makes their replay fail.
#[test]
fn the_listener_replay_notices_a_missing_safeguard() {
    let base = apps_and_m2m();
    let mut mutants: Vec<(&str, Tree)> = Vec::new();
    for (name, what) in [
        ("login", "the HTTPS port on the login policy"),
        ("require-jwt", "the HTTPS port on the token policy"),
    ] {
        let mut t = base.clone();
        let p = format!("{GW_DIR}/AuthorizationPolicy-{name}.yaml");
        for r in t.get_mut(&p).unwrap()[0]["spec"]["rules"]
            .as_array_mut()
            .unwrap()
        {
            for to in r["to"].as_array_mut().unwrap() {
                to["operation"].as_object_mut().unwrap().remove("ports");
            }
        }
        mutants.push((what, t));
    }
    let mut t = base.clone();
    let p = format!("{GW_DIR}/Gateway-https-redirect.yaml");
    for h in t.get_mut(&p).unwrap()[0]["spec"]["servers"][0]["hosts"]
        .as_array_mut()
        .unwrap()
    {
        *h = json!(h.as_str().unwrap().replacen("./", "*/", 1));
    }
    mutants.push(("the HTTP listener's namespace restriction", t));
    let mut t = base.clone();
    let p = format!("{GW_DIR}/VirtualService-routes.yaml");
    for r in t.get_mut(&p).unwrap()[0]["spec"]["http"]
        .as_array_mut()
        .unwrap()
    {
        if let Some(h) = r["headers"].as_object_mut() {
            h.remove("response");
        }
    }
    mutants.push(("HSTS", t));
    for (what, t) in mutants {
        assert!(
            !listener_violations(&t, true).is_empty(),
            "without {what} the listener replay still passes"
        );
    }
}

// ---------------------------------------------------------------------
// Machine-to-machine keys (issue 14, point 3)

/// The gateway's SPIFFE principal in the rendered trees.
const GATEWAY_PRINCIPAL: &str = "cluster.local/ns/deploykf-istio-gateway/sa/deploykf-gateway";

/// Whether the gateway can fetch a jwtRule's keys (`Err`: why not).
///
/// With `PILOT_JWT_ENABLE_REMOTE_JWKS=hybrid` (meshgen's Istio), a
/// `jwksUri` whose host is a cluster of the mesh is fetched by Envoy
/// through that cluster, and only other URIs by istiod (istio/istio
/// `pilot/pkg/security/authn/policy_applier.go`, the branch on
/// `features.JwksFetchMode != jwt.Istiod`: `model.LookupCluster` found →
/// `RemoteJwks` with `HttpUpstreamType: Cluster`; else in hybrid mode
/// `BuildLocalJwks`). The gateway's outbound cluster for an in-mesh
/// Service carries no TLS of its own (mTLS at most, to a sidecar), so an
/// `https://` in-mesh URI (the API server's) can not be fetched; an
/// `http://` one must be a Service of the tree whose pods let the
/// gateway GET the path.
fn jwks_fetch(t: &Tree, rule: &Value) -> Result<(), String> {
    if rule.get("jwks").is_some() {
        return Ok(());
    }
    let Some(uri) = rule["jwksUri"].as_str() else {
        return Ok(()); // istiod discovers the keys of an external issuer
    };
    let (scheme, rest) = uri.split_once("://").unwrap();
    let (hostport, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let (host, port) = match hostport.split_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().unwrap()),
        None => (hostport, if scheme == "https" { 443 } else { 80 }),
    };
    let in_mesh = host.ends_with(".svc.cluster.local") || host.ends_with(".svc");
    if !in_mesh {
        return Ok(());
    }
    if scheme == "https" {
        return Err(format!(
            "401: keys at {uri}: in-mesh HTTPS, fetched by the gateway without TLS origination"
        ));
    }
    let mut labels = host.split('.');
    let (svc, ns) = (labels.next().unwrap(), labels.next().unwrap());
    let in_ns = |kind: &str, name: Option<&str>| {
        all_docs(t)
            .map(|(_, d)| d)
            .filter(|d| {
                d["kind"] == kind
                    && d["metadata"]["namespace"] == ns
                    && name.is_none_or(|n| d["metadata"]["name"] == n)
            })
            .cloned()
            .collect::<Vec<Value>>()
    };
    let unreachable = |why: &str| Err(format!("401: keys at {uri}: {why}"));
    let Some(service) = in_ns("Service", Some(svc)).pop() else {
        return unreachable("no such Service");
    };
    let Some(sp) = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == port)
        .cloned()
    else {
        return unreachable("no such Service port");
    };
    let selector = service["spec"]["selector"].as_object().unwrap().clone();
    let Some(deployment) = in_ns("Deployment", None).into_iter().find(|d| {
        let l = &d["spec"]["template"]["metadata"]["labels"];
        selector.iter().all(|(k, v)| &l[k] == v)
    }) else {
        return unreachable("no pods behind the Service");
    };
    let pod_labels = deployment["spec"]["template"]["metadata"]["labels"].clone();
    let target = match &sp["targetPort"] {
        Value::Number(n) => n.as_u64().unwrap() as u16,
        Value::String(name) => deployment["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .find(|p| p["name"] == name.as_str())
            .map(|p| p["containerPort"].as_u64().unwrap() as u16)
            .expect("a named targetPort the pods declare"),
        _ => port,
    };
    // The pods' sidecar (the namespace's allow-nothing among its
    // policies), as `at_sidecar` models it.
    let req = Inbound {
        pod: Pod {
            namespace: ns.into(),
            labels: pod_labels
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect(),
            port: target,
        },
        principal: Some(GATEWAY_PRINCIPAL.into()),
        method: "GET",
        path: path.clone(),
        headers: BTreeMap::new(),
        token: None,
    };
    let allowed = at_sidecar(t, &req);
    if !allowed {
        return unreachable("the pods' policies refuse the gateway's GET");
    }
    Ok(())
}

/// The diagnostics meshgen refuses `sets` (over the auth-m2m case) with.
fn refused(sets: &[&str]) -> Vec<String> {
    let inputs = common::cases_inputs(&["auth-m2m"], sets);
    let mut session = meshgen::Session::default();
    match meshgen::generate(&inputs, &mut session) {
        Ok(_) => Vec::new(),
        Err(e) => {
            e.0.iter()
                .map(|d| d.display(&session.sources).to_string())
                .collect()
        }
    }
}

fn m2m_violations(t: &Tree) -> Vec<String> {
    let https = gw_port(t, "https");
    let k8s = "https://kubernetes.default.svc.cluster.local";
    let dex = "https://deploykf.example.com/dex";
    let token = |iss: &str, pairs: &[(&str, &str)]| Some((iss.to_string(), claims(pairs)));
    let sub = "system:serviceaccount:team-1:pipeline-runner";
    // (request, the identity it must reach the app with, or None: refused)
    let cases: Vec<(Request, Option<&str>)> = vec![
        (
            Request {
                token: token(k8s, &[("sub", sub), ("aud", "istio-ingressgateway")]),
                ..get("deploykf.example.com", "/pipeline/apis/v2beta1/runs")
            },
            Some(sub),
        ),
        // A token minted for the API server (the default audience).
        (
            Request {
                token: token(k8s, &[("sub", sub), ("aud", k8s)]),
                ..get("deploykf.example.com", "/")
            },
            None,
        ),
        // The Pipelines SDK's tokens: on the Pipelines API only.
        (
            Request {
                token: token(
                    dex,
                    &[
                        ("sub", "a"),
                        ("email", "a@example.com"),
                        ("aud", "kubeflow-pipelines-sdk"),
                    ],
                ),
                ..get("deploykf.example.com", "/pipeline/apis/v2beta1/runs")
            },
            Some("a@example.com"),
        ),
        (
            Request {
                token: token(
                    dex,
                    &[
                        ("sub", "a"),
                        ("email", "a@example.com"),
                        ("aud", "kubeflow-pipelines-sdk"),
                    ],
                ),
                ..get("deploykf.example.com", "/")
            },
            None,
        ),
        (
            Request {
                token: token(
                    dex,
                    &[
                        ("sub", "a"),
                        ("email", "a@example.com"),
                        ("aud", "kubeflow-pipelines-sdk"),
                    ],
                ),
                ..get("minio-console.deploykf.example.com", "/")
            },
            None,
        ),
        (
            Request {
                token: token(
                    dex,
                    &[
                        ("sub", "a"),
                        ("email", "a@example.com"),
                        ("aud", "oauth2-proxy"),
                    ],
                ),
                ..get("minio-console.deploykf.example.com", "/")
            },
            Some("a@example.com"),
        ),
    ];
    let mut bad = Vec::new();
    for (req, want) in cases {
        let out = at_listener(t, &req, https, Session::None);
        match (&out, want) {
            (Edge::Upstream { identity, .. }, Some(w))
                if identity.get("kubeflow-userid").map(String::as_str) == Some(w) => {}
            (Edge::Denied(_), None) => {}
            _ => bad.push(format!("{req:?}: {out:?}, want {want:?}")),
        }
    }
    bad
}

// Members by identity-provider group (issue 17): a request reaches a
// profile's workload through the gateway, and the profile namespace's
// sidecar decides by the verified token's groups claim.

const PG_DIR: &str = "manifests/deploykf-core/deploykf-profiles-generator";

/// The sidecar of a workload in the profile namespace `ns`
/// ([`at_sidecar`]: JWT verification by the namespace's
/// RequestAuthentications, then DENY, then ALLOW policies).
fn into_profile(t: &Tree, ns: &str, req: &Inbound) -> bool {
    let mut req = req.clone();
    req.pod = pod(ns, &[("app", "notebook")], 8888);
    at_sidecar(t, &req)
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
    // dex's ID tokens name the client they were issued to (oauth2-proxy).
    let mut flat = claims(&[("sub", email), ("email", email), ("aud", "oauth2-proxy")]);
    let mut full = json!({"sub": email, "email": email, "aud": "oauth2-proxy"});
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
        // The profile namespace's pod is chosen by `into_profile`.
        pod: pod("", &[], 0),
        principal: Some(GATEWAY_PRINCIPAL.into()),
        method: "GET",
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
        pod: pod("", &[], 0),
        principal: Some("cluster.local/ns/reviewers/sa/default-editor".into()),
        method: "GET",
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
fn machine_tokens_need_the_clusters_keys_and_an_accepted_audience() {
    let t = apps_and_m2m();
    let bad = m2m_violations(&t);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // The relay: kubectl proxy of the two discovery paths, GET only, for
    // anyone (public keys), in plain text for istiod.
    let relay = &t[&format!("{AUTH_DIR}/jwks-relay.yaml")];
    let kinds: Vec<&str> = relay.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "Service",
            "Deployment",
            "AuthorizationPolicy",
            "PeerAuthentication"
        ]
    );
    let args = &relay[2]["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(args
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "--accept-paths=^(/openid/v1/jwks|/\\.well-known/openid-configuration)$"));
    assert_eq!(
        relay[3]["spec"]["rules"][0]["to"][0]["operation"]["methods"],
        json!(["GET"])
    );
    assert_restricted("jwks-relay", &relay[2]["spec"]["template"]["spec"]);
}

#[test]
fn machine_tokens_without_an_audience_or_with_in_mesh_https_keys_are_refused() {
    let dir = std::env::temp_dir().join(format!("meshgen-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let no_aud = dir.join("no-audience.yaml");
    std::fs::write(
        &no_aud,
        "deploykf_core: {deploykf_auth: {m2m: {audiences: []}}}\n",
    )
    .unwrap();
    let mut inputs = common::cases_inputs(&["auth-m2m"], &[]);
    inputs.files.push(no_aud);
    let mut session = meshgen::Session::default();
    let e: Vec<String> = match meshgen::generate(&inputs, &mut session) {
        Ok(_) => Vec::new(),
        Err(e) => {
            e.0.iter()
                .map(|d| d.display(&session.sources).to_string())
                .collect()
        }
    };
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("m2m.audiences") && e[0].contains("at least one audience"),
        "{e:?}"
    );
    let e = refused(&[
        "deploykf_core.deploykf_auth.m2m.jwksUri=https://kubernetes.default.svc.cluster.local/openid/v1/jwks",
    ]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("m2m.jwksUri") && e[0].contains("without TLS origination"),
        "{e:?}"
    );
    // A public issuer's keys are used as they are, without a relay.
    let t = render_inputs(&common::cases_inputs(
        &["auth-m2m"],
        &["deploykf_core.deploykf_auth.m2m.jwksUri=https://oidc.eks.eu-west-1.amazonaws.com/id/X/keys"],
    ));
    assert!(!t.contains_key(&format!("{AUTH_DIR}/jwks-relay.yaml")));
}

/// Removing a safeguard of the m2m path makes its replay fail.
#[test]
fn the_m2m_replay_notices_a_missing_safeguard() {
    let base = apps_and_m2m();
    let ra = format!("{GW_DIR}/RequestAuthentication-jwt.yaml");
    let deny = format!("{GW_DIR}/AuthorizationPolicy-require-jwt.yaml");
    let relay = format!("{AUTH_DIR}/jwks-relay.yaml");
    let mut mutants: Vec<(&str, Tree)> = Vec::new();
    let mut t = base.clone();
    t.get_mut(&ra).unwrap()[0]["spec"]["jwtRules"][1]
        .as_object_mut()
        .unwrap()
        .remove("audiences");
    mutants.push(("the m2m audiences", t));
    let mut t = base.clone();
    t.get_mut(&ra).unwrap()[0]["spec"]["jwtRules"][1]["jwksUri"] =
        json!("https://kubernetes.default.svc.cluster.local/openid/v1/jwks");
    mutants.push(("the relay's URI", t));
    let mut t = base.clone();
    t.remove(&relay);
    mutants.push(("the relay", t));
    let mut t = base.clone();
    t.get_mut(&relay).unwrap().remove(3);
    mutants.push(("the relay's ALLOW policy", t));
    let mut t = base.clone();
    t.get_mut(&deny).unwrap()[0]["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["when"][0]["key"] != "request.auth.audiences");
    mutants.push(("the SDK audience's path restriction", t));
    for (what, t) in mutants {
        assert!(
            !m2m_violations(&t).is_empty(),
            "without {what} the m2m replay still passes"
        );
    }
}

// ---------------------------------------------------------------------
// Zero trust without breaking neighbours (issue 14, point 8)

#[test]
fn your_own_gateways_namespace_gets_no_namespace_wide_policy_unless_asked() {
    for case_name in ["own-gateway-deployment", "own-istio-and-gateway"] {
        let t = case(case_name);
        for f in [
            "AuthorizationPolicy-allow-nothing.yaml",
            "PeerAuthentication-namespace.yaml",
        ] {
            assert!(
                !t.contains_key(&format!("{GW_DIR}/{f}")),
                "{case_name}: {f}"
            );
        }
        // Every policy meshgen puts there selects the gateway pods only.
        for (path, d) in all_docs(&t) {
            let kind = d["kind"].as_str().unwrap_or_default();
            if path.starts_with(GW_DIR)
                && (kind.ends_with("Policy")
                    || kind == "PeerAuthentication"
                    || kind == "RequestAuthentication")
                && d["metadata"]["namespace"] == "deploykf-istio-gateway"
            {
                assert!(d["spec"].get("selector").is_some(), "{case_name}: {path}");
            }
        }
    }
    // Asked for: rendered.
    let t = render_inputs(&common::cases_inputs(
        &["own-gateway-deployment"],
        &["deploykf_core.deploykf_istio_gateway.namespaceZeroTrust=true"],
    ));
    assert_eq!(
        one(
            &t,
            &format!("{GW_DIR}/AuthorizationPolicy-allow-nothing.yaml")
        )["spec"],
        json!({})
    );
    // And the user is told which policies they get and need.
    let inputs = common::case_inputs("own-gateway-deployment");
    let mut session = meshgen::Session::default();
    meshgen::generate(&inputs, &mut session).unwrap();
    let warnings: Vec<String> = session
        .warnings
        .0
        .iter()
        .map(|d| d.display(&session.sources).to_string())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("namespaceZeroTrust")
            && w.contains("deploykf-gateway-require-jwt")
            && w.contains("STRICT PeerAuthentication")),
        "{warnings:?}"
    );
}

// ---------------------------------------------------------------------
// The gateway's hop to itself (issue 14, point 9)

#[test]
fn the_http_relay_verifies_the_gateways_certificate_and_refuses_proxy_protocol() {
    let t = http_behind_proxy();
    let dr = one(&t, &format!("{GW_DIR}/DestinationRule-https-redirect.yaml"));
    let tls = &dr["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"];
    assert_eq!(
        tls,
        &json!({
            "mode": "SIMPLE",
            "sni": "kubeflow.internal.example.net",
            "credentialName": "deploykf-istio-gateway-cert",
            "subjectAltNames": ["kubeflow.internal.example.net"],
        })
    );
    // The Certificate behind that Secret names the host, and cert-manager
    // writes its CA under `ca.crt`, where the gateway looks for it.
    let cert = one(&t, &format!("{GW_DIR}/Certificate.yaml"));
    assert_eq!(cert["spec"]["secretName"], "deploykf-istio-gateway-cert");
    assert!(cert["spec"]["dnsNames"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "kubeflow.internal.example.net"));
    // PROXY protocol with the relay: refused, naming the key.
    let inputs = common::cases_inputs(
        &["http-behind-proxy"],
        &["deploykf_core.deploykf_istio_gateway.gateway.enableProxyProtocol=true"],
    );
    let mut session = meshgen::Session::default();
    let Err(e) = meshgen::generate(&inputs, &mut session) else {
        panic!("not refused");
    };
    let text: Vec<String> =
        e.0.iter()
            .map(|d| d.display(&session.sources).to_string())
            .collect();
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(
        text[0].contains("gateway.enableProxyProtocol") && text[0].contains("PROXY header"),
        "{text:?}"
    );
}

/// Each safeguard of the relay, removed, makes the HTTP replay fail.
#[test]
fn the_relay_replay_notices_a_missing_safeguard() {
    let base = http_behind_proxy();
    assert!(listener_violations(&base, false).is_empty());
    let dr = format!("{GW_DIR}/DestinationRule-https-redirect.yaml");
    fn tls<'a>(t: &'a mut Tree, dr: &str) -> &'a mut Value {
        &mut t.get_mut(dr).unwrap()[0]["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]
    }
    let mut mutants: Vec<(&str, Tree)> = Vec::new();
    let mut t = base.clone();
    tls(&mut t, &dr)
        .as_object_mut()
        .unwrap()
        .remove("credentialName");
    tls(&mut t, &dr)["insecureSkipVerify"] = json!(true);
    mutants.push(("certificate verification", t));
    let mut t = base.clone();
    tls(&mut t, &dr)
        .as_object_mut()
        .unwrap()
        .remove("subjectAltNames");
    mutants.push(("the certificate's name", t));
    let mut t = base.clone();
    t.remove(&dr);
    mutants.push(("TLS origination", t));
    let mut t = base.clone();
    let pp = one(
        &case("nonstandard-ports"),
        &format!("{GW_DIR}/EnvoyFilter-proxy-protocol.yaml"),
    );
    t.insert(
        format!("{GW_DIR}/EnvoyFilter-proxy-protocol.yaml"),
        vec![pp],
    );
    mutants.push(("the refusal of PROXY protocol", t));
    for (what, t) in mutants {
        assert!(
            !listener_violations(&t, false).is_empty(),
            "without {what} the relay replay still passes"
        );
    }
}

// ---------------------------------------------------------------------
// oauth2-proxy and dex hardening (issue 14, point 7)

fn oauth2_proxy_cfg(t: &Tree) -> BTreeMap<String, Value> {
    let cm = one(t, &format!("{AUTH_DIR}/ConfigMap-oauth2-proxy.yaml"));
    cm["data"]["oauth2_proxy.cfg"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(" = ").unwrap();
            (k.to_string(), serde_json::from_str(v).unwrap())
        })
        .collect()
}

#[test]
fn oauth2_proxy_and_dex_are_hardened() {
    // Option names as oauth2-proxy reads them (oauth2-proxy
    // `pkg/apis/options/cookie.go` `cookie_samesite`, `cookie_domains`;
    // `legacy_options.go` `code_challenge_method`; `options.go`
    // `api_routes`).
    let t = render_files(vec![], &[]);
    let cfg = oauth2_proxy_cfg(&t);
    assert_eq!(cfg["cookie_samesite"], "lax");
    assert_eq!(cfg["code_challenge_method"], "S256");
    assert!(cfg["api_routes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "^/pipeline/apis/"));
    // No subdomain app: a host-only cookie.
    assert!(!cfg.contains_key("cookie_domains"), "{cfg:?}");
    assert_eq!(cfg["whitelist_domains"], json!(["deploykf.example.com:*"]));
    // Subdomain apps: the cookie covers them.
    let cfg = oauth2_proxy_cfg(&case("apps"));
    assert_eq!(cfg["cookie_domains"], json!([".deploykf.example.com"]));
    // The refresh comes before the ID token expires.
    assert_eq!(cfg["cookie_refresh"], "45m");
    // oauth2-proxy sees `Accept`, so an API call (application/json) gets
    // 401 instead of a login page (oauth2-proxy `oauthproxy.go` `isAjax`).
    let values = one(&t, "manifests/deploykf-dependencies/istio/values.yaml");
    let p = &values["istio-daemon"]["meshConfig"]["extensionProviders"][0]["envoyExtAuthzHttp"];
    assert!(p["includeRequestHeadersInCheck"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == "accept"));
    // Current releases (oauth2-proxy v7.15.3, dex v2.45.1: their tags).
    let o = one(&t, &format!("{AUTH_DIR}/Deployment-oauth2-proxy.yaml"));
    assert_eq!(
        o["spec"]["template"]["spec"]["containers"][0]["image"],
        "quay.io/oauth2-proxy/oauth2-proxy:v7.15.3"
    );
    let d = one(&t, &format!("{AUTH_DIR}/Deployment-dex.yaml"));
    assert!(d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .ends_with("dex:v2.45.1"));
    // A refresh as long as the ID token's lifetime is refused.
    let inputs = common::inputs(
        vec![],
        &["deploykf_core.deploykf_auth.oauth2Proxy.cookie.refresh=1h"],
    );
    let mut session = meshgen::Session::default();
    let Err(e) = meshgen::generate(&inputs, &mut session) else {
        panic!("not refused");
    };
    let text: Vec<String> =
        e.0.iter()
            .map(|d| d.display(&session.sources).to_string())
            .collect();
    assert!(
        text.len() == 1
            && text[0].contains("cookie.refresh")
            && text[0].contains("shorter than dex's ID token lifetime"),
        "{text:?}"
    );
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
    /// A token in `Authorization`: (issuer, claims; list claims as lists).
    token: Option<(String, Value)>,
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
        let mode = d["spec"]["mtls"]["mode"]
            .as_str()
            .unwrap_or("PERMISSIVE")
            .to_string();
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

/// What a token verified at this sidecar says: its issuer and claims.
type Verified<'a> = Option<(&'a str, &'a Value)>;

/// The values of a `when` key at the sidecar. A list claim matches if one
/// of its elements does: Istio's requestClaimGenerator.extendedPrincipal
/// (`pilot/pkg/security/authz/model/generator.go`) builds a
/// MetadataListValueMatcher, a ListMatcher `OneOf`
/// (`pilot/pkg/security/authz/matcher/metadata.go`). Without a verified
/// token there are no claims: Istio adds the JWT filter only when a
/// RequestAuthentication selects the workload (`policy_applier.go`,
/// JwtFilter returns nil without JWT rules).
fn inbound_attribute(req: &Inbound, verified: Verified, key: &str) -> Vec<String> {
    if key == "source.namespace" {
        return source_namespace(req.principal.as_deref())
            .into_iter()
            .collect();
    }
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
        return match verified.and_then(|(_, claims)| claims.get(c)) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
    }
    panic!("attribute {key} not modelled at the sidecar")
}

fn inbound_rule_matches(rule: &Value, req: &Inbound, verified: Verified) -> bool {
    let principal = req.principal.as_deref();
    let src_ns = source_namespace(principal);
    let request_principal =
        verified.map(|(iss, c)| format!("{iss}/{}", c["sub"].as_str().unwrap_or_default()));
    let from_ok = rule.get("from").is_none_or(|from| {
        from.as_array().unwrap().iter().any(|f| {
            let s = &f["source"];
            s.get("principals").is_none_or(|l| any_match(l, principal))
                && s.get("namespaces")
                    .is_none_or(|l| any_match(l, src_ns.as_deref()))
                && s.get("requestPrincipals")
                    .is_none_or(|l| any_match(l, request_principal.as_deref()))
        })
    });
    let port = req.pod.port.to_string();
    let to_ok = rule.get("to").is_none_or(|to| {
        to.as_array().unwrap().iter().any(|t| {
            let o = &t["operation"];
            o.get("ports").is_none_or(|l| any_match(l, Some(&port)))
                && o.get("paths").is_none_or(|l| any_match(l, Some(&req.path)))
                && o.get("notPaths")
                    .is_none_or(|l| !any_match(l, Some(&req.path)))
                && o.get("methods")
                    .is_none_or(|l| any_match(l, Some(req.method)))
                && o.get("hosts").is_none()
        })
    });
    let when_ok = rule["when"].as_array().into_iter().flatten().all(|w| {
        let v = inbound_attribute(req, verified, w["key"].as_str().unwrap());
        let any = |l: &Value| v.iter().any(|x| any_match(l, Some(x)));
        w.get("values").is_none_or(any) && w.get("notValues").is_none_or(|l| !any(l))
    });
    from_ok && to_ok && when_ok
}

/// Whether the sidecar of `req.pod` lets `req` through to the container.
fn at_sidecar(t: &Tree, req: &Inbound) -> bool {
    if req.principal.is_none() && peer_mode(t, &req.pod) == "STRICT" {
        return false;
    }
    // JWT authentication before authorization: a token of an issuer the
    // workload's RequestAuthentications list is verified (its claims are
    // then known); one of no listed issuer is refused (401); without any
    // RequestAuthentication the token is not looked at.
    let jwt_rules: Vec<&Value> = all_docs(t)
        .map(|(_, d)| d)
        .filter(|d| {
            let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
            d["kind"] == "RequestAuthentication"
                && (ns == req.pod.namespace || ns == ROOT_NS)
                && selects(&d["spec"], &req.pod.labels)
        })
        .flat_map(|d| d["spec"]["jwtRules"].as_array().unwrap().iter())
        .collect();
    let mut verified = None;
    if let Some((iss, claims)) = &req.token {
        if !jwt_rules.is_empty() {
            if !jwt_rules.iter().any(|r| r["issuer"] == iss.as_str()) {
                return false;
            }
            verified = Some((iss.as_str(), claims));
        }
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
        let hit = rules.iter().any(|r| inbound_rule_matches(r, req, verified));
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
            .any(|e| {
                e["operator"] == "NotIn" && e["values"].as_array().unwrap().iter().any(|v| v == ns)
            });
        if exempt {
            continue;
        }
        let list: Vec<String> =
            serde_json::from_str(d["spec"]["variables"][0]["expression"].as_str().unwrap())
                .unwrap();
        let touches = |h: &Value| {
            let r = &h["request"];
            ["set", "add"]
                .iter()
                .flat_map(|o| {
                    r[o].as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, _)| k.clone())
                })
                .chain(
                    r["remove"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| v.as_str().unwrap().to_string()),
                )
                .any(|k| list.contains(&k.to_ascii_lowercase()))
        };
        for r in vs["spec"]["http"].as_array().into_iter().flatten() {
            if touches(&r["headers"])
                || r["route"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|d| touches(&d["headers"]))
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
fn through_tenant_route(
    headers: &BTreeMap<String, String>,
    route: &Value,
) -> BTreeMap<String, String> {
    let mut h = headers.clone();
    for level in std::iter::once(&route["headers"]).chain(
        route["route"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| &d["headers"]),
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

fn inbound(
    p: &Pod,
    principal: Option<&str>,
    method: &'static str,
    path: &str,
    user: Option<&str>,
) -> Inbound {
    Inbound {
        pod: p.clone(),
        principal: principal.map(String::from),
        method,
        path: path.into(),
        headers: user
            .map(|u| claims(&[("kubeflow-userid", u)]))
            .unwrap_or_default(),
        token: None,
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
    for path in ["/healthz", "/metrics", "/wait-for-drain"] {
        expect(
            &format!("Knative probe {path}"),
            &inbound(&research, activator, "GET", path, None),
            true,
        );
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
            method: "GET",
            path: "/notebook/kf-research/x/".into(),
            headers: seen,
            token: None,
        };
        if at_sidecar(t, &req) {
            bad.push(format!(
                "a tenant VirtualService ({key} on the {level}) made kf-analytics see {admin}"
            ));
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
fn app_policies_match_the_pod_port_and_warn_without_selector() {
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
    let mut session = meshgen::Session::default();
    meshgen::generate(&common::case_inputs("apps"), &mut session).unwrap();
    let warnings: Vec<String> = session
        .warnings
        .0
        .iter()
        .map(|w| w.display(&session.sources).to_string())
        .collect();
    let about = |key: &str| {
        warnings
            .iter()
            .any(|w| w.contains(key) && w.contains("no `selector`"))
    };
    assert!(about("apps[0]"), "{warnings:?}");
    assert!(!about("apps[1]"), "{warnings:?}");
}

#[test]
fn the_identity_header_guard_reads_every_header_operation() {
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
fn with_kubeflow_profiles_the_readme_sets_the_gateway_principal() {
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

// ---------------------------------------------------------------------
// Tried as a new user would (issue 14): the README's apps example, with
// m2m on as the auth-m2m case turns it on, over https:// and http://.

/// The first `yaml` block after `heading` in README.md.
fn readme_yaml_after(heading: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let at = readme.find(heading).unwrap_or_else(|| panic!("{heading}"));
    let block = &readme[at..];
    let start = block.find("```yaml\n").unwrap() + "```yaml\n".len();
    let len = block[start..].find("```").unwrap();
    block[start..start + len].to_string()
}

#[test]
fn the_readme_apps_example_works_in_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let example = dir.path().join("apps.yaml");
    std::fs::write(&example, readme_yaml_after("### Adding an app")).unwrap();
    let mut inputs = common::cases_inputs(&["auth-m2m"], &[]);
    inputs.files.push(example);
    let t = render_inputs(&inputs);
    let mut bad = impersonation_violations(&t);
    bad.extend(listener_violations(&t, true));
    bad.extend(m2m_violations(&t));
    // The example names no targetPort or selector: its policies then
    // admit the gateway on whatever port the pods listen on.
    for (ns, app, port, path) in [
        ("kubeflow", "centraldashboard", 8082, "/"),
        ("minio", "minio-console", 9001, "/"),
        ("status", "statuspage", 80, "/"),
    ] {
        let req = Inbound {
            pod: pod(ns, &[("app", app)], port),
            principal: Some(GATEWAY_PRINCIPAL.into()),
            method: "GET",
            path: path.into(),
            headers: BTreeMap::new(),
            token: None,
        };
        if !at_sidecar(&t, &req) {
            bad.push(format!(
                "the gateway can not reach {app} on pod port {port}"
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

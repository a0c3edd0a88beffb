//! What every tree must hold: no secret, Pod Security "restricted", the
//! Istio integration, zero trust per namespace.

use super::*;

// No secret in the output

/// The accepted output of every case, as (where, text): the reference
/// cases' whole trees under `tests/golden`, and the lines every other
/// case adds to its reference (the `+` lines of its delta snapshot,
/// `tests/golden.rs`), which together hold every line any case renders.
fn accepted_output() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let golden = root().join("tests/golden");
    for rel in common::walk(&golden) {
        let entry = golden.join(rel);
        let text = std::fs::read_to_string(&entry).unwrap();
        out.push((entry.display().to_string(), text));
    }
    let snapshots = root().join("tests/snapshots");
    for rel in common::walk(&snapshots) {
        let name = rel.to_string_lossy().into_owned();
        if !name.starts_with("golden__delta@") {
            continue;
        }
        let text = std::fs::read_to_string(snapshots.join(&rel)).unwrap();
        let added: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("+++ "))
            .filter_map(|l| l.strip_prefix('+'))
            .collect();
        out.push((format!("tests/snapshots/{name}"), added.join("\n")));
    }
    out
}

#[test]
pub(crate) fn no_secret_object_and_no_literal_secret_in_any_golden_tree() {
    let accepted = accepted_output();
    for (entry, text) in &accepted {
        // A document's own kind is at column 0; an indented `kind: Secret`
        // is a reference to one (a Gateway API listener's certificateRefs).
        for line in text.lines() {
            assert!(
                line.trim_end() != "kind: Secret",
                "{entry}: renders a Secret"
            );
        }
        // deployKF's plain-text defaults for client and cookie secrets.
        for literal in ["bbbbbbbbbbbbbbbb", "cccccccccccccccc"] {
            assert!(!text.contains(literal), "{entry}: {literal}");
        }
        assert!(
            !text.contains("BEGIN RSA PRIVATE KEY") && !text.contains("$2y$"),
            "{entry}"
        );
    }
    let deltas = accepted
        .iter()
        .filter(|(e, _)| e.starts_with("tests/snapshots/"))
        .count();
    assert!(
        accepted.len() > 150 && deltas > 20,
        "only {} files under tests/golden and {deltas} delta snapshots",
        accepted.len() - deltas
    );
}

#[test]
pub(crate) fn secrets_are_referenced_by_name_and_generated_in_the_cluster() {
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
pub(crate) fn deploykf_sample_values_generate_their_secrets() {
    let sample = root().join(crate::common::DEPLOYKF_SAMPLE);
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

pub(crate) fn assert_restricted(path: &str, pod: &Value) {
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
pub(crate) fn every_pod_meets_pod_security_restricted() {
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
pub(crate) fn the_managed_istio_declares_the_provider_next_to_the_users() {
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
pub(crate) fn an_external_issuer_replaces_dex() {
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
pub(crate) fn machine_identities_are_verified_like_users() {
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
pub(crate) fn namespaces_are_strict_and_deny_by_default() {
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
pub(crate) fn with_your_own_istio_every_rendered_namespace_is_strict() {
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

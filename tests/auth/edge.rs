//! The gateway's neighbours, its hop to itself, and the hardening of
//! oauth2-proxy and dex (issue 14, points 7–9).

use super::*;

// Zero trust without breaking neighbours (issue 14, point 8)

#[test]
pub(crate) fn your_own_gateways_namespace_gets_no_namespace_wide_policy_unless_asked() {
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
    let warnings = warnings_of(&inputs);
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
pub(crate) fn the_http_relay_verifies_the_gateways_certificate_and_refuses_proxy_protocol() {
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
    let text = errors_of(&inputs);
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(
        text[0].contains("gateway.enableProxyProtocol") && text[0].contains("PROXY header"),
        "{text:?}"
    );
}

/// Each safeguard of the relay, removed, makes the HTTP replay fail.
#[test]
pub(crate) fn the_relay_replay_notices_a_missing_safeguard() {
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

pub(crate) fn oauth2_proxy_cfg(t: &Tree) -> BTreeMap<String, Value> {
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
pub(crate) fn oauth2_proxy_and_dex_are_hardened() {
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
    // Subdomain apps: the cookie names each served host, longest first
    // (issue 28, point 6).
    let cfg = oauth2_proxy_cfg(&case("apps"));
    assert_eq!(
        cfg["cookie_domains"],
        json!(["minio-console.deploykf.example.com", "deploykf.example.com"])
    );
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
    let text = errors_of(&inputs);
    assert!(
        text.len() == 1
            && text[0].contains("cookie.refresh")
            && text[0].contains("shorter than dex's ID token lifetime"),
        "{text:?}"
    );
}

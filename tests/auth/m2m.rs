//! Machine-to-machine tokens: where the gateway gets the cluster's keys,
//! and which audiences it accepts where (issue 14, point 3).

use super::*;

// Machine-to-machine keys (issue 14, point 3)

/// The diagnostics meshgen refuses `sets` (over the auth-m2m case) with.
pub(crate) fn refused(sets: &[&str]) -> Vec<String> {
    errors_of(&common::cases_inputs(&["auth-m2m"], sets))
}

pub(crate) fn m2m_violations(t: &Tree) -> Vec<String> {
    let https = gw_port(t, "https");
    let k8s = "https://kubernetes.default.svc.cluster.local";
    let dex = "https://deploykf.example.com/dex";
    let token = |iss: &str, pairs: &[(&str, &str)]| Some((iss.to_string(), claims(pairs)));
    let sub = "system:serviceaccount:team-1:pipeline-runner";
    // (request, the identity it must reach the app with, or None: refused)
    // The Pipelines SDK's tokens (dex, audience `kubeflow-pipelines-sdk`).
    let sdk = token(
        dex,
        &[
            ("sub", "a"),
            ("email", "a@example.com"),
            ("aud", "kubeflow-pipelines-sdk"),
        ],
    );
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
                token: sdk.clone(),
                ..get("deploykf.example.com", "/pipeline/apis/v2beta1/runs")
            },
            Some("a@example.com"),
        ),
        (
            Request {
                token: sdk.clone(),
                ..get("deploykf.example.com", "/")
            },
            None,
        ),
        (
            Request {
                token: sdk.clone(),
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

#[test]
pub(crate) fn machine_tokens_need_the_clusters_keys_and_an_accepted_audience() {
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
pub(crate) fn machine_tokens_without_an_audience_or_with_in_mesh_https_keys_are_refused() {
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
    let e = errors_of(&inputs);
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
pub(crate) fn the_m2m_replay_notices_a_missing_safeguard() {
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

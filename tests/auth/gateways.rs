//! Several gateways (issue 33): the `two-gateways` case, a public `login`
//! gateway (`ml.example.com`) and an internal `token` one
//! (`ml.internal.example.com`), replayed through the request model at
//! each (`meshgen::access::at_gateway`): a browser user through the public
//! one, a pipeline's token through the internal one, no login page there,
//! no identity header forged through either, and a profile admitting each
//! gateway's principal and no other.

use super::*;
use meshgen::access::{at_gateway, gateway_dirs};

const PUBLIC: &str = "ml.example.com";
const INTERNAL: &str = "ml.internal.example.com";
const INTERNAL_DIR: &str = "manifests/deploykf-core/deploykf-istio-gateway-internal-gateway";
const DEX: &str = "https://ml.example.com/dex";
const ALICE: &str = "alice@example.com";

pub(crate) fn two_gateways() -> Tree {
    case("two-gateways")
}

/// A dex token of `alice` for `aud` (oauth2-proxy's client: the browser's
/// session; `kubeflow-pipelines-sdk`: the Pipelines SDK's).
fn alice(aud: &str) -> Option<(String, BTreeMap<String, String>)> {
    Some((
        DEX.to_string(),
        claims(&[("sub", "alice"), ("email", ALICE), ("aud", aud)]),
    ))
}

fn forged(req: Request) -> Request {
    let mut req = req;
    req.headers
        .insert("kubeflow-userid".into(), "admin@example.com".into());
    req.headers
        .insert("kubeflow-groups".into(), "admins".into());
    req
}

/// The identity a request reaches its upstream with at the gateway of
/// `t` (a view from `at_gateway`), or why it does not.
fn through(t: &Tree, req: &Request, session: Session) -> Edge {
    at_listener(t, req, gw_port(t, "https"), session)
}

fn user_of(edge: &Edge) -> Option<&str> {
    match edge {
        Edge::Upstream { identity, .. } => identity.get("kubeflow-userid").map(String::as_str),
        _ => None,
    }
}

/// What the replay of the two gateways finds wrong (empty: nothing).
pub(crate) fn two_gateway_violations(t: &Tree) -> Vec<String> {
    let mut bad = Vec::new();
    let dirs = gateway_dirs(t);
    if dirs != [GW_DIR, INTERNAL_DIR] {
        bad.push(format!("gateways {dirs:?}"));
        return bad;
    }
    let public = at_gateway(t, GW_DIR);
    let internal = at_gateway(t, INTERNAL_DIR);
    // A browser user through the public gateway: the login page, then in.
    let edge = through(&public, &get(PUBLIC, "/"), Session::None);
    if edge != Edge::Login(gw_port(&public, "https")) {
        bad.push(format!("a browser without a session at {PUBLIC}: {edge:?}"));
    }
    let edge = through(
        &public,
        &Request {
            token: alice("oauth2-proxy"),
            ..get(PUBLIC, "/")
        },
        Session::Valid,
    );
    if user_of(&edge) != Some(ALICE) {
        bad.push(format!("alice's session at {PUBLIC}: {edge:?}"));
    }
    // A pipeline's token through the internal gateway.
    let pipelines = get(INTERNAL, "/pipeline/apis/v2beta1/runs");
    let edge = through(
        &internal,
        &Request {
            token: alice("kubeflow-pipelines-sdk"),
            ..pipelines.clone()
        },
        Session::None,
    );
    if user_of(&edge) != Some(ALICE) {
        bad.push(format!("the Pipelines SDK's token at {INTERNAL}: {edge:?}"));
    }
    // No login page on the internal gateway: without a token, refused.
    for session in [Session::None, Session::Valid] {
        let edge = through(&internal, &pipelines, session);
        if !matches!(edge, Edge::Denied(_)) {
            bad.push(format!("no token at {INTERNAL} ({session:?}): {edge:?}"));
        }
    }
    // The internal gateway serves its own host only, the public its own.
    for (t, host, path) in [(&internal, PUBLIC, "/"), (&public, INTERNAL, "/pipeline/")] {
        let edge = through(t, &forged(get(host, path)), Session::Valid);
        if matches!(edge, Edge::Upstream { .. }) {
            bad.push(format!("{host}{path} through the other gateway: {edge:?}"));
        }
    }
    // No identity header forged through either gateway: without a token,
    // or with alice's (the token's identity wins), or on a public app.
    let cases = [
        (&public, get(PUBLIC, "/"), Session::Valid, None),
        (&public, get(PUBLIC, "/status/"), Session::None, None),
        (&internal, pipelines.clone(), Session::Valid, None),
        (
            &internal,
            Request {
                token: alice("kubeflow-pipelines-sdk"),
                ..pipelines.clone()
            },
            Session::None,
            Some(ALICE),
        ),
        (
            &public,
            Request {
                token: alice("oauth2-proxy"),
                ..get(PUBLIC, "/")
            },
            Session::Valid,
            Some(ALICE),
        ),
    ];
    for (t, req, session, want) in cases {
        let edge = through(t, &forged(req.clone()), session);
        let got = user_of(&edge);
        if got.is_some() && got != want {
            bad.push(format!(
                "a forged identity header: {req:?} reached as {got:?}"
            ));
        }
        if let Edge::Upstream { identity, .. } = &edge {
            if identity.get("kubeflow-groups").map(String::as_str) == Some("admins") {
                bad.push(format!("a forged groups header: {req:?}"));
            }
        }
    }
    // A profile admits each gateway's principal, and no other.
    let principals = [gateway_principal(&public), gateway_principal(&internal)];
    if principals[0] == principals[1] {
        bad.push(format!(
            "one principal for both gateways: {}",
            principals[0]
        ));
    }
    let notebook = pod("team-a", &[("notebook-name", "x")], 8888);
    let other = "cluster.local/ns/deploykf-istio-gateway/sa/other-gateway".to_string();
    // (the tree as seen at the gateway the request comes from, its
    // principal, admitted): in ambient the model tells an ingress gateway
    // (`istio.io/ingress-use-waypoint`) by the view's gateway.
    for (view, principal, admitted) in [
        (&public, &principals[0], true),
        (&internal, &principals[1], true),
        (&public, &other, false),
        (&internal, &other, false),
    ] {
        let req = inbound(
            &notebook,
            Some(principal),
            "GET",
            "/notebook/team-a/x/",
            Some(ALICE),
        );
        if at_destination(view, &req) != admitted {
            bad.push(format!(
                "profile team-a {} {principal}",
                if admitted { "refuses" } else { "admits" }
            ));
        }
        if let (true, Some(from)) = (admitted, gateway_pod(view)) {
            if !network_admits(view, &from, &notebook) {
                bad.push(format!(
                    "team-a's NetworkPolicies refuse the pods of {principal}"
                ));
            }
        }
    }
    bad
}

#[test]
pub(crate) fn two_gateways_each_admit_their_own_users_and_no_forged_identity() {
    let t = two_gateways();
    let bad = two_gateway_violations(&t);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The same replay with the Gateway API, and in the ambient data plane:
/// each gateway is its own `Gateway` (its policies attach by `targetRefs`
/// to pods labelled with its name), and each profile's waypoint admits
/// both principals.
#[test]
pub(crate) fn two_gateways_with_the_gateway_api_and_in_ambient() {
    for sets in [
        &["deploykf_core.deploykf_istio_gateway.api=gateway-api"][..],
        &["deploykf_dependencies.istio.dataplaneMode=ambient"],
        &[
            "deploykf_core.deploykf_istio_gateway.api=gateway-api",
            "deploykf_dependencies.istio.dataplaneMode=ambient",
        ],
    ] {
        let t = render_inputs(&common::cases_inputs(&["two-gateways"], sets));
        let bad = two_gateway_violations(&t);
        assert!(bad.is_empty(), "{sets:?}: {}", bad.join("\n"));
    }
}

/// Removing a safeguard of either gateway makes the replay fail.
#[test]
pub(crate) fn the_two_gateway_replay_notices_a_missing_safeguard() {
    let base = two_gateways();
    let profile = "manifests/deploykf-core/deploykf-profiles-generator/team-a.yaml";
    let mut mutants: Vec<(&str, Tree)> = Vec::new();
    let mut t = base.clone();
    t.remove(&format!(
        "{INTERNAL_DIR}/AuthorizationPolicy-require-jwt.yaml"
    ));
    mutants.push(("the internal gateway's DENY policy", t));
    let mut t = base.clone();
    t.remove(&format!("{INTERNAL_DIR}/RequestAuthentication-jwt.yaml"));
    mutants.push(("the internal gateway's RequestAuthentication", t));
    // The gateway principals team-a's `profile-access` admits, changed.
    let with_principals = |change: &dyn Fn(&mut Vec<Value>)| {
        let mut t = base.clone();
        for doc in t.get_mut(profile).unwrap() {
            if doc["kind"] == "AuthorizationPolicy" && doc["metadata"]["name"] == "profile-access" {
                let p = &mut doc["spec"]["rules"][0]["from"][0]["source"]["principals"];
                change(p.as_array_mut().unwrap());
            }
        }
        t
    };
    mutants.push((
        "the internal gateway's principal in profile-access",
        with_principals(&|p| p.truncate(1)),
    ));
    let t = with_principals(&|p| {
        p.push(json!(
            "cluster.local/ns/deploykf-istio-gateway/sa/other-gateway"
        ))
    });
    mutants.push(("a principal too many in profile-access", t));
    let mut t = base.clone();
    let mut login = t[&format!("{GW_DIR}/AuthorizationPolicy-login.yaml")].clone();
    login[0]["metadata"]["name"] = json!("internal-gateway-login");
    login[0]["spec"]["selector"]["matchLabels"] =
        json!({"app": "internal-gateway", "istio": "internal-gateway"});
    t.insert(
        format!("{INTERNAL_DIR}/AuthorizationPolicy-login.yaml"),
        login,
    );
    mutants.push(("(adding) a login policy on the internal gateway", t));
    for (what, t) in mutants {
        assert!(
            !two_gateway_violations(&t).is_empty(),
            "without {what} the two-gateway replay still passes"
        );
    }
}

/// An additional gateway's apps may live in a namespace only they use:
/// each gateway instance contributes its own apps' namespaces as assumed
/// to exist (`component::Contributions::namespaces`), as the primary's
/// are. Before, only the primary's apps were (the descriptor's
/// `assumed_namespaces` read the primary's section), and the tree check
/// refused the internal gateway's app policy in `pipelines`.
#[test]
pub(crate) fn an_additional_gateways_app_namespace_is_assumed_to_exist() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("pipelines.yaml");
    std::fs::write(
        &extra,
        "deploykf_core:\n  deploykf_istio_gateway:\n    additionalGateways:\n      - auth: token\n        gateway: {name: internal-gateway, hostname: ml.internal.example.com}\n        apps:\n          - {name: pipelines-api, namespace: pipelines, service: ml-pipeline-ui, port: 80, path: /pipeline, selector: {app: ml-pipeline-ui}}\n",
    )
    .unwrap();
    let mut inputs = common::case_inputs("two-gateways");
    inputs.files.push(extra);
    assert_eq!(errors_of(&inputs), Vec::<String>::new());
    let t = render_inputs(&inputs);
    assert!(
        all_docs(&t).any(|(_, d)| d["kind"] == "AuthorizationPolicy"
            && d["metadata"]["namespace"] == "pipelines"),
        "no policy of the internal gateway's app in `pipelines`"
    );
}

//! Members by identity-provider group (issue 17): admitted by the
//! verified token's claim at the profile's sidecar, never by a header.

use super::*;

// Members by identity-provider group (issue 17): a request reaches a
// profile's workload through the gateway, and the profile namespace's
// sidecar decides by the verified token's groups claim.

pub(crate) const PG_DIR: &str = "manifests/deploykf-core/deploykf-profiles-generator";

/// The sidecar of a workload in the profile namespace `ns`
/// ([`at_destination`]: JWT verification by the namespace's
/// RequestAuthentications, then DENY, then ALLOW policies).
pub(crate) fn into_profile(t: &Tree, ns: &str, req: &Inbound) -> bool {
    let mut req = req.clone();
    req.pod = pod(ns, &[("app", "notebook")], 8888);
    at_destination(t, &req)
}

/// A browser login: the gateway verifies dex's token (`through_gateway`)
/// and forwards it when its rule says `forwardOriginalToken`; the
/// identity headers are the gateway's, the others the client's.
pub(crate) fn via_gateway(
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
        headers: headers.clone(),
        token: Some((dex.to_string(), flat)),
        ..get("deploykf.example.com", "/")
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
        method: "GET".into(),
        path: path.into(),
        headers,
        token: forwarded.then(|| (dex.to_string(), full)),
        sni: None,
    })
}

pub(crate) fn idp_tree() -> Tree {
    render_inputs(&common::cases_inputs(&["apps", "idp-groups"], &[]))
}

/// (who, the token's groups, headers the client sends, namespace, path,
/// admitted?)
pub(crate) type IdpCase<'a> = (
    &'a str,
    Option<&'a [&'a str]>,
    &'a [(&'a str, &'a str)],
    &'a str,
    String,
    bool,
);

/// Replays IdP-group scenarios against the `idp-groups` case; returns what
/// went wrong.
pub(crate) fn idp_group_violations(t: &Tree) -> Vec<String> {
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
        method: "GET".into(),
        path: api.into(),
        headers: BTreeMap::new(),
        token: Some((
            "https://deploykf.example.com/dex".into(),
            json!({"sub": "carol", "email": "carol@example.com", "groups": ["ml-platform-admins"]}),
        )),
        sni: None,
    };
    if into_profile(t, "research", &from_pod) {
        bad.push("a pod of another profile was admitted by a token's groups".into());
    }
    bad
}

#[test]
pub(crate) fn idp_group_members_are_admitted_by_the_verified_claim_only() {
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
pub(crate) fn the_idp_group_replay_notices_a_missing_safeguard() {
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
    // The profile's sidecars fetch dex's keys themselves
    // (`jwks_fetch_by`): without dex admitting them, no token verifies.
    let mut t = base.clone();
    t.get_mut(&format!("{AUTH_DIR}/AuthorizationPolicy-dex.yaml"))
        .unwrap()[0]["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    mutants.push(("dex admitting the profiles' key fetch", t));
    for (what, t) in mutants {
        assert!(
            !idp_group_violations(&t).is_empty(),
            "without {what} the replay still passes"
        );
    }
}

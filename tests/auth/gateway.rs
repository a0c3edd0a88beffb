//! The gateway's side of the request model: its filters, listeners and
//! routes, and who can make an app see which identity.

use super::*;

#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
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
pub(crate) fn through_gateway(t: &Tree, req: &Request) -> Outcome {
    match at_listener(t, req, gw_port(t, "https"), Session::Valid) {
        Edge::Upstream {
            route, identity, ..
        } => Outcome::Upstream(route, identity),
        _ => Outcome::Denied,
    }
}

/// Replays every scenario through the tree; returns what went wrong.
pub(crate) fn impersonation_violations(t: &Tree) -> Vec<String> {
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
                headers: headers.clone(),
                token: token.clone(),
                ..get(host, path)
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

pub(crate) fn apps_and_m2m() -> Tree {
    render_inputs(&common::cases_inputs(&["apps", "auth-m2m"], &[]))
}

#[test]
pub(crate) fn a_client_can_not_impersonate_a_user() {
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
pub(crate) fn the_impersonation_replay_notices_a_missing_safeguard() {
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
// listener serves, and the gateway's hop to itself (the model:
// `meshgen::access::gateway`).

pub(crate) fn get(host: &str, path: &str) -> Request {
    Request::get(host, path)
}

/// A tenant's VirtualService bound to the gateway's HTTP listener: it
/// would serve its route without any login check (those apply only on
/// the HTTPS port), so the HTTP Gateway must not admit it.
pub(crate) fn with_tenant_http_route(t: &Tree) -> Tree {
    let mut t = t.clone();
    let hosts = json!(["deploykf.example.com", "kubeflow.internal.example.net"]);
    let sneak = if gateway_api(&t) {
        // The Gateway API form: an HTTPRoute of the tenant's namespace
        // naming the HTTP listener of meshgen's Gateway.
        let gw = one(&t, &format!("{GW_DIR}/Gateway.yaml"));
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "sneak", "namespace": "team-1"},
            "spec": {
                "parentRefs": [{
                    "name": gw["metadata"]["name"],
                    "namespace": gw["metadata"]["namespace"],
                    "sectionName": "http",
                }],
                "hostnames": hosts,
                "rules": [{
                    "name": "sneak",
                    "matches": [{"path": {"type": "PathPrefix", "value": "/sneak"}}],
                    "filters": [{
                        "type": "RequestHeaderModifier",
                        "requestHeaderModifier": {"set": [{"name": "kubeflow-userid", "value": "admin@example.com"}]},
                    }],
                    "backendRefs": [{"name": "notebook", "port": 80}],
                }],
            },
        })
    } else {
        let http = one(&t, &format!("{GW_DIR}/Gateway-https-redirect.yaml"));
        let gw = format!(
            "{}/{}",
            http["metadata"]["namespace"].as_str().unwrap(),
            http["metadata"]["name"].as_str().unwrap()
        );
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "sneak", "namespace": "team-1"},
            "spec": {
                "gateways": [gw],
                "hosts": hosts,
                "http": [{
                    "name": "sneak",
                    "match": [{"uri": {"prefix": "/sneak"}}],
                    "route": [{"destination": {"host": "notebook.team-1.svc.cluster.local"}}],
                    "headers": {"request": {"set": {"kubeflow-userid": "admin@example.com"}}},
                }],
            },
        })
    };
    t.insert("tenant/route.yaml".into(), vec![sneak]);
    t
}

/// Replays browser and SDK visits on the HTTP and HTTPS listeners;
/// returns what went wrong.
pub(crate) fn listener_violations(t: &Tree, redirect: bool) -> Vec<String> {
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

pub(crate) fn http_behind_proxy() -> Tree {
    case("http-behind-proxy")
}

#[test]
pub(crate) fn http_visits_are_redirected_and_logins_happen_on_https() {
    let t = apps_and_m2m();
    let bad = listener_violations(&t, true);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // With `tls.redirect: false` the HTTP port relays to HTTPS.
    let t = http_behind_proxy();
    let bad = listener_violations(&t, false);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
pub(crate) fn login_and_token_checks_name_the_https_pod_port_and_responses_carry_hsts() {
    // Every pod port but the HTTP listener's (issue 27, point 3: a foreign
    // Gateway on another port of these pods gets the login as well).
    let t = case("nonstandard-ports");
    let http = gw_port(&t, "http");
    for name in ["login", "require-jwt"] {
        let p = one(&t, &format!("{GW_DIR}/AuthorizationPolicy-{name}.yaml"));
        for r in p["spec"]["rules"].as_array().unwrap() {
            for to in r["to"].as_array().unwrap() {
                assert_eq!(
                    to["operation"]["notPorts"],
                    json!([http.to_string()]),
                    "{name}"
                );
                assert!(to["operation"].get("ports").is_none(), "{name}");
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
pub(crate) fn the_listener_replay_notices_a_missing_safeguard() {
    let base = apps_and_m2m();
    let mut mutants: Vec<(&str, Tree)> = Vec::new();
    for (name, what) in [
        ("login", "the HTTP port's exclusion from the login policy"),
        (
            "require-jwt",
            "the HTTP port's exclusion from the token policy",
        ),
    ] {
        let mut t = base.clone();
        let p = format!("{GW_DIR}/AuthorizationPolicy-{name}.yaml");
        for r in t.get_mut(&p).unwrap()[0]["spec"]["rules"]
            .as_array_mut()
            .unwrap()
        {
            for to in r["to"].as_array_mut().unwrap() {
                to["operation"].as_object_mut().unwrap().remove("notPorts");
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

/// The same values in both routing APIs give the gateway pods the same
/// policies: the login (CUSTOM), the token checks (DENY) and the port
/// ALLOW attach in `gateway-api` mode with the rules they have in `istio`
/// mode.
#[test]
pub(crate) fn both_routing_apis_attach_the_same_gateway_policies() {
    let istio = case("istio-sidecar");
    let gateway_api = case("gateway-api-sidecar");
    let rules = |t: &Tree, action: &str| -> Vec<(Value, Value)> {
        attached_gateway_policies(t, action)
            .into_iter()
            .map(|p| (p["metadata"]["name"].clone(), p["spec"]["rules"].clone()))
            .collect()
    };
    for action in ["CUSTOM", "DENY", "ALLOW"] {
        let expected = rules(&istio, action);
        assert!(
            !expected.is_empty(),
            "no {action} policy on the istio gateway"
        );
        assert_eq!(rules(&gateway_api, action), expected, "{action}");
    }
    // Without the gateway-name label on the pods, no targetRefs policy
    // attaches: the login would not run at all.
    let mut unlabelled = gateway_api.clone();
    let path = format!("{GW_DIR}/Deployment.yaml");
    let deployment = &mut unlabelled.get_mut(&path).unwrap()[0];
    deployment["spec"]["template"]["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("gateway.networking.k8s.io/gateway-name");
    assert!(attached_gateway_policies(&unlabelled, "CUSTOM").is_empty());
}

/// `api: gateway-api` serves the same requests as `api: istio`: the
/// impersonation, listener and machine-token replays pass on the Gateway API tree of the
/// same values (and on its `tls.redirect: false` form), with the
/// Gateway API's own routing rules (`routing.rs`).
#[test]
pub(crate) fn the_gateway_api_routes_serve_the_same_requests() {
    let api = "deploykf_core.deploykf_istio_gateway.api=gateway-api";
    for name in ["istio-sidecar", "gateway-api-sidecar"] {
        let t = case(name);
        let bad = impersonation_violations(&t);
        assert!(bad.is_empty(), "{name}: {}", bad.join("\n"));
        let bad = listener_violations(&t, true);
        assert!(bad.is_empty(), "{name}: {}", bad.join("\n"));
        let bad = m2m_violations(&t);
        assert!(bad.is_empty(), "{name}: {}", bad.join("\n"));
    }
    assert!(gateway_api(&case("gateway-api-sidecar")));
    // The destination side (sidecars) with the same values as in
    // `api: istio` (`apps`' retries have no Gateway API form).
    let no_retries = "deploykf_core.deploykf_istio_gateway.apps[2].retries=null";
    for (over, replay) in [
        (
            "multi-team",
            destination_violations as fn(&Tree) -> Vec<String>,
        ),
        ("idp-groups", crate::idp_groups::idp_group_violations),
    ] {
        let t = render_inputs(&common::cases_inputs(&["apps", over], &[api, no_retries]));
        assert!(gateway_api(&t));
        let bad = replay(&t);
        assert!(bad.is_empty(), "{over}: {}", bad.join("\n"));
    }
    let t = render_inputs(&common::cases_inputs(&["http-behind-proxy"], &[api]));
    assert!(gateway_api(&t));
    let bad = listener_violations(&t, false);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // `/status/` is a PathPrefix of whole elements: for a signed-in user
    // `/status` is the status app and `/statusx` the dashboard at `/`.
    // Without a login `/status` is denied (the login policies' `notPaths`
    // exempt `/status/*` only: `src/model/gateway.rs` `http_rule`).
    let t = case("gateway-api-sidecar");
    let route = |path: &'static str, signed_in: bool| {
        let mut req = get("deploykf.example.com", path);
        if signed_in {
            req.token = Some((
                "https://deploykf.example.com/dex".into(),
                claims(&[
                    ("sub", "a"),
                    ("email", "alice@example.com"),
                    ("aud", "oauth2-proxy"),
                ]),
            ));
        }
        match through_gateway(&t, &req) {
            Outcome::Upstream(name, _) => name,
            Outcome::Denied => "denied".into(),
        }
    };
    assert_eq!(route("/status", true), "status");
    assert_eq!(route("/status/x", true), "status");
    assert_eq!(route("/statusx", true), "dashboard");
    assert_eq!(route("/status/x", false), "status");
    assert_eq!(route("/status", false), "denied");
}

/// Removing any one safeguard of the Gateway API tree makes a replay fail.
#[test]
pub(crate) fn the_gateway_api_replay_notices_a_missing_safeguard() {
    let base = case("gateway-api-sidecar");
    let gateway = format!("{GW_DIR}/Gateway.yaml");
    let routes = format!("{GW_DIR}/HTTPRoute-routes.yaml");
    let filters_without = |t: &mut Tree, kind: &str| {
        for r in t.get_mut(&routes).unwrap()[0]["spec"]["rules"]
            .as_array_mut()
            .unwrap()
        {
            if let Some(f) = r["filters"].as_array_mut() {
                f.retain(|f| f["type"] != kind);
            }
        }
    };
    let mut impersonation: Vec<(&str, Tree)> = Vec::new();
    let mut t = base.clone();
    filters_without(&mut t, "RequestHeaderModifier");
    impersonation.push(("header removal on public routes", t));
    let mut t = base.clone();
    t.retain(|p, _| !p.ends_with("deploykf-auth/ReferenceGrant-gateway.yaml"));
    impersonation.push(("the ReferenceGrant for the login Services", t));
    let mut t = base.clone();
    t.get_mut(&format!("{GW_DIR}/Deployment.yaml")).unwrap()[0]["spec"]["template"]["metadata"]
        ["labels"]
        .as_object_mut()
        .unwrap()
        .remove("gateway.networking.k8s.io/gateway-name");
    impersonation.push(("the gateway-name label on the pods", t));
    for (what, t) in impersonation {
        assert!(
            !impersonation_violations(&t).is_empty(),
            "without {what} the impersonation replay still passes"
        );
    }
    let mut listeners: Vec<(&str, Tree)> = Vec::new();
    let mut t = base.clone();
    for l in t.get_mut(&gateway).unwrap()[0]["spec"]["listeners"]
        .as_array_mut()
        .unwrap()
    {
        l["allowedRoutes"]["namespaces"]["from"] = json!("All");
    }
    listeners.push(("allowedRoutes from: Same", t));
    let mut t = base.clone();
    filters_without(&mut t, "ResponseHeaderModifier");
    listeners.push(("HSTS", t));
    let mut t = base.clone();
    let p = format!("{GW_DIR}/AuthorizationPolicy-login.yaml");
    for r in t.get_mut(&p).unwrap()[0]["spec"]["rules"]
        .as_array_mut()
        .unwrap()
    {
        for to in r["to"].as_array_mut().unwrap() {
            to["operation"].as_object_mut().unwrap().remove("notPorts");
        }
    }
    listeners.push(("the HTTP port's exclusion from the login policy", t));
    for (what, t) in listeners {
        assert!(
            !listener_violations(&t, true).is_empty(),
            "without {what} the listener replay still passes"
        );
    }
}

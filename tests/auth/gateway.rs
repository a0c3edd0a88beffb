//! The gateway's side of the request model: its filters, listeners and
//! routes, and who can make an app see which identity.

use super::*;

// A request through the rendered gateway policies: who can make an app
// see which identity.

/// Istio's string match: exact, `prefix*`, `*suffix`, or `*` (present).
pub(crate) fn istio_match(pattern: &str, value: Option<&str>) -> bool {
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

pub(crate) fn any_match(list: &Value, value: Option<&str>) -> bool {
    list.as_array()
        .unwrap()
        .iter()
        .any(|p| istio_match(p.as_str().unwrap(), value))
}

#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub(crate) host: &'static str,
    pub(crate) path: &'static str,
    /// Headers as the client sent them.
    pub(crate) headers: BTreeMap<String, String>,
    /// A token in `Authorization`: (issuer, claims), valid.
    pub(crate) token: Option<(String, BTreeMap<String, String>)>,
}

/// What an attribute of the request is, for AuthorizationPolicy.
pub(crate) fn attribute(req: &Request, principal: Option<&str>, key: &str) -> Option<String> {
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

pub(crate) fn rule_matches(rule: &Value, req: &Request, principal: Option<&str>) -> bool {
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

pub(crate) fn claims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
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
pub(crate) enum Edge {
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
pub(crate) enum Session {
    /// No session cookie: it answers with a login redirect (or 401).
    None,
    /// A valid session: it allows, and (worst case) adds no token.
    Valid,
}

/// `rule` as it applies on pod port `port`: `to` entries whose
/// `ports`/`notPorts` exclude the port are dropped (and the port keys
/// removed from the rest), `destination.port` conditions decided; `None`
/// when the rule can not match on this port.
pub(crate) fn rule_at_port(rule: &Value, port: u16) -> Option<Value> {
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

pub(crate) fn policies_match(
    policies: &[&Value],
    req: &Request,
    principal: Option<&str>,
    port: u16,
) -> bool {
    policies.iter().any(|p| {
        p["spec"]["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| rule_at_port(r, port))
            .any(|r| rule_matches(&r, req, principal))
    })
}

/// The HTTP routes a listener serves for `host`, as Istio builds them
/// (istio/istio master 86c9f01 `pilot/pkg/networking/core/gateway.go`
/// `buildGatewayHTTPRouteConfig`, lines 448-530): each bound
/// VirtualService's hosts are intersected with the server's hosts
/// (`pkg/config/host/names.go:83-99` `Intersection`: of two names where
/// one covers the other, the narrower), its routes are appended to the
/// virtual host of each name of that intersection, in order, and each
/// virtual host's catch-all routes (prefix `/` without header matches) are
/// moved last (`pilot/pkg/networking/core/route/route.go:1616-1644`
/// `SortVHostRoutes`). Envoy then picks the virtual host whose domain is
/// the most specific match for `host`. So Kubeflow's VirtualServices
/// (`hosts: ["*"]`) share the main host's virtual host with meshgen's
/// when the server names the host, and are shadowed by it when the server
/// is `*` (`tls.matchSNI: false`).
/// A VirtualService names the Gateway as `ns/name`, by its short name from
/// the Gateway's namespace, or by the legacy `name.ns[.…]`
/// (`pilot/pkg/model/config.go` 233-262).
pub(crate) fn listener_routes(t: &Tree, gateway: &Value, host: &str) -> Vec<Value> {
    let gw_ns = gateway["metadata"]["namespace"].as_str().unwrap();
    let gw_name = gateway["metadata"]["name"].as_str().unwrap();
    let server_hosts: Vec<&str> = gateway["spec"]["servers"][0]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    let legacy = format!("{gw_name}.{gw_ns}");
    // `a` is covered by `b` (istio `host.Name.SubsetOf`).
    let covered = |a: &str, b: &str| {
        b == "*"
            || a == b
            || b.strip_prefix('*')
                .is_some_and(|s| a.ends_with(s) && a.len() > s.len())
    };
    // (domain, routes) in document order.
    let mut vhosts: Vec<(String, Vec<Value>)> = Vec::new();
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
                g == format!("{gw_ns}/{gw_name}")
                    || (g == gw_name && vs_ns == gw_ns)
                    || g == legacy
                    || g.starts_with(&format!("{legacy}."))
            });
        if !bound {
            continue;
        }
        let routes = d["spec"]["http"].as_array().unwrap();
        for s in &server_hosts {
            let (ns, dns) = s.split_once('/').unwrap_or(("*", s));
            let ns_ok = match ns {
                "*" => true,
                "." => vs_ns == gw_ns,
                n => vs_ns == n,
            };
            if !ns_ok {
                continue;
            }
            for h in d["spec"]["hosts"].as_array().unwrap() {
                let h = h.as_str().unwrap();
                let domain = if covered(h, dns) {
                    h
                } else if covered(dns, h) {
                    dns
                } else {
                    continue;
                };
                match vhosts.iter_mut().find(|(d, _)| d == domain) {
                    Some((_, r)) => r.extend(routes.iter().cloned()),
                    None => vhosts.push((domain.to_string(), routes.clone())),
                }
            }
        }
    }
    // Envoy's choice of virtual host: the exact name, then the longest
    // wildcard suffix, then `*`.
    let rank = |domain: &str| -> Option<usize> {
        if domain == host {
            Some(usize::MAX)
        } else if domain == "*" {
            Some(0)
        } else {
            domain
                .strip_prefix('*')
                .filter(|s| host.ends_with(s) && host.len() > s.len())
                .map(str::len)
        }
    };
    let Some((_, routes)) = vhosts
        .into_iter()
        .filter_map(|(d, r)| rank(&d).map(|k| (k, r)))
        .max_by_key(|(k, _)| *k)
    else {
        return Vec::new();
    };
    let catch_all = |r: &Value| {
        let m = &r["match"];
        match m.as_array() {
            None => true,
            Some(m) if m.is_empty() => true,
            Some(m) => m.iter().all(|m| {
                m.get("headers").is_none()
                    && m.get("queryParams").is_none()
                    && (m["uri"]["prefix"] == "/" || m["uri"]["regex"] == ".*")
            }),
        }
    };
    let (mut first, last): (Vec<Value>, Vec<Value>) =
        routes.into_iter().partition(|r| !catch_all(r));
    first.extend(last);
    first
}

/// A request at the gateway listener bound to pod port `port`.
pub(crate) fn at_listener(t: &Tree, req: &Request, port: u16, session: Session) -> Edge {
    at_listener_hop(t, req, port, session, 0)
}

pub(crate) fn at_listener_hop(
    t: &Tree,
    req: &Request,
    port: u16,
    session: Session,
    hops: u8,
) -> Edge {
    assert!(hops < 3, "the gateway relays to itself in a loop");
    // Routing (and the HTTPS listener's SNI) ignores the port in `:authority`.
    let host = req.host.split(':').next().unwrap();
    let Some(listener) = listener_at(t, port, host) else {
        return Edge::Denied(format!("no listener on {port} takes {host}"));
    };
    // 1. CUSTOM: ext-authz (before any token is verified).
    let mut raw = req.clone();
    if req.token.is_some() {
        raw.headers
            .insert("authorization".into(), "Bearer x".into());
    }
    if policies_match(&attached_gateway_policies(t, "CUSTOM"), &raw, None, port)
        && session == Session::None
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
        &attached_gateway_policies(t, "DENY"),
        &seen,
        principal.as_deref(),
        port,
    ) {
        return Edge::Denied(format!("DENY on {port}"));
    }
    let allow = attached_gateway_policies(t, "ALLOW");
    if !allow.is_empty() && !policies_match(&allow, &seen, principal.as_deref(), port) {
        return Edge::Denied(format!("no ALLOW on {port}"));
    }
    // 4. The route.
    let routes = routes_at(t, &listener, host);
    let Some(route) = routes.iter().find(|r| r.matches(req.path)) else {
        return Edge::Denied("404".into());
    };
    match &route.action {
        Action::Redirect { scheme, port } => {
            let default = (scheme == "https" && *port == 443) || (scheme == "http" && *port == 80);
            let port = if default {
                String::new()
            } else {
                format!(":{port}")
            };
            return Edge::Redirect(format!("{scheme}://{host}{port}{}", req.path));
        }
        // The gateway's hop to itself (the HTTP listener relaying to HTTPS).
        Action::Relay(public_port) => return self_hop(t, req, *public_port, session, hops),
        Action::Unresolved(why) => return Edge::Denied(why.clone()),
        Action::Upstream => {}
    }
    for h in &route.remove {
        headers_remove(&mut seen.headers, h);
    }
    Edge::Upstream {
        route: route.name.clone(),
        port,
        identity: seen
            .headers
            .into_iter()
            .filter(|(k, _)| k == "kubeflow-userid" || k == "kubeflow-groups")
            .collect(),
        hsts: listener.https && route.hsts,
    }
}

pub(crate) fn headers_remove(h: &mut BTreeMap<String, String>, name: &str) {
    h.remove(name);
}

/// jwt_authn: the token (if any) verified against the RequestAuthentication;
/// (headers after `outputClaimToHeaders`, the request principal). A token
/// of an issuer no rule names is not verified and yields no principal.
pub(crate) fn verify_token(
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
pub(crate) fn self_hop(
    t: &Tree,
    req: &Request,
    public_port: u16,
    session: Session,
    hops: u8,
) -> Edge {
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
        || listener_at(t, target, host)
            .and_then(|l| l.credential)
            .as_deref()
            != tls["credentialName"].as_str()
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
    if proxy_protocol(t) {
        return Edge::Denied("the relay's connection carries no PROXY header".into());
    }
    at_listener_hop(t, req, target, session, hops + 1)
}

pub(crate) fn get(host: &'static str, path: &'static str) -> Request {
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

/// The gateway's AuthorizationPolicies of one action that Istio attaches
/// to the gateway pods meshgen renders, in either routing API. istio
/// `pilot/pkg/model/policyattachment.go` (1.30.3) `ShouldAttachPolicy`: a
/// policy with `targetRefs` attaches only to pods whose
/// `gateway.networking.k8s.io/gateway-name` label names the Gateway it
/// targets (`workloadGatewayName`, lines 101-106, 123-136), and only in
/// the pod's own namespace (lines 185-197); a policy with a selector
/// attaches by the pod labels.
pub(crate) fn attached_gateway_policies<'a>(t: &'a Tree, action: &str) -> Vec<&'a Value> {
    let deployment = one(t, &format!("{GW_DIR}/Deployment.yaml"));
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let namespace = deployment["metadata"]["namespace"].clone();
    all_docs(t)
        .map(|(_, d)| d)
        .filter(|d| {
            d["kind"] == "AuthorizationPolicy"
                && d["metadata"]["namespace"] == namespace
                && d["spec"]["action"].as_str().unwrap_or("ALLOW") == action
        })
        .filter(|d| match d["spec"].get("targetRefs") {
            Some(refs) => refs.as_array().into_iter().flatten().any(|r| {
                r["group"] == "gateway.networking.k8s.io"
                    && r["kind"] == "Gateway"
                    && labels["gateway.networking.k8s.io/gateway-name"] == r["name"]
            }),
            None => match d["spec"]["selector"]["matchLabels"].as_object() {
                Some(m) => m.iter().all(|(k, v)| &labels[k] == v),
                None => false,
            },
        })
        .collect()
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

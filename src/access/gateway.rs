//! The gateway's side of the request model: a request at one of the
//! gateway pods' listeners, through Istio's filters, to a route.
//!
//! Filter order on a gateway listener, as Istio builds it (istio/istio
//! `pilot/pkg/networking/core/listener_builder.go`, the HTTP filters of a
//! gateway's HCM: authz CUSTOM (ext_authz), then authn (jwt_authn, from
//! RequestAuthentication), then authz DENY and ALLOW (RBAC)); the route
//! (with its header changes) comes after every filter.

use super::istio::{matching_policy, Request};
use super::m2m::jwks_fetch;
use super::routing::{listener_at, proxy_protocol, routes_at, Action};
use super::tree::{all_docs, items, one, port_of, text, ObjectRef, Trace, Tree};
use super::GATEWAY_DIR;
use serde_json::Value;
use std::collections::BTreeMap;

/// Why a request was refused, as the client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 401: a token was refused (issuer, audience, keys).
    Unauthenticated,
    /// 403: an authorization policy refused it.
    Forbidden,
    /// 404, or no listener takes the connection.
    NotRouted,
    /// 5xx: the route can not reach a backend.
    Unavailable,
}

/// A refusal: the status and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: Status,
    pub why: String,
}

impl Refusal {
    fn new(status: Status, why: impl Into<String>) -> Self {
        Refusal {
            status,
            why: why.into(),
        }
    }
}

/// What a request at one of the gateway's listeners ends in.
#[derive(Debug, Clone, PartialEq)]
pub enum Edge {
    /// The route answered with a redirect to this URL.
    Redirect(String),
    /// oauth2-proxy (ext-authz) answered: a login redirect with its
    /// `Secure` CSRF cookie, or 401; on this pod port.
    Login(u16),
    /// Refused at the gateway (401, 403, 404, a reset connection).
    Denied(Refusal),
    /// Reached an upstream route.
    Upstream {
        route: String,
        /// The pod port of the listener that served the route.
        port: u16,
        identity: BTreeMap<String, String>,
        /// The response carries Strict-Transport-Security.
        hsts: bool,
        /// The upstream Service (host, port), when the route names one.
        destination: Option<(String, u16)>,
    },
}

/// What oauth2-proxy knows of the client when ext-authz asks it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Session {
    /// No session cookie: it answers with a login redirect (or 401).
    None,
    /// A valid session: it allows, and (worst case) adds no token.
    Valid,
}

fn gw_file(name: &str) -> String {
    format!("{GATEWAY_DIR}/{name}")
}

/// The gateway's AuthorizationPolicies of one action that Istio attaches
/// to the gateway pods meshgen renders, in either routing API. istio
/// `pilot/pkg/model/policyattachment.go` (1.30.3) `ShouldAttachPolicy`: a
/// policy with `targetRefs` attaches only to pods whose
/// `gateway.networking.k8s.io/gateway-name` label names the Gateway it
/// targets (`workloadGatewayName`, lines 101-106, 123-136), and only in
/// the pod's own namespace (lines 185-197); a policy with a selector
/// attaches by the pod labels.
pub fn attached_gateway_policies<'a>(t: &'a Tree, action: &str) -> Vec<&'a Value> {
    let Some(deployment) = one(t, &gw_file("Deployment.yaml")) else {
        return Vec::new();
    };
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let namespace = &deployment["metadata"]["namespace"];
    all_docs(t)
        .map(|(_, d)| d)
        .filter(|d| {
            d["kind"] == "AuthorizationPolicy"
                && d["metadata"]["namespace"] == *namespace
                && d["spec"]["action"].as_str().unwrap_or("ALLOW") == action
        })
        .filter(|d| match d["spec"].get("targetRefs") {
            Some(refs) => items(refs).any(|r| {
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

/// A request at the gateway listener bound to pod port `port`.
pub fn at_listener(t: &Tree, req: &Request, port: u16, session: Session) -> Edge {
    at_listener_traced(t, req, port, session, &mut Trace::default())
}

/// [`at_listener`], noting each step that decided the request.
pub fn at_listener_traced(
    t: &Tree,
    req: &Request,
    port: u16,
    session: Session,
    trace: &mut Trace,
) -> Edge {
    at_listener_hop(t, req, port, session, 0, trace)
}

fn at_listener_hop(
    t: &Tree,
    req: &Request,
    port: u16,
    session: Session,
    hops: u8,
    trace: &mut Trace,
) -> Edge {
    if hops >= 3 {
        return Edge::Denied(Refusal::new(
            Status::Unavailable,
            "the gateway relays to itself in a loop",
        ));
    }
    // Routing (and the HTTPS listener's SNI) ignores the port in `:authority`.
    let host = req.host.split(':').next().unwrap_or_default();
    let Some(listener) = listener_at(t, port, host) else {
        trace.note(format!("no listener on pod port {port} takes {host}"), None);
        return Edge::Denied(Refusal::new(
            Status::NotRouted,
            format!("no listener on {port} takes {host}"),
        ));
    };
    trace.note(
        format!(
            "the {} listener on pod port {port} takes {host}",
            if listener.https { "HTTPS" } else { "HTTP" }
        ),
        listener.object.clone(),
    );
    // 1. CUSTOM: ext-authz (before any token is verified).
    let mut raw = req.clone();
    if req.token.is_some() {
        raw.headers
            .insert("authorization".into(), "Bearer x".into());
    }
    if let Some(p) = matching_policy(&attached_gateway_policies(t, "CUSTOM"), &raw, None, port) {
        if session == Session::None {
            trace.about(
                t,
                p,
                "ext-authz (CUSTOM) asks the login; without a session it answers with a login redirect",
            );
            return Edge::Login(port);
        }
        trace.about(
            t,
            p,
            "ext-authz (CUSTOM) asks the login: the session is valid",
        );
    }
    // 2. jwt_authn, 3. DENY and ALLOW.
    let (headers, principal) = match verify_token(t, req, trace) {
        Ok(x) => x,
        Err(why) => return Edge::Denied(why),
    };
    let mut seen = req.clone();
    seen.headers = headers;
    if req.token.is_some() {
        seen.headers
            .insert("authorization".into(), "Bearer x".into());
    }
    let deny = attached_gateway_policies(t, "DENY");
    if let Some(p) = matching_policy(&deny, &seen, principal.as_deref(), port) {
        trace.about(t, p, format!("a DENY rule matches on pod port {port}: 403"));
        return Edge::Denied(Refusal::new(Status::Forbidden, format!("DENY on {port}")));
    }
    let allow = attached_gateway_policies(t, "ALLOW");
    if !allow.is_empty() {
        match matching_policy(&allow, &seen, principal.as_deref(), port) {
            Some(p) => trace.about(t, p, format!("an ALLOW rule matches on pod port {port}")),
            None => {
                trace.note(
                    format!(
                        "no ALLOW rule of the {} ALLOW policies on the gateway matches on pod port {port}: 403",
                        allow.len()
                    ),
                    None,
                );
                return Edge::Denied(Refusal::new(
                    Status::Forbidden,
                    format!("no ALLOW on {port}"),
                ));
            }
        }
    }
    // 4. The route.
    let routes = routes_at(t, &listener, host);
    let Some(route) = routes.iter().find(|r| r.matches(&req.path)) else {
        trace.note(
            format!("no route of {host} matches {}: 404", req.path),
            None,
        );
        return Edge::Denied(Refusal::new(Status::NotRouted, "404"));
    };
    let name = if route.name.is_empty() {
        String::new()
    } else {
        format!(" `{}`", route.name)
    };
    match &route.action {
        Action::Redirect { scheme, port } => {
            let default = (scheme == "https" && *port == 443) || (scheme == "http" && *port == 80);
            let port = if default {
                String::new()
            } else {
                format!(":{port}")
            };
            let to = format!("{scheme}://{host}{port}{}", req.path);
            trace.note(
                format!("the route{name} redirects to {to}"),
                route.object.clone(),
            );
            return Edge::Redirect(to);
        }
        // The gateway's hop to itself (the HTTP listener relaying to HTTPS).
        Action::Relay(public_port) => {
            trace.note(
                format!("the route{name} relays to the gateway's own port {public_port}"),
                route.object.clone(),
            );
            return self_hop(t, req, *public_port, session, hops, trace);
        }
        Action::Unresolved(why) => {
            trace.note(format!("the route{name}: {why}"), route.object.clone());
            return Edge::Denied(Refusal::new(Status::Unavailable, why.clone()));
        }
        Action::Upstream => {}
    }
    for h in &route.remove {
        seen.headers.remove(h);
    }
    let identity: BTreeMap<String, String> = seen
        .headers
        .into_iter()
        .filter(|(k, _)| k == "kubeflow-userid" || k == "kubeflow-groups")
        .collect();
    trace.note(
        format!(
            "the route{name} sends it to {}{}",
            route
                .destination
                .as_ref()
                .map_or("its upstream".to_string(), |(h, p)| format!("{h}:{p}")),
            if identity.is_empty() {
                String::from(" without identity headers")
            } else {
                format!(" with {identity:?}")
            }
        ),
        route.object.clone(),
    );
    Edge::Upstream {
        route: route.name.clone(),
        port,
        identity,
        hsts: listener.https && route.hsts,
        destination: route.destination.clone(),
    }
}

/// The gateway's RequestAuthentication (its `jwtRules`), with its file.
pub fn gateway_jwt_rules(t: &Tree) -> Option<(ObjectRef, &Value)> {
    let file = gw_file("RequestAuthentication-jwt.yaml");
    let ra = one(t, &file)?;
    Some((ObjectRef::of(&file, ra), &ra["spec"]["jwtRules"]))
}

/// Headers after jwt_authn, and the request principal.
pub type Verified = (BTreeMap<String, String>, Option<String>);

/// jwt_authn: the token (if any) verified against the RequestAuthentication;
/// (headers after `outputClaimToHeaders`, the request principal). A token
/// of an issuer no rule names is not verified and yields no principal.
pub fn verify_token(t: &Tree, req: &Request, trace: &mut Trace) -> Result<Verified, Refusal> {
    let mut headers = req.headers.clone();
    let Some((iss, claims)) = &req.token else {
        return Ok((headers, None));
    };
    let Some((object, rules)) = gateway_jwt_rules(t) else {
        trace.note(
            "no RequestAuthentication at the gateway: the token is not verified",
            None,
        );
        return Ok((headers, None));
    };
    let Some(rule) = items(rules).find(|r| r["issuer"] == iss.as_str()) else {
        trace.note(
            format!("no jwtRule names the issuer {iss}: the token is not verified"),
            Some(object),
        );
        return Ok((headers, None));
    };
    // A token whose audience the rule does not list is invalid (401); no
    // `audiences` checks none (istio/istio
    // `pilot/pkg/security/authn/policy_applier.go`: `Audiences` copied to
    // the Envoy provider as they are).
    if let Some(auds) = rule.get("audiences").and_then(Value::as_array) {
        let aud = claims.get("aud").map(String::as_str);
        if !auds.is_empty() && !auds.iter().any(|a| a.as_str() == aud) {
            let why = format!("401: audience {aud:?} not accepted");
            trace.note(
                format!("the jwtRule of {iss} does not accept the audience {aud:?}: 401"),
                Some(object),
            );
            return Err(Refusal::new(Status::Unauthenticated, why));
        }
    }
    if let Err(why) = jwks_fetch(t, rule) {
        trace.note(
            format!("the keys of {iss} can not be fetched: {why}"),
            Some(object),
        );
        return Err(Refusal::new(Status::Unauthenticated, why));
    }
    let mut copied = Vec::new();
    for o in items(&rule["outputClaimToHeaders"]) {
        if let Some(v) = claims.get(text(&o["claim"])) {
            let header = text(&o["header"]).to_string();
            copied.push(header.clone());
            headers.insert(header, v.clone());
        }
    }
    trace.note(
        format!(
            "the token of {iss} is verified{}",
            if copied.is_empty() {
                String::new()
            } else {
                format!("; its claims replace {}", copied.join(", "))
            }
        ),
        Some(object),
    );
    let principal = format!("{iss}/{}", claims.get("sub").cloned().unwrap_or_default());
    Ok((headers, Some(principal)))
}

/// The gateway's hop to itself: a connection from the gateway pod to the
/// ServiceEntry's target port, as the HTTP listener's relay makes it.
fn self_hop(
    t: &Tree,
    req: &Request,
    public_port: u16,
    session: Session,
    hops: u8,
    trace: &mut Trace,
) -> Edge {
    let refuse = |why: String| Edge::Denied(Refusal::new(Status::Unavailable, why));
    let Some(se) = one(t, &gw_file("ServiceEntry.yaml")) else {
        return refuse("no ServiceEntry for the gateway's own host".into());
    };
    let Some(target) = items(&se["spec"]["ports"])
        .find(|p| p["number"] == public_port)
        .and_then(|p| port_of(&p["targetPort"]))
    else {
        return refuse(format!(
            "the gateway's ServiceEntry has no port {public_port}"
        ));
    };
    // The HTTPS listener speaks TLS: the hop must originate it, and verify
    // the certificate the listener serves (its Secret's CA, its name).
    let host = text(&se["spec"]["hosts"][0]);
    let tls = all_docs(t)
        .map(|(_, d)| d)
        .filter(|d| d["kind"] == "DestinationRule" && d["spec"]["host"] == host)
        .flat_map(|d| items(&d["spec"]["trafficPolicy"]["portLevelSettings"]))
        .find(|s| s["port"]["number"] == public_port)
        .map(|s| s["tls"].clone());
    let Some(tls) = tls.filter(|t| t["mode"] == "SIMPLE") else {
        return refuse("the relay speaks plain text to the HTTPS listener".into());
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
        return refuse(format!(
            "the relay does not verify the gateway's certificate: {tls}"
        ));
    }
    // A PROXY protocol listener filter on every gateway listener expects a
    // PROXY header on each connection; the relay's connection has none.
    if proxy_protocol(t) {
        return refuse("the relay's connection carries no PROXY header".into());
    }
    at_listener_hop(t, req, target, session, hops + 1, trace)
}

//! One request, explained: who sends it (a signed-in user, a service
//! account's token, nobody, or a pod of the mesh), the verdict, and each
//! step of the model that decided it (what the tree holds that the model
//! does not evaluate is `coverage::unmodelled`, once per tree). `meshgen access explain` prints
//! this; `meshgen access check` compares the verdict with an expectation.

use super::ambient::at_destination_traced;
use super::egress::{egress, outbound_policy_of, Outbound};
use super::gateway::{at_listener_traced, gateway_jwt_rules, Edge, Session, Status};
use super::istio::Request;
use super::m2m::gateway_principal;
use super::netpol::{namespace_labels, PodRef};
use super::network::{gateway_pod, network_decision};
use super::routing::gateway_port;
use super::sidecar::{pod_behind, Inbound, Pod};
use super::tree::{all_docs, items, one, port_of, text, ObjectRef, Trace, Tree};
use super::{at_gateway, gateway_dirs, swap_gateway_path, GATEWAY_DIR};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Who sends the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A user signed in through the login (a valid session, and the ID
    /// token the gateway verifies), with the groups the identity provider
    /// gives them.
    User { email: String, groups: Vec<String> },
    /// A Kubernetes service account's token (machine to machine).
    ServiceAccount { namespace: String, name: String },
    /// No session, no token.
    Anonymous,
    /// A pod of the mesh, by its namespace and service account, calling a
    /// Service directly.
    Pod { namespace: String, account: String },
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::User { email, groups } if groups.is_empty() => write!(f, "user {email}"),
            Caller::User { email, groups } => {
                write!(f, "user {email} (IdP groups {})", groups.join(", "))
            }
            Caller::ServiceAccount { namespace, name } => {
                write!(f, "service account {namespace}/{name}")
            }
            Caller::Anonymous => write!(f, "anonymous"),
            Caller::Pod { namespace, account } => write!(f, "a pod of {namespace} as {account}"),
        }
    }
}

/// The answer to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The destination's container receives it.
    Allow,
    /// A redirect (the HTTP port to HTTPS).
    Redirect,
    /// The login answers (a redirect to sign in, or 401 for an API client).
    Login,
    /// 401: a token was refused.
    Unauthenticated,
    /// Refused by a policy (403) or a NetworkPolicy.
    Deny,
    /// No listener or route takes it (404, or the connection fails).
    NotRouted,
    /// The route has no usable backend (5xx).
    Error,
}

impl Verdict {
    /// Every verdict, by the name `check` files use.
    pub const ALL: [(&'static str, Verdict); 7] = [
        ("allow", Verdict::Allow),
        ("redirect", Verdict::Redirect),
        ("login", Verdict::Login),
        ("unauthenticated", Verdict::Unauthenticated),
        ("deny", Verdict::Deny),
        ("not-routed", Verdict::NotRouted),
        ("error", Verdict::Error),
    ];

    /// The verdict named `name` in a check file.
    pub fn parse(name: &str) -> Option<Verdict> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// Its name in a check file.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("allow", |(n, _)| n)
    }

    /// How `explain` says it.
    pub fn describe(self) -> &'static str {
        match self {
            Verdict::Allow => "allowed",
            Verdict::Redirect => "redirected",
            Verdict::Login => "login redirect (401 for an API client)",
            Verdict::Unauthenticated => "401 unauthenticated",
            Verdict::Deny => "403 denied",
            Verdict::NotRouted => "not routed",
            Verdict::Error => "5xx: no usable backend",
        }
    }
}

/// The model's answer to one request.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub verdict: Verdict,
    /// What the verdict rests on in a word: the redirect's URL, the
    /// refusal's reason, a destination the tree does not hold.
    pub detail: String,
    pub steps: Trace,
}

/// A URL split the way the gateway reads it.
struct Url {
    https: bool,
    /// `:authority`, with the port when one is given.
    authority: String,
    host: String,
    port: Option<u16>,
    path: String,
}

fn parse_url(url: &str) -> Result<Url, String> {
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    // The path Istio's `paths` see has no query (Envoy's `url_path`).
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            Some(
                p.parse::<u16>()
                    .map_err(|_| format!("`{url}`: `{p}` is not a port"))?,
            ),
        ),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(format!("`{url}` names no host"));
    }
    Ok(Url {
        https,
        authority: authority.to_ascii_lowercase(),
        host: host.to_ascii_lowercase(),
        port,
        path: path.to_string(),
    })
}

/// Explains `method url` sent by `caller` through the tree.
pub fn explain(t: &Tree, caller: &Caller, method: &str, url: &str) -> Result<Explanation, String> {
    let url = parse_url(url)?;
    let mut steps = Trace::default();
    let (verdict, detail) = match caller {
        Caller::Pod { namespace, account } => {
            from_pod(t, namespace, account, method, &url, &mut steps)?
        }
        _ => match pick_gateway(t, &url, &mut steps) {
            Ok(dir) if dir == GATEWAY_DIR => through_gateway(t, caller, method, &url, &mut steps),
            Ok(dir) => {
                let view = at_gateway(t, &dir);
                let mut trace = Trace::default();
                let answer = through_gateway(&view, caller, method, &url, &mut trace);
                // The steps name the files of the tree, not of the view.
                for mut step in trace.0 {
                    if let Some(o) = step.object.as_mut() {
                        o.file = swap_gateway_path(&o.file, &dir);
                    }
                    steps.0.push(step);
                }
                answer
            }
            Err(served) => {
                steps.note(
                    format!(
                        "no gateway serves {}: the gateways serve {}",
                        url.host,
                        served.join(", ")
                    ),
                    None,
                );
                (
                    Verdict::NotRouted,
                    format!("no gateway serves {}", url.host),
                )
            }
        },
    };
    Ok(Explanation {
        verdict,
        detail,
        steps,
    })
}

/// The hosts the gateway whose objects are in `dir` serves: its Istio
/// Gateways' `servers[].hosts` (without the `namespace/` part), or its
/// Gateway API Gateway's `listeners[].hostname` (`*` when a listener
/// names none).
fn served_hosts(t: &Tree, dir: &str) -> Vec<String> {
    let prefix = format!("{dir}/");
    let mut hosts: Vec<String> = Vec::new();
    for (_, d) in t
        .iter()
        .filter(|(p, _)| p.strip_prefix(&prefix).is_some_and(|f| !f.contains('/')))
        .flat_map(|(p, docs)| docs.iter().map(move |d| (p, d)))
        .filter(|(_, d)| d["kind"] == "Gateway")
    {
        let named = items(&d["spec"]["servers"])
            .flat_map(|s| items(&s["hosts"]))
            .map(|h| {
                text(h)
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase()
            });
        let listened = items(&d["spec"]["listeners"])
            .map(|l| l["hostname"].as_str().unwrap_or("*").to_ascii_lowercase());
        for h in named.chain(listened).filter(|h| !h.is_empty()) {
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
    }
    hosts
}

/// How well the served host `pattern` names `host` (none: it does not):
/// an exact name, then the longest wildcard suffix, then `*`, as Istio
/// matches hosts (istio/istio pkg/config/host/name.go:37-60 `Matches`: a
/// wildcard matches the names ending with what follows its `*`).
fn host_rank(pattern: &str, host: &str) -> Option<usize> {
    if pattern == host {
        Some(usize::MAX)
    } else if pattern == "*" {
        Some(0)
    } else {
        pattern
            .strip_prefix('*')
            .filter(|s| host.ends_with(s) && host.len() > s.len())
            .map(str::len)
    }
}

/// The directory of the gateway a client reaches for `url` (one of
/// [`gateway_dirs`]): the one serving the URL's host, as the client's DNS
/// would point the name at that gateway's Service; among gateways serving
/// it equally well, one whose Service has the URL's port. A tree with one
/// gateway (or none) is read as it is ([`GATEWAY_DIR`]). `Err`: no
/// gateway serves the host, and the hosts the gateways do serve.
fn pick_gateway(t: &Tree, url: &Url, steps: &mut Trace) -> Result<String, Vec<String>> {
    let dirs = gateway_dirs(t);
    if dirs.len() < 2 {
        return Ok(GATEWAY_DIR.to_string());
    }
    let public = url.port.unwrap_or(if url.https { 443 } else { 80 });
    let mut served = Vec::new();
    let mut best: Option<((usize, bool), &String)> = None;
    for dir in &dirs {
        let hosts = served_hosts(t, dir);
        let rank = hosts.iter().filter_map(|h| host_rank(h, &url.host)).max();
        for h in hosts {
            if !served.contains(&h) {
                served.push(h);
            }
        }
        let Some(rank) = rank else { continue };
        let service = one(t, &format!("{dir}/Service.yaml"));
        let has_port =
            service.is_some_and(|s| items(&s["spec"]["ports"]).any(|p| p["port"] == public));
        if best.is_none_or(|(k, _)| (rank, has_port) > k) {
            best = Some(((rank, has_port), dir));
        }
    }
    let Some((_, dir)) = best else {
        return Err(served);
    };
    let file = format!("{dir}/Gateway.yaml");
    steps.note(
        format!("{} is served by the gateway of {dir}", url.host),
        one(t, &file).map(|d| ObjectRef::of(&file, d)),
    );
    Ok(dir.clone())
}

/// The jwtRule of the gateway that copies `claim` into a header (the
/// users' issuer copies `email`, the cluster's `sub`).
fn rule_copying<'a>(rules: &'a Value, claim: &str) -> Option<&'a Value> {
    items(rules).find(|r| items(&r["outputClaimToHeaders"]).any(|o| o["claim"] == claim))
}

/// The audience a token for `rule` carries: `preferred` when the rule
/// accepts it, else the first it accepts.
fn audience(rule: &Value, preferred: &str) -> Option<String> {
    let auds: Vec<&str> = items(&rule["audiences"]).map(text).collect();
    if auds.is_empty() || auds.contains(&preferred) {
        return Some(preferred.to_string());
    }
    auds.first().map(|a| a.to_string())
}

/// A token: its issuer, its claims as the gateway reads them (flat), and
/// as a destination reads them (JSON, list claims as lists).
type Token = (String, BTreeMap<String, String>, Value);

/// The token `caller` presents at the gateway, and its session.
fn token_of(t: &Tree, caller: &Caller, steps: &mut Trace) -> (Option<Token>, Session) {
    let rules = gateway_jwt_rules(t);
    match caller {
        Caller::User { email, groups } => {
            let Some((object, rule)) = rules
                .as_ref()
                .and_then(|(o, r)| rule_copying(r, "email").map(|x| (o, x)))
            else {
                steps.note(
                    "the gateway verifies no issuer of user tokens: the user has a session and no token",
                    None,
                );
                return (None, Session::Valid);
            };
            let iss = text(&rule["issuer"]).to_string();
            // dex's ID tokens name the client they were issued to
            // (oauth2-proxy), which passes them on with the session.
            let aud = audience(rule, "oauth2-proxy").unwrap_or_default();
            let mut flat = BTreeMap::from([
                ("sub".to_string(), email.clone()),
                ("email".to_string(), email.clone()),
                ("aud".to_string(), aud.clone()),
            ]);
            let mut full = json!({"sub": email, "email": email, "aud": aud});
            if !groups.is_empty() {
                flat.insert("groups".into(), groups.join(","));
                full["groups"] = json!(groups);
            }
            steps.note(
                format!("a signed-in browser: a valid session, and an ID token of {iss} for audience {aud}"),
                Some(object.clone()),
            );
            (Some((iss, flat, full)), Session::Valid)
        }
        Caller::ServiceAccount { namespace, name } => {
            let sub = format!("system:serviceaccount:{namespace}:{name}");
            let found = rules.as_ref().and_then(|(o, r)| {
                rule_copying(r, "sub")
                    .or_else(|| items(r).find(|x| text(&x["issuer"]).contains("kubernetes")))
                    .map(|x| (o, x))
            });
            let (iss, aud) = match found {
                Some((object, rule)) => {
                    let iss = text(&rule["issuer"]).to_string();
                    let aud = audience(rule, "istio-ingressgateway").unwrap_or_default();
                    steps.note(
                        format!("a service account token of {iss} for audience {aud}, no session"),
                        Some(object.clone()),
                    );
                    (iss, aud)
                }
                None => {
                    let iss = "https://kubernetes.default.svc.cluster.local".to_string();
                    steps.note(
                        format!("the gateway verifies no service account tokens: a token of {iss}, no session"),
                        None,
                    );
                    (iss.clone(), iss)
                }
            };
            let flat = BTreeMap::from([
                ("sub".to_string(), sub.clone()),
                ("aud".to_string(), aud.clone()),
            ]);
            (
                Some((iss, flat, json!({"sub": sub, "aud": aud}))),
                Session::None,
            )
        }
        Caller::Anonymous | Caller::Pod { .. } => (None, Session::None),
    }
}

/// The gateway pod port a client's connection to `url` reaches: the
/// gateway Service's target port for the URL's port.
fn pod_port(t: &Tree, url: &Url) -> Option<u16> {
    let public = url.port.unwrap_or(if url.https { 443 } else { 80 });
    let service = one(t, &format!("{GATEWAY_DIR}/Service.yaml"));
    service
        .and_then(|s| items(&s["spec"]["ports"]).find(|p| p["port"] == public))
        .and_then(|p| port_of(&p["targetPort"]))
        .or_else(|| {
            url.port
                .is_none()
                .then(|| gateway_port(t, if url.https { "https" } else { "http" }))
                .flatten()
        })
}

fn from_edge(edge: &Edge) -> (Verdict, String) {
    match edge {
        Edge::Redirect(to) => (Verdict::Redirect, to.clone()),
        Edge::Login(port) => (Verdict::Login, format!("by ext-authz on pod port {port}")),
        Edge::Denied(r) => (
            match r.status {
                Status::Unauthenticated => Verdict::Unauthenticated,
                Status::Forbidden => Verdict::Deny,
                Status::NotRouted => Verdict::NotRouted,
                Status::Unavailable => Verdict::Error,
            },
            r.why.clone(),
        ),
        Edge::Upstream { route, .. } => (Verdict::Allow, format!("route `{route}`")),
    }
}

fn through_gateway(
    t: &Tree,
    caller: &Caller,
    method: &str,
    url: &Url,
    steps: &mut Trace,
) -> (Verdict, String) {
    let Some(port) = pod_port(t, url) else {
        steps.note(
            format!(
                "the gateway's Service has no port {}",
                url.port.map_or("for this scheme".into(), |p| p.to_string())
            ),
            None,
        );
        return (Verdict::NotRouted, "no gateway port".into());
    };
    let (token, session) = token_of(t, caller, steps);
    let req = Request {
        host: url.authority.clone(),
        path: url.path.clone(),
        method: method.to_string(),
        headers: BTreeMap::new(),
        token: token.as_ref().map(|(i, flat, _)| (i.clone(), flat.clone())),
    };
    let edge = at_listener_traced(t, &req, port, session, steps);
    let Edge::Upstream {
        identity,
        destination,
        ..
    } = &edge
    else {
        return from_edge(&edge);
    };
    let Some((host, service_port)) = destination else {
        return (Verdict::Allow, "the route names no Service".into());
    };
    // The token goes on when the gateway's rule for its issuer says so.
    let forwarded = token.as_ref().filter(|(iss, _, _)| {
        gateway_jwt_rules(t).is_some_and(|(_, rules)| {
            items(rules).any(|r| r["issuer"] == iss.as_str() && r["forwardOriginalToken"] == true)
        })
    });
    let Some((pod, assumed)) = destination_pod(t, host, *service_port, steps) else {
        return (
            Verdict::Allow,
            format!("at the gateway; {host} is not in the tree, so its own policies are unknown (add them with --with)"),
        );
    };
    if let Some(from) = gateway_pod(t) {
        if !network_allows(t, &from, &pod, steps) {
            return (
                Verdict::Deny,
                format!("a NetworkPolicy of {} refuses the gateway", pod.namespace),
            );
        }
    }
    let inbound = Inbound {
        pod,
        principal: Some(gateway_principal(t)),
        method: method.to_string(),
        path: url.path.clone(),
        headers: identity.clone(),
        token: forwarded.map(|(iss, _, full)| (iss.clone(), full.clone())),
        sni: None,
    };
    at_destination(t, &inbound, host, assumed, steps)
}

fn at_destination(
    t: &Tree,
    inbound: &Inbound,
    host: &str,
    assumed: bool,
    steps: &mut Trace,
) -> (Verdict, String) {
    let mut first = Trace::default();
    if at_destination_traced(t, inbound, &mut first) {
        steps.0.extend(first.0);
        return (Verdict::Allow, format!("{host} receives it"));
    }
    // A pod the tree does not hold: its Service's target port is unknown;
    // each port the namespace's policies name is a port it may target.
    if assumed {
        for port in policy_ports(t, &inbound.pod.namespace) {
            let mut other = inbound.clone();
            other.pod.port = port;
            let mut trace = Trace::default();
            if port != inbound.pod.port && at_destination_traced(t, &other, &mut trace) {
                steps.note(
                    format!(
                        "if the Service targets port {port} (a port the policies of {} name):",
                        inbound.pod.namespace
                    ),
                    None,
                );
                steps.0.extend(trace.0);
                return (
                    Verdict::Allow,
                    format!("{host} receives it if its Service targets port {port}"),
                );
            }
        }
    }
    steps.0.extend(first.0);
    (Verdict::Deny, format!("refused at {host}"))
}

/// The ports the AuthorizationPolicies of `ns` name, in tree order.
fn policy_ports(t: &Tree, ns: &str) -> Vec<u16> {
    let mut ports: Vec<u16> = all_docs(t)
        .filter(|(_, d)| d["kind"] == "AuthorizationPolicy" && d["metadata"]["namespace"] == ns)
        .flat_map(|(_, d)| items(&d["spec"]["rules"]))
        .flat_map(|r| items(&r["to"]))
        .flat_map(|o| items(&o["operation"]["ports"]))
        .filter_map(|p| text(p).parse().ok())
        .collect();
    ports.dedup();
    ports
}

/// The pod behind `host:port`; when the tree has no workload for it (a
/// profile's notebook, made by a controller at run time), a pod of its
/// namespace without labels (the namespace-wide policies), if the tree
/// holds anything of that namespace (then `true`: an assumed pod).
fn destination_pod(t: &Tree, host: &str, port: u16, steps: &mut Trace) -> Option<(Pod, bool)> {
    match pod_behind(t, host, port) {
        Ok(pod) => {
            steps.note(
                format!(
                    "{host}:{port} is served by pods of {} on port {}",
                    pod.namespace, pod.port
                ),
                None,
            );
            Some((pod, false))
        }
        Err(why) => {
            let ns = host.split('.').nth(1).unwrap_or_default();
            if !namespace_in_tree(t, ns) {
                steps.note(
                    format!("{host}:{port}: {why}, and the tree holds nothing of namespace {ns}"),
                    None,
                );
                return None;
            }
            steps.note(
                format!("{host}:{port}: {why}; judged at a pod of {ns} without labels, on port {port} (the namespace-wide policies)"),
                None,
            );
            // What such a pod misses: the policies that select by label.
            for (file, d) in all_docs(t) {
                if matches!(
                    text(&d["kind"]),
                    "AuthorizationPolicy" | "RequestAuthentication" | "PeerAuthentication"
                ) && d["metadata"]["namespace"] == ns
                    && d["spec"]["selector"]["matchLabels"].is_object()
                {
                    steps.note(
                        "not applied at a pod without labels: it selects pods by label (give the workload with --with)",
                        Some(ObjectRef::of(file, d)),
                    );
                }
            }
            Some((
                Pod {
                    namespace: ns.to_string(),
                    labels: BTreeMap::new(),
                    port,
                },
                true,
            ))
        }
    }
}

fn network_allows(t: &Tree, from: &Pod, to: &Pod, steps: &mut Trace) -> bool {
    let (ok, objects) = network_decision(t, from, to);
    match (ok, objects.first()) {
        (true, Some(o)) => steps.note("a NetworkPolicy admits the connection", Some(o.clone())),
        (true, None) => {}
        (false, _) => {
            for o in objects {
                steps.note(
                    format!("this NetworkPolicy selects the pods of {} and admits no connection from {}", to.namespace, from.namespace),
                    Some(o),
                );
            }
        }
    }
    ok
}

fn from_pod(
    t: &Tree,
    namespace: &str,
    account: &str,
    method: &str,
    url: &Url,
    steps: &mut Trace,
) -> Result<(Verdict, String), String> {
    let mut parts = url.host.split('.');
    let (name, ns) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let rest: Vec<&str> = parts.collect();
    let port = url.port.unwrap_or(if url.https { 443 } else { 80 });
    let principal = format!("cluster.local/ns/{namespace}/sa/{account}");
    // A name of the cluster's DNS: `<service>.<namespace>`, with
    // `.svc[.cluster.local]` or without when the tree holds that namespace
    // (a pod's resolver tries `<name>.svc.cluster.local` first, its
    // search domains). Any other host is outside the cluster.
    let service_name = rest == ["svc"] || rest == ["svc", "cluster", "local"];
    let outside = url.host.parse::<Ipv4Addr>().is_ok()
        || (!ns.is_empty()
            && (!(service_name || rest.is_empty())
                || (rest.is_empty() && !namespace_in_tree(t, ns))));
    if !outside && ns.is_empty() {
        return Err(format!(
            "--from-pod calls a Service (<service>.<namespace>[.svc[.cluster.local]]) or a host outside the cluster, not `{}`",
            url.host
        ));
    }
    steps.note(
        format!("a pod of {namespace} with the mTLS identity {principal}"),
        None,
    );
    if outside {
        return Ok(to_outside(t, namespace, &url.host, port, steps));
    }
    let host = format!("{name}.{ns}.svc.cluster.local");
    let Some((pod, assumed)) = destination_pod(t, &host, port, steps) else {
        return Ok((
            Verdict::NotRouted,
            format!("{host} is not in the tree (add it with --with)"),
        ));
    };
    let from = Pod {
        namespace: namespace.to_string(),
        labels: BTreeMap::new(),
        port: 0,
    };
    if !network_allows(t, &from, &pod, steps) {
        return Ok((
            Verdict::Deny,
            format!("a NetworkPolicy of {} refuses {namespace}", pod.namespace),
        ));
    }
    let inbound = Inbound {
        pod,
        principal: Some(principal),
        method: method.to_string(),
        path: url.path.clone(),
        headers: BTreeMap::new(),
        token: None,
        sni: None,
    };
    Ok(at_destination(t, &inbound, &host, assumed, steps))
}

/// Whether the tree holds namespace `ns` or anything of it.
fn namespace_in_tree(t: &Tree, ns: &str) -> bool {
    all_docs(t).any(|(_, d)| {
        d["metadata"]["namespace"] == ns
            || (d["kind"] == "Namespace" && d["metadata"]["name"] == ns)
    })
}

/// The address a host outside the cluster is taken to resolve to when
/// the URL names it by name: a public address (RFC 5737 TEST-NET-2),
/// outside every private range a NetworkPolicy's `ipBlock` may except.
const OUTSIDE_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

/// A pod of `namespace` (without labels) connecting to `host`:`port`
/// outside the cluster, judged by the egress model (`super::egress`,
/// Istio's semantics cited there): allowed when the connection leaves
/// the cluster, denied with what refused it.
fn to_outside(
    t: &Tree,
    namespace: &str,
    host: &str,
    port: u16,
    steps: &mut Trace,
) -> (Verdict, String) {
    let (address, resolved) = match host.parse::<Ipv4Addr>() {
        Ok(a) => (a, String::new()),
        Err(_) => (
            OUTSIDE_ADDRESS,
            format!(", taken to resolve to the public address {OUTSIDE_ADDRESS}"),
        ),
    };
    steps.note(
        format!("{host} is outside the cluster: a connection to port {port}{resolved}"),
        None,
    );
    let from = PodRef {
        namespace: namespace.to_string(),
        labels: BTreeMap::new(),
    };
    let capture = captured(t, namespace, steps);
    if capture == Capture::Sidecar {
        // What the sidecar does with a host it does not know.
        let (mode, source) = outbound_policy_of(t, &from);
        let what = format!("the sidecar's outbound traffic policy is {mode}");
        match source {
            Some(d) if d["kind"] == "Sidecar" => steps.about(t, d, what),
            Some(d) => {
                let file = ObjectRef::find(t, d).map(|o| o.file).unwrap_or_default();
                steps.note(
                    format!("{what}, from the mesh config (istio-daemon.meshConfig in {file})"),
                    None,
                )
            }
            None => steps.note(format!("{what}, Istio's default"), None),
        }
    }
    let out = Outbound {
        from: &from,
        proxied: capture != Capture::None,
        host,
        address,
        port,
    };
    match egress(t, &out) {
        Ok(()) => {
            steps.note(
                format!("the connection to {host}:{port} leaves the cluster"),
                None,
            );
            (Verdict::Allow, format!("{host}:{port} is reached"))
        }
        Err(why) => {
            steps.note(format!("refused: {why}"), None);
            (Verdict::Deny, why)
        }
    }
}

/// What takes the traffic of a pod of a namespace.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Capture {
    /// ztunnel: the namespace is ambient.
    Ztunnel,
    Sidecar,
    /// Nothing: the pod connects on its own.
    None,
}

/// What takes the traffic of a pod without labels of `namespace`: its
/// namespace is ambient (ztunnel), or istiod's webhook
/// injects a sidecar there (istio/istio 1.30.3
/// `manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml`:
/// the namespace labelled `istio-injection: enabled`, or `istio.io/rev`
/// without `istio-injection`; a pod may opt out, which one without
/// labels does not).
fn captured(t: &Tree, namespace: &str, steps: &mut Trace) -> Capture {
    let labels = namespace_labels(t, namespace);
    let label = |k: &str| labels.get(k).map(String::as_str);
    let (capture, how) = if label("istio.io/dataplane-mode") == Some("ambient") {
        (
            Capture::Ztunnel,
            "the namespace is ambient: ztunnel takes the pod's traffic",
        )
    } else if label("istio-injection") == Some("enabled") {
        (
            Capture::Sidecar,
            "istio-injection: enabled: the pod has a sidecar",
        )
    } else if label("istio-injection").is_none() && label("istio.io/rev").is_some() {
        (
            Capture::Sidecar,
            "istio.io/rev names a revision: the pod has a sidecar",
        )
    } else {
        (
            Capture::None,
            "no sidecar is injected and the namespace is not ambient: the pod connects on its own",
        )
    };
    let ns_object = all_docs(t)
        .find(|(_, d)| d["kind"] == "Namespace" && d["metadata"]["name"] == namespace)
        .map(|(_, d)| d);
    match ns_object {
        Some(d) => steps.about(t, d, how),
        None => steps.note(
            format!("{how} (the tree holds no Namespace {namespace})"),
            None,
        ),
    }
    capture
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_as_the_gateway_reads_them() {
        let u = parse_url("https://ML.example.net:8443/a/b?x=1").expect("a URL");
        assert!(u.https);
        assert_eq!(
            (
                u.authority.as_str(),
                u.host.as_str(),
                u.port,
                u.path.as_str()
            ),
            ("ml.example.net:8443", "ml.example.net", Some(8443), "/a/b")
        );
        let u = parse_url("http://h").expect("a URL");
        assert_eq!((u.path.as_str(), u.port), ("/", None));
        assert!(parse_url("ftp://h/").is_err());
        assert!(parse_url("https://h:x/").is_err());
    }

    #[test]
    fn verdicts_have_one_name_each() {
        for (name, v) in Verdict::ALL {
            assert_eq!(Verdict::parse(name), Some(v));
            assert_eq!(v.name(), name);
        }
    }
}

//! The destination side of the request model: a request at a workload's
//! sidecar (or waypoint, or ztunnel: `ambient.rs`), after the gateway or
//! another pod sent it. Semantics modelled, with their source (istio/istio
//! at the fetched HEAD):
//! - PeerAuthentication: the workload's own (selector) policy wins over the
//!   namespace's, which wins over the root namespace's
//!   (`pilot/pkg/security/authn/policy_applier.go`, ComposePeerAuthentication);
//!   STRICT refuses plaintext, and only mTLS gives a source principal.
//! - AuthorizationPolicy applies from the root namespace and the workload's
//!   namespace when its selector matches the pod's labels, or it has none
//!   (`pilot/pkg/model/authorization.go`, ListAuthorizationPolicies).
//! - DENY before ALLOW; with any ALLOW policy applied, a request no rule
//!   matches is denied; `spec: {}` is an ALLOW policy without rules, so it
//!   denies everything (`pilot/pkg/security/authz/builder/builder.go`, one
//!   Envoy RBAC filter per action).
//! - `ports` is the workload's port (`model.go` -> `destPortGenerator` ->
//!   `permissionDestinationPort`, Envoy RBAC `destination_port`);
//!   `principals`/`namespaces` come from the peer certificate
//!   (`source.principal`, `source.namespace` in `model.go`).

use super::ambient::ztunnel_rule;
use super::istio::any_match;
use super::m2m::jwks_fetch_by;
use super::tree::{all_docs, items, port_of, string_map_of, text, ObjectRef, Trace, Tree};
use serde_json::Value;
use std::collections::BTreeMap;

/// Istio's root namespace (meshgen's Istio and Kubeflow's).
pub const ROOT_NS: &str = "istio-system";

#[derive(Clone, Debug)]
pub struct Pod {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// The port the container listens on.
    pub port: u16,
}

#[derive(Clone, Debug)]
pub struct Inbound {
    pub pod: Pod,
    /// The caller's SPIFFE identity; `None`: plaintext (no sidecar).
    pub principal: Option<String>,
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    /// A token in `Authorization`: (issuer, claims; list claims as lists).
    pub token: Option<(String, Value)>,
    /// The SNI of the caller's TLS (`connection.sni`): at an egress
    /// gateway, the host the sidecar's DestinationRule names.
    pub sni: Option<String>,
}

/// The pod behind a Service host (`<svc>.<ns>.svc.cluster.local`) and
/// port: its Deployment's or StatefulSet's pod labels, and the target
/// port (a number, or a container port's name).
pub fn pod_behind(t: &Tree, host: &str, port: u16) -> Result<Pod, String> {
    let mut parts = host.split('.');
    let (name, ns) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let svc = all_docs(t)
        .map(|(_, d)| d)
        .find(|d| {
            d["kind"] == "Service"
                && d["metadata"]["name"] == name
                && d["metadata"]["namespace"] == ns
        })
        .ok_or("no such Service")?;
    let sp = items(&svc["spec"]["ports"])
        .find(|p| p["port"].as_u64() == Some(u64::from(port)))
        .ok_or("no such Service port")?;
    let selector = string_map_of(&svc["spec"]["selector"]);
    let workload = all_docs(t)
        .map(|(_, d)| d)
        .find(|d| {
            ["Deployment", "StatefulSet"].contains(&text(&d["kind"]))
                && d["metadata"]["namespace"] == ns
                && selector.iter().all(|(k, v)| {
                    d["spec"]["template"]["metadata"]["labels"][k].as_str() == Some(v.as_str())
                })
        })
        .ok_or("no pods behind the Service")?;
    let template = &workload["spec"]["template"];
    let target = match &sp["targetPort"] {
        Value::Number(_) => port_of(&sp["targetPort"]).ok_or("a target port out of range")?,
        Value::String(named) => items(&template["spec"]["containers"])
            .flat_map(|c| items(&c["ports"]))
            .find(|p| p["name"] == named.as_str())
            .and_then(|p| port_of(&p["containerPort"]))
            .ok_or(format!("no container port {named} behind {ns}/{name}"))?,
        _ => port,
    };
    Ok(Pod {
        namespace: ns.to_string(),
        labels: string_map_of(&template["metadata"]["labels"]),
        port: target,
    })
}

/// A policy's `selector` selects a pod of these labels (none: every pod).
pub fn selects(spec: &Value, labels: &BTreeMap<String, String>) -> bool {
    match spec.get("selector") {
        None => true,
        Some(s) => s["matchLabels"]
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str()),
    }
}

/// The PeerAuthentication that applies to `pod`, if any, and its mode.
pub fn peer_authentication<'a>(
    t: &'a Tree,
    pod: &Pod,
) -> (String, Option<(&'a String, &'a Value)>) {
    let mut best: Option<(u8, String, (&String, &Value))> = None;
    for (file, d) in all_docs(t) {
        let ns = text(&d["metadata"]["namespace"]);
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
        if best.as_ref().is_none_or(|(r, _, _)| rank > *r) {
            best = Some((rank, mode, (file, d)));
        }
    }
    match best {
        Some((_, mode, found)) => (mode, Some(found)),
        None => ("PERMISSIVE".into(), None),
    }
}

/// The mTLS mode of `pod` (`PERMISSIVE` without a PeerAuthentication).
pub fn peer_mode(t: &Tree, pod: &Pod) -> String {
    peer_authentication(t, pod).0
}

/// The namespace of a SPIFFE principal (`cluster.local/ns/<ns>/sa/…`).
pub fn source_namespace(principal: Option<&str>) -> Option<String> {
    principal
        .and_then(|p| p.strip_prefix("cluster.local/ns/"))
        .and_then(|p| p.split('/').next())
        .map(String::from)
}

/// What a token verified at this sidecar says: its issuer and claims.
pub type VerifiedToken<'a> = Option<(&'a str, &'a Value)>;

/// The values of the claim `path` of verified `claims` (`a` or, nested,
/// `a][b`, from Istio's `request.auth.claims[a][b]`): a list's strings, or
/// a string; none without a verified token.
pub fn claim_values(claims: Option<&Value>, path: &str) -> Vec<String> {
    match claims.and_then(|claims| path.split("][").try_fold(claims, |v, k| v.get(k))) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The values of a `when` key at the sidecar. A list claim matches if one
/// of its elements does: Istio's requestClaimGenerator.extendedPrincipal
/// (`pilot/pkg/security/authz/model/generator.go`) builds a
/// MetadataListValueMatcher, a ListMatcher `OneOf`
/// (`pilot/pkg/security/authz/matcher/metadata.go`). Without a verified
/// token there are no claims: Istio adds the JWT filter only when a
/// RequestAuthentication selects the workload (`policy_applier.go`,
/// JwtFilter returns nil without JWT rules). A key the model does not
/// know has no value (`coverage.rs` reports the policies naming one).
pub fn inbound_attribute(req: &Inbound, verified: VerifiedToken, key: &str) -> Vec<String> {
    if key == "source.namespace" {
        return source_namespace(req.principal.as_deref())
            .into_iter()
            .collect();
    }
    if key == "source.principal" {
        return req.principal.iter().cloned().collect();
    }
    if key == "destination.port" {
        return vec![req.pod.port.to_string()];
    }
    if key == "connection.sni" {
        return req.sni.iter().cloned().collect();
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
        return claim_values(verified.map(|(_, claims)| claims), c);
    }
    Vec::new()
}

/// A rule of a destination policy matches `req`.
pub fn inbound_rule_matches(rule: &Value, req: &Inbound, verified: VerifiedToken) -> bool {
    let principal = req.principal.as_deref();
    let src_ns = source_namespace(principal);
    let request_principal =
        verified.map(|(iss, c)| format!("{iss}/{}", c["sub"].as_str().unwrap_or_default()));
    let from_ok = rule.get("from").is_none_or(|from| {
        items(from).any(|f| {
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
        items(to).any(|t| {
            let o = &t["operation"];
            o.get("ports").is_none_or(|l| any_match(l, Some(&port)))
                && o.get("paths").is_none_or(|l| any_match(l, Some(&req.path)))
                && o.get("notPaths")
                    .is_none_or(|l| !any_match(l, Some(&req.path)))
                && o.get("methods")
                    .is_none_or(|l| any_match(l, Some(&req.method)))
                && o.get("hosts").is_none()
        })
    });
    let when_ok = items(&rule["when"]).all(|w| {
        let v = inbound_attribute(req, verified, text(&w["key"]));
        let any = |l: &Value| v.iter().any(|x| any_match(l, Some(x)));
        w.get("values").is_none_or(any) && w.get("notValues").is_none_or(|l| !any(l))
    });
    from_ok && to_ok && when_ok
}

/// Whether the sidecar of `req.pod` lets `req` through to the container.
pub fn at_sidecar(t: &Tree, req: &Inbound) -> bool {
    at_sidecar_traced(t, req, &mut Trace::default())
}

/// [`at_sidecar`], noting each step that decided the request.
pub fn at_sidecar_traced(t: &Tree, req: &Inbound, trace: &mut Trace) -> bool {
    if !peer_allows(t, req, trace) {
        return false;
    }
    authorize_traced(t, req, Enforcer::Sidecar, trace)
}

/// A plaintext request (no caller principal) at a STRICT pod is refused.
pub(crate) fn peer_allows(t: &Tree, req: &Inbound, trace: &mut Trace) -> bool {
    let (mode, pa) = peer_authentication(t, &req.pod);
    let object = pa.map(|(f, d)| ObjectRef::of(f, d));
    if req.principal.is_none() && mode == "STRICT" {
        trace.note("mTLS is STRICT: a plaintext caller is refused", object);
        return false;
    }
    if object.is_some() {
        trace.note(format!("mTLS mode {mode}"), object);
    }
    true
}

/// Where a destination's policies are enforced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Enforcer<'a> {
    /// The pod's own Envoy: the policies of its namespace and the root
    /// namespace that select it (or select nothing), full HTTP attributes.
    Sidecar,
    /// A waypoint (a Gateway of class `istio-waypoint` in the pod's
    /// namespace, by name): the policies whose `targetRefs` name it.
    Waypoint(&'a str),
    /// A waypoint for a connection to one ServiceEntry (`egress.rs`, the
    /// egress waypoint): the policies whose `targetRefs` name the waypoint's
    /// Gateway, or that ServiceEntry by name from its own namespace (istio
    /// 1.30.3 `pilot/pkg/model/policyattachment.go:165-173`, the
    /// ServiceEntry's namespace here the waypoint's).
    ServiceEntryWaypoint {
        waypoint: &'a str,
        service_entry: &'a str,
    },
    /// The node's ztunnel (ambient): the policies a sidecar would apply,
    /// except `targetRefs` ones, lowered to L4 (`ambient.rs`).
    Ztunnel,
}

impl std::fmt::Display for Enforcer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Enforcer::Sidecar => write!(f, "the sidecar"),
            Enforcer::Waypoint(w) | Enforcer::ServiceEntryWaypoint { waypoint: w, .. } => {
                write!(f, "the waypoint {w}")
            }
            Enforcer::Ztunnel => write!(f, "ztunnel"),
        }
    }
}

/// A policy (AuthorizationPolicy or RequestAuthentication) applies to
/// `req` at `at`. A `targetRefs` policy attaches only to the proxies of
/// the Gateway it names, in its own namespace (istio 1.30.3
/// `pilot/pkg/model/policyattachment.go:123-136,185-197`), and ztunnel
/// never receives one (`pilot/pkg/serviceregistry/ambient/authorization.go:419-423`).
pub fn applies(d: &Value, req: &Inbound, at: Enforcer) -> bool {
    let ns = text(&d["metadata"]["namespace"]);
    let refs = d["spec"].get("targetRefs");
    match at {
        Enforcer::Waypoint(name) => {
            ns == req.pod.namespace
                && refs.into_iter().flat_map(items).any(|r| {
                    r["group"] == "gateway.networking.k8s.io"
                        && r["kind"] == "Gateway"
                        && r["name"] == name
                })
        }
        Enforcer::ServiceEntryWaypoint {
            waypoint,
            service_entry,
        } => {
            ns == req.pod.namespace
                && refs.into_iter().flat_map(items).any(|r| {
                    (r["group"] == "gateway.networking.k8s.io"
                        && r["kind"] == "Gateway"
                        && r["name"] == waypoint)
                        || (r["group"] == "networking.istio.io"
                            && r["kind"] == "ServiceEntry"
                            && r["name"] == service_entry)
                })
        }
        Enforcer::Sidecar | Enforcer::Ztunnel => {
            refs.is_none()
                && (ns == req.pod.namespace || ns == ROOT_NS)
                && selects(&d["spec"], &req.pod.labels)
        }
    }
}

/// The identity of the proxy that enforces at `at`: a waypoint runs as
/// the service account of its name (`ambient.rs`); a sidecar as its pod's,
/// here the one Kubeflow's workloads in a profile run as (`default-editor`).
pub fn verifier(req: &Inbound, at: Enforcer) -> String {
    let ns = &req.pod.namespace;
    match at {
        Enforcer::Waypoint(name) | Enforcer::ServiceEntryWaypoint { waypoint: name, .. } => {
            format!("cluster.local/ns/{ns}/sa/{name}")
        }
        Enforcer::Sidecar | Enforcer::Ztunnel => format!("cluster.local/ns/{ns}/sa/default-editor"),
    }
}

/// The authorization of `req` at one enforcement point: JWT
/// authentication (not at ztunnel), then DENY, then ALLOW.
pub fn authorize(t: &Tree, req: &Inbound, at: Enforcer) -> bool {
    authorize_traced(t, req, at, &mut Trace::default())
}

/// [`authorize`], noting each step that decided the request.
pub fn authorize_traced(t: &Tree, req: &Inbound, at: Enforcer, trace: &mut Trace) -> bool {
    // JWT authentication before authorization: a token of an issuer the
    // workload's RequestAuthentications list is verified (its claims are
    // then known); one of no listed issuer is refused (401); without any
    // RequestAuthentication the token is not looked at. ztunnel has no
    // RequestAuthentication at all (none is converted in
    // `pilot/pkg/serviceregistry/ambient/`).
    let jwt_rules: Vec<(&String, &Value, &Value)> = all_docs(t)
        .filter(|(_, d)| {
            d["kind"] == "RequestAuthentication" && at != Enforcer::Ztunnel && applies(d, req, at)
        })
        .flat_map(|(f, d)| items(&d["spec"]["jwtRules"]).map(move |r| (f, d, r)))
        .collect();
    let mut verified = None;
    if let Some((iss, claims)) = &req.token {
        if !jwt_rules.is_empty() {
            let Some((file, ra, rule)) = jwt_rules
                .iter()
                .find(|(_, _, r)| r["issuer"] == iss.as_str())
            else {
                trace.note(
                    format!("at {at}: no RequestAuthentication names the issuer {iss}: 401"),
                    jwt_rules.first().map(|(f, d, _)| ObjectRef::of(f, d)),
                );
                return false;
            };
            // The verifying proxy fetches the issuer's keys itself; without
            // them the token is refused (401).
            if let Err(why) = jwks_fetch_by(t, rule, &verifier(req, at)) {
                trace.note(
                    format!("at {at}: the keys of {iss} can not be fetched: {why}"),
                    Some(ObjectRef::of(file, ra)),
                );
                return false;
            }
            trace.note(
                format!("at {at}: the token of {iss} is verified"),
                Some(ObjectRef::of(file, ra)),
            );
            verified = Some((iss.as_str(), claims));
        }
    }
    let mut allow_policies = 0;
    let mut allowed = None;
    for (file, d) in all_docs(t) {
        if d["kind"] != "AuthorizationPolicy" || !applies(d, req, at) {
            continue;
        }
        let action = d["spec"]["action"].as_str().unwrap_or("ALLOW");
        let rules: Vec<Value> = items(&d["spec"]["rules"]).cloned().collect();
        let rules: Vec<Value> = if at == Enforcer::Ztunnel {
            // ztunnel refuses CUSTOM policies; `coverage.rs` reports them.
            if action == "CUSTOM" {
                continue;
            }
            rules
                .iter()
                .filter_map(|r| ztunnel_rule(r, action))
                .collect()
        } else {
            rules
        };
        let hit = rules.iter().any(|r| inbound_rule_matches(r, req, verified));
        match action {
            "DENY" if hit => {
                trace.note(
                    format!("at {at}: a DENY rule matches: 403"),
                    Some(ObjectRef::of(file, d)),
                );
                return false;
            }
            "ALLOW" => {
                allow_policies += 1;
                if hit && allowed.is_none() {
                    allowed = Some(ObjectRef::of(file, d));
                }
            }
            _ => {}
        }
    }
    match (allow_policies, allowed) {
        (0, _) => {
            trace.note(format!("at {at}: no ALLOW policy applies: allowed"), None);
            true
        }
        (_, Some(object)) => {
            trace.note(format!("at {at}: an ALLOW rule matches"), Some(object));
            true
        }
        (n, None) => {
            trace.note(
                format!("at {at}: no rule of the {n} ALLOW policies that apply matches: 403"),
                None,
            );
            false
        }
    }
}

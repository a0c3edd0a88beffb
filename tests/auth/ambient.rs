//! The destination side in ambient mode (`dataplaneMode: ambient`): a
//! request to a pod of an ambient namespace passes the namespace's
//! waypoint (when it is used) and then the destination node's ztunnel.
//! Modelled from istio/istio 1.30.3:
//! - A namespace is in ambient capture by its label
//!   `istio.io/dataplane-mode: ambient`; its Services use the waypoint its
//!   `istio.io/use-waypoint` label names (`pilot/pkg/serviceregistry/ambient/waypoints.go:200-215`
//!   `getUseWaypoint`). Mesh clients sending to the Service go through the
//!   waypoint; the ingress gateway does only when the namespace (or
//!   Service) is labelled `istio.io/ingress-use-waypoint: "true"`
//!   (`pilot/pkg/features/ambient.go` `ENABLE_INGRESS_WAYPOINT_ROUTING`,
//!   `pilot/pkg/serviceregistry/ambient/services.go`); traffic to a pod IP
//!   never does.
//! - The waypoint enforces the policies whose `targetRefs` name it, with
//!   every HTTP attribute, and verifies tokens by the RequestAuthentications
//!   that target it (`sidecar.rs` `authorize`, `Enforcer::Waypoint`).
//! - ztunnel enforces the other policies of the namespace and the root
//!   namespace, L4 only (`pilot/pkg/serviceregistry/ambient/authorization.go`):
//!   an ALLOW rule with any HTTP attribute never matches (:599-603), a DENY
//!   rule with one is enforced on its L4 part (:481-489, the HTTP matches
//!   become empty, i.e. match-all), CUSTOM is refused (:437-445). The
//!   source it sees is the waypoint's identity when the request came
//!   through the waypoint; nothing allows the waypoint implicitly
//!   (`PILOT_AUTO_ALLOW_WAYPOINT_POLICY` defaults to false,
//!   `pilot/pkg/features/ambient.go`).
//! - STRICT PeerAuthentication refuses plaintext at ztunnel, as at a
//!   sidecar (`authorization.go:79-215`).

use super::*;

/// The HTTP attributes of `authorization.go` `httpOperations`,
/// `httpSources` (:491-531) and `l4WhenAttributes` (:608-614).
const L7_OPERATION: [&str; 6] = [
    "hosts",
    "notHosts",
    "methods",
    "notMethods",
    "paths",
    "notPaths",
];
const L7_SOURCE: [&str; 4] = [
    "remoteIpBlocks",
    "notRemoteIpBlocks",
    "requestPrincipals",
    "notRequestPrincipals",
];
const L4_WHEN: [&str; 5] = [
    "source.ip",
    "source.namespace",
    "source.principal",
    "destination.ip",
    "destination.port",
];

/// A rule carries an HTTP attribute ztunnel cannot see.
pub(crate) fn has_l7(rule: &Value) -> bool {
    let keys = |list: &Value, inner: &str, of: &[&str]| {
        list.as_array()
            .into_iter()
            .flatten()
            .any(|x| of.iter().any(|k| x[inner].get(*k).is_some()))
    };
    keys(&rule["to"], "operation", &L7_OPERATION)
        || keys(&rule["from"], "source", &L7_SOURCE)
        || rule["when"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|w| !L4_WHEN.contains(&w["key"].as_str().unwrap()))
}

/// A rule as ztunnel enforces it: `None` for an ALLOW rule with HTTP
/// attributes (it never matches); a DENY rule without them.
pub(crate) fn ztunnel_rule(rule: &Value, action: &str) -> Option<Value> {
    if !has_l7(rule) {
        return Some(rule.clone());
    }
    if action == "ALLOW" {
        return None;
    }
    let mut r = rule.clone();
    for (list, inner, of) in [
        ("to", "operation", &L7_OPERATION[..]),
        ("from", "source", &L7_SOURCE[..]),
    ] {
        for x in r[list].as_array_mut().into_iter().flatten() {
            if let Some(o) = x[inner].as_object_mut() {
                o.retain(|k, _| !of.contains(&k.as_str()));
            }
        }
    }
    if let Some(w) = r["when"].as_array_mut() {
        w.retain(|w| L4_WHEN.contains(&w["key"].as_str().unwrap()));
    }
    Some(r)
}

/// The labels of a Namespace the tree renders.
fn namespace_labels(t: &Tree, ns: &str) -> Option<Value> {
    all_docs(t)
        .map(|(_, d)| d)
        .find(|d| d["kind"] == "Namespace" && d["metadata"]["name"] == ns)
        .map(|d| d["metadata"]["labels"].clone())
}

/// The pod's namespace is in ambient capture.
pub(crate) fn in_ambient(t: &Tree, ns: &str) -> bool {
    namespace_labels(t, ns).is_some_and(|l| l["istio.io/dataplane-mode"] == "ambient")
}

/// The waypoint the pod's Service sends through: the namespace's
/// `istio.io/use-waypoint` names a waypoint Gateway of that namespace that
/// serves Services (`istio.io/waypoint-for` `service` or `all`, the
/// default `service`: `waypoints.go:246-262`).
pub(crate) fn waypoint_of(t: &Tree, ns: &str) -> Option<String> {
    let name = namespace_labels(t, ns)?["istio.io/use-waypoint"]
        .as_str()?
        .to_string();
    all_docs(t)
        .map(|(_, d)| d)
        .find(|d| {
            d["kind"] == "Gateway"
                && d["metadata"]["namespace"] == ns
                && d["metadata"]["name"] == name.as_str()
                && d["spec"]["gatewayClassName"] == "istio-waypoint"
                && matches!(
                    d["metadata"]["labels"]["istio.io/waypoint-for"].as_str(),
                    None | Some("service") | Some("all")
                )
        })
        .map(|_| name)
}

/// How a request reaches an ambient pod.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Path {
    /// To the Service (through the waypoint when one is used).
    Service,
    /// To the pod's IP.
    PodIp,
}

/// Whether `req` reaches the container of a pod in an ambient namespace
/// by `path`.
pub(crate) fn at_ambient_pod(t: &Tree, req: &Inbound, path: Path) -> bool {
    let ns = &req.pod.namespace;
    if req.principal.is_none() && peer_mode(t, &req.pod) == "STRICT" {
        return false;
    }
    let from_gateway = req.principal.as_deref() == Some(GATEWAY_PRINCIPAL);
    let ingress_label =
        namespace_labels(t, ns).is_some_and(|l| l["istio.io/ingress-use-waypoint"] == "true");
    let waypoint = waypoint_of(t, ns).filter(|_| {
        path == Path::Service && req.principal.is_some() && (!from_gateway || ingress_label)
    });
    let mut at_ztunnel = req.clone();
    if let Some(w) = &waypoint {
        if !authorize(t, req, Enforcer::Waypoint(w)) {
            return false;
        }
        // The waypoint (named for its Gateway, no suffix: istio
        // `pilot/pkg/config/kube/gatewaycommon/classinfo.go:130-134`) runs
        // as the service account of that name in the namespace.
        at_ztunnel.principal = Some(format!("cluster.local/ns/{ns}/sa/{w}"));
    }
    authorize(t, &at_ztunnel, Enforcer::Ztunnel)
}

/// Whether `req` reaches its pod's container, in either data-plane mode:
/// a sidecar's checks, or (ambient) the checks on every way a caller can
/// send it, the Service or the pod's IP: a caller picks the way that lets
/// it through.
pub(crate) fn at_destination(t: &Tree, req: &Inbound) -> bool {
    if !in_ambient(t, &req.pod.namespace) {
        return at_sidecar(t, req);
    }
    at_ambient_pod(t, req, Path::Service) || at_ambient_pod(t, req, Path::PodIp)
}

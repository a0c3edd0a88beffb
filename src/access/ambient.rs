//! The destination side in ambient mode (`dataplaneMode: ambient`): a
//! request to a pod of an ambient namespace passes the namespace's
//! waypoint (when it is used) and then the destination node's ztunnel.
//! Modelled from istio/istio 1.30.3:
//! - A namespace is in ambient capture by its label
//!   `istio.io/dataplane-mode: ambient`; its Services use the waypoint its
//!   `istio.io/use-waypoint` label names (`pilot/pkg/serviceregistry/ambient/waypoints.go:200-215`
//!   `getUseWaypoint`). A caller in ambient capture sending to the Service
//!   goes through the waypoint (its ztunnel does); a gateway does only when
//!   the namespace (or Service) is labelled `istio.io/ingress-use-waypoint:
//!   "true"` (`pilot/pkg/features/ambient.go` `ENABLE_INGRESS_WAYPOINT_ROUTING`,
//!   `pilot/pkg/serviceregistry/ambient/sidecar_interop.go:80-88`); a
//!   sidecar never does ("Currently only ingress and e/w gateway will call
//!   waypoints", `pilot/pkg/xds/endpoints/endpoint_builder.go:896-901`),
//!   nor does traffic to a pod IP.
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

use super::m2m::gateway_principal;
use super::sidecar::{
    at_sidecar_traced, authorize_traced, peer_allows, source_namespace, Enforcer, Inbound,
};
use super::tree::{all_docs, items, text, ObjectRef, Trace, Tree};
use serde_json::Value;

// The HTTP attributes of `authorization.go` `httpOperations`,
// `httpSources` (:491-531) and `l4WhenAttributes` (:608-614), as the tree
// check of ambient policies reads them.
use crate::check::ambient::{L4_WHEN, L7_OPERATION, L7_SOURCE};

/// A rule carries an HTTP attribute ztunnel cannot see.
pub fn has_l7(rule: &Value) -> bool {
    let keys = |list: &Value, inner: &str, of: &[&str]| {
        items(list).any(|x| of.iter().any(|k| x[inner].get(*k).is_some()))
    };
    keys(&rule["to"], "operation", L7_OPERATION)
        || keys(&rule["from"], "source", L7_SOURCE)
        || items(&rule["when"]).any(|w| !L4_WHEN.contains(&text(&w["key"])))
}

/// A rule as ztunnel enforces it: `None` for an ALLOW rule with HTTP
/// attributes (it never matches); a DENY rule without them.
pub fn ztunnel_rule(rule: &Value, action: &str) -> Option<Value> {
    if !has_l7(rule) {
        return Some(rule.clone());
    }
    if action == "ALLOW" {
        return None;
    }
    let mut r = rule.clone();
    for (list, inner, of) in [
        ("to", "operation", L7_OPERATION),
        ("from", "source", L7_SOURCE),
    ] {
        for x in r[list].as_array_mut().into_iter().flatten() {
            if let Some(o) = x[inner].as_object_mut() {
                o.retain(|k, _| !of.contains(&k.as_str()));
            }
        }
    }
    if let Some(w) = r["when"].as_array_mut() {
        w.retain(|w| L4_WHEN.contains(&text(&w["key"])));
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
pub fn in_ambient(t: &Tree, ns: &str) -> bool {
    namespace_labels(t, ns).is_some_and(|l| l["istio.io/dataplane-mode"] == "ambient")
}

/// The waypoint the pod's Service sends through: the namespace's
/// `istio.io/use-waypoint` names a waypoint Gateway of that namespace that
/// serves Services (`istio.io/waypoint-for` `service` or `all`, the
/// default `service`: `waypoints.go:246-262`).
pub fn waypoint_of(t: &Tree, ns: &str) -> Option<String> {
    waypoint_object(t, ns).map(|(name, _)| name)
}

fn waypoint_object(t: &Tree, ns: &str) -> Option<(String, ObjectRef)> {
    let name = namespace_labels(t, ns)?["istio.io/use-waypoint"]
        .as_str()?
        .to_string();
    all_docs(t)
        .find(|(_, d)| {
            d["kind"] == "Gateway"
                && d["metadata"]["namespace"] == ns
                && d["metadata"]["name"] == name.as_str()
                && d["spec"]["gatewayClassName"] == "istio-waypoint"
                && matches!(
                    d["metadata"]["labels"]["istio.io/waypoint-for"].as_str(),
                    None | Some("service") | Some("all")
                )
        })
        .map(|(f, d)| (name.clone(), ObjectRef::of(f, d)))
}

/// How a request reaches an ambient pod.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Path {
    /// To the Service (through the waypoint when one is used).
    Service,
    /// To the pod's IP.
    PodIp,
}

/// Whether `req` reaches the container of a pod in an ambient namespace
/// by `path`.
pub fn at_ambient_pod(t: &Tree, req: &Inbound, path: Path) -> bool {
    at_ambient_pod_traced(t, req, path, &mut Trace::default())
}

/// [`at_ambient_pod`], noting each step that decided the request.
pub fn at_ambient_pod_traced(t: &Tree, req: &Inbound, path: Path, trace: &mut Trace) -> bool {
    let ns = &req.pod.namespace;
    if !peer_allows(t, req, trace) {
        return false;
    }
    let from_gateway = req.principal.as_deref() == Some(gateway_principal(t).as_str());
    let ingress_label =
        namespace_labels(t, ns).is_some_and(|l| l["istio.io/ingress-use-waypoint"] == "true");
    // A caller's capture: its namespace's label, where the tree has it;
    // any other caller has a sidecar.
    let captured = !from_gateway
        && source_namespace(req.principal.as_deref()).is_some_and(|n| in_ambient(t, &n));
    let waypoint = waypoint_object(t, ns)
        .filter(|_| path == Path::Service && (captured || (from_gateway && ingress_label)));
    let mut at_ztunnel = req.clone();
    if let Some((w, object)) = &waypoint {
        trace.note(
            format!("the Service of {ns} sends through the waypoint {w}"),
            Some(object.clone()),
        );
        if !authorize_traced(t, req, Enforcer::Waypoint(w), trace) {
            return false;
        }
        // The waypoint (named for its Gateway, no suffix: istio
        // `pilot/pkg/config/kube/gatewaycommon/classinfo.go:130-134`) runs
        // as the service account of that name in the namespace.
        at_ztunnel.principal = Some(format!("cluster.local/ns/{ns}/sa/{w}"));
    }
    authorize_traced(t, &at_ztunnel, Enforcer::Ztunnel, trace)
}

/// Whether `req`, sent to its pod's IP (as Knative's activator probes
/// and forwards to pods), reaches the container, in either mode.
pub fn at_destination_by_pod_ip(t: &Tree, req: &Inbound) -> bool {
    if !in_ambient(t, &req.pod.namespace) {
        return at_sidecar_traced(t, req, &mut Trace::default());
    }
    at_ambient_pod(t, req, Path::PodIp)
}

/// Whether `req` reaches its pod's container, in either data-plane mode:
/// a sidecar's checks, or (ambient) the checks on every way a caller can
/// send it, the Service or the pod's IP: a caller picks the way that lets
/// it through.
pub fn at_destination(t: &Tree, req: &Inbound) -> bool {
    at_destination_traced(t, req, &mut Trace::default())
}

/// [`at_destination`], noting each step that decided the request (in
/// ambient mode: of the way that lets it through, else of both).
pub fn at_destination_traced(t: &Tree, req: &Inbound, trace: &mut Trace) -> bool {
    if !in_ambient(t, &req.pod.namespace) {
        return at_sidecar_traced(t, req, trace);
    }
    let mut by_service = Trace::default();
    if at_ambient_pod_traced(t, req, Path::Service, &mut by_service) {
        trace.note(
            format!("{} is in ambient mode: to its Service", req.pod.namespace),
            None,
        );
        trace.0.extend(by_service.0);
        return true;
    }
    let mut by_ip = Trace::default();
    let ok = at_ambient_pod_traced(t, req, Path::PodIp, &mut by_ip);
    trace.note(
        format!(
            "{} is in ambient mode: to its Service{}",
            req.pod.namespace,
            if ok { " (refused)" } else { "" }
        ),
        None,
    );
    trace.0.extend(by_service.0);
    trace.note("to the pod's IP", None);
    trace.0.extend(by_ip.0);
    ok
}

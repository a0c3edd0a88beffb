//! The request model's NetworkPolicy step: a connection from one pod of
//! the model (the gateway, a caller) to a destination pod, judged by
//! [`super::netpol`] (the source's egress and the destination's ingress),
//! with the policies that took part named for a trace.

use super::netpol::{connection_allowed, deciding_policies, Peer, PodRef};
pub use super::netpol::{namespace_labels, selector_matches};
use super::routing::gateway_port;
use super::sidecar::Pod;
use super::tree::{all_docs, one, string_map_of, text, ObjectRef, Tree};
use super::GATEWAY_DIR;

fn pod_ref(p: &Pod) -> PodRef {
    PodRef {
        namespace: p.namespace.clone(),
        labels: p.labels.clone(),
    }
}

/// Whether the NetworkPolicies of `t` admit a connection from `from` to
/// `to` on `to.port` (a pod no policy selects admits everything).
pub fn network_admits(t: &Tree, from: &Pod, to: &Pod) -> bool {
    network_decision(t, from, to).0
}

/// [`network_admits`], with the NetworkPolicies that decided it (those
/// admitting it, or, refused, those that select an end and admit nothing).
pub fn network_decision(t: &Tree, from: &Pod, to: &Pod) -> (bool, Vec<ObjectRef>) {
    let (src, dst) = (Peer::Pod(pod_ref(from)), pod_ref(to));
    let allowed = connection_allowed(t, &src, &dst, to.port);
    let deciding = deciding_policies(t, &src, &dst, to.port);
    let objects = all_docs(t)
        .filter(|(_, d)| deciding.iter().any(|x| std::ptr::eq(*x, *d)))
        .map(|(f, d)| ObjectRef::of(f, d))
        .collect();
    (allowed, objects)
}

/// meshgen's gateway pod, as a NetworkPolicy sees it.
pub fn gateway_pod(t: &Tree) -> Option<Pod> {
    let d = one(t, &format!("{GATEWAY_DIR}/Deployment.yaml"))?;
    Some(Pod {
        namespace: text(&d["metadata"]["namespace"]).into(),
        labels: string_map_of(&d["spec"]["template"]["metadata"]["labels"]),
        port: gateway_port(t, "https")?,
    })
}

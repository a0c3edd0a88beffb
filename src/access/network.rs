//! Kubernetes NetworkPolicy, ingress: which pods may open a connection to
//! which, by label selectors over pods and namespaces.

use super::routing::gateway_port;
use super::sidecar::Pod;
use super::tree::{all_docs, items, one, string_map_of, text, ObjectRef, Tree};
use super::GATEWAY_DIR;
use serde_json::Value;
use std::collections::BTreeMap;

/// Whether `selector` (a label selector: `matchLabels`,
/// `matchExpressions`) selects `labels`. An operator Kubernetes does not
/// define selects nothing.
pub fn selector_matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let eq = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
    let exprs = items(&selector["matchExpressions"]).all(|e| {
        let v = labels.get(text(&e["key"]));
        let values: Vec<&str> = items(&e["values"]).map(text).collect();
        match text(&e["operator"]) {
            "In" => v.is_some_and(|v| values.contains(&v.as_str())),
            "NotIn" => v.is_none_or(|v| !values.contains(&v.as_str())),
            "Exists" => v.is_some(),
            "DoesNotExist" => v.is_none(),
            _ => false,
        }
    });
    eq && exprs
}

/// The labels of a namespace: the API server's `kubernetes.io/metadata.
/// name`, the labels of its Namespace object in the tree, and the profile
/// controller's `app.kubernetes.io/part-of: kubeflow-profile` on a
/// profile's.
pub fn namespace_labels(t: &Tree, ns: &str) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    for (_, d) in all_docs(t) {
        if d["kind"] == "Namespace" && d["metadata"]["name"] == ns {
            l.extend(string_map_of(&d["metadata"]["labels"]));
        }
    }
    l.insert("kubernetes.io/metadata.name".to_string(), ns.to_string());
    if all_docs(t).any(|(_, d)| d["kind"] == "Profile" && d["metadata"]["name"] == ns) {
        l.insert(
            "app.kubernetes.io/part-of".into(),
            "kubeflow-profile".into(),
        );
    }
    l
}

/// The NetworkPolicies that select `to` for ingress.
fn ingress_policies<'a>(t: &'a Tree, to: &Pod) -> Vec<(&'a String, &'a Value)> {
    all_docs(t)
        .filter(|(_, d)| {
            d["kind"] == "NetworkPolicy"
                && d["metadata"]["namespace"] == to.namespace.as_str()
                && selector_matches(&d["spec"]["podSelector"], &to.labels)
                && d["spec"]["policyTypes"]
                    .as_array()
                    .is_none_or(|p| p.iter().any(|x| x == "Ingress"))
        })
        .collect()
}

/// Kubernetes NetworkPolicy, ingress: a pod no policy selects admits
/// everything; a selected pod admits a connection some ingress rule of a
/// selecting policy matches (its `from` peers by namespace and pod
/// selector, its `ports` by the pod's port).
pub fn network_admits(t: &Tree, from: &Pod, to: &Pod) -> bool {
    network_decision(t, from, to).0
}

/// [`network_admits`], with the policy that admits (or, refused, the
/// policies that select the pod).
pub fn network_decision(t: &Tree, from: &Pod, to: &Pod) -> (bool, Vec<ObjectRef>) {
    let from_ns = namespace_labels(t, &from.namespace);
    let policies = ingress_policies(t, to);
    if policies.is_empty() {
        return (true, Vec::new());
    }
    let admitting = policies.iter().find(|(_, p)| {
        items(&p["spec"]["ingress"]).any(|rule| {
            let peers = rule["from"].as_array().filter(|a| !a.is_empty());
            let peer_ok = peers.is_none_or(|peers| {
                peers.iter().any(|peer| {
                    let ns_ok = match peer.get("namespaceSelector") {
                        Some(s) => selector_matches(s, &from_ns),
                        None => from.namespace == to.namespace && peer.get("ipBlock").is_none(),
                    };
                    ns_ok
                        && peer
                            .get("podSelector")
                            .is_none_or(|s| selector_matches(s, &from.labels))
                })
            });
            let ports = rule["ports"].as_array().filter(|a| !a.is_empty());
            let port_ok = ports.is_none_or(|ports| {
                ports
                    .iter()
                    .any(|p| p["port"].as_u64() == Some(u64::from(to.port)))
            });
            peer_ok && port_ok
        })
    });
    match admitting {
        Some((f, d)) => (true, vec![ObjectRef::of(f, d)]),
        None => (
            false,
            policies.iter().map(|(f, d)| ObjectRef::of(f, d)).collect(),
        ),
    }
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

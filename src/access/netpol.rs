//! Kubernetes NetworkPolicy, evaluated over a rendered tree (the request
//! model's L3/L4 layer, issue 28 point 9): whether a connection from one
//! peer to a pod's port is admitted by the NetworkPolicies of both ends.
//! It reads only the tree; it renders nothing and knows no component.
//!
//! Semantics (kubernetes/website
//! `content/en/docs/concepts/services-networking/network-policies.md`,
//! the `networking.k8s.io/v1` API reference):
//! - A pod is isolated for ingress (egress) when some NetworkPolicy of its
//!   namespace selects it (`podSelector`; `{}` selects every pod) and lists
//!   `Ingress` (`Egress`) in `policyTypes`; without `policyTypes`, a policy
//!   is of type Ingress, and also Egress when it has `egress` rules.
//! - An isolated pod admits what the union of the rules of the policies
//!   selecting it admits; a rule admits a peer when its `from` (`to`) is
//!   absent or empty or one element matches, and the port when its `ports`
//!   is absent or empty or one entry matches (`protocol` TCP by default,
//!   `endPort` a range).
//! - A peer element: `podSelector` alone is pods of the policy's own
//!   namespace; `namespaceSelector` alone is every pod of the namespaces it
//!   selects; both in one element is those pods of those namespaces;
//!   `ipBlock` is addresses in `cidr` but not in `except` (meant for
//!   addresses outside the cluster: pods never match it here).
//! - A connection needs the source's egress and the destination's ingress.
//! - Traffic from the node to its pods (the kubelet's probes) is always
//!   admitted.
//!
//! Namespaces are matched by their labels in the tree, and every namespace
//! has `kubernetes.io/metadata.name` set to its name by the API server.

pub use super::tree::Tree;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// A pod: its namespace and labels.
#[derive(Clone, Debug, PartialEq)]
pub struct PodRef {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

impl PodRef {
    pub fn new(namespace: &str, labels: &[(&str, &str)]) -> Self {
        PodRef {
            namespace: namespace.to_string(),
            labels: (labels.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// One end of a connection.
#[derive(Clone, Debug, PartialEq)]
pub enum Peer {
    /// A pod of the cluster.
    Pod(PodRef),
    /// An address outside the cluster (a client, an external host).
    External(Ipv4Addr),
    /// The pod's own node (the kubelet).
    Node,
}

/// Whether a connection from `from` to `to`'s `port` (TCP) is admitted by
/// the NetworkPolicies of `t`: `from`'s egress (when a pod) and `to`'s
/// ingress.
pub fn connection_allowed(t: &Tree, from: &Peer, to: &PodRef, port: u16) -> bool {
    let egress = match from {
        Peer::Pod(src) => egress_allowed(t, src, &Peer::Pod(to.clone()), port),
        _ => true,
    };
    egress && ingress_allowed(t, from, to, port)
}

/// Whether `to` admits `from` on `port` (TCP).
pub fn ingress_allowed(t: &Tree, from: &Peer, to: &PodRef, port: u16) -> bool {
    if *from == Peer::Node {
        return true;
    }
    allowed(t, to, INGRESS, from, port)
}

/// Whether `from` may open a connection to `to` on `port` (TCP).
pub fn egress_allowed(t: &Tree, from: &PodRef, to: &Peer, port: u16) -> bool {
    allowed(t, from, EGRESS, to, port)
}

/// A direction of NetworkPolicy: its `policyTypes` entry, its rules' key
/// and their peers' key.
type Direction = (&'static str, &'static str, &'static str);
const INGRESS: Direction = ("Ingress", "ingress", "from");
const EGRESS: Direction = ("Egress", "egress", "to");

/// Is `pod` isolated for `dir`, and then does a rule of a policy that
/// selects it admit `peer` on `port`?
fn allowed(t: &Tree, pod: &PodRef, dir: Direction, peer: &Peer, port: u16) -> bool {
    let (selecting, admitting) = deciding(t, pod, dir, peer, port);
    selecting.is_empty() || !admitting.is_empty()
}

/// The policies that select `pod` for `kind`, and those of them with a
/// rule admitting `peer` on `port`.
fn deciding<'t>(
    t: &'t Tree,
    pod: &PodRef,
    (kind, rules_key, peers_key): Direction,
    peer: &Peer,
    port: u16,
) -> (Vec<&'t Value>, Vec<&'t Value>) {
    let selecting: Vec<&Value> = network_policies(t)
        .filter(|np| np["metadata"]["namespace"] == pod.namespace.as_str())
        .filter(|np| selector_matches(&np["spec"]["podSelector"], &pod.labels))
        .filter(|np| policy_types(&np["spec"]).contains(&kind))
        .collect();
    let admitting = selecting
        .iter()
        .copied()
        .filter(|np| {
            let policy_ns = np["metadata"]["namespace"].as_str().unwrap_or_default();
            (np["spec"][rules_key].as_array().into_iter().flatten()).any(|rule| {
                peers_match(t, rule.get(peers_key), policy_ns, peer)
                    && ports_match(rule.get("ports"), port)
            })
        })
        .collect();
    (selecting, admitting)
}

/// For a trace: the policies that decide `to`'s ingress from `from` on
/// `port` (those admitting it when some do, else every one selecting
/// `to`), and likewise `from`'s egress when `from` is a pod.
pub fn deciding_policies<'t>(t: &'t Tree, from: &Peer, to: &PodRef, port: u16) -> Vec<&'t Value> {
    let pick = |(selecting, admitting): (Vec<&'t Value>, Vec<&'t Value>)| {
        if admitting.is_empty() {
            selecting
        } else {
            admitting
        }
    };
    let mut out = Vec::new();
    if let Peer::Pod(src) = from {
        let to_peer = Peer::Pod(to.clone());
        out.extend(pick(deciding(t, src, EGRESS, &to_peer, port)));
    }
    if *from != Peer::Node {
        out.extend(pick(deciding(t, to, INGRESS, from, port)));
    }
    out
}

/// Every NetworkPolicy of the tree.
pub fn network_policies(t: &Tree) -> impl Iterator<Item = &Value> {
    t.values()
        .flatten()
        .filter(|d| d["kind"] == "NetworkPolicy" && d["apiVersion"] == "networking.k8s.io/v1")
}

/// `policyTypes`, or its default.
fn policy_types(spec: &Value) -> Vec<&str> {
    match spec.get("policyTypes").and_then(Value::as_array) {
        Some(types) => types.iter().filter_map(Value::as_str).collect(),
        None if spec.get("egress").is_some() => vec!["Ingress", "Egress"],
        None => vec!["Ingress"],
    }
}

fn peers_match(t: &Tree, peers: Option<&Value>, policy_ns: &str, peer: &Peer) -> bool {
    let peers = match peers.and_then(Value::as_array) {
        None => return true,
        Some(p) if p.is_empty() => return true,
        Some(p) => p,
    };
    peers.iter().any(|p| match peer {
        Peer::Node => false,
        Peer::External(ip) => p.get("ipBlock").is_some_and(|b| ip_in_block(b, *ip)),
        Peer::Pod(pod) => {
            if p.get("ipBlock").is_some() {
                return false;
            }
            let ns_ok = match p.get("namespaceSelector") {
                Some(sel) => selector_matches(sel, &namespace_labels(t, &pod.namespace)),
                None => pod.namespace == policy_ns,
            };
            let pod_ok = p
                .get("podSelector")
                .is_none_or(|sel| selector_matches(sel, &pod.labels));
            ns_ok && pod_ok
        }
    })
}

fn ports_match(ports: Option<&Value>, port: u16) -> bool {
    let ports = match ports.and_then(Value::as_array) {
        None => return true,
        Some(p) if p.is_empty() => return true,
        Some(p) => p,
    };
    ports.iter().any(|p| {
        let tcp = p.get("protocol").is_none_or(|pr| pr == "TCP");
        let first = p.get("port").and_then(Value::as_u64);
        let last = p.get("endPort").and_then(Value::as_u64).or(first);
        let port = u64::from(port);
        tcp && match (p.get("port"), first, last) {
            (None, _, _) => true,
            (Some(_), Some(a), Some(b)) => a <= port && port <= b,
            // A named port: the model has no container port names.
            _ => false,
        }
    })
}

fn ip_in_block(block: &Value, ip: Ipv4Addr) -> bool {
    let inside = |cidr: &Value| {
        cidr.as_str()
            .and_then(|c| c.split_once('/'))
            .and_then(|(net, len)| Some((net.parse::<Ipv4Addr>().ok()?, len.parse::<u32>().ok()?)))
            .is_some_and(|(net, len)| {
                let mask = u32::MAX.checked_shl(32 - len.min(32)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            })
    };
    inside(&block["cidr"]) && !(block["except"].as_array().into_iter().flatten()).any(inside)
}

/// A namespace's labels: its Namespace object's in the tree, the name
/// label the API server sets on every namespace, and, for the namespace of
/// a Kubeflow `Profile`, the label Kubeflow's profile controller sets on it
/// (kubeflow-26.03 built `profiles.yaml:403-434`, ConfigMap
/// `namespace-labels-data`: `app.kubernetes.io/part-of: "kubeflow-profile"`).
pub fn namespace_labels(t: &Tree, namespace: &str) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = (t.values().flatten())
        .find(|d| d["kind"] == "Namespace" && d["metadata"]["name"] == namespace)
        .and_then(|d| d["metadata"]["labels"].as_object())
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    labels.insert("kubernetes.io/metadata.name".into(), namespace.into());
    if (t.values().flatten()).any(|d| {
        d["kind"] == "Profile"
            && d["apiVersion"]
                .as_str()
                .is_some_and(|a| a.starts_with("kubeflow.org/"))
            && d["metadata"]["name"] == namespace
    }) {
        labels.insert(
            "app.kubernetes.io/part-of".into(),
            "kubeflow-profile".into(),
        );
    }
    labels
}

/// A label selector (`matchLabels` and `matchExpressions`; `{}` matches
/// everything).
pub fn selector_matches(sel: &Value, labels: &BTreeMap<String, String>) -> bool {
    let exact = (sel["matchLabels"].as_object().into_iter().flatten())
        .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
    let expressions = (sel["matchExpressions"].as_array().into_iter().flatten()).all(|e| {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = (e["values"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        let value = labels.get(key).map(String::as_str);
        match e["operator"].as_str() {
            Some("In") => value.is_some_and(|v| values.contains(&v)),
            Some("NotIn") => value.is_none_or(|v| !values.contains(&v)),
            Some("Exists") => value.is_some(),
            Some("DoesNotExist") => value.is_none(),
            _ => false,
        }
    });
    exact && expressions
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tree(docs: Vec<Value>) -> Tree {
        Tree::from([("t.yaml".to_string(), docs)])
    }

    fn np(ns: &str, spec: Value) -> Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "p", "namespace": ns}, "spec": spec})
    }

    #[test]
    fn no_policy_admits_everything_and_the_node_always() {
        let a = PodRef::new("a", &[("app", "x")]);
        assert!(connection_allowed(
            &tree(vec![]),
            &Peer::Pod(PodRef::new("b", &[])),
            &a,
            80
        ));
        let deny = tree(vec![np(
            "a",
            json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        )]);
        assert!(!connection_allowed(
            &deny,
            &Peer::Pod(PodRef::new("b", &[])),
            &a,
            80
        ));
        assert!(!connection_allowed(
            &deny,
            &Peer::Pod(PodRef::new("a", &[])),
            &a,
            80
        ));
        assert!(connection_allowed(&deny, &Peer::Node, &a, 80));
    }

    #[test]
    fn peers_ports_and_blocks() {
        let a = PodRef::new("a", &[("app", "x")]);
        let t = tree(vec![np(
            "a",
            json!({"podSelector": {"matchLabels": {"app": "x"}}, "ingress": [
                {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gw"}},
                           "podSelector": {"matchExpressions": [{"key": "istio", "operator": "In", "values": ["gw"]}]}}],
                 "ports": [{"port": 8000, "endPort": 8010}]},
                {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}
            ]}),
        )]);
        let gw = Peer::Pod(PodRef::new("gw", &[("istio", "gw")]));
        assert!(connection_allowed(&t, &gw, &a, 8005));
        assert!(!connection_allowed(&t, &gw, &a, 8011));
        let other = Peer::Pod(PodRef::new("gw", &[("istio", "other")]));
        assert!(!connection_allowed(&t, &other, &a, 8005));
        assert!(connection_allowed(
            &t,
            &Peer::External("10.2.3.4".parse().unwrap()),
            &a,
            1
        ));
        assert!(!connection_allowed(
            &t,
            &Peer::External("10.1.3.4".parse().unwrap()),
            &a,
            1
        ));
        // A pod the policy does not select stays open.
        assert!(connection_allowed(
            &t,
            &other,
            &PodRef::new("a", &[("app", "y")]),
            1
        ));
    }

    #[test]
    fn egress_is_checked_at_the_source() {
        let src = PodRef::new("a", &[]);
        let t = tree(vec![np(
            "a",
            json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [
                {"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}]}
            ]}),
        )]);
        assert!(!connection_allowed(
            &t,
            &Peer::Pod(src.clone()),
            &PodRef::new("b", &[]),
            443
        ));
        assert!(!egress_allowed(
            &t,
            &src,
            &Peer::External(Ipv4Addr::new(1, 1, 1, 1)),
            443
        ));
    }
}

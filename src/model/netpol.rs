//! Kubernetes NetworkPolicies, the second layer under Istio's policies
//! (issue 28 point 9): the bodies (`spec`) of the policies the gateway,
//! auth and profiles components render, built as values; their templates
//! write the objects around them. Each allow mirrors a rule of that
//! component's AuthorizationPolicies on L4, so the NetworkPolicies admit no
//! less than Istio does and nothing else.
//!
//! Kubernetes semantics relied on (kubernetes/website
//! `content/en/docs/concepts/services-networking/network-policies.md`,
//! "Isolation of pods", "Behavior of to and from selectors"): a pod is
//! isolated for ingress once any NetworkPolicy with `policyTypes: [Ingress]`
//! selects it, and then admits the union of the ingress rules of every
//! policy that selects it; a peer with `namespaceSelector` and
//! `podSelector` in one element is those pods in those namespaces; a
//! `podSelector` alone is the policy's own namespace; and traffic from
//! the pod's node (kubelet probes) is always allowed. So kubelet probes
//! need no rule, except in ambient, where istio-cni rewrites their source
//! to [`PROBE_SNAT_CIDR`].
//!
//! Nothing here reads the values: the components pass in what they know.

use crate::config::StringMap;
use serde::Serialize;
use serde_json::{json, Value};

/// The HBONE port: in ambient, ztunnel (and a waypoint) tunnels every
/// connection to a captured pod to this port, so a port-restricted
/// NetworkPolicy must admit it too (istio/istio 1.30.3
/// `pilot/pkg/model/listener.go:42` `HBoneInboundListenPort = 15008`;
/// istio.io "Ambient and Kubernetes NetworkPolicy").
pub const HBONE_PORT: u16 = 15008;

/// In ambient, istio-cni SNATs the kubelet's probes to this address so
/// that ztunnel can tell them apart (istio/istio 1.30.3
/// `cni/pkg/iptables/iptables.go:636-645`, `HostProbeSNATAddress`); the
/// probes then no longer come from the node, and a default-deny ingress
/// policy drops them unless it admits this address (istio.io "Ambient and
/// Kubernetes NetworkPolicy", "Ambient, health probes, and Kubernetes
/// NetworkPolicy").
pub const PROBE_SNAT_CIDR: &str = "169.254.7.127/32";

/// The label the API server sets on every Namespace to its name (stable
/// since Kubernetes 1.22), which lets a policy name a namespace.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The gateway pods' other ports: Envoy's health check (15021), which a
/// cloud load balancer probes from outside the node, and the metrics
/// (merged 15020, Envoy's 15090), as Istio's own gateway chart admits them
/// (istio/istio 1.30.3 `manifests/charts/gateway/templates/networkpolicy.yaml:23-31`).
pub const GATEWAY_STATUS_PORTS: [u16; 3] = [15020, 15021, 15090];

/// One NetworkPolicy: its name and its `spec`.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkPolicyModel {
    pub name: String,
    pub spec: Value,
}

impl NetworkPolicyModel {
    fn new(name: &str, spec: Value) -> Self {
        NetworkPolicyModel {
            name: name.to_string(),
            spec,
        }
    }

    /// The policy as a template reads it when the same policy is printed
    /// many times: `name`, and `spec_yaml`, the spec already written in
    /// block style by the YAML-safe emitter, lines after the first
    /// indented by `indent` (the text `{{ np.spec | toyaml(indent) }}`
    /// writes, `yaml::emit::block`), so a template prints it with
    /// `{{ np.spec_yaml }}` and nothing is serialised per object.
    pub fn template_value(&self, indent: usize) -> minijinja::Value {
        minijinja::context! {
            name => self.name.clone(),
            spec_yaml => minijinja::Value::from_safe_string(
                crate::yaml::emit::block(&self.spec, indent),
            ),
        }
    }
}

/// Every pod of the namespace isolated for ingress, admitting nothing by
/// itself: the allows are the other policies.
pub fn default_deny_ingress() -> NetworkPolicyModel {
    NetworkPolicyModel::new(
        "default-deny-ingress",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    )
}

/// A peer: the pods with `labels` in namespace `namespace`.
pub fn pods_in(namespace: &str, labels: &StringMap) -> Value {
    json!({
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}},
        "podSelector": {"matchLabels": labels},
    })
}

/// A peer: every pod of the namespaces named.
pub fn namespaces<S: Serialize>(names: &[S]) -> Value {
    json!({"namespaceSelector": {"matchExpressions": [
        {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": names}
    ]}})
}

/// A peer: the pods with `labels` in the namespaces named.
pub fn pods_in_namespaces(names: &[String], labels: &StringMap) -> Value {
    json!({
        "namespaceSelector": {"matchExpressions": [
            {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": names}
        ]},
        "podSelector": {"matchLabels": labels},
    })
}

/// A peer: every pod of the policy's own namespace.
pub fn same_namespace() -> Value {
    json!({"podSelector": {}})
}

/// TCP ports, with [`HBONE_PORT`] in ambient.
pub fn tcp_ports(ports: &[u16], ambient: bool) -> Value {
    let hbone = ambient.then_some(HBONE_PORT);
    Value::Array(
        (ports.iter().copied().chain(hbone))
            .map(|p| json!({"protocol": "TCP", "port": p}))
            .collect(),
    )
}

/// The rule admitting kubelet probes in ambient ([`PROBE_SNAT_CIDR`]).
pub fn probe_rule() -> Value {
    json!({"from": [{"ipBlock": {"cidr": PROBE_SNAT_CIDR}}]})
}

/// A policy selecting the pods with `labels`, admitting `from` on `ports`
/// (no `from`: any source).
pub fn allow(name: &str, labels: &StringMap, from: Vec<Value>, ports: Value) -> NetworkPolicyModel {
    let mut rule = serde_json::Map::new();
    if !from.is_empty() {
        rule.insert("from".into(), Value::Array(from));
    }
    rule.insert("ports".into(), ports);
    NetworkPolicyModel::new(
        name,
        json!({
            "podSelector": {"matchLabels": labels},
            "policyTypes": ["Ingress"],
            "ingress": [rule],
        }),
    )
}

/// A policy selecting every pod of the namespace, admitting `rules`.
pub fn allow_namespace(name: &str, rules: Vec<Value>) -> NetworkPolicyModel {
    NetworkPolicyModel::new(
        name,
        json!({"podSelector": {}, "policyTypes": ["Ingress"], "ingress": rules}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambient_ports_add_hbone() {
        assert_eq!(
            tcp_ports(&[5556], true),
            json!([{"protocol": "TCP", "port": 5556}, {"protocol": "TCP", "port": 15008}])
        );
        assert_eq!(
            tcp_ports(&[5556], false),
            json!([{"protocol": "TCP", "port": 5556}])
        );
    }
}

//! Egress, evaluated over a rendered tree (issue 32 point 5): whether a
//! pod's connection to a host outside the cluster leaves it, through its
//! sidecar's outbound policy and the registry it sees, then the
//! NetworkPolicies (`super::netpol`). It reads only the tree.
//!
//! Semantics (istio/istio 1.30.3):
//! - A sidecar's outbound policy is its Sidecar resource's
//!   `outboundTrafficPolicy` (one with a matching `workloadSelector`, else
//!   the namespace's without one, else the root namespace's), else the mesh
//!   config's (`pilot/pkg/model/push_context.go:1167-1200`
//!   `doGetSidecarScope`, `pilot/pkg/model/sidecar.go:346-355`); the
//!   default is ALLOW_ANY.
//! - Under REGISTRY_ONLY a host leaves only when a service the sidecar sees
//!   declares it on that port; a ServiceEntry is seen from the namespaces
//!   its `exportTo` names (`.` its own, `*` all; absent: the mesh's
//!   `defaultServiceExportTo`, `*` by default,
//!   `pilot/pkg/model/push_context.go:1884-1891`); a host `*.a.b` covers
//!   every name under `a.b`.
//! - ztunnel (ambient) enforces neither (istio/istio#54281, #55163): a
//!   pod without a sidecar, or in an ambient namespace, reaches what its
//!   NetworkPolicies allow.

use super::netpol::{self, namespace_labels, selector_matches, Peer, PodRef, Tree};
use serde_json::Value;
use std::net::Ipv4Addr;

/// A pod's connection to a host outside the cluster.
#[derive(Clone, Debug)]
pub struct Outbound<'a> {
    pub from: &'a PodRef,
    /// Whether the pod runs a sidecar (injected, not ambient).
    pub sidecar: bool,
    pub host: &'a str,
    /// The address the host resolves to.
    pub address: Ipv4Addr,
    pub port: u16,
}

/// Whether the connection leaves the cluster; `Err` says what refused it.
pub fn egress(t: &Tree, req: &Outbound) -> Result<(), String> {
    let ns = &req.from.namespace;
    let ambient = namespace_labels(t, ns)
        .get("istio.io/dataplane-mode")
        .is_some_and(|m| m == "ambient");
    if req.sidecar && !ambient && outbound_policy(t, req.from) == "REGISTRY_ONLY" {
        let seen = service_entries(t)
            .filter(|se| exported_to(se, ns))
            .any(|se| declares(se, req.host, req.port));
        if !seen {
            return Err(format!(
                "REGISTRY_ONLY: no ServiceEntry seen from `{ns}` declares {}:{}",
                req.host, req.port
            ));
        }
    }
    if !netpol::egress_allowed(t, req.from, &Peer::External(req.address), req.port) {
        return Err(format!(
            "a NetworkPolicy of `{ns}` refuses egress to {}:{}",
            req.address, req.port
        ));
    }
    Ok(())
}

/// The mesh config of the Istio the tree installs (the wrapper chart's
/// values), if any.
fn mesh_config(t: &Tree) -> Option<&Value> {
    (t.values().flatten()).find_map(|d| d.get("istio-daemon").and_then(|v| v.get("meshConfig")))
}

/// The root namespace: the Istio namespace of the wrapper chart's values.
fn root_namespace(t: &Tree) -> &str {
    (t.values().flatten())
        .find_map(|d| d.get("global")?.get("istioNamespace")?.as_str())
        .unwrap_or("istio-system")
}

/// The outbound policy mode of `pod`'s sidecar.
pub fn outbound_policy<'t>(t: &'t Tree, pod: &PodRef) -> &'t str {
    let sidecars: Vec<&Value> = (t.values().flatten())
        .filter(|d| {
            d["kind"] == "Sidecar"
                && d["apiVersion"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("networking.istio.io/"))
        })
        .collect();
    let in_ns = |ns: &str| -> Vec<&'t Value> {
        (sidecars.iter().copied())
            .filter(|s| s["metadata"]["namespace"] == ns)
            .collect()
    };
    let unselective = |s: &&Value| s["spec"].get("workloadSelector").is_none();
    let own = in_ns(&pod.namespace);
    let selected = (own.iter().copied())
        .find(|s| {
            s["spec"].get("workloadSelector").is_some_and(|w| {
                selector_matches(
                    &serde_json::json!({"matchLabels": w["labels"]}),
                    &pod.labels,
                )
            })
        })
        .or_else(|| own.iter().copied().find(unselective))
        .or_else(|| in_ns(root_namespace(t)).into_iter().find(unselective));
    let mode = |v: Option<&'t Value>| v?.get("outboundTrafficPolicy")?.get("mode")?.as_str();
    match selected {
        Some(s) => mode(s.get("spec")).or_else(|| mode(mesh_config(t))),
        None => mode(mesh_config(t)),
    }
    .unwrap_or("ALLOW_ANY")
}

fn service_entries(t: &Tree) -> impl Iterator<Item = &Value> {
    (t.values().flatten()).filter(|d| {
        d["kind"] == "ServiceEntry"
            && d["apiVersion"]
                .as_str()
                .is_some_and(|a| a.starts_with("networking.istio.io/"))
    })
}

fn exported_to(se: &Value, ns: &str) -> bool {
    let own = se["metadata"]["namespace"].as_str().unwrap_or_default();
    match se["spec"].get("exportTo").and_then(Value::as_array) {
        None => true,
        Some(to) => to.iter().filter_map(Value::as_str).any(|e| match e {
            "*" => true,
            "." => own == ns,
            name => name == ns,
        }),
    }
}

fn declares(se: &Value, host: &str, port: u16) -> bool {
    let host_ok = (se["spec"]["hosts"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .any(|h| match h.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|p| p.ends_with('.') && p.len() > 1),
            None => h == host,
        });
    let port_ok = (se["spec"]["ports"].as_array().into_iter().flatten())
        .any(|p| p["number"].as_u64() == Some(u64::from(port)));
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_and_exports() {
        let se = json!({"metadata": {"namespace": "a"}, "spec": {
            "hosts": ["*.example.com", "pypi.org"], "exportTo": ["."], "ports": [{"number": 443}]}});
        assert!(declares(&se, "x.example.com", 443));
        assert!(!declares(&se, "example.com", 443));
        assert!(!declares(&se, "pypi.org", 80));
        assert!(exported_to(&se, "a"));
        assert!(!exported_to(&se, "b"));
        assert!(exported_to(
            &json!({"metadata": {"namespace": "a"}, "spec": {}}),
            "b"
        ));
    }
}

//! What ztunnel cannot enforce. In the ambient data plane a namespace's
//! AuthorizationPolicies without `targetRefs` (namespace-wide or by
//! selector) go to ztunnel, which enforces L4 only (istio/istio 1.30.3
//! `pilot/pkg/serviceregistry/ambient/authorization.go`, read at that tag):
//! - a policy with `targetRefs` (or the older single `targetRef`,
//!   `pilot/pkg/model/policyattachment.go:115-121`) never reaches it
//!   (`:419-423`), so those are the waypoint's and not checked here;
//! - only ALLOW and DENY: "ztunnel does not support the CUSTOM action"
//!   (any other action, `:433-445`);
//! - HTTP attributes: operation `hosts`, `notHosts`, `methods`,
//!   `notMethods`, `paths`, `notPaths` (`:491-512`); source
//!   `remoteIpBlocks`, `requestPrincipals` and their `not` forms
//!   (`:514-531`); every `when` key but `source.ip|namespace|principal`
//!   and `destination.ip|port` (`:578-583`, `:608-614`). In an ALLOW rule
//!   ztunnel drops the whole rule (`:599-603`: the traffic it was meant to
//!   admit is denied); in a DENY rule it enforces the L4 part alone
//!   (`:481-489`: it denies what it was meant to let through).
//!
//! Either way the policy does not mean what it says, so the tree check
//! refuses such a policy in an ambient namespace; attach it to the
//! namespace's waypoint with `targetRefs` instead.

use serde_json::Value;

/// The namespace label that puts a namespace in the ambient data plane.
pub const DATAPLANE_MODE: &str = "istio.io/dataplane-mode";

/// The key paths [`ztunnel_unsupported`] and [`is_ambient_namespace`] read
/// (`refs::FACT_PATHS` adds them).
pub const PATHS: &[&[&str]] = &[
    &["metadata", "labels", DATAPLANE_MODE],
    &["spec", "targetRef"],
    &["spec", "targetRefs"],
    &[
        "spec",
        "rules",
        "*",
        "from",
        "*",
        "source",
        "remoteIpBlocks",
    ],
    &[
        "spec",
        "rules",
        "*",
        "from",
        "*",
        "source",
        "notRemoteIpBlocks",
    ],
    &[
        "spec",
        "rules",
        "*",
        "from",
        "*",
        "source",
        "requestPrincipals",
    ],
    &[
        "spec",
        "rules",
        "*",
        "from",
        "*",
        "source",
        "notRequestPrincipals",
    ],
    &["spec", "rules", "*", "to", "*", "operation", "hosts"],
    &["spec", "rules", "*", "to", "*", "operation", "notHosts"],
    &["spec", "rules", "*", "to", "*", "operation", "methods"],
    &["spec", "rules", "*", "to", "*", "operation", "notMethods"],
    &["spec", "rules", "*", "to", "*", "operation", "paths"],
    &["spec", "rules", "*", "to", "*", "operation", "notPaths"],
    &["spec", "rules", "*", "when", "*", "key"],
];

/// Read by the request model and the access matrix too (`access/ambient.rs`,
/// `access/matrix.rs`).
pub const L7_SOURCE: &[&str] = &[
    "remoteIpBlocks",
    "notRemoteIpBlocks",
    "requestPrincipals",
    "notRequestPrincipals",
];
/// Read by the request model and the access matrix too (`access/ambient.rs`,
/// `access/matrix.rs`).
pub const L7_OPERATION: &[&str] = &[
    "hosts",
    "notHosts",
    "methods",
    "notMethods",
    "paths",
    "notPaths",
];
/// Read by the request model and the access matrix too (`access/ambient.rs`,
/// `access/matrix.rs`).
pub const L4_WHEN: &[&str] = &[
    "source.ip",
    "source.namespace",
    "source.principal",
    "destination.ip",
    "destination.port",
];

/// A Namespace document's `istio.io/dataplane-mode` is `ambient`.
pub fn is_ambient_namespace(d: &Value) -> bool {
    d["metadata"]["labels"][DATAPLANE_MODE] == "ambient"
}

/// What of an AuthorizationPolicy ztunnel would not enforce as written,
/// as key paths in document order (empty when it attaches by `targetRefs`,
/// or is L4 only).
pub fn ztunnel_unsupported(d: &Value) -> Vec<String> {
    let spec = &d["spec"];
    let attached = |v: &Value| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty());
    if attached(&spec["targetRefs"]) || attached(&spec["targetRef"]) {
        return Vec::new();
    }
    let mut out = Vec::new();
    match spec["action"].as_str() {
        None | Some("ALLOW" | "DENY") => {}
        Some(other) => out.push(format!("spec.action {other}")),
    }
    let non_empty = |v: &Value| v.as_array().is_some_and(|a| !a.is_empty());
    for (i, rule) in spec["rules"].as_array().into_iter().flatten().enumerate() {
        let at = format!("spec.rules[{i}]");
        for (j, f) in rule["from"].as_array().into_iter().flatten().enumerate() {
            for key in L7_SOURCE {
                if non_empty(&f["source"][key]) {
                    out.push(format!("{at}.from[{j}].source.{key}"));
                }
            }
        }
        for (j, t) in rule["to"].as_array().into_iter().flatten().enumerate() {
            for key in L7_OPERATION {
                if non_empty(&t["operation"][key]) {
                    out.push(format!("{at}.to[{j}].operation.{key}"));
                }
            }
        }
        for (j, w) in rule["when"].as_array().into_iter().flatten().enumerate() {
            let key = w["key"].as_str().unwrap_or("");
            if !L4_WHEN.contains(&key) {
                out.push(format!("{at}.when[{j}] key `{key}`"));
            }
        }
    }
    out
}

/// The tree check's message for a policy ztunnel would not enforce.
pub fn message(namespace: &str, found: &[String]) -> String {
    format!(
        "namespace `{namespace}` is in the ambient data plane, where ztunnel enforces this policy (it has no targetRefs) and supports only L4 rules and ALLOW/DENY; it would not enforce {} as written (an ALLOW rule with HTTP attributes is dropped, a DENY rule keeps only its L4 part): attach the policy to the namespace's waypoint with `targetRefs: [{{group: gateway.networking.k8s.io, kind: Gateway, name: <waypoint>}}]`, or keep only principals, namespaces, ipBlocks and ports",
        found.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn l4_rules_and_waypoint_policies_pass_l7_keys_are_named() {
        let l4 = json!({"spec": {"action": "ALLOW", "rules": [
            {"from": [{"source": {"namespaces": ["a"], "principals": ["p"]}}],
             "to": [{"operation": {"ports": ["80"]}}],
             "when": [{"key": "source.ip", "values": ["10.0.0.0/8"]}]}]}});
        assert!(ztunnel_unsupported(&l4).is_empty());
        let l7 = json!({"spec": {"action": "DENY", "rules": [
            {"from": [{"source": {"requestPrincipals": ["*"]}}],
             "to": [{"operation": {"paths": ["/x"], "methods": ["GET"]}}],
             "when": [{"key": "request.headers[x]", "values": ["y"]}]}]}});
        assert_eq!(
            ztunnel_unsupported(&l7),
            [
                "spec.rules[0].from[0].source.requestPrincipals",
                "spec.rules[0].to[0].operation.methods",
                "spec.rules[0].to[0].operation.paths",
                "spec.rules[0].when[0] key `request.headers[x]`",
            ]
        );
        let mut on_waypoint = l7.clone();
        on_waypoint["spec"]["targetRefs"] =
            json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "waypoint"}]);
        assert!(ztunnel_unsupported(&on_waypoint).is_empty());
        let custom =
            json!({"spec": {"action": "CUSTOM", "provider": {"name": "x"}, "rules": [{}]}});
        assert_eq!(ztunnel_unsupported(&custom), ["spec.action CUSTOM"]);
    }
}

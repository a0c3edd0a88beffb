//! What the API server admits, and what a tenant's route does to a
//! request: the rendered ValidatingAdmissionPolicies read for their data
//! (the identity-header list, the tenant-routes rule), and a
//! VirtualService route's header operations.

use super::tree::{all_docs, items, one, text, Tree};
use super::GATEWAY_DIR;
use serde_json::Value;
use std::collections::BTreeMap;

/// A VirtualService as the API server sees it: does an admission policy
/// refuse it? The rendered ValidatingAdmissionPolicies are read for their
/// binding's namespaces and their data: the identity-header policy for its
/// header list (its CEL expression is checked by tests/auth to test `set`,
/// `add` and `remove` on both route levels), the tenant-routes policy by
/// [`tenant_routes_admit`]. A policy whose data does not parse refuses.
pub fn admitted(t: &Tree, vs: &Value) -> bool {
    let ns = text(&vs["metadata"]["namespace"]);
    for (_, d) in all_docs(t) {
        if d["kind"] != "ValidatingAdmissionPolicy" {
            continue;
        }
        let name = &d["metadata"]["name"];
        let Some((_, b)) = all_docs(t).find(|(_, b)| {
            b["kind"] == "ValidatingAdmissionPolicyBinding" && &b["spec"]["policyName"] == name
        }) else {
            continue;
        };
        let exempt = items(&b["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"])
            .any(|e| e["operator"] == "NotIn" && items(&e["values"]).any(|v| v == ns));
        if exempt {
            continue;
        }
        if d["spec"]["variables"][0]["name"] != "identityHeaders" {
            // Issue 28: tenants' routes stay in their namespace's paths.
            if !tenant_routes_admit(d, vs) {
                return false;
            }
            continue;
        }
        let Some(list) = variable::<Vec<String>>(d, "identityHeaders") else {
            return false;
        };
        let touches = |h: &Value| {
            let r = &h["request"];
            ["set", "add"]
                .iter()
                .flat_map(|o| {
                    r[o].as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, _)| k.clone())
                })
                .chain(items(&r["remove"]).map(|v| text(v).to_string()))
                .any(|k| list.contains(&k.to_ascii_lowercase()))
        };
        for r in items(&vs["spec"]["http"]) {
            if touches(&r["headers"]) || items(&r["route"]).any(|d| touches(&d["headers"])) {
                return false;
            }
        }
    }
    true
}

/// A JSON-literal variable of a rendered admission policy.
fn variable<T: serde::de::DeserializeOwned>(policy: &Value, name: &str) -> Option<T> {
    let v = items(&policy["spec"]["variables"]).find(|v| v["name"] == name)?;
    serde_json::from_str(v["expression"].as_str()?).ok()
}

/// The tenant-routes policy (`ValidatingAdmissionPolicy/<gateway>-tenant-routes`)
/// on `vs`, modelled from the rendered policy's data: the Gateway's names,
/// the hosts, and the prefix bases, each followed by the VirtualService's
/// namespace and `/`. Its CEL is read by `tests/cel/tenant_routes.py`
/// (cel-python) on the same cases; tests/auth/tenant.rs
/// `the_tenant_routes_cel_reads_what_the_model_reads` checks the
/// expressions this model stands for. A policy whose data does not parse
/// refuses.
pub fn tenant_routes_admit(policy: &Value, vs: &Value) -> bool {
    let (Some(gateways), Some(fqdn), Some(hosts), Some(bases)) = (
        variable::<Vec<String>>(policy, "platformGateways"),
        variable::<String>(policy, "platformGatewayFqdn"),
        variable::<Vec<String>>(policy, "tenantHosts"),
        variable::<Vec<String>>(policy, "tenantPrefixBases"),
    ) else {
        return false;
    };
    let ns = text(&vs["metadata"]["namespace"]);
    let prefixes: Vec<String> = bases.iter().map(|b| format!("{b}{ns}/")).collect();
    // `gateway.wildcardHost`: its own `<name>-<namespace>.<hostname>`
    // (routed by authority, as KServe's HostRegExp writes it) and its own
    // cluster-local hosts; a match for other gateways only.
    let wildcard = items(&policy["spec"]["variables"]).any(|v| v["name"] == "tenantHost");
    let own_host = format!(
        "{}-{ns}.{}",
        text(&vs["metadata"]["name"]),
        hosts.first().map(String::as_str).unwrap_or_default()
    );
    let own_authority = format!("^{}(?::\\d{{1,5}})?$", own_host.replace('.', "\\."));
    let local_suffix = format!(".{ns}.svc.cluster.local");
    let names = |list: &Value| {
        items(list).any(|g| {
            let g = text(g);
            gateways.iter().any(|x| x == g) || g.starts_with(&fqdn)
        })
    };
    let spec = &vs["spec"];
    let http: Vec<&Value> = items(&spec["http"]).collect();
    let bound = names(&spec["gateways"])
        || http
            .iter()
            .any(|r| items(&r["match"]).any(|m| names(&m["gateways"])));
    if !bound {
        return true;
    }
    let hosts_ok = items(&spec["hosts"]).all(|h| {
        let h = text(h).to_ascii_lowercase();
        hosts.contains(&h) || (wildcard && (h == own_host || h.ends_with(&local_suffix)))
    });
    let empty = |k: &str| spec[k].as_array().is_none_or(|a| a.is_empty());
    let under = |p: &Value| {
        p.as_str()
            .is_some_and(|p| prefixes.iter().any(|x| p.starts_with(x)))
    };
    let paths_ok = http.iter().all(|r| {
        r["match"].as_array().is_some_and(|m| {
            !m.is_empty()
                && m.iter().all(|m| {
                    under(&m["uri"]["prefix"])
                        || under(&m["uri"]["exact"])
                        || (wildcard
                            && (m["authority"]["regex"] == own_authority.as_str()
                                || (m["gateways"].is_array() && !names(&m["gateways"]))))
                })
        })
    });
    hosts_ok && empty("tcp") && empty("tls") && paths_ok
}

/// The identity headers the gateway writes for a verified dex user
/// (`outputClaimToHeaders` of the gateway's RequestAuthentication).
pub fn gateway_identity(t: &Tree, email: &str) -> BTreeMap<String, String> {
    let Some(ra) = one(t, &format!("{GATEWAY_DIR}/RequestAuthentication-jwt.yaml")) else {
        return BTreeMap::new();
    };
    items(&ra["spec"]["jwtRules"][0]["outputClaimToHeaders"])
        .filter(|o| o["claim"] == "email")
        .map(|o| (text(&o["header"]).to_string(), email.to_string()))
        .collect()
}

/// A verified user's request through a tenant's VirtualService route: the
/// route's header operations run after the gateway's authorization
/// (`pilot/pkg/networking/core/route/route.go`, TranslateRoute sets
/// `request_headers_to_add`/`_to_remove`), so what a VirtualService sets
/// reaches the destination unchecked.
pub fn through_tenant_route(
    headers: &BTreeMap<String, String>,
    route: &Value,
) -> BTreeMap<String, String> {
    let mut h = headers.clone();
    for level in
        std::iter::once(&route["headers"]).chain(items(&route["route"]).map(|d| &d["headers"]))
    {
        for op in ["set", "add"] {
            for (k, v) in level["request"][op].as_object().into_iter().flatten() {
                h.insert(k.to_ascii_lowercase(), text(v).to_string());
            }
        }
        for k in items(&level["request"]["remove"]) {
            h.remove(&text(k).to_ascii_lowercase());
        }
    }
    h
}

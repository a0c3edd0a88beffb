//! Istio's AuthorizationPolicy matching at the gateway: string matches,
//! request attributes, rules, and `ports` resolved to the pod port. The
//! destination side's matching (peer identities, list claims) is in
//! `sidecar.rs`.

use super::tree::{items, text};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Istio's string match: exact, `prefix*`, `*suffix`, or `*` (present).
pub fn istio_match(pattern: &str, value: Option<&str>) -> bool {
    let Some(v) = value else { return false };
    if pattern == "*" {
        return !v.is_empty();
    }
    if let Some(p) = pattern.strip_suffix('*') {
        return v.starts_with(p);
    }
    if let Some(s) = pattern.strip_prefix('*') {
        return v.ends_with(s);
    }
    v == pattern
}

/// One of the patterns of `list` matches `value`.
pub fn any_match(list: &Value, value: Option<&str>) -> bool {
    items(list).any(|p| p.as_str().is_some_and(|p| istio_match(p, value)))
}

/// A request as a client sends it to the gateway.
#[derive(Clone, Debug)]
pub struct Request {
    /// `:authority`, with a port when the client names one.
    pub host: String,
    pub path: String,
    pub method: String,
    /// Headers as the client sent them.
    pub headers: BTreeMap<String, String>,
    /// A token in `Authorization`: (issuer, claims), valid.
    pub token: Option<(String, BTreeMap<String, String>)>,
}

impl Request {
    /// A GET of `path` on `host`, without headers or token.
    pub fn get(host: &str, path: &str) -> Self {
        Request {
            host: host.into(),
            path: path.into(),
            method: "GET".into(),
            headers: BTreeMap::new(),
            token: None,
        }
    }
}

/// What an attribute of the request is, for AuthorizationPolicy. An
/// attribute the model does not know has no value (`coverage.rs` reports
/// the policies that name one).
pub fn attribute(req: &Request, principal: Option<&str>, key: &str) -> Option<String> {
    if let Some(h) = key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'))
    {
        return req.headers.get(h).cloned();
    }
    if let Some(c) = key
        .strip_prefix("request.auth.claims[")
        .and_then(|k| k.strip_suffix(']'))
    {
        return principal
            .and(req.token.as_ref())
            .and_then(|(_, claims)| claims.get(c).cloned());
    }
    if key == "request.auth.audiences" {
        // The token's `aud` (one value in this model).
        return principal
            .and(req.token.as_ref())
            .and_then(|(_, claims)| claims.get("aud").cloned());
    }
    None
}

/// `when`, `from` and `to` attributes the gateway side evaluates.
pub const GATEWAY_WHEN: &[&str] = &[
    "request.headers[",
    "request.auth.claims[",
    "request.auth.audiences",
    "destination.port",
];

/// A rule of a gateway policy matches `req` (with the request principal
/// jwt_authn gave it).
pub fn rule_matches(rule: &Value, req: &Request, principal: Option<&str>) -> bool {
    if let Some(from) = rule.get("from") {
        let ok = items(from).any(|f| {
            let s = &f["source"];
            let mut ok = true;
            if let Some(l) = s.get("requestPrincipals") {
                ok &= any_match(l, principal);
            }
            if let Some(l) = s.get("notRequestPrincipals") {
                ok &= !any_match(l, principal);
            }
            ok
        });
        if !ok {
            return false;
        }
    }
    if let Some(to) = rule.get("to") {
        let ok = items(to).any(|t| {
            let o = &t["operation"];
            let mut ok = true;
            let host = Some(req.host.as_str());
            let path = Some(req.path.as_str());
            let method = Some(req.method.as_str());
            for (key, value, negated) in [
                ("hosts", host, false),
                ("notHosts", host, true),
                ("paths", path, false),
                ("notPaths", path, true),
                ("methods", method, false),
                ("notMethods", method, true),
            ] {
                if let Some(l) = o.get(key) {
                    ok &= any_match(l, value) != negated;
                }
            }
            ok
        });
        if !ok {
            return false;
        }
    }
    for w in items(&rule["when"]) {
        let v = attribute(req, principal, text(&w["key"]));
        if let Some(l) = w.get("values") {
            if !any_match(l, v.as_deref()) {
                return false;
            }
        }
        if let Some(l) = w.get("notValues") {
            if any_match(l, v.as_deref()) {
                return false;
            }
        }
    }
    true
}

/// `rule` as it applies on pod port `port`: `to` entries whose
/// `ports`/`notPorts` exclude the port are dropped (and the port keys
/// removed from the rest), `destination.port` conditions decided; `None`
/// when the rule can not match on this port.
///
/// An AuthorizationPolicy's `ports` become `destination.port` (istio/istio
/// `pilot/pkg/security/authz/model/model.go`: `ports` and `notPorts` go
/// through `destPortGenerator`, `generator.go`, into an Envoy RBAC
/// `destination_port` permission, `permission.go`
/// `permissionDestinationPort`), the local port of the downstream
/// connection: on a gateway pod, the port its listener is bound to, i.e.
/// the Gateway server's port (the pod port), never the Service port.
pub fn rule_at_port(rule: &Value, port: u16) -> Option<Value> {
    let p = port.to_string();
    let mut rule = rule.clone();
    if let Some(to) = rule.get("to").cloned() {
        let kept: Vec<Value> = items(&to)
            .filter(|t| {
                let o = &t["operation"];
                let listed = |k: &str| o.get(k).map(|l| items(l).any(|x| x == p.as_str()));
                listed("ports").unwrap_or(true) && !listed("notPorts").unwrap_or(false)
            })
            .map(|t| {
                let mut t = t.clone();
                if let Some(o) = t["operation"].as_object_mut() {
                    o.remove("ports");
                    o.remove("notPorts");
                }
                t
            })
            .collect();
        if kept.is_empty() {
            return None;
        }
        rule["to"] = json!(kept);
    }
    if let Some(when) = rule.get("when").cloned() {
        let mut rest = Vec::new();
        for w in items(&when) {
            if w["key"] != "destination.port" {
                rest.push(w.clone());
                continue;
            }
            if let Some(l) = w.get("values") {
                if !any_match(l, Some(&p)) {
                    return None;
                }
            }
            if let Some(l) = w.get("notValues") {
                if any_match(l, Some(&p)) {
                    return None;
                }
            }
        }
        rule["when"] = json!(rest);
    }
    Some(rule)
}

/// The first of `policies` with a rule that matches `req` on pod port
/// `port`.
pub fn matching_policy<'a>(
    policies: &[&'a Value],
    req: &Request,
    principal: Option<&str>,
    port: u16,
) -> Option<&'a Value> {
    policies.iter().copied().find(|p| {
        items(&p["spec"]["rules"])
            .filter_map(|r| rule_at_port(r, port))
            .any(|r| rule_matches(&r, req, principal))
    })
}

/// One of `policies` has a rule that matches `req` on pod port `port`.
pub fn policies_match(
    policies: &[&Value],
    req: &Request,
    principal: Option<&str>,
    port: u16,
) -> bool {
    matching_policy(policies, req, principal, port).is_some()
}

/// A map of strings from pairs.
pub fn claims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

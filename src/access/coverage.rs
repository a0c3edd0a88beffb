//! What the request model does not model: objects (or fields of objects)
//! of the tree that affect traffic and that no step of the model reads.
//! Each is reported, so that a verdict is never silently wrong about
//! them; the model itself treats them conservatively (an unknown
//! attribute has no value, an unknown selector operator selects nothing).

use super::istio::GATEWAY_WHEN;
use super::routing::adds_proxy_protocol;
use super::tree::{all_docs, items, one, text, ObjectRef, Tree};
use super::GATEWAY_DIR;
use serde_json::Value;

/// One object, or a field of it, the model does not evaluate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmodelled {
    pub object: ObjectRef,
    pub what: String,
}

/// Kinds that change traffic and that the model never reads.
const UNREAD_KINDS: &[(&str, &str)] = &[
    ("WasmPlugin", "a WasmPlugin runs code in the proxies"),
    ("WorkloadEntry", "a WorkloadEntry adds endpoints"),
    ("WorkloadGroup", "a WorkloadGroup adds endpoints"),
    ("ProxyConfig", "a ProxyConfig changes the proxies"),
    ("GRPCRoute", "GRPCRoute is not modelled"),
    ("TCPRoute", "TCPRoute is not modelled"),
    ("TLSRoute", "TLSRoute is not modelled"),
    ("UDPRoute", "UDPRoute is not modelled"),
];

/// The `when` keys the destination side evaluates.
const SIDECAR_WHEN: &[&str] = &[
    "source.namespace",
    "source.principal",
    "destination.port",
    // At an egress gateway (`egress.rs`, the sidecar's SNI).
    "connection.sni",
    "request.headers[",
    "request.auth.claims[",
];

/// The `source` fields of a rule each side evaluates.
const GATEWAY_SOURCE: &[&str] = &["requestPrincipals", "notRequestPrincipals"];
const SIDECAR_SOURCE: &[&str] = &["principals", "namespaces", "requestPrincipals"];
/// The `operation` fields of a rule each side evaluates.
const GATEWAY_OPERATION: &[&str] = &[
    "hosts",
    "notHosts",
    "paths",
    "notPaths",
    "methods",
    "notMethods",
    "ports",
    "notPorts",
];
const SIDECAR_OPERATION: &[&str] = &["ports", "paths", "notPaths", "methods"];

/// Everything of `t` the model does not evaluate, in tree order.
pub fn unmodelled(t: &Tree) -> Vec<Unmodelled> {
    let mut out = Vec::new();
    // The gateway pods' namespace: its policies are the gateway side's.
    let gateway_ns = one(t, &format!("{GATEWAY_DIR}/Deployment.yaml"))
        .map(|d| text(&d["metadata"]["namespace"]))
        .unwrap_or_default();
    for (file, d) in all_docs(t) {
        let mut note = |what: String| {
            out.push(Unmodelled {
                object: ObjectRef::of(file, d),
                what,
            })
        };
        let kind = text(&d["kind"]);
        let istio = text(&d["apiVersion"]).starts_with("networking.istio.io/");
        match kind {
            "EnvoyFilter" if !adds_proxy_protocol(d) => {
                note("an EnvoyFilter patches the proxies' configuration".into())
            }
            "AuthorizationPolicy" => policy(d, gateway_ns, &mut note),
            "DestinationRule" => destination_rule(d, t, &mut note),
            "ServiceEntry" if !file.starts_with(GATEWAY_DIR) => {
                let unread = service_entry_unread(d);
                if !unread.is_empty() {
                    note(format!(
                        "a ServiceEntry adds hosts to the mesh: only the hosts, ports and exportTo of a MESH_EXTERNAL one (DNS or NONE) are modelled, not its {}",
                        unread.join(", ")
                    ))
                }
            }
            "Sidecar" if !sidecar_modelled(d) => {
                note("a Sidecar changes what its proxies send and accept: only its workloadSelector and outboundTrafficPolicy mode are modelled".into())
            }
            "VirtualService" => virtual_service(d, &mut note),
            "Gateway"
                if istio
                    && items(&d["spec"]["servers"]).count() > 1
                    && !super::egress::gateway_modelled(d) =>
            {
                note("only the first server of a Gateway is modelled".into())
            }
            "Gateway" if !istio => {
                for l in items(&d["spec"]["listeners"]) {
                    if let Some(from) = l["allowedRoutes"]["namespaces"]["from"].as_str() {
                        if !matches!(from, "Same" | "All") {
                            note(format!(
                                "listener `{}`: allowedRoutes from {from} (no route is admitted in the model)",
                                text(&l["name"])
                            ));
                        }
                    }
                }
            }
            "HTTPRoute" => {
                for (i, r) in items(&d["spec"]["rules"]).enumerate() {
                    let matches: Vec<&Value> = items(&r["matches"]).collect();
                    if matches.len() > 1
                        || matches.iter().any(|m| {
                            m.get("headers").is_some()
                                || m.get("queryParams").is_some()
                                || m.get("method").is_some()
                                || m["path"]["type"]
                                    .as_str()
                                    .is_some_and(|p| p != "PathPrefix")
                        })
                    {
                        note(format!(
                            "rules[{i}]: only the first PathPrefix match is modelled"
                        ));
                    }
                }
            }
            "NetworkPolicy" => {
                // Ingress and egress rules are modelled (`netpol`); an
                // `ipBlock` matches only addresses outside the cluster there,
                // as the model knows no pod's address. A link-local block
                // (169.254.0.0/16, e.g. ambient's probe address
                // 169.254.7.127) never holds a pod address (RFC 3927).
                if items(&d["spec"]["ingress"])
                    .flat_map(|r| items(&r["from"]))
                    .chain(items(&d["spec"]["egress"]).flat_map(|r| items(&r["to"])))
                    .filter_map(|p| p.get("ipBlock"))
                    .any(|b| !link_local(text(&b["cidr"])))
                {
                    note("ipBlock peers are matched only against addresses outside the cluster (the model knows no pod address)".into());
                }
            }
            _ => {
                if let Some((_, why)) = UNREAD_KINDS.iter().find(|(k, _)| *k == kind) {
                    note((*why).into());
                }
            }
        }
    }
    out
}

/// What the egress model reads of a ServiceEntry (`super::egress`:
/// `declares`, `exported_to`, the waypoint labels): a MESH_EXTERNAL entry
/// (the default location) resolved by DNS or not at all, its hosts, ports
/// and exportTo. Anything else (`endpoints`, `addresses`, a
/// `workloadSelector`, a MESH_INTERNAL location) changes where a host's
/// connections go, which the model does not follow.
const SERVICE_ENTRY: &[&str] = &["hosts", "ports", "exportTo", "location", "resolution"];

/// What of a ServiceEntry the model does not read (nothing: it is
/// modelled).
fn service_entry_unread(d: &Value) -> Vec<String> {
    let spec = &d["spec"];
    let mut unread = unknown_keys(spec, SERVICE_ENTRY);
    if !matches!(spec["location"].as_str(), None | Some("MESH_EXTERNAL")) {
        unread.push(format!("location {}", text(&spec["location"])));
    }
    if !matches!(spec["resolution"].as_str(), None | Some("DNS" | "NONE")) {
        unread.push(format!("resolution {}", text(&spec["resolution"])));
    }
    unread
}

/// A Sidecar the model reads in full: one that sets only its
/// `outboundTrafficPolicy` mode (`super::egress::outbound_policy`), for
/// its namespace or the pods of its `workloadSelector`. Its `ingress` and
/// `egress` listeners (what its proxies accept, and which services they
/// see) and an `egressProxy` are not modelled.
fn sidecar_modelled(d: &Value) -> bool {
    let spec = &d["spec"];
    unknown_keys(spec, &["workloadSelector", "outboundTrafficPolicy"]).is_empty()
        && unknown_keys(&spec["outboundTrafficPolicy"], &["mode"]).is_empty()
}

fn unknown_keys(v: &Value, known: &[&str]) -> Vec<String> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .filter(|k| !known.contains(&k.as_str()))
        .collect()
}

fn when_known(key: &str, known: &[&str]) -> bool {
    known.iter().any(|k| {
        if k.ends_with('[') {
            key.starts_with(k)
        } else {
            key == *k
        }
    })
}

/// An AuthorizationPolicy: a CUSTOM action anywhere but at the gateway
/// (where the model takes it for the login: ext-authz answers with a login
/// redirect without a session and allows with one), and rule fields its
/// side does not evaluate.
fn policy(d: &Value, gateway_ns: &str, note: &mut impl FnMut(String)) {
    let at_gateway = d["metadata"]["namespace"] == gateway_ns;
    let action = d["spec"]["action"].as_str().unwrap_or("ALLOW");
    if action == "CUSTOM" && !at_gateway {
        note(format!(
            "a CUSTOM policy (provider `{}`) is not evaluated: its ext-authz server decides",
            text(&d["spec"]["provider"]["name"])
        ));
        return;
    }
    // AUDIT only logs.
    if action == "AUDIT" {
        return;
    }
    let (source, operation, when) = if at_gateway {
        (GATEWAY_SOURCE, GATEWAY_OPERATION, GATEWAY_WHEN)
    } else {
        (SIDECAR_SOURCE, SIDECAR_OPERATION, SIDECAR_WHEN)
    };
    for (i, r) in items(&d["spec"]["rules"]).enumerate() {
        let mut fields: Vec<String> = Vec::new();
        for f in items(&r["from"]) {
            fields.extend(unknown_keys(&f["source"], source));
        }
        for o in items(&r["to"]) {
            fields.extend(unknown_keys(&o["operation"], operation));
        }
        for w in items(&r["when"]) {
            let key = text(&w["key"]);
            if !when_known(key, when) {
                fields.push(format!("when {key}"));
            }
        }
        fields.sort();
        fields.dedup();
        if !fields.is_empty() {
            note(format!(
                "rules[{i}]: {} not modelled (never matches)",
                fields.join(", ")
            ));
        }
    }
}

/// A DestinationRule: only the gateway's relay to itself (its TLS) is
/// modelled.
fn destination_rule(d: &Value, t: &Tree, note: &mut impl FnMut(String)) {
    let own = all_docs(t).any(|(f, se)| {
        f.starts_with(GATEWAY_DIR)
            && se["kind"] == "ServiceEntry"
            && se["spec"]["hosts"][0] == d["spec"]["host"]
    });
    if own {
        return;
    }
    // ISTIO_MUTUAL is the mTLS between proxies the model assumes; any
    // other mode changes who the destination sees (or whether it can).
    let policy = &d["spec"]["trafficPolicy"];
    let other = |tls: &Value| tls.is_object() && tls["mode"] != "ISTIO_MUTUAL";
    if other(&policy["tls"]) || items(&policy["portLevelSettings"]).any(|s| other(&s["tls"])) {
        note(
            "its tls (the client side of a connection, other than ISTIO_MUTUAL) is not modelled"
                .into(),
        );
    }
    if d["spec"].get("subsets").is_some() && !super::egress::subsets_modelled(d) {
        note("subsets are not modelled".into());
    }
}

/// A VirtualService: routes matched by more than a URI prefix, and TCP/TLS
/// routes.
fn virtual_service(d: &Value, note: &mut impl FnMut(String)) {
    for (i, r) in items(&d["spec"]["http"]).enumerate() {
        let matches: Vec<&Value> = items(&r["match"]).collect();
        let odd = matches.len() > 1
            || matches.iter().any(|m| {
                unknown_keys(m, &["uri", "name"])
                    .iter()
                    .any(|k| k != "gateways")
                    || m["uri"].get("prefix").is_none()
            });
        if odd {
            note(format!(
                "http[{i}]: only the first URI prefix match is modelled"
            ));
        }
        if r.get("route").is_some_and(|r| items(r).count() > 1) {
            note(format!("http[{i}]: only the first destination is modelled"));
        }
        if r.get("delegate").is_some() {
            note(format!("http[{i}]: delegation is not modelled"));
        }
    }
    // An egress gateway's routes (`egress.rs`).
    if super::egress::routes_modelled(d) {
        return;
    }
    for k in ["tcp", "tls"] {
        if items(&d["spec"][k]).next().is_some() {
            note(format!("{k} routes are not modelled"));
        }
    }
}

/// Whether `cidr` lies inside 169.254.0.0/16.
fn link_local(cidr: &str) -> bool {
    cidr.split_once('/').is_some_and(|(net, len)| {
        net.starts_with("169.254.") && len.parse::<u8>().is_ok_and(|l| (16..=32).contains(&l))
    })
}

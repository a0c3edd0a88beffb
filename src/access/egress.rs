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
//!   pod without a sidecar reaches what its NetworkPolicies allow. In an
//!   ambient namespace (istio/ztunnel 1.30.3 `src/proxy/outbound.rs`
//!   `build_request`): ztunnel looks the address the pod connects to up
//!   among the Services it knows, by address alone (the source namespace
//!   only ranks equals, `src/state/service.rs:381-395`, so `exportTo` does
//!   not hide one: :544-590); a Service with a waypoint goes to that
//!   waypoint over HBONE (15008); an address it does not know is passed
//!   through from the pod's own network namespace (:600-630), where the
//!   pod's NetworkPolicies apply. A host reaches ztunnel as a ServiceEntry's
//!   address only when istiod allocated one (`PILOT_ENABLE_IP_AUTOALLOCATE`,
//!   default true, istio/istio 1.30.3 `pilot/pkg/features/pilot.go:179-183`)
//!   and ztunnel's DNS proxy answered the pod's query (istio-cni
//!   `ambient.dnsCapture`, default true, `manifests/charts/istio-cni/values.yaml:70`);
//!   otherwise the pod connects to the host's own address. A ServiceEntry
//!   uses the waypoint its `istio.io/use-waypoint` label names (in the
//!   namespace of `istio.io/use-waypoint-namespace`, else its own; `none`:
//!   none), else its namespace's (istio/istio 1.30.3
//!   `pilot/pkg/serviceregistry/ambient/waypoints.go` `fetchWaypointForTarget`,
//!   `GetUseWaypoint`). The waypoint enforces the AuthorizationPolicies
//!   attached to its Gateway or to that ServiceEntry, by the ServiceEntry's
//!   object name in its own namespace
//!   (`pilot/pkg/model/policyattachment.go:77-87,165-173`, the name from
//!   `pilot/pkg/serviceregistry/serviceentry/conversion.go:307`), then
//!   connects to the host from its own pod.
//! - Through an egress gateway (istio.io "Egress Gateways"; the objects
//!   `model::egress_gateway` renders, its citations there): a sidecar
//!   takes the first VirtualService exported to its namespace, bound to
//!   `mesh` (or to no gateway), naming the host, whose `tls` route matches
//!   the port and the SNI, and connects to its destination, a Service (the
//!   gateway pods behind it), with the DestinationRule subset's Istio
//!   mutual TLS and SNI; the NetworkPolicies of both ends admit that
//!   connection; the gateway's AuthorizationPolicies decide it as a
//!   sidecar's (`super::sidecar::authorize`: source namespace, port,
//!   `connection.sni`); a Gateway selecting those pods terminates it on a
//!   server of that port naming the SNI host (`ISTIO_MUTUAL`), a
//!   VirtualService of the gateway's namespace bound to that Gateway takes
//!   it on with a `tcp` route, a ServiceEntry seen from the gateway's
//!   namespace declares the host, and the gateway pods' NetworkPolicies
//!   admit their egress to its address.

use super::netpol::{self, namespace_labels, selector_matches, Peer, PodRef, Tree};
use super::tree::{items, text};
use serde_json::{json, Value};
use std::net::Ipv4Addr;

/// A pod's connection to a host outside the cluster.
#[derive(Clone, Debug)]
pub struct Outbound<'a> {
    pub from: &'a PodRef,
    /// Whether the pod's traffic goes through the mesh's proxy: its
    /// sidecar, or in an ambient namespace ztunnel's capture (false: no
    /// sidecar injected, traffic excluded from capture, or the pod opted
    /// out with `istio.io/dataplane-mode: none`).
    pub proxied: bool,
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
    if ambient {
        return if req.proxied {
            through_ztunnel(t, req)
        } else {
            direct(t, req)
        };
    }
    if req.proxied && outbound_policy(t, req.from) == "REGISTRY_ONLY" {
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
    if req.proxied {
        if let Some(route) = mesh_route(t, ns, req.host, req.port) {
            return through_gateway(t, req, &route);
        }
    }
    direct(t, req)
}

/// The pod's own connection to the host's address: what its
/// NetworkPolicies allow.
fn direct(t: &Tree, req: &Outbound) -> Result<(), String> {
    if !netpol::egress_allowed(t, req.from, &Peer::External(req.address), req.port) {
        return Err(format!(
            "a NetworkPolicy of `{}` refuses egress to {}:{}",
            req.from.namespace, req.address, req.port
        ));
    }
    Ok(())
}

/// Whether the tree's Istio leaves ztunnel to answer a ServiceEntry's host
/// with the address istiod allocated it: neither istio-cni's
/// `ambient.dnsCapture` nor istiod's `PILOT_ENABLE_IP_AUTOALLOCATE` is
/// turned off in the wrapper chart's values (both default on).
fn ztunnel_resolves_service_entries(t: &Tree) -> bool {
    let values = wrapper_values(t);
    let off = |v: Option<&Value>| {
        v.is_some_and(|v| v == &Value::Bool(false) || v.as_str() == Some("false"))
    };
    !values.is_some_and(|v| {
        off(v.pointer("/istio-cni/ambient/dnsCapture"))
            || off(v.pointer("/istio-daemon/pilot/env/PILOT_ENABLE_IP_AUTOALLOCATE"))
    })
}

/// The waypoint a ServiceEntry's traffic goes through: (namespace, name)
/// of a Gateway of class `istio-waypoint` that serves Services.
fn service_entry_waypoint(t: &Tree, se: &Value) -> Option<(String, String)> {
    let own_ns = text(&se["metadata"]["namespace"]).to_string();
    let labels = &se["metadata"]["labels"];
    let (name, ns) = match labels["istio.io/use-waypoint"].as_str() {
        Some("none") => return None,
        Some(name) => (
            name.to_string(),
            labels["istio.io/use-waypoint-namespace"]
                .as_str()
                .unwrap_or(&own_ns)
                .to_string(),
        ),
        None => (
            namespace_labels(t, &own_ns)
                .get("istio.io/use-waypoint")
                .filter(|n| *n != "none")?
                .clone(),
            own_ns,
        ),
    };
    kind_docs(t, "Gateway", "gateway.networking.k8s.io/")
        .any(|g| {
            g["metadata"]["namespace"] == ns.as_str()
                && g["metadata"]["name"] == name.as_str()
                && g["spec"]["gatewayClassName"] == "istio-waypoint"
                && matches!(
                    g["metadata"]["labels"]["istio.io/waypoint-for"].as_str(),
                    None | Some("service") | Some("all")
                )
        })
        .then_some((ns, name))
}

/// The connection of a pod in an ambient namespace, as its node's ztunnel
/// carries it (the module's documentation cites ztunnel).
fn through_ztunnel(t: &Tree, req: &Outbound) -> Result<(), String> {
    let ns = &req.from.namespace;
    if !ztunnel_resolves_service_entries(t) {
        return direct(t, req);
    }
    let Some(se) = service_entries(t).find(|se| declares(se, req.host, req.port)) else {
        // Not in the registry: ztunnel passes it through.
        return direct(t, req);
    };
    let Some((wns, w)) = service_entry_waypoint(t, se) else {
        // No waypoint: ztunnel connects to the host itself, from the pod.
        return direct(t, req);
    };
    let by = name_of(se);
    // The waypoint's pods, by the label istiod's template gives them
    // (istio/istio 1.30.3 `charts/istio-control/istio-discovery/files/waypoint.yaml:59-72`).
    let pod = PodRef {
        namespace: wns.clone(),
        labels: [(
            "gateway.networking.k8s.io/gateway-name".to_string(),
            w.clone(),
        )]
        .into(),
    };
    if !netpol::connection_allowed(t, &Peer::Pod(req.from.clone()), &pod, HBONE_PORT) {
        return Err(format!(
            "{by} goes through the waypoint {wns}/{w}: a NetworkPolicy refuses `{ns}` -> its pods on {HBONE_PORT} (HBONE)"
        ));
    }
    let inbound = super::sidecar::Inbound {
        pod: super::sidecar::Pod {
            namespace: wns.clone(),
            labels: pod.labels.clone(),
            port: HBONE_PORT,
        },
        principal: Some(format!("cluster.local/ns/{ns}/sa/default-editor")),
        method: String::new(),
        path: String::new(),
        headers: Default::default(),
        token: None,
        sni: None,
    };
    let at = super::sidecar::Enforcer::ServiceEntryWaypoint {
        waypoint: &w,
        service_entry: text(&se["metadata"]["name"]),
    };
    if !super::sidecar::authorize(t, &inbound, at) {
        return Err(format!(
            "the waypoint {wns}/{w}'s AuthorizationPolicies refuse `{ns}` for {by}"
        ));
    }
    if !netpol::egress_allowed(t, &pod, &Peer::External(req.address), req.port) {
        return Err(format!(
            "a NetworkPolicy of `{wns}` refuses the waypoint's egress to {}:{}",
            req.address, req.port
        ));
    }
    Ok(())
}

/// The port a waypoint takes HBONE on.
const HBONE_PORT: u16 = 15008;

/// A sidecar's route of a host to a Service of the mesh.
struct MeshRoute {
    /// `VirtualService/<ns>/<name>`.
    by: String,
    /// The destination Service's host, subset and port.
    service: String,
    subset: Option<String>,
    port: u16,
}

fn kind_docs<'t>(t: &'t Tree, kind: &'t str, group: &'t str) -> impl Iterator<Item = &'t Value> {
    (t.values().flatten()).filter(move |d| {
        d["kind"] == kind
            && d["apiVersion"]
                .as_str()
                .is_some_and(|a| a.starts_with(group))
    })
}

fn name_of(d: &Value) -> String {
    format!(
        "{}/{}/{}",
        text(&d["kind"]),
        text(&d["metadata"]["namespace"]),
        text(&d["metadata"]["name"])
    )
}

fn strs(v: &Value) -> impl Iterator<Item = &str> {
    items(v).filter_map(Value::as_str)
}

/// A `match` entry's `port` (absent: any) is `port`.
fn port_matches(m: &Value, port: u16) -> bool {
    m.get("port")
        .is_none_or(|p| p.as_u64() == Some(u64::from(port)))
}

/// The sidecar's route for `host`:`port` from namespace `ns`, if a
/// VirtualService bound to `mesh` sends it to a Service of the mesh.
fn mesh_route(t: &Tree, ns: &str, host: &str, port: u16) -> Option<MeshRoute> {
    kind_docs(t, "VirtualService", "networking.istio.io/")
        .filter(|vs| exported_to(vs, ns))
        .filter(|vs| strs(&vs["spec"]["hosts"]).any(|h| h == host))
        .filter(|vs| match vs["spec"].get("gateways") {
            None => true,
            Some(g) => strs(g).any(|g| g == "mesh"),
        })
        .find_map(|vs| {
            let route = items(&vs["spec"]["tls"]).find(|r| {
                items(&r["match"]).any(|m| {
                    m.get("gateways")
                        .is_none_or(|g| strs(g).any(|g| g == "mesh"))
                        && port_matches(m, port)
                        && strs(&m["sniHosts"]).any(|h| h == host)
                })
            })?;
            let dest = &items(&route["route"]).next()?["destination"];
            Some(MeshRoute {
                by: name_of(vs),
                service: text(&dest["host"]).to_string(),
                subset: dest["subset"].as_str().map(str::to_string),
                port: dest["port"]["number"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(port),
            })
        })
}

/// The SNI and TLS mode a sidecar uses towards `service`:`port` in
/// `subset`: the DestinationRule for the host (the client's namespace's
/// first, as Istio looks them up, `pilot/pkg/model/push_context.go`
/// `destinationRule`), the subset's port-level, then its own settings.
fn client_tls(
    t: &Tree,
    ns: &str,
    service: &str,
    subset: &str,
    port: u16,
) -> Option<(String, String)> {
    let mut rules: Vec<&Value> = kind_docs(t, "DestinationRule", "networking.istio.io/")
        .filter(|d| d["spec"]["host"] == service && exported_to(d, ns))
        .collect();
    rules.sort_by_key(|d| d["metadata"]["namespace"] != ns);
    let s = items(&rules.first()?["spec"]["subsets"]).find(|s| s["name"] == subset)?;
    let policy = &s["trafficPolicy"];
    let tls = items(&policy["portLevelSettings"])
        .find(|p| p["port"]["number"].as_u64() == Some(u64::from(port)))
        .map(|p| &p["tls"])
        .filter(|t| t.is_object())
        .unwrap_or(&policy["tls"]);
    Some((
        text(&tls["mode"]).to_string(),
        tls["sni"].as_str().unwrap_or(service).to_string(),
    ))
}

/// The connection from the sidecar of `req.from` through the egress
/// gateway `route` names, to the host.
fn through_gateway(t: &Tree, req: &Outbound, route: &MeshRoute) -> Result<(), String> {
    let ns = &req.from.namespace;
    let via = &route.by;
    let gw = super::sidecar::pod_behind(t, &route.service, route.port)
        .map_err(|e| format!("{via} routes to {}: {e}", route.service))?;
    let subset = route.subset.as_deref().unwrap_or_default();
    let (mode, sni) = client_tls(t, ns, &route.service, subset, route.port).ok_or_else(|| {
        format!(
            "{via}: no DestinationRule subset `{subset}` for {}",
            route.service
        )
    })?;
    if mode != "ISTIO_MUTUAL" {
        return Err(format!(
            "{via}: the subset `{subset}` of {} is not ISTIO_MUTUAL ({mode:?})",
            route.service
        ));
    }
    let gw_ref = PodRef {
        namespace: gw.namespace.clone(),
        labels: gw.labels.clone(),
    };
    if !netpol::connection_allowed(t, &Peer::Pod(req.from.clone()), &gw_ref, gw.port) {
        return Err(format!(
            "a NetworkPolicy refuses `{ns}` -> the egress gateway ({}:{})",
            gw.namespace, gw.port
        ));
    }
    let inbound = super::sidecar::Inbound {
        pod: gw.clone(),
        principal: Some(format!("cluster.local/ns/{ns}/sa/default-editor")),
        method: String::new(),
        path: String::new(),
        headers: Default::default(),
        token: None,
        sni: Some(sni.clone()),
    };
    if !super::sidecar::authorize(t, &inbound, super::sidecar::Enforcer::Sidecar) {
        return Err(format!(
            "the egress gateway's AuthorizationPolicies refuse `{ns}` for {sni} (`connection.sni`)"
        ));
    }
    let gw_ns = gw.namespace.as_str();
    let gateway = kind_docs(t, "Gateway", "networking.istio.io/")
        .filter(|g| {
            super::sidecar::selects(
                &json!({"selector": {"matchLabels": g["spec"]["selector"]}}),
                &gw.labels,
            )
        })
        .find(|g| {
            items(&g["spec"]["servers"]).any(|s| {
                s["port"]["number"].as_u64() == Some(u64::from(route.port))
                    && s["tls"]["mode"] == "ISTIO_MUTUAL"
                    && strs(&s["hosts"]).any(|h| {
                        let h = h.split_once('/').map_or(h, |(_, h)| h);
                        h == sni || h == "*"
                    })
            })
        })
        .ok_or_else(|| {
            format!(
                "no Gateway on the egress gateway ends `{sni}`:{}",
                route.port
            )
        })?;
    let gateway_names = [
        format!(
            "{}/{}",
            text(&gateway["metadata"]["namespace"]),
            text(&gateway["metadata"]["name"])
        ),
        text(&gateway["metadata"]["name"]).to_string(),
    ];
    let onward = kind_docs(t, "VirtualService", "networking.istio.io/")
        .filter(|vs| {
            vs["metadata"]["namespace"] == gw_ns && strs(&vs["spec"]["hosts"]).any(|h| h == sni)
        })
        .find_map(|vs| {
            let r = items(&vs["spec"]["tcp"]).find(|r| {
                items(&r["match"]).any(|m| {
                    strs(&m["gateways"]).any(|g| gateway_names.contains(&g.to_string()))
                        && port_matches(m, route.port)
                })
            })?;
            let dest = &items(&r["route"]).next()?["destination"];
            Some((
                text(&dest["host"]).to_string(),
                dest["port"]["number"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok()),
            ))
        })
        .ok_or_else(|| {
            format!(
                "no VirtualService takes `{sni}` on from {}",
                name_of(gateway)
            )
        })?;
    let port = onward.1.unwrap_or(req.port);
    if onward.0 != req.host {
        return Err(format!(
            "the egress gateway sends `{sni}` to {}, not {}",
            onward.0, req.host
        ));
    }
    let seen = service_entries(t)
        .filter(|se| exported_to(se, gw_ns))
        .any(|se| declares(se, req.host, port));
    if !seen {
        return Err(format!(
            "no ServiceEntry seen from `{gw_ns}` declares {}:{port}",
            req.host
        ));
    }
    if !netpol::egress_allowed(t, &gw_ref, &Peer::External(req.address), port) {
        return Err(format!(
            "a NetworkPolicy of `{gw_ns}` refuses the egress gateway's egress to {}:{port}",
            req.address
        ));
    }
    Ok(())
}

/// Whether [`egress`] evaluates all of a VirtualService's `tls` and `tcp`
/// routes (`super::coverage`): no `http` routes, each `tls` route matched
/// by SNI and each `tcp` route by gateway (and port), one destination each.
pub fn routes_modelled(vs: &Value) -> bool {
    let one = |r: &Value| items(&r["route"]).count() == 1;
    let keys_in = |m: &Value, known: &[&str]| {
        m.as_object()
            .is_some_and(|o| o.keys().all(|k| known.contains(&k.as_str())))
    };
    vs["spec"].get("http").is_none()
        && items(&vs["spec"]["tls"]).all(|r| {
            one(r)
                && items(&r["match"]).all(|m| {
                    keys_in(m, &["gateways", "port", "sniHosts"]) && m.get("sniHosts").is_some()
                })
        })
        && items(&vs["spec"]["tcp"]).all(|r| {
            one(r)
                && items(&r["match"])
                    .all(|m| keys_in(m, &["gateways", "port"]) && m.get("gateways").is_some())
        })
}

/// Whether [`egress`] evaluates every server of an Istio Gateway: each
/// ends Istio mutual TLS (an egress gateway's), which no request of the
/// ingress model reaches.
pub fn gateway_modelled(gw: &Value) -> bool {
    items(&gw["spec"]["servers"])
        .all(|s| s["tls"]["mode"] == "ISTIO_MUTUAL" && s["port"]["protocol"] == "TLS")
}

/// Whether [`egress`] evaluates a DestinationRule's subsets: none selects
/// endpoints by label (each is the whole Service), and each one's TLS is
/// Istio mutual TLS (its SNI is read).
pub fn subsets_modelled(dr: &Value) -> bool {
    items(&dr["spec"]["subsets"]).all(|s| {
        s.get("labels").is_none()
            && s.as_object()
                .is_some_and(|o| o.keys().all(|k| k == "name" || k == "trafficPolicy"))
            && items(&s["trafficPolicy"]["portLevelSettings"])
                .chain(std::iter::once(&s["trafficPolicy"]))
                .all(|p| p.get("tls").is_none_or(|t| t["mode"] == "ISTIO_MUTUAL"))
    })
}

/// The values of the Istio wrapper chart the tree installs, if any.
fn wrapper_values(t: &Tree) -> Option<&Value> {
    (t.values().flatten()).find(|d| d.get("istio-daemon").is_some())
}

/// The mesh config of the Istio the tree installs (the wrapper chart's
/// values), if any.
fn mesh_config(t: &Tree) -> Option<&Value> {
    wrapper_values(t)?.get("istio-daemon")?.get("meshConfig")
}

/// The root namespace: the Istio namespace of the wrapper chart's values.
fn root_namespace(t: &Tree) -> &str {
    (t.values().flatten())
        .find_map(|d| d.get("global")?.get("istioNamespace")?.as_str())
        .unwrap_or("istio-system")
}

/// The outbound policy mode of `pod`'s sidecar.
pub fn outbound_policy<'t>(t: &'t Tree, pod: &PodRef) -> &'t str {
    outbound_policy_of(t, pod).0
}

/// [`outbound_policy`], with the document that sets it: the Sidecar, or
/// the Istio wrapper chart's values (the mesh config); `None`: Istio's
/// default.
pub fn outbound_policy_of<'t>(t: &'t Tree, pod: &PodRef) -> (&'t str, Option<&'t Value>) {
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
    let from_sidecar = selected.and_then(|s| Some((mode(s.get("spec"))?, Some(s))));
    from_sidecar
        .or_else(|| Some((mode(mesh_config(t))?, wrapper_values(t))))
        .unwrap_or(("ALLOW_ANY", None))
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

//! The gateway's listeners and routes in either routing API, as one model:
//! Istio's own `Gateway`/`VirtualService` (`api: istio`) or the Kubernetes
//! Gateway API's `Gateway`/`HTTPRoute` (`api: gateway-api`). The replays
//! (`at_listener`) ask this module which listener serves a connection,
//! which route serves a path and what that route does; each API answers
//! by its own rules, so the same expectations hold for both trees.

use super::*;

/// A listener of the gateway pods, as the replay needs it.
#[derive(Clone, Debug)]
pub(crate) struct Listener {
    pub(crate) https: bool,
    /// The Secret whose certificate it serves (HTTPS only).
    pub(crate) credential: Option<String>,
    /// The document it comes from: an Istio `Gateway`, or a Gateway API
    /// `Gateway` with the one listener's name.
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    Istio(Value),
    GatewayApi { gateway: Value, listener: String },
}

/// What a route does with a request it matches.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Action {
    Redirect {
        scheme: String,
        port: u16,
    },
    /// To the gateway's own Service entry (the HTTP listener's relay), on
    /// this public port.
    Relay(u16),
    /// To an upstream Service.
    Upstream,
    /// The route has no usable backend (Istio answers 500).
    Unresolved(String),
}

#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub(crate) name: String,
    prefix: Option<String>,
    /// Gateway API `PathPrefix`: whole path elements only.
    separated: bool,
    pub(crate) action: Action,
    /// Request headers the route removes.
    pub(crate) remove: Vec<String>,
    pub(crate) hsts: bool,
    /// The upstream Service (`host`, port) of an `Upstream` route (Istio
    /// routes only; the union replays of `kubeflow.rs` follow it).
    pub(crate) destination: Option<(String, u16)>,
}

impl Route {
    pub(crate) fn matches(&self, path: &str) -> bool {
        let Some(p) = &self.prefix else { return true };
        if !self.separated || p == "/" {
            return path.starts_with(p.as_str());
        }
        // istio `pilot/pkg/networking/core/route/route.go` (1.30.3) lines
        // 1099-1102: a Gateway API prefix becomes Envoy's
        // `path_separated_prefix`, the prefix without its trailing `/`,
        // matching the whole path or the path up to a `/`.
        let p = p.trim_end_matches('/');
        path == p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
    }
}

/// The tree renders the Gateway API (`api: gateway-api`).
pub(crate) fn gateway_api(t: &Tree) -> bool {
    t.get(&format!("{GW_DIR}/Gateway.yaml"))
        .is_some_and(|d| d[0]["apiVersion"] == "gateway.networking.k8s.io/v1")
}

/// The gateway Service's `targetPort` for a Service port (a Gateway API
/// listener's `port` is the Service port: istio
/// `pilot/pkg/config/kube/gateway/conversion.go` resolves it to the pods'
/// port through the Service the Hostname address names).
fn target_port(t: &Tree, port: u64) -> u16 {
    let svc = one(t, &format!("{GW_DIR}/Service.yaml"));
    svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == port)
        .map(|p| p["targetPort"].as_u64().unwrap() as u16)
        .unwrap_or_else(|| panic!("no Service port {port}"))
}

fn api_listeners(t: &Tree) -> Vec<(Value, Value)> {
    let gateway = one(t, &format!("{GW_DIR}/Gateway.yaml"));
    gateway["spec"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (gateway.clone(), l.clone()))
        .collect()
}

/// The pod port of the gateway's `http` or `https` listener.
pub(crate) fn gw_port(t: &Tree, which: &str) -> u16 {
    if gateway_api(t) {
        let (_, l) = api_listeners(t)
            .into_iter()
            .find(|(_, l)| l["name"] == which)
            .unwrap_or_else(|| panic!("no listener {which}"));
        return target_port(t, l["port"].as_u64().unwrap());
    }
    let name = if which == "http" {
        "Gateway-https-redirect.yaml"
    } else {
        "Gateway.yaml"
    };
    let g = one(t, &format!("{GW_DIR}/{name}"));
    g["spec"]["servers"][0]["port"]["number"].as_u64().unwrap() as u16
}

/// The listener a connection to pod port `port` for `host` (its SNI on
/// HTTPS) reaches; `None`: no listener takes it (the TLS handshake fails).
pub(crate) fn listener_at(t: &Tree, port: u16, host: &str) -> Option<Listener> {
    if !gateway_api(t) {
        // Only a Gateway whose selector picks meshgen's gateway pods (the
        // labels of its main Gateway) opens a listener on them: a Gateway
        // of other pods (Kubeflow's `cluster-local-gateway`) does not.
        let pods = one(t, &format!("{GW_DIR}/Gateway.yaml"))["spec"]["selector"].clone();
        let on_pods = |d: &Value| {
            d["spec"]["selector"]
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| pods.get(k) == Some(v))
        };
        let gateway = all_docs(t)
            .map(|(_, d)| d)
            .find(|d| {
                d["kind"] == "Gateway"
                    && d["apiVersion"]
                        .as_str()
                        .is_some_and(|v| v.starts_with("networking.istio.io/"))
                    && on_pods(d)
                    && d["spec"]["servers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|s| s["port"]["number"] == port)
            })?
            .clone();
        let server = &gateway["spec"]["servers"][0];
        return Some(Listener {
            https: server["port"]["protocol"] == "HTTPS",
            credential: server["tls"]["credentialName"].as_str().map(String::from),
            source: Source::Istio(gateway),
        });
    }
    // Istio gives each HTTPS listener its own filter chain, chosen by SNI;
    // an exact hostname wins over a wildcard, no hostname takes any.
    let on_port: Vec<(Value, Value)> = api_listeners(t)
        .into_iter()
        .filter(|(_, l)| target_port(t, l["port"].as_u64().unwrap()) == port)
        .collect();
    let rank = |l: &Value| match l["hostname"].as_str() {
        None => Some(0),
        Some(h) if h == host => Some(2),
        Some(h) => h
            .strip_prefix("*.")
            .is_some_and(|s| host.ends_with(&format!(".{s}")))
            .then_some(1),
    };
    let (gateway, l) = on_port
        .into_iter()
        .filter_map(|(g, l)| rank(&l).map(|r| (r, g, l)))
        .max_by_key(|(r, _, _)| *r)
        .map(|(_, g, l)| (g, l))?;
    Some(Listener {
        https: l["protocol"] == "HTTPS",
        credential: l["tls"]["certificateRefs"][0]["name"]
            .as_str()
            .map(String::from),
        source: Source::GatewayApi {
            gateway,
            listener: l["name"].as_str().unwrap().to_string(),
        },
    })
}

/// The routes `listener` serves for `host`, in the order Envoy tries them.
pub(crate) fn routes_at(t: &Tree, listener: &Listener, host: &str) -> Vec<Route> {
    match &listener.source {
        Source::Istio(gateway) => listener_routes(t, gateway, host)
            .iter()
            .map(|r| istio_route(t, r))
            .collect(),
        Source::GatewayApi { gateway, listener } => api_routes(t, gateway, listener, host),
    }
}

fn istio_route(t: &Tree, r: &Value) -> Route {
    let action = if let Some(redirect) = r.get("redirect") {
        Action::Redirect {
            scheme: redirect["scheme"].as_str().unwrap().into(),
            port: redirect["port"].as_u64().unwrap() as u16,
        }
    } else {
        let dest = &r["route"][0]["destination"];
        let gw_host = one(t, &format!("{GW_DIR}/ServiceEntry.yaml"))["spec"]["hosts"][0].clone();
        if dest["host"] == gw_host {
            Action::Relay(dest["port"]["number"].as_u64().unwrap() as u16)
        } else {
            Action::Upstream
        }
    };
    let dest = &r["route"][0]["destination"];
    Route {
        // Kubeflow's routes have no name.
        name: r["name"].as_str().unwrap_or_default().into(),
        destination: dest["host"].as_str().map(|h| {
            (
                h.to_string(),
                dest["port"]["number"].as_u64().unwrap_or(80) as u16,
            )
        }),
        prefix: r["match"][0]["uri"]["prefix"].as_str().map(String::from),
        separated: false,
        action,
        remove: r["headers"]["request"]["remove"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| h.as_str().unwrap().to_string())
            .collect(),
        hsts: hsts_value(r["headers"]["response"]["set"]["strict-transport-security"].as_str()),
    }
}

fn hsts_value(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.starts_with("max-age=") && v != "max-age=0")
}

/// A hostname (a Gateway API route's or listener's, an Istio server's
/// DNS part) admits `host`: the same name, or `*.` and a suffix.
pub(crate) fn hostname_admits(pattern: &str, host: &str) -> bool {
    pattern == host
        || pattern
            .strip_prefix("*.")
            .is_some_and(|s| host.ends_with(&format!(".{s}")))
}

/// The namespaces a listener's `allowedRoutes` admits routes from
/// (istio `conversion.go` `namespacesFromSelector`, 1.30.3 lines
/// 2479-2490: no `allowedRoutes`, or `from: Same`, is the Gateway's own
/// namespace; `All` is any).
fn route_namespace_allowed(listener: &Value, gw_ns: &str, route_ns: &str) -> bool {
    match listener["allowedRoutes"]["namespaces"]["from"].as_str() {
        None | Some("Same") => route_ns == gw_ns,
        Some("All") => true,
        Some(other) => panic!("allowedRoutes from {other} not modelled"),
    }
}

/// A ReferenceGrant in `ns` lets HTTPRoutes of `from_ns` send to Service
/// `name` (istio `conversion.go` `buildDestination`, 1.30.3 lines
/// 1087-1099: without one, the backend is refused).
fn granted(t: &Tree, from_ns: &str, ns: &str, name: &str) -> bool {
    from_ns == ns
        || all_docs(t).any(|(_, d)| {
            d["kind"] == "ReferenceGrant"
                && d["metadata"]["namespace"] == ns
                && d["spec"]["from"].as_array().unwrap().iter().any(|f| {
                    f["group"] == "gateway.networking.k8s.io"
                        && f["kind"] == "HTTPRoute"
                        && f["namespace"] == from_ns
                })
                && d["spec"]["to"].as_array().unwrap().iter().any(|to| {
                    to["group"] == ""
                        && to["kind"] == "Service"
                        && to.get("name").is_none_or(|n| n == name)
                })
        })
}

fn api_routes(t: &Tree, gateway: &Value, listener_name: &str, host: &str) -> Vec<Route> {
    let gw_ns = gateway["metadata"]["namespace"].as_str().unwrap();
    let gw_name = gateway["metadata"]["name"].as_str().unwrap();
    let listener = gateway["spec"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == listener_name)
        .unwrap();
    let mut rules: Vec<Route> = Vec::new();
    for (_, d) in all_docs(t) {
        if d["kind"] != "HTTPRoute" {
            continue;
        }
        let route_ns = d["metadata"]["namespace"].as_str().unwrap();
        let attached = d["spec"]["parentRefs"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| {
                p["name"] == gw_name
                    && p["namespace"].as_str().unwrap_or(route_ns) == gw_ns
                    && p["sectionName"].as_str().is_none_or(|s| s == listener_name)
            });
        let hosts_ok = match d["spec"]["hostnames"].as_array() {
            None => true,
            Some(h) if h.is_empty() => true,
            Some(h) => h.iter().any(|p| hostname_admits(p.as_str().unwrap(), host)),
        };
        if !attached || !hosts_ok || !route_namespace_allowed(listener, gw_ns, route_ns) {
            continue;
        }
        for r in d["spec"]["rules"].as_array().unwrap() {
            rules.push(api_rule(t, route_ns, r));
        }
    }
    // Precedence across every route of the host: the longest prefix first,
    // stable otherwise (istio `conversion.go` `sortHTTPRoutes`, 1.30.3
    // lines 466-496, applied to the merged routes in
    // `route_collections.go` line 887).
    rules.sort_by_key(|r| {
        std::cmp::Reverse(
            r.prefix
                .as_deref()
                .map(|p| {
                    if p == "/" {
                        1
                    } else {
                        p.trim_end_matches('/').len()
                    }
                })
                .unwrap_or(0),
        )
    });
    rules
}

fn api_rule(t: &Tree, route_ns: &str, r: &Value) -> Route {
    let filters: Vec<&Value> = r["filters"].as_array().into_iter().flatten().collect();
    let filter = |kind: &str| filters.iter().find(|f| f["type"] == kind).copied();
    let mut remove = Vec::new();
    if let Some(f) = filter("RequestHeaderModifier") {
        for h in f["requestHeaderModifier"]["remove"]
            .as_array()
            .into_iter()
            .flatten()
        {
            remove.push(h.as_str().unwrap().to_ascii_lowercase());
        }
    }
    let hsts = filter("ResponseHeaderModifier").is_some_and(|f| {
        f["responseHeaderModifier"]["set"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|h| {
                h["name"]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case("strict-transport-security")
                    && hsts_value(h["value"].as_str())
            })
    });
    let action = if let Some(f) = filter("RequestRedirect") {
        let rr = &f["requestRedirect"];
        Action::Redirect {
            scheme: rr["scheme"].as_str().unwrap().into(),
            port: rr["port"].as_u64().unwrap() as u16,
        }
    } else {
        let b = &r["backendRefs"][0];
        let group = b["group"].as_str().unwrap_or("");
        let kind = b["kind"].as_str().unwrap_or("Service");
        if group == "networking.istio.io" && kind == "Hostname" {
            let se = one(t, &format!("{GW_DIR}/ServiceEntry.yaml"));
            if se["spec"]["hosts"][0] == b["name"] {
                Action::Relay(b["port"].as_u64().unwrap() as u16)
            } else {
                Action::Unresolved(format!("no ServiceEntry for {}", b["name"]))
            }
        } else {
            let ns = b["namespace"].as_str().unwrap_or(route_ns);
            let name = b["name"].as_str().unwrap();
            if granted(t, route_ns, ns, name) {
                Action::Upstream
            } else {
                Action::Unresolved(format!("500: no ReferenceGrant for {ns}/{name}"))
            }
        }
    };
    Route {
        name: r["name"].as_str().unwrap().into(),
        destination: None,
        prefix: r["matches"][0]["path"]["value"].as_str().map(String::from),
        separated: true,
        action,
        remove,
        hsts,
    }
}

/// The gateway pods speak PROXY protocol on every listener: an EnvoyFilter
/// adding the listener filter (`api: istio`), or `gatewayTopology.proxyProtocol`
/// in the pods' `proxy.istio.io/config` annotation (istio 1.30.3
/// `pilot/pkg/networking/core/gateway.go:168-169` adds the PROXY listener
/// filter on every gateway listener when the proxy's topology has it).
pub(crate) fn proxy_protocol(t: &Tree) -> bool {
    let envoy_filter = all_docs(t).any(|(_, d)| {
        d["kind"] == "EnvoyFilter"
            && d["spec"]["configPatches"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| {
                    p["patch"]["value"]["listener_filters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|f| f["name"] == "envoy.filters.listener.proxy_protocol")
                })
    });
    let annotation = t
        .get(&format!("{GW_DIR}/Deployment.yaml"))
        .and_then(|d| {
            d[0]["spec"]["template"]["metadata"]["annotations"]["proxy.istio.io/config"]
                .as_str()
                .map(String::from)
        })
        .is_some_and(|c| {
            let c: Value = serde_json::from_str(&c).unwrap();
            c["gatewayTopology"].get("proxyProtocol").is_some()
        });
    envoy_filter || annotation
}

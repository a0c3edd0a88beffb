//! The gateway's listeners and routes in either routing API, as one model:
//! Istio's own `Gateway`/`VirtualService` (`api: istio`) or the Kubernetes
//! Gateway API's `Gateway`/`HTTPRoute` (`api: gateway-api`). The gateway
//! side (`gateway.rs`) asks this module which listener serves a
//! connection, which route serves a path and what that route does; each
//! API answers by its own rules.

use super::tree::{all_docs, items, one, port_of, text, ObjectRef, Tree};
use super::GATEWAY_DIR;
use serde_json::Value;

/// A listener of the gateway pods, as the model needs it.
#[derive(Clone, Debug)]
pub struct Listener {
    pub https: bool,
    /// The Secret whose certificate it serves (HTTPS only).
    pub credential: Option<String>,
    /// The Gateway object it comes from.
    pub object: Option<ObjectRef>,
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    Istio(Value),
    GatewayApi { gateway: Value, listener: String },
}

/// What a route does with a request it matches.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
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
pub struct Route {
    pub name: String,
    prefix: Option<String>,
    /// Gateway API `PathPrefix`: whole path elements only.
    separated: bool,
    pub action: Action,
    /// Request headers the route removes.
    pub remove: Vec<String>,
    pub hsts: bool,
    /// The upstream Service (`host`, port) of an `Upstream` route.
    pub destination: Option<(String, u16)>,
    /// The VirtualService or HTTPRoute it is a rule of.
    pub object: Option<ObjectRef>,
}

impl Route {
    pub fn matches(&self, path: &str) -> bool {
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

fn gw_file(name: &str) -> String {
    format!("{GATEWAY_DIR}/{name}")
}

/// The tree renders the Gateway API (`api: gateway-api`).
pub fn gateway_api(t: &Tree) -> bool {
    one(t, &gw_file("Gateway.yaml"))
        .is_some_and(|d| d["apiVersion"] == "gateway.networking.k8s.io/v1")
}

/// The gateway Service's `targetPort` for a Service port (a Gateway API
/// listener's `port` is the Service port: istio
/// `pilot/pkg/config/kube/gateway/conversion.go` resolves it to the pods'
/// port through the Service the Hostname address names).
fn target_port(t: &Tree, port: u64) -> Option<u16> {
    let svc = one(t, &gw_file("Service.yaml"))?;
    items(&svc["spec"]["ports"])
        .find(|p| p["port"] == port)
        .and_then(|p| port_of(&p["targetPort"]))
}

fn api_listeners(t: &Tree) -> Vec<(&String, &Value, &Value)> {
    let file = gw_file("Gateway.yaml");
    let Some((path, gateway)) = t
        .get_key_value(&file)
        .and_then(|(p, d)| Some((p, d.first()?)))
    else {
        return Vec::new();
    };
    items(&gateway["spec"]["listeners"])
        .map(|l| (path, gateway, l))
        .collect()
}

/// The pod port of the gateway's `http` or `https` listener.
pub fn gateway_port(t: &Tree, which: &str) -> Option<u16> {
    if gateway_api(t) {
        let (_, _, l) = api_listeners(t)
            .into_iter()
            .find(|(_, _, l)| l["name"] == which)?;
        return target_port(t, l["port"].as_u64()?);
    }
    let name = if which == "http" {
        "Gateway-https-redirect.yaml"
    } else {
        "Gateway.yaml"
    };
    let g = one(t, &gw_file(name))?;
    port_of(&g["spec"]["servers"][0]["port"]["number"])
}

/// The listener a connection to pod port `port` for `host` (its SNI on
/// HTTPS) reaches; `None`: no listener takes it (the TLS handshake fails).
pub fn listener_at(t: &Tree, port: u16, host: &str) -> Option<Listener> {
    if !gateway_api(t) {
        // Only a Gateway whose selector picks meshgen's gateway pods (the
        // labels of its main Gateway) opens a listener on them: a Gateway
        // of other pods (Kubeflow's `cluster-local-gateway`) does not.
        let pods = one(t, &gw_file("Gateway.yaml"))?["spec"]["selector"].clone();
        let on_pods = |d: &Value| {
            d["spec"]["selector"]
                .as_object()
                .is_some_and(|s| s.iter().all(|(k, v)| pods.get(k) == Some(v)))
        };
        let (file, gateway) = all_docs(t).find(|(_, d)| {
            d["kind"] == "Gateway"
                && d["apiVersion"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("networking.istio.io/"))
                && on_pods(d)
                && items(&d["spec"]["servers"]).any(|s| s["port"]["number"] == port)
        })?;
        let server = &gateway["spec"]["servers"][0];
        return Some(Listener {
            https: server["port"]["protocol"] == "HTTPS",
            credential: server["tls"]["credentialName"].as_str().map(String::from),
            object: Some(ObjectRef::of(file, gateway)),
            source: Source::Istio(gateway.clone()),
        });
    }
    // Istio gives each HTTPS listener its own filter chain, chosen by SNI;
    // an exact hostname wins over a wildcard, no hostname takes any.
    let rank = |l: &Value| match l["hostname"].as_str() {
        None => Some(0),
        Some(h) if h == host => Some(2),
        Some(h) => h
            .strip_prefix("*.")
            .is_some_and(|s| host.ends_with(&format!(".{s}")))
            .then_some(1),
    };
    let (file, gateway, l) = api_listeners(t)
        .into_iter()
        .filter(|(_, _, l)| l["port"].as_u64().and_then(|p| target_port(t, p)) == Some(port))
        .filter_map(|(f, g, l)| rank(l).map(|r| (r, f, g, l)))
        .max_by_key(|(r, _, _, _)| *r)
        .map(|(_, f, g, l)| (f, g, l))?;
    Some(Listener {
        https: l["protocol"] == "HTTPS",
        credential: l["tls"]["certificateRefs"][0]["name"]
            .as_str()
            .map(String::from),
        object: Some(ObjectRef::of(file, gateway)),
        source: Source::GatewayApi {
            gateway: gateway.clone(),
            listener: text(&l["name"]).to_string(),
        },
    })
}

/// The routes `listener` serves for `host`, in the order Envoy tries them.
pub fn routes_at(t: &Tree, listener: &Listener, host: &str) -> Vec<Route> {
    match &listener.source {
        Source::Istio(gateway) => listener_routes(t, gateway, host)
            .into_iter()
            .map(|(file, vs, r)| istio_route(t, file, vs, &r))
            .collect(),
        Source::GatewayApi { gateway, listener } => api_routes(t, gateway, listener, host),
    }
}

/// The gateway's own host (its ServiceEntry's, the HTTP listener's relay).
fn own_host(t: &Tree) -> Option<&Value> {
    one(t, &gw_file("ServiceEntry.yaml")).map(|se| &se["spec"]["hosts"][0])
}

fn istio_route(t: &Tree, file: &str, vs: &Value, r: &Value) -> Route {
    let dest = &r["route"][0]["destination"];
    let action = if let Some(redirect) = r.get("redirect") {
        Action::Redirect {
            scheme: text(&redirect["scheme"]).into(),
            port: port_of(&redirect["port"]).unwrap_or(0),
        }
    } else if own_host(t).is_some_and(|h| dest["host"] == *h) {
        Action::Relay(port_of(&dest["port"]["number"]).unwrap_or(0))
    } else if dest["host"].is_string() {
        Action::Upstream
    } else {
        Action::Unresolved("500: a route without a destination".into())
    };
    Route {
        // Kubeflow's routes have no name.
        name: text(&r["name"]).into(),
        destination: dest["host"].as_str().map(|h| {
            (
                h.to_string(),
                port_of(&dest["port"]["number"]).unwrap_or(80),
            )
        }),
        prefix: r["match"][0]["uri"]["prefix"].as_str().map(String::from),
        separated: false,
        action,
        remove: items(&r["headers"]["request"]["remove"])
            .map(|h| text(h).to_string())
            .collect(),
        hsts: hsts_value(r["headers"]["response"]["set"]["strict-transport-security"].as_str()),
        object: Some(ObjectRef::of(file, vs)),
    }
}

fn hsts_value(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.starts_with("max-age=") && v != "max-age=0")
}

/// A hostname (a Gateway API route's or listener's, an Istio server's
/// DNS part) admits `host`: the same name, or `*.` and a suffix.
pub fn hostname_admits(pattern: &str, host: &str) -> bool {
    pattern == host
        || pattern
            .strip_prefix("*.")
            .is_some_and(|s| host.ends_with(&format!(".{s}")))
}

/// The namespaces a listener's `allowedRoutes` admits routes from
/// (istio `conversion.go` `namespacesFromSelector`, 1.30.3 lines
/// 2479-2490: no `allowedRoutes`, or `from: Same`, is the Gateway's own
/// namespace; `All` is any). `Selector` is not modelled: no route is
/// admitted, and `coverage.rs` reports the listener.
fn route_namespace_allowed(listener: &Value, gw_ns: &str, route_ns: &str) -> bool {
    match listener["allowedRoutes"]["namespaces"]["from"].as_str() {
        None | Some("Same") => route_ns == gw_ns,
        Some("All") => true,
        Some(_) => false,
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
                && items(&d["spec"]["from"]).any(|f| {
                    f["group"] == "gateway.networking.k8s.io"
                        && f["kind"] == "HTTPRoute"
                        && f["namespace"] == from_ns
                })
                && items(&d["spec"]["to"]).any(|to| {
                    to["group"] == ""
                        && to["kind"] == "Service"
                        && to.get("name").is_none_or(|n| n == name)
                })
        })
}

fn api_routes(t: &Tree, gateway: &Value, listener_name: &str, host: &str) -> Vec<Route> {
    let gw_ns = text(&gateway["metadata"]["namespace"]);
    let gw_name = text(&gateway["metadata"]["name"]);
    let Some(listener) = items(&gateway["spec"]["listeners"]).find(|l| l["name"] == listener_name)
    else {
        return Vec::new();
    };
    let mut rules: Vec<Route> = Vec::new();
    for (file, d) in all_docs(t) {
        if d["kind"] != "HTTPRoute" {
            continue;
        }
        let route_ns = text(&d["metadata"]["namespace"]);
        let attached = items(&d["spec"]["parentRefs"]).any(|p| {
            p["name"] == gw_name
                && p["namespace"].as_str().unwrap_or(route_ns) == gw_ns
                && p["sectionName"].as_str().is_none_or(|s| s == listener_name)
        });
        let hosts_ok = match d["spec"]["hostnames"].as_array() {
            None => true,
            Some(h) if h.is_empty() => true,
            Some(h) => h.iter().any(|p| hostname_admits(text(p), host)),
        };
        if !attached || !hosts_ok || !route_namespace_allowed(listener, gw_ns, route_ns) {
            continue;
        }
        for r in items(&d["spec"]["rules"]) {
            rules.push(api_rule(t, file, d, route_ns, r));
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

fn api_rule(t: &Tree, file: &str, route: &Value, route_ns: &str, r: &Value) -> Route {
    let filters: Vec<&Value> = items(&r["filters"]).collect();
    let filter = |kind: &str| filters.iter().find(|f| f["type"] == kind).copied();
    let mut remove = Vec::new();
    if let Some(f) = filter("RequestHeaderModifier") {
        for h in items(&f["requestHeaderModifier"]["remove"]) {
            remove.push(text(h).to_ascii_lowercase());
        }
    }
    let hsts = filter("ResponseHeaderModifier").is_some_and(|f| {
        items(&f["responseHeaderModifier"]["set"]).any(|h| {
            text(&h["name"]).eq_ignore_ascii_case("strict-transport-security")
                && hsts_value(h["value"].as_str())
        })
    });
    let mut destination = None;
    let action = if let Some(f) = filter("RequestRedirect") {
        let rr = &f["requestRedirect"];
        Action::Redirect {
            scheme: text(&rr["scheme"]).into(),
            port: port_of(&rr["port"]).unwrap_or(0),
        }
    } else {
        let b = &r["backendRefs"][0];
        let group = b["group"].as_str().unwrap_or("");
        let kind = b["kind"].as_str().unwrap_or("Service");
        let name = text(&b["name"]);
        if group == "networking.istio.io" && kind == "Hostname" {
            if own_host(t).is_some_and(|h| *h == b["name"]) {
                Action::Relay(port_of(&b["port"]).unwrap_or(0))
            } else {
                Action::Unresolved(format!("500: no ServiceEntry for {name}"))
            }
        } else if b.is_null() {
            Action::Unresolved("500: a rule without a backend".into())
        } else {
            let ns = b["namespace"].as_str().unwrap_or(route_ns);
            destination = Some((
                format!("{name}.{ns}.svc.cluster.local"),
                port_of(&b["port"]).unwrap_or(80),
            ));
            if granted(t, route_ns, ns, name) {
                Action::Upstream
            } else {
                Action::Unresolved(format!("500: no ReferenceGrant for {ns}/{name}"))
            }
        }
    };
    Route {
        name: text(&r["name"]).into(),
        destination,
        prefix: r["matches"][0]["path"]["value"].as_str().map(String::from),
        separated: true,
        action,
        remove,
        hsts,
        object: Some(ObjectRef::of(file, route)),
    }
}

/// The HTTP routes a listener serves for `host`, as Istio builds them
/// (istio/istio master 86c9f01 `pilot/pkg/networking/core/gateway.go`
/// `buildGatewayHTTPRouteConfig`, lines 448-530): each bound
/// VirtualService's hosts are intersected with the server's hosts
/// (`pkg/config/host/names.go:83-99` `Intersection`: of two names where
/// one covers the other, the narrower), its routes are appended to the
/// virtual host of each name of that intersection, in order, and each
/// virtual host's catch-all routes (prefix `/` without header matches) are
/// moved last (`pilot/pkg/networking/core/route/route.go:1616-1644`
/// `SortVHostRoutes`). Envoy then picks the virtual host whose domain is
/// the most specific match for `host`. So Kubeflow's VirtualServices
/// (`hosts: ["*"]`) share the main host's virtual host with meshgen's
/// when the server names the host, and are shadowed by it when the server
/// is `*` (`tls.matchSNI: false`).
/// A VirtualService names the Gateway as `ns/name`, by its short name from
/// the Gateway's namespace, or by the legacy `name.ns[.…]`
/// (`pilot/pkg/model/config.go` 233-262).
/// Each route comes with its VirtualService and that one's file.
pub fn listener_routes<'a>(
    t: &'a Tree,
    gateway: &Value,
    host: &str,
) -> Vec<(&'a str, &'a Value, Value)> {
    let gw_ns = text(&gateway["metadata"]["namespace"]);
    let gw_name = text(&gateway["metadata"]["name"]);
    let server_hosts: Vec<&str> = items(&gateway["spec"]["servers"][0]["hosts"])
        .map(text)
        .collect();
    let legacy = format!("{gw_name}.{gw_ns}");
    // `a` is covered by `b` (istio `host.Name.SubsetOf`).
    let covered = |a: &str, b: &str| {
        b == "*"
            || a == b
            || b.strip_prefix('*')
                .is_some_and(|s| a.ends_with(s) && a.len() > s.len())
    };
    type Routes<'a> = Vec<(&'a str, &'a Value, Value)>;
    // (domain, routes) in document order.
    let mut vhosts: Vec<(String, Routes)> = Vec::new();
    for (file, d) in all_docs(t) {
        if d["kind"] != "VirtualService" {
            continue;
        }
        let vs_ns = text(&d["metadata"]["namespace"]);
        let bound = items(&d["spec"]["gateways"]).any(|g| {
            let g = text(g);
            g == format!("{gw_ns}/{gw_name}")
                || (g == gw_name && vs_ns == gw_ns)
                || g == legacy
                || g.starts_with(&format!("{legacy}."))
        });
        if !bound {
            continue;
        }
        let routes: Routes = items(&d["spec"]["http"])
            .map(|r| (file.as_str(), d, r.clone()))
            .collect();
        for s in &server_hosts {
            let (ns, dns) = s.split_once('/').unwrap_or(("*", s));
            let ns_ok = match ns {
                "*" => true,
                "." => vs_ns == gw_ns,
                n => vs_ns == n,
            };
            if !ns_ok {
                continue;
            }
            for h in items(&d["spec"]["hosts"]) {
                let h = text(h);
                let domain = if covered(h, dns) {
                    h
                } else if covered(dns, h) {
                    dns
                } else {
                    continue;
                };
                match vhosts.iter_mut().find(|(d, _)| d == domain) {
                    Some((_, r)) => r.extend(routes.iter().cloned()),
                    None => vhosts.push((domain.to_string(), routes.clone())),
                }
            }
        }
    }
    // Envoy's choice of virtual host: the exact name, then the longest
    // wildcard suffix, then `*`.
    let rank = |domain: &str| -> Option<usize> {
        if domain == host {
            Some(usize::MAX)
        } else if domain == "*" {
            Some(0)
        } else {
            domain
                .strip_prefix('*')
                .filter(|s| host.ends_with(s) && host.len() > s.len())
                .map(str::len)
        }
    };
    let Some((_, routes)) = vhosts
        .into_iter()
        .filter_map(|(d, r)| rank(&d).map(|k| (k, r)))
        .max_by_key(|(k, _)| *k)
    else {
        return Vec::new();
    };
    let (mut first, last): (Routes, Routes) =
        routes.into_iter().partition(|(_, _, r)| !catch_all(r));
    first.extend(last);
    first
}

/// A route every path matches (prefix `/` without header matches).
fn catch_all(r: &Value) -> bool {
    match r["match"].as_array() {
        None => true,
        Some(m) if m.is_empty() => true,
        Some(m) => m.iter().all(|m| {
            m.get("headers").is_none()
                && m.get("queryParams").is_none()
                && (m["uri"]["prefix"] == "/" || m["uri"]["regex"] == ".*")
        }),
    }
}

/// The gateway pods speak PROXY protocol on every listener: an EnvoyFilter
/// adding the listener filter (`api: istio`), or `gatewayTopology.proxyProtocol`
/// in the pods' `proxy.istio.io/config` annotation (istio 1.30.3
/// `pilot/pkg/networking/core/gateway.go:168-169` adds the PROXY listener
/// filter on every gateway listener when the proxy's topology has it).
pub fn proxy_protocol(t: &Tree) -> bool {
    let envoy_filter =
        all_docs(t).any(|(_, d)| d["kind"] == "EnvoyFilter" && adds_proxy_protocol(d));
    let annotation = one(t, &gw_file("Deployment.yaml"))
        .and_then(|d| {
            d["spec"]["template"]["metadata"]["annotations"]["proxy.istio.io/config"].as_str()
        })
        .is_some_and(|c| {
            // The annotation is YAML (JSON is YAML).
            crate::yaml::load_json_documents(c)
                .ok()
                .and_then(|d| d.into_iter().next())
                .is_some_and(|c| c["gatewayTopology"].get("proxyProtocol").is_some())
        });
    envoy_filter || annotation
}

/// An EnvoyFilter that adds the PROXY protocol listener filter.
pub fn adds_proxy_protocol(d: &Value) -> bool {
    items(&d["spec"]["configPatches"]).any(|p| {
        items(&p["patch"]["value"]["listener_filters"])
            .any(|f| f["name"] == "envoy.filters.listener.proxy_protocol")
    })
}

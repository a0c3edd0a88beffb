//! The egress gateway (`deploykf_dependencies.istio.egress.gateway`, issue
//! 32 point 5): one Envoy through which every profile's allowed hosts
//! leave the cluster, so that the gateway, not each pod, is what connects
//! outside, and a NetworkPolicy can keep profile pods inside the cluster.
//!
//! Istio's egress gateway task, the variant with Istio mutual TLS between
//! the sidecar and the gateway (istio.io "Egress Gateways", "Egress
//! gateway for HTTPS traffic"; "Egress Gateways with TLS Origination",
//! the `ISTIO_MUTUAL` server), per allowed host:
//! - the profile's own ServiceEntry (`ProfileModel::egress_hosts`,
//!   `exportTo: ["."]`) puts the host in its sidecars' registry, and one in
//!   this namespace in the gateway's;
//! - a VirtualService bound to `mesh` sends the pod's TLS for the host
//!   (matched by SNI) to the gateway Service's subset for the host, whose
//!   DestinationRule wraps it in Istio mutual TLS with the host as SNI;
//! - the Gateway terminates that mutual TLS on one server per host (its
//!   `hosts` are the filter chain's SNI match, istio/istio 1.30.3
//!   `pilot/pkg/networking/core/gateway.go:831`), and the VirtualService's
//!   `tcp` route bound to the gateway forwards the pod's own TLS to the
//!   host. One server and one VirtualService per host: a terminated TLS
//!   server takes the `tcp` route of the first VirtualService whose hosts
//!   meet its own (`gateway.go:849-886`,
//!   `buildGatewayNetworkFiltersFromTCPRoutes`), so a server naming two
//!   hosts would send both to one; server port names must be unique
//!   (`pkg/config/validation/validation.go:445`). The gateway's
//!   VirtualServices stay in this namespace: a gateway sees the ones
//!   exported to its namespace (`pilot/pkg/model/push_context.go:1113`).
//! - the AuthorizationPolicy on the gateway admits a profile's namespace
//!   (the peer identity of that mutual TLS) only for its own hosts, by
//!   `connection.sni` (`pilot/pkg/security/authz/model/model.go:49`), which
//!   the sidecar set from the DestinationRule: another profile is refused
//!   even if its sidecar routed the host here.
//!
//! In ambient (`dataplaneMode: ambient`) the gateway is a waypoint, as
//! Istio's ambient egress task does it (istio.io "Egress gateways",
//! `content/en/docs/ambient/usage/egress-gateway/index.md`): ztunnel
//! enforces neither REGISTRY_ONLY nor `exportTo` (istio/istio#54281,
//! #55163), so
//! - a waypoint Gateway (class `istio-waypoint`, for Services) runs in this
//!   namespace, and one ServiceEntry per allowed host (TLS on 443,
//!   `resolution: DNS`) is bound to it by its `istio.io/use-waypoint` label
//!   (istio/istio 1.30.3 `pilot/pkg/serviceregistry/ambient/waypoints.go`
//!   `fetchWaypointForTarget`: the object's own label, then its
//!   namespace's). istiod gives each such ServiceEntry an address
//!   (`PILOT_ENABLE_IP_AUTOALLOCATE`, default true,
//!   `pilot/pkg/features/pilot.go:179-183`, 240.240.0.0/16) and ztunnel's
//!   DNS proxy answers the host with it (istio-cni `ambient.dnsCapture`,
//!   default true, `manifests/charts/istio-cni/values.yaml:70`; the same in
//!   1.28 and 1.29), so a profile pod's connection to the host is ztunnel's
//!   to the waypoint (HBONE, 15008), which connects to the host itself;
//! - one AuthorizationPolicy per host, attached to its ServiceEntry
//!   (`targetRefs` kind ServiceEntry: enforced by the waypoint for traffic
//!   to that ServiceEntry only, `pilot/pkg/model/policyattachment.go:165-173`),
//!   admits the namespaces of the profiles that allow the host (the
//!   identity the HBONE connection carries);
//! - each profile's NetworkPolicy `allow-egress` (below) refuses every
//!   address outside the cluster: a host without a ServiceEntry is passed
//!   through by ztunnel from the pod's own network namespace, and refused.

use super::netpol::{self, NetworkPolicyModel};
use crate::component::{
    no_extra_manifests, no_overrides, Delivery, Descriptor, Input, Overrides, Packaging, Part,
};
use crate::config::{Config, EgressMode, StringMap};
use crate::facts::string_map;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub static COMPONENT: Descriptor = Descriptor {
    more: crate::component::single,
    id: "istio-egress-gateway",
    summary: "the egress gateway: each profile's allowed hosts leave the cluster through it, each profile admitted to its own",
    key: "egress_gateway",
    section: "deploykf_dependencies.istio",
    templates: "manifests/deploykf-dependencies/istio-egress-gateway",
    // With the ingress gateway: after Istio's chart and its CRDs.
    wave: 0,
    packaging: Packaging::Kustomize,
    delivery: Delivery::PLAIN,
    overrides: Overrides::Absent,
    fan_out: &[],
    enabled: |c| c.deploykf_dependencies.istio.egress.gateway.enabled,
    namespace: |c| Some(c.deploykf_dependencies.istio.egress.gateway.namespace.clone()),
    extra_manifests: no_extra_manifests,
    values_overrides: no_overrides,
    patches: crate::component::no_patches,
    rules: crate::rules::egress_gateway::check,
    derive,
    shards: crate::component::no_shards,
    contribute: crate::component::contributes_nothing,
};

/// The name of the gateway's Deployment, Service and ServiceAccount, as
/// Istio's own egress gateway is named.
pub const NAME: &str = "istio-egressgateway";

/// The port the Service offers the sidecars, and the pods' port behind it
/// (as Istio's gateway chart maps 443 for its egress gateway: unprivileged,
/// so no sysctl is needed). Istio binds a Gateway server's port to the
/// selected Service's `targetPort` (istio/istio 1.30.3
/// `pilot/pkg/model/gateway.go:476-499`, `resolvePorts`).
pub const PORT: u16 = 443;
pub const TARGET_PORT: u16 = 8443;

/// The ambient egress waypoint's name: its Gateway, its pods' ServiceAccount
/// (the waypoint class keeps the Gateway's name, istio/istio 1.30.3
/// `pilot/pkg/config/kube/gatewaycommon/classinfo.go:130-134`) and the
/// `gateway.networking.k8s.io/gateway-name` label of its pods
/// (`charts/istio-control/istio-discovery/files/waypoint.yaml:59-72`).
pub const WAYPOINT: &str = "egress-waypoint";

/// The port a waypoint takes HBONE on, from ztunnel.
pub const HBONE_PORT: u16 = 15008;

/// The gateway pods' labels that the Service, the Gateway and the
/// policies select (Istio's samples select `istio: egressgateway`).
pub fn selector_labels() -> StringMap {
    string_map(&[("app", NAME), ("istio", "egressgateway")])
}

#[derive(Debug, Clone, Serialize)]
pub struct EgressGatewayModel {
    pub name: &'static str,
    pub selector_labels: StringMap,
    pub pod_labels: StringMap,
    pub pod_annotations: StringMap,
    /// The namespace's labels: injection and Pod Security "restricted".
    pub namespace_labels: StringMap,
    pub port: u16,
    pub target_port: u16,
    /// Every profile's allowed hosts, sorted, once each.
    pub hosts: Vec<String>,
    /// The Gateway's `spec`.
    pub gateway: Value,
    /// The DestinationRule's `spec` (one subset per host).
    pub destination_rule: Value,
    /// One VirtualService per host.
    pub routes: Vec<Route>,
    /// The AuthorizationPolicy's `rules`: each profile's namespace for its
    /// own hosts (profiles with the same hosts in one rule).
    pub authorization_rules: Vec<Value>,
    pub network_policies: Vec<NetworkPolicyModel>,
    /// `dataplaneMode: ambient`: the gateway is the waypoint [`WAYPOINT`].
    pub ambient: bool,
    pub waypoint: &'static str,
    /// Its Gateway's labels (as the profiles' waypoints).
    pub waypoint_labels: StringMap,
    /// Ambient: one ServiceEntry and one AuthorizationPolicy per host.
    pub host_entries: Vec<HostEntry>,
}

/// An allowed host in ambient: its ServiceEntry (bound to the waypoint)
/// and the policy attached to it.
#[derive(Debug, Clone, Serialize)]
pub struct HostEntry {
    /// The name of both objects ([`host_id`]).
    pub name: String,
    pub host: String,
    /// The profiles' namespaces that allow the host, sorted.
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub name: String,
    pub spec: Value,
}

/// Each rendered profile's namespace and allowed hosts (its own, else the
/// defaults'), under `registry-only`.
pub fn profile_hosts(config: &Config) -> Vec<(String, Vec<String>)> {
    let pg = &config.deploykf_core.deploykf_profiles_generator;
    if !pg.enabled || config.deploykf_dependencies.istio.egress.mode != EgressMode::RegistryOnly {
        return Vec::new();
    }
    let defaults = &pg.profile_defaults;
    (pg.profiles.iter())
        .map(|p| {
            let hosts = (p.egress.as_ref().unwrap_or(&defaults.egress))
                .allowed_hosts
                .clone();
            (format!("{}{}", defaults.profile_name_prefix, p.name), hosts)
        })
        .filter(|(_, hosts)| !hosts.is_empty())
        .collect()
}

/// A short stable name for a host where a DNS-1123 label is needed (a
/// subset, a port name): the host's own name may hold dots and run to 253.
fn host_id(host: &str) -> String {
    let digest = Sha256::digest(host.as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("host-{hex}")
}

/// The gateway Service's name in the registry.
pub fn service_host(config: &Config) -> String {
    let ns = &config.deploykf_dependencies.istio.egress.gateway.namespace;
    format!("{NAME}.{ns}.svc.cluster.local")
}

fn derive(input: &Input) -> Part {
    Part::of(&model(input.config, input.facts))
}

fn model(config: &Config, facts: &crate::facts::Facts) -> EgressGatewayModel {
    let istio = &config.deploykf_dependencies.istio;
    let eg = &istio.egress.gateway;
    let profiles = profile_hosts(config);
    let hosts: Vec<String> = {
        let mut all: Vec<String> = profiles.iter().flat_map(|(_, h)| h.clone()).collect();
        all.sort();
        all.dedup();
        all
    };
    let ambient = facts.istio.ambient;
    if ambient {
        return ambient_model(config, facts, &profiles, hosts);
    }
    let service = service_host(config);
    let gateway_ref = format!("{}/{NAME}", eg.namespace);
    let gateway = json!({
        "selector": selector_labels(),
        "servers": (hosts.iter()).map(|h| json!({
            "port": {"number": PORT, "name": format!("tls-{}", host_id(h)), "protocol": "TLS"},
            "hosts": [h],
            "tls": {"mode": "ISTIO_MUTUAL"},
        })).collect::<Vec<_>>(),
    });
    let destination_rule = json!({
        "host": service,
        "subsets": (hosts.iter()).map(|h| json!({
            "name": host_id(h),
            "trafficPolicy": {"portLevelSettings": [{
                "port": {"number": PORT},
                "tls": {"mode": "ISTIO_MUTUAL", "sni": h},
            }]},
        })).collect::<Vec<_>>(),
    });
    let routes = (hosts.iter())
        .map(|h| Route {
            name: h.clone(),
            spec: json!({
                "hosts": [h],
                "gateways": ["mesh", gateway_ref],
                "tls": [{
                    "match": [{"gateways": ["mesh"], "port": PORT, "sniHosts": [h]}],
                    "route": [{"destination": {
                        "host": service, "subset": host_id(h), "port": {"number": PORT},
                    }}],
                }],
                "tcp": [{
                    "match": [{"gateways": [gateway_ref], "port": PORT}],
                    "route": [{"destination": {"host": h, "port": {"number": PORT}}}],
                }],
            }),
        })
        .collect();
    // Profiles with the same hosts share a rule.
    let mut by_hosts: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    for (ns, h) in &profiles {
        let mut h = h.clone();
        h.sort();
        by_hosts.entry(h).or_default().push(ns.clone());
    }
    let authorization_rules = (by_hosts.into_iter())
        .map(|(hosts, namespaces)| {
            json!({
                "from": [{"source": {"namespaces": namespaces}}],
                "to": [{"operation": {"ports": [TARGET_PORT.to_string()]}}],
                "when": [{"key": "connection.sni", "values": hosts}],
            })
        })
        .collect();
    let mut pod_labels = string_map(&[("sidecar.istio.io/inject", "true")]);
    pod_labels.extend(selector_labels());
    let pod_annotations = string_map(&[
        ("inject.istio.io/templates", "gateway"),
        ("prometheus.io/path", "/stats/prometheus"),
        ("prometheus.io/port", "15020"),
        ("prometheus.io/scrape", "true"),
    ]);
    let mut namespace_labels = facts.istio.injection_labels.clone();
    namespace_labels.extend(crate::facts::pod_security_labels(Some(
        crate::config::PodSecurityLevel::Restricted,
    )));
    let network_policies =
        gateway_network_policies(config, &profiles, &selector_labels(), TARGET_PORT);
    EgressGatewayModel {
        name: NAME,
        selector_labels: selector_labels(),
        pod_labels,
        pod_annotations,
        namespace_labels,
        port: PORT,
        target_port: TARGET_PORT,
        hosts,
        gateway,
        destination_rule,
        routes,
        authorization_rules,
        network_policies,
        ambient,
        waypoint: WAYPOINT,
        waypoint_labels: StringMap::new(),
        host_entries: Vec::new(),
    }
}

/// The NetworkPolicies of the gateway's namespace: nothing is admitted but
/// the profiles with allowed hosts on `port` and the health and metrics
/// ports from anywhere (as Istio's gateway chart does), to the pods
/// `selector` matches.
fn gateway_network_policies(
    config: &Config,
    profiles: &[(String, Vec<String>)],
    selector: &StringMap,
    port: u16,
) -> Vec<NetworkPolicyModel> {
    if !config.deploykf_dependencies.istio.network_policy.enabled {
        return Vec::new();
    }
    let sources: Vec<&String> = profiles.iter().map(|(ns, _)| ns).collect();
    let mut rules = vec![json!({
        "ports": netpol::tcp_ports(&netpol::GATEWAY_STATUS_PORTS, false),
    })];
    if !sources.is_empty() {
        rules.insert(
            0,
            json!({
                "from": [netpol::namespaces(&sources)],
                "ports": netpol::tcp_ports(&[port], false),
            }),
        );
    }
    vec![
        netpol::default_deny_ingress(),
        NetworkPolicyModel {
            name: "allow-ingress".into(),
            spec: json!({
                "podSelector": {"matchLabels": selector},
                "policyTypes": ["Ingress"],
                "ingress": rules,
            }),
        },
    ]
}

/// The gateway in ambient: the waypoint [`WAYPOINT`], each host's
/// ServiceEntry bound to it and the policy attached to that ServiceEntry
/// (the module's documentation says why and cites Istio).
fn ambient_model(
    config: &Config,
    facts: &crate::facts::Facts,
    profiles: &[(String, Vec<String>)],
    hosts: Vec<String>,
) -> EgressGatewayModel {
    let host_entries = (hosts.iter())
        .map(|h| {
            let mut namespaces: Vec<String> = (profiles.iter())
                .filter(|(_, allowed)| allowed.contains(h))
                .map(|(ns, _)| ns.clone())
                .collect();
            namespaces.sort();
            HostEntry {
                name: host_id(h),
                host: h.clone(),
                namespaces,
            }
        })
        .collect();
    // The waypoint's pods, by the label istiod's template gives them.
    let selector = string_map(&[("gateway.networking.k8s.io/gateway-name", WAYPOINT)]);
    let mut waypoint_labels = string_map(&[("istio.io/waypoint-for", "service")]);
    if !facts.istio.revision.is_empty() {
        waypoint_labels.insert("istio.io/rev".into(), facts.istio.revision.clone());
    }
    // In the mesh by ztunnel's capture, not by injection.
    let mut namespace_labels = facts.istio.mesh_labels.clone();
    namespace_labels.extend(crate::facts::pod_security_labels(Some(
        crate::config::PodSecurityLevel::Restricted,
    )));
    EgressGatewayModel {
        name: NAME,
        network_policies: gateway_network_policies(config, profiles, &selector, HBONE_PORT),
        selector_labels: selector,
        pod_labels: StringMap::new(),
        pod_annotations: StringMap::new(),
        namespace_labels,
        port: PORT,
        target_port: HBONE_PORT,
        hosts,
        gateway: Value::Null,
        destination_rule: Value::Null,
        routes: Vec::new(),
        authorization_rules: Vec::new(),
        ambient: true,
        waypoint: WAYPOINT,
        waypoint_labels,
        host_entries,
    }
}

/// The NetworkPolicy of each profile with the egress gateway on (and the
/// profiles' `networkPolicy.enabled`): its pods reach only pods of the
/// cluster (kube-dns, istiod, the egress gateway, Kubeflow's services) and
/// the API server (`gateway.apiServerCIDRs`), never an address outside:
/// its sidecar's allowed hosts go through the egress gateway, so a pod
/// that skips its sidecar (none injected, or traffic excluded from
/// capture) is refused. A pod selector (or namespace selector) matches
/// pods only, never the API server, which is not a pod on most clusters
/// (kubernetes/website `network-policies.md`, "Targeting a range of
/// ports", and the `ipBlock` peer).
pub fn profile_egress_policy(config: &Config) -> Option<NetworkPolicyModel> {
    if !confines_profiles(config) {
        return None;
    }
    let istio = &config.deploykf_dependencies.istio;
    let mut rules = vec![json!({"to": [{"namespaceSelector": {}}]})];
    let cidrs = &istio.egress.gateway.api_server_cidrs;
    if !cidrs.is_empty() {
        rules.push(json!({"to": (cidrs.iter())
            .map(|c| json!({"ipBlock": {"cidr": c}}))
            .collect::<Vec<_>>()}));
    }
    Some(NetworkPolicyModel {
        name: "allow-egress".into(),
        spec: json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": rules}),
    })
}

/// Whether each profile renders [`profile_egress_policy`].
pub fn confines_profiles(config: &Config) -> bool {
    let istio = &config.deploykf_dependencies.istio;
    istio.egress.gateway.enabled
        && istio.egress.mode == EgressMode::RegistryOnly
        && config
            .deploykf_core
            .deploykf_profiles_generator
            .network_policy
            .enabled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_are_labels() {
        let id = host_id("s3.eu-west-1.amazonaws.com");
        assert_eq!(id.len(), 15);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert_ne!(id, host_id("pypi.org"));
    }
}

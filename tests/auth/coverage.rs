//! What the request model does not model is reported, never ignored
//! (`meshgen::access::coverage`).

use super::*;
use meshgen::access::coverage::unmodelled;

/// meshgen's own trees, in every mode combination, hold nothing the model
/// does not evaluate.
#[test]
pub(crate) fn the_model_reads_everything_meshgen_renders_that_affects_traffic() {
    for name in [
        "istio-sidecar",
        "gateway-api-sidecar",
        "istio-ambient",
        "gateway-api-ambient",
        "kubeflow",
    ] {
        let found = unmodelled(&case(name));
        assert!(found.is_empty(), "{name}: {found:#?}");
    }
}

/// The egress objects are all evaluated (`access::egress`): the egress
/// cases report only the API server's `ipBlock`. Before `egress.rs` read
/// them, the egress gateway's VirtualServices' tls/tcp routes, the
/// DestinationRule's subsets, the Gateway's servers and the
/// `connection.sni` rules were reported; before `explain` judged a pod's
/// connection outside the cluster, so were the profiles' ServiceEntries
/// and the auth namespace's Sidecar (its outbound policy alone).
#[test]
pub(crate) fn the_egress_gateway_objects_are_all_modelled() {
    for name in ["egress-registry-only", "egress-gateway", "egress-ambient"] {
        let found: Vec<String> = unmodelled(&case(name))
            .iter()
            .map(|u| format!("{}: {}", u.object, u.what))
            .collect();
        let other: Vec<&String> = (found.iter())
            .filter(|f| !(f.starts_with("NetworkPolicy/team-") && f.contains("ipBlock peers")))
            .collect();
        assert!(other.is_empty(), "{name}: {other:#?}");
    }
}

/// Objects and fields that affect traffic and that the model does not
/// evaluate are each reported, naming the object and its file.
#[test]
pub(crate) fn what_the_model_does_not_evaluate_is_reported() {
    let mut t = case("istio-sidecar");
    let objects = vec![
        json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
            "metadata": {"name": "lua", "namespace": "team-1"},
            "spec": {"configPatches": [{"applyTo": "HTTP_FILTER"}]}}),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": {"name": "default", "namespace": "team-1"},
            "spec": {"egress": [{"hosts": ["./*"]}]}}),
        // Only its outbound policy: what the egress model reads.
        json!({"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
            "metadata": {"name": "open", "namespace": "team-1"},
            "spec": {"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}}),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": "pinned", "namespace": "team-1"},
            "spec": {"hosts": ["db.example.net"], "location": "MESH_INTERNAL", "resolution": "STATIC",
                "ports": [{"number": 5432, "name": "pg", "protocol": "TCP"}],
                "endpoints": [{"address": "10.1.2.3"}]}}),
        // The hosts and ports of an external one: what the egress model reads.
        json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": "pypi", "namespace": "team-1"},
            "spec": {"hosts": ["pypi.org"], "location": "MESH_EXTERNAL", "resolution": "DNS",
                "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}], "exportTo": ["."]}}),
        json!({"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
            "metadata": {"name": "w", "namespace": "team-1"}, "spec": {}}),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "dr", "namespace": "team-1"},
            "spec": {"host": "x.team-1.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}}),
        json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "ext", "namespace": "team-1"},
            "spec": {"action": "CUSTOM", "provider": {"name": "opa"}, "rules": [{}]}}),
        json!({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "ip", "namespace": "team-1"},
            "spec": {"rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}],
                "when": [{"key": "request.regex.headers[x]", "values": ["y"]}]}]}}),
    ];
    t.insert("extra/objects.yaml".into(), objects);
    let found: Vec<String> = unmodelled(&t)
        .iter()
        .map(|u| format!("{}: {}", u.object, u.what))
        .collect();
    assert_eq!(
        found,
        [
            "EnvoyFilter/team-1/lua (extra/objects.yaml): an EnvoyFilter patches the proxies' configuration",
            "Sidecar/team-1/default (extra/objects.yaml): a Sidecar changes what its proxies send and accept: only its workloadSelector and outboundTrafficPolicy mode are modelled",
            "ServiceEntry/team-1/pinned (extra/objects.yaml): a ServiceEntry adds hosts to the mesh: only the hosts, ports and exportTo of a MESH_EXTERNAL one (DNS or NONE) are modelled, not its endpoints, location MESH_INTERNAL, resolution STATIC",
            "WasmPlugin/team-1/w (extra/objects.yaml): a WasmPlugin runs code in the proxies",
            "DestinationRule/team-1/dr (extra/objects.yaml): its tls (the client side of a connection, other than ISTIO_MUTUAL) is not modelled",
            "AuthorizationPolicy/team-1/ext (extra/objects.yaml): a CUSTOM policy (provider `opa`) is not evaluated: its ext-authz server decides",
            "AuthorizationPolicy/team-1/ip (extra/objects.yaml): rules[0]: ipBlocks, when request.regex.headers[x] not modelled (never matches)",
        ],
    );
}

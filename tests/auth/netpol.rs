//! The NetworkPolicy layer of the request model (issue 28 point 9): the
//! rendered NetworkPolicies, evaluated by `meshgen::access::netpol`
//! (Kubernetes semantics cited there), under the Istio policies the
//! destination replay (`sidecar.rs`) already checks. A connection is
//! admitted only when both layers admit it.

use super::*;
use meshgen::access::netpol::{connection_allowed, Peer, PodRef};
use meshgen::access::tree::string_map_of;

/// The pod of a Deployment in the tree: its namespace and template labels.
fn pod_of(t: &Tree, ns: &str, deployment: &str) -> PodRef {
    let d = all_docs(t)
        .map(|(_, d)| d)
        .find(|d| {
            d["kind"] == "Deployment"
                && d["metadata"]["namespace"] == ns
                && d["metadata"]["name"] == deployment
        })
        .unwrap_or_else(|| panic!("no Deployment {ns}/{deployment}"));
    PodRef {
        namespace: ns.into(),
        labels: string_map_of(&d["spec"]["template"]["metadata"]["labels"]),
    }
}

/// A Kubeflow notebook's pod (the notebook controller's labels).
fn notebook(ns: &str) -> PodRef {
    PodRef::new(ns, &[("notebook-name", "nb"), ("statefulset", "nb")])
}

const GW_NS: &str = "deploykf-istio-gateway";
const AUTH_NS: &str = "deploykf-auth";

/// What each replay expects: (what, admitted by the NetworkPolicies).
fn netpol_violations(t: &Tree) -> Vec<String> {
    let gw_pod = pod_of(t, GW_NS, "deploykf-gateway");
    let gateway = Peer::Pod(gw_pod.clone());
    let research = notebook("kf-research");
    let analytics = Peer::Pod(notebook("kf-analytics"));
    let client = Peer::External("203.0.113.7".parse().unwrap());
    let dex = pod_of(t, AUTH_NS, "dex");
    let oauth2_proxy = pod_of(t, AUTH_NS, "oauth2-proxy");
    let kubeflow = |ns: &str, app: &str| Peer::Pod(PodRef::new(ns, &[("app", app)]));
    // (what, from, to, port, admitted)
    let cases: [(&str, Peer, &PodRef, u16, bool); 14] = [
        (
            "gateway -> a profile's notebook",
            gateway.clone(),
            &research,
            8888,
            true,
        ),
        (
            "a pod of kf-analytics -> kf-research",
            analytics.clone(),
            &research,
            8888,
            false,
        ),
        (
            "a pod of kf-research -> kf-research",
            Peer::Pod(notebook("kf-research")),
            &research,
            8888,
            true,
        ),
        (
            "the kubelet -> a profile's notebook",
            Peer::Node,
            &research,
            8888,
            true,
        ),
        (
            "Pipelines UI -> a profile",
            kubeflow("kubeflow", "ml-pipeline-ui"),
            &research,
            3000,
            true,
        ),
        (
            "another Kubeflow pod -> a profile",
            kubeflow("kubeflow", "katib-ui"),
            &research,
            3000,
            false,
        ),
        (
            "Knative's activator -> a profile",
            kubeflow("knative-serving", "activator"),
            &research,
            8012,
            true,
        ),
        (
            "a client -> the gateway's HTTPS port",
            client.clone(),
            &gw_pod,
            443,
            true,
        ),
        (
            "a client -> the gateway's Envoy admin port",
            client.clone(),
            &gw_pod,
            15000,
            false,
        ),
        ("gateway -> dex", gateway.clone(), &dex, 5556, true),
        (
            "oauth2-proxy -> dex",
            Peer::Pod(oauth2_proxy.clone()),
            &dex,
            5556,
            true,
        ),
        ("a profile's pod -> dex", analytics, &dex, 5556, false),
        (
            "gateway -> oauth2-proxy",
            gateway,
            &oauth2_proxy,
            4180,
            true,
        ),
        (
            "a client -> oauth2-proxy",
            client,
            &oauth2_proxy,
            4180,
            false,
        ),
    ];
    cases
        .into_iter()
        .filter(|(_, from, to, port, want)| connection_allowed(t, from, to, *port) != *want)
        .map(|(what, _, _, _, want)| format!("{what}: admitted {}, expected {want}", !want))
        .collect()
}

/// Issue 28 point 9: on today's main (no NetworkPolicy) every "expected
/// false" above is admitted.
#[test]
fn network_policies_admit_only_what_the_platform_needs() {
    let t = apps_and_teams();
    let bad = netpol_violations(&t);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Both layers: the gateway with a member's identity reaches the profile
/// (Istio admits it, and so do the NetworkPolicies); a pod of another
/// profile is refused by the NetworkPolicies even where Istio would not
/// see it (a pod without a sidecar, whose traffic no Envoy checks).
#[test]
fn gateway_to_app_passes_both_layers_and_another_profile_neither() {
    let t = apps_and_teams();
    let gw = Some("cluster.local/ns/deploykf-istio-gateway/sa/deploykf-gateway");
    let research = pod("kf-research", &[("notebook-name", "nb")], 8888);
    let istio = at_sidecar(
        &t,
        &inbound(&research, gw, "GET", "/", Some("alice@example.com")),
    );
    let l4 = connection_allowed(
        &t,
        &Peer::Pod(pod_of(&t, GW_NS, "deploykf-gateway")),
        &notebook("kf-research"),
        8888,
    );
    assert!(istio && l4, "istio {istio}, NetworkPolicies {l4}");
    assert!(!connection_allowed(
        &t,
        &Peer::Pod(notebook("kf-analytics")),
        &notebook("kf-research"),
        8888
    ));
}

/// Ambient: ztunnel tunnels to 15008 and the kubelet's probes come from
/// istio-cni's address; the waypoint of a profile with identity-provider
/// groups fetches dex's keys, a plain pod of it does not reach dex.
#[test]
fn ambient_network_policies_admit_hbone_and_rewritten_probes() {
    let t = case("istio-ambient");
    let research = notebook("research");
    let probe = Peer::External("169.254.7.127".parse().unwrap());
    assert!(connection_allowed(&t, &probe, &research, 8888));
    let dex = pod_of(&t, AUTH_NS, "dex");
    assert!(connection_allowed(&t, &probe, &dex, 5558));
    let gateway = Peer::Pod(pod_of(&t, GW_NS, "deploykf-gateway"));
    assert!(connection_allowed(&t, &gateway, &dex, 15008));
    let waypoint = PodRef::new(
        "research",
        &[("gateway.networking.k8s.io/gateway-name", "waypoint")],
    );
    assert!(connection_allowed(&t, &Peer::Pod(waypoint), &dex, 15008));
    assert!(!connection_allowed(
        &t,
        &Peer::Pod(notebook("research")),
        &dex,
        15008
    ));
}

/// The replay notices each NetworkPolicy it relies on: without the profile
/// namespace's, another profile's pod gets in; without the auth
/// namespace's, a profile's pod reaches dex.
#[test]
fn the_netpol_replay_notices_a_missing_policy() {
    let base = apps_and_teams();
    for ns in ["kf-research", AUTH_NS, GW_NS] {
        let mut t = base.clone();
        for docs in t.values_mut() {
            docs.retain(|d| !(d["kind"] == "NetworkPolicy" && d["metadata"]["namespace"] == ns));
        }
        assert!(
            !netpol_violations(&t).is_empty(),
            "without the NetworkPolicies of {ns} the replay still passes"
        );
    }
}

/// Each section's `networkPolicy.enabled: false` (your own CNI policy)
/// leaves its NetworkPolicies out, and only its own.
#[test]
fn each_section_switches_its_network_policies_off() {
    let count = |t: &Tree, ns: &str| {
        meshgen::access::netpol::network_policies(t)
            .filter(|d| d["metadata"]["namespace"] == ns)
            .count()
    };
    let sections = [
        ("deploykf_core.deploykf_istio_gateway", GW_NS),
        ("deploykf_core.deploykf_auth", AUTH_NS),
        ("deploykf_core.deploykf_profiles_generator", "team-1"),
    ];
    let all = render_files(vec![], &[]);
    for (section, ns) in sections {
        assert!(count(&all, ns) > 0, "{ns}");
        let set = format!("{section}.networkPolicy.enabled=false");
        let t = render_files(vec![], &[&set]);
        assert_eq!(count(&t, ns), 0, "{set}");
        for (_, other) in sections.iter().filter(|(s, _)| *s != section) {
            assert_eq!(count(&t, other), count(&all, other), "{set}: {other}");
        }
    }
    let t = render_files(
        vec![],
        &["deploykf_dependencies.istio.networkPolicy.enabled=false"],
    );
    let values = one(&t, "manifests/deploykf-dependencies/istio/values.yaml");
    assert!(values["global"].get("networkPolicy").is_none(), "{values}");
}

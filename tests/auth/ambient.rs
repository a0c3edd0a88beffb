//! The destination side in ambient mode (`dataplaneMode: ambient`): a
//! request to a pod of an ambient namespace passes the namespace's
//! waypoint (when it is used) and then the destination node's ztunnel.
//! Modelled from istio/istio 1.30.3:
//! - A namespace is in ambient capture by its label
//!   `istio.io/dataplane-mode: ambient`; its Services use the waypoint its
//!   `istio.io/use-waypoint` label names (`pilot/pkg/serviceregistry/ambient/waypoints.go:200-215`
//!   `getUseWaypoint`). A caller in ambient capture sending to the Service
//!   goes through the waypoint (its ztunnel does); a gateway does only when
//!   the namespace (or Service) is labelled `istio.io/ingress-use-waypoint:
//!   "true"` (`pilot/pkg/features/ambient.go` `ENABLE_INGRESS_WAYPOINT_ROUTING`,
//!   `pilot/pkg/serviceregistry/ambient/sidecar_interop.go:80-88`); a
//!   sidecar never does ("Currently only ingress and e/w gateway will call
//!   waypoints", `pilot/pkg/xds/endpoints/endpoint_builder.go:896-901`),
//!   nor does traffic to a pod IP.
//! - The waypoint enforces the policies whose `targetRefs` name it, with
//!   every HTTP attribute, and verifies tokens by the RequestAuthentications
//!   that target it (`sidecar.rs` `authorize`, `Enforcer::Waypoint`).
//! - ztunnel enforces the other policies of the namespace and the root
//!   namespace, L4 only (`pilot/pkg/serviceregistry/ambient/authorization.go`):
//!   an ALLOW rule with any HTTP attribute never matches (:599-603), a DENY
//!   rule with one is enforced on its L4 part (:481-489, the HTTP matches
//!   become empty, i.e. match-all), CUSTOM is refused (:437-445). The
//!   source it sees is the waypoint's identity when the request came
//!   through the waypoint; nothing allows the waypoint implicitly
//!   (`PILOT_AUTO_ALLOW_WAYPOINT_POLICY` defaults to false,
//!   `pilot/pkg/features/ambient.go`).
//! - STRICT PeerAuthentication refuses plaintext at ztunnel, as at a
//!   sidecar (`authorization.go:79-215`).

use super::*;
use crate::idp_groups::idp_group_violations;

/// The tree with the prerequisite the README states for ambient ("Callers
/// in `kubeflow` must be ambient too"): Kubeflow's namespaces, which
/// meshgen does not render, labelled for ambient capture.
pub(crate) fn with_kubeflow_in_ambient(t: &Tree) -> Tree {
    let mut t = t.clone();
    let docs = ["kubeflow", "knative-serving"]
        .iter()
        .map(|ns| {
            json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"istio.io/dataplane-mode": "ambient"}}})
        })
        .collect();
    t.insert("prerequisite/namespaces.yaml".into(), docs);
    t
}

const AMBIENT: &str = "deploykf_dependencies.istio.dataplaneMode=ambient";
const GATEWAY_API: &str = "deploykf_core.deploykf_istio_gateway.api=gateway-api";
/// The `apps` case's retries have no Gateway API form (an error there).
const NO_RETRIES: &str = "deploykf_core.deploykf_istio_gateway.apps[2].retries=null";
const RESEARCH: &str = "manifests/deploykf-core/deploykf-profiles-generator/kf-research.yaml";

/// `cases` over `apps`, in ambient mode, in the routing API `api` (none:
/// `istio`).
fn ambient_over_apps(case: &str, api: Option<&str>) -> Tree {
    let mut sets = vec![AMBIENT];
    if let Some(api) = api {
        sets.extend([api, NO_RETRIES]);
    }
    render_inputs(&common::cases_inputs(&["apps", case], &sets))
}

/// What only ambient can get wrong: a way past the waypoint, or one
/// profile's waypoint speaking for another.
pub(crate) fn bypass_violations(t: &Tree) -> Vec<String> {
    let mut bad = Vec::new();
    let research = pod("kf-research", &[("app", "nb")], 8888);
    let analytics = pod("kf-analytics", &[("app", "nb")], 8888);
    let member = inbound(
        &research,
        Some(GATEWAY_PRINCIPAL),
        "GET",
        "/",
        Some("alice@example.com"),
    );
    if !at_ambient_pod(t, &member, Path::Service) {
        bad.push("the gateway as a member, to the Service: denied".into());
    }
    if at_ambient_pod(t, &member, Path::PodIp) {
        bad.push("the gateway to a profile pod's IP, past the waypoint: allowed".into());
    }
    let foreign_waypoint = inbound(
        &analytics,
        Some("cluster.local/ns/kf-research/sa/waypoint"),
        "GET",
        "/",
        Some("admin@example.com"),
    );
    if at_destination(t, &foreign_waypoint) {
        bad.push("kf-research's waypoint to a kf-analytics pod: allowed".into());
    }
    bad
}

/// The replays of every destination case hold in ambient mode, in both
/// routing APIs, with no way past a waypoint.
#[test]
pub(crate) fn ambient_destinations_admit_only_verified_callers() {
    for api in [None, Some(GATEWAY_API)] {
        let t = ambient_over_apps("multi-team", api);
        assert!(in_ambient(&t, "kf-research"), "{api:?}");
        assert_eq!(waypoint_of(&t, "kf-research").as_deref(), Some("waypoint"));
        let t = with_kubeflow_in_ambient(&t);
        let mut bad = destination_violations(&t);
        bad.extend(bypass_violations(&t));
        assert!(bad.is_empty(), "{api:?}: {}", bad.join("\n"));
        let t = ambient_over_apps("idp-groups", api);
        let bad = idp_group_violations(&t);
        assert!(bad.is_empty(), "{api:?}: {}", bad.join("\n"));
    }
}

/// Sidecar callers never use a waypoint, so Kubeflow's own callers reach
/// the profiles only once their namespace is ambient too (the README's
/// prerequisite): without it they are refused, not let past the header
/// check.
#[test]
pub(crate) fn kubeflow_callers_need_their_namespace_in_ambient() {
    let bare = ambient_over_apps("multi-team", None);
    let research = pod("kf-research", &[("app", "nb")], 8888);
    let ui = inbound(
        &research,
        Some("cluster.local/ns/kubeflow/sa/ml-pipeline-ui"),
        "GET",
        "/artifacts",
        Some("alice@example.com"),
    );
    assert!(!at_destination(&bare, &ui));
    assert!(at_destination(&with_kubeflow_in_ambient(&bare), &ui));
    // ... and in ambient the header check still applies to them.
    let mut stranger = ui.clone();
    stranger.headers = claims(&[("kubeflow-userid", "mallory@example.com")]);
    assert!(!at_destination(&with_kubeflow_in_ambient(&bare), &stranger));
}

/// The gateway's side in ambient mode: the impersonation, listener and
/// machine-token replays of `gateway.rs` on both ambient golden cases.
#[test]
pub(crate) fn ambient_gateways_serve_the_same_requests() {
    for name in ["istio-ambient", "gateway-api-ambient"] {
        let t = case(name);
        let mut bad = impersonation_violations(&t);
        bad.extend(listener_violations(&t, true));
        bad.extend(m2m_violations(&t));
        assert!(bad.is_empty(), "{name}: {}", bad.join("\n"));
    }
}

/// Removing any one of ambient's safeguards makes its replay fail.
#[test]
pub(crate) fn the_ambient_replay_notices_a_missing_safeguard() {
    let base = with_kubeflow_in_ambient(&ambient_over_apps("multi-team", None));
    fn namespace(t: &mut Tree) -> &mut Value {
        t.get_mut(RESEARCH)
            .unwrap()
            .iter_mut()
            .find(|d| d["kind"] == "Namespace")
            .unwrap()
    }
    let policy = |t: &mut Tree, name: &str| -> usize {
        t[RESEARCH]
            .iter()
            .position(|d| d["kind"] == "AuthorizationPolicy" && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("AuthorizationPolicy/{name}"))
    };
    let mut mutants: Vec<(&str, Tree)> = Vec::new();
    for (label, what) in [
        (
            "istio.io/ingress-use-waypoint",
            "the ingress-use-waypoint label",
        ),
        ("istio.io/use-waypoint", "the use-waypoint label"),
    ] {
        let mut t = base.clone();
        namespace(&mut t)["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove(label);
        mutants.push((what, t));
    }
    let mut t = base.clone();
    t.get_mut(RESEARCH)
        .unwrap()
        .retain(|d| !(d["kind"] == "Gateway" && d["metadata"]["name"] == "waypoint"));
    mutants.push(("the waypoint", t));
    let mut t = base.clone();
    let i = policy(&mut t, "profile-access");
    t.get_mut(RESEARCH).unwrap()[i]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("targetRefs");
    mutants.push((
        "the L7 profile policy on the waypoint (it reaches ztunnel)",
        t,
    ));
    let mut t = base.clone();
    let i = policy(&mut t, "profile-access-ztunnel");
    t.get_mut(RESEARCH).unwrap()[i]["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"from": [{"source": {"principals": [GATEWAY_PRINCIPAL]}}]}));
    mutants.push(("the gateway kept out of the ztunnel ALLOW", t));
    let mut t = base.clone();
    let i = policy(&mut t, "profile-access-ztunnel");
    t.get_mut(RESEARCH).unwrap().remove(i);
    mutants.push(("the ztunnel ALLOW (the waypoint's own admission)", t));
    for (what, t) in mutants {
        let mut bad = destination_violations(&t);
        bad.extend(bypass_violations(&t));
        assert!(
            !bad.is_empty(),
            "without {what} the ambient replay still passes"
        );
    }
}

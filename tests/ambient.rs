//! `dataplaneMode: ambient` (issue 18), on parsed documents of the
//! `istio-ambient` case against its sidecar twin `istio-sidecar`: the
//! namespace labels, each profile's waypoint, and the split of the profile
//! policies into waypoint ones (same names and rules, `targetRefs`) and one
//! L4 policy for ztunnel. Upstream behaviour each assertion relies on is
//! cited in the templates (istio/istio 1.30.3).

mod common;

use serde_json::{json, Value};
use std::collections::BTreeMap;

const PROFILES: &[&str] = &["analytics", "research"];

/// Every manifest document, by (kind, namespace, name).
fn objects(case: &str, sets: &[&str]) -> BTreeMap<(String, String, String), Value> {
    common::objects(&common::generate(&common::cases_inputs(&[case], sets)))
}

fn get<'a>(
    o: &'a BTreeMap<(String, String, String), Value>,
    kind: &str,
    ns: &str,
    name: &str,
) -> &'a Value {
    o.get(&(kind.into(), ns.into(), name.into()))
        .unwrap_or_else(|| panic!("no {kind} {ns}/{name}"))
}

fn waypoint_ref() -> Value {
    json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "waypoint"}])
}

#[test]
fn namespaces_are_ambient_and_the_gateway_namespace_stays_injected() {
    let o = objects("istio-ambient", &[]);
    for ns in PROFILES.iter().copied().chain(["deploykf-auth"]) {
        let labels = &get(&o, "Namespace", "", ns)["metadata"]["labels"];
        assert_eq!(labels["istio.io/dataplane-mode"], "ambient", "{ns}");
        assert!(
            labels["istio-injection"].is_null() && labels["istio.io/rev"].is_null(),
            "{ns}: {labels}"
        );
        let profile = ns != "deploykf-auth";
        assert_eq!(
            labels["istio.io/use-waypoint"] == "waypoint",
            profile,
            "{ns}"
        );
        assert_eq!(
            labels["istio.io/ingress-use-waypoint"] == "true",
            profile,
            "{ns}"
        );
    }
    let gw_ns = &get(&o, "Namespace", "", "deploykf-istio-gateway")["metadata"]["labels"];
    assert_eq!(gw_ns["istio-injection"], "enabled");
    assert!(gw_ns["istio.io/dataplane-mode"].is_null());
    let pod = &get(
        &o,
        "Deployment",
        "deploykf-istio-gateway",
        "deploykf-gateway",
    )["spec"]["template"]["metadata"];
    assert_eq!(pod["labels"]["istio.io/dataplane-mode"], "none");
    assert_eq!(pod["labels"]["sidecar.istio.io/inject"], "true");
    assert_eq!(pod["annotations"]["inject.istio.io/templates"], "gateway");
}

#[test]
fn each_profile_has_a_waypoint_and_its_l7_policies_attach_to_it() {
    let amb = objects("istio-ambient", &[]);
    let side = objects("istio-sidecar", &[]);
    assert!(!side
        .keys()
        .any(|(k, _, n)| k == "Gateway" && n == "waypoint"));
    let mut compared = 0;
    for ns in PROFILES {
        let gw = get(&amb, "Gateway", ns, "waypoint");
        assert_eq!(gw["apiVersion"], "gateway.networking.k8s.io/v1");
        assert_eq!(gw["metadata"]["labels"]["istio.io/waypoint-for"], "service");
        assert_eq!(
            gw["spec"],
            json!({
                "gatewayClassName": "istio-waypoint",
                "infrastructure": {"parametersRef": {"group": "", "kind": "ConfigMap", "name": "waypoint-params"}},
                "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
            })
        );
        let cm = get(&amb, "ConfigMap", ns, "waypoint-params");
        let overlay = common::docs(cm["data"]["deployment"].as_str().unwrap()).remove(0);
        assert_eq!(
            overlay,
            json!({"spec": {"template": {"spec": {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}}}})
        );
        // The L7 policies: same name, action and rules as with sidecars,
        // attached to the waypoint instead of namespace-wide.
        for (kind, name) in [
            ("AuthorizationPolicy", "profile-access"),
            ("AuthorizationPolicy", "idp-groups"),
            ("AuthorizationPolicy", "notebook-access"),
            ("RequestAuthentication", "idp-groups-jwt"),
        ] {
            let key = (kind.to_string(), ns.to_string(), name.to_string());
            let (Some(a), Some(s)) = (amb.get(&key), side.get(&key)) else {
                assert!(
                    !amb.contains_key(&key) && !side.contains_key(&key),
                    "{key:?}"
                );
                continue;
            };
            assert_eq!(a["spec"]["targetRefs"], waypoint_ref(), "{key:?}");
            assert!(a["spec"]["selector"].is_null(), "{key:?}");
            let mut a = a["spec"].clone();
            a.as_object_mut().unwrap().remove("targetRefs");
            assert_eq!(a, s["spec"], "{key:?}: the rules changed");
            compared += 1;
        }
        // What ztunnel enforces: the namespace's own sources only.
        let z = get(&amb, "AuthorizationPolicy", ns, "profile-access-ztunnel");
        assert_eq!(
            z["spec"],
            json!({"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": [ns]}}]}]})
        );
    }
    // Both profiles' profile-access and notebook-access, and research's
    // idpGroup members (idp-groups, idp-groups-jwt).
    assert_eq!(compared, 6);
}

/// No policy ztunnel enforces in a profile namespace admits the gateway's
/// principal: the gateway reaches the pods only through the waypoint, which
/// checks the identity header (a request to a pod IP is denied).
#[test]
fn ztunnel_never_admits_the_gateway_directly_into_a_profile() {
    let o = objects("istio-ambient", &[]);
    let gateway = "cluster.local/ns/deploykf-istio-gateway/sa/deploykf-gateway";
    let mut seen = 0;
    for ((kind, ns, name), d) in &o {
        if kind != "AuthorizationPolicy" || !PROFILES.contains(&ns.as_str()) {
            continue;
        }
        if d["spec"]["targetRefs"].is_null() {
            seen += 1;
            assert!(
                !d.to_string().contains(gateway),
                "{ns}/{name} names the gateway for ztunnel"
            );
        }
    }
    assert_eq!(seen, PROFILES.len());
}

//! The egress layer of the request model (issue 32 point 5): a profile
//! pod's connection to a host outside the cluster, evaluated by
//! `meshgen::access::egress` (Istio's semantics cited there) over the
//! golden cases `egress-registry-only` and `egress-gateway` (the same
//! profiles, through the egress gateway): team-a may reach PyPI, team-b
//! only the profiles' default host, team-c nothing.

use super::*;
use meshgen::access::egress::{egress, Outbound};
use meshgen::access::netpol::PodRef;

fn notebook(ns: &str) -> PodRef {
    PodRef::new(ns, &[("notebook-name", "nb"), ("statefulset", "nb")])
}

/// A connection from `from` (with a sidecar) to `host`:`port`.
fn to_host(t: &Tree, from: &PodRef, host: &str, port: u16) -> Result<(), String> {
    egress(
        t,
        &Outbound {
            from,
            proxied: true,
            host,
            address: "198.51.100.10".parse().unwrap(),
            port,
        },
    )
}

/// What each replay expects: (what, from, host, port, admitted).
fn egress_violations(t: &Tree) -> Vec<String> {
    let (a, b, c) = (notebook("team-a"), notebook("team-b"), notebook("team-c"));
    let dex = PodRef::new("deploykf-auth", &[("app.kubernetes.io/name", "dex")]);
    let cases = [
        (
            "team-a's notebook -> an allowed host",
            &a,
            "pypi.org",
            443,
            true,
        ),
        (
            "team-a's notebook -> another host",
            &a,
            "exfil.example.net",
            443,
            false,
        ),
        (
            "team-a's notebook -> its host on port 80",
            &a,
            "pypi.org",
            80,
            false,
        ),
        (
            "team-b's notebook -> team-a's host",
            &b,
            "pypi.org",
            443,
            false,
        ),
        (
            "team-b's notebook -> the default host",
            &b,
            "huggingface.co",
            443,
            true,
        ),
        (
            "team-c (allowedHosts: []) -> the default host",
            &c,
            "huggingface.co",
            443,
            false,
        ),
        (
            "dex -> an external identity provider",
            &dex,
            "github.com",
            443,
            true,
        ),
    ];
    cases
        .into_iter()
        .filter_map(|(what, from, host, port, want)| {
            let got = to_host(t, from, host, port);
            (got.is_ok() != want).then(|| format!("{what}: {got:?}, expected admitted {want}"))
        })
        .collect()
}

/// Issue 32 point 5: each replay fails on today's main, where the case's
/// keys do not exist and every host is open.
#[test]
fn registry_only_egress_admits_each_profile_its_own_hosts() {
    let t = case("egress-registry-only");
    let bad = egress_violations(&t);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// With the default `mode: open`, every host is reachable: what the key
/// changes.
#[test]
fn open_egress_admits_any_host() {
    let t = case("defaults");
    let team = notebook("team-1");
    assert_eq!(to_host(&t, &team, "exfil.example.net", 443), Ok(()));
}

/// The replay notices each safeguard: without the mesh's REGISTRY_ONLY any
/// host leaves; with team-a's ServiceEntry exported to every namespace,
/// team-b reaches team-a's host.
#[test]
fn the_egress_replay_notices_a_missing_safeguard() {
    let base = case("egress-registry-only");
    let mut open = base.clone();
    for docs in open.values_mut() {
        for d in docs.iter_mut() {
            if let Some(m) = d.pointer_mut("/istio-daemon/meshConfig") {
                m.as_object_mut().unwrap().remove("outboundTrafficPolicy");
            }
        }
    }
    assert!(
        !egress_violations(&open).is_empty(),
        "without REGISTRY_ONLY"
    );
    let mut exported = base.clone();
    for docs in exported.values_mut() {
        for d in docs.iter_mut() {
            if d["kind"] == "ServiceEntry" && d["metadata"]["namespace"] == "team-a" {
                d["spec"]["exportTo"] = json!(["*"]);
            }
        }
    }
    assert!(!egress_violations(&exported).is_empty(), "with exportTo *");
    let mut no_sidecar = base.clone();
    for docs in no_sidecar.values_mut() {
        docs.retain(|d| d["kind"] != "Sidecar");
    }
    assert!(
        !egress_violations(&no_sidecar).is_empty(),
        "without the auth Sidecar"
    );
}

/// What stays open without the egress gateway (README "Egress"): a pod
/// without a sidecar skips the outbound policy, and no NetworkPolicy can
/// stop it (its sidecar's allowed hosts leave from the pod itself).
#[test]
fn a_pod_without_a_sidecar_still_reaches_any_host() {
    let t = case("egress-registry-only");
    let a = notebook("team-a");
    let bypass = Outbound {
        from: &a,
        proxied: false,
        host: "exfil.example.net",
        address: "198.51.100.10".parse().unwrap(),
        port: 443,
    };
    assert_eq!(egress(&t, &bypass), Ok(()));
}

/// A connection from `from` to `host`:443 that skips the proxy (no sidecar,
/// or traffic excluded from capture): straight to the host's address.
fn bypassing(t: &Tree, from: &PodRef, host: &str) -> Result<(), String> {
    egress(
        t,
        &Outbound {
            from,
            proxied: false,
            host,
            address: "198.51.100.10".parse().unwrap(),
            port: 443,
        },
    )
}

/// What each replay through the egress gateway expects.
fn gateway_violations(t: &Tree) -> Vec<String> {
    let (a, b, c) = (notebook("team-a"), notebook("team-b"), notebook("team-c"));
    let mut bad = egress_violations(t);
    let got = bypassing(t, &a, "pypi.org");
    if got.is_ok() {
        bad.push(format!(
            "team-a's pod skipping its proxy -> an allowed host's address: {got:?}, expected refused"
        ));
    }
    for (what, from) in [("team-a", &a), ("team-b", &b), ("team-c", &c)] {
        let got = bypassing(t, from, "exfil.example.net");
        if got.is_ok() {
            bad.push(format!(
                "{what}'s pod skipping its proxy -> any address: admitted"
            ));
        }
    }
    bad
}

/// Issue 32 point 5 with `egress.gateway.enabled`: every replay of
/// registry-only holds through the egress gateway, and a pod skipping its
/// proxy is refused by its NetworkPolicy. Fails on main, where
/// `gateway.enabled: true` is an error (no tree).
#[test]
fn the_egress_gateway_admits_each_profile_its_own_hosts_and_nothing_skips_it() {
    let t = case("egress-gateway");
    let bad = gateway_violations(&t);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let a = notebook("team-a");
    assert_eq!(
        bypassing(&t, &a, "pypi.org"),
        Err("a NetworkPolicy of `team-a` refuses egress to 198.51.100.10:443".into())
    );
}

/// Removes the documents of `kind` (named `name`, or any) from the tree.
fn without(t: &Tree, kind: &str, name: Option<&str>) -> Tree {
    let mut t = t.clone();
    for docs in t.values_mut() {
        docs.retain(|d| !(d["kind"] == kind && name.is_none_or(|n| d["metadata"]["name"] == n)));
    }
    t
}

/// team-b -> team-a's host is refused by the egress gateway itself: with
/// team-a's ServiceEntry exported to every namespace (so team-b's sidecar
/// knows the host and routes it to the gateway), the gateway's
/// AuthorizationPolicy refuses team-b for that SNI.
#[test]
fn the_egress_gateway_refuses_another_profiles_host_by_its_authorization_policy() {
    let mut t = case("egress-gateway");
    for docs in t.values_mut() {
        for d in docs.iter_mut() {
            if d["kind"] == "ServiceEntry" && d["metadata"]["namespace"] == "team-a" {
                d["spec"]["exportTo"] = json!(["*"]);
            }
        }
    }
    let b = notebook("team-b");
    assert_eq!(
        to_host(&t, &b, "pypi.org", 443),
        Err("the egress gateway's AuthorizationPolicies refuse `team-b` for pypi.org (`connection.sni`)".into())
    );
    let open = without(&t, "AuthorizationPolicy", Some("istio-egressgateway"));
    assert_eq!(to_host(&open, &b, "pypi.org", 443), Ok(()));
}

/// The replay notices each safeguard of the gateway: without the
/// profiles' `allow-egress` NetworkPolicy a pod skips its proxy; without
/// the VirtualServices a sidecar connects to the host itself, which that
/// NetworkPolicy refuses (so the admitted replays did go through the
/// gateway); without the DestinationRule there is no Istio mutual TLS to
/// the gateway; without the gateway's ServiceEntry it knows no host.
#[test]
fn the_egress_gateway_replay_notices_a_missing_safeguard() {
    let base = case("egress-gateway");
    assert!(gateway_violations(&base).is_empty());
    for (kind, name) in [
        ("NetworkPolicy", Some("allow-egress")),
        ("VirtualService", None),
        ("DestinationRule", Some("istio-egressgateway")),
        ("Gateway", Some("istio-egressgateway")),
    ] {
        let t = without(&base, kind, name);
        assert!(
            !gateway_violations(&t).is_empty(),
            "without {kind} {name:?}"
        );
    }
    let mut no_se = base.clone();
    for docs in no_se.values_mut() {
        docs.retain(|d| {
            !(d["kind"] == "ServiceEntry" && d["metadata"]["namespace"] == "deploykf-istio-egress")
        });
    }
    assert!(
        !gateway_violations(&no_se).is_empty(),
        "without the gateway's ServiceEntry"
    );
}

/// Issue 32 point 5 in ambient (`egress-ambient`: the same profiles on the
/// gateway-api-ambient edge): every replay of the egress gateway holds
/// through the egress waypoint, and a pod skipping ztunnel is refused by
/// its NetworkPolicy. Fails on main, where `registry-only` in ambient is
/// an error (no tree).
#[test]
fn the_egress_waypoint_admits_each_profile_its_own_hosts_and_nothing_skips_it() {
    let t = case("egress-ambient");
    let bad = gateway_violations(&t);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let b = notebook("team-b");
    let refused = to_host(&t, &b, "pypi.org", 443).unwrap_err();
    assert!(
        refused.starts_with("the waypoint deploykf-istio-egress/egress-waypoint's AuthorizationPolicies refuse `team-b`"),
        "{refused}"
    );
}

/// Sets a field of every document of `kind` named `name` (by JSON
/// pointer; `None` removes it).
fn with_field(t: &Tree, kind: &str, name: Option<&str>, ptr: &str, v: Option<Value>) -> Tree {
    let mut t = t.clone();
    let (parent, key) = ptr.rsplit_once('/').unwrap();
    let key = key.replace("~1", "/").replace("~0", "~");
    for d in t.values_mut().flatten() {
        if d["kind"] == kind && name.is_none_or(|n| d["metadata"]["name"] == n) {
            let Some(p) = d.pointer_mut(parent) else {
                continue;
            };
            match &v {
                Some(v) => p[&key] = v.clone(),
                None => {
                    p.as_object_mut().unwrap().remove(&key);
                }
            }
        }
    }
    t
}

/// The ambient replay notices each safeguard: without the waypoint's
/// per-host AuthorizationPolicies team-b reaches team-a's host; without
/// the profiles' `allow-egress` a pod skipping ztunnel reaches any host;
/// without the ServiceEntries' `istio.io/use-waypoint` label (or the
/// waypoint itself) ztunnel connects to the host from the pod, which
/// `allow-egress` refuses, so the admitted replays did go through the
/// waypoint; with istio-cni's DNS capture off (or istiod's address
/// allocation) the pod connects to the host's own address, refused too;
/// and the waypoint's NetworkPolicy must admit HBONE.
#[test]
fn the_egress_waypoint_replay_notices_a_missing_safeguard() {
    let base = case("egress-ambient");
    assert!(gateway_violations(&base).is_empty());
    let mut broken: Vec<(&str, Tree)> = vec![
        ("without the per-host AuthorizationPolicies", {
            let mut t = base.clone();
            for docs in t.values_mut() {
                docs.retain(|d| {
                    !(d["kind"] == "AuthorizationPolicy"
                        && d["metadata"]["namespace"] == "deploykf-istio-egress")
                });
            }
            t
        }),
        (
            "without allow-egress",
            without(&base, "NetworkPolicy", Some("allow-egress")),
        ),
        (
            "without the waypoint Gateway",
            without(&base, "Gateway", Some("egress-waypoint")),
        ),
        (
            "without the use-waypoint label",
            with_field(
                &base,
                "ServiceEntry",
                None,
                "/metadata/labels/istio.io~1use-waypoint",
                None,
            ),
        ),
        (
            "with the waypoint's HBONE port closed",
            with_field(
                &base,
                "NetworkPolicy",
                Some("allow-ingress"),
                "/spec/ingress",
                Some(json!([])),
            ),
        ),
    ];
    for (key, off) in [
        ("/istio-cni/ambient/dnsCapture", json!(false)),
        (
            "/istio-daemon/pilot/env/PILOT_ENABLE_IP_AUTOALLOCATE",
            json!("false"),
        ),
    ] {
        let mut t = base.clone();
        for d in t.values_mut().flatten() {
            if d.get("istio-daemon").is_some() {
                let (parent, k) = key.rsplit_once('/').unwrap();
                let mut at = &mut *d;
                for part in parent.trim_start_matches('/').split('/') {
                    if at.get(part).is_none() {
                        at[part] = json!({});
                    }
                    at = &mut at[part];
                }
                at[k] = off.clone();
            }
        }
        broken.push((key, t));
    }
    for (what, t) in broken {
        assert!(!gateway_violations(&t).is_empty(), "{what}");
    }
}

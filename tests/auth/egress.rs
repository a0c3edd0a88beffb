//! The egress layer of the request model (issue 32 point 5): a profile
//! pod's connection to a host outside the cluster, evaluated by
//! `meshgen::access::egress` (Istio's semantics cited there) over the
//! golden case `egress-registry-only`: team-a may reach PyPI, team-b only
//! the profiles' default host, team-c nothing.

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
            sidecar: true,
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

/// What stays open (README "Egress", not done): a pod without a sidecar
/// skips the outbound policy, and no NetworkPolicy stops it yet.
#[test]
fn a_pod_without_a_sidecar_still_reaches_any_host() {
    let t = case("egress-registry-only");
    let a = notebook("team-a");
    let bypass = Outbound {
        from: &a,
        sidecar: false,
        host: "exfil.example.net",
        address: "198.51.100.10".parse().unwrap(),
        port: 443,
    };
    assert_eq!(egress(&t, &bypass), Ok(()));
}

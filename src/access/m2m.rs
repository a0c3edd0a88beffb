//! Machine-to-machine tokens: where a verifying proxy gets an issuer's
//! keys, and the gateway's own identity.

use super::ambient::at_destination;
use super::sidecar::{pod_behind, Inbound};
use super::tree::{one, text, Tree};
use super::GATEWAY_DIR;
use serde_json::Value;
use std::collections::BTreeMap;

/// The gateway's SPIFFE principal when the tree does not deploy its pods.
pub const GATEWAY_PRINCIPAL: &str = "cluster.local/ns/deploykf-istio-gateway/sa/deploykf-gateway";

/// Whether the gateway can fetch a jwtRule's keys (`Err`: why not).
///
/// With `PILOT_JWT_ENABLE_REMOTE_JWKS=hybrid` (meshgen's Istio), a
/// `jwksUri` whose host is a cluster of the mesh is fetched by Envoy
/// through that cluster, and only other URIs by istiod (istio/istio
/// `pilot/pkg/security/authn/policy_applier.go`, the branch on
/// `features.JwksFetchMode != jwt.Istiod`: `model.LookupCluster` found →
/// `RemoteJwks` with `HttpUpstreamType: Cluster`; else in hybrid mode
/// `BuildLocalJwks`). The gateway's outbound cluster for an in-mesh
/// Service carries no TLS of its own (mTLS at most, to a sidecar), so an
/// `https://` in-mesh URI (the API server's) can not be fetched; an
/// `http://` one must be a Service of the tree whose pods let the
/// gateway GET the path (see [`jwks_fetch_by`]).
pub fn jwks_fetch(t: &Tree, rule: &Value) -> Result<(), String> {
    jwks_fetch_by(t, rule, &gateway_principal(t))
}

/// The gateway pods' SPIFFE principal: their namespace and ServiceAccount
/// when meshgen deploys them (Kubeflow's identity under `--preset
/// kubeflow`), else [`GATEWAY_PRINCIPAL`].
pub fn gateway_principal(t: &Tree) -> String {
    match one(t, &format!("{GATEWAY_DIR}/Deployment.yaml")) {
        Some(d) => format!(
            "cluster.local/ns/{}/sa/{}",
            text(&d["metadata"]["namespace"]),
            text(&d["spec"]["template"]["spec"]["serviceAccountName"])
        ),
        None => GATEWAY_PRINCIPAL.to_string(),
    }
}

/// The keys of `rule` can be fetched by the proxy that verifies its
/// tokens, as `fetcher`. With `PILOT_JWT_ENABLE_REMOTE_JWKS=hybrid` a
/// `jwksUri` naming a Service of the mesh is fetched by that proxy itself,
/// through its outbound cluster (istio/istio 1.30.3
/// `pilot/pkg/security/authn/policy_applier.go:199-223`), so the keys'
/// Service must admit the verifier: the gateway for its own rules, a
/// profile's sidecar or waypoint for the profile's.
pub fn jwks_fetch_by(t: &Tree, rule: &Value, fetcher: &str) -> Result<(), String> {
    if rule.get("jwks").is_some() {
        return Ok(());
    }
    let Some(uri) = rule["jwksUri"].as_str() else {
        return Ok(()); // istiod discovers the keys of an external issuer
    };
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(format!("401: keys at {uri}: not a URL"));
    };
    let (hostport, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let (host, port) = match hostport.split_once(':') {
        Some((h, p)) => match p.parse::<u16>() {
            Ok(p) => (h, p),
            Err(_) => return Err(format!("401: keys at {uri}: not a port: {p}")),
        },
        None => (hostport, if scheme == "https" { 443 } else { 80 }),
    };
    let in_mesh = host.ends_with(".svc.cluster.local") || host.ends_with(".svc");
    if !in_mesh {
        return Ok(());
    }
    if scheme == "https" {
        return Err(format!(
            "401: keys at {uri}: in-mesh HTTPS, fetched by the gateway without TLS origination"
        ));
    }
    let unreachable = |why: &str| Err(format!("401: keys at {uri}: {why}"));
    let pod = match pod_behind(t, host, port) {
        Ok(pod) => pod,
        Err(why) => return unreachable(&why),
    };
    // The pods' sidecar (the namespace's allow-nothing among its
    // policies), as `at_destination` models it.
    let req = Inbound {
        pod,
        principal: Some(fetcher.into()),
        method: "GET".into(),
        path,
        headers: BTreeMap::new(),
        token: None,
        sni: None,
    };
    if !at_destination(t, &req) {
        return unreachable(&format!("the pods' policies refuse the GET of {fetcher}"));
    }
    Ok(())
}

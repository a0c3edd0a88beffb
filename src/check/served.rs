//! The Gateway API kinds and versions each pinned bundle serves. A
//! `gateway.networking.k8s.io` object whose kind or version the bundle of
//! the tree's Istio minor (`config::GATEWAY_API_BUNDLES`) does not serve
//! is refused by the API server ("no matches for kind"), or, under Argo CD
//! and Flux, leaves the sync failing; the whole-tree check refuses it
//! first, naming the file and document (or your `extraManifests` item).
//!
//! The table is the `spec.versions[].served` of the vendored standard
//! CRDs (`vendor/gateway-api/<tag>/`), which a test below reads back. What
//! matters in practice: ReferenceGrant is `v1beta1` only in v1.4.1 (v1 is
//! served from v1.5.1, storage stays v1beta1); ListenerSet and TLSRoute
//! exist in the standard channel only from v1.5.1.
//!
//! Facts only: it reads no files (except in its test).

/// The Gateway API group.
pub const GROUP: &str = "gateway.networking.k8s.io";

/// (kind, served versions) of one bundle.
pub type Served = &'static [(&'static str, &'static [&'static str])];

/// Per bundle tag, every kind of the group and its served versions.
pub const SERVED: &[(&str, Served)] = &[
    (
        "v1.4.1",
        &[
            ("BackendTLSPolicy", &["v1"]),
            ("GRPCRoute", &["v1"]),
            ("Gateway", &["v1", "v1beta1"]),
            ("GatewayClass", &["v1", "v1beta1"]),
            ("HTTPRoute", &["v1", "v1beta1"]),
            ("ReferenceGrant", &["v1beta1"]),
        ],
    ),
    (
        "v1.5.1",
        &[
            ("BackendTLSPolicy", &["v1"]),
            ("GRPCRoute", &["v1"]),
            ("Gateway", &["v1", "v1beta1"]),
            ("GatewayClass", &["v1", "v1beta1"]),
            ("HTTPRoute", &["v1", "v1beta1"]),
            ("ListenerSet", &["v1"]),
            ("ReferenceGrant", &["v1", "v1beta1"]),
            ("TLSRoute", &["v1"]),
        ],
    ),
];

/// Why `bundle` does not serve `api_version` `kind` (an object of the
/// Gateway API group); `None` when it does, or when the tree has no
/// known bundle.
pub fn refusal(bundle: &str, api_version: &str, kind: &str) -> Option<String> {
    let (_, served) = SERVED.iter().find(|(b, _)| *b == bundle)?;
    let version = api_version.rsplit_once('/').map_or(api_version, |(_, v)| v);
    let minors = minors_of(bundle);
    match served.iter().find(|(k, _)| *k == kind) {
        Some((_, versions)) if versions.contains(&version) => None,
        Some((_, versions)) => Some(format!(
            "the Gateway API {bundle} standard CRDs (the bundle of Istio {minors}) serve {kind} only as {}, not {version}; use `apiVersion: {GROUP}/{}`",
            versions.join(", "),
            versions[0]
        )),
        None => Some(format!(
            "the Gateway API {bundle} standard CRDs (the bundle of Istio {minors}) have no kind {kind}; it is experimental, or standard only in a later bundle"
        )),
    }
}

/// The Istio minors a bundle goes with, as text ("1.28, 1.29").
fn minors_of(bundle: &str) -> String {
    let minors: Vec<String> = crate::config::GATEWAY_API_BUNDLES
        .iter()
        .filter(|(_, b)| *b == bundle)
        .map(|((major, minor), _)| format!("{major}.{minor}"))
        .collect();
    minors.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per bundle, each kind with its served versions.
    type Table = Vec<(String, Vec<(String, Vec<String>)>)>;

    /// The table is what the vendored CRDs serve, kind by kind.
    #[test]
    fn the_table_is_what_the_vendored_crds_serve() {
        let mut from_crds: Table = Vec::new();
        for b in crate::model::gateway_api::BUNDLES {
            let mut kinds: Vec<(String, Vec<String>)> = Vec::new();
            for (_, text) in b.files {
                for d in crate::yaml::load::load_json_documents(text).unwrap() {
                    if d["kind"] != "CustomResourceDefinition" {
                        continue;
                    }
                    assert_eq!(d["spec"]["group"], GROUP);
                    let mut served: Vec<String> = d["spec"]["versions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|v| v["served"] == true)
                        .map(|v| v["name"].as_str().unwrap().to_string())
                        .collect();
                    served.sort();
                    kinds.push((d["spec"]["names"]["kind"].as_str().unwrap().into(), served));
                }
            }
            kinds.sort();
            from_crds.push((b.version.to_string(), kinds));
        }
        let table: Table = SERVED
            .iter()
            .map(|(b, kinds)| {
                let kinds = kinds
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                    .collect();
                (b.to_string(), kinds)
            })
            .collect();
        assert_eq!(table, from_crds);
    }

    #[test]
    fn refuses_what_a_bundle_does_not_serve() {
        let g = |v: &str| format!("{GROUP}/{v}");
        assert_eq!(refusal("v1.4.1", &g("v1beta1"), "ReferenceGrant"), None);
        assert_eq!(refusal("v1.5.1", &g("v1"), "ReferenceGrant"), None);
        assert_eq!(
            refusal("v1.4.1", &g("v1"), "ReferenceGrant").as_deref(),
            Some("the Gateway API v1.4.1 standard CRDs (the bundle of Istio 1.28, 1.29) serve ReferenceGrant only as v1beta1, not v1; use `apiVersion: gateway.networking.k8s.io/v1beta1`")
        );
        assert!(refusal("v1.4.1", &g("v1"), "ListenerSet")
            .unwrap()
            .contains("have no kind ListenerSet"));
        assert!(refusal("v1.5.1", &g("v1alpha2"), "TCPRoute").is_some());
        assert_eq!(refusal("v9", &g("v1"), "TCPRoute"), None);
    }
}

//! Every Kubernetes object meshgen renders carries `model.common_labels`
//! (`app.kubernetes.io/managed-by: meshgen`), in every case under
//! `tests/cases/`. Objects a user passed through `extraManifests` are
//! theirs and come out verbatim (but for the namespace a namespaced one
//! lacks: its component's): files rendered by an `extra-manifests`
//! template are not checked. Nor are the upstream files meshgen vendors
//! and writes byte for byte (`component::Verbatim`: the Gateway API CRDs,
//! checked here to be exactly a vendored file).

mod common;

use std::collections::BTreeMap;

const KEY: &str = "app.kubernetes.io/managed-by";

/// Issue 13, item 7: most documents of the profiles template had no labels.
#[test]
fn issue_13_every_rendered_object_is_managed_by_meshgen() {
    // template -> (kind/namespace/name of each document lacking the label)
    let mut missing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut checked = 0;
    for case in common::cases() {
        let g = common::generate(&common::case_inputs(&case));
        assert!(!g.manifests.is_empty(), "case {case} renders no manifest");
        for m in &g.manifests {
            let Some(template) = g.templates.get(&m.path).copied() else {
                let vendored = meshgen::model::gateway_api::BUNDLES
                    .iter()
                    .flat_map(|b| b.files.iter())
                    .any(|(name, text)| {
                        m.path
                            == format!(
                                "{}/{name}",
                                meshgen::model::gateway_api::COMPONENT.templates
                            )
                            && g.files[&m.path] == *text
                    });
                assert!(vendored, "{case}: manifest {} has no template", m.path);
                continue;
            };
            if template.ends_with("/extra-manifests.yaml.j2") {
                continue;
            }
            let docs = common::docs(&g.files[&m.path]);
            assert_eq!(docs.len(), m.documents, "{case}: {}", m.path);
            for doc in docs {
                checked += 1;
                if doc["metadata"]["labels"][KEY] != "meshgen" {
                    let meta = &doc["metadata"];
                    missing.entry(template).or_default().push(format!(
                        "{case}: {} {}/{}",
                        doc["kind"].as_str().unwrap_or("?"),
                        meta["namespace"].as_str().unwrap_or("-"),
                        meta["name"].as_str().unwrap_or("?"),
                    ));
                }
            }
        }
    }
    assert!(checked > 0, "no document checked");
    let report: Vec<String> = missing
        .iter()
        .map(|(t, docs)| format!("{} in templates/{t}:\n  {}", docs.len(), docs.join("\n  ")))
        .collect();
    let total: usize = missing.values().map(Vec::len).sum();
    assert!(
        missing.is_empty(),
        "{total} of {checked} documents lack labels[\"{KEY}\"] = \"meshgen\":\n{}",
        report.join("\n")
    );
}

//! Regression tests, one per past defect and named after it, as ripgrep's
//! `tests/regression.rs` does; each says which commit fixed it. The golden
//! trees show these too, but a golden tree can be re-accepted by mistake:
//! these state the behaviour on parsed documents.

mod common;

use common::root;
use serde_json::{json, Value};

const AUTH_DIR: &str = "manifests/deploykf-core/deploykf-auth";

/// The one document of `file` under the auth component.
fn auth_doc(g: &meshgen::Generated, file: &str) -> Value {
    let path = format!("{AUTH_DIR}/{file}");
    let text = g
        .files
        .get(&path)
        .unwrap_or_else(|| panic!("{path} not rendered"));
    let mut docs = common::docs(text);
    assert_eq!(docs.len(), 1, "{path}");
    docs.remove(0)
}

/// a5cc53b: dex's entrypoint renders its templated config into `/tmp`; with
/// the read-only root filesystem of Pod Security "restricted" it could not
/// start. Since issue 28 dex starts without that entrypoint (`command` is
/// the dex binary), and nothing else in dex v2.45.1 writes a temporary file
/// (`os.CreateTemp` only in `cmd/docker-entrypoint/main.go:53`): then it
/// needs no `/tmp`; through the entrypoint it needs a writable one.
#[test]
fn regression_dex_has_a_writable_tmp_under_a_read_only_root() {
    let g = common::generate(&common::inputs(vec![], &[]));
    let pod = &auth_doc(&g, "Deployment-dex.yaml")["spec"]["template"]["spec"];
    let dex = &pod["containers"][0];
    assert_eq!(dex["name"], "dex");
    assert_eq!(dex["securityContext"]["readOnlyRootFilesystem"], true);
    if dex["command"][0] == "/usr/local/bin/dex" {
        return;
    }
    let mount = dex["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/tmp")
        .expect("a volume mounted at /tmp");
    assert_ne!(mount["readOnly"], true);
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the /tmp volume");
    assert_eq!(volume["emptyDir"], json!({}));
}

/// 5931d80: oauth2-proxy kept running with its old configuration after the
/// ConfigMap changed (dex already restarted, through a checksum of its
/// config on the pod template).
#[test]
fn regression_oauth2_proxy_restarts_when_its_config_changes() {
    let checksum_and_config = |sets: &[&str]| {
        let g = common::generate(&common::inputs(vec![], sets));
        let deployment = auth_doc(&g, "Deployment-oauth2-proxy.yaml");
        let config = auth_doc(&g, "ConfigMap-oauth2-proxy.yaml");
        (
            deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"].clone(),
            config["data"].clone(),
        )
    };
    let (before, config_before) = checksum_and_config(&[]);
    assert!(before.as_str().is_some_and(|c| !c.is_empty()), "{before}");
    assert_eq!(checksum_and_config(&[]).0, before, "same config, same pod");
    let (after, config_after) =
        checksum_and_config(&["deploykf_core.deploykf_auth.oauth2Proxy.cookie.expire=24h"]);
    assert_ne!(
        config_after, config_before,
        "the setting reaches the config"
    );
    assert_ne!(after, before, "a changed config must roll the pods");
}

/// 7276091: a build script reused from another checkout of the crate
/// embedded that checkout's `templates/`; the binary must carry exactly
/// the templates of the checkout it was built from.
#[test]
fn regression_embedded_templates_are_this_checkouts() {
    let dir = root().join("templates");
    let on_disk: Vec<(String, String)> = common::walk(&dir)
        .into_iter()
        .map(|rel| {
            let text = std::fs::read_to_string(dir.join(&rel)).unwrap();
            (rel.to_string_lossy().replace('\\', "/"), text)
        })
        .collect();
    let embedded: Vec<(String, String)> = meshgen::render::templates()
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    assert!(on_disk.len() > 50, "{} templates", on_disk.len());
    let differing: Vec<&str> = on_disk
        .iter()
        .filter(|t| !embedded.contains(t))
        .chain(embedded.iter().filter(|t| !on_disk.contains(t)))
        .map(|(p, _)| p.as_str())
        .collect();
    assert!(
        differing.is_empty(),
        "the binary's templates are not those of {}: {differing:?} (a target/ built in another checkout? `cargo clean -p meshgen`)",
        dir.display()
    );
}

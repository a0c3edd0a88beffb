//! Tenant isolation, second pass (issue 28): replays of what a tenant (a
//! profile's editor) or a value could do to the platform, each failing on
//! the tree before its fix.

use super::*;

/// A values file (JSON is YAML) in a temporary directory, rendered.
pub(crate) fn render_values(values: &Value, sets: &[&str]) -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("values.yaml");
    std::fs::write(&file, serde_json::to_string_pretty(values).unwrap()).unwrap();
    render_files(vec![file], sets)
}

fn strings_of(v: &Value) -> Option<Vec<String>> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
}

// ---------------------------------------------------------------------
// dex runs no template engine over its config (point 4)

/// The files the dex image's entrypoint hands to gomplate for a
/// container. The image (dexidp/dex v2.45.1 Dockerfile:92-93) has
/// `ENTRYPOINT ["/usr/local/bin/docker-entrypoint"]` and
/// `CMD ["dex", "serve", "/etc/dex/config.docker.yaml"]`; Kubernetes runs
/// `command` instead of the ENTRYPOINT (then without the CMD) and `args`
/// instead of the CMD. For `dex serve`, the entrypoint runs gomplate over
/// every argument ending in `.tpl`, `.tmpl` or `.yaml`
/// (cmd/docker-entrypoint/main.go:71-95, gomplate at :58).
pub(crate) fn gomplate_inputs(container: &Value) -> Vec<String> {
    let command = strings_of(&container["command"]);
    let args = strings_of(&container["args"]);
    let mut argv = command
        .clone()
        .unwrap_or_else(|| vec!["/usr/local/bin/docker-entrypoint".into()]);
    argv.extend(args.unwrap_or_else(|| {
        match command {
            Some(_) => vec![],
            None => ["dex", "serve", "/etc/dex/config.docker.yaml"]
                .map(String::from)
                .to_vec(),
        }
    }));
    let entrypoint = ["docker-entrypoint", "/usr/local/bin/docker-entrypoint"];
    if !entrypoint.contains(&argv[0].as_str())
        || argv.len() < 3
        || !["dex", "/usr/local/bin/dex"].contains(&argv[1].as_str())
        || argv[2] != "serve"
    {
        return vec![];
    }
    argv[1..]
        .iter()
        .filter(|a| [".tpl", ".tmpl", ".yaml"].iter().any(|s| a.ends_with(s)))
        .cloned()
        .collect()
}

/// Every container of the tree running the dex image, with its path.
fn dex_containers(t: &Tree) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (path, d) in all_docs(t) {
        let spec = &d["spec"]["template"]["spec"];
        for list in ["initContainers", "containers"] {
            for c in spec[list].as_array().into_iter().flatten() {
                let image = c["image"].as_str().unwrap_or_default();
                if image.contains("/dexidp/dex") {
                    out.push((path.clone(), c.clone()));
                }
            }
        }
    }
    out
}

/// Connector names and configs that gomplate would evaluate: the name is
/// shown on dex's login page, so `{{ .Env.… }}` there published a secret
/// of dex's environment; a Secret's `{{` made gomplate fail and dex
/// crash-loop.
pub(crate) fn templating_tree() -> Tree {
    render_values(
        &json!({"deploykf_core": {"deploykf_auth": {"dex": {"connectors": [
            {"type": "oidc", "id": "corp", "name": "Corp {{ .Env.MESHGEN_DEX_CLIENT_SECRET_OAUTH2_PROXY }}",
             "config": {"issuer": "https://login.example.org", "clientID": "{{ (ds \"x\") }}"}},
            {"type": "oidc", "id": "kept", "name": "In a Secret",
             "configExistingSecret": "dex-connector", "configExistingSecretKey": "config.yaml"},
        ]}}}}),
        &[],
    )
}

pub(crate) fn templating_violations(t: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    let containers = dex_containers(t);
    if containers.is_empty() {
        out.push("no dex container".into());
    }
    for (path, c) in containers {
        let files = gomplate_inputs(&c);
        if !files.is_empty() {
            out.push(format!(
                "{path}: container {} hands {files:?} to gomplate",
                c["name"]
            ));
        }
    }
    out
}

#[test]
pub(crate) fn regression_issue_28_dex_evaluates_no_template() {
    for (name, t) in [
        ("defaults", render_files(vec![], &[])),
        ("dex-secrets", case("dex-secrets")),
        ("istio-ambient", case("istio-ambient")),
        ("templating", templating_tree()),
    ] {
        let v = templating_violations(&t);
        assert!(v.is_empty(), "{name}: {v:?}");
    }
    // The user's text reaches dex's config verbatim, read by dex alone.
    let t = templating_tree();
    let cm = one(&t, &format!("{AUTH_DIR}/ConfigMap-dex.yaml"));
    let c = common::docs(cm["data"]["connector-0000.yaml"].as_str().unwrap()).remove(0);
    assert_eq!(
        c[0]["name"],
        "Corp {{ .Env.MESHGEN_DEX_CLIENT_SECRET_OAUTH2_PROXY }}"
    );
    assert_eq!(c[0]["config"]["clientID"], "{{ (ds \"x\") }}");
    let d = one(&t, &format!("{AUTH_DIR}/Deployment-dex.yaml"));
    let dex = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        dex["command"],
        json!(["/usr/local/bin/dex", "serve", "/etc/dex/config.yaml"])
    );
}

#[test]
pub(crate) fn the_templating_replay_notices_a_missing_safeguard() {
    // The tree before the fix: `args: [dex, serve, /etc/dex/config.yaml]`
    // through the image's entrypoint.
    let mut t = templating_tree();
    let path = format!("{AUTH_DIR}/Deployment-dex.yaml");
    let d = &mut t.get_mut(&path).unwrap()[0];
    let c = &mut d["spec"]["template"]["spec"]["containers"][0];
    let c = c.as_object_mut().unwrap();
    c.remove("command");
    c.insert(
        "args".into(),
        json!(["dex", "serve", "/etc/dex/config.yaml"]),
    );
    let v = templating_violations(&t);
    assert!(
        v.len() == 1 && v[0].contains("/etc/dex/config.yaml"),
        "{v:?}"
    );
}

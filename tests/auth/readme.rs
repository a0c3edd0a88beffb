//! Tried as a new user would: the README's examples in the model.

use super::*;

// Tried as a new user would (issue 14): the README's apps example, with
// m2m on as the auth-m2m case turns it on, over https:// and http://.

/// The first `yaml` block after `heading` in README.md.
pub(crate) fn readme_yaml_after(heading: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let at = readme.find(heading).unwrap_or_else(|| panic!("{heading}"));
    let block = &readme[at..];
    let start = block.find("```yaml\n").unwrap() + "```yaml\n".len();
    let len = block[start..].find("```").unwrap();
    block[start..start + len].to_string()
}

#[test]
pub(crate) fn the_readme_apps_example_works_in_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let example = dir.path().join("apps.yaml");
    std::fs::write(&example, readme_yaml_after("### Adding an app")).unwrap();
    let mut inputs = common::cases_inputs(&["auth-m2m"], &[]);
    inputs.files.push(example);
    let t = render_inputs(&inputs);
    let mut bad = impersonation_violations(&t);
    bad.extend(listener_violations(&t, true));
    bad.extend(m2m_violations(&t));
    // The example names no targetPort or selector: its policies then
    // admit the gateway on whatever port the pods listen on.
    for (ns, app, port, path) in [
        ("kubeflow", "centraldashboard", 8082, "/"),
        ("minio", "minio-console", 9001, "/"),
        ("status", "statuspage", 80, "/"),
    ] {
        let req = Inbound {
            pod: pod(ns, &[("app", app)], port),
            principal: Some(GATEWAY_PRINCIPAL.into()),
            method: "GET".into(),
            path: path.into(),
            headers: BTreeMap::new(),
            token: None,
            sni: None,
        };
        if !at_destination(&t, &req) {
            bad.push(format!(
                "the gateway can not reach {app} on pod port {port}"
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

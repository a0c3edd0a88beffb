//! Profiles, on parsed documents: most-permissive access, group expansion,
//! notebook access, quotas, plugins, identities, and both outputs.

mod common;

use serde_json::{json, Value};
use std::collections::BTreeMap;

const DIR: &str = "manifests/deploykf-core/deploykf-profiles-generator";

fn render(sets: &[&str]) -> BTreeMap<String, Vec<Value>> {
    let g = common::generate(&common::cases_inputs(&["multi-team"], sets));
    let prefix = format!("{DIR}/");
    g.files
        .iter()
        .filter(|(p, _)| p.starts_with(DIR) && !p.ends_with("kustomization.yaml"))
        .map(|(p, text)| {
            (
                p.trim_start_matches(&prefix).to_string(),
                common::docs(text),
            )
        })
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

/// user email -> ClusterRole bound to it (owner and members).
fn roles(docs: &[Value]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for d in docs.iter().filter(|d| d["kind"] == "RoleBinding") {
        for subject in d["subjects"].as_array().unwrap() {
            if subject["kind"] == "User" {
                let role = d["roleRef"]["name"].as_str().unwrap().to_string();
                assert!(
                    out.insert(subject["name"].as_str().unwrap().to_string(), role)
                        .is_none(),
                    "bound twice"
                );
            }
        }
    }
    out
}

fn header_values(ap: &Value, rule: usize, key: &str) -> Value {
    ap["spec"]["rules"][rule]["when"][0][key].clone()
}

#[test]
fn one_file_per_profile_with_the_prefix() {
    let t = render(&[]);
    assert_eq!(
        t.keys().collect::<Vec<_>>(),
        vec!["kf-analytics.yaml", "kf-research.yaml", "kf-sandbox.yaml"]
    );
    let ns = find(&t["kf-research.yaml"], "Namespace", "kf-research").unwrap();
    assert_eq!(ns["metadata"]["labels"]["istio-injection"], "enabled");
    assert_eq!(ns["metadata"]["annotations"]["owner"], "alice@example.com");
}

#[test]
fn groups_expand_and_the_most_permissive_access_wins() {
    let t = render(&[]);
    // research: owner alice; research group (alice, bob) edit; analysts (carol, dan, bob) default view.
    assert_eq!(
        roles(&t["kf-research.yaml"]),
        BTreeMap::from([
            (
                "alice@example.com".to_string(),
                "kubeflow-admin".to_string()
            ),
            ("bob@example.com".to_string(), "kubeflow-edit".to_string()),
            ("carol@example.com".to_string(), "kubeflow-view".to_string()),
            (
                "dan+ml@example.com".to_string(),
                "kubeflow-view".to_string()
            ),
        ])
    );
    // analytics: bob is view through analysts but edit on his own.
    let r = roles(&t["kf-analytics.yaml"]);
    assert_eq!(r["bob@example.com"], "kubeflow-edit");
    assert_eq!(r["carol@example.com"], "kubeflow-view");
    assert_eq!(
        r["ml-platform-admin@example.com"], "kubeflow-admin",
        "default owner, lowercased"
    );
}

#[test]
fn only_owner_and_members_pass_the_gateway_and_notebooks_need_access() {
    let t = render(&[]);
    let docs = &t["kf-research.yaml"];
    let ap = find(docs, "AuthorizationPolicy", "profile-access").unwrap();
    assert_eq!(ap["spec"]["action"], "ALLOW");
    assert_eq!(
        ap["spec"]["rules"][0]["from"][0]["source"]["principals"],
        json!(["cluster.local/ns/deploykf-istio-gateway/sa/deploykf-gateway"])
    );
    assert_eq!(
        ap["spec"]["rules"][0]["when"][0]["key"],
        "request.headers[kubeflow-userid]"
    );
    assert_eq!(
        header_values(ap, 0, "values"),
        json!([
            "alice@example.com",
            "bob@example.com",
            "carol@example.com",
            "dan+ml@example.com"
        ])
    );
    assert_eq!(
        ap["spec"]["rules"][1]["from"][0]["source"]["namespaces"],
        json!(["kf-research"])
    );
    let nb = find(docs, "AuthorizationPolicy", "notebook-access").unwrap();
    assert_eq!(nb["spec"]["action"], "DENY");
    assert_eq!(
        nb["spec"]["rules"][0]["to"][0]["operation"]["paths"],
        json!(["/notebook/kf-research/*"])
    );
    // alice owns; bob got notebooks through research; carol and dan did not.
    assert_eq!(
        header_values(nb, 0, "notValues"),
        json!(["alice@example.com", "bob@example.com"])
    );
}

#[test]
fn quotas_and_plugins_follow_defaults_unless_the_profile_overrides() {
    let t = render(&[]);
    let q = find(&t["kf-research.yaml"], "ResourceQuota", "kf-resource-quota").unwrap();
    assert_eq!(q["spec"]["hard"]["requests.nvidia.com/gpu"], "2");
    assert!(
        find(
            &t["kf-analytics.yaml"],
            "ResourceQuota",
            "kf-resource-quota"
        )
        .is_none(),
        "{{}} disables the quota"
    );
    let sa = |f: &str| {
        find(&t[f], "ServiceAccount", "default-editor").unwrap()["metadata"]["annotations"].clone()
    };
    assert_eq!(
        sa("kf-research.yaml"),
        json!({"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/kubeflow-default"})
    );
    assert_eq!(
        sa("kf-analytics.yaml"),
        json!({"iam.gke.io/gcp-service-account": "analytics@ml-project.iam.gserviceaccount.com"})
    );
    assert_eq!(
        sa("kf-sandbox.yaml"),
        Value::Null,
        "plugins: [] disables the default plugin"
    );
    let ns = find(&t["kf-analytics.yaml"], "Namespace", "kf-analytics").unwrap();
    assert_eq!(
        ns["metadata"]["annotations"]["meshgen.dev/kfp-object-store-secret"],
        "analytics-s3"
    );
    assert_eq!(
        ns["metadata"]["annotations"]["meshgen.dev/kfp-object-store-secret-namespace"],
        "kubeflow"
    );
    let ns = find(&t["kf-research.yaml"], "Namespace", "kf-research").unwrap();
    assert_eq!(
        ns["metadata"]["annotations"]["meshgen.dev/kfp-object-store-secret"],
        "kubeflow-pipelines--profile-object-store-auth--research"
    );
}

#[test]
fn profile_output_renders_kubeflow_profiles_and_member_access() {
    let t = render(&["deploykf_core.deploykf_profiles_generator.output=profiles"]);
    let docs = &t["kf-research.yaml"];
    assert!(find(docs, "Namespace", "kf-research").is_none());
    let p = find(docs, "Profile", "kf-research").unwrap();
    assert_eq!(p["apiVersion"], "kubeflow.org/v1");
    assert_eq!(
        p["spec"]["owner"],
        json!({"kind": "User", "name": "alice@example.com"})
    );
    assert_eq!(p["spec"]["resourceQuotaSpec"]["hard"]["requests.cpu"], "16");
    assert_eq!(p["spec"]["plugins"][0]["kind"], "AwsIamForServiceAccount");
    let ap = find(
        docs,
        "AuthorizationPolicy",
        "user-bob-example-com-clusterrole-edit",
    )
    .unwrap();
    assert_eq!(header_values(ap, 0, "values"), json!(["bob@example.com"]));
    assert_eq!(roles(docs)["bob@example.com"], "kubeflow-edit");
}

#[test]
fn a_revision_labels_profile_namespaces_for_it() {
    let t = render(&["deploykf_dependencies.istio.revision=canary"]);
    let ns = find(&t["kf-sandbox.yaml"], "Namespace", "kf-sandbox").unwrap();
    assert_eq!(ns["metadata"]["labels"]["istio.io/rev"], "canary");
    assert!(ns["metadata"]["labels"].get("istio-injection").is_none());
}

/// Errors and warnings of a run of the `idp-groups` case with `sets`:
/// (errors, warnings), each as printed.
fn idp_diagnostics(sets: &[&str]) -> (Vec<String>, Vec<String>) {
    diagnostics(&["idp-groups"], sets)
}

fn diagnostics(cases: &[&str], sets: &[&str]) -> (Vec<String>, Vec<String>) {
    let inputs = common::cases_inputs(cases, sets);
    let mut session = meshgen::Session::default();
    let result = meshgen::generate(&inputs, &mut session);
    let show = |d: &meshgen::diagnostic::Diagnostic| d.display(&session.sources).to_string();
    let errors = match &result {
        Err(e) => e.0.iter().map(show).collect(),
        Ok(_) => Vec::new(),
    };
    let warnings = session
        .warnings
        .0
        .iter()
        .map(show)
        .filter(|w| w.starts_with("warning[") && !w.contains("clusterIssuer"))
        .collect();
    (errors, warnings)
}

const PGK: &str = "deploykf_core.deploykf_profiles_generator";

#[test]
fn idp_groups_are_exact_names_outside_kubernetes_own_groups() {
    assert_eq!(idp_diagnostics(&[]), (vec![], vec![]));
    let (errors, _) = idp_diagnostics(&[&format!("{PGK}.profiles[1].members[0].idpGroup=ml-*")]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("members[0].idpGroup`") && errors[0].contains("without \"*\""),
        "{errors:?}"
    );
    let (errors, _) = idp_diagnostics(&[&format!("{PGK}.profiles[1].members[0].idpGroup=")]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    // With no prefix, a group the IdP calls `system:masters` would be
    // Kubernetes' own.
    let (errors, _) = idp_diagnostics(&[
        &format!("{PGK}.idpGroups.prefix="),
        &format!("{PGK}.profiles[1].members[0].idpGroup=system:authenticated"),
    ]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("`system:authenticated`") && errors[0].contains("reserves"),
        "{errors:?}"
    );
    let (errors, _) = idp_diagnostics(&[&format!("{PGK}.idpGroups.prefix=system:oidc:")]);
    assert!(
        errors.len() == 1 && errors[0].contains("idpGroups.prefix`"),
        "{errors:?}"
    );
    let (errors, _) = idp_diagnostics(&[&format!("{PGK}.idpGroups.claim=groups[0]")]);
    assert!(
        errors.len() == 1 && errors[0].contains("idpGroups.claim`"),
        "{errors:?}"
    );
    // Exactly one kind per member.
    let (errors, _) = idp_diagnostics(&[&format!("{PGK}.profiles[1].members[0].user=alice")]);
    assert!(
        errors.len() == 1 && errors[0].contains("exactly one of"),
        "{errors:?}"
    );
}

#[test]
fn a_profile_no_member_can_reach_is_a_warning() {
    // dex without connectors (the defaults): its static passwords carry
    // no groups.
    let (errors, warnings) = diagnostics(
        &[],
        &[
            &format!("{PGK}.profiles[1].members[0].group=null"),
            &format!("{PGK}.profiles[1].members[0].idpGroup=ml-platform-admins"),
        ],
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w
            .contains("no member of profile `team-1-prod` can ever be admitted")
            && w.contains("profiles[1].members`")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("idpGroups.claim`") && w.contains("dex has no connectors")),
        "{warnings:?}"
    );
    // dex names the claim `groups`, and nothing else.
    let (_, warnings) = idp_diagnostics(&[&format!("{PGK}.idpGroups.claim=roles")]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("only in the `groups` claim, not `roles`")),
        "{warnings:?}"
    );
    // An external issuer may name it anything.
    let (errors, warnings) = idp_diagnostics(&[
        "deploykf_core.deploykf_auth.dex.enabled=false",
        "deploykf_core.deploykf_auth.oauth2Proxy.oidc.issuerUrl=https://login.example.org/realms/ml",
        "deploykf_core.deploykf_auth.oauth2Proxy.oidc.clientId=kubeflow",
        "deploykf_core.deploykf_auth.oauth2Proxy.oidc.clientSecret.existingSecret=oidc-client",
        &format!("{PGK}.idpGroups.claim=roles"),
    ]);
    assert!(
        errors.is_empty() && warnings.is_empty(),
        "{errors:?} {warnings:?}"
    );
    // A static group without users reaches nobody either.
    let file = std::env::temp_dir().join(format!("meshgen-idp-{}.yaml", std::process::id()));
    std::fs::write(
        &file,
        "deploykf_core:\n  deploykf_profiles_generator:\n    groups: [{id: empty, users: []}]\n    profiles: [{name: lonely, members: [{group: empty}]}]\n",
    )
    .unwrap();
    let mut inputs = common::cases_inputs(&[], &[]);
    inputs.files.push(file.clone());
    let mut session = meshgen::Session::default();
    let result = meshgen::generate(&inputs, &mut session);
    std::fs::remove_file(&file).unwrap();
    assert!(result.is_ok());
    let warnings: Vec<String> = session
        .warnings
        .0
        .iter()
        .map(|d| d.display(&session.sources).to_string())
        .filter(|w| w.contains("can ever be admitted"))
        .collect();
    assert!(
        warnings.len() == 1
            && warnings[0].contains("`lonely`")
            && warnings[0].contains("static groups have no users"),
        "{warnings:?}"
    );
}

//! `meshgen access matrix` agrees with the request model: every cell of
//! the golden cases' matrices, replayed as a concrete request through the
//! gateway and destination model of this directory (issue 31, point 3).

use super::*;
use crate::idp_groups::into_profile;
use crate::kubeflow::{union_of_files, EXCERPT, EXCERPT_FILES};
use meshgen::access::matrix::{self, Matrix, Subject, Target, NOBODY};

const DEX: &str = "https://deploykf.example.com/dex";

/// The gateway's RequestAuthentication rules: (issuer, forwards the token,
/// claim → header). The primary's directory only: another gateway's are
/// read in its view (`at_gateway`).
fn gateway_jwt_rules(t: &Tree) -> Vec<(String, bool, BTreeMap<String, String>)> {
    let dir = format!("{}/", meshgen::access::GATEWAY_DIR);
    all_docs(t)
        .filter(|(p, _)| p.starts_with(&dir))
        .map(|(_, d)| d)
        .filter(|d| {
            d["kind"] == "RequestAuthentication"
                && d["metadata"]["namespace"] == "deploykf-istio-gateway"
        })
        .flat_map(|d| d["spec"]["jwtRules"].as_array().unwrap().clone())
        .map(|r| {
            let headers = r["outputClaimToHeaders"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| {
                    (
                        o["claim"].as_str().unwrap().to_string(),
                        o["header"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (
                r["issuer"].as_str().unwrap().to_string(),
                r["forwardOriginalToken"] == true,
                headers,
            )
        })
        .collect()
}

/// A request of `subject` to `path` of profile `ns`, at its workload:
/// through the gateway (the headers it writes from the verified token,
/// the token forwarded when its rule says so) or from the subject's pods.
/// With several gateways (`several`), a subject's row `via` a gateway is
/// replayed through that gateway only (in its view, `at_gateway`), a row
/// without `via` from the subject's pods only.
fn replay(t: &Tree, ns: &str, subject: &Subject, path: &str, several: bool) -> bool {
    let view;
    let t = if !several || subject.via.is_empty() {
        t
    } else {
        let dir = meshgen::access::gateway_dirs(t)
            .into_iter()
            .find(|d| {
                t.get(&format!("{d}/Deployment.yaml"))
                    .is_some_and(|docs| docs[0]["metadata"]["name"] == subject.via.as_str())
            })
            .unwrap_or_else(|| panic!("no gateway {}", subject.via));
        view = meshgen::access::at_gateway(t, &dir);
        &view
    };
    let (gateway_ways, mesh_ways) = (!several || !subject.via.is_empty(), subject.via.is_empty());
    let gateway = gateway_principal(t);
    let rules = gateway_jwt_rules(t);
    let through_gateway = |iss: &str, claims: Value| -> bool {
        // Without the gateway's RequestAuthentication (Kubeflow's
        // gateway under the preset), dex's `email` goes into
        // `kubeflow-userid` as oauth2-proxy's header does.
        let (fwd, map) = rules
            .iter()
            .find(|(i, _, _)| i == iss)
            .map(|(_, f, m)| (*f, m.clone()))
            .unwrap_or((false, claims_map(&[("email", "kubeflow-userid")])));
        let headers = map
            .iter()
            .filter_map(|(claim, header)| {
                claims[claim]
                    .as_str()
                    .map(|v| (header.clone(), v.to_string()))
            })
            .collect();
        let req = Inbound {
            pod: pod("", &[], 0),
            principal: Some(gateway.clone()),
            method: "GET".into(),
            path: path.into(),
            headers,
            token: fwd.then(|| (iss.to_string(), claims)),
            sni: None,
        };
        into_profile(t, ns, &req)
    };
    let in_mesh = |principal: String| {
        let req = Inbound {
            pod: pod("", &[], 0),
            principal: Some(principal),
            method: "GET".into(),
            path: path.into(),
            headers: BTreeMap::new(),
            token: None,
            sni: None,
        };
        into_profile(t, ns, &req)
    };
    let user = |email: &str, groups: &[&str]| {
        through_gateway(
            DEX,
            json!({"sub": email, "email": email, "aud": "oauth2-proxy", "groups": groups}),
        )
    };
    match subject.kind {
        "user" => user(&subject.name, &[]),
        "any-user" => user(NOBODY, &[]),
        "idp-group" => user(NOBODY, &[subject.name.as_str()]),
        "service-account" => {
            let (sns, sa) = subject.name.split_once('/').unwrap();
            let sub = format!("system:serviceaccount:{sns}:{sa}");
            (gateway_ways
                && rules
                    .iter()
                    .filter(|(_, _, m)| m.contains_key("sub"))
                    .any(|(iss, _, _)| through_gateway(iss, json!({"sub": sub}))))
                || (mesh_ways && in_mesh(format!("cluster.local/ns/{sns}/sa/{sa}")))
        }
        "namespace" => in_mesh(format!("cluster.local/ns/{}/sa/default", subject.name)),
        "workload" => in_mesh(subject.name.clone()),
        "any-workload" => in_mesh("cluster.local/ns/meshgen-nowhere/sa/default".into()),
        other => panic!("subject kind {other} has no replay"),
    }
}

fn claims_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    claims(pairs)
}

/// Every profile cell (`api`, `notebooks`) of `m` for every subject it
/// names, against the replay; `skip`: cells decided by objects the tree
/// does not hold (a Kubeflow Profile's run-time policy). Returns the
/// disagreements.
fn disagreements(t: &Tree, m: &Matrix, skip: &dyn Fn(&Target, &[String]) -> bool) -> Vec<String> {
    let subjects: BTreeSet<(&Target, &Subject)> = m
        .cells
        .keys()
        .filter(|(t, _, _)| t.kind == "profile")
        .map(|(t, s, _)| (t, s))
        .collect();
    let several = m.several;
    let mut out = Vec::new();
    let mut checked = 0;
    for (target, subject) in subjects {
        for (cap, path) in [
            ("api", "/".to_string()),
            ("notebooks", format!("/notebook/{}/nb/", target.name)),
        ] {
            let cell = m.get(target, subject, cap);
            if cell.is_some_and(|g| skip(target, &g.by)) {
                continue;
            }
            let says = cell.is_some_and(|g| g.level == "yes");
            let replayed = replay(t, &target.name, subject, &path, several);
            checked += 1;
            if says != replayed {
                out.push(format!(
                    "{} {}: {cap} of {}: matrix {}, replay {}",
                    subject.kind,
                    m.label(subject),
                    target.name,
                    cell.map_or("no", |g| g.level.as_str()),
                    if replayed { "allowed" } else { "denied" }
                ));
            }
        }
    }
    assert!(checked >= 4, "only {checked} cells checked");
    out
}

use std::collections::BTreeSet;

fn tree_of(t: &Tree) -> meshgen::access::tree::Tree {
    t.clone()
}

#[test]
fn every_cell_of_the_golden_matrices_agrees_with_the_request_model() {
    let mut failures = Vec::new();
    for name in [
        "istio-sidecar",
        "istio-ambient",
        "idp-groups",
        "auth-m2m",
        "multi-team",
        "gateway-api-ambient",
        "two-gateways",
    ] {
        let t = case(name);
        let m = matrix::compute(&tree_of(&t));
        for d in disagreements(&t, &m, &|_, _| false) {
            failures.push(format!("{name}: {d}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Under `--preset kubeflow` a Profile's owner is admitted by the policy
/// Kubeflow's profile controller makes at run time: on the tree with the
/// controllers' objects for `team-1` (the repository's excerpt of the
/// built Kubeflow YAML), every cell of `team-1` agrees; elsewhere the
/// cells that policy decides are left out.
#[test]
fn the_kubeflow_matrix_agrees_with_the_request_model_on_the_union() {
    let plain = case("kubeflow");
    let union = union_of_files(plain.clone(), &root().join(EXCERPT), EXCERPT_FILES);
    let m = matrix::compute(&tree_of(&plain));
    let by_profile = |t: &Target, by: &[String]| {
        t.name != "team-1" && by.iter().any(|b| b.starts_with("Profile/"))
    };
    let mut failures = disagreements(&union, &m, &by_profile);
    // On the union, the run-time policy is in the tree: same cells.
    let mu = matrix::compute(&tree_of(&union));
    failures.extend(disagreements(&union, &mu, &|t, _| t.name != "team-1"));
    assert!(failures.is_empty(), "{failures:#?}");
    // Its row names the gateway users come through (the only one).
    let owner = m
        .cells
        .keys()
        .map(|(_, s, _)| s)
        .find(|s| s.kind == "user" && s.name == "admin@example.com")
        .expect("admin@example.com in the matrix")
        .clone();
    let team1 = Target {
        kind: "profile",
        name: "team-1".into(),
    };
    assert_eq!(m.get(&team1, &owner, "role").unwrap().level, "admin");
}

/// The replay notices a wrong matrix: a cell flipped makes it fail.
#[test]
fn the_agreement_check_notices_a_wrong_cell() {
    let t = case("idp-groups");
    let mut m = matrix::compute(&tree_of(&t));
    let key = m
        .cells
        .keys()
        .find(|(t, s, c)| t.kind == "profile" && s.kind == "idp-group" && *c == "notebooks")
        .unwrap()
        .clone();
    m.cells.remove(&key);
    assert_eq!(disagreements(&t, &m, &|_, _| false).len(), 1);
}

/// `diff --access` computes only the profiles a change touches when
/// nothing else reads them: on each change below, its lines are those of
/// the two whole matrices compared.
#[test]
fn the_access_delta_of_a_few_files_is_the_delta_of_the_whole_matrices() {
    use meshgen::access::delta;
    let pg = "deploykf_core.deploykf_profiles_generator";
    let old = common::generate(&common::cases_inputs(&["apps", "multi-team"], &[]));
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in &old.files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let whole = |g: &meshgen::Generated| matrix::compute(&meshgen::access::tree::from_generated(g));
    let before = whole(&old);
    let member = format!("{pg}.profiles[2].members[0].user=carol");
    let role = format!("{pg}.profiles[1].members[1].access.role=view");
    let profile = format!("{pg}.profiles[3].name=new-team");
    let ambient = "deploykf_dependencies.istio.dataplaneMode=ambient".to_string();
    let public = "deploykf_core.deploykf_istio_gateway.apps[1].auth=none".to_string();
    let mut lines = 0;
    for set in [&member, &role, &profile, &ambient, &public] {
        let new = common::generate(&common::cases_inputs(
            &["apps", "multi-team"],
            &[set.as_str()],
        ));
        let expected: Vec<String> = delta::changes(&before, &whole(&new))
            .iter()
            .map(|c| c.line())
            .collect();
        let got: Vec<String> = delta::of_dir(dir.path(), &new.files)
            .unwrap()
            .iter()
            .map(|c| c.line())
            .collect();
        assert_eq!(got, expected, "{set}");
        // Moving to ambient changes the way, not who gets in.
        assert_eq!(got.is_empty(), set == &ambient, "{set}: {got:#?}");
        lines += got.len();
    }
    assert!(lines > 5);
}

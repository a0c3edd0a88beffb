//! Golden trees: each case under `tests/cases/<case>/` is rendered and
//! compared byte for byte with `tests/golden/<case>/` (the marker file
//! excluded, so a version bump does not churn every fixture).
//!
//! On a difference the test prints a unified diff. To accept a change,
//! run `MESHGEN_UPDATE_GOLDEN=1 cargo test --test golden` and review the
//! resulting `git diff tests/golden` before committing it (CI refuses the
//! variable).
//!
//! Cases and golden trees pair one to one: a case without a golden tree
//! (or a test), a golden tree without a case, and a file in a golden tree
//! that its case does not render all fail, saying what to do. Every
//! template under `templates/` (partials aside) must be rendered by at
//! least one case.

mod common;

use common::{case_inputs, root};
use meshgen::values::ValueInputs;
use meshgen::write::{diff, Files, MARKER};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn render(inputs: ValueInputs) -> Files {
    let mut files = common::generate(&inputs).files;
    files.remove(MARKER);
    files
}

fn write_plain(dir: &Path, files: &Files) {
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    for (rel, text) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// Files of a golden tree that the case does not render (the marker
/// included: golden trees never hold it), with what to do about them.
fn stray_files(case: &str, golden: &Path, files: &Files) -> Vec<String> {
    common::walk(golden)
        .into_iter()
        .map(|rel| rel.to_string_lossy().replace('\\', "/"))
        .filter(|rel| !files.contains_key(rel))
        .map(|rel| {
            format!(
                "tests/golden/{case}/{rel} is not rendered by tests/cases/{case}: delete it, or rewrite the whole tree with MESHGEN_UPDATE_GOLDEN=1 cargo test --test golden, and review git diff"
            )
        })
        .collect()
}

fn check_case(case: &str) {
    let files = render(case_inputs(case));
    let golden = root().join("tests/golden").join(case);
    if std::env::var_os("MESHGEN_UPDATE_GOLDEN").is_some() {
        assert!(
            std::env::var_os("CI").is_none(),
            "MESHGEN_UPDATE_GOLDEN is for accepting a change on a developer machine, not in CI"
        );
        write_plain(&golden, &files);
        return;
    }
    assert!(
        golden.is_dir(),
        "case {case} has no golden tree tests/golden/{case}: write it with MESHGEN_UPDATE_GOLDEN=1 cargo test --test golden, review it, and commit it"
    );
    let stray = stray_files(case, &golden, &files);
    assert!(stray.is_empty(), "{}", stray.join("\n"));
    let d = diff(&golden, &files, &[]).unwrap();
    assert!(
        d.is_empty(),
        "rendered tree differs from tests/golden/{case} (set MESHGEN_UPDATE_GOLDEN=1 to accept, then review git diff):\n{d}"
    );
}

#[test]
fn golden_defaults() {
    check_case("defaults");
}

#[test]
fn golden_deploykf_sample() {
    check_case("deploykf-sample");
}

#[test]
fn golden_own_istio_and_gateway() {
    check_case("own-istio-and-gateway");
}

#[test]
fn golden_nonstandard_ports() {
    check_case("nonstandard-ports");
}

#[test]
fn golden_own_istio() {
    check_case("own-istio");
}

#[test]
fn golden_own_cert_manager() {
    check_case("own-cert-manager");
}

#[test]
fn golden_own_gateway_deployment() {
    check_case("own-gateway-deployment");
}

#[test]
fn golden_canary_revision_cni() {
    check_case("canary-revision-cni");
}

#[test]
fn golden_argocd_remote() {
    check_case("argocd-remote");
}

#[test]
fn golden_argocd_local() {
    check_case("argocd-local");
}

#[test]
fn golden_flux() {
    check_case("flux");
}

#[test]
fn golden_none() {
    check_case("none");
}

#[test]
fn golden_multi_team() {
    check_case("multi-team");
}

#[test]
fn golden_egress_registry_only() {
    check_case("egress-registry-only");
}

#[test]
fn golden_egress_gateway() {
    check_case("egress-gateway");
}

#[test]
fn golden_http_behind_proxy() {
    check_case("http-behind-proxy");
}

#[test]
fn golden_profiles_sharded() {
    check_case("profiles-sharded");
}

#[test]
fn golden_idp_groups() {
    check_case("idp-groups");
}

#[test]
fn golden_auth_external_issuer() {
    check_case("auth-external-issuer");
}

#[test]
fn golden_auth_m2m() {
    check_case("auth-m2m");
}

#[test]
fn golden_dex_secrets() {
    check_case("dex-secrets");
}

#[test]
fn golden_istio_sidecar() {
    check_case("istio-sidecar");
}

/// `api: gateway-api` with sidecars: `istio-sidecar` plus that one key; the
/// golden trees differ by exactly what the routing API changes.
#[test]
fn golden_gateway_api_sidecar() {
    check_case("gateway-api-sidecar");
}

/// `dataplaneMode: ambient` with Istio's own routing API: `istio-sidecar`
/// plus that one key; the trees differ by exactly what ambient changes
/// (namespace labels, the profile waypoints, the L4/L7 policy split).
#[test]
fn golden_istio_ambient() {
    check_case("istio-ambient");
}

/// Both keys: `api: gateway-api` and `dataplaneMode: ambient`.
#[test]
fn golden_gateway_api_ambient() {
    check_case("gateway-api-ambient");
}

#[test]
fn golden_apps() {
    check_case("apps");
}

#[test]
fn golden_extra_manifests() {
    check_case("extra-manifests");
}

#[test]
fn golden_deploykf_older_release() {
    check_case("deploykf-older-release");
}

/// Issue 27: `--preset kubeflow` (the case's `preset` file).
#[test]
fn golden_kubeflow() {
    check_case("kubeflow");
}

/// Issue 32: access logs, metrics, traces and dashboards, on the
/// `api: istio` + sidecar edge (everything on, JSON logs with the user).
#[test]
fn golden_telemetry_sidecar() {
    check_case("telemetry-sidecar");
}

/// Issue 32 on the `api: gateway-api` + ambient edge: text logs and traces
/// on the gateway and every waypoint, scrape annotations only.
#[test]
fn golden_telemetry_ambient() {
    check_case("telemetry-ambient");
}

/// Issue 27: `gateway.wildcardHost` (KServe's host-based URLs) on the preset.
#[test]
fn golden_kserve_wildcard() {
    check_case("kserve-wildcard");
}

/// What is wrong with the pairing of `cases/` and `golden/` under `tests`
/// (`golden_rs` is this file's text, to find each case's test), with what
/// to do about it.
fn orphans(tests: &Path, golden_rs: &str) -> Vec<String> {
    let names = |dir: &str| -> BTreeSet<String> {
        std::fs::read_dir(tests.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let (cases, goldens) = (names("cases"), names("golden"));
    let mut out = Vec::new();
    for case in &cases {
        if !goldens.contains(case) {
            out.push(format!("case {case} has no golden tree tests/golden/{case}: write it with MESHGEN_UPDATE_GOLDEN=1 cargo test --test golden, review it, and commit it"));
        }
        if !golden_rs.contains(&format!("check_case(\"{case}\")")) {
            out.push(format!("case {case} has no test: add `#[test] fn golden_{}() {{ check_case(\"{case}\"); }}` to tests/golden.rs", case.replace('-', "_")));
        }
    }
    for golden in goldens.difference(&cases) {
        out.push(format!("tests/golden/{golden} has no case tests/cases/{golden}: restore the case, or delete the golden tree (git rm -r tests/golden/{golden})"));
    }
    out
}

#[test]
fn every_case_has_a_test_and_a_golden_tree_and_every_golden_tree_a_case() {
    let this = std::fs::read_to_string(root().join("tests/golden.rs")).unwrap();
    let problems = orphans(&root().join("tests"), &this);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The pairing checks fire: on a made-up layout with one of each defect.
#[test]
fn orphans_and_stray_files_are_reported_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in [
        "cases/paired",
        "cases/no-golden",
        "golden/paired",
        "golden/no-case",
    ] {
        std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
    }
    let problems = orphans(
        tmp.path(),
        r#"check_case("paired") check_case("no-golden")"#,
    );
    assert_eq!(
        problems,
        [
            "case no-golden has no golden tree tests/golden/no-golden: write it with MESHGEN_UPDATE_GOLDEN=1 cargo test --test golden, review it, and commit it",
            "tests/golden/no-case has no case tests/cases/no-case: restore the case, or delete the golden tree (git rm -r tests/golden/no-case)",
        ]
    );
    let untested = orphans(tmp.path(), r#"check_case("no-golden")"#);
    assert!(
        untested.contains(&"case paired has no test: add `#[test] fn golden_paired() { check_case(\"paired\"); }` to tests/golden.rs".to_string()),
        "{untested:?}"
    );
    let golden = tmp.path().join("golden/paired");
    std::fs::create_dir_all(golden.join("a")).unwrap();
    for f in ["a/kept.yaml", "a/stray.yaml", MARKER] {
        std::fs::write(golden.join(f), "x\n").unwrap();
    }
    let files: Files = [("a/kept.yaml".to_string(), "x\n".to_string())].into();
    let stray = stray_files("paired", &golden, &files);
    assert_eq!(stray.len(), 2, "{stray:?}");
    assert!(stray[0].starts_with(&format!(
        "tests/golden/paired/{MARKER} is not rendered by tests/cases/paired: delete it"
    )));
    assert!(stray[1].starts_with("tests/golden/paired/a/stray.yaml is not rendered"));
}

#[test]
fn rendering_twice_is_byte_identical() {
    for case in ["defaults", "own-istio-and-gateway"] {
        assert_eq!(render(case_inputs(case)), render(case_inputs(case)));
    }
}

/// A partial (`_name`) is included by other templates, never rendered on
/// its own.
fn is_partial(template: &str) -> bool {
    template
        .rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with('_'))
}

/// Templates (partials aside) that no case's render came from.
fn unexercised<'a>(templates: &[&'a str], used: &BTreeSet<&str>) -> Vec<&'a str> {
    templates
        .iter()
        .copied()
        .filter(|t| !is_partial(t) && !used.contains(t))
        .collect()
}

#[test]
fn every_template_is_rendered_by_some_golden_case() {
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut per_case: BTreeMap<String, usize> = BTreeMap::new();
    for case in common::cases() {
        let g = common::generate(&case_inputs(&case));
        per_case.insert(case, g.templates.len());
        used.extend(g.templates.into_values());
    }
    let all: Vec<&str> = meshgen::render::templates()
        .iter()
        .map(|(p, _)| *p)
        .collect();
    assert!(
        all.len() > 50 && per_case.values().all(|n| *n > 0),
        "{all:?} {per_case:?}"
    );
    let missing = unexercised(&all, &used);
    assert!(
        missing.is_empty(),
        "no case under tests/cases renders these templates; add or extend a case so one does, and write its golden tree:\n{}",
        missing.join("\n")
    );
}

#[test]
fn unexercised_templates_are_found_and_partials_skipped() {
    let all = [
        "a/X.yaml.j2",
        "a/_pod.yaml.j2",
        "_top.yaml.j2",
        "b/Y.yaml.j2",
    ];
    let used = BTreeSet::from(["a/X.yaml.j2"]);
    assert_eq!(unexercised(&all, &used), ["b/Y.yaml.j2"]);
}

/// Every file under this checkout's `templates/`, relative, sorted.
fn template_files(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            template_files(&path, root, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// The binary embeds exactly this checkout's templates, sorted by path
/// (a build reused from another checkout must not bring that one's).
#[test]
fn embeds_this_checkouts_templates_in_path_order() {
    let dir = root().join("templates");
    let mut on_disk = Vec::new();
    template_files(&dir, &dir, &mut on_disk);
    on_disk.sort();
    let embedded: Vec<(String, String)> = meshgen::render::templates()
        .iter()
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect();
    assert_eq!(embedded, on_disk);
}

/// Issue 29, point 6: `patches` in the components' kustomization.yaml
/// (CI builds every golden kustomization with `kubectl kustomize`).
#[test]
fn golden_patches() {
    check_case("patches");
}

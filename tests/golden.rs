//! Golden trees: each case under `tests/cases/<case>/` is rendered and
//! compared byte for byte with `tests/golden/<case>/` (the marker file
//! excluded, so a version bump does not churn every fixture).
//!
//! On a difference the test prints a unified diff. To accept a change,
//! run `MESHGEN_UPDATE_GOLDEN=1 cargo test --test golden` and review the
//! resulting `git diff tests/golden` before committing it.

mod common;

use meshgen::values::ValueInputs;
use meshgen::write::{diff, Files, MARKER};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

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

fn check_case(case: &str) {
    let files = render(common::case_inputs(case));
    let golden = root().join("tests/golden").join(case);
    if std::env::var_os("MESHGEN_UPDATE_GOLDEN").is_some() {
        write_plain(&golden, &files);
        return;
    }
    let d = diff(&golden, &files).unwrap();
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
fn golden_http_behind_proxy() {
    check_case("http-behind-proxy");
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
fn golden_apps() {
    check_case("apps");
}

#[test]
fn every_case_has_a_test_and_a_golden_tree() {
    let this = std::fs::read_to_string(root().join("tests/golden.rs")).unwrap();
    for case in common::cases() {
        assert!(
            this.contains(&format!("check_case(\"{case}\")")),
            "case {case} has no test"
        );
        assert!(
            root().join("tests/golden").join(&case).is_dir(),
            "case {case} has no golden tree"
        );
    }
}

#[test]
fn rendering_twice_is_byte_identical() {
    for case in ["defaults", "own-istio-and-gateway"] {
        assert_eq!(
            render(common::case_inputs(case)),
            render(common::case_inputs(case))
        );
    }
}

//! Golden trees: each case under `tests/cases/<case>/` is rendered and
//! compared byte for byte with `tests/golden/<case>/` (the marker file
//! excluded, so a version bump does not churn every fixture).
//!
//! On a difference the test prints a unified diff. To accept a change,
//! run `MESHGEN_UPDATE_GOLDEN=1 cargo test --test golden` and review the
//! resulting `git diff tests/golden` before committing it.

mod common;

use meshgen::values::{SetArg, ValueInputs};
use meshgen::write::{diff, Files, MARKER};
use std::path::{Path, PathBuf};

const DEPLOYKF_SAMPLE: &str = "../shared/reference/deploykf-0.1.5/sample-values.yaml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn render(inputs: ValueInputs) -> Files {
    let mut files = common::generate(&inputs).files;
    files.remove(MARKER);
    files
}

fn case_inputs(case: &str) -> ValueInputs {
    let dir = root().join("tests/cases").join(case);
    let mut files = Vec::new();
    if case == "deploykf-sample" {
        files.push(root().join(DEPLOYKF_SAMPLE));
    }
    let values = dir.join("values.yaml");
    if values.exists() {
        files.push(values);
    }
    let sets = std::fs::read_to_string(dir.join("set-args"))
        .map(|t| {
            t.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| SetArg {
                    text: l.to_string(),
                    force_string: false,
                })
                .collect()
        })
        .unwrap_or_default();
    ValueInputs { files, sets }
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
    let files = render(case_inputs(case));
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
    let mut cases: Vec<String> = std::fs::read_dir(root().join("tests/cases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    let this = std::fs::read_to_string(root().join("tests/golden.rs")).unwrap();
    for case in cases {
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
        assert_eq!(render(case_inputs(case)), render(case_inputs(case)));
    }
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

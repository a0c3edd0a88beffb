//! The harness of the helm-backed chart tests (`helm_*.rs`, each a
//! libtest-mimic binary with `harness = false`).
//!
//! Needs a helm binary: `$MESHGEN_HELM` if set (and then only that one),
//! else `target/tools/bin/helm` (`../shared/tools/get-helm target/tools/bin`
//! installs it there), else `helm` on PATH. Decided at run time: without
//! helm every test is reported as *ignored*, with the reason, never as
//! passed; likewise without `../shared/reference` (the upstream charts).
//! With `MESHGEN_REQUIRE_TOOLS=1` (as `.ci/run` sets) every test
//! *fails* instead.

use super::root;
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The helm these tests use.
#[derive(Clone)]
enum Helm {
    Found(PathBuf),
    /// None was found: the tests are ignored (or fail, when required).
    Missing(String),
    /// `MESHGEN_HELM` names one that does not run: always a failure.
    Broken(String),
}

fn find_helm() -> Helm {
    // The charts these tests render are upstream's, from `../shared`.
    let charts = root().join("../shared/reference");
    if !charts.is_dir() {
        return Helm::Missing(format!(
            "{} not found: the chart tests render upstream's charts from ../shared beside the repository",
            charts.display()
        ));
    }
    let works = |h: &Path| {
        Command::new(h)
            .args(["version", "--short"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Some(h) = std::env::var_os("MESHGEN_HELM") {
        let h = PathBuf::from(h);
        return if works(&h) {
            Helm::Found(h)
        } else {
            Helm::Broken(format!(
                "MESHGEN_HELM={} does not run `helm version`",
                h.display()
            ))
        };
    }
    match [root().join("target/tools/bin/helm"), PathBuf::from("helm")]
        .into_iter()
        .find(|h| works(h))
    {
        Some(h) => Helm::Found(h),
        None => Helm::Missing(
            "no helm found: set MESHGEN_HELM, or run ../shared/tools/get-helm target/tools/bin"
                .into(),
        ),
    }
}

/// Whether a missing tool fails the tests instead of ignoring them.
pub fn tools_required() -> bool {
    std::env::var_os("MESHGEN_REQUIRE_TOOLS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A test given the helm binary to run.
pub type HelmTest = fn(&Path);

/// Run `tests` as libtest-mimic trials and exit.
pub fn run(tests: &[(&'static str, HelmTest)]) -> ! {
    run_named(
        tests
            .iter()
            .map(|&(name, test)| (name.to_string(), Box::new(test) as NamedTest))
            .collect(),
    )
}

/// A test of [`run_named`]: any closure given the helm binary.
pub type NamedTest = Box<dyn Fn(&Path) + Send + Sync>;

/// Run `tests`, named at run time (e.g. `1.28.10::defaults...`), as
/// libtest-mimic trials and exit.
pub fn run_named(tests: Vec<(String, NamedTest)>) -> ! {
    let args = Arguments::from_args();
    let helm = find_helm();
    let required = tools_required();
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            let helm = helm.clone();
            Trial::ignorable_test(name, move || match helm {
                Helm::Found(h) => {
                    test(&h);
                    Ok(Completion::Completed)
                }
                Helm::Missing(why) if required => Err(Failed::from(format!(
                    "{why}; MESHGEN_REQUIRE_TOOLS is set, so a missing helm is a failure"
                ))),
                Helm::Missing(why) => Ok(Completion::ignored_with(why)),
                Helm::Broken(why) => Err(Failed::from(why)),
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

/// Write the files of `chart_dir` (a directory of the generated tree) to
/// `to`, the wrapper chart as meshgen wrote it.
pub fn write_chart(files: &meshgen::write::Files, chart_dir: &str, to: &Path) {
    for (path, text) in files {
        if let Some(rel) = path.strip_prefix(&format!("{chart_dir}/")) {
            let target = to.join(rel);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(target, text).unwrap();
        }
    }
}

/// `helm template <release> <chart> --namespace <ns> --include-crds`,
/// parsed.
pub fn template(
    helm: &Path,
    release: &str,
    chart: &Path,
    namespace: &str,
) -> Vec<serde_json::Value> {
    let out = Command::new(helm)
        .args(["template", release])
        .arg(chart)
        .args(["--namespace", namespace, "--include-crds"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm template failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    super::docs(&String::from_utf8(out.stdout).unwrap())
}

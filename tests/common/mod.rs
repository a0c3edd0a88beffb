//! Helpers shared by the integration tests: one file walker, one way to
//! run the real binary, one way to load a case of `tests/cases/`, and the
//! pipeline run on value files and `--set` arguments.
#![allow(dead_code)] // each test crate uses its own subset

pub mod helm;

use meshgen::values::{SetArg, ValueInputs};
use meshgen::Session;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The deployKF sample values the `deploykf-sample` case renders.
pub const DEPLOYKF_SAMPLE: &str = "../shared/reference/deploykf-0.1.5/sample-values.yaml";

/// The crate's directory.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------
// Files

/// Every file under `dir` (directories descended, not listed), as paths
/// relative to `dir`, in sorted order.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    fn go(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for e in entries {
            let e = e.unwrap();
            let rel = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                go(&e.path(), &rel, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    go(dir, Path::new(""), &mut out);
    out.sort();
    out
}

/// Every file under `dir` with its bytes, by path relative to `dir`.
pub fn read_tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walk(dir)
        .into_iter()
        .map(|rel| {
            let bytes = std::fs::read(dir.join(&rel)).unwrap();
            (rel, bytes)
        })
        .collect()
}

/// Copy every file under `from` to the same place under `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    for rel in walk(from) {
        let target = to.join(&rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&rel), target).unwrap();
    }
}

// ---------------------------------------------------------------------
// The binary

/// The real `meshgen` binary, to be run in `dir`.
pub fn meshgen_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshgen"));
    cmd.current_dir(dir);
    cmd
}

/// Run the real binary in `dir` with `args`.
pub fn run_meshgen(dir: &Path, args: &[&str]) -> Output {
    meshgen_command(dir)
        .args(args)
        .output()
        .expect("run meshgen")
}

/// Run the real binary in `dir` with `args`, `stdin` on its standard
/// input, killing it after `timeout`: a run that blocks fails the test
/// instead of hanging it (the output then has no exit code).
pub fn run_meshgen_bounded(
    dir: &Path,
    args: &[&str],
    stdin: Option<Vec<u8>>,
    timeout: std::time::Duration,
) -> Output {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let mut child = meshgen_command(dir)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run meshgen");
    let feeder = child.stdin.take().map(|mut pipe| {
        let bytes = stdin.unwrap_or_default();
        // meshgen may stop reading early (that is what a bound does).
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = pipe.read_to_end(&mut out);
            out
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for meshgen") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait for meshgen");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

// ---------------------------------------------------------------------
// Cases

/// The names of the cases under `tests/cases/`, sorted.
pub fn cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(root().join("tests/cases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    cases
}

/// The inputs of `tests/cases/<case>/`: its `values.yaml` (after the
/// deployKF sample for `deploykf-sample`), and one `--set` per line of its
/// `set-args`; both optional.
pub fn case_inputs(case: &str) -> ValueInputs {
    cases_inputs(&[case], &[])
}

/// The inputs of several cases, applied in order (a later one wins), then
/// `sets`.
pub fn cases_inputs(cases: &[&str], sets: &[&str]) -> ValueInputs {
    let mut all = ValueInputs::default();
    for case in cases {
        let dir = root().join("tests/cases").join(case);
        assert!(dir.is_dir(), "no case tests/cases/{case}");
        // A case may build on another: `base` names it, and its inputs
        // come first (the four routing × data-plane combinations share
        // one values file this way).
        if let Ok(base) = std::fs::read_to_string(dir.join("base")) {
            let base = cases_inputs(&[base.trim()], &[]);
            all.files.extend(base.files);
            all.sets.extend(base.sets);
        }
        // A case may render with a preset (`--preset`): its `preset` file names it.
        if let Ok(preset) = std::fs::read_to_string(dir.join("preset")) {
            all.preset = Some(preset.trim().to_string());
        }
        if *case == "deploykf-sample" {
            all.files.push(root().join(DEPLOYKF_SAMPLE));
        }
        let values = dir.join("values.yaml");
        if values.exists() {
            all.files.push(values);
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("set-args")) {
            all.sets.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| SetArg {
                        text: l.to_string(),
                        force_string: false,
                    }),
            );
        }
    }
    all.sets.extend(inputs(vec![], sets).sets);
    all
}

// ---------------------------------------------------------------------
// The pipeline

pub fn inputs(files: Vec<PathBuf>, sets: &[&str]) -> ValueInputs {
    ValueInputs {
        preset: None,
        files,
        sets: sets
            .iter()
            .map(|s| SetArg {
                text: s.to_string(),
                force_string: false,
            })
            .collect(),
    }
}

/// Generate, or fail the test printing every diagnostic.
pub fn generate(inputs: &ValueInputs) -> meshgen::Generated {
    let mut session = Session::default();
    match meshgen::generate(inputs, &mut session) {
        Ok(g) => g,
        Err(e) => {
            let text: Vec<String> =
                e.0.iter()
                    .map(|d| d.display(&session.sources).to_string())
                    .collect();
            panic!("generate failed:\n{}", text.join("\n"));
        }
    }
}

/// Every document of a YAML text, as JSON.
pub fn docs(text: &str) -> Vec<Value> {
    meshgen::yaml::load_json_documents(text).expect("valid YAML")
}

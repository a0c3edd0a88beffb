//! Helpers shared by the integration tests: run the pipeline on value
//! files and `--set` arguments, and parse rendered YAML.
#![allow(dead_code)] // each test crate uses its own subset

use meshgen::values::{SetArg, ValueInputs};
use meshgen::Session;
use serde_json::Value;
use std::path::PathBuf;

const DEPLOYKF_SAMPLE: &str = "../shared/reference/deploykf-0.1.5/sample-values.yaml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every case under `tests/cases/`, sorted.
pub fn cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(root().join("tests/cases"))
        .expect("tests/cases")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    cases
}

/// The inputs of `tests/cases/<case>/`: its `values.yaml` (after the
/// deployKF sample values for `deploykf-sample`) and its `set-args`, one a line.
pub fn case_inputs(case: &str) -> ValueInputs {
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

pub fn inputs(files: Vec<PathBuf>, sets: &[&str]) -> ValueInputs {
    ValueInputs {
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

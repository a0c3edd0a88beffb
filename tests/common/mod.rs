//! Helpers shared by the integration tests: run the pipeline on value
//! files and `--set` arguments, and parse rendered YAML.
#![allow(dead_code)] // each test crate uses its own subset

use meshgen::values::{SetArg, ValueInputs};
use meshgen::Session;
use serde_json::Value;
use std::path::PathBuf;

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

//! The login edge on parsed documents: no secret in any output, pods meet
//! Pod Security "restricted", the Istio install declares the provider, and
//! (on the rendered policies and routes) no client can make an app see an
//! identity that was not verified.

#[path = "../common/mod.rs"]
mod common;

mod ambient;
mod edge;
mod egress;
mod gateway;
mod idp_groups;
mod kubeflow;
mod m2m;
mod netpol;
mod outputs;
mod readme;
mod routing;
mod sidecar;
mod tenant;

use ambient::*;
use common::root;
use gateway::*;
use m2m::*;
use meshgen::values::ValueInputs;
use outputs::*;
use routing::*;
use serde_json::{json, Value};
use sidecar::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tenant::*;

const GW_DIR: &str = "manifests/deploykf-core/deploykf-istio-gateway";
const AUTH_DIR: &str = "manifests/deploykf-core/deploykf-auth";

type Tree = BTreeMap<String, Vec<Value>>;

fn render_files(files: Vec<PathBuf>, sets: &[&str]) -> Tree {
    render_inputs(&common::inputs(files, sets))
}

fn render_inputs(inputs: &ValueInputs) -> Tree {
    let g = common::generate(inputs);
    g.files
        .iter()
        .filter(|(p, _)| p.ends_with(".yaml"))
        .map(|(p, text)| (p.clone(), common::docs(text)))
        .collect()
}

fn case(name: &str) -> Tree {
    render_inputs(&common::case_inputs(name))
}

fn one(t: &Tree, path: &str) -> Value {
    let docs = t.get(path).unwrap_or_else(|| panic!("{path} not rendered"));
    assert_eq!(docs.len(), 1, "{path}");
    docs[0].clone()
}

fn all_docs(t: &Tree) -> impl Iterator<Item = (&String, &Value)> {
    t.iter().flat_map(|(p, d)| d.iter().map(move |x| (p, x)))
}

/// The errors a run on `inputs` ends with, as printed (none: it renders).
fn errors_of(inputs: &ValueInputs) -> Vec<String> {
    let mut session = meshgen::Session::default();
    match meshgen::generate(inputs, &mut session) {
        Ok(_) => Vec::new(),
        Err(e) => printed(&e, &session),
    }
}

/// The warnings of a run on `inputs` that renders, as printed.
fn warnings_of(inputs: &ValueInputs) -> Vec<String> {
    let mut session = meshgen::Session::default();
    meshgen::generate(inputs, &mut session).unwrap();
    printed(&session.warnings, &session)
}

fn printed(d: &meshgen::diagnostic::Diagnostics, session: &meshgen::Session) -> Vec<String> {
    d.0.iter()
        .map(|d| d.display(&session.sources).to_string())
        .collect()
}

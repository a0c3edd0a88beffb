//! The login edge on parsed documents: no secret in any output, pods meet
//! Pod Security "restricted", the Istio install declares the provider, and
//! (on the rendered policies and routes) no client can make an app see an
//! identity that was not verified. The replays ask the request model of
//! the library (`meshgen::access`); each has a mutation test.

#[path = "../common/mod.rs"]
mod common;

mod ambient;
mod coverage;
mod edge;
mod egress;
mod gateway;
mod gateways;
mod idp_groups;
mod kubeflow;
mod m2m;
mod matrix;
mod netpol;
mod outputs;
mod readme;
mod sidecar;
mod tenant;

use common::root;
use gateway::*;
use m2m::*;
use meshgen::access::admission::*;
use meshgen::access::ambient::*;
use meshgen::access::gateway::*;
use meshgen::access::istio::*;
use meshgen::access::m2m::*;
use meshgen::access::network::*;
use meshgen::access::routing::*;
use meshgen::access::sidecar::*;
pub(crate) use meshgen::access::tree::{all_docs, Tree};
use meshgen::access::GATEWAY_DIR as GW_DIR;
use meshgen::values::ValueInputs;
use outputs::*;
use serde_json::{json, Value};
use sidecar::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

const AUTH_DIR: &str = "manifests/deploykf-core/deploykf-auth";

/// The pod port of the gateway's `http` or `https` listener.
fn gw_port(t: &Tree, which: &str) -> u16 {
    gateway_port(t, which).unwrap_or_else(|| panic!("no {which} listener"))
}

fn render_files(files: Vec<PathBuf>, sets: &[&str]) -> Tree {
    render_inputs(&common::inputs(files, sets))
}

/// The tree of a render as the request model reads it
/// (`meshgen::access::tree::from_generated`), plus the files it leaves
/// out (Helm charts' values, kustomizations), which some checks read.
fn render_inputs(inputs: &ValueInputs) -> Tree {
    let g = common::generate(inputs);
    let mut t = meshgen::access::tree::from_generated(&g);
    for (p, text) in &g.files {
        if p.ends_with(".yaml") && !t.contains_key(p) {
            t.insert(p.clone(), common::docs(text));
        }
    }
    t
}

fn case(name: &str) -> Tree {
    render_inputs(&common::case_inputs(name))
}

fn one(t: &Tree, path: &str) -> Value {
    let docs = t.get(path).unwrap_or_else(|| panic!("{path} not rendered"));
    assert_eq!(docs.len(), 1, "{path}");
    docs[0].clone()
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

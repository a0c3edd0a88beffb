//! Fleets (issue 34): one fleet file, many clusters. Built on the
//! pipeline's public entry points only ([`crate::validate`],
//! [`crate::generate_valid`], [`crate::write`]): each cluster is the tree
//! a single `meshgen generate` with that cluster's layers writes, put
//! under `clusters/<name>/`; beside them the delivery entry points
//! (`entry.rs`) and, over all, one marker, so the whole fleet is written
//! (or compared) as one tree: all clusters change or none.
//!
//! Clusters render in parallel (rayon's pool, one per core), each from
//! its own values to its files; only the files are kept, so memory holds
//! the fleet's text and at most one cluster's intermediate stages per
//! core.

pub mod checks;
pub mod entry;
pub mod facts;
pub mod file;

use crate::diagnostic::Diagnostics;
use crate::source::SourceMap;
use crate::values::path::ValuePath;
use crate::write::{Files, MARKER};
use crate::Session;
pub use file::{load, Cluster, Fleet};
use std::collections::BTreeMap;

/// The directory of cluster `name` in the fleet output.
pub fn cluster_dir(name: &str) -> String {
    format!("clusters/{name}")
}

/// One cluster's outcome: its session (its sources and warnings) and,
/// when it rendered, how many files.
#[derive(Debug)]
pub struct ClusterRun {
    pub name: String,
    pub session: Session,
    /// Its errors, when it did not render.
    pub errors: Option<Diagnostics>,
    pub files: usize,
}

/// A rendered fleet.
#[derive(Debug)]
pub struct Rendered {
    /// Every file of the fleet output, the top marker included.
    pub files: Files,
    pub clusters: Vec<ClusterRun>,
    /// The fleet-wide findings (warnings when it rendered), located in
    /// the fleet file.
    pub findings: Diagnostics,
}

/// What one worker returns.
struct Done {
    run: ClusterRun,
    files: Files,
    found: Option<checks::Found>,
}

fn render_one(cluster: &Cluster) -> Done {
    let mut session = Session::default();
    let failed = |name: &str, session: Session, errors: Diagnostics| Done {
        run: ClusterRun {
            name: name.to_string(),
            session,
            errors: Some(errors),
            files: 0,
        },
        files: Files::new(),
        found: None,
    };
    let valid = match crate::validate(&cluster.inputs(), &mut session) {
        Ok(v) => v,
        Err(e) => return failed(&cluster.name, session, e),
    };
    let facts = facts::of(&valid.json);
    let set_at: BTreeMap<&'static str, String> = facts
        .security
        .iter()
        .filter_map(|s| {
            let origin = valid.values.origin_of(&ValuePath::keys(s.key))?;
            Some((s.key, session.sources.display(origin).to_string()))
        })
        .collect();
    let base = crate::values::build(&cluster.base_inputs(), &mut SourceMap::default())
        .map(|v| facts::of(&v.to_json()))
        .unwrap_or_default();
    let generated = match crate::generate_valid(valid) {
        Ok(g) => g,
        Err(e) => return failed(&cluster.name, session, e),
    };
    let files = generated.files;
    Done {
        run: ClusterRun {
            name: cluster.name.clone(),
            session,
            errors: None,
            files: files.len(),
        },
        files,
        found: Some(checks::Found {
            facts,
            base,
            set_at,
        }),
    }
}

/// Render every cluster of `fleet` (in parallel) and the entry points.
/// `Err` holds the runs (some with errors) and the fleet-wide errors.
pub fn render(fleet: &Fleet) -> Result<Rendered, (Vec<ClusterRun>, Diagnostics)> {
    let spec = checks::spec(fleet);
    if spec.has_errors() {
        return Err((Vec::new(), spec));
    }
    use rayon::prelude::*;
    let done: Vec<Done> = fleet.clusters.par_iter().map(render_one).collect();
    let mut runs = Vec::with_capacity(done.len());
    let mut found = Vec::with_capacity(done.len());
    let mut per_cluster = Vec::with_capacity(done.len());
    for d in done {
        runs.push(d.run);
        found.extend(d.found);
        per_cluster.push(d.files);
    }
    if runs.iter().any(|r| r.errors.is_some()) {
        return Err((runs, Diagnostics::default()));
    }
    let mut findings = checks::clusters(fleet, &found);
    if findings.has_errors() {
        return Err((runs, findings));
    }
    let entries: Vec<(&str, &facts::ClusterFacts, Option<&str>)> = fleet
        .clusters
        .iter()
        .zip(&found)
        .zip(&per_cluster)
        .map(|((c, f), files)| {
            (
                c.name.as_str(),
                &f.facts,
                files.get("app-of-apps.yaml").map(String::as_str),
            )
        })
        .collect();
    let entry = match entry::files(&entries) {
        Ok(e) => e,
        Err(d) => {
            findings.push(d);
            return Err((runs, findings));
        }
    };
    let mut files = entry;
    let mut markers = Vec::new();
    for (c, cluster_files) in fleet.clusters.iter().zip(per_cluster) {
        let dir = cluster_dir(&c.name);
        if let Some(m) = cluster_files.get(MARKER) {
            markers.push(serde_json::json!([c.name, m]));
        }
        files.extend(
            cluster_files
                .into_iter()
                .map(|(rel, text)| (format!("{dir}/{rel}"), text)),
        );
    }
    let digest = crate::values_digest(&serde_json::Value::Array(markers));
    let marker = crate::write::marker_text(crate::VERSION, &digest, &files);
    files.insert(MARKER.to_string(), marker);
    Ok(Rendered {
        files,
        clusters: runs,
        findings,
    })
}

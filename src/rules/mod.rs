//! Stage 2b: cross-field rules the JSON Schema cannot express, run on the
//! typed [`Config`] after the schema passed. deployKF's own checks for
//! these sections (`check-values--incompatible-configs.tpl`) are here with
//! their tips, plus meshgen's.
//!
//! Each rule names the key at fault and where it was set. Rules judge the
//! config; they never change a value. Besides the verdicts they hand on
//! what they had to compute anyway: the [`Facts`] (derived once, here,
//! for the rules and every later stage) and each component's parsed
//! `extraManifests`.

pub mod auth;
pub mod cert_manager;
pub mod gateway;
pub mod gitops;
pub mod istio;
pub mod profiles;

use crate::component::{Overrides, ALL};
use crate::config::Config;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::facts::Facts;
use crate::source::SourceMap;
use crate::values::path::ValuePath;
use crate::values::Values;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// What the rules hand on: the typed config, its facts, the parsed
/// `extraManifests` of each component (by component id), and warnings.
#[derive(Debug, Clone)]
pub struct Checked {
    pub config: Config,
    pub facts: Facts,
    pub extra_manifests: BTreeMap<&'static str, Vec<Value>>,
    pub warnings: Diagnostics,
}

/// Deserialize the typed config and run every rule.
pub fn check(values: &Values, json: &Value, sources: &SourceMap) -> Result<Checked, Diagnostics> {
    let config = Config::deserialize(json).map_err(|e| {
        Diagnostics::from(Diagnostic::error(format!(
            "internal: values passed the schema but do not fit meshgen's model: {e}"
        )))
    })?;
    let facts = Facts::derive(&config);
    let ctx = Ctx {
        config: &config,
        facts: &facts,
        values,
        sources,
    };
    let mut found = Findings::default();
    gitops::check(&ctx, &mut found);
    for d in ALL {
        (d.rules)(&ctx, &mut found);
        if let Overrides::Unused(why) = d.overrides {
            if (d.values_overrides)(&config).is_some_and(|o| !o.is_empty()) {
                found.warnings.push(ctx.warning(
                    &d.key_path("valuesOverrides"),
                    format!("has no effect: {why}"),
                ));
            }
        }
    }
    let Findings {
        errors: mut diags,
        mut warnings,
    } = found;
    // Sorted like errors, so that the order of rules does not matter.
    warnings.sort();
    let mut extra = BTreeMap::new();
    for d in ALL {
        let items = (d.extra_manifests)(&config);
        let docs = extra_manifests(values, &d.key_path("extraManifests"), items, &mut diags);
        extra.insert(d.id, docs);
    }
    diags.sort();
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Checked {
        config,
        facts,
        extra_manifests: extra,
        warnings,
    })
}

/// What a component's rules read.
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub facts: &'a Facts,
    pub values: &'a Values,
    pub sources: &'a SourceMap,
}

impl Ctx<'_> {
    /// An error at the dotted `path`, located where its value was set.
    pub fn error(&self, path: &str, message: String) -> Diagnostic {
        error_at(self.values, ValuePath::keys(path), message)
    }

    /// A warning at the dotted `path`, located where its value was set.
    pub fn warning(&self, path: &str, message: String) -> Diagnostic {
        let path = ValuePath::keys(path);
        Diagnostic::warning(message)
            .at(self.values.origin_of(&path))
            .at_path(path)
    }
}

/// What rules find: errors stop the run, warnings are printed.
#[derive(Default)]
pub struct Findings {
    pub errors: Diagnostics,
    pub warnings: Diagnostics,
}

/// An error about the value at `path`, located where that value was set.
pub(crate) fn error_at(values: &Values, path: ValuePath, message: String) -> Diagnostic {
    Diagnostic::error(message)
        .at(values.origin_of(&path))
        .at_path(path)
}

/// `path` and where it was set, to name a second place in a message.
pub(crate) fn located(values: &Values, sources: &SourceMap, path: &ValuePath) -> String {
    match values.origin_of(path) {
        Some(o) => format!("`{path}` at {}", sources.display(o)),
        None => format!("`{path}`"),
    }
}

/// Parse `extraManifests`: each item is a YAML string (one or more
/// documents) or a map; every document must be a Kubernetes object.
fn extra_manifests(
    values: &Values,
    key: &str,
    items: &[Value],
    diags: &mut Diagnostics,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = ValuePath::keys(key).index(i);
        let origin = values.origin_of(&path);
        let mut fail = |message: String| {
            diags.push(Diagnostic::error(message).at_path(path.clone()).at(origin));
        };
        let docs: Vec<Value> = match item {
            Value::Object(_) => vec![item.clone()],
            Value::String(text) => {
                match crate::yaml::load_documents(text, crate::source::SourceId(0)) {
                    Ok(docs) => docs.into_iter().flatten().map(|n| n.to_json()).collect(),
                    Err(e) => {
                        fail(format!(
                            "is not valid YAML (line {} of the manifest: {})",
                            e.origin.pos.line, e.message
                        ));
                        continue;
                    }
                }
            }
            other => {
                fail(format!(
                    "expected a manifest (a map, or a YAML string), got {}",
                    crate::schema::describe(other)
                ));
                continue;
            }
        };
        if docs.is_empty() {
            fail("holds no document".into());
        }
        for (n, doc) in docs.into_iter().enumerate() {
            let has = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
            if !(has(&doc["apiVersion"]) && has(&doc["kind"]) && has(&doc["metadata"]["name"])) {
                fail(format!(
                    "document {n} is not a Kubernetes object: it needs apiVersion, kind and metadata.name"
                ));
                continue;
            }
            out.push(doc);
        }
    }
    out
}

/// The rules of a component that has none of its own.
pub fn none(_: &Ctx, _: &mut Findings) {}

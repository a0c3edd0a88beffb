//! meshgen: values → schema/rules → derived model → render → checks →
//! write. This file only wires the stages together; each lives in its own
//! module and hands the next one a new type:
//!
//! `ValueInputs` → [`values::Values`] → [`config::Config`] →
//! [`model::Model`] → [`render::RenderedTree`] → [`check::CheckedTree`] →
//! [`write::Files`].

pub mod access;
pub mod check;
pub mod code;
pub mod component;
pub mod config;
pub mod diagnostic;
pub mod facts;
pub mod fleet;
pub mod kube;
pub mod model;
pub mod registry;
pub mod render;
pub mod rules;
pub mod schema;
pub mod source;
pub mod stream;
pub mod timing;
pub mod upgrade;
pub mod values;
pub mod write;
pub mod yaml;

use diagnostic::{Diagnostic, Diagnostics};
use source::SourceMap;
pub use stream::write_manifest_stream;
use timing::StageClock;
use values::{ValueInputs, Values};
pub use write::values_digest;

/// The crate version plus the git commit it was built from
/// (`0.1.0+1a2b3c4d5e6f`, `-dirty` appended when the checkout had changes;
/// the version alone outside a git checkout): `build.rs`.
pub const VERSION: &str = env!("MESHGEN_VERSION");

/// What a run needs to print its diagnostics: the sources they point
/// into, and the warnings raised along the way.
#[derive(Debug, Default)]
pub struct Session {
    pub sources: SourceMap,
    pub warnings: Diagnostics,
    /// Warnings and notices of these codes are not shown
    /// (`--allow-warning`).
    pub allowed: Vec<code::Code>,
}

impl Session {
    /// The warnings and notices to show: those of a code not allowed.
    pub fn shown_warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.warnings
            .0
            .iter()
            .filter(|d| !self.allowed.contains(&d.code))
    }

    /// How many warnings (not notices) are shown: what
    /// `--deny-warnings` fails on.
    pub fn shown_warning_count(&self) -> usize {
        self.shown_warnings()
            .filter(|d| d.severity == diagnostic::Severity::Warning)
            .count()
    }
}

/// Values that passed the schema and the cross-field rules.
#[derive(Debug, Clone)]
pub struct ValidValues {
    pub values: Values,
    pub json: serde_json::Value,
    pub checked: rules::Checked,
}

/// Stages 1–2: merge the inputs and validate them.
pub fn validate(inputs: &ValueInputs, session: &mut Session) -> Result<ValidValues, Diagnostics> {
    validate_timed(inputs, session, &mut StageClock::new())
}

fn validate_timed(
    inputs: &ValueInputs,
    session: &mut Session,
    clock: &mut StageClock,
) -> Result<ValidValues, Diagnostics> {
    // The embedded schema compiles on a second thread while the values
    // load (it needs nothing of theirs).
    let (values, schema) = std::thread::scope(|scope| {
        let schema = scope.spawn(schema::Schema::shared);
        let values = values::build(inputs, &mut session.sources);
        let schema = schema
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (values, schema)
    });
    let values = values?;
    clock.lap("values (load, merge)");
    let schema = schema?;
    let json = values.to_json();
    let (errors, warnings) = schema.validate(&values, &json, &session.sources);
    clock.lap("schema");
    session.warnings.extend(warnings);
    if errors.has_errors() {
        let mut errors = errors;
        errors.extend(rule_errors_beside(schema, &values, &json, &errors, session));
        errors.sort();
        return Err(errors);
    }
    let checked = rules::check(&values, &json, &session.sources)?;
    session.warnings.extend(checked.warnings.clone());
    clock.lap("rules");
    Ok(ValidValues {
        values,
        json,
        checked,
    })
}

/// The rules' errors in the parts of the values the schema accepted, so
/// that one run reports every error (a rule error in one section is not
/// hidden behind a schema error in another). Each value the schema refused
/// is put back to its default (or dropped when it has none) in a copy of
/// the values; if that copy passes the schema, the rules run on it and
/// every error they find away from a refused value is reported, located
/// in the user's values as always. Nothing changes what is reported about
/// the refused values themselves, and no warning of this second pass is
/// kept.
fn rule_errors_beside(
    schema: &schema::Schema,
    values: &Values,
    json: &serde_json::Value,
    schema_errors: &Diagnostics,
    session: &Session,
) -> Diagnostics {
    let refused: Vec<&values::path::ValuePath> = schema_errors
        .0
        .iter()
        .filter_map(|d| d.path.as_ref())
        .collect();
    // An error without a key path (e.g. a malformed document) leaves
    // nothing to repair around.
    if refused.len() != schema_errors.0.len() || refused.iter().any(|p| p.is_root()) {
        return Diagnostics::default();
    }
    let defaults = match values::build(&ValueInputs::default(), &mut SourceMap::default()) {
        Ok(d) => d.to_json(),
        Err(_) => return Diagnostics::default(),
    };
    let mut repaired = json.clone();
    // Last first, so that dropping a list item does not move the others.
    let mut refused = refused;
    refused.sort();
    refused.dedup();
    for path in refused.iter().rev() {
        values::path::put(
            &mut repaired,
            path,
            values::path::lookup(&defaults, path).cloned(),
        );
    }
    // Unknown keys in sections meshgen does not render are warnings, so
    // the question is whether any error is left.
    if schema
        .validate(values, &repaired, &session.sources)
        .0
        .has_errors()
    {
        return Diagnostics::default();
    }
    // A rule error about a refused value, or one that names it as the
    // other side of a comparison, would judge the stand-in default.
    let named: Vec<String> = refused.iter().map(|r| format!("`{r}")).collect();
    let overlaps = |d: &Diagnostic| {
        d.path
            .as_ref()
            .is_none_or(|p| refused.iter().any(|r| p.starts_with(r) || r.starts_with(p)))
            || named.iter().any(|n| d.message.contains(n.as_str()))
    };
    match rules::check(values, &repaired, &session.sources) {
        Ok(_) => Diagnostics::default(),
        Err(found) => Diagnostics(
            found
                .0
                .into_iter()
                .filter(|d| d.severity == diagnostic::Severity::Error)
                .filter(|d| !overlaps(d))
                .collect(),
        ),
    }
}

/// What the whole-tree checks may assume, from the model.
fn tree_context(model: &model::Model) -> check::refs::TreeContext {
    let g = &model.gitops;
    check::refs::TreeContext {
        argo_prefix: g
            .argocd
            .as_ref()
            .map(|a| model::gitops::clean_repo_path(&a.repo_path)),
        flux_prefix: g
            .flux
            .as_ref()
            .map(|f| model::gitops::clean_repo_path(&f.path)),
        existing_namespaces: model.existing_namespaces.clone(),
        user_credentials: model.user_credentials.clone(),
        gateway_pod_namespaces: model.gateway_pod_namespaces.clone(),
        // meshgen's Istio declares them; with your own Istio,
        // REQUIRED-MESH-CONFIG.md says to.
        extension_providers: model.extension_providers.clone(),
        user_objects: model.user_objects.clone(),
        patches: model
            .patches
            .iter()
            .flat_map(|(dir, p)| p.iter().map(move |p| (dir.clone(), p.clone())))
            .collect(),
        gateway_api_bundle: Some(model.gateway_api_bundle),
        ambient: model.ambient,
    }
}

/// The finished output: every file (marker included), by relative path.
#[derive(Debug, Clone)]
pub struct Generated {
    pub files: write::Files,
    /// The manifest files (not kustomizations, charts or documents).
    pub manifests: Vec<check::Manifest>,
    /// The template each rendered file came from (files meshgen builds
    /// itself, such as `kustomization.yaml` and the marker, are absent).
    pub templates: std::collections::BTreeMap<String, &'static str>,
}

/// Stages 1–5: everything up to, not including, touching the disk.
pub fn generate(inputs: &ValueInputs, session: &mut Session) -> Result<Generated, Diagnostics> {
    let mut clock = StageClock::new();
    let valid = validate_timed(inputs, session, &mut clock)?;
    generate_timed(valid, &mut clock)
}

/// Stages 3–5 of values [`validate`] accepted (`generate` is the two in
/// a row; a fleet reads each cluster's merged values in between).
pub fn generate_valid(valid: ValidValues) -> Result<Generated, Diagnostics> {
    generate_timed(valid, &mut StageClock::new())
}

fn generate_timed(valid: ValidValues, clock: &mut StageClock) -> Result<Generated, Diagnostics> {
    // Templates see only the model; the values (and their positions) are
    // no longer needed past this point. The digest is hashed and the
    // values tree freed on a second thread while the model is derived.
    let ValidValues {
        values,
        json,
        checked,
    } = valid;
    let (digest, model) = std::thread::scope(|scope| {
        let digest = scope.spawn(move || {
            let digest = values_digest(&json);
            drop((values, json));
            digest
        });
        let model = model::derive(&checked);
        drop(checked);
        let digest = digest
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (digest, model)
    });
    clock.lap("digest and model");
    let context = tree_context(&model);
    let (units, max_objects) = (model.gitops.units.clone(), model.gitops.max_objects);
    let tree = render::render(model)?;
    clock.lap("render");
    let checked = check::check(tree, &context)?;
    let limits = check::limits::check(&checked.files, &checked.manifests, &units, max_objects);
    if limits.has_errors() {
        return Err(limits);
    }
    clock.lap("check");
    let templates = checked
        .files
        .iter()
        .filter_map(|(p, f)| f.template.map(|t| (p.clone(), t)))
        .collect();
    let mut files: write::Files = checked
        .files
        .into_iter()
        .map(|(p, f)| (p, f.text))
        .collect();
    let marker = write::marker_text(VERSION, &digest, &files);
    files.insert(write::MARKER.to_string(), marker);
    Ok(Generated {
        files,
        manifests: checked.manifests,
        templates,
    })
}

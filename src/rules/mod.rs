//! Stage 2b: cross-field rules the JSON Schema cannot express, run on the
//! typed [`Config`] after the schema passed. deployKF's own checks for
//! these sections (`check-values--incompatible-configs.tpl`) are here with
//! their tips, plus meshgen's.
//!
//! Each rule names the key at fault and where it was set. Rules judge the
//! config; they never change a value. Besides the verdicts they hand on
//! what they had to compute anyway: the [`Facts`] (derived once, here,
//! for the rules and every later stage) and each component's parsed
//! `extraManifests` (`extra`: in their component's namespace unless they
//! name one), with where each of their objects was written.

pub mod auth;
pub mod cert_manager;
pub mod egress_gateway;
pub mod extra;
pub mod gateway;
pub mod gateway_chart;
pub mod gitops;
pub mod istio;
pub mod patch;
pub mod profiles;
pub mod size;
pub mod telemetry;

use crate::code::Code;
use crate::component::{Descriptor, Overrides};
use crate::config::Config;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::facts::Facts;
use crate::registry::ALL;
use crate::source::SourceMap;
use crate::values::path::ValuePath;
use crate::values::Values;
use serde_json::Value;
use std::collections::BTreeMap;

/// What the rules hand on: the typed config, its facts, the parsed
/// `extraManifests` of each component (by component id), where the objects
/// of the enabled components' ones were written, and warnings.
#[derive(Debug, Clone)]
pub struct Checked {
    pub config: Config,
    pub facts: Facts,
    pub extra_manifests: BTreeMap<&'static str, Vec<Value>>,
    pub user_objects: Vec<extra::UserObject>,
    /// The `patches` of each component (by component id).
    pub patches: BTreeMap<&'static str, Vec<patch::UserPatch>>,
    pub warnings: Diagnostics,
}

/// Deserialize the typed config and run every rule.
pub fn check(values: &Values, json: &Value, sources: &SourceMap) -> Result<Checked, Diagnostics> {
    let config = typed(values, json)?;
    let facts = Facts::derive(&config);
    let ctx = Ctx {
        config: &config,
        facts: &facts,
        values,
        sources,
        own: None,
    };
    let mut found = Findings::default();
    gitops::check(&ctx, &mut found);
    size::check(values, sources, &mut found.errors);
    for d in ALL {
        let ctx = Ctx {
            own: Some(d),
            ..ctx
        };
        (d.rules)(&ctx, &mut found);
        if let Overrides::Unused(why) = d.overrides {
            if (d.values_overrides)(&config).is_some_and(|o| !o.is_empty()) {
                found.warnings.push(ctx.warning(
                    Code::UnusedOverride,
                    d.key_path("valuesOverrides"),
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
    let mut user_objects = Vec::new();
    let mut patches = BTreeMap::new();
    for d in ALL {
        let items = (d.extra_manifests)(&config);
        let namespace = (d.namespace)(&config);
        let key = d.key_path("extraManifests");
        let parsed = extra::parse(values, &key, namespace.as_deref(), items, &mut diags);
        if (d.enabled)(&config) {
            user_objects.extend(parsed.objects);
        }
        extra.insert(d.id, parsed.docs);
        let key = d.key_path("patches");
        let mut own = patch::parse(values, &key, (d.patches)(&config), &mut diags);
        if let Overrides::Patches(map) = d.overrides {
            for m in map(&config, &d.key_path("valuesOverrides")) {
                match m {
                    patch::Mapped::Patch {
                        path,
                        kind,
                        name,
                        body,
                    } => {
                        let origin = values.origin_of(&path);
                        let body = match body {
                            Value::Object(m) => m,
                            _ => serde_json::Map::new(),
                        };
                        match patch::strategic(kind, &name, body, path.clone(), origin) {
                            Ok(p) => own.push(p),
                            Err(message) => diags.push(error_at(values, path, message.into())),
                        }
                    }
                    patch::Mapped::Refused { path, message } => {
                        diags.push(error_at(values, path, message))
                    }
                }
            }
        }
        patches.insert(d.id, own);
    }
    diags.sort();
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Checked {
        config,
        facts,
        extra_manifests: extra,
        user_objects,
        patches,
        warnings,
    })
}

/// The rules of a component that has none of its own.
pub fn none(_: &Ctx, _: &mut Findings) {}

/// Most integral floats [`typed`] turns into integers before it gives up.
const MAX_INTEGRAL_FLOATS: usize = 256;

/// The typed config. JSON Schema's `integer` admits `80.0` and `8e1`
/// (draft 2020-12 §6.1.1: a number with a zero fractional part), as Helm
/// reads them too, so an integral float in a typed integer field is taken
/// as that integer: only the fields serde refuses are converted, never a
/// value in a free-form map (`valuesOverrides`, `meshConfig`) that is
/// passed on as written. Anything else the model cannot take is an error
/// at the key, located in the user's file: no input ends in an internal
/// error.
fn typed(values: &Values, json: &Value) -> Result<Config, Diagnostics> {
    // `additionalGateways` take the keys they leave out from the primary.
    let inherited = gateway::inherit(json);
    let json = inherited.as_ref().unwrap_or(json);
    let mut fixed: Option<Value> = None;
    for _ in 0..=MAX_INTEGRAL_FLOATS {
        let err = match serde_path_to_error::deserialize(fixed.as_ref().unwrap_or(json)) {
            Ok(config) => return Ok(config),
            Err(e) => e,
        };
        let path = value_path(err.path());
        let doc = fixed.get_or_insert_with(|| json.clone());
        let converted = crate::values::path::lookup_mut(doc, &path).and_then(|n| {
            *n = integral(n)?;
            Some(())
        });
        if converted.is_none() {
            let message = err.into_inner().to_string();
            return Err(Diagnostics::from(
                Diagnostic::error(Code::Rule, format!("cannot be used here: {message}"))
                    .at(values.origin_of(&path))
                    .at_path(path),
            ));
        }
    }
    Err(Diagnostics::from(Diagnostic::error(Code::Rule, format!(
        "more than {MAX_INTEGRAL_FLOATS} integers are written as floats (`80.0`); write them as integers (`80`)"
    ))))
}

/// `80.0` as the integer 80; `None` for a fraction or out of range.
fn integral(n: &Value) -> Option<Value> {
    let f = n
        .as_f64()
        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)?;
    Some(Value::from(f as i64))
}

fn value_path(p: &serde_path_to_error::Path) -> ValuePath {
    use crate::values::path::Segment;
    use serde_path_to_error::Segment as S;
    ValuePath(
        p.iter()
            .filter_map(|s| match s {
                S::Seq { index } => Some(Segment::Index(*index)),
                S::Map { key } => Some(Segment::Key(key.clone())),
                S::Enum { .. } | S::Unknown => None,
            })
            .collect(),
    )
}

/// What a component's rules read.
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub facts: &'a Facts,
    pub values: &'a Values,
    pub sources: &'a SourceMap,
    /// The component whose rules these are (`None` for the rules of the
    /// whole install, `gitops`): a rule that compares its component with
    /// the others' reads it here, not in the model stage, which runs
    /// later.
    pub own: Option<&'static Descriptor>,
}

impl Ctx<'_> {
    /// An error at `path`, located where its value was set.
    pub fn error(&self, path: ValuePath, message: String) -> Diagnostic {
        error_at(self.values, path, message)
    }

    /// A warning at `path`, located where the user set it (in a values
    /// file or `--set`, at or under `path`), else where the defaults did:
    /// a warning about your key names your line, never
    /// `default_values.yaml`, which an installed binary does not ship.
    pub fn warning(&self, code: Code, path: ValuePath, message: String) -> Diagnostic {
        debug_assert_names_a_key(&path);
        let at = self
            .values
            .user_origin(&path, self.sources)
            .or_else(|| self.values.origin_of(&path));
        Diagnostic::warning(code, message).at(at).at_path(path)
    }

    /// Whether the user set `path` (in a values file or `--set`), rather
    /// than leaving it to `default_values.yaml`.
    pub fn set_by_user(&self, path: &ValuePath) -> bool {
        self.values
            .origin_of(path)
            .is_some_and(|o| self.sources.get(o.source).kind != crate::source::SourceKind::Defaults)
    }

    /// `path` and where it was set, to name a second key in a message.
    pub fn located(&self, path: &ValuePath) -> String {
        located(self.values, self.sources, path)
    }
}

/// What rules find: errors stop the run, warnings are printed.
#[derive(Default)]
pub struct Findings {
    pub errors: Diagnostics,
    pub warnings: Diagnostics,
}

/// In debug builds (the tests'), that a rule's diagnostic names a key
/// the values schema has: a misspelt path (`format!("{GW}.gatway.x")`)
/// would otherwise lose its location silently (issue 33.1).
fn debug_assert_names_a_key(path: &ValuePath) {
    if cfg!(debug_assertions) {
        if let Ok(schema) = crate::schema::Schema::shared() {
            assert!(
                schema.names(path),
                "a rule names `{path}`, which is no key of the values schema"
            );
        }
    }
}

/// An error about the value at `path`, located where that value was set.
pub(crate) fn error_at(values: &Values, path: ValuePath, message: String) -> Diagnostic {
    debug_assert_names_a_key(&path);
    Diagnostic::error(Code::Rule, message)
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

#[cfg(test)]
mod tests {
    use crate::values::path::ValuePath;

    /// The debug-build check of a rule's key path walks typed paths,
    /// list indices included, and refuses a misspelt key.
    #[test]
    fn the_key_check_takes_indexed_paths_and_refuses_misspelt_keys() {
        let pg = ValuePath::keys("deploykf_core.deploykf_profiles_generator");
        super::debug_assert_names_a_key(&pg.key("profiles").index(3).key("name"));
        super::debug_assert_names_a_key(
            &ValuePath::keys("argocd").key("syncPolicy").key("automated"),
        );
        let misspelt = pg.key("profile").index(3).key("name");
        let refused = std::panic::catch_unwind(|| super::debug_assert_names_a_key(&misspelt));
        assert_eq!(refused.is_err(), cfg!(debug_assertions));
    }

    /// The rules stage reads the config, the facts and the descriptors
    /// (through `registry`), never the model stage, which runs after it:
    /// no file of `src/rules/` names a model module (one-way pipeline).
    #[test]
    fn the_rules_import_no_model_module() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/rules");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        files.sort();
        assert!(files.len() > 10, "read {dir}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // Spelt in parts, so that this file does not name them.
            for stage in [["crate", "model"], ["super::super", "model"]].map(|s| s.join("::")) {
                assert!(
                    !text.contains(&stage),
                    "{} names {stage}: the rules run before the model",
                    file.display()
                );
            }
        }
    }
}

//! Stage 2a: check the merged values against the embedded JSON Schema
//! (`schemas/values.schema.json`), and turn every violation into a
//! one-line [`Diagnostic`] that names the key path and where the value was
//! set, with hints for typos ("did you mean") and YAML 1.1 traps.
//!
//! The schema also marks deployKF sections meshgen accepts but does not
//! render (`x-meshgen-ignored`); setting a key in one gives one warning per
//! section. There, and in a group of such sections
//! (`x-meshgen-ignored-group`), an unknown key is a warning with the same
//! "did you mean" as an error elsewhere: meshgen's output does not depend
//! on it, and deployKF forks add keys there. A key that an older deployKF
//! release had and the current one dropped (`x-meshgen-removed`) gives a
//! warning naming both. Nodes may carry `x-meshgen-expected`, a human
//! description of a pattern, used instead of printing the regular
//! expression.
//!
//! This module does not know any rule that is not in the schema; the
//! cross-field rules live in `rules`.

pub mod derive;
pub mod file;

use crate::code::Code;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::source::{SourceKind, SourceMap};
use crate::values::path::{Segment, ValuePath};
use crate::values::Values;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use serde_json::Value;

/// The values schema, as shipped.
pub const SCHEMA_TEXT: &str = include_str!("../../schemas/values.schema.json");

pub struct Schema {
    json: Value,
    validator: jsonschema::Validator,
    ignored: Vec<ValuePath>,
    removed: Vec<Removed>,
    image_names: std::collections::BTreeSet<String>,
}

/// A key an older deployKF release had and the current one does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub path: ValuePath,
    /// The release that dropped it, e.g. `0.1.5`.
    pub removed_in: String,
    /// The releases that had it, e.g. `0.1.0–0.1.4`.
    pub known_in: String,
}

const IGNORED: &str = "x-meshgen-ignored";
const IGNORED_GROUP: &str = "x-meshgen-ignored-group";
const REMOVED: &str = "x-meshgen-removed";

impl Schema {
    /// Compile the embedded schema. A failure here is a bug in meshgen.
    /// [`Schema::embedded`], compiled once per process (a fleet
    /// validates many clusters' values).
    pub fn shared() -> Result<&'static Schema, Diagnostic> {
        static SCHEMA: std::sync::OnceLock<Result<Schema, Diagnostic>> = std::sync::OnceLock::new();
        SCHEMA
            .get_or_init(Schema::embedded)
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn embedded() -> Result<Schema, Diagnostic> {
        let json: Value = serde_json::from_str(SCHEMA_TEXT).map_err(|e| {
            Diagnostic::error(
                Code::Schema,
                format!("internal: embedded schema is not JSON: {e}"),
            )
        })?;
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(false)
            .build(&json)
            .map_err(|e| {
                Diagnostic::error(
                    Code::Schema,
                    format!("internal: embedded schema does not compile: {e}"),
                )
            })?;
        let mut marked = Marked::default();
        marked.collect(&json, &json, &mut ValuePath::root(), false);
        Ok(Schema {
            json,
            validator,
            ignored: marked.ignored,
            removed: marked.removed,
            image_names: marked.image_names,
        })
    }

    /// Paths of the deployKF sections meshgen accepts and ignores.
    pub fn ignored_sections(&self) -> &[ValuePath] {
        &self.ignored
    }

    /// The keys older deployKF releases had and the current one dropped.
    pub fn removed_keys(&self) -> &[Removed] {
        &self.removed
    }

    /// Validate; returns errors (sorted by origin) and warnings.
    /// `instance` is `values` as JSON (converted once by the caller).
    pub fn validate(
        &self,
        values: &Values,
        instance: &Value,
        sources: &SourceMap,
    ) -> (Diagnostics, Diagnostics) {
        let mut errors = Diagnostics::default();
        let mut warnings = self.ignored_warnings(values, sources);
        for err in self.validator.iter_errors(instance) {
            let path = to_value_path(err.instance_path().segments());
            self.explain(
                err.kind(),
                err.instance(),
                &path,
                values,
                &mut errors,
                &mut warnings,
            );
        }
        self.unknown_null_keys(values, &mut errors, &mut warnings);
        warnings.extend(self.removed_warnings(values, sources));
        errors.sort();
        warnings.sort();
        (errors, warnings)
    }

    /// An unknown `key` of the map at `path`, written at `at`: an error,
    /// or a warning where meshgen renders nothing from it.
    fn unknown_key(
        &self,
        path: &ValuePath,
        key: &str,
        at: Option<crate::source::Origin>,
        out: &mut Diagnostics,
        warnings: &mut Diagnostics,
    ) {
        let known = self.known_keys(path);
        let key_path = path.key(key);
        let hint = suggest(key, known.iter().map(String::as_str))
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| expected_keys(&known));
        // meshgen's output does not depend on it, and deployKF
        // forks add keys there: worth a look, not a failure.
        if self.unrendered(path) {
            warnings.push(
                Diagnostic::warning(Code::UnknownKeyIgnored, format!(
                    "unknown key `{key}`{hint} (no deployKF release has it; meshgen does not render this section, so it is accepted and has no effect)"
                ))
                .at_path(key_path)
                .at(at),
            );
        } else if path.last_key() == Some("images") && self.image_names.contains(key) {
            // deployKF's charts read only the images they run,
            // and forks pin one more (aws-samples' EKS values
            // pin `kubectl` for cert-manager): a name other
            // sections use is not a typo here.
            warnings.push(
                Diagnostic::warning(Code::ImageKeyUnused, format!(
                    "unknown key `{key}`: this section runs no `{key}` image (other deployKF sections do), so it has no effect{hint}"
                ))
                .at_path(key_path)
                .at(at),
            );
        } else {
            out.push(
                Diagnostic::error(Code::Schema, format!("unknown key `{key}`{hint}"))
                    .at_path(key_path)
                    .at(at),
            );
        }
    }

    /// Issue 30: a key set to `null` is gone from the merged values, so
    /// the validator never sees it; a key the schema does not know
    /// (its map has `additionalProperties: false`) is still refused,
    /// at the `null`. A later layer that set it again was validated.
    fn unknown_null_keys(
        &self,
        values: &Values,
        out: &mut Diagnostics,
        warnings: &mut Diagnostics,
    ) {
        for (path, at) in &values.deleted {
            let (Some(parent), Some(Segment::Key(key))) = (path.parent(), path.0.last()) else {
                continue;
            };
            if values.get(path).is_some() || values.get(&parent).is_none() {
                continue;
            }
            let Some(node) = self.node_at(&parent) else {
                continue;
            };
            let closed = node.get("additionalProperties") == Some(&Value::Bool(false))
                && node.get("patternProperties").is_none();
            let known = node.get("properties").and_then(|p| p.get(key)).is_some();
            if closed && !known {
                self.unknown_key(&parent, key, Some(*at), out, warnings);
            }
        }
    }

    /// One warning per removed key the user set, where they set it.
    fn removed_warnings(&self, values: &Values, sources: &SourceMap) -> Diagnostics {
        let mut out = Diagnostics::default();
        for removed in &self.removed {
            let Some(node) = values.get(&removed.path) else {
                continue;
            };
            if let Some(at) = crate::values::first_user_origin(node, sources) {
                out.push(
                    Diagnostic::warning(
                        Code::RemovedKey,
                        format!(
                            "removed in deployKF {} (known in {}); it has no effect",
                            removed.removed_in, removed.known_in
                        ),
                    )
                    .at_path(removed.path.clone())
                    .at(values.key_origin(&removed.path).or(Some(at))),
                );
            }
        }
        out
    }

    /// Whether `path` lies in a part of the values meshgen renders nothing
    /// from: an ignored deployKF section, or a group of them.
    fn unrendered(&self, path: &ValuePath) -> bool {
        let marked = |node: &Value| {
            [IGNORED, IGNORED_GROUP]
                .iter()
                .any(|m| node.get(*m).and_then(Value::as_bool) == Some(true))
        };
        let mut node = self.deref(&self.json);
        for seg in &path.0 {
            let Segment::Key(k) = seg else {
                return false;
            };
            let Some(child) = node.get("properties").and_then(|p| p.get(k)) else {
                return false;
            };
            node = self.deref(child);
            if marked(node) {
                return true;
            }
        }
        false
    }

    fn ignored_warnings(&self, values: &Values, sources: &SourceMap) -> Diagnostics {
        let mut out = Diagnostics::default();
        for section in &self.ignored {
            let Some(node) = values.get(section) else {
                continue;
            };
            // A section the defaults hold counts once the user sets any key in it.
            if let Some(at) = crate::values::first_user_origin(node, sources) {
                let from_user = sources.get(node.origin.source).kind != SourceKind::Defaults;
                let at = if from_user {
                    values.key_origin(section).unwrap_or(at)
                } else {
                    at
                };
                out.push(
                    Diagnostic::warning(Code::SectionIgnored, format!(
                        "ignored: meshgen does not render {section} (a deployKF section; its keys are accepted and have no effect)"
                    ))
                    .at(Some(at)),
                );
            }
        }
        out
    }

    fn explain(
        &self,
        kind: &ValidationErrorKind,
        instance: &Value,
        path: &ValuePath,
        values: &Values,
        out: &mut Diagnostics,
        warnings: &mut Diagnostics,
    ) {
        let origin = values.origin_of(path);
        let node = values.get(path);
        let plain = node.and_then(|n| n.plain_text());
        let message = match kind {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    let at = values.key_origin(&path.key(key)).or(origin);
                    self.unknown_key(path, key, at, out, warnings);
                }
                return;
            }
            ValidationErrorKind::Type { kind } => {
                let expected: Vec<&str> = match kind {
                    TypeKind::Single(t) => vec![t.as_str()],
                    TypeKind::Multiple(set) => set.iter().map(|t| t.as_str()).collect(),
                };
                type_message(&expected, instance, plain)
            }
            ValidationErrorKind::Enum { options } => {
                let opts: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().map(crate::yaml::emit::inline).collect())
                    .unwrap_or_default();
                let hint = instance
                    .as_str()
                    .and_then(|s| suggest(s, opts.iter().map(|o| o.trim_matches('"'))))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                format!(
                    "must be one of {}, got {}{hint}",
                    opts.join(", "),
                    describe(instance)
                )
            }
            ValidationErrorKind::Pattern { pattern } => {
                let what = self
                    .node_at(path)
                    .and_then(|n| n.get("x-meshgen-expected"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("a string matching /{pattern}/"));
                format!("expected {what}, got {}", describe(instance))
            }
            ValidationErrorKind::PropertyNames { error } => {
                let key = error.instance().as_str().unwrap_or_default().to_string();
                let key_path = path.key(&key);
                let what = self
                    .node_at(path)
                    .and_then(|n| n.get("propertyNames"))
                    .and_then(|n| n.get("x-meshgen-expected"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| error.to_string());
                out.push(
                    Diagnostic::error(
                        Code::Schema,
                        format!(
                            "invalid key {}: expected {what}",
                            serde_json::to_string(&key).unwrap_or_default()
                        ),
                    )
                    .at_path(key_path.clone())
                    .at(values.key_origin(&key_path).or(origin)),
                );
                return;
            }
            ValidationErrorKind::Minimum { limit } => {
                format!("must be at least {limit}, got {}", describe(instance))
            }
            ValidationErrorKind::Maximum { limit } => {
                format!("must be at most {limit}, got {}", describe(instance))
            }
            ValidationErrorKind::ExclusiveMinimum { limit } => {
                format!("must be greater than {limit}, got {}", describe(instance))
            }
            ValidationErrorKind::ExclusiveMaximum { limit } => {
                format!("must be less than {limit}, got {}", describe(instance))
            }
            ValidationErrorKind::MinLength { limit } => {
                format!(
                    "must be at least {limit} characters long, got {}",
                    describe(instance)
                )
            }
            ValidationErrorKind::MaxLength { limit } => format!(
                "must be at most {limit} characters long, got {} characters",
                instance.as_str().map_or(0, |s| s.chars().count())
            ),
            ValidationErrorKind::MinProperties { limit } => {
                format!(
                    "must have at least {limit} entr{}",
                    if *limit == 1 { "y" } else { "ies" }
                )
            }
            ValidationErrorKind::MinItems { limit } => format!("must have at least {limit} items"),
            ValidationErrorKind::MaxItems { limit } => format!("must have at most {limit} items"),
            ValidationErrorKind::Required { property } => {
                let p = property.as_str().unwrap_or_default();
                if let Some(at) = values.deleted_at(&path.key(p)) {
                    out.push(
                        Diagnostic::error(Code::Schema,
                            "is required and cannot be deleted: this `null` removed it and its defaults; set the keys you want to change inside it instead",
                        )
                        .at_path(path.key(p))
                        .at(Some(at)),
                    );
                    return;
                }
                format!("missing required key `{p}`")
            }
            ValidationErrorKind::UniqueItems => "items must be unique".to_string(),
            other => format!("invalid value ({})", other.keyword()),
        };
        out.push(
            Diagnostic::error(Code::Schema, message)
                .at_path(path.clone())
                .at(origin),
        );
    }

    /// The schema node describing the value at `path`.
    pub fn node_at(&self, path: &ValuePath) -> Option<&Value> {
        let mut node = self.deref(&self.json);
        for seg in &path.0 {
            node = match seg {
                Segment::Key(k) => node
                    .get("properties")
                    .and_then(|p| p.get(k))
                    .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?,
                Segment::Index(_) => node.get("items")?,
            };
            node = self.deref(node);
        }
        Some(node)
    }

    /// Whether `path` can name a value under this schema: each key a
    /// property (or an `additionalProperties` schema) of its node, each
    /// index an item, through `anyOf`/`oneOf` branches; a free-form
    /// object (no `properties`, `additionalProperties` not false) holds
    /// any path. The rules' diagnostics are checked against it in debug
    /// builds (`rules::error_at`): a misspelt key path would otherwise
    /// lose its location silently.
    pub fn names(&self, path: &ValuePath) -> bool {
        self.names_from(&self.json, &path.0)
    }

    fn names_from(&self, node: &Value, path: &[Segment]) -> bool {
        let node = self.deref(node);
        let Some((seg, rest)) = path.split_first() else {
            return true;
        };
        let branched = ["anyOf", "oneOf", "allOf"]
            .iter()
            .filter_map(|k| node.get(*k).and_then(Value::as_array))
            .flatten()
            .any(|b| self.names_from(b, path));
        if branched {
            return true;
        }
        match seg {
            Segment::Key(k) => {
                if let Some(n) = node.get("properties").and_then(|p| p.get(k)) {
                    return self.names_from(n, rest);
                }
                match node.get("additionalProperties") {
                    Some(a) if a.is_object() => self.names_from(a, rest),
                    Some(Value::Bool(false)) => false,
                    _ => node.get("properties").is_none() && node.get("items").is_none(),
                }
            }
            Segment::Index(_) => match node.get("items") {
                Some(items) => self.names_from(items, rest),
                None => node.get("properties").is_none(),
            },
        }
    }

    fn deref<'a>(&'a self, node: &'a Value) -> &'a Value {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) if r.starts_with('#') => self.json.pointer(&r[1..]).unwrap_or(node),
            _ => node,
        }
    }

    fn known_keys(&self, path: &ValuePath) -> Vec<String> {
        self.node_at(path)
            .and_then(|n| n.get("properties"))
            .and_then(Value::as_object)
            .map(|p| p.keys().filter(|k| *k != "$schema").cloned().collect())
            .unwrap_or_default()
    }
}

/// The marked nodes of the schema, found once when it is compiled.
#[derive(Default)]
struct Marked {
    ignored: Vec<ValuePath>,
    removed: Vec<Removed>,
    /// The name of every image any section's `images` map knows.
    image_names: std::collections::BTreeSet<String>,
}

impl Marked {
    fn collect(&mut self, root: &Value, node: &Value, path: &mut ValuePath, in_ignored: bool) {
        let node = match node.get("$ref").and_then(Value::as_str) {
            Some(r) if r.starts_with('#') => root.pointer(&r[1..]).unwrap_or(node),
            _ => node,
        };
        let ignored = node.get(IGNORED).and_then(Value::as_bool) == Some(true);
        if ignored && !in_ignored {
            self.ignored.push(path.clone());
        }
        if let Some(removed) = node.get(REMOVED) {
            let text = |k: &str| removed.get(k).and_then(Value::as_str).unwrap_or("?");
            self.removed.push(Removed {
                path: path.clone(),
                removed_in: text("in").to_string(),
                known_in: text("known").to_string(),
            });
            // Its keys went with it: one warning says so.
            return;
        }
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            if path.last_key() == Some("images") {
                self.image_names.extend(props.keys().cloned());
            }
            for (k, child) in props {
                path.0.push(Segment::Key(k.clone()));
                self.collect(root, child, path, in_ignored || ignored);
                path.0.pop();
            }
        }
    }
}

fn to_value_path<'a>(segments: impl Iterator<Item = LocationSegment<'a>>) -> ValuePath {
    ValuePath(
        segments
            .map(|s| match s {
                LocationSegment::Property(p) => Segment::Key(p.into_owned()),
                LocationSegment::Index(i) => Segment::Index(i),
            })
            .collect(),
    )
}

/// A value as it appears in a message: one line, at most ~60 characters.
pub fn describe(v: &Value) -> String {
    let text = match v {
        Value::String(s) => format!(
            "the string {}",
            serde_json::to_string(s).unwrap_or_default()
        ),
        Value::Number(n) => format!("the number {n}"),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Null => "null".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    };
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn type_name(t: &str) -> &str {
    match t {
        "object" => "a map",
        "array" => "a list",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean (true or false)",
        "null" => "null",
        other => other,
    }
}

fn type_message(expected: &[&str], got: &Value, plain: Option<&str>) -> String {
    let names: Vec<&str> = expected.iter().map(|t| type_name(t)).collect();
    let mut msg = format!("expected {}, got {}", names.join(" or "), describe(got));
    let wants = |t: &str| expected.contains(&t);
    let yaml11 = |s: &str| {
        let l = s.to_ascii_lowercase();
        match l.as_str() {
            "yes" | "y" | "on" => Some("true"),
            "no" | "n" | "off" => Some("false"),
            _ => None,
        }
    };
    match (got, plain) {
        (Value::String(s), Some(p)) if wants("boolean") => {
            if let Some(b) = yaml11(s) {
                msg = format!(
                    "expected a boolean, got `{p}`, which YAML 1.1 reads as {b} but YAML 1.2 (and meshgen) reads as a string; write `{b}`"
                );
            }
        }
        (Value::Number(_) | Value::Bool(_), Some(p)) if wants("string") => {
            msg = format!(
                "expected a string, got `{p}`, which YAML reads as {}; quote it: \"{p}\"",
                describe(got).trim_start_matches("the ")
            );
        }
        (Value::String(s), _) if wants("integer") || wants("number") => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                let n = s.trim_start_matches('0');
                let n = if n.is_empty() { "0" } else { n };
                let unsigned = digits.trim_start_matches('0');
                msg = if s.parse::<i64>().is_err()
                    && !unsigned.is_empty()
                    && unsigned.parse::<i64>().is_err()
                {
                    format!("expected an integer, got {s}, which is beyond the 64-bit range (at most {})", i64::MAX)
                } else if plain.is_some() && digits.starts_with('0') && digits.len() > 1 {
                    format!("{msg}; leading zeros make it ambiguous (octal in YAML 1.1), write {n}")
                } else {
                    format!("{msg}; remove the quotes: {n}")
                };
            }
        }
        _ => {}
    }
    msg
}

fn expected_keys(known: &[String]) -> String {
    if known.is_empty() {
        "; this map takes no keys".into()
    } else if known.len() <= 12 {
        format!("; expected one of: {}", known.join(", "))
    } else {
        String::new()
    }
}

/// The closest candidate to `word`, if it is close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .filter_map(|c| {
            let d = strsim::levenshtein(&lower, &c.to_ascii_lowercase());
            let limit = (c.chars().count().max(word.chars().count()) / 3).max(1);
            (d <= limit).then_some((d, c))
        })
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_knows_keys_items_and_free_form_maps() {
        let schema = super::Schema::shared().unwrap();
        let p = |s: &str| crate::values::path::ValuePath::keys(s);
        assert!(schema.names(&p(
            "deploykf_core.deploykf_istio_gateway.gateway.ports.https"
        )));
        assert!(!schema.names(&p(
            "deploykf_core.deploykf_istio_gateway.gatway.ports.https"
        )));
        assert!(schema.names(
            &p("deploykf_core.deploykf_profiles_generator.profiles")
                .index(3)
                .key("name")
        ));
        assert!(!schema.names(
            &p("deploykf_core.deploykf_profiles_generator.profiles")
                .index(3)
                .key("nmae")
        ));
        // valuesOverrides is free-form: any path under it.
        assert!(schema.names(&p(
            "deploykf_dependencies.istio.valuesOverrides.istio-daemon.meshConfig"
        )));
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn suggests_close_keys_only() {
        let c = ["hostname", "ports", "tls", "selectorLabels"];
        assert_eq!(suggest("hostnme", c.iter().copied()), Some("hostname"));
        assert_eq!(suggest("HostName", c.iter().copied()), Some("hostname"));
        assert_eq!(
            suggest("selectorlabel", c.iter().copied()),
            Some("selectorLabels")
        );
        assert_eq!(suggest("banana", c.iter().copied()), None);
    }

    #[test]
    fn explains_yaml11_traps() {
        let m = type_message(&["boolean"], &json!("yes"), Some("yes"));
        assert!(m.contains("write `true`"), "{m}");
        let m = type_message(&["string"], &json!(1.3), Some("1.30"));
        assert!(m.contains("quote it: \"1.30\""), "{m}");
        let m = type_message(&["integer"], &json!("8443"), None);
        assert!(m.contains("remove the quotes: 8443"), "{m}");
        let m = type_message(&["integer"], &json!("010"), Some("010"));
        assert!(m.contains("write 10"), "{m}");
    }

    #[test]
    fn embedded_schema_compiles_and_marks_ignored_sections() {
        let s = Schema::embedded().unwrap();
        let ignored: Vec<String> = s.ignored_sections().iter().map(|p| p.to_string()).collect();
        assert!(
            ignored.contains(&"deploykf_opt.deploykf_minio".to_string()),
            "{ignored:?}"
        );
        assert!(!ignored
            .iter()
            .any(|p| p.starts_with("deploykf_core.deploykf_istio_gateway")));
    }

    #[test]
    fn knows_the_keys_older_releases_dropped() {
        let s = Schema::embedded().unwrap();
        assert_eq!(
            s.removed_keys(),
            [Removed {
                path: ValuePath::keys("kubeflow_tools.pipelines.kfpV2.minioFix"),
                removed_in: "0.1.5".into(),
                known_in: "0.1.0\u{2013}0.1.4".into(),
            }]
        );
    }

    #[test]
    fn unrendered_are_ignored_sections_and_groups_of_them_only() {
        let s = Schema::embedded().unwrap();
        let at = |p: &str| s.unrendered(&ValuePath::keys(p));
        assert!(at("kubeflow_tools"));
        assert!(at("kubeflow_tools.pipelines.kfpV2"));
        assert!(at("deploykf_dependencies.kyverno.images"));
        assert!(!at("deploykf_dependencies.cert_manager.images"));
        assert!(at("deploykf_core.deploykf_dashboard"));
        assert!(!at(""));
        assert!(!at("deploykf_core"));
        assert!(!at("deploykf_dependencies.cert_manager"));
        assert!(!at("deploykf_core.deploykf_istio_gateway.gateway"));
    }
}

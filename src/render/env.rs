//! The minijinja environment: strict undefined values, every embedded
//! template, and the one way a value reaches YAML.
//!
//! In `.yaml.j2` templates `{{ x }}` is auto-escaped by [`yaml_formatter`]:
//! the value is written as one YAML scalar (or JSON flow collection) by
//! `yaml::emit`, quoted whenever a reader could misread it. The filter
//! `toyaml(indent)` writes a map or list in block style through the same
//! emitter, and `toblock(indent)` a multi-line string as a literal block. There is no other way to print a value into a YAML file.

use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::yaml::emit;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior};

const YAML_ESCAPE: &str = "yaml";

fn is_yaml_escape(a: &AutoEscape) -> bool {
    matches!(a, AutoEscape::Custom(name) if name == YAML_ESCAPE)
}

/// The environment, built once per process: a fleet renders many trees
/// from the same templates.
pub fn shared() -> Result<&'static Environment<'static>, Diagnostic> {
    static ENV: std::sync::OnceLock<Result<Environment<'static>, Diagnostic>> =
        std::sync::OnceLock::new();
    ENV.get_or_init(build).as_ref().map_err(Clone::clone)
}

pub fn build() -> Result<Environment<'static>, Diagnostic> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_debug(true);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".yaml.j2") || name.ends_with(".yml.j2") {
            AutoEscape::Custom(YAML_ESCAPE.into())
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(yaml_formatter);
    env.add_filter("toyaml", toyaml);
    env.add_filter("toblock", toblock);
    for (name, source) in super::templates() {
        env.add_template(name, source)
            .map_err(|e| template_error(&e))?;
    }
    Ok(env)
}

fn to_json(value: &Value) -> Result<serde_json::Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))
}

/// Write `{{ value }}`: safe strings (from `toyaml`) as they are; in YAML
/// templates every other value as a YAML-safe scalar.
fn yaml_formatter(
    out: &mut Output<'_>,
    state: &mut State<'_, '_>,
    value: &Value,
) -> Result<(), Error> {
    if !is_yaml_escape(state.auto_escape()) || value.is_safe() {
        return minijinja::escape_formatter(out, state, value);
    }
    // Strings (almost every value) skip the JSON round trip.
    let text = match value.as_str() {
        // A plain-safe string is its own scalar: written without a copy.
        Some(s) if emit::is_plain_safe(s) => return out.write_str(s).map_err(Error::from),
        Some(s) => emit::string(s),
        None => emit::inline(&to_json(value)?),
    };
    out.write_str(&text).map_err(Error::from)
}

/// `{{ map | toyaml(4) }}`: a block map or list; lines after the first are
/// indented by the given number of spaces.
fn toyaml(value: &Value, indent: usize) -> Result<Value, Error> {
    if let Some(text) = flat_block(value, indent) {
        return Ok(Value::from_safe_string(text));
    }
    Ok(Value::from_safe_string(emit::block(
        &to_json(value)?,
        indent,
    )))
}

/// `toyaml` of a list of strings or a map of strings to strings (a
/// profile's users, labels, annotations), written from the strings
/// themselves: the same text as through JSON (the emitter's tests say so),
/// without converting each list into a JSON value first. `None` for
/// anything else.
fn flat_block(value: &Value, indent: usize) -> Option<String> {
    use minijinja::value::ObjectRepr;
    let object = value.as_object()?;
    match object.repr() {
        ObjectRepr::Seq => {
            let items: Vec<Value> = object.try_iter()?.collect();
            let strings: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            Some(emit::block_of_strings(&strings?, indent))
        }
        ObjectRepr::Map => {
            let pairs: Vec<(Value, Value)> = object.try_iter_pairs()?.collect();
            let entries: Option<Vec<(&str, &str)>> = pairs
                .iter()
                .map(|(k, v)| Some((k.as_str()?, v.as_str()?)))
                .collect();
            Some(emit::block_of_string_map(&entries?, indent))
        }
        _ => None,
    }
}

/// `{{ text | toblock(4) }}`: a multi-line string as a literal block
/// scalar whose lines are indented by the given number of spaces.
fn toblock(value: &Value, indent: usize) -> Result<Value, Error> {
    let text = value
        .as_str()
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "toblock expects a string"))?;
    Ok(Value::from_safe_string(emit::literal(text, indent)))
}

/// A template error: the template name, line and minijinja's explanation.
pub fn template_error(e: &Error) -> Diagnostic {
    let at = match (e.name(), e.line()) {
        (Some(name), Some(line)) => format!(" at templates/{name}:{line}"),
        (Some(name), None) => format!(" in templates/{name}"),
        _ => String::new(),
    };
    let mut message = format!("internal: template failed{at}: {}", e.kind());
    if let Some(detail) = e.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    Diagnostic::error(Code::Template, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hostile string printed by `{{ }}` in a YAML template stays one
    /// scalar: it cannot add a key, end the document or start a comment.
    #[test]
    fn values_cannot_inject_yaml() {
        let mut env = build().unwrap();
        env.add_template("t.yaml.j2", "a: {{ v }}\nb:\n  {{ m | toyaml(2) }}\n")
            .unwrap();
        for hostile in [
            "x\"\n  evil: true",
            "x\nevil: true",
            "# comment",
            "---\nkind: Secret",
            "yes",
            "*alias",
            "{a: 1}",
            "'q'",
            "a: b",
        ] {
            let ctx =
                minijinja::context! { v => hostile, m => minijinja::context! { k => hostile } };
            let out = env.get_template("t.yaml.j2").unwrap().render(ctx).unwrap();
            let docs = crate::yaml::load_documents(&out, crate::source::SourceId(0)).unwrap();
            assert_eq!(docs.len(), 1, "{out}");
            let json = docs[0].as_ref().unwrap().to_json();
            assert_eq!(
                json,
                serde_json::json!({"a": hostile, "b": {"k": hostile}}),
                "{out}"
            );
        }
    }
}

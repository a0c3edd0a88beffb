//! Each component's `extraManifests`, read as deployKF reads them: every
//! item is a YAML string (one or more documents; deployKF's documented
//! form) or a map, and every document must be a Kubernetes object. A
//! namespaced object without `metadata.namespace` goes into its
//! component's namespace, as deployKF's Argo CD Application (its
//! destination namespace) would put it; a cluster-scoped one
//! (`kube::is_cluster_scoped`) keeps none.
//!
//! Besides the documents, it hands on where each object was written
//! ([`UserObject`]): the tree checks run after the render, on rendered
//! files, and name the values file and line for an object of yours
//! rather than the file meshgen generated from it.
//!
//! Template text. deployKF runs Helm's `tpl` over every extra manifest,
//! so its users write text meant for the cluster (an External Secrets
//! template such as `{{ .clientID | quote }}`) in Helm's raw-string escape:
//! `` {{ `{{ .clientID | quote }}` }} ``. meshgen evaluates no template, so
//! it turns exactly that escape into the literal it means (in the item's
//! text before it is parsed, as `tpl` does, or in each key and string of a
//! map item) and refuses any other `{{`: meshgen could not do what deployKF
//! would, and the same file must mean the same in both ([`unescape`]).
//!
//! It judges, unescapes and fills in a namespace; it changes nothing else
//! in a document.

use crate::code::Code;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::source::Origin;
use crate::values::path::ValuePath;
use crate::values::Values;
use serde_json::{Map, Value};

/// An object of an `extraManifests` item, and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserObject {
    pub api_version: String,
    pub kind: String,
    /// After defaulting; empty for a cluster-scoped object.
    pub namespace: String,
    pub name: String,
    /// The item: `<section>.extraManifests[i]`.
    pub path: ValuePath,
    /// Its place in a YAML string holding more than one document.
    pub document: Option<usize>,
    /// Where the item was written.
    pub origin: Option<Origin>,
}

impl UserObject {
    /// An error about this object, at the item that holds it: `code` is
    /// the stage's (a rule's, or the tree checks').
    pub fn error(&self, code: Code, message: String) -> Diagnostic {
        let doc = self
            .document
            .map(|n| format!("document {n}, "))
            .unwrap_or_default();
        Diagnostic::error(code, format!("{doc}{} {}: {message}", self.kind, self.name))
            .at_path(self.path.clone())
            .at(self.origin)
    }
}

/// A component's parsed `extraManifests`.
#[derive(Debug, Default)]
pub struct Parsed {
    pub docs: Vec<Value>,
    pub objects: Vec<UserObject>,
}

/// Parse the `extraManifests` at `key` of a component whose
/// namespace is `namespace` (`None`: its objects live in namespaces of
/// their own, so each must name one).
pub fn parse(
    values: &Values,
    key: &ValuePath,
    namespace: Option<&str>,
    items: &[Value],
    diags: &mut Diagnostics,
) -> Parsed {
    let mut out = Parsed::default();
    for (i, item) in items.iter().enumerate() {
        let path = key.index(i);
        let origin = values.origin_of(&path);
        let at_item = |message: String| {
            Diagnostic::error(Code::Rule, message)
                .at_path(path.clone())
                .at(origin)
        };
        let refuse = |at: Unescaped| {
            at_item(format!(
                "holds `{{{{` at {at}, which only a template engine would read: meshgen evaluates no template and writes extraManifests as they are; to send `{{{{ ... }}}}` to the cluster (an External Secrets template, say), write it in Helm's escape as deployKF needs it, {{{{ `{{{{ .clientID }}}}` }}}}, which meshgen turns into {{{{ .clientID }}}}"
            ))
        };
        let docs: Vec<Value> = match item {
            Value::Object(_) => {
                let mut doc = item.clone();
                if let Err(at) = unescape_strings(&mut doc, &mut String::new()) {
                    diags.push(refuse(at));
                    continue;
                }
                vec![doc]
            }
            Value::String(text) => {
                let text = match unescape(text) {
                    Ok(t) => t,
                    Err(offset) => {
                        let line = text[..offset].matches('\n').count() + 1;
                        diags.push(refuse(Unescaped::Line(line)));
                        continue;
                    }
                };
                match crate::yaml::load_documents(&text, crate::source::SourceId(0)) {
                    Ok(docs) => docs.into_iter().flatten().map(|n| n.to_json()).collect(),
                    Err(e) => {
                        diags.push(at_item(format!(
                            "is not valid YAML (line {} of the manifest: {})",
                            e.origin.pos.line, e.message
                        )));
                        continue;
                    }
                }
            }
            other => {
                diags.push(at_item(format!(
                    "expected a manifest (a map, or a YAML string), got {}",
                    crate::schema::describe(other)
                )));
                continue;
            }
        };
        if docs.is_empty() {
            diags.push(at_item("holds no document".into()));
        }
        let several = docs.len() > 1;
        for (n, mut doc) in docs.into_iter().enumerate() {
            let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
            let (Some(api_version), Some(kind), Some(name)) = (
                text(&doc["apiVersion"]),
                text(&doc["kind"]),
                text(&doc["metadata"]["name"]),
            ) else {
                diags.push(at_item(format!(
                    "document {n} is not a Kubernetes object: it needs apiVersion, kind and metadata.name"
                )));
                continue;
            };
            let object = |namespace: String| UserObject {
                api_version: api_version.clone(),
                kind: kind.clone(),
                namespace,
                name: name.clone(),
                path: path.clone(),
                document: several.then_some(n),
                origin,
            };
            let namespace = match text(&doc["metadata"]["namespace"]) {
                Some(ns) => ns,
                None if crate::kube::is_cluster_scoped(&api_version, &kind) => String::new(),
                None => match namespace {
                    Some(ns) => {
                        set_namespace(&mut doc, ns);
                        ns.to_string()
                    }
                    None => {
                        diags.push(object(String::new()).error(Code::Rule, format!(
                            "a namespaced object without metadata.namespace, and `{}` has no namespace of its own to put it in; set metadata.namespace",
                            key.parent().as_ref().unwrap_or(key)
                        )));
                        continue;
                    }
                },
            };
            out.objects.push(object(namespace));
            out.docs.push(doc);
        }
    }
    out
}

/// Where a `{{` outside the escape was found.
enum Unescaped {
    /// The line of a YAML string item.
    Line(usize),
    /// The key path inside a map item (`data.note`).
    Key(String),
}

impl std::fmt::Display for Unescaped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unescaped::Line(n) => write!(f, "line {n} of the manifest"),
            Unescaped::Key(k) if k.is_empty() => f.write_str("a key of the manifest"),
            Unescaped::Key(k) => write!(f, "`{k}` of the manifest"),
        }
    }
}

/// `text` with every Helm raw-string escape `` {{ `...` }} `` (spaces
/// allowed around the backquoted text, none inside the braces; Go's
/// template grammar, text/template/parse/lex.go `lexRawQuote`: a raw string
/// is everything up to the next backquote) replaced by what it quotes.
/// `Err` is the byte offset of a `{{` that starts anything else.
pub fn unescape(text: &str) -> Result<std::borrow::Cow<'_, str>, usize> {
    if !text.contains("{{") {
        return Ok(text.into());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("{{") {
        let offset = text.len() - rest.len() + at;
        out.push_str(&rest[..at]);
        let after = rest[at + 2..].trim_start_matches(' ');
        let quoted = after
            .strip_prefix('`')
            .and_then(|q| q.find('`').map(|end| (&q[..end], &q[end + 1..])));
        let Some((literal, tail)) = quoted else {
            return Err(offset);
        };
        let Some(tail) = tail.trim_start_matches(' ').strip_prefix("}}") else {
            return Err(offset);
        };
        out.push_str(literal);
        rest = tail;
    }
    out.push_str(rest);
    Ok(out.into())
}

/// [`unescape`] every key and string of a map item, in place; `Err` names
/// where one holds another `{{` (`at` is the key path walked so far).
fn unescape_strings(v: &mut Value, at: &mut String) -> Result<(), Unescaped> {
    let refuse = |at: &str| Unescaped::Key(at.to_string());
    match v {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(new) = unescape(s).map_err(|_| refuse(at))? {
                *s = new;
            }
        }
        Value::Array(list) => {
            for (i, item) in list.iter_mut().enumerate() {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                unescape_strings(item, at)?;
                at.truncate(len);
            }
        }
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut value) in entries {
                let len = at.len();
                if !at.is_empty() {
                    at.push('.');
                }
                // A key's own text is not the user's to be printed whole.
                let key = match unescape(&key) {
                    Ok(k) => k.into_owned(),
                    Err(_) => return Err(refuse(at.trim_end_matches('.'))),
                };
                at.push_str(&key);
                unescape_strings(&mut value, at)?;
                at.truncate(len);
                map.insert(key, value);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Put `doc` in `namespace`: `metadata.namespace` right after
/// `metadata.name`, where a person would write it.
fn set_namespace(doc: &mut Value, namespace: &str) {
    let Some(Value::Object(meta)) = doc.get_mut("metadata") else {
        return;
    };
    let mut out = Map::new();
    for (k, v) in std::mem::take(meta) {
        let is_name = k == "name";
        if k != "namespace" {
            out.insert(k, v);
        }
        if is_name {
            out.insert("namespace".into(), Value::String(namespace.into()));
        }
    }
    *meta = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn helm_escapes_become_their_literal_and_nothing_else_passes() {
        for (text, want) in [
            ("plain", "plain"),
            ("{{ `{{ .clientID | quote }}` }}", "{{ .clientID | quote }}"),
            (
                "a: \"{{`{{ .x }}`}}\" b: {{  `}}`  }}",
                "a: \"{{ .x }}\" b: }}",
            ),
            ("{{ `` }}", ""),
            ("}} alone", "}} alone"),
        ] {
            assert_eq!(unescape(text).as_deref(), Ok(want), "{text}");
        }
        for (text, at) in [
            ("{{ .Values.x }}", 0),
            ("ok {{ 7*7 }}", 3),
            ("{{ `unterminated }}", 0),
            ("{{ `x` | quote }}", 0),
            ("{{- `x` -}}", 0),
            ("{{ `a` }} then {{\"{{\"}}", 15),
            ("{{ `a`", 0),
        ] {
            assert_eq!(unescape(text), Err(at), "{text}");
        }
    }

    #[test]
    fn namespace_goes_after_the_name() {
        let mut doc = json!({"metadata": {"labels": {"a": "b"}, "name": "x", "namespace": null, "annotations": {}}});
        set_namespace(&mut doc, "edge");
        let keys: Vec<&String> = doc["metadata"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["labels", "name", "namespace", "annotations"]);
        assert_eq!(doc["metadata"]["namespace"], "edge");
    }
}

//! Each component's `patches` (`config::Patch`), read into what its
//! `kustomization.yaml` will hold: kustomize's `patches` entry, the patch
//! as a YAML string. A map is a strategic-merge patch, which kustomize
//! parses as an object: it needs `kind` and `metadata.name`, which are
//! the target's, so they are filled in (kustomize
//! `api/filters/patchstrategicmerge`; without them kustomize fails with
//! "unable to parse SM or JSON patch"). A list is a JSON 6902 patch: every
//! operation needs `op` (RFC 6902 §4) and a `path` that is a JSON pointer
//! (RFC 6901). A string is parsed as YAML, then read the same way.
//!
//! Whether the target is an object the component renders is known only
//! after the render: the tree checks (`check::patches`) report a patch
//! that matches nothing at its key, from the origin handed on here.

use crate::code::Code;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::source::Origin;
use crate::values::path::ValuePath;
use crate::values::Values;
use serde_json::{json, Value};

/// A patch of the user's, ready for a `kustomization.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPatch {
    pub kind: String,
    pub name: String,
    /// The patch, as kustomize reads it (YAML text).
    pub text: String,
    /// `<section>.patches[i]`.
    pub path: ValuePath,
    pub origin: Option<Origin>,
}

impl UserPatch {
    /// kustomize's `patches` entry.
    pub fn entry(&self) -> Value {
        json!({"target": {"kind": self.kind, "name": self.name}, "patch": self.text})
    }

    /// An error about this patch, at its item (the tree checks', which
    /// see what it patches).
    pub fn error(&self, message: String) -> Diagnostic {
        Diagnostic::error(Code::Tree, message)
            .at_path(self.path.clone())
            .at(self.origin)
    }
}

/// A `valuesOverrides` key of a chart meshgen does not render through,
/// as meshgen applies it (`component::Overrides::Patches`).
#[derive(Debug)]
pub enum Mapped {
    /// A strategic-merge patch of the component's `kind` object `name`.
    Patch {
        path: ValuePath,
        kind: &'static str,
        name: String,
        body: Value,
    },
    /// No equivalent, or one meshgen has its own key for: why.
    Refused { path: ValuePath, message: String },
}

/// The strategic-merge patch `body` of `kind` `name`, ready for a
/// `kustomization.yaml`: kustomize needs the patch's own `kind` and
/// `metadata.name`, which are the target's.
pub fn strategic(
    kind: &str,
    name: &str,
    body: serde_json::Map<String, Value>,
    path: ValuePath,
    origin: Option<Origin>,
) -> Result<UserPatch, &'static str> {
    let mut map = body;
    let mut head = serde_json::Map::new();
    head.insert("kind".into(), kind.into());
    let mut metadata = match map.remove("metadata") {
        Some(Value::Object(m)) => m,
        Some(_) => return Err("`metadata` must be a map"),
        None => serde_json::Map::new(),
    };
    metadata.insert("name".into(), name.into());
    map.remove("kind");
    head.insert("metadata".into(), Value::Object(metadata));
    head.extend(map);
    Ok(UserPatch {
        kind: kind.to_string(),
        name: name.to_string(),
        text: crate::yaml::emit::document(&Value::Object(head)),
        path,
        origin,
    })
}

const OPS: &[&str] = &["add", "remove", "replace", "move", "copy", "test"];

/// Read the `patches` at `key`.
pub fn parse(
    values: &Values,
    key: &ValuePath,
    patches: &[crate::config::Patch],
    diags: &mut Diagnostics,
) -> Vec<UserPatch> {
    let mut out = Vec::new();
    for (i, p) in patches.iter().enumerate() {
        let path = key.index(i);
        let at = path.key("patch");
        let origin = values.origin_of(&at);
        let fail = |message: String| {
            Diagnostic::error(Code::Rule, message)
                .at_path(at.clone())
                .at(origin)
        };
        let body = match &p.patch {
            Value::String(text) => match crate::yaml::load_json_documents(text) {
                Ok(mut docs) if docs.len() == 1 => docs.remove(0),
                Ok(docs) => {
                    diags.push(fail(format!(
                            "holds {} YAML documents; a patch is one map (strategic merge) or one list (JSON 6902)",
                            docs.len()
                        )));
                    continue;
                }
                Err(e) => {
                    diags.push(fail(format!("is not valid YAML: {}", e.message)));
                    continue;
                }
            },
            other => other.clone(),
        };
        let item_origin = values.origin_of(&path);
        let body = match body {
            Value::Object(map) => {
                match strategic(&p.target.kind, &p.target.name, map, path, item_origin) {
                    Ok(patch) => out.push(patch),
                    Err(message) => diags.push(fail(message.into())),
                }
                continue;
            }
            Value::Array(ops) => {
                let mut bad = None;
                for (n, op) in ops.iter().enumerate() {
                    let kind = op.get("op").and_then(Value::as_str);
                    let pointer = op.get("path").and_then(Value::as_str);
                    if !kind.is_some_and(|k| OPS.contains(&k)) {
                        bad = Some(format!(
                            "operation {n} needs `op`: one of {}",
                            OPS.join(", ")
                        ));
                    } else if !pointer.is_some_and(|p| p.starts_with('/')) {
                        bad = Some(format!(
                            "operation {n} needs `path`: a JSON pointer such as /spec/replicas"
                        ));
                    }
                    if bad.is_some() {
                        break;
                    }
                }
                if ops.is_empty() {
                    bad = Some("is an empty list of operations".into());
                }
                if let Some(message) = bad {
                    diags.push(fail(message));
                    continue;
                }
                Value::Array(ops)
            }
            other => {
                diags.push(fail(format!(
                    "expected a map (a strategic-merge patch) or a list (JSON 6902 operations), got {}",
                    crate::schema::describe(&other)
                )));
                continue;
            }
        };
        out.push(UserPatch {
            kind: p.target.kind.clone(),
            name: p.target.name.clone(),
            text: crate::yaml::emit::document(&body),
            path,
            origin: item_origin,
        });
    }
    out
}

//! The tree the request model reads: every Kubernetes object of a
//! rendered tree, by the file it is in. Loaded from a render
//! ([`from_generated`]) or from files on disk ([`load`]), with other
//! manifests merged in (`--with`). It only reads; it never renders.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The objects of a tree: file path (relative to the tree) → its
/// documents, each a JSON object.
pub type Tree = BTreeMap<String, Vec<Value>>;

/// Files that configure a tool rather than hold objects (as the check
/// stage's `CONFIG_FILES`).
const CONFIG_FILES: &[&str] = &["kustomization.yaml", "Chart.yaml", "values.yaml"];

/// The object documents of one file's text (empty documents and
/// non-objects dropped).
fn objects(text: &str) -> Result<Vec<Value>, String> {
    crate::yaml::load_json_documents(text)
        .map(|docs| docs.into_iter().filter(Value::is_object).collect())
        .map_err(|e| e.message)
}

/// A file the model reads: YAML, not a tool's configuration.
fn is_manifest(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    (name.ends_with(".yaml") || name.ends_with(".yml")) && !CONFIG_FILES.contains(&name)
}

/// The directories of `files` that hold a Helm chart (a `Chart.yaml`):
/// their templates are Helm's to render, not objects.
fn chart_dirs<'a>(files: impl Iterator<Item = &'a str>) -> Vec<String> {
    files
        .filter_map(|p| p.strip_suffix("Chart.yaml"))
        .filter(|d| d.is_empty() || d.ends_with('/'))
        .map(String::from)
        .collect()
}

fn in_chart(path: &str, charts: &[String]) -> bool {
    charts.iter().any(|c| path.starts_with(c.as_str()))
}

/// The objects of a render (as `meshgen generate -o` would write them).
/// meshgen's own files parse by construction (the check stage parsed
/// them); one that did not would be left out.
pub fn from_generated(generated: &crate::Generated) -> Tree {
    let charts = chart_dirs(generated.files.keys().map(String::as_str));
    generated
        .files
        .iter()
        .filter(|(p, _)| is_manifest(p) && !in_chart(p, &charts))
        .filter_map(|(p, text)| objects(text).ok().map(|d| (p.clone(), d)))
        .collect()
}

/// Every manifest file under `dir` (kustomizations and Helm charts left
/// out), keyed by its path relative to `dir`, then every file of `with`
/// (a file, or a directory read the same way), keyed by its path as given.
pub fn load(dir: &Path, with: &[PathBuf]) -> Result<Tree, String> {
    let mut tree = Tree::new();
    read_dir_into(dir, None, &mut tree)?;
    merge_with(&mut tree, with)?;
    Ok(tree)
}

/// Adds the files of `with` to `tree` (see [`load`]).
pub fn merge_with(tree: &mut Tree, with: &[PathBuf]) -> Result<(), String> {
    for extra in with {
        let label = extra.display().to_string();
        if extra.is_dir() {
            read_dir_into(extra, Some(&label), tree)?;
        } else {
            let text = std::fs::read_to_string(extra).map_err(|e| format!("{label}: {e}"))?;
            let docs = objects(&text).map_err(|e| format!("{label}: {e}"))?;
            tree.insert(label, docs);
        }
    }
    Ok(())
}

/// The manifest files under `dir`, keyed relative to it (prefixed with
/// `prefix/` when given).
fn read_dir_into(dir: &Path, prefix: Option<&str>, tree: &mut Tree) -> Result<(), String> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    let charts = chart_dirs(files.iter().map(|(rel, _)| rel.as_str()));
    for (rel, path) in files {
        if !is_manifest(&rel) || in_chart(&rel, &charts) {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let docs = objects(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let key = match prefix {
            Some(p) => format!("{}/{rel}", p.trim_end_matches('/')),
            None => rel,
        };
        tree.insert(key, docs);
    }
    Ok(())
}

/// Every file under `dir`: (path relative to `root` with `/`, full path).
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let rel = path
                .strip_prefix(root)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((rel.join("/"), path));
        }
    }
    Ok(())
}

/// Every object of the tree with the file it is in.
pub fn all_docs(t: &Tree) -> impl Iterator<Item = (&String, &Value)> {
    t.iter().flat_map(|(p, d)| d.iter().map(move |x| (p, x)))
}

/// The one object of the file `path`, if the tree has it with exactly one.
pub fn one<'a>(t: &'a Tree, path: &str) -> Option<&'a Value> {
    match t.get(path).map(Vec::as_slice) {
        Some([d]) => Some(d),
        _ => None,
    }
}

/// The items of a JSON list (none when it is not a list).
pub fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// A JSON string, or `""`.
pub fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// A JSON number as a port.
pub fn port_of(v: &Value) -> Option<u16> {
    v.as_u64().and_then(|n| u16::try_from(n).ok())
}

/// A JSON map of strings (labels, a selector) as a map; values that are
/// not strings are left out.
pub fn string_map_of(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
        .collect()
}

/// An object of the tree, as the model names it in a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The file of the tree it is in.
    pub file: String,
}

impl ObjectRef {
    pub fn of(file: &str, d: &Value) -> Self {
        ObjectRef {
            kind: text(&d["kind"]).to_string(),
            namespace: text(&d["metadata"]["namespace"]).to_string(),
            name: text(&d["metadata"]["name"]).to_string(),
            file: file.to_string(),
        }
    }

    /// The object of the tree that is `d` (compared by identity), if any.
    pub fn find(t: &Tree, d: &Value) -> Option<Self> {
        all_docs(t)
            .find(|(_, x)| std::ptr::eq(*x, d))
            .map(|(f, x)| Self::of(f, x))
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{} ({})", self.kind, self.name, self.file)
        } else {
            write!(
                f,
                "{}/{}/{} ({})",
                self.kind, self.namespace, self.name, self.file
            )
        }
    }
}

/// One step of the model's decision, naming the object that took it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub what: String,
    pub object: Option<ObjectRef>,
}

/// The steps that decided a request, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace(pub Vec<Step>);

impl Trace {
    pub fn note(&mut self, what: impl Into<String>, object: Option<ObjectRef>) {
        self.0.push(Step {
            what: what.into(),
            object,
        });
    }

    /// A step about the object `d` of `t`.
    pub fn about(&mut self, t: &Tree, d: &Value, what: impl Into<String>) {
        let object = ObjectRef::find(t, d);
        self.note(what, object);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_and_kustomizations_are_not_objects() {
        let files = ["a/Chart.yaml", "a/templates/x.yaml", "b/x.yaml"];
        let charts = chart_dirs(files.into_iter());
        assert_eq!(charts, ["a/"]);
        assert!(in_chart("a/templates/x.yaml", &charts));
        assert!(!in_chart("b/x.yaml", &charts));
        assert!(!is_manifest("b/kustomization.yaml"));
        assert!(is_manifest("b/Service.yaml"));
    }
}

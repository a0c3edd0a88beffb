//! The tree the request model reads: every Kubernetes object of a
//! rendered tree, by the file it is in. Loaded from a render
//! ([`from_generated`]) or from files on disk ([`load`]), with other
//! manifests merged in (`--with`). It only reads; it never renders.

use crate::write::diff::MAX_COMPARED_BYTES;
pub use crate::yaml::block::Split;
use crate::yaml::load::{LoadError, Selection};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The objects of a tree: file path (relative to the tree) → its
/// documents, each a JSON object.
pub type Tree = BTreeMap<String, Vec<Value>>;

/// Files that configure a tool rather than hold objects (as the check
/// stage's `CONFIG_FILES`).
const CONFIG_FILES: &[&str] = &["kustomization.yaml", "Chart.yaml", "values.yaml"];

/// The parts of an object the access matrix reads (`*`: every list
/// item); the rest of each document is parsed and checked as strictly,
/// but not built, which keeps a tree of 10,000 profiles in memory.
pub const SELECT: Selection = &[
    &["apiVersion"],
    &["kind"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "labels"],
    &["spec", "action"],
    &["spec", "provider"],
    &["spec", "rules"],
    &["spec", "selector"],
    &["spec", "targetRefs"],
    &["spec", "jwtRules"],
    &["spec", "owner"],
    &["spec", "gatewayClassName"],
    &["spec", "servers"],
    &["spec", "listeners"],
    &["spec", "ports"],
    &["spec", "template", "metadata", "labels"],
    &["spec", "template", "spec", "serviceAccountName"],
    &["spec", "template", "spec", "containers", "*", "ports"],
    &["spec", "http"],
    &["spec", "hosts"],
    &["spec", "gateways"],
    &["spec", "parentRefs"],
    &["spec", "hostnames"],
    &["spec", "mtls"],
    // Of a RoleBinding, who and which role: not each subject's
    // `apiGroup` (issue 31: a profile's members are most of its objects).
    &["subjects", "*", "kind"],
    &["subjects", "*", "name"],
    &["subjects", "*", "namespace"],
    &["roleRef", "name"],
];

/// Only what an object is and where: for a first look at a large tree.
pub const IDENTITY: Selection = &[
    &["apiVersion"],
    &["kind"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "labels"],
];

/// What the matrix reads of a file before it knows the profiles (issue
/// 31): what an object is and where, and what its notes of unmodelled
/// objects read (`spec.action`, `spec.selector`).
pub const LIGHT: Selection = &[
    &["apiVersion"],
    &["kind"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "labels"],
    &["spec", "action"],
    &["spec", "selector"],
];

/// The manifests of a tree, read file by file when asked, not held:
/// the access matrix reads each profile's files when it computes that
/// profile's cells, and drops them (issue 31: at 10,000 profiles the
/// objects of a whole tree took 690 MiB).
pub struct Lazy<'a> {
    keys: Vec<String>,
    from: LazyFrom<'a>,
}

enum LazyFrom<'a> {
    /// A directory on disk, as [`load_as`] reads it.
    Dir(&'a Path),
    /// A render's files, as [`from_files_as`] reads them (a file that is
    /// not YAML is left out).
    Files(&'a crate::write::Files),
}

impl<'a> Lazy<'a> {
    /// The manifests under directory `dir`, Helm charts left out.
    pub fn dir(dir: &'a Path) -> Result<Lazy<'a>, String> {
        // A file is no tree: nothing in it is read (as `load_as`).
        let names = if dir.is_file() {
            Vec::new()
        } else {
            crate::write::list_files(dir).map_err(|d| d.message)?
        };
        let charts = chart_dirs(names.iter().map(String::as_str));
        let keys = names
            .into_iter()
            .filter(|n| is_manifest(n) && !in_chart(n, &charts))
            .collect();
        Ok(Lazy {
            keys,
            from: LazyFrom::Dir(dir),
        })
    }

    /// The manifests of a render's `files`.
    pub fn files(files: &'a crate::write::Files) -> Lazy<'a> {
        let charts = chart_dirs(files.keys().map(String::as_str));
        let keys = files
            .keys()
            .filter(|p| is_manifest(p) && !in_chart(p, &charts))
            .cloned()
            .collect();
        Lazy {
            keys,
            from: LazyFrom::Files(files),
        }
    }

    /// The files, sorted.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Whether the files are on disk: each read of one reads it again
    /// (a render's are in memory).
    pub fn on_disk(&self) -> bool {
        matches!(self.from, LazyFrom::Dir(_))
    }

    /// The objects of file `key`, built in full or only the parts of
    /// `select`; `None`: left out (a render's file that is not YAML).
    pub fn objects(
        &self,
        key: &str,
        select: Option<Selection>,
    ) -> Result<Option<Vec<Value>>, String> {
        match self.from {
            LazyFrom::Dir(dir) => from_dir(dir, key, |text| objects(text, select)).map(Some),
            // A render's own text, parsed back by its check stage.
            LazyFrom::Files(files) => Ok(files
                .get(key)
                .and_then(|text| rendered_objects(text, select).ok())),
        }
    }

    /// The objects of file `key` as [`Lazy::objects`] reads them with
    /// `select`, in one pass: each built only in the parts `light` names
    /// (a part of `select`) and written in full as compact JSON. Outside
    /// the fast reader's subset (`yaml::block::load_split`), each object
    /// is built of `select` and written.
    pub fn split(
        &self,
        key: &str,
        light: Selection,
        select: Selection,
    ) -> Result<Option<Split>, String> {
        match self.from {
            LazyFrom::Dir(dir) => from_dir(dir, key, |text| split(text, light, select)).map(Some),
            LazyFrom::Files(files) => Ok(files
                .get(key)
                .and_then(|text| split(text, light, select).ok())),
        }
    }
}

/// What of file `key` of `dir` `read` reads from its text, its errors
/// located in the tree as the user named it.
fn from_dir<T>(
    dir: &Path,
    key: &str,
    read: impl FnOnce(&str) -> Result<T, LoadError>,
) -> Result<T, String> {
    let (_, text) = read_one(dir, None, key.to_string())?;
    read(&text)
        .map_err(|e| not_yaml(&e, key).replacen(" --> ", &format!(" --> {}/", dir.display()), 1))
}

/// [`Lazy::split`] of one file's text.
fn split(text: &str, light: Selection, select: Selection) -> Result<Split, LoadError> {
    if let Some(split) = crate::yaml::block::load_split(text, light, select) {
        return Ok(split);
    }
    let mut json = Vec::new();
    let mut docs = Vec::new();
    for doc in objects(text, Some(select))? {
        let start = json.len();
        serde_json::to_writer(&mut json, &doc).expect("a JSON value is written");
        docs.push((doc, start..json.len()));
    }
    Ok(Split { docs, json })
}

/// The object documents of one file's text (empty documents and
/// non-objects dropped), built in full or only the parts `select` names.
/// Plain block YAML (meshgen's own files) is read by the fast reader of
/// `yaml::block`, the rest by the full loader.
fn objects(text: &str, select: Option<Selection>) -> Result<Vec<Value>, LoadError> {
    let docs = match (crate::yaml::block::load(text, select), select) {
        (Some(docs), _) => docs,
        (None, None) => crate::yaml::load_json_documents(text)?,
        (None, Some(select)) => crate::yaml::load::load_selected_documents(text, select)?,
    };
    Ok(docs.into_iter().filter(Value::is_object).collect())
}

/// A file the model reads: YAML, not a tool's configuration.
pub fn is_manifest(path: &str) -> bool {
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

/// A file the model reads of a tree: a manifest outside Helm charts, or
/// a chart's `values.yaml` (the Istio wrapper chart's holds the mesh
/// config: the outbound traffic policy the egress model reads,
/// `super::egress::mesh_config`). A values document has no `kind`: no
/// step of the model takes it for an object.
fn is_read(path: &str, charts: &[String]) -> bool {
    (is_manifest(path) && !in_chart(path, charts))
        || path
            .strip_suffix("values.yaml")
            .is_some_and(|dir| charts.iter().any(|c| c == dir))
}

/// The files of `files` that hold objects: manifests outside Helm charts.
fn object_files(files: &BTreeMap<String, String>) -> impl Iterator<Item = (&String, &String)> {
    let charts = chart_dirs(files.keys().map(String::as_str));
    files.iter().filter(move |(p, _)| is_read(p, &charts))
}

/// Parse `files` (path, text) in full, on all cores.
pub fn parse<'a>(
    files: impl IntoParallelIterator<Item = (&'a String, &'a String)>,
) -> Result<Tree, String> {
    parse_as(files, None)
}

/// [`parse`], building only the parts of `select`.
pub fn parse_selected<'a>(
    files: impl IntoParallelIterator<Item = (&'a String, &'a String)>,
    select: Selection,
) -> Result<Tree, String> {
    parse_as(files, Some(select))
}

fn parse_as<'a>(
    files: impl IntoParallelIterator<Item = (&'a String, &'a String)>,
    select: Option<Selection>,
) -> Result<Tree, String> {
    files
        .into_par_iter()
        .filter(|(p, _)| is_manifest(p))
        .map(|(p, text)| {
            objects(text, select)
                .map(|docs| (p.clone(), docs))
                .map_err(|e| not_yaml(&e, p))
        })
        .collect()
}

/// The objects of a render (as `meshgen generate -o` would write them),
/// in full or only the parts `select` names. meshgen's own files parse
/// by construction (the check stage parsed them); one that did not would
/// be left out.
pub fn from_generated_as(generated: &crate::Generated, select: Option<Selection>) -> Tree {
    object_files(&generated.files)
        .collect::<Vec<_>>()
        .into_par_iter()
        .filter_map(|(p, text)| objects(text, select).ok().map(|d| (p.clone(), d)))
        .collect()
}

/// [`from_generated_as`], taking the render's files: each file's text is
/// dropped once its objects are read (issue 31: at 10,000 profiles the
/// texts are 121 MB that need not be held beside the objects).
pub fn from_files_as(files: crate::write::Files, select: Option<Selection>) -> Tree {
    let charts = chart_dirs(files.keys().map(String::as_str));
    files
        .into_par_iter()
        .filter(|(p, _)| is_read(p, &charts))
        .filter_map(|(p, text)| objects(&text, select).ok().map(|d| (p, d)))
        .collect()
}

/// The objects of a render, in full.
pub fn from_generated(generated: &crate::Generated) -> Tree {
    from_generated_as(generated, None)
}

/// Every manifest file under `dir` (kustomizations and Helm charts left
/// out), keyed by its path relative to `dir`, then every file of `with`
/// (a file, or a directory read the same way), keyed by its path as given.
pub fn load(dir: &Path, with: &[PathBuf]) -> Result<Tree, String> {
    load_as(dir, with, None)
}

/// [`load`], building in full or only the parts `select` names.
pub fn load_as(dir: &Path, with: &[PathBuf], select: Option<Selection>) -> Result<Tree, String> {
    // Located from the working directory, as the user named the tree.
    let mut tree = read_objects(dir, None, select)
        .map_err(|e| e.replacen(" --> ", &format!(" --> {}/", dir.display()), 1))?;
    merge_with_as(&mut tree, with, select)?;
    Ok(tree)
}

/// Adds the files of `with` to `tree` (see [`load`]).
pub fn merge_with(tree: &mut Tree, with: &[PathBuf]) -> Result<(), String> {
    merge_with_as(tree, with, None)
}

/// [`merge_with`], building in full or only the parts `select` names.
pub fn merge_with_as(
    tree: &mut Tree,
    with: &[PathBuf],
    select: Option<Selection>,
) -> Result<(), String> {
    for w in with {
        tree.extend(read_objects(w, Some(w), select)?);
    }
    Ok(())
}

/// The objects of the manifests under `root` (as [`read_dir`] names
/// them, Helm charts left out), each file read and parsed at once on all
/// cores and its text dropped: at 10,000 profiles the texts are 121 MB
/// that need not be held beside the objects (issue 31).
fn read_objects(
    root: &Path,
    shown: Option<&Path>,
    select: Option<Selection>,
) -> Result<Tree, String> {
    let names = file_names(root)?;
    let charts = chart_dirs(names.iter().map(String::as_str));
    names
        .into_par_iter()
        .filter(|n| n.is_empty() || is_read(n, &charts))
        .filter_map(|n| {
            let named = n.is_empty();
            let (key, text) = match read_one(root, shown, n) {
                Ok(file) => file,
                Err(e) => return Some(Err(e)),
            };
            // A file named on the command line: a manifest by its name.
            (!named || is_manifest(&key)).then(|| {
                objects(&text, select)
                    .map(|docs| (key.clone(), docs))
                    .map_err(|e| not_yaml(&e, &key))
            })
        })
        .collect()
}

/// The message of a file that is not YAML.
fn not_yaml(e: &LoadError, path: &str) -> String {
    format!(
        "not YAML: {} --> {path}:{}:{}",
        e.message, e.origin.pos.line, e.origin.pos.col
    )
}

/// The files under `root`, relative to it (`""`: `root` is a file).
fn file_names(root: &Path) -> Result<Vec<String>, String> {
    if root.is_file() {
        Ok(vec![String::new()])
    } else {
        crate::write::list_files(root).map_err(|d| d.message)
    }
}

/// Every manifest under `root` (or `root` itself when it is a file), by
/// path relative to it, or prefixed with `shown` (a `--with` path). Files
/// over 64 MiB are refused, as `diff` refuses them.
pub fn read_dir(root: &Path, shown: Option<&Path>) -> Result<BTreeMap<String, String>, String> {
    read_dir_with(root, shown, |_, text| Ok(text))
}

/// [`read_dir`], each file handed to `f` (its key and its text) as it is
/// read, on all cores, and its text dropped after: what `f` makes of it
/// is kept instead (issue 31: at 10,000 profiles the texts are 121 MB).
pub fn read_dir_with<T: Send>(
    root: &Path,
    shown: Option<&Path>,
    f: impl Fn(&str, String) -> Result<T, String> + Sync,
) -> Result<BTreeMap<String, T>, String> {
    file_names(root)?
        .into_par_iter()
        .filter(|n| n.is_empty() || is_manifest(n) || n.ends_with("Chart.yaml"))
        .map(|n| {
            let (key, text) = read_one(root, shown, n)?;
            let kept = f(&key, text)?;
            Ok((key, kept))
        })
        .collect()
}

/// The files `keys` under `root` (as [`read_dir`] names them), read
/// again and parsed as [`parse_as`] parses them.
pub fn reread_as(
    root: &Path,
    keys: Vec<String>,
    select: Option<Selection>,
) -> Result<Tree, String> {
    keys.into_par_iter()
        .map(|key| {
            let (key, text) = read_one(root, None, key)?;
            let docs = parse_one(&key, &text, select)?;
            Ok((key, docs))
        })
        .collect()
}

/// The objects of one file's text, as [`parse_as`] parses them.
pub fn parse_one(key: &str, text: &str, select: Option<Selection>) -> Result<Vec<Value>, String> {
    objects(text, select).map_err(|e| not_yaml(&e, key))
}

/// [`parse_one`] of a text that is byte for byte a file of a render
/// (parsed back by its check stage): what `select` skips is passed over
/// unread (`yaml::block::load_read`).
pub fn parse_rendered(key: &str, text: &str, select: Selection) -> Result<Vec<Value>, String> {
    rendered_objects(text, Some(select)).map_err(|e| not_yaml(&e, key))
}

/// [`objects`] of a render's own text: with a selection, what it skips
/// is passed over unread (`yaml::block::load_read`).
fn rendered_objects(text: &str, select: Option<Selection>) -> Result<Vec<Value>, LoadError> {
    match select.and_then(|s| crate::yaml::block::load_read(text, Some(s))) {
        Some(docs) => Ok(docs.into_iter().filter(Value::is_object).collect()),
        None => objects(text, select),
    }
}

/// The file `n` under `root` (see [`read_dir`]): its key and its text.
fn read_one(root: &Path, shown: Option<&Path>, n: String) -> Result<(String, String), String> {
    let path = if n.is_empty() {
        root.to_path_buf()
    } else {
        root.join(&n)
    };
    let key = match (shown, n.is_empty()) {
        (Some(s), true) => s.display().to_string(),
        (Some(s), false) => format!("{}/{n}", s.display().to_string().trim_end_matches('/')),
        (None, _) => n,
    };
    let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_COMPARED_BYTES {
        return Err(format!(
            "{}: {} bytes, more than any manifest meshgen reads (64 MiB)",
            path.display(),
            meta.len()
        ));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((key, text))
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

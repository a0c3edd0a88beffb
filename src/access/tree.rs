//! A rendered tree as parsed documents: file path → its objects.

use crate::write::diff::MAX_COMPARED_BYTES;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File path (relative to the tree, or as given with `--with`) → the
/// documents of that file, in order.
pub type Tree = BTreeMap<String, Vec<serde_json::Value>>;

/// Files that configure a tool rather than hold Kubernetes objects.
const CONFIG_FILES: &[&str] = &["kustomization.yaml", "Chart.yaml", "values.yaml"];

/// A manifest file: YAML, not a tool's configuration.
pub fn is_manifest(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    (name.ends_with(".yaml") || name.ends_with(".yml")) && !CONFIG_FILES.contains(&name)
}

/// The parts of an object the access model reads (`*`: every list item);
/// the rest of each document is parsed and checked as strictly, but not
/// built, which keeps a tree of 10,000 profiles in memory.
pub const SELECT: crate::yaml::load::Selection = &[
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
    &["subjects"],
    &["roleRef"],
];

/// Only what an object is and where: for a first look at a large tree.
pub const IDENTITY: crate::yaml::load::Selection = &[
    &["apiVersion"],
    &["kind"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "labels"],
];

/// Parse `files` (path, text), every manifest of them, on all cores,
/// building the parts of [`SELECT`].
pub fn parse<'a>(
    files: impl IntoParallelIterator<Item = (&'a String, &'a String)>,
) -> Result<Tree, String> {
    parse_selected(files, SELECT)
}

/// [`parse`], building the parts of `select`.
pub fn parse_selected<'a>(
    files: impl IntoParallelIterator<Item = (&'a String, &'a String)>,
    select: crate::yaml::load::Selection,
) -> Result<Tree, String> {
    files
        .into_par_iter()
        .filter(|(p, _)| is_manifest(p))
        .map(|(p, text)| {
            crate::yaml::load::load_selected_documents(text, select)
                .map(|docs| (p.clone(), docs))
                .map_err(|e| {
                    format!(
                        "not YAML: {} --> {p}:{}:{}",
                        e.message, e.origin.pos.line, e.origin.pos.col
                    )
                })
        })
        .collect()
}

/// The tree of a render.
pub fn from_generated(generated: &crate::Generated) -> Tree {
    // meshgen's own output parsed back by the check stage: it is YAML.
    parse(&generated.files).unwrap_or_default()
}

/// The tree in `dir` (meshgen's output, or any manifests), plus each
/// file or directory of `with`, keyed by its path as given. Files over
/// 64 MiB are refused, as `diff` refuses them.
pub fn load(dir: &Path, with: &[PathBuf]) -> Result<Tree, String> {
    // Located from the working directory, as the user named the tree.
    let mut tree = parse(&read_dir(dir, None)?)
        .map_err(|e| e.replacen(" --> ", &format!(" --> {}/", dir.display()), 1))?;
    tree.extend(load_with(with)?);
    Ok(tree)
}

/// Every manifest under `root` (or `root` itself when it is a file), by
/// path relative to it, or prefixed with `shown` (a `--with` path).
pub fn read_dir(root: &Path, shown: Option<&Path>) -> Result<BTreeMap<String, String>, String> {
    let names: Vec<String> = if root.is_file() {
        vec![String::new()]
    } else {
        crate::write::list_files(root).map_err(|d| d.message)?
    };
    names
        .into_par_iter()
        .filter(|n| n.is_empty() || is_manifest(n))
        .map(|n| {
            let path = if n.is_empty() {
                root.to_path_buf()
            } else {
                root.join(&n)
            };
            let key = match (shown, n.is_empty()) {
                (Some(s), true) => s.display().to_string(),
                (Some(s), false) => format!("{}/{n}", s.display()),
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
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((key, text))
        })
        .collect()
}

/// The manifests of each `--with` path, keyed by the path as given.
pub fn load_with(with: &[PathBuf]) -> Result<Tree, String> {
    let mut files = BTreeMap::new();
    for w in with {
        files.extend(read_dir(w, Some(w))?);
    }
    parse(&files)
}

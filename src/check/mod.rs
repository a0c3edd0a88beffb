//! Stage 5: whole-tree checks on the rendered files, before anything is
//! written. Every YAML file is parsed back (a template that produced
//! invalid YAML is reported with the template and line); every manifest
//! document must have `apiVersion`, `kind` and `metadata.name`; no two
//! documents may share apiVersion group, kind, namespace and name; no file
//! may be empty.
//!
//! Then `refs` checks every reference across the tree (delivery paths,
//! kustomization resources, gateways, providers, credentials, namespaces).
//!
//! This stage reads the rendered tree only; it never renders or writes.

pub mod refs;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::render::RenderedTree;
use crate::source::{SourceKind, SourceMap};
use crate::yaml::{load_documents, Node, NodeKind};
use std::collections::BTreeMap;

/// Files that are configuration for a tool, not Kubernetes objects.
const CONFIG_FILES: &[&str] = &["kustomization.yaml", "Chart.yaml", "values.yaml"];

/// One parsed manifest file.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: String,
    pub docs: Vec<Node>,
}

/// A tree that passed every check.
#[derive(Debug, Clone)]
pub struct CheckedTree {
    pub tree: RenderedTree,
    pub manifests: Vec<Manifest>,
}

fn get<'a>(node: &'a Node, key: &str) -> Option<&'a Node> {
    match &node.kind {
        NodeKind::Map(m) => m.get(key).map(|e| &e.value),
        _ => None,
    }
}

fn string<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    match get(node, key).map(|n| &n.kind) {
        Some(NodeKind::Str(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn where_(path: &str, template: Option<&str>) -> String {
    match template {
        Some(t) => format!("{path} (from templates/{t})"),
        None => path.to_string(),
    }
}

pub fn check(
    tree: RenderedTree,
    sources: &mut SourceMap,
    ctx: &refs::TreeContext,
) -> Result<CheckedTree, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut manifests = Vec::new();
    let mut parsed: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let mut seen: BTreeMap<(String, String, String, String), String> = BTreeMap::new();
    for (path, file) in &tree.files {
        if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
            continue;
        }
        let file_name = path.rsplit('/').next().unwrap_or(path);
        let id = sources.add(path.clone(), SourceKind::Rendered);
        let docs = match load_documents(&file.text, id) {
            Ok(docs) => docs,
            Err(e) => {
                diags.push(Diagnostic::error(format!(
                    "internal: {} is not valid YAML at line {}: {}",
                    where_(path, file.template),
                    e.origin.pos.line,
                    e.message
                )));
                continue;
            }
        };
        let docs: Vec<Node> = docs.into_iter().flatten().collect();
        parsed.insert(path.clone(), docs.iter().map(Node::to_json).collect());
        if docs.is_empty() {
            diags.push(Diagnostic::error(format!(
                "internal: {} holds no document",
                where_(path, file.template)
            )));
            continue;
        }
        if CONFIG_FILES.contains(&file_name) {
            continue;
        }
        for (i, doc) in docs.iter().enumerate() {
            let api = string(doc, "apiVersion");
            let kind = string(doc, "kind");
            let meta = get(doc, "metadata");
            let name = meta.and_then(|m| string(m, "name"));
            let (Some(api), Some(kind), Some(name)) = (api, kind, name) else {
                diags.push(Diagnostic::error(format!(
                    "internal: document {i} of {} lacks apiVersion, kind or metadata.name",
                    where_(path, file.template)
                )));
                continue;
            };
            let namespace = meta.and_then(|m| string(m, "namespace")).unwrap_or("");
            let group = api.rsplit_once('/').map_or("", |(g, _)| g);
            let key = (
                group.to_string(),
                kind.to_string(),
                namespace.to_string(),
                name.to_string(),
            );
            if let Some(first) = seen.get(&key) {
                diags.push(Diagnostic::error(format!(
                    "{kind} {namespace}/{name} is rendered twice: in {first} and in {path}"
                )));
            } else {
                seen.insert(key, path.clone());
            }
        }
        manifests.push(Manifest {
            path: path.clone(),
            docs,
        });
    }
    if !diags.has_errors() {
        diags.extend(refs::check(&manifests, &parsed, ctx));
    }
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(CheckedTree { tree, manifests })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::RenderedFile;

    fn tree(files: &[(&str, &str)]) -> RenderedTree {
        let mut t = RenderedTree::default();
        for (p, text) in files {
            t.files.insert(
                p.to_string(),
                RenderedFile {
                    text: text.to_string(),
                    template: None,
                },
            );
        }
        t
    }

    const NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n";

    fn ctx() -> refs::TreeContext {
        refs::TreeContext::default()
    }

    #[test]
    fn accepts_a_clean_tree() {
        let t = tree(&[
            ("a/Namespace.yaml", NS),
            ("a/kustomization.yaml", "resources: []\n"),
        ]);
        let checked = check(t, &mut SourceMap::default(), &ctx()).unwrap();
        assert_eq!(checked.manifests.len(), 1);
    }

    #[test]
    fn rejects_duplicates_missing_names_and_bad_yaml() {
        let t = tree(&[
            ("a/x.yaml", NS),
            ("b/y.yaml", NS),
            (
                "c/z.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
            ),
            ("d/w.yaml", "a: [\n"),
            ("e/v.yaml", "# nothing\n"),
        ]);
        let e = check(t, &mut SourceMap::default(), &ctx()).unwrap_err();
        let text: Vec<String> = e.0.iter().map(|d| d.message.clone()).collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(text
            .iter()
            .any(|m| m.contains("Namespace /a is rendered twice: in a/x.yaml and in b/y.yaml")));
        assert!(text
            .iter()
            .any(|m| m.contains("document 0 of c/z.yaml lacks")));
        assert!(text
            .iter()
            .any(|m| m.contains("d/w.yaml is not valid YAML at line")));
        assert!(text
            .iter()
            .any(|m| m.contains("e/v.yaml holds no document")));
    }
}

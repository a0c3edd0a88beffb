//! Stage 5: whole-tree checks on the rendered files, before anything is
//! written. Every YAML file is parsed back (a template that produced
//! invalid YAML is reported with the template and line); every manifest
//! document must have `apiVersion`, `kind` and `metadata.name`; no two
//! documents may share apiVersion group, kind, namespace and name; no file
//! may be empty. Then `refs` checks every reference across the tree
//! (delivery paths, kustomization resources, gateways, providers,
//! credentials, namespaces) and that every Gateway API object is of a kind
//! and version the pinned bundle serves (`served`).
//!
//! Files are parsed in parallel (rayon; results keep the sorted path
//! order, so diagnostics do too). The parser checks
//! every byte of every document, but builds only the key paths the checks
//! read ([`refs::FACT_PATHS`]), and each document is reduced at once to
//! those facts, so memory stays proportional to the output, not to its
//! parsed form.
//!
//! Files whose template fixes their documents (`component::DECLARED`: the
//! profiles, 10,000 files at scale, most of the bytes) are the exception:
//! their facts come from the model, not from parsing them back (in release
//! builds; debug builds parse them too and compare). Every other file,
//! and every file holding free-form YAML of yours, is parsed.
//!
//! This stage reads the rendered tree only; it never renders or writes.

pub mod ambient;
pub mod experimental;
pub mod limits;
pub mod patches;
pub mod refs;
pub mod served;

use crate::code::Code;
use crate::component::DeclaredDoc;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::render::{RenderedFile, RenderedTree};
use rayon::prelude::*;
use refs::DocFacts;
use std::collections::BTreeMap;

/// Files that are configuration for a tool, not Kubernetes objects.
const CONFIG_FILES: &[&str] = &["kustomization.yaml", "Chart.yaml", "values.yaml"];

/// Fewest files one parallel task parses (a small tree stays on one
/// thread; a large one is split into tasks of at least this many).
const PARSE_BATCH: usize = 64;

/// One manifest file that passed.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: String,
    /// Kind of its first document (for install ordering).
    pub first_kind: String,
    pub documents: usize,
}

/// A tree that passed every check.
#[derive(Debug, Clone)]
pub struct CheckedTree {
    pub files: BTreeMap<String, RenderedFile>,
    pub manifests: Vec<Manifest>,
}

fn where_(path: &str, template: Option<&str>) -> String {
    match template {
        Some(t) => format!("{path} (from templates/{t})"),
        None => path.to_string(),
    }
}

/// The first character YAML text may not hold raw, with its line (see
/// `yaml::emit::needs_escape`); ASCII text is checked byte by byte.
fn raw_unprintable(text: &str) -> Option<(usize, char)> {
    if crate::yaml::emit::only_printable_ascii(text) {
        return None;
    }
    text.split('\n').enumerate().find_map(|(i, l)| {
        l.chars()
            .find(|&c| c == '\r' || crate::yaml::emit::needs_escape(c))
            .map(|c| (i + 1, c))
    })
}

/// What one file contributes to the checks.
enum FileResult {
    Skipped,
    Error(Diagnostic),
    Config {
        kustomization: Vec<Vec<String>>,
    },
    Manifest {
        manifest: Manifest,
        docs: Vec<DocFacts>,
        errors: Vec<Diagnostic>,
    },
}

fn check_file(path: &str, file: &RenderedFile) -> FileResult {
    if !(path.ends_with(".yaml") || path.ends_with(".yml")) {
        return FileResult::Skipped;
    }
    let file_name = path.rsplit('/').next().unwrap_or(path);
    // YAML 1.2 readers refuse (or silently change) these; the emitter
    // escapes every one, so one here is a template's own text.
    if let Some((line, c)) = raw_unprintable(&file.text) {
        return FileResult::Error(Diagnostic::error(
            Code::Tree,
            format!(
                "internal: {} holds the character {} raw at line {line}; YAML 1.2 needs it escaped",
                where_(path, file.template),
                c.escape_unicode()
            ),
        ));
    }
    // A file whose template fixes its documents is not parsed back
    // (see `component::Declared`); debug builds parse it anyway and
    // compare, below.
    if let Some(declared) = &file.declared {
        if !cfg!(debug_assertions) && !CONFIG_FILES.contains(&file_name) && !declared.is_empty() {
            return declared_manifest(path, declared);
        }
    }
    let docs = match crate::yaml::load::load_selected_documents(&file.text, &refs::FACT_PATHS) {
        Ok(docs) => docs,
        Err(e) => {
            return FileResult::Error(Diagnostic::error(
                Code::Tree,
                format!(
                    "internal: {} is not valid YAML at line {}: {}",
                    where_(path, file.template),
                    e.origin.pos.line,
                    e.message
                ),
            ))
        }
    };
    if docs.is_empty() {
        return FileResult::Error(Diagnostic::error(
            Code::Tree,
            format!(
                "internal: {} holds no document",
                where_(path, file.template)
            ),
        ));
    }
    if CONFIG_FILES.contains(&file_name) {
        let kustomization = if file_name == "kustomization.yaml" {
            docs.iter()
                .map(|d| {
                    d["resources"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r.as_str().map(String::from))
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        return FileResult::Config { kustomization };
    }
    let mut errors = Vec::new();
    let mut facts = Vec::with_capacity(docs.len());
    for (i, doc) in docs.iter().enumerate() {
        match DocFacts::extract(path, i, doc) {
            Some(f) => facts.push(f),
            None => errors.push(Diagnostic::error(
                Code::Tree,
                format!(
                    "internal: document {i} of {} lacks apiVersion, kind or metadata.name",
                    where_(path, file.template)
                ),
            )),
        }
    }
    let first_kind = docs[0]["kind"].as_str().unwrap_or("").to_string();
    if let Some(declared) = &file.declared {
        if let Some(e) = declared_mismatch(path, file.template, declared, &facts, docs.len()) {
            errors.push(e);
        }
    }
    FileResult::Manifest {
        manifest: Manifest {
            path: path.to_string(),
            first_kind,
            documents: docs.len(),
        },
        docs: facts,
        errors,
    }
}

fn declared_facts(path: &str, declared: &[DeclaredDoc]) -> Vec<DocFacts> {
    declared
        .iter()
        .enumerate()
        .map(|(index, d)| DocFacts {
            path: path.to_string(),
            index,
            api_version: d.api_version.to_string(),
            kind: d.kind.to_string(),
            name: d.name.clone(),
            namespace: d.namespace.clone(),
            refs: Vec::new(),
            ambient_label: None,
            ztunnel_unsupported: Vec::new(),
        })
        .collect()
}

/// A declared file's facts, without parsing it.
fn declared_manifest(path: &str, declared: &[DeclaredDoc]) -> FileResult {
    FileResult::Manifest {
        manifest: Manifest {
            path: path.to_string(),
            first_kind: declared[0].kind.to_string(),
            documents: declared.len(),
        },
        docs: declared_facts(path, declared),
        errors: Vec::new(),
    }
}

/// When a declared file's parsed documents are not the declared ones: an
/// internal error naming both lists.
fn declared_mismatch(
    path: &str,
    template: Option<&str>,
    declared: &[DeclaredDoc],
    parsed: &[DocFacts],
    parsed_count: usize,
) -> Option<Diagnostic> {
    let show = |d: &DocFacts| {
        let refs = if d.refs.is_empty() {
            ""
        } else {
            " (with references)"
        };
        format!(
            "{} {} {}/{}{refs}",
            d.api_version, d.kind, d.namespace, d.name
        )
    };
    let want: Vec<String> = declared_facts(path, declared).iter().map(show).collect();
    let got: Vec<String> = parsed.iter().map(show).collect();
    (want != got || parsed_count != declared.len()).then(|| {
        Diagnostic::error(Code::Tree, format!(
            "internal: {} holds the documents [{}] but its template declares [{}] (component::Declared)",
            where_(path, template),
            got.join(", "),
            want.join(", ")
        ))
    })
}

pub fn check(tree: RenderedTree, ctx: &refs::TreeContext) -> Result<CheckedTree, Diagnostics> {
    let files: Vec<(&String, &RenderedFile)> = tree.files.iter().collect();
    let results: Vec<(String, FileResult)> = files
        .par_iter()
        .with_min_len(PARSE_BATCH)
        .map(|(p, f)| ((*p).clone(), check_file(p, f)))
        .collect();

    let mut diags = Diagnostics::default();
    let mut manifests = Vec::new();
    let total_docs = results
        .iter()
        .map(|(_, r)| match r {
            FileResult::Manifest { docs, .. } => docs.len(),
            _ => 0,
        })
        .sum();
    let mut facts: Vec<DocFacts> = Vec::with_capacity(total_docs);
    let mut kustomizations: Vec<(String, Vec<Vec<String>>)> = Vec::new();
    for (path, result) in results {
        match result {
            FileResult::Skipped => {}
            FileResult::Error(d) => diags.push(d),
            FileResult::Config { kustomization } => {
                if !kustomization.is_empty() {
                    kustomizations.push((path, kustomization));
                }
            }
            FileResult::Manifest {
                manifest,
                docs,
                errors,
            } => {
                diags.0.extend(errors);
                facts.extend(docs);
                manifests.push(manifest);
            }
        }
    }
    if !diags.has_errors() {
        let paths: Vec<&str> = tree.files.keys().map(String::as_str).collect();
        diags.extend(refs::check(&facts, &kustomizations, &paths, ctx));
        diags.extend(patches::check(&facts, &ctx.patches));
    }
    // The facts of every document (120,000 at 10,000 profiles) are freed
    // beside the next stage. (When no thread can be started, here.)
    let _ = std::thread::Builder::new().spawn(move || drop(facts));
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(CheckedTree {
            files: tree.files,
            manifests,
        })
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
                    declared: None,
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
        let checked = check(t, &ctx()).unwrap();
        assert_eq!(checked.manifests.len(), 1);
    }

    /// Issue 17: a declared file's facts are the declared ones; in debug
    /// builds (here) it is parsed too, and a template that renders other
    /// documents than it declares is an internal error.
    #[test]
    fn declared_documents_must_be_the_rendered_ones() {
        let doc = |kind: &'static str, name: &str, ns: &str| DeclaredDoc {
            api_version: "v1",
            kind,
            name: name.into(),
            namespace: ns.into(),
        };
        let sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\n  namespace: a\n";
        let file = |declared| RenderedFile {
            text: format!("{NS}---\n{sa}"),
            template: Some("t.yaml.j2"),
            declared: Some(declared),
        };
        let mut t = tree(&[]);
        t.files.insert(
            "p/a.yaml".into(),
            file(vec![
                doc("Namespace", "a", ""),
                doc("ServiceAccount", "x", "a"),
            ]),
        );
        let checked = check(t, &ctx()).unwrap();
        assert_eq!(checked.manifests[0].documents, 2);
        assert_eq!(checked.manifests[0].first_kind, "Namespace");
        for wrong in [
            vec![doc("Namespace", "a", "")],
            vec![doc("Namespace", "a", ""), doc("ServiceAccount", "y", "a")],
            vec![doc("Namespace", "a", ""), doc("ServiceAccount", "x", "b")],
        ] {
            let mut t = tree(&[]);
            t.files.insert("p/a.yaml".into(), file(wrong));
            let e = check(t, &ctx()).unwrap_err();
            assert!(
                e.0[0].message.starts_with(
                    "internal: p/a.yaml (from templates/t.yaml.j2) holds the documents [v1 Namespace /a, v1 ServiceAccount a/x] but its template declares ["
                ),
                "{}",
                e.0[0].message
            );
        }
    }

    #[test]
    fn rejects_missing_names_bad_yaml_and_empty_files_before_references() {
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
        let e = check(t, &ctx()).unwrap_err();
        let text: Vec<String> = e.0.iter().map(|d| d.message.clone()).collect();
        // Reference checks (here: the duplicate Namespace) wait until
        // every file parsed, so they never report on a partial tree.
        assert_eq!(text.len(), 3, "{text:?}");
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

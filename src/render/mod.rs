//! Stage 4: render the templates under `templates/` with the derived model.
//!
//! A template's path is its output path plus `.j2`; files whose name starts
//! with `_` are partials and are never written; a template that renders to
//! nothing is not written (a resource that is off). Templates of a
//! disabled component are skipped. Each component directory gets a
//! `kustomization.yaml` listing the manifests rendered into it.
//!
//! This stage only produces text; parsing and checking it is the next
//! stage's job.

pub mod env;

use crate::diagnostic::Diagnostics;
use crate::model::Model;
use rayon::prelude::*;
use std::collections::BTreeMap;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// Every template, as (path under `templates/`, source), sorted by path.
pub fn templates() -> &'static [(&'static str, &'static str)] {
    embedded::TEMPLATES
}

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub text: String,
    /// The template it came from (`None` for files meshgen builds itself,
    /// such as `kustomization.yaml`).
    pub template: Option<&'static str>,
}

/// The whole output, by path relative to the output directory.
#[derive(Debug, Clone, Default)]
pub struct RenderedTree {
    pub files: BTreeMap<String, RenderedFile>,
}

/// A template whose path holds `{name}` is rendered once per item of the
/// model collection of that name; the placeholder becomes the item's
/// `name`. Items come from the already converted model, so nothing is
/// serialized twice. Returns `None` for an ordinary template.
fn fan_out(path: &str, model: &minijinja::Value) -> Option<(String, Vec<minijinja::Value>)> {
    let start = path.find('{')?;
    let end = start + path[start..].find('}')?;
    let placeholder = path[start..=end].to_string();
    let route: &[&str] = match &placeholder[1..placeholder.len() - 1] {
        "application" => &["gitops", "argocd", "applications"],
        "kustomization" => &["gitops", "flux", "kustomizations"],
        "release" => &["gitops", "flux", "istio", "releases"],
        "profile" => &["profiles", "profiles"],
        "secret" => &["auth", "generated_secrets"],
        "app" => &["edge", "apps"],
        _ => &[],
    };
    let mut node = model.clone();
    for key in route {
        node = match node.get_attr(key) {
            Ok(v) if !v.is_none() && !v.is_undefined() => v,
            _ => return Some((placeholder, Vec::new())),
        };
    }
    let items = if route.is_empty() {
        Vec::new()
    } else {
        node.try_iter().map(|it| it.collect()).unwrap_or_default()
    };
    Some((placeholder, items))
}

/// Fan-out jobs above this many are rendered on all cores (at least this
/// many per thread).
const PARALLEL_JOBS: usize = 256;

fn is_partial(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with('_'))
}

/// End a file with exactly one newline, and strip trailing blanks on lines.
/// Text that already is so (almost every file) is returned as it is.
fn normalize(text: String) -> String {
    let blank_before_newline = ["\r", " \n", "\t\n", "\x0b\n", "\x0c\n"]
        .iter()
        .any(|p| text.contains(p));
    // Outside ASCII, `trim_end` knows more blanks than the patterns above.
    let clean = text.is_ascii()
        && !blank_before_newline
        && !text.starts_with('\n')
        && text.ends_with('\n')
        && !text.ends_with("\n\n");
    if clean {
        text
    } else {
        normalize_lines(&text)
    }
}

fn normalize_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for line in text.trim_start_matches(['\n', '\r']).lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let trimmed = out.trim_end_matches('\n').len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

/// Render every template. Takes the model by value: once converted for the
/// templates, the typed copy is dropped (at 10,000 profiles it is large).
pub fn render(model: Model) -> Result<RenderedTree, Diagnostics> {
    let env = env::build()?;
    // Templates see the derived model only. Convert it once: templates share it (cheap clones), so a
    // fan-out over 10,000 profiles does not convert the model 10,000 times.
    let model_v = minijinja::Value::from(minijinja::value::Serde(&model));
    let components = model.components.clone();
    let kustomize_dirs = model.kustomize_dirs.clone();
    drop(model);
    let mut tree = RenderedTree::default();
    let mut diags = Diagnostics::default();
    for (name, _) in templates() {
        if is_partial(name) {
            continue;
        }
        let out_path = name.strip_suffix(".j2").unwrap_or(name);
        let component = components
            .iter()
            .find(|c| out_path.starts_with(&format!("{}/", c.dir)));
        if component.is_some_and(|c| !c.enabled) {
            continue;
        }
        let component_v = minijinja::Value::from(minijinja::value::Serde(component));
        let jobs: Vec<(String, minijinja::Value)> = match fan_out(out_path, &model_v) {
            None => vec![(out_path.to_string(), minijinja::Value::from(()))],
            Some((placeholder, items)) => items
                .into_iter()
                .map(|item| {
                    let name = item
                        .get_attr("name")
                        .map(|n| n.to_string())
                        .unwrap_or_default();
                    (out_path.replace(&placeholder, &name), item)
                })
                .collect(),
        };
        let render_one = |item: &minijinja::Value| {
            let ctx = minijinja::context! {
                model => model_v.clone(),
                component => component_v.clone(),
                item => item.clone(),
            };
            env.get_template(name)
                .and_then(|t| t.render(ctx))
                .map(normalize)
        };
        let results: Vec<_> = jobs
            .par_iter()
            .with_min_len(PARALLEL_JOBS)
            .map(|(_, item)| render_one(item))
            .collect();
        for ((path, _), rendered) in jobs.into_iter().zip(results) {
            match rendered {
                Ok(text) if text.trim().is_empty() => {}
                Ok(text) => {
                    tree.files.insert(
                        path,
                        RenderedFile {
                            text,
                            template: Some(name),
                        },
                    );
                }
                Err(e) => diags.push(env::template_error(&e)),
            }
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    add_kustomizations(&mut tree, &kustomize_dirs);
    Ok(tree)
}

/// Give every kustomize directory of the model a `kustomization.yaml`
/// listing the manifests directly in it (sorted), so `kubectl apply -k
/// <dir>` works per component.
fn add_kustomizations(tree: &mut RenderedTree, kustomize_dirs: &[String]) {
    for dir in kustomize_dirs {
        let prefix = format!("{dir}/");
        let resources: Vec<serde_json::Value> = tree
            .files
            .keys()
            .filter_map(|p| p.strip_prefix(&prefix))
            .filter(|rel| {
                !rel.contains('/') && rel.ends_with(".yaml") && *rel != "kustomization.yaml"
            })
            .map(|rel| serde_json::Value::String(rel.to_string()))
            .collect();
        if resources.is_empty() {
            continue;
        }
        let doc = serde_json::json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": resources,
        });
        tree.files.insert(
            format!("{prefix}kustomization.yaml"),
            RenderedFile {
                text: crate::yaml::emit::document(&doc),
                template: None,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_line_endings_and_trailing_space() {
        let n = |s: &str| normalize(s.to_string());
        for (text, want) in [
            ("a: 1  \n\n\n", "a: 1\n"),
            ("a\r\nb", "a\nb\n"),
            ("\n\na\n\nb\n", "a\n\nb\n"),
            ("a\t\nb \u{a0}\n", "a\nb\n"),
            ("a\nb\n", "a\nb\n"),
            ("", "\n"),
            ("a", "a\n"),
        ] {
            assert_eq!(n(text), want, "{text:?}");
            assert_eq!(normalize_lines(text), want, "{text:?}");
        }
        assert!(is_partial("x/_helpers.j2"));
        assert!(!is_partial("x/Gateway.yaml.j2"));
    }
}

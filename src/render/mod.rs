//! Stage 4: render the templates under `templates/` with the derived model.
//!
//! A template's path is its output path plus `.j2`; files whose name starts
//! with `_` are partials and are never written; a template that renders to
//! nothing is not written (a resource that is off). Templates of a
//! disabled component are skipped; a path placeholder `{x}` fans out
//! over the collection its component's descriptor declares for `x`. Each
//! kustomize directory of the model (not Helm charts) gets a
//! `kustomization.yaml` listing the manifests rendered into it. Files a
//! component vendors (`component::Verbatim`, the Gateway API CRDs) are
//! written into its directory as they are, never evaluated.
//!
//! This stage only produces text; parsing and checking it is the next
//! stage's job.

pub mod env;

use crate::code::Code;
use crate::component::FanOut;
use crate::diagnostic::{Diagnostic, Diagnostics};
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
    /// The documents it holds, when its template declares them
    /// ([`crate::component::Declared`]); the check stage then need not
    /// parse it back.
    pub declared: Option<Vec<crate::component::DeclaredDoc>>,
}

/// The whole output, by path relative to the output directory.
#[derive(Debug, Clone, Default)]
pub struct RenderedTree {
    pub files: BTreeMap<String, RenderedFile>,
}

impl RenderedTree {
    /// Add a file; a second file at the same path is an error naming both
    /// templates (the first one stays).
    fn insert(&mut self, path: String, file: RenderedFile) -> Result<(), Diagnostic> {
        match self.files.get(&path) {
            Some(first) => Err(Diagnostic::error(
                Code::Template,
                format!(
                    "internal: templates/{} and templates/{} both write {path}",
                    file.template.unwrap_or("?"),
                    first.template.unwrap_or("?")
                ),
            )),
            None => {
                self.files.insert(path, file);
                Ok(())
            }
        }
    }
}

/// The `{placeholder}`s of a template path, braces included, in order.
fn placeholders(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(start) = path[rest..].find('{').map(|i| rest + i) {
        let Some(end) = path[start..].find('}').map(|i| start + i) else {
            break;
        };
        out.push(&path[start..=end]);
        rest = end + 1;
    }
    out
}

/// The list at `route` under `root`; `None` for a missing or null node
/// (a collection that is off renders nothing).
fn collection(root: &minijinja::Value, route: &[&str]) -> Result<Vec<minijinja::Value>, String> {
    let mut node = root.clone();
    for key in route {
        node = match node.get_attr(key) {
            Ok(v) if !v.is_none() && !v.is_undefined() => v,
            _ => return Ok(Vec::new()),
        };
    }
    node.try_iter()
        .map(|it| it.collect())
        .map_err(|_| format!("`{}` is not a list", route.join(".")))
}

/// The output files of one template: (output path, item) for each item
/// of its fan-out collection (for two placeholders, each item of the
/// second's collection in each item of the first), or one job for an
/// ordinary template. Errors name the template: a placeholder that names
/// no collection of its component, a second placeholder not declared
/// within the first, an item without a string `name`.
fn jobs(
    name: &str,
    out_path: String,
    fan_out: &[FanOut],
    root: &minijinja::Value,
) -> Result<Vec<(String, minijinja::Value)>, Diagnostic> {
    let phs: Vec<String> = placeholders(&out_path)
        .into_iter()
        .map(str::to_string)
        .collect();
    if phs.is_empty() {
        return Ok(vec![(out_path, minijinja::Value::from(()))]);
    }
    let fail = |what: String| {
        Diagnostic::error(
            Code::Template,
            format!("internal: templates/{name}: {what}"),
        )
    };
    let spec_of = |ph: &str| {
        let key = &ph[1..ph.len() - 1];
        fan_out
            .iter()
            .find(|f| f.placeholder == key)
            .ok_or_else(|| {
                let known: Vec<String> = fan_out
                    .iter()
                    .map(|f| format!("{{{}}}", f.placeholder))
                    .collect();
                fail(format!(
                    "placeholder {ph} names no fan-out collection (declared here: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })
    };
    let outer = spec_of(&phs[0])?;
    let inner = match &phs[1..] {
        [] => None,
        [second] => {
            let inner = spec_of(second)?;
            if inner.within != Some(outer.placeholder) {
                return Err(fail(format!(
                    "placeholder {second} does not fan out within {}; a second placeholder needs a collection declared `within` the first",
                    phs[0]
                )));
            }
            Some((second.as_str(), inner))
        }
        _ => {
            return Err(fail(
                "more than two placeholders in its path; a template fans out over at most two nested collections".into(),
            ))
        }
    };
    if let Some(w) = outer.within {
        return Err(fail(format!(
            "placeholder {} fans out within {{{w}}}, which its path lacks before it",
            phs[0]
        )));
    }
    let outer_jobs = expand(&out_path, &phs[0], outer, root).map_err(fail)?;
    let Some((ph, inner)) = inner else {
        return Ok(outer_jobs);
    };
    let mut out = Vec::new();
    for (path, item) in outer_jobs {
        out.extend(expand(&path, ph, inner, &item).map_err(fail)?);
    }
    Ok(out)
}

/// `path` with `ph` replaced by the name of each item of `spec`'s
/// collection under `root`.
fn expand(
    path: &str,
    ph: &str,
    spec: &FanOut,
    root: &minijinja::Value,
) -> Result<Vec<(String, minijinja::Value)>, String> {
    let items = collection(root, spec.collection)?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let item_name = item.get_attr("name").ok().and_then(|n| n.as_str().map(str::to_string));
            match item_name {
                Some(n) if !n.is_empty() && !n.contains('/') => Ok((path.replace(ph, &n), item)),
                _ => Err(format!(
                    "item {i} of `{}` has no usable `name` (a non-empty string without \"/\") for {ph}",
                    spec.collection.join(".")
                )),
            }
        })
        .collect()
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
fn normalize(mut text: String) -> String {
    // Leading newlines (a template that opens with `{% if %}`) are cut and
    // the last newline (which minijinja drops from every template) is
    // added in place: [`normalize_lines`] would copy every line for them.
    let lead = text.bytes().take_while(|&b| b == b'\n').count();
    text.drain(..lead);
    // Printable ASCII holds no `\r`, `\x0b` or `\x0c`; outside ASCII,
    // `trim_end` knows more blanks than the patterns below.
    let clean = crate::yaml::emit::only_printable_ascii(&text)
        && !text.contains(" \n")
        && !text.contains("\t\n")
        && !text.ends_with([' ', '\t'])
        && !text.ends_with("\n\n");
    if !clean {
        return normalize_lines(&text);
    }
    if text.ends_with('\n') && text.capacity() - text.len() <= text.len() / 4 {
        return text;
    }
    // A rendered file sits in the buffer it grew in (up to twice its
    // size); an exact copy lets the next render reuse that buffer. At
    // 10,000 profiles keeping the buffers cost 45 MiB of peak memory.
    let body = text.trim_end_matches('\n');
    let mut exact = String::with_capacity(body.len() + 1);
    exact.push_str(body);
    exact.push('\n');
    exact
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
///
/// A template under a component's folder is rendered once per instance
/// of that component into the instance's directory (skipped when the
/// component is off); every other template is rendered once, at its own
/// path. The render fails closed: an unknown placeholder, an item without
/// a name or two templates writing one path are errors naming the template.
pub fn render(mut model: Model) -> Result<RenderedTree, Diagnostics> {
    let env = env::shared()?;
    // Templates see the derived model only. Convert it once: templates share it (cheap clones), so a
    // fan-out over 10,000 profiles does not convert the model 10,000 times.
    let model_v = model.to_value();
    // Each further instance's view of the model (its own part).
    let instance_models: BTreeMap<String, minijinja::Value> = (model.components.iter())
        .filter_map(|c| Some((c.dir.clone(), model.instance_value(&model_v, &c.dir)?)))
        .collect();
    let components = model.components.clone();
    let kustomize_dirs = model.kustomize_dirs.clone();
    let kept_dirs = model.kept_dirs.clone();
    let patches = std::mem::take(&mut model.patches);
    let verbatim = std::mem::take(&mut model.verbatim);
    // Freed beside the render, not before it: the model of 10,000
    // profiles is tens of thousands of allocations, and the templates read
    // only `model_v`.
    // (When no thread can be started, the model is dropped right here.)
    let _ = std::thread::Builder::new().spawn(move || drop(model));
    let mut tree = RenderedTree::default();
    let mut diags = Diagnostics::default();
    for (name, _) in templates() {
        if is_partial(name) {
            continue;
        }
        let path = name.strip_suffix(".j2").unwrap_or(name);
        let owner = crate::registry::ALL.iter().find_map(|d| {
            path.strip_prefix(d.templates)
                .and_then(|r| r.strip_prefix('/'))
                .map(|rel| (d, rel))
        });
        // (output path, fan-out declarations, the model the fan-out reads,
        // the component, the whole model as it sees it)
        type Target<'a> = (
            String,
            &'a [FanOut],
            minijinja::Value,
            minijinja::Value,
            minijinja::Value,
        );
        let targets: Vec<Target> = match owner {
            None => vec![(
                path.to_string(),
                crate::model::gitops::FAN_OUT,
                model_v.clone(),
                minijinja::Value::from(()),
                model_v.clone(),
            )],
            Some((d, rel)) => components
                .iter()
                .filter(|c| c.enabled && std::ptr::eq(c.descriptor, *d))
                .map(|c| {
                    let whole = instance_models.get(&c.dir).unwrap_or(&model_v).clone();
                    let part = whole.get_attr(d.key).unwrap_or_default();
                    (
                        format!("{}/{rel}", c.dir),
                        d.fan_out,
                        part,
                        minijinja::Value::from(minijinja::value::Serde(c)),
                        whole,
                    )
                })
                .collect(),
        };
        for (out_path, fan_out, root, component_v, model_v) in targets {
            let jobs = match jobs(name, out_path, fan_out, &root) {
                Ok(jobs) => jobs,
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            let declared = crate::registry::DECLARED
                .iter()
                .find(|d| d.template == *name);
            let render_one = |item: &minijinja::Value| {
                let ctx = minijinja::context! {
                    model => model_v.clone(),
                    component => component_v.clone(),
                    item => item.clone(),
                };
                let text = env
                    .get_template(name)
                    .and_then(|t| t.render(ctx))
                    .map(normalize);
                (text, declared.and_then(|d| (d.documents)(item, &model_v)))
            };
            let results: Vec<_> = jobs
                .par_iter()
                .with_min_len(PARALLEL_JOBS)
                .map(|(_, item)| render_one(item))
                .collect();
            for ((path, _), (rendered, declared)) in jobs.into_iter().zip(results) {
                match rendered {
                    Ok(text) if text.trim().is_empty() => {}
                    Ok(text) => {
                        let file = RenderedFile {
                            text,
                            template: Some(name),
                            declared,
                        };
                        if let Err(d) = tree.insert(path, file) {
                            diags.push(d);
                        }
                    }
                    Err(e) => diags.push(env::template_error(&e)),
                }
            }
        }
    }
    // Vendored files, as they are: never templates (see
    // `component::Verbatim`).
    for (path, text) in verbatim {
        let file = RenderedFile {
            text: text.to_string(),
            template: None,
            declared: None,
        };
        if let Err(d) = tree.insert(path, file) {
            diags.push(d);
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    // The templates' copy of the model, freed beside the next stage (as
    // the typed model above).
    let _ = std::thread::Builder::new().spawn(move || drop(model_v));
    add_kustomizations(&mut tree, &kustomize_dirs, &kept_dirs, &patches)
        .map_err(Diagnostics::from)?;
    Ok(tree)
}

/// The annotations that keep a directory's objects from the GitOps
/// engine's deletions (`component::Delivery::keep`): Argo CD's
/// `Prune=false` ("setting a Prune sync option on the resource will always
/// override a Prune sync policy defined in the Application") and
/// `Delete=false` (kept when the Application is deleted), and Flux's
/// garbage-collection opt-out (kustomize-controller skips objects
/// annotated `kustomize.toolkit.fluxcd.io/prune: disabled`, also when the
/// Kustomization is deleted).
pub const KEEP_ANNOTATIONS: [(&str, &str); 2] = [
    (
        "argocd.argoproj.io/sync-options",
        "Prune=false,Delete=false",
    ),
    ("kustomize.toolkit.fluxcd.io/prune", "disabled"),
];

/// Give every kustomize directory of the model a `kustomization.yaml`
/// listing the manifests directly in it (sorted), so `kubectl apply -k
/// <dir>` works per component; in a kept directory it also annotates
/// them with [`KEEP_ANNOTATIONS`], leaving the files' bytes as they are;
/// and the user's `patches` of the directory, in the order written.
fn add_kustomizations(
    tree: &mut RenderedTree,
    kustomize_dirs: &[String],
    kept_dirs: &[String],
    patches: &BTreeMap<String, Vec<crate::rules::patch::UserPatch>>,
) -> Result<(), Diagnostic> {
    for dir in kustomize_dirs {
        let prefix = format!("{dir}/");
        // The directory's files are one range of the sorted tree (a scan
        // of the whole tree per directory was quadratic in the shards).
        let resources: Vec<serde_json::Value> = tree
            .files
            .range(prefix.clone()..)
            .map(|(p, _)| p)
            .map_while(|p| p.strip_prefix(&prefix))
            .filter(|rel| {
                !rel.contains('/') && rel.ends_with(".yaml") && *rel != "kustomization.yaml"
            })
            .map(|rel| serde_json::Value::String(rel.to_string()))
            .collect();
        if resources.is_empty() {
            continue;
        }
        let mut doc = serde_json::json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": resources,
        });
        if kept_dirs.contains(dir) {
            let keep: serde_json::Map<String, serde_json::Value> = KEEP_ANNOTATIONS
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
                .collect();
            doc["commonAnnotations"] = serde_json::Value::Object(keep);
        }
        if let Some(p) = patches.get(dir) {
            doc["patches"] = p.iter().map(|p| p.entry()).collect();
        }
        let file = RenderedFile {
            text: crate::yaml::emit::document(&doc),
            template: None,
            declared: None,
        };
        tree.insert(format!("{prefix}kustomization.yaml"), file)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAN: &[FanOut] = &[FanOut {
        placeholder: "app",
        collection: &["apps"],
        within: None,
    }];

    fn root(apps: serde_json::Value) -> minijinja::Value {
        minijinja::Value::from(minijinja::value::Serde(serde_json::json!({ "apps": apps })))
    }

    #[test]
    fn fan_out_renders_once_per_named_item() {
        let r = root(serde_json::json!([{"name": "a"}, {"name": "b"}]));
        let two = jobs("c/app-{app}.yaml.j2", "out/app-{app}.yaml".into(), FAN, &r).unwrap();
        let paths: Vec<&str> = two.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["out/app-a.yaml", "out/app-b.yaml"]);
        let none = jobs("c/x.yaml.j2", "out/x.yaml".into(), FAN, &r).unwrap();
        assert_eq!(none.len(), 1);
    }

    /// Issue 13: `ConfigMap-{apps}.yaml.j2` rendered nothing and exited 0.
    #[test]
    fn regression_unknown_placeholder_is_an_error_naming_the_template() {
        let r = root(serde_json::json!([{"name": "a"}]));
        let err = jobs(
            "c/ConfigMap-{apps}.yaml.j2",
            "out/ConfigMap-{apps}.yaml".into(),
            FAN,
            &r,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "internal: templates/c/ConfigMap-{apps}.yaml.j2: placeholder {apps} names no fan-out collection (declared here: {app})"
        );
    }

    #[test]
    fn regression_a_second_placeholder_is_an_error() {
        let r = root(serde_json::json!([{"name": "a"}]));
        let err = jobs(
            "c/{app}-{app}.yaml.j2",
            "out/{app}-{app}.yaml".into(),
            FAN,
            &r,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "internal: templates/c/{app}-{app}.yaml.j2: placeholder {app} does not fan out within {app}; a second placeholder needs a collection declared `within` the first"
        );
    }

    #[test]
    fn a_second_placeholder_fans_out_within_the_first() {
        const NESTED: &[FanOut] = &[
            FanOut {
                placeholder: "app",
                collection: &["apps"],
                within: None,
            },
            FanOut {
                placeholder: "part",
                collection: &["parts"],
                within: Some("app"),
            },
        ];
        let r = root(serde_json::json!([
            {"name": "a", "parts": [{"name": "x"}, {"name": "y"}]},
            {"name": "b", "parts": [{"name": "z"}]},
            {"name": "c"},
        ]));
        let jobs = jobs(
            "c/{app}/p-{part}.yaml.j2",
            "out/{app}/p-{part}.yaml".into(),
            NESTED,
            &r,
        )
        .unwrap();
        let paths: Vec<&str> = jobs.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["out/a/p-x.yaml", "out/a/p-y.yaml", "out/b/p-z.yaml"]
        );
        let err =
            super::jobs("c/{part}.yaml.j2", "out/{part}.yaml".into(), NESTED, &r).unwrap_err();
        assert_eq!(
            err.message,
            "internal: templates/c/{part}.yaml.j2: placeholder {part} fans out within {app}, which its path lacks before it"
        );
    }

    #[test]
    fn regression_item_without_a_name_is_an_error() {
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"name": ""}),
            serde_json::json!({"name": 3}),
            serde_json::json!({"name": "a/b"}),
        ] {
            let r = root(serde_json::json!([{"name": "ok"}, bad]));
            let err =
                jobs("c/app-{app}.yaml.j2", "out/app-{app}.yaml".into(), FAN, &r).unwrap_err();
            assert!(
                err.message.starts_with("internal: templates/c/app-{app}.yaml.j2: item 1 of `apps` has no usable `name`"),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn regression_two_templates_writing_one_path_is_an_error() {
        let mut tree = RenderedTree::default();
        let file = |t| RenderedFile {
            text: "a: 1\n".into(),
            template: Some(t),
            declared: None,
        };
        tree.insert("x.yaml".into(), file("a.yaml.j2")).unwrap();
        let err = tree.insert("x.yaml".into(), file("b.yaml.j2")).unwrap_err();
        assert_eq!(
            err.message,
            "internal: templates/b.yaml.j2 and templates/a.yaml.j2 both write x.yaml"
        );
        assert_eq!(tree.files["x.yaml"].template, Some("a.yaml.j2"));
    }

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
            ("\n\nkind: A\n", "kind: A\n"),
            ("\n\r\na\n", "a\n"),
            ("\n\n", "\n"),
            ("a\nb", "a\nb\n"),
            ("a ", "a\n"),
            ("a\t", "a\n"),
            ("a\n\nb", "a\n\nb\n"),
        ] {
            assert_eq!(n(text), want, "{text:?}");
            assert_eq!(normalize_lines(text), want, "{text:?}");
        }
        assert!(is_partial("x/_helpers.j2"));
        assert!(!is_partial("x/Gateway.yaml.j2"));
    }
}

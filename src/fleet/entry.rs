//! The fleet's delivery entry points, beside `clusters/<name>/`:
//!
//! - Argo CD: `argocd/applicationset.yaml`, one `ApplicationSet` whose
//!   list generator has one element per Argo CD cluster, and whose
//!   template is that cluster's root Application (`app-of-apps.yaml` of
//!   its tree, read back from the render: the ApplicationSet makes
//!   exactly the Application a single tree asks you to apply). Argo CD's
//!   list generator and Go templates: argo-cd
//!   docs/operator-manual/applicationset/Generators-List.md and
//!   GoTemplate.md.
//! - Flux: `flux/<name>/`, a `kustomization.yaml` and one Flux
//!   `Kustomization` pointing at the cluster's `flux/` directory, as the
//!   flux2 example's `clusters/<name>/` holds the Kustomizations that
//!   point at the content (fluxcd/flux2-kustomize-helm-example
//!   clusters/production/apps.yaml:1-16 at 4f1a5b1). Point the cluster's
//!   bootstrap Kustomization (`flux bootstrap --path`) at its own
//!   directory and add this one to it: README "Fleets".
//!
//! Every file is built as a value and written by the YAML emitter.

use super::facts::ClusterFacts;
use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::write::Files;
use serde_json::{json, Value};

/// The ApplicationSet's name.
pub const APPLICATION_SET: &str = "deploykf-fleet";

const ARGO_HEADER: &str = "## the fleet's root: apply this one file to Argo CD; its list generator makes\n## each cluster's root Application (its `app-of-apps.yaml`), which syncs that\n## cluster's `argocd-applications/`\n";
const FLUX_HEADER: &str = "## the cluster's entry: add this directory to the cluster's Flux bootstrap\n## path; it applies the cluster's `flux/` Kustomizations in order\n";

/// The entry files of the fleet, by path under the fleet output.
/// `clusters` is (name, facts, the rendered `app-of-apps.yaml`).
pub fn files(clusters: &[(&str, &ClusterFacts, Option<&str>)]) -> Result<Files, Diagnostic> {
    let mut out = Files::new();
    let mut elements = Vec::new();
    let mut namespace = None;
    let mut automated = false;
    for (name, facts, app_of_apps) in clusters {
        match facts.engine.as_str() {
            "argocd" => {
                let Some(text) = app_of_apps else { continue };
                let app = root_application(text).ok_or_else(|| {
                    Diagnostic::error(
                        Code::Fleet,
                        format!(
                            "internal: cluster `{name}`: `app-of-apps.yaml` is not one Application"
                        ),
                    )
                })?;
                let s = |p: &str| app.pointer(p).and_then(Value::as_str).unwrap_or_default();
                let automated_of = app.pointer("/spec/syncPolicy/automated");
                automated |= automated_of.is_some();
                let b = |p: &str| {
                    automated_of
                        .and_then(|a| a.pointer(p))
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                        .to_string()
                };
                namespace.get_or_insert_with(|| s("/metadata/namespace").to_string());
                elements.push(json!({
                    "cluster": name,
                    "name": s("/metadata/name"),
                    "project": s("/spec/project"),
                    "repoURL": s("/spec/source/repoURL"),
                    "revision": s("/spec/source/targetRevision"),
                    "path": s("/spec/source/path"),
                    "server": s("/spec/destination/server"),
                    "automated": automated_of.is_some().to_string(),
                    "prune": b("/prune"),
                    "selfHeal": b("/selfHeal"),
                }));
            }
            "flux" => {
                let f = &facts.flux;
                let path = crate::model::gitops::clean_repo_path(&f.path);
                let path = if path.is_empty() {
                    "./flux".to_string()
                } else {
                    format!("./{path}/flux")
                };
                let entry = json!({
                    "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                    "kind": "Kustomization",
                    "metadata": {
                        "name": "deploykf-platform",
                        "namespace": f.namespace,
                        "labels": {"app.kubernetes.io/managed-by": "meshgen"},
                    },
                    "spec": {
                        "interval": f.interval,
                        "sourceRef": {"kind": f.source_kind, "name": f.source_name},
                        "path": path,
                        "prune": true,
                    },
                });
                let kustomization = json!({
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": ["deploykf-platform.yaml"],
                });
                out.insert(
                    format!("flux/{name}/deploykf-platform.yaml"),
                    format!("{FLUX_HEADER}{}", crate::yaml::emit::document(&entry)),
                );
                out.insert(
                    format!("flux/{name}/kustomization.yaml"),
                    crate::yaml::emit::document(&kustomization),
                );
            }
            _ => {}
        }
    }
    if let Some(namespace) = namespace {
        let mut template_spec = json!({
            "project": "{{ .project }}",
            "source": {
                "repoURL": "{{ .repoURL }}",
                "targetRevision": "{{ .revision }}",
                "path": "{{ .path }}",
            },
            "destination": {"server": "{{ .server }}", "namespace": namespace},
            "syncPolicy": {"syncOptions": []},
        });
        let mut spec = json!({
            "goTemplate": true,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{"list": {"elements": elements}}],
            "template": {
                "metadata": {
                    "name": "{{ .name }}",
                    "labels": {
                        "app.kubernetes.io/managed-by": "meshgen",
                        "meshgen.io/cluster": "{{ .cluster }}",
                    },
                },
                "spec": template_spec.take(),
            },
        });
        if automated {
            // Only the clusters whose values turn automated sync on get it
            // (a template field can not be left out by a value).
            spec["templatePatch"] = Value::String(AUTOMATED_PATCH.into());
        }
        let set = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ApplicationSet",
            "metadata": {
                "name": APPLICATION_SET,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "meshgen"},
            },
            "spec": spec,
        });
        out.insert(
            "argocd/applicationset.yaml".into(),
            format!("{ARGO_HEADER}{}", crate::yaml::emit::document(&set)),
        );
    }
    Ok(out)
}

/// Argo CD's `templatePatch` (ApplicationSet Templates.md, "Template
/// Patch"): a Go template evaluated per element, merged into the
/// Application.
const AUTOMATED_PATCH: &str = "{{- if eq .automated \"true\" }}\nspec:\n  syncPolicy:\n    automated:\n      prune: {{ .prune }}\n      selfHeal: {{ .selfHeal }}\n{{- end }}\n";

/// The one Application of a rendered `app-of-apps.yaml`.
fn root_application(text: &str) -> Option<Value> {
    let mut docs = crate::yaml::load::load_json_documents(text).ok()?;
    (docs.len() == 1).then(|| docs.remove(0))
}

//! Whole-tree reference checks: every reference between rendered objects
//! (and from delivery objects to paths) must resolve inside the tree, or
//! to something the user declared. Run before anything is written; each
//! error names the file and the document.

use super::Manifest;
use crate::diagnostic::{Diagnostic, Diagnostics};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What the tree may rely on without rendering it.
#[derive(Debug, Clone, Default)]
pub struct TreeContext {
    /// Repository path prefix of Argo CD Applications (`argocd.source.repo.path`).
    pub argo_prefix: Option<String>,
    /// Path prefix of Flux Kustomizations inside their source.
    pub flux_prefix: Option<String>,
    /// Namespaces that exist without the tree creating them.
    pub existing_namespaces: Vec<String>,
    /// Gateway credential Secrets the user provides.
    pub user_credentials: Vec<String>,
    /// Extension providers declared in the mesh config (meshgen's or the user's).
    pub extension_providers: Vec<String>,
}

/// Kinds that are not namespaced.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "APIService",
    "ClusterIssuer",
    "GatewayClass",
    "Profile",
];

struct Doc<'a> {
    path: &'a str,
    index: usize,
    json: Value,
}

impl Doc<'_> {
    fn kind(&self) -> &str {
        self.json["kind"].as_str().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.json["metadata"]["name"].as_str().unwrap_or("")
    }
    fn namespace(&self) -> &str {
        self.json["metadata"]["namespace"].as_str().unwrap_or("")
    }
    fn error(&self, message: String) -> Diagnostic {
        Diagnostic::error(format!(
            "{} (document {}, {} {}): {message}",
            self.path,
            self.index,
            self.kind(),
            self.name()
        ))
    }
}

/// Directories present in the tree (every ancestor of every file).
fn directories(files: &BTreeSet<&str>) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    for f in files {
        let mut p = *f;
        while let Some((parent, _)) = p.rsplit_once('/') {
            dirs.insert(parent.to_string());
            p = parent;
        }
    }
    dirs
}

fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let path = path.trim_start_matches("./").trim_end_matches('/');
    if prefix.is_empty() {
        Some(path)
    } else {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'))
    }
}

/// Run every reference check. `files` are all rendered paths (manifests,
/// kustomizations, charts, documents).
pub fn check(
    manifests: &[Manifest],
    files: &BTreeMap<String, Vec<Value>>,
    ctx: &TreeContext,
) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let paths: BTreeSet<&str> = files.keys().map(String::as_str).collect();
    let dirs = directories(&paths);
    let docs: Vec<Doc> = manifests
        .iter()
        .flat_map(|m| {
            m.docs.iter().enumerate().map(move |(index, d)| Doc {
                path: &m.path,
                index,
                json: d.to_json(),
            })
        })
        .collect();

    // Namespaces the tree creates, gateways and certificates it renders.
    let created: BTreeSet<&str> = docs
        .iter()
        .filter(|d| d.kind() == "Namespace")
        .map(|d| d.name())
        .collect();
    let gateways: BTreeSet<(&str, &str)> = docs
        .iter()
        .filter(|d| {
            d.kind() == "Gateway"
                && d.json["apiVersion"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("networking.istio.io/")
        })
        .map(|d| (d.namespace(), d.name()))
        .collect();
    let certificates: BTreeSet<(&str, &str)> = docs
        .iter()
        .filter(|d| d.kind() == "Certificate")
        .filter_map(|d| {
            d.json["spec"]["secretName"]
                .as_str()
                .map(|s| (d.namespace(), s))
        })
        .collect();

    for d in &docs {
        let kind = d.kind();
        // Every namespaced object lives in a namespace that will exist.
        if !CLUSTER_SCOPED.contains(&kind) {
            let ns = d.namespace();
            if ns.is_empty() {
                diags.push(d.error(
                    "a namespaced object without metadata.namespace; set it explicitly".into(),
                ));
            } else if !created.contains(ns) && !ctx.existing_namespaces.iter().any(|e| e == ns) {
                diags.push(d.error(format!(
                    "namespace `{ns}` is neither created by this tree nor known to exist; add it to `gitops.existingNamespaces` if your cluster has it"
                )));
            }
        }
        match kind {
            "Application" => {
                let path = d.json["spec"]["source"]["path"].as_str().unwrap_or("");
                let rel = ctx
                    .argo_prefix
                    .as_deref()
                    .and_then(|p| strip_prefix(path, p));
                if !rel.is_some_and(|r| dirs.contains(r)) {
                    diags.push(d.error(format!(
                        "spec.source.path `{path}` is not a directory of this tree"
                    )));
                }
            }
            "Kustomization"
                if d.json["apiVersion"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("kustomize.toolkit.fluxcd.io/") =>
            {
                let path = d.json["spec"]["path"].as_str().unwrap_or("");
                let rel = ctx
                    .flux_prefix
                    .as_deref()
                    .and_then(|p| strip_prefix(path, p));
                if !rel.is_some_and(|r| dirs.contains(r)) {
                    diags.push(d.error(format!(
                        "spec.path `{path}` is not a directory of this tree"
                    )));
                }
            }
            "VirtualService" => {
                for gw in d.json["spec"]["gateways"].as_array().into_iter().flatten() {
                    let gw = gw.as_str().unwrap_or("");
                    if gw == "mesh" {
                        continue;
                    }
                    let (ns, name) = gw.split_once('/').unwrap_or((d.namespace(), gw));
                    if !gateways.contains(&(ns, name)) {
                        diags.push(d.error(format!(
                            "spec.gateways entry `{gw}` names no rendered Gateway"
                        )));
                    }
                }
            }
            "AuthorizationPolicy" if d.json["spec"]["action"] == "CUSTOM" => {
                let provider = d.json["spec"]["provider"]["name"].as_str().unwrap_or("");
                if !ctx.extension_providers.iter().any(|p| p == provider) {
                    diags.push(d.error(format!(
                        "action CUSTOM names extension provider `{provider}`, which no mesh config declares"
                    )));
                }
            }
            "Gateway" => {
                for server in d.json["spec"]["servers"].as_array().into_iter().flatten() {
                    let Some(secret) = server["tls"]["credentialName"].as_str() else {
                        continue;
                    };
                    let produced = certificates.contains(&(d.namespace(), secret));
                    if !produced && !ctx.user_credentials.iter().any(|c| c == secret) {
                        diags.push(d.error(format!(
                            "tls.credentialName `{secret}` is produced by no Certificate in namespace `{}` and was not named by you (`gateway.tls.credentialName`)",
                            d.namespace()
                        )));
                    }
                }
            }
            _ => {}
        }
    }

    // Every kustomization resource exists.
    for (path, docs) in files {
        if !path.ends_with("kustomization.yaml") {
            continue;
        }
        let base = path.rsplit_once('/').map_or("", |(b, _)| b);
        for (i, doc) in docs.iter().enumerate() {
            for r in doc["resources"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap_or("");
                let target = if base.is_empty() {
                    r.to_string()
                } else {
                    format!("{base}/{r}")
                };
                let target = target.trim_end_matches('/');
                if !paths.contains(target) && !dirs.contains(target) {
                    diags.push(Diagnostic::error(format!(
                        "{path} (document {i}, Kustomization): resource `{r}` does not exist in this tree"
                    )));
                }
            }
        }
    }
    diags
}

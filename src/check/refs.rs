//! Whole-tree reference checks: every reference between rendered objects
//! (and from delivery objects to paths) must resolve inside the tree, or
//! to something the user declared. Run before anything is written; each
//! error names the file and the document, or, for an object of the user's
//! `extraManifests` (known by its group, kind, namespace and name), the
//! item and the values file and line where it was written.

use crate::code::Code;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::rules::extra::UserObject;
use serde_json::Value;
// foldhash: the tree checks hash every document's identity (120,000 at
// 10,000 profiles) and every path; SipHash was a fifth of this stage.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

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
    /// Istio Gateways whose pods run in another namespace than the
    /// Gateway resource: ((Gateway namespace, name), the pods' namespace).
    /// istiod resolves a `credentialName` in the namespace of the proxy
    /// that asks for it (istio/istio master 86c9f01 `pilot/pkg/xds/sds.go:99`,
    /// `ParseResourceName(resource, proxy.VerifiedIdentity.Namespace, ...)`),
    /// not the Gateway's.
    pub gateway_pod_namespaces: Vec<((String, String), String)>,
    /// Extension providers declared in the mesh config (meshgen's or the user's).
    pub extension_providers: Vec<String>,
    /// The objects of the user's `extraManifests`, with where they were
    /// written.
    pub user_objects: Vec<UserObject>,
    /// The user's `patches`, each with the kustomize directory it goes
    /// into (`check::patches`).
    pub patches: Vec<(String, crate::rules::patch::UserPatch)>,
    /// The Gateway API bundle whose kinds and versions the tree's
    /// `gateway.networking.k8s.io` objects must be (`served`); `None`
    /// checks none.
    pub gateway_api_bundle: Option<&'static str>,
    /// `dataplaneMode: ambient`: the namespaces meshgen declares (their
    /// files are not parsed back in release builds, so their labels are
    /// unknown here) carry `istio.io/dataplane-mode: ambient`.
    pub ambient: bool,
}

/// An object's identity: API group, kind, namespace, name.
type Identity<'a> = (&'a str, &'a str, &'a str, &'a str);

fn identity<'a>(
    api_version: &'a str,
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
) -> Identity<'a> {
    (crate::kube::group(api_version), kind, namespace, name)
}

/// What the checks need to know about one document.
#[derive(Debug, Clone)]
pub struct DocFacts {
    pub path: String,
    pub index: usize,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub refs: Vec<Ref>,
    /// A Namespace's `istio.io/dataplane-mode` is `ambient`; `None` when
    /// its labels are unknown (a declared document, not parsed).
    pub ambient_label: Option<bool>,
    /// An AuthorizationPolicy's parts ztunnel would not enforce as written
    /// (`ambient::ztunnel_unsupported`); checked only in an ambient
    /// namespace. Not a [`Ref`]: a sidecar-mode profile policy has them.
    pub ztunnel_unsupported: Vec<String>,
}

/// A reference (or a product) of a document.
#[derive(Debug, Clone)]
pub enum Ref {
    /// An Argo CD Application's `spec.source.path`.
    AppPath(String),
    /// A Flux Kustomization's `spec.path`.
    FluxPath(String),
    /// A VirtualService's `spec.gateways` entry.
    VsGateway(String),
    /// An AuthorizationPolicy's CUSTOM provider.
    Provider(String),
    /// A Gateway server's `tls.credentialName`.
    Credential(String),
    /// A Certificate's `spec.secretName`.
    ProducesSecret(String),
    /// A Gateway API field the standard channel lacks (`experimental`).
    NotStandard(super::experimental::Field),
}

/// The key paths [`DocFacts::extract`] (and the kustomization check)
/// reads itself.
const OWN_PATHS: crate::yaml::load::Selection = &[
    &["apiVersion"],
    &["kind"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["spec", "source", "path"],
    &["spec", "path"],
    &["spec", "gateways"],
    &["spec", "action"],
    &["spec", "provider", "name"],
    &["spec", "servers", "*", "tls", "credentialName"],
    &["spec", "listeners", "*", "tls", "certificateRefs"],
    &["spec", "secretName"],
    &["resources"],
];

/// Every key path the check stage reads: its own, and those of the
/// `experimental` and `ambient` checks. Only these parts of each document
/// are built (`load_selected_documents`, at most 63 paths).
pub static FACT_PATHS: std::sync::LazyLock<Vec<&'static [&'static str]>> =
    std::sync::LazyLock::new(|| {
        OWN_PATHS
            .iter()
            .chain(super::experimental::PATHS)
            .chain(super::ambient::PATHS)
            .copied()
            .collect()
    });

impl DocFacts {
    /// `None` when the document lacks apiVersion, kind or metadata.name.
    pub fn extract(path: &str, index: usize, d: &Value) -> Option<DocFacts> {
        let s = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
        let api_version = s(&d["apiVersion"])?;
        let kind = s(&d["kind"])?;
        let name = s(&d["metadata"]["name"])?;
        let namespace = s(&d["metadata"]["namespace"]).unwrap_or_default();
        let mut refs = Vec::new();
        match kind.as_str() {
            "Application" => refs.push(Ref::AppPath(
                s(&d["spec"]["source"]["path"]).unwrap_or_default(),
            )),
            "Kustomization" if api_version.starts_with("kustomize.toolkit.fluxcd.io/") => {
                refs.push(Ref::FluxPath(s(&d["spec"]["path"]).unwrap_or_default()))
            }
            "VirtualService" => {
                for g in d["spec"]["gateways"].as_array().into_iter().flatten() {
                    refs.push(Ref::VsGateway(g.as_str().unwrap_or("").to_string()));
                }
            }
            "AuthorizationPolicy" if d["spec"]["action"] == "CUSTOM" => refs.push(Ref::Provider(
                s(&d["spec"]["provider"]["name"]).unwrap_or_default(),
            )),
            "Gateway" => {
                for server in d["spec"]["servers"].as_array().into_iter().flatten() {
                    if let Some(c) = s(&server["tls"]["credentialName"]) {
                        refs.push(Ref::Credential(c));
                    }
                }
                // A Gateway API listener's Secrets of its own namespace.
                let listeners = d["spec"]["listeners"].as_array().into_iter().flatten();
                for r in listeners
                    .flat_map(|l| l["tls"]["certificateRefs"].as_array().into_iter().flatten())
                {
                    let core = r["group"].as_str().unwrap_or("").is_empty();
                    let secret = r["kind"].as_str().unwrap_or("Secret") == "Secret";
                    if core && secret && r["namespace"].is_null() {
                        if let Some(c) = s(&r["name"]) {
                            refs.push(Ref::Credential(c));
                        }
                    }
                }
            }
            "Certificate" => {
                if let Some(secret) = s(&d["spec"]["secretName"]) {
                    refs.push(Ref::ProducesSecret(secret));
                }
            }
            _ => {}
        }
        if crate::kube::group(&api_version) == "gateway.networking.k8s.io" {
            refs.extend(
                super::experimental::fields(&kind, d)
                    .into_iter()
                    .map(Ref::NotStandard),
            );
        }
        let ambient_label = Some(kind == "Namespace" && super::ambient::is_ambient_namespace(d));
        let ztunnel_unsupported = if kind == "AuthorizationPolicy"
            && crate::kube::group(&api_version) == "security.istio.io"
        {
            super::ambient::ztunnel_unsupported(d)
        } else {
            Vec::new()
        };
        Some(DocFacts {
            path: path.to_string(),
            index,
            api_version,
            kind,
            name,
            namespace,
            refs,
            ambient_label,
            ztunnel_unsupported,
        })
    }

    fn error(&self, message: String) -> Diagnostic {
        Diagnostic::error(
            Code::Tree,
            format!(
                "{} (document {}, {} {}): {message}",
                self.path, self.index, self.kind, self.name
            ),
        )
    }

    fn identity(&self) -> Identity<'_> {
        identity(&self.api_version, &self.kind, &self.namespace, &self.name)
    }

    fn is_istio_gateway(&self) -> bool {
        self.kind == "Gateway" && self.api_version.starts_with("networking.istio.io/")
    }
}

/// Directories present in the tree (every ancestor of every file),
/// borrowed from the paths: one pass, no copies.
fn directories<'a>(files: &[&'a str]) -> HashSet<&'a str> {
    let mut dirs = HashSet::with_capacity(files.len());
    for f in files {
        let mut p = *f;
        while let Some((parent, _)) = p.rsplit_once('/') {
            if !dirs.insert(parent) {
                break;
            }
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

/// Run every reference check on the facts of all documents, the
/// resources of every `kustomization.yaml` (by its path) and the list of
/// rendered paths.
pub fn check<'a>(
    docs: &'a [DocFacts],
    kustomizations: &[(String, Vec<Vec<String>>)],
    paths: &[&'a str],
    ctx: &'a TreeContext,
) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let files: HashSet<&str> = paths.iter().copied().collect();
    let dirs = directories(paths);
    // The user's lists, looked up once per document: as sets, so a long
    // `existingNamespaces` does not make the pass quadratic.
    let set = |v: &'a [String]| -> HashSet<&'a str> { v.iter().map(String::as_str).collect() };
    let existing = set(&ctx.existing_namespaces);
    let providers = set(&ctx.extension_providers);
    let user_credentials = set(&ctx.user_credentials);

    // The user's objects, by identity, in the order written.
    let mut users: HashMap<Identity, Vec<&UserObject>> = HashMap::new();
    for u in &ctx.user_objects {
        let id = identity(&u.api_version, &u.kind, &u.namespace, &u.name);
        users.entry(id).or_default().push(u);
    }
    // An error about a document: at the values item that holds it, if it
    // is one of the user's objects.
    let error = |d: &DocFacts, message: String| match users.get(&d.identity()) {
        Some(written) => written[0].error(Code::Tree, message),
        None => d.error(message),
    };

    // No object twice.
    let mut seen: HashMap<Identity, (&str, usize)> = HashMap::with_capacity(docs.len());
    for d in docs {
        let key = d.identity();
        let Some((first, again)) = seen.get_mut(&key) else {
            seen.insert(key, (&d.path, 0));
            continue;
        };
        *again += 1;
        let what = format!("{} {}/{}", d.kind, d.namespace, d.name);
        diags.push(match users.get(&key).map(Vec::as_slice) {
            None | Some([]) => Diagnostic::error(
                Code::Tree,
                format!("{what} is rendered twice: in {first} and in {}", d.path),
            ),
            Some([mine]) => mine.error(
                Code::Tree,
                format!(
                "meshgen renders this object too: {first} and {} both hold {what}; rename yours",
                d.path
            ),
            ),
            Some(written) => written[(*again).min(written.len() - 1)].error(
                Code::Tree,
                format!("written twice: `{}` holds {what} too", written[0].path),
            ),
        });
    }

    let created: HashSet<&str> = docs
        .iter()
        .filter(|d| d.kind == "Namespace")
        .map(|d| d.name.as_str())
        .collect();
    // Namespaces in the ambient data plane: labelled so, or declared by
    // meshgen (labels not parsed) in ambient mode.
    let ambient: HashSet<&str> = docs
        .iter()
        .filter(|d| d.kind == "Namespace" && d.ambient_label.unwrap_or(ctx.ambient))
        .map(|d| d.name.as_str())
        .collect();
    let gateways: HashSet<(&str, &str)> = docs
        .iter()
        .filter(|d| d.is_istio_gateway())
        .map(|d| (d.namespace.as_str(), d.name.as_str()))
        .collect();
    let secrets: HashSet<(&str, &str)> = docs
        .iter()
        .flat_map(|d| {
            d.refs.iter().filter_map(move |r| match r {
                Ref::ProducesSecret(s) => Some((d.namespace.as_str(), s.as_str())),
                _ => None,
            })
        })
        .collect();

    // Each document's own references, on all cores; `collect` keeps the
    // documents' order, so the diagnostics come out as before.
    let per_document = |d: &'a DocFacts| -> Vec<Diagnostic> {
        let mut found = Vec::new();
        // Every namespaced object lives in a namespace that will exist.
        if !crate::kube::is_cluster_scoped(&d.api_version, &d.kind) {
            let ns = d.namespace.as_str();
            if ns.is_empty() {
                found.push(error(
                    d,
                    "a namespaced object without metadata.namespace; set it explicitly".into(),
                ));
            } else if !created.contains(ns) && !existing.contains(ns) {
                found.push(error(d, format!(
                        "namespace `{ns}` is neither created by this tree nor known to exist; add it to `gitops.existingNamespaces` if your cluster has it"
                    )));
            }
        }
        // A Gateway API kind and version the pinned bundle serves.
        if let Some(bundle) = ctx.gateway_api_bundle {
            if crate::kube::group(&d.api_version) == super::served::GROUP {
                if let Some(why) = super::served::refusal(bundle, &d.api_version, &d.kind) {
                    found.push(error(d, why));
                }
            }
        }
        if !d.ztunnel_unsupported.is_empty() && ambient.contains(d.namespace.as_str()) {
            found.push(error(
                d,
                super::ambient::message(&d.namespace, &d.ztunnel_unsupported),
            ));
        }
        for r in &d.refs {
            match r {
                Ref::AppPath(path) => {
                    let rel = ctx
                        .argo_prefix
                        .as_deref()
                        .and_then(|p| strip_prefix(path, p));
                    if !rel.is_some_and(|r| dirs.contains(r)) {
                        found.push(error(
                            d,
                            format!("spec.source.path `{path}` is not a directory of this tree"),
                        ));
                    }
                }
                Ref::FluxPath(path) => {
                    let rel = ctx
                        .flux_prefix
                        .as_deref()
                        .and_then(|p| strip_prefix(path, p));
                    if !rel.is_some_and(|r| dirs.contains(r)) {
                        found.push(error(
                            d,
                            format!("spec.path `{path}` is not a directory of this tree"),
                        ));
                    }
                }
                Ref::VsGateway(gw) => {
                    if gw == "mesh" {
                        continue;
                    }
                    let (ns, name) = gw.split_once('/').unwrap_or((d.namespace.as_str(), gw));
                    if !gateways.contains(&(ns, name)) {
                        found.push(error(
                            d,
                            format!("spec.gateways entry `{gw}` names no rendered Gateway"),
                        ));
                    }
                }
                Ref::Provider(provider) => {
                    if !providers.contains(provider.as_str()) {
                        found.push(error(d, format!(
                                "action CUSTOM names extension provider `{provider}`, which no mesh config declares"
                            )));
                    }
                }
                Ref::Credential(secret) => {
                    let ns = ctx
                        .gateway_pod_namespaces
                        .iter()
                        .find(|((ns, name), _)| *ns == d.namespace && *name == d.name)
                        .map_or(d.namespace.as_str(), |(_, pods)| pods.as_str());
                    let produced = secrets.contains(&(ns, secret.as_str()));
                    if !produced && !user_credentials.contains(secret.as_str()) {
                        found.push(error(d, format!(
                                "tls.credentialName `{secret}` is produced by no Certificate in namespace `{ns}` and was not named by you (`gateway.tls.credentialName`)"
                            )));
                    }
                }
                Ref::ProducesSecret(_) => {}
                Ref::NotStandard(field) => found.push(error(d, field.message())),
            }
        }
        found
    };
    {
        use rayon::prelude::*;
        let found: Vec<Vec<Diagnostic>> = docs
            .par_iter()
            .with_min_len(1024)
            .map(per_document)
            .collect();
        diags.0.extend(found.into_iter().flatten());
    }

    // Every kustomization resource exists.
    for (path, docs) in kustomizations {
        let base = path.rsplit_once('/').map_or("", |(b, _)| b);
        for (i, resources) in docs.iter().enumerate() {
            for r in resources {
                let target = if base.is_empty() {
                    r.to_string()
                } else {
                    format!("{base}/{r}")
                };
                let target = target.trim_end_matches('/');
                if !files.contains(target) && !dirs.contains(target) {
                    diags.push(Diagnostic::error(Code::Tree, format!(
                        "{path} (document {i}, Kustomization): resource `{r}` does not exist in this tree"
                    )));
                }
            }
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    #[test]
    fn fact_paths_fit_the_selecting_loader() {
        let paths = &*super::FACT_PATHS;
        // The loader tracks the selection as bits of a u64 (63 paths).
        assert!(paths.len() <= 63, "{} paths", paths.len());
        for (i, p) in paths.iter().enumerate() {
            assert!(!paths[..i].contains(p), "{p:?} twice");
        }
    }
}

//! Stage 3: the derived model, computed once from the checked config and
//! the facts, and handed to every template.
//!
//! Each registered component ([`crate::registry::ALL`]) derives its own
//! part (`model.<key>` in templates) in its module here; this module only
//! runs them and adds what spans components: the component list, labels
//! on every object, the delivery objects (`gitops`), the directories that
//! get a `kustomization.yaml`, and what the whole-tree checks may assume
//! (and where your own objects were written).
//! Nothing here renders text.

pub mod auth;
pub mod cert_manager;
pub mod egress_gateway;
pub mod gateway;
pub mod gateway_api;
pub mod gitops;
pub mod istio;
pub mod istio_extra;
pub mod netpol;
pub mod profiles;
pub mod telemetry;
pub mod tenant_routes;

use crate::component::{Input, Instance};
use crate::config::StringMap;
use crate::rules::Checked;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub components: Vec<Instance>,
    /// Labels on every object meshgen renders.
    pub common_labels: StringMap,
    pub gitops: gitops::GitopsModel,
    /// Directories that get a generated `kustomization.yaml`.
    pub kustomize_dirs: Vec<String>,
    /// Those of them whose objects the GitOps engine must never delete
    /// (`component::Delivery::keep`).
    pub kept_dirs: Vec<String>,
    /// Namespaces objects may live in without the tree creating them.
    pub existing_namespaces: Vec<String>,
    /// Secrets the user provides for Gateway credentials.
    pub user_credentials: Vec<String>,
    /// The main Istio Gateway when it is not beside its pods
    /// (`gateway.namespace`): ((its namespace, name), the pods' namespace).
    pub gateway_pod_namespaces: Vec<((String, String), String)>,
    /// Extension providers the mesh config declares.
    pub extension_providers: Vec<String>,
    /// `dataplaneMode: ambient` (for the tree checks: what ztunnel enforces).
    pub ambient: bool,
    /// The objects of your `extraManifests` and where you wrote them, for
    /// the tree checks to point there.
    #[serde(skip)]
    pub user_objects: Vec<crate::rules::extra::UserObject>,
    /// The user's `patches`, by the kustomize directory they go into (an
    /// enabled component's own).
    #[serde(skip)]
    pub patches: BTreeMap<String, Vec<crate::rules::patch::UserPatch>>,
    /// Each component's part, by its key (`model.<key>` in templates).
    #[serde(skip)]
    pub parts: BTreeMap<&'static str, minijinja::Value>,
    /// The part of each further instance of a component
    /// ([`crate::component::Descriptor::more`]), by its directory: its
    /// templates see it as `model.<key>` in place of the component's own.
    #[serde(skip)]
    pub instance_parts: BTreeMap<String, (&'static str, minijinja::Value)>,
    /// Files enabled components write as they are, by output path
    /// ([`crate::component::Verbatim`]).
    #[serde(skip)]
    pub verbatim: BTreeMap<String, &'static str>,
    /// The Gateway API bundle the tree's Gateway API objects must fit
    /// (`model::gateway_api::pinned`), for the tree checks.
    #[serde(skip)]
    pub gateway_api_bundle: &'static str,
}

impl Model {
    /// The model as templates see it: the fields above and every part.
    pub fn to_value(&self) -> minijinja::Value {
        // One plain map (not a merged view): templates look `model.x` up
        // once per access, tens of thousands of times at scale.
        let base = minijinja::Value::from(minijinja::value::Serde(self));
        let mut map: BTreeMap<String, minijinja::Value> = BTreeMap::new();
        if let Ok(keys) = base.try_iter() {
            for key in keys {
                if let (Some(k), Ok(v)) = (key.as_str(), base.get_item(&key)) {
                    map.insert(k.to_string(), v);
                }
            }
        }
        for (k, v) in &self.parts {
            map.insert(k.to_string(), v.clone());
        }
        minijinja::Value::from(map)
    }

    /// `model` (as [`Model::to_value`] made it) as the further instance
    /// in `dir` sees it: its own part in place of its component's; `None`
    /// for a component's own instance.
    pub fn instance_value(&self, model: &minijinja::Value, dir: &str) -> Option<minijinja::Value> {
        let (key, part) = self.instance_parts.get(dir)?;
        let mut map: BTreeMap<String, minijinja::Value> = BTreeMap::new();
        for k in model.try_iter().ok()? {
            if let (Some(name), Ok(v)) = (k.as_str(), model.get_item(&k)) {
                map.insert(name.to_string(), v);
            }
        }
        map.insert(key.to_string(), part.clone());
        Some(minijinja::Value::from(map))
    }
}

pub fn derive(checked: &Checked) -> Model {
    let config = &checked.config;
    let facts = &checked.facts;
    let components = crate::registry::instances(config);
    let mut parts = BTreeMap::new();
    let mut instance_parts = BTreeMap::new();
    let mut charts = BTreeMap::new();
    let mut verbatim = BTreeMap::new();
    // What each instance adds to the others, before any model is made.
    let mut contributions = crate::component::Contributions::default();
    for c in &components {
        contributions.extend((c.descriptor.contribute)(config, c.index));
    }
    for c in &components {
        let d = c.descriptor;
        let part = (d.derive)(&Input {
            contributions: &contributions,
            config,
            facts,
            extra_manifests: match c.index {
                None => (checked.extra_manifests.get(d.id)).map_or(&[][..], Vec::as_slice),
                Some(_) => &[],
            },
            index: c.index,
        });
        match c.index {
            None => {
                parts.insert(d.key, part.data);
            }
            Some(_) => {
                instance_parts.insert(c.dir.clone(), (d.key, part.data));
            }
        }
        if c.enabled {
            for f in part.files {
                verbatim.insert(format!("{}/{}", c.dir, f.name), f.text);
            }
        }
        if let Some(chart) = part.chart {
            charts.insert(d.id, chart);
        }
    }
    let gitops = gitops::derive(config, &components, &charts);
    let mut kustomize_dirs: Vec<String> = components
        .iter()
        .filter(|c| c.enabled && !c.helm_chart)
        .flat_map(|c| {
            let mut dirs = vec![c.dir.clone()];
            dirs.extend(gitops::units_of(config, c).into_iter().map(|(_, d)| d));
            dirs.dedup();
            dirs
        })
        .collect();
    kustomize_dirs.extend(gitops.kustomize_dirs());
    let kept_dirs = components
        .iter()
        .filter(|c| c.enabled && !c.helm_chart && c.descriptor.delivery.keep)
        .map(|c| c.dir.clone())
        .collect();
    let mut existing_namespaces = gitops::assumed_namespaces(config);
    existing_namespaces.extend(contributions.namespaces.iter().cloned());
    existing_namespaces.sort();
    existing_namespaces.dedup();
    let patches = components
        .iter()
        .filter(|c| c.enabled && !c.helm_chart)
        .filter_map(|c| {
            let p = checked
                .patches
                .get(c.descriptor.id)
                .filter(|_| c.index.is_none())?;
            (!p.is_empty()).then(|| (c.dir.clone(), p.clone()))
        })
        .collect();
    Model {
        components,
        common_labels: crate::facts::string_map(&[("app.kubernetes.io/managed-by", "meshgen")]),
        gitops,
        kustomize_dirs,
        kept_dirs,
        existing_namespaces,
        user_credentials: (!facts.gateway.certificate_managed)
            .then(|| facts.gateway.tls_credential_name.clone())
            .into_iter()
            .collect(),
        gateway_pod_namespaces: (facts.gateway.object_namespace != facts.gateway.namespace)
            .then(|| {
                (
                    (
                        facts.gateway.object_namespace.clone(),
                        facts.gateway.name.clone(),
                    ),
                    facts.gateway.namespace.clone(),
                )
            })
            .into_iter()
            .collect(),
        extension_providers: contributions.provider_names(),
        ambient: facts.istio.ambient,
        user_objects: checked.user_objects.clone(),
        patches,
        parts,
        instance_parts,
        verbatim,
        gateway_api_bundle: gateway_api::pinned(config),
    }
}

//! `deploykf_dependencies.istio.extraManifests`, as a plain kustomize
//! directory beside the Istio wrapper chart
//! (`manifests/deploykf-dependencies/istio-extra/`), applied right after
//! the chart (sync wave / Flux `dependsOn` rank just above Istio's, since
//! they may use its CRDs).
//!
//! They are kept out of the chart on purpose. Everything in a chart's
//! `templates/` is a Go template that Helm (and Argo CD or Flux, rendering
//! Helm in the cluster) evaluates: `{{ 7*7 }}` in a user's value broke the
//! render, `{{ .Release.Name }}` was substituted, and whoever writes values
//! could run template functions (`lookup`, `env`-like helpers) where the
//! chart is rendered. Escaping every `{{` as `{{ "{{" }}` would have to be
//! right for every delimiter form (`{{-`, comments, raw strings) and would
//! make the file on disk differ from what is applied, and no longer be
//! YAML this tree's checks can parse. A kustomize directory is never
//! templated: what the user wrote is applied byte for byte. Under Flux,
//! which installs the upstream charts rather than the wrapper, this is also
//! what makes them reach the cluster at all.

use crate::component::{no_overrides, Delivery, Descriptor, Input, Overrides, Packaging, Part};
use serde::Serialize;
use serde_json::Value;

pub static COMPONENT: Descriptor = Descriptor {
    id: "istio-extra",
    summary: "Istio's extraManifests, as plain manifests applied after the chart (never evaluated by Helm)",
    key: "istio_extra",
    section: "deploykf_dependencies.istio",
    templates: "manifests/deploykf-dependencies/istio-extra",
    // After the chart (-10), before the issuers (-5).
    wave: -9,
    packaging: Packaging::Kustomize,
    delivery: Delivery::PLAIN,
    overrides: Overrides::Absent,
    fan_out: &[],
    // With the chart they ride along with; a directory with nothing in it
    // is not rendered.
    enabled: |c| {
        let istio = &c.deploykf_dependencies.istio;
        istio.common.enabled && !istio.common.extra_manifests.is_empty()
    },
    namespace: |c| Some(c.deploykf_dependencies.istio.common.namespace.clone()),
    // The Istio namespace is the chart's (`istio::COMPONENT` assumes it).
    extra_manifests: |c| &c.deploykf_dependencies.istio.common.extra_manifests,
    values_overrides: no_overrides,
    patches: crate::component::no_patches,
    rules: crate::rules::none,
    derive,
    more: crate::component::single,
    shards: crate::component::no_shards,
    contribute: crate::component::contributes_nothing,
};

#[derive(Debug, Clone, Serialize)]
pub struct IstioExtraModel {
    /// `extraManifests`, parsed and checked, in order.
    pub extra_manifests: Vec<Value>,
}

fn derive(input: &Input) -> Part {
    Part::of(&IstioExtraModel {
        extra_manifests: input.extra_manifests.to_vec(),
    })
}

//! The cert-manager component: the self-signed issuer chain that signs
//! the gateway certificate (cert-manager itself is a prerequisite; its
//! namespace is assumed to exist). Only the issuer names are derived here.

use crate::component::{no_overrides, Delivery, Descriptor, Input, Overrides, Packaging, Part};
use serde::Serialize;

pub static COMPONENT: Descriptor = Descriptor {
    id: "cert-manager",
    key: "cert_manager",
    section: "deploykf_dependencies.cert_manager",
    templates: "manifests/deploykf-dependencies/cert-manager",
    wave: -5,
    packaging: Packaging::Kustomize,
    delivery: Delivery::PLAIN,
    overrides: Overrides::Absent,
    fan_out: &[],
    enabled: |c| c.deploykf_dependencies.cert_manager.cluster_issuer.enabled,
    namespace: |c| Some(c.deploykf_dependencies.cert_manager.namespace.clone()),
    // cert-manager runs there: a prerequisite, not rendered here.
    assumed_namespaces: |c| vec![c.deploykf_dependencies.cert_manager.namespace.clone()],
    extra_manifests: crate::component::no_extra_manifests,
    values_overrides: no_overrides,
    rules: crate::rules::cert_manager::check,
    derive,
};

#[derive(Debug, Clone, Serialize)]
pub struct CertManagerModel {
    /// Namespace cert-manager runs in (its cluster resource namespace).
    pub namespace: String,
    /// meshgen renders the self-signed issuer chain.
    pub issuer_managed: bool,
    /// The ClusterIssuer that signs the gateway certificate.
    pub issuer_name: String,
    pub ca_issuer_name: String,
    pub ca_secret_name: String,
}

fn derive(input: &Input) -> Part {
    let cm = &input.config.deploykf_dependencies.cert_manager;
    Part::of(&CertManagerModel {
        namespace: cm.namespace.clone(),
        issuer_managed: cm.cluster_issuer.enabled,
        issuer_name: cm.cluster_issuer.issuer_name.clone(),
        ca_issuer_name: cm.cluster_issuer.self_signed.ca_issuer_name.clone(),
        ca_secret_name: cm.cluster_issuer.self_signed.ca_secret_name.clone(),
    })
}

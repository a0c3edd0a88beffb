//! cert-manager, as two components (deployKF renders them as one chart,
//! ordered by sync waves inside one Argo CD Application; meshgen's
//! delivery orders whole directories):
//!
//! - [`COMPONENT`], `cert-manager`: the install, a wrapper Helm chart
//!   around Jetstack's chart with the CRDs, its values built as a JSON
//!   value from the section's images, controller settings and
//!   `valuesOverrides` (merged last); on when `cert_manager.enabled`.
//! - [`ISSUER`], `cert-manager-issuer`: the objects that need
//!   cert-manager's CRDs and webhook, so they sync after the chart: the
//!   self-signed issuer chain (deployKF's: a self-signed Issuer, the root
//!   CA Certificate, the ClusterIssuer `issuerName` signing with it) and
//!   the section's `extraManifests`. Like deployKF, nothing of it is
//!   rendered when meshgen does not install cert-manager.
//!
//! The gateway's Certificate names `issuerName` either way.

use crate::component::{
    no_extra_manifests, ChartDependency, Delivery, Descriptor, HelmChart, Input, Overrides,
    Packaging, Part,
};
use crate::config::{CertManager, ChartImage, Config};
use crate::model::istio::deep_merge;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Alias of the upstream chart in the wrapper chart (deployKF's), so a
/// deployKF user's `valuesOverrides` apply unchanged.
pub const CHART_ALIAS: &str = "cert-manager";

pub static COMPONENT: Descriptor = Descriptor {
    id: "cert-manager",
    summary: "cert-manager, installed from Jetstack's pinned chart with its CRDs",
    key: "cert_manager",
    section: "deploykf_dependencies.cert_manager",
    templates: "manifests/deploykf-dependencies/cert-manager",
    wave: -8,
    packaging: Packaging::HelmChart,
    delivery: Delivery::WEBHOOK_CHART,
    overrides: Overrides::Chart,
    fan_out: &[],
    enabled: |c| c.deploykf_dependencies.cert_manager.common.enabled,
    namespace: |c| {
        Some(
            c.deploykf_dependencies
                .cert_manager
                .common
                .namespace
                .clone(),
        )
    },
    extra_manifests: no_extra_manifests,
    values_overrides: |c| Some(&c.deploykf_dependencies.cert_manager.common.values_overrides),
    patches: crate::component::no_patches,
    rules: crate::rules::cert_manager::check,
    derive,
    more: crate::component::single,
    shards: crate::component::no_shards,
    // Its namespace: created with the release; when cert-manager is yours,
    // it runs there.
    contribute: |c, _| crate::component::Contributions {
        namespaces: vec![c
            .deploykf_dependencies
            .cert_manager
            .common
            .namespace
            .clone()],
        ..Default::default()
    },
};

pub static ISSUER: Descriptor = Descriptor {
    id: "cert-manager-issuer",
    summary: "the certificate issuers (the self-signed chain) and cert-manager's extraManifests, applied once cert-manager's CRDs exist",
    key: "cert_manager_issuer",
    section: "deploykf_dependencies.cert_manager",
    templates: "manifests/deploykf-dependencies/cert-manager-issuer",
    // After the chart (its CRDs and webhook), before the gateway's
    // Certificate.
    wave: -5,
    packaging: Packaging::Kustomize,
    delivery: Delivery::PLAIN,
    overrides: Overrides::Absent,
    fan_out: &[],
    enabled: |c| {
        let cm = &c.deploykf_dependencies.cert_manager;
        issuer_rendered(c) || (cm.common.enabled && !cm.common.extra_manifests.is_empty())
    },
    namespace: |c| Some(c.deploykf_dependencies.cert_manager.common.namespace.clone()),
    extra_manifests: |c| &c.deploykf_dependencies.cert_manager.common.extra_manifests,
    values_overrides: crate::component::no_overrides,
    patches: crate::component::no_patches,
    rules: crate::rules::none,
    derive: derive_issuer,
    more: crate::component::single,
    shards: crate::component::no_shards,
    contribute: crate::component::contributes_nothing,
};

/// meshgen renders the self-signed issuer chain
/// (`config::CertManager::issuer_rendered`).
fn issuer_rendered(c: &Config) -> bool {
    c.deploykf_dependencies.cert_manager.issuer_rendered()
}

#[derive(Debug, Clone, Serialize)]
pub struct CertManagerModel {
    /// meshgen installs cert-manager (`cert_manager.enabled`).
    pub managed: bool,
    /// Namespace cert-manager runs in (its cluster resource namespace).
    pub namespace: String,
    /// meshgen renders the self-signed issuer chain.
    pub issuer_managed: bool,
    /// The ClusterIssuer that signs the gateway certificate.
    pub issuer_name: String,
    pub ca_secret_name: String,
    /// The wrapper chart (always computed; rendered when `managed`).
    pub chart: CertManagerChart,
}

/// The wrapper chart: its version, and its dependencies and values
/// (`HelmChart`, whose keys templates read as `chart.dependencies`,
/// `chart.values`).
#[derive(Debug, Clone, Serialize)]
pub struct CertManagerChart {
    pub version: String,
    #[serde(flatten)]
    pub helm: HelmChart,
}

/// What the issuer component's templates read.
#[derive(Debug, Clone, Serialize)]
pub struct IssuerModel {
    pub namespace: String,
    /// The self-signed chain is rendered (else only `extraManifests`).
    pub self_signed: bool,
    pub issuer_name: String,
    pub ca_issuer_name: String,
    pub ca_secret_name: String,
    /// `extraManifests`, parsed and checked.
    pub extra_manifests: Vec<Value>,
}

fn derive(input: &Input) -> Part {
    let cm = &input.config.deploykf_dependencies.cert_manager;
    let chart = chart(cm);
    let model = CertManagerModel {
        managed: cm.common.enabled,
        namespace: cm.common.namespace.clone(),
        issuer_managed: issuer_rendered(input.config),
        issuer_name: cm.cluster_issuer.issuer_name.clone(),
        ca_secret_name: cm.cluster_issuer.self_signed.ca_secret_name.clone(),
        chart,
    };
    let mut part = Part::of(&model);
    part.chart = Some(model.chart.helm);
    part
}

fn derive_issuer(input: &Input) -> Part {
    let cm = &input.config.deploykf_dependencies.cert_manager;
    let s = &cm.cluster_issuer.self_signed;
    Part::of(&IssuerModel {
        namespace: cm.common.namespace.clone(),
        self_signed: issuer_rendered(input.config),
        issuer_name: cm.cluster_issuer.issuer_name.clone(),
        ca_issuer_name: s.ca_issuer_name.clone(),
        ca_secret_name: s.ca_secret_name.clone(),
        extra_manifests: input.extra_manifests.to_vec(),
    })
}

/// An image as the chart reads it: `tag` only when pinned (else the
/// chart's appVersion), `pullPolicy` only when set.
fn image(i: &ChartImage) -> Value {
    let mut v = Map::new();
    v.insert("repository".into(), json!(i.repository));
    if let Some(tag) = i.tag.as_deref().filter(|t| !t.is_empty()) {
        v.insert("tag".into(), json!(tag));
    }
    if let Some(p) = &i.pull_policy {
        v.insert("pullPolicy".into(), json!(p));
    }
    Value::Object(v)
}

/// The wrapper chart: deployKF's values for the upstream chart (its
/// `installCRDs` is `crds.enabled` since cert-manager v1.15), then the
/// user's `valuesOverrides` over them.
pub fn chart(cm: &CertManager) -> CertManagerChart {
    let img = &cm.images;
    let ctl = &cm.controller;
    let upstream = json!({
        // Object names do not depend on the release name.
        "fullnameOverride": "cert-manager",
        // The CRDs are templates of the chart, kept on uninstall.
        "crds": { "enabled": true, "keep": true },
        "image": image(&img.cert_manager_controller),
        "podLabels": ctl.pod_labels,
        "securityContext": ctl.security_context,
        "serviceAccount": {
            "create": ctl.service_account.create,
            "name": ctl.service_account.name,
            "annotations": ctl.service_account.annotations,
        },
        "extraArgs": ctl.extra_args,
        "prometheus": { "enabled": false },
        "webhook": { "image": image(&img.cert_manager_webhook) },
        "cainjector": { "enabled": true, "image": image(&img.cert_manager_cainjector) },
        "acmesolver": { "image": image(&img.cert_manager_acmesolver) },
        // A Helm post-install hook: the release (and so the issuer
        // component after it) waits until the webhook accepts requests.
        "startupapicheck": { "enabled": true, "image": image(&img.cert_manager_ctl) },
    });
    let mut values = json!({ CHART_ALIAS: upstream });
    deep_merge(
        &mut values,
        &Value::Object(cm.common.values_overrides.clone()),
    );
    let c = &cm.charts.cert_manager;
    CertManagerChart {
        version: c.version.clone(),
        helm: HelmChart {
            repository_url: c.repository.clone(),
            dependencies: vec![ChartDependency {
                name: c.name.clone(),
                alias: CHART_ALIAS,
                release: "cert-manager",
                version: c.version.clone(),
                repository: c.repository.clone(),
            }],
            values,
        },
    }
}

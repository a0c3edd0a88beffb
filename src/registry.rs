//! The registry: which components meshgen renders, in which order, and
//! the run's instances of them. It lives apart from `component` (the
//! types) so that the types import no model module; the model modules
//! import the types, and this module imports both.
//!
//! Where a new component goes: its `Descriptor` in its own model module
//! (`src/model/<component>.rs`), one line in [`ALL`] here.

use crate::component::{Declared, Descriptor, Instance, Packaging};
use crate::config::Config;

/// Every component, in the order their templates are listed; GitOps
/// order comes from [`Descriptor::wave`]. Adding a component is one line
/// here plus its own model module, templates and tests.
pub static ALL: &[&Descriptor] = &[
    &crate::model::gateway_api::COMPONENT,
    &crate::model::istio::COMPONENT,
    &crate::model::istio_extra::COMPONENT,
    &crate::model::telemetry::COMPONENT,
    &crate::model::cert_manager::COMPONENT,
    &crate::model::cert_manager::ISSUER,
    &crate::model::auth::COMPONENT,
    &crate::model::gateway::COMPONENT,
    &crate::model::egress_gateway::COMPONENT,
    &crate::model::profiles::COMPONENT,
];

/// Templates whose documents are fixed by their own text, each with the
/// function naming the documents it renders for one fan-out item: the
/// check stage takes those files' facts (apiVersion, kind, name,
/// namespace; they reference nothing) from here instead of parsing them
/// back. See [`Declared`].
pub static DECLARED: &[&Declared] = &[
    &crate::model::profiles::DECLARED,
    &crate::model::profiles::DECLARED_IN_SHARD,
];

/// Every registered component, resolved against `config`.
pub fn instances(config: &Config) -> Vec<Instance> {
    let mut out = Vec::new();
    for d in ALL {
        let namespace = (d.namespace)(config);
        let own = Instance {
            id: d.id.to_string(),
            index: None,
            summary: d.summary,
            dir: d.templates.to_string(),
            enabled: (d.enabled)(config),
            cluster_scoped: namespace.as_deref() == Some(""),
            namespace: namespace.unwrap_or_default(),
            wave: d.wave,
            helm_chart: d.packaging == Packaging::HelmChart,
            server_side_apply: d.delivery.server_side_apply,
            descriptor: d,
        };
        let more: Vec<Instance> = (d.more)(config)
            .into_iter()
            .enumerate()
            .map(|(i, name)| Instance {
                id: format!("{}-{name}", d.id),
                index: Some(i),
                dir: format!("{}-{name}", d.templates),
                ..own.clone()
            })
            .collect();
        out.push(own);
        out.extend(more);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The types name no component and no later stage: the registry,
    /// not `component`, imports the model modules (no import cycle).
    #[test]
    fn the_component_types_import_no_model_module() {
        let types = include_str!("component.rs");
        for stage in ["crate::model", "crate::registry", "crate::render"] {
            assert!(!types.contains(stage), "src/component.rs names {stage}");
        }
    }

    #[test]
    fn every_declared_template_exists() {
        for d in DECLARED {
            assert!(
                crate::render::templates()
                    .iter()
                    .any(|(name, _)| *name == d.template),
                "templates/{} is declared but does not exist",
                d.template
            );
        }
    }

    #[test]
    fn ids_keys_and_folders_are_unique_and_folders_do_not_nest() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.id, b.id);
                assert_ne!(a.key, b.key);
                assert!(
                    !a.templates.starts_with(&format!("{}/", b.templates))
                        && !b.templates.starts_with(&format!("{}/", a.templates)),
                    "{} and {} nest",
                    a.templates,
                    b.templates
                );
            }
        }
    }
}

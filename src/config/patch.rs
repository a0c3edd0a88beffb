//! `patches`: kustomize patches of a component's own objects, the escape
//! hatch for what meshgen has no key for (a container's resources, a
//! toleration, an annotation). Each is written into the component's
//! `kustomization.yaml` as kustomize's `patches` entry (kustomize
//! `api/types/patch.go`: `patch` and `target`), so kustomize, Argo CD and
//! Flux apply it; meshgen checks that its target is an object the
//! component renders (kustomize applies a patch that matches nothing
//! silently).

use super::text::*;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// One kustomize patch of a component's objects.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    /// Which of the component's objects it applies to.
    pub target: PatchTarget,
    /// The patch: a strategic-merge patch (a map of the fields to change,
    /// e.g. `spec: {template: {spec: {nodeSelector: {pool: system}}}}`;
    /// its `kind` and `metadata.name` are the target's), or a JSON 6902
    /// patch (a list of operations, e.g. `[{op: add, path:
    /// /spec/template/spec/priorityClassName, value: high}]`); written as
    /// YAML or as a YAML string.
    #[schemars(extend("type" = ["object", "array", "string"]))]
    pub patch: Value,
}

/// An object of the component, by kind and name (kustomize's `target`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTarget {
    /// Its kind, e.g. Deployment.
    #[schemars(pattern(KIND), length(max = 63), extend("x-meshgen-expected" = KIND_IS))]
    pub kind: String,
    /// Its name, e.g. dex.
    #[schemars(pattern(DNS_NAME), length(max = 253), extend("x-meshgen-expected" = DNS_NAME_IS))]
    pub name: String,
}

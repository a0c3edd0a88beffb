//! The keys every component section of deployKF shares (issue 33.1):
//! `enabled`, `namespace`, `valuesOverrides` and `extraManifests`, one
//! type ([`Common`]) that the sections flatten in
//! (`#[serde(flatten)] common: Common`), each describing the keys in its
//! own words ([`SectionDocs`], written into the values schema by
//! [`describe`]).
//!
//! Unknown keys: serde refuses a key that neither the section nor the
//! flattened `Common` takes (`deny_unknown_fields` beside `flatten`:
//! serde_derive 1.0.229 `de/struct_.rs:347`), so the sections keep it;
//! and the values schema refuses the key first,
//! located and with a suggestion (`additionalProperties: false`, checked
//! before the typed config is read: `lib.rs` `validate_timed`).
//!
//! `patches` is not here: only the kustomize components (auth, the
//! gateway) have it; a Helm-chart section (Istio, cert-manager) has
//! `valuesOverrides` instead.

use super::text::*;
use schemars::{JsonSchema, Schema};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The shared keys; what each means in a section is its [`SectionDocs`].
/// (This comment is no section's `description` in the schema: a
/// flattened type's description would land in the section's node,
/// `no_description` drops it.)
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = no_description)]
pub struct Common {
    /// Whether meshgen renders the component (its [`SectionDocs::ENABLED`]).
    pub enabled: bool,
    /// The component's namespace.
    #[schemars(pattern(DNS_LABEL), length(max = 63), extend("x-meshgen-expected" = DNS_LABEL_IS))]
    pub namespace: String,
    /// deployKF's `valuesOverrides`: what it does is the component's
    /// (`component::Overrides`).
    /// (`null` in a values file means empty, as in deployKF.)
    #[serde(default)]
    pub values_overrides: Map<String, Value>,
    /// Additional Kubernetes manifests, each a YAML string or a map.
    #[schemars(extend("items" = {"type": ["string", "object"]}))]
    pub extra_manifests: Vec<Value>,
}

/// What the shared keys mean in one section: the `description`s the
/// values schema gives them there (a section's doc comments would be,
/// but a flattened field's are not read).
pub trait SectionDocs {
    const ENABLED: &'static str;
    const NAMESPACE: &'static str;
    /// Followed by "(`null` in a values file means empty, as in
    /// deployKF.)".
    const VALUES_OVERRIDES: &'static str;
    const EXTRA_MANIFESTS: &'static str;
}

/// Where `valuesOverrides: null` is explained, after each section's text.
const NULL_IS_EMPTY: &str = "(`null` in a values file means empty, as in deployKF.)";

/// `#[schemars(transform = describe::<Self>)]` of a section that flattens
/// [`Common`]: its shared keys' descriptions, each in place (the key
/// order of each property's schema stays schemars' own).
pub fn describe<T: SectionDocs>(schema: &mut Schema) {
    let overrides = format!("{} {NULL_IS_EMPTY}", T::VALUES_OVERRIDES);
    for (key, text) in [
        ("enabled", T::ENABLED),
        ("namespace", T::NAMESPACE),
        ("valuesOverrides", overrides.as_str()),
        ("extraManifests", T::EXTRA_MANIFESTS),
    ] {
        let described = schema
            .get_mut("properties")
            .and_then(|p| p.get_mut(key))
            .and_then(|p| p.get_mut("description"));
        match described {
            Some(d) => *d = Value::from(text),
            None => panic!("the section has no described `{key}`: does it flatten `Common`?"),
        }
    }
}

fn no_description(schema: &mut Schema) {
    schema.remove("description");
}

#[cfg(test)]
mod tests {
    use crate::config::{Istio, SectionDocs};

    fn default_istio() -> serde_json::Value {
        let values = crate::values::build(&Default::default(), &mut Default::default()).unwrap();
        values.to_json()["deploykf_dependencies"]["istio"].clone()
    }

    /// serde takes the shared keys into `common` and still refuses a key
    /// that neither the section nor `Common` has (the schema refuses it
    /// first; this is the typed config's own guard).
    #[test]
    fn a_section_takes_the_shared_keys_and_refuses_unknown_ones() {
        let json = default_istio();
        let istio: Istio = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(istio.common.namespace, json["namespace"]);
        assert_eq!(istio.common.enabled, json["enabled"]);
        let mut typo = json;
        typo["enabeld"] = true.into();
        let err = serde_json::from_value::<Istio>(typo)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `enabeld`"), "{err}");
    }

    /// Each section's own words reach the schema, `valuesOverrides` with
    /// the note on `null`.
    #[test]
    fn the_schema_describes_the_shared_keys_in_the_section_s_words() {
        let schema = serde_json::to_value(schemars::schema_for!(Istio)).unwrap();
        let described = |key: &str| schema["properties"][key]["description"].clone();
        assert_eq!(described("namespace"), Istio::NAMESPACE);
        assert_eq!(
            described("valuesOverrides"),
            format!("{} {}", Istio::VALUES_OVERRIDES, super::NULL_IS_EMPTY)
        );
        // `Common`'s own doc comment is no section's description (`Istio`
        // has none of its own).
        assert_eq!(schema.get("description"), None);
    }
}

//! The string shapes many keys share (a pattern, a length limit and the
//! `x-meshgen-expected` text the error printer shows instead of the
//! pattern), and the few schema transforms the types' attributes use.
//! Nothing here is read at run time except through the shipped schema.

use schemars::Schema;
use serde_json::Value;

/// The keyword `schema::explain` prints instead of a pattern.
pub const EXPECTED: &str = "x-meshgen-expected";

pub const DNS_LABEL: &str = r#"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"#;
pub const DNS_LABEL_IS: &str = r#"a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit"#;
pub const OPT_DNS_LABEL: &str = r#"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"#;
pub const OPT_DNS_LABEL_IS: &str = r#""" or a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit"#;
pub const DNS_NAME: &str = r#"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"#;
pub const DNS_NAME_IS: &str = r#"a DNS name: lowercase letters, digits, "-" and "." (no scheme, port, path, spaces or quotes)"#;
pub const KIND: &str = r#"^[A-Z][A-Za-z0-9]*$"#;
pub const KIND_IS: &str = "a Kubernetes kind such as Deployment";
pub const DNS_1035: &str = r#"^[a-z]([-a-z0-9]*[a-z0-9])?$"#;
pub const DNS_1035_IS: &str =
    r#"a DNS-1035 label: lowercase letters, digits and "-", starting with a letter"#;
pub const NAME_PREFIX: &str = r#"^([a-z0-9][-a-z0-9]*)?$"#;
pub const REL_PATH: &str = r#"^(\./)?([A-Za-z0-9._-]+/)*[A-Za-z0-9._-]*/?$"#;
pub const NO_SPACE_OR_QUOTE: &str = r#"^[^\s"'\\]*$"#;
pub const GIT_URL: &str =
    r#"^((https?|ssh|git)://[^\s"'\\]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s"'\\]+)?$"#;
pub const HTTPS_URL: &str = r#"^https://[^\s"'\\]+$"#;
pub const HTTP_URL: &str = r#"^https?://[^\s]+$"#;
pub const HTTP_URL_IS: &str = "an http(s) URL";
pub const OPT_HTTP_URL: &str = r#"^(https?://[^\s]+)?$"#;
pub const OPT_HTTP_URL_IS: &str = r#""" or an http(s) URL"#;
pub const FLUX_INTERVAL: &str = r#"^([0-9]+(ms|s|m|h))+$"#;
pub const GO_DURATION: &str = r#"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"#;
pub const GO_DURATION_IS: &str = "a Go duration such as 60m or 168h";
pub const CHART_VERSION: &str = r#"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$"#;
pub const CHART_VERSION_IS: &str = r#"a version X.Y.Z (quote it: "1.30.3")"#;
pub const V_CHART_VERSION: &str = r#"^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$"#;
pub const V_CHART_VERSION_IS: &str = "a version such as v1.21.1";
pub const CHART_REPO: &str = r#"^(https?|oci)://[^\s\"'\\]+$"#;
pub const CHART_REPO_IS: &str = "an http(s):// or oci:// URL without spaces or quotes";
pub const IMAGE_REPO: &str = r#"^[a-z0-9]+([._/:-][a-z0-9]+)*$"#;
pub const IMAGE_REPO_IS: &str =
    "an image repository such as docker.io/istio/pilot (lowercase, no tag)";
/// A tag, optionally pinned to a digest (`v1.2.3@sha256:<64 hex>`): the
/// image is then `repository:tag@sha256:…`, which the container runtime
/// pulls by the digest.
pub const IMAGE_TAG: &str = r#"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@sha256:[a-f0-9]{64})?$"#;
pub const IMAGE_TAG_IS: &str = r#"an image tag: letters, digits, "_", "." and "-", at most 128 characters, optionally followed by a digest "@sha256:<64 hex digits>""#;
pub const LABEL_KEY: &str = r#"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"#;
pub const LABEL_KEY_IS: &str = r#"a label or annotation key: an optional DNS prefix and "/", then letters, digits, "-", "_" and "." (e.g. app.kubernetes.io/name)"#;
pub const LABEL_VALUE: &str = r#"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"#;
pub const HEADER: &str = r#"^[a-z0-9][-a-z0-9]*$"#;
pub const HEADER_IS: &str = "a lowercase HTTP header name such as kubeflow-userid";
/// A group as an identity provider names it: anything printable but `*`
/// (an Istio match pattern) and control characters.
pub const IDP_GROUP: &str = r#"^[^*\x00-\x1f\x7f]+$"#;
pub const IDP_GROUP_IS: &str =
    r#"a group name as the identity provider sends it, without "*" or control characters"#;
/// A token claim name for `request.auth.claims[...]`.
pub const CLAIM_NAME: &str = r#"^[^\[\]*\s"'\\]+$"#;
pub const CLAIM_NAME_IS: &str =
    r#"a token claim name such as groups (no "*", "[", "]", spaces or quotes)"#;
pub const GROUP_PREFIX: &str = r#"^[^*\s"'\\]*$"#;
pub const GROUP_PREFIX_IS: &str = r#""" or a prefix such as oidc: (no "*", spaces or quotes)"#;
pub const EMAIL: &str = r#"^[^@\s"'\\<>(),;:]+@[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)+$"#;
pub const EMAIL_IS: &str = "an email address such as user@example.com";
pub const SECRET_NAME: &str = r#"^([a-z0-9]([-.a-z0-9]*[a-z0-9])?)?$"#;
pub const SECRET_NAME_IS: &str = r#""" or a Secret name (DNS-1123 subdomain)"#;
pub const SECRET_KEY: &str = r#"^[-._a-zA-Z0-9]+$"#;
pub const SECRET_KEY_IS: &str = r#"a Secret key: letters, digits, "-", "_" and ".""#;
pub const ENV_NAME: &str = r#"^[A-Z_][A-Z0-9_]*$"#;
pub const COOKIE_NAME: &str = r#"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"#;
pub const IP: &str = r#"^(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3})|(([0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|([0-9A-Fa-f]{1,4}:){1,7}:|([0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}|([0-9A-Fa-f]{1,4}:){1,5}(:[0-9A-Fa-f]{1,4}){1,2}|([0-9A-Fa-f]{1,4}:){1,4}(:[0-9A-Fa-f]{1,4}){1,3}|([0-9A-Fa-f]{1,4}:){1,3}(:[0-9A-Fa-f]{1,4}){1,4}|([0-9A-Fa-f]{1,4}:){1,2}(:[0-9A-Fa-f]{1,4}){1,5}|[0-9A-Fa-f]{1,4}:(:[0-9A-Fa-f]{1,4}){1,6}|:((:[0-9A-Fa-f]{1,4}){1,7}|:)|::([Ff]{4}(:0{1,4})?:)?(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}|([0-9A-Fa-f]{1,4}:){1,4}:(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}))?$"#;
pub const CIDR: &str = r#"^(((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3})/(3[0-2]|[12]?[0-9])|(([0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|([0-9A-Fa-f]{1,4}:){1,7}:|([0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}|([0-9A-Fa-f]{1,4}:){1,5}(:[0-9A-Fa-f]{1,4}){1,2}|([0-9A-Fa-f]{1,4}:){1,4}(:[0-9A-Fa-f]{1,4}){1,3}|([0-9A-Fa-f]{1,4}:){1,3}(:[0-9A-Fa-f]{1,4}){1,4}|([0-9A-Fa-f]{1,4}:){1,2}(:[0-9A-Fa-f]{1,4}){1,5}|[0-9A-Fa-f]{1,4}:(:[0-9A-Fa-f]{1,4}){1,6}|:((:[0-9A-Fa-f]{1,4}){1,7}|:)|::([Ff]{4}(:0{1,4})?:)?(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}|([0-9A-Fa-f]{1,4}:){1,4}:(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3})/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))$"#;

/// A choice given by its `enum` alone: drops the `"type": "string"` that
/// schemars adds, so a wrong value gives one error ("must be one of")
/// rather than two.
pub fn untyped(schema: &mut Schema) {
    schema.remove("type");
}

/// Requires every property (a type whose keys are optional in one place
/// and all required in another).
pub fn require_all(schema: &mut Schema) {
    let keys: Vec<Value> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().map(|k| Value::from(k.as_str())).collect())
        .unwrap_or_default();
    schema.insert("required".into(), Value::Array(keys));
}

/// A secret without `type` (only static passwords have one).
pub fn secret_without_type(schema: &mut Schema) {
    remove_properties(schema, &["type"]);
}

/// The values of a connector's `env`: a secret with neither `type` nor
/// `generateSecret` (an env variable's Secret must exist).
pub fn env_secrets(schema: &mut Schema) {
    if let Some(Ok(values)) = schema
        .get_mut("additionalProperties")
        .map(<&mut Schema>::try_from)
    {
        remove_properties(values, &["type", "generateSecret"]);
        values.insert(
            "description".into(),
            "Where the variable's value is read from.".into(),
        );
    }
}

/// Moves `x-meshgen-expected` from a list onto its items, where
/// `inner(...)` put the pattern (schemars' `inner` takes validation
/// keywords only).
pub fn expected_onto_items(schema: &mut Schema) {
    if let Some(expected) = schema.remove(EXPECTED) {
        if let Some(Ok(items)) = schema.get_mut("items").map(<&mut Schema>::try_from) {
            items.insert(EXPECTED.into(), expected);
        }
    }
}

/// Describes the items of a list.
pub fn items_described(description: &'static str) -> impl FnMut(&mut Schema) {
    move |schema: &mut Schema| {
        if let Some(Ok(items)) = schema.get_mut("items").map(<&mut Schema>::try_from) {
            items.insert("description".into(), description.into());
        }
    }
}

fn remove_properties(schema: &mut Schema, keys: &[&str]) {
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for k in keys {
            props.shift_remove(*k);
        }
    }
}

/// The items of `additionalGateways`: every key below `gateway`,
/// `gatewayService` and `gatewayDeployment` optional (left out, it is the
/// primary gateway's: `rules::gateway::inherit`), except `gateway.name`
/// and `gateway.hostname`; `auth`, `gateway` and `apps` required.
pub fn inherited_items(schema: &mut Schema) {
    fn optional(node: &mut Value) {
        if let Some(o) = node.as_object_mut() {
            o.remove("required");
            for (_, v) in o.iter_mut() {
                optional(v);
            }
        } else if let Some(a) = node.as_array_mut() {
            a.iter_mut().for_each(optional);
        }
    }
    let Some(item) = schema.get_mut("items").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(props) = item.get_mut("properties").and_then(Value::as_object_mut) {
        for key in ["gateway", "gatewayService", "gatewayDeployment"] {
            if let Some(node) = props.get_mut(key) {
                optional(node);
            }
        }
        if let Some(g) = props.get_mut("gateway").and_then(Value::as_object_mut) {
            g.insert("required".into(), serde_json::json!(["name", "hostname"]));
        }
    }
    item.insert(
        "required".into(),
        serde_json::json!(["auth", "gateway", "apps"]),
    );
}

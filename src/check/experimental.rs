//! Gateway API fields the standard channel lacks. The schemas the tests
//! validate against (`../shared/schemas`) are the v1.5.1 *experimental*
//! channel, so they accept these; a cluster with the standard CRDs (what
//! Istio 1.28 and 1.29 pin at v1.4.1, 1.30 at v1.5.1) refuses
//! them, or drops them. The table is the difference of the `v1` schemas in
//! kubernetes-sigs/gateway-api `config/crd/{standard,experimental}/`
//! `gateway.networking.k8s.io_{httproutes,gateways}.yaml`: v1.5.1
//! experimental minus v1.4.1 standard.
//!
//! Only the fields and values are named here; `refs::DocFacts::extract`
//! turns each one found in a `gateway.networking.k8s.io` document into a
//! reference the tree check reports, at the values item when the document
//! is one of your `extraManifests`.

use serde_json::Value;

/// In which channel a field exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Only the experimental channel (every release up to v1.5.1).
    Experimental,
    /// Standard from v1.5.1 (the bundle of Istio 1.30); experimental in
    /// v1.4.1 (the bundle of Istio 1.28 and 1.29).
    StandardFromV1_5,
}

/// A field (or a value) of a document outside the v1.4.1 standard channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub path: String,
    pub channel: Channel,
}

impl Field {
    pub fn message(&self) -> String {
        match self.channel {
            Channel::Experimental => format!(
                "`{}` exists only in the Gateway API's experimental channel; clusters with the standard channel CRDs refuse it",
                self.path
            ),
            Channel::StandardFromV1_5 => format!(
                "`{}` is in the Gateway API's standard channel only from v1.5 (Istio 1.30's bundle); the v1.4.1 standard CRDs of Istio 1.28 and 1.29 refuse it, and meshgen renders what every bundle it installs accepts",
                self.path
            ),
        }
    }
}

/// The key paths [`fields`] reads (`refs::FACT_PATHS` adds them).
pub const PATHS: &[&[&str]] = &[
    &["spec", "rules", "*", "retry"],
    &["spec", "rules", "*", "sessionPersistence"],
    &["spec", "rules", "*", "filters", "*", "type"],
    &[
        "spec",
        "rules",
        "*",
        "filters",
        "*",
        "requestRedirect",
        "statusCode",
    ],
    &[
        "spec",
        "rules",
        "*",
        "backendRefs",
        "*",
        "filters",
        "*",
        "type",
    ],
    &[
        "spec",
        "rules",
        "*",
        "backendRefs",
        "*",
        "filters",
        "*",
        "requestRedirect",
        "statusCode",
    ],
    &["spec", "useDefaultGateways"],
    &["spec", "allowedListeners"],
    &["spec", "defaultScope"],
    &["spec", "tls"],
];

/// The fields of an HTTPRoute or Gateway (`gateway.networking.k8s.io`)
/// outside the v1.4.1 standard channel, in document order.
pub fn fields(kind: &str, d: &Value) -> Vec<Field> {
    use Channel::*;
    let mut out = Vec::new();
    let spec = &d["spec"];
    let mut found = |path: String, channel| out.push(Field { path, channel });
    match kind {
        "HTTPRoute" => {
            if !spec["useDefaultGateways"].is_null() {
                found("spec.useDefaultGateways".into(), Experimental);
            }
            let rules = spec["rules"].as_array().into_iter().flatten();
            for (i, rule) in rules.enumerate() {
                let at = format!("spec.rules[{i}]");
                // GEP-1731 retries (kubernetes-sigs/gateway-api v1.5.1
                // `apis/v1/httproute_types.go:313-314`) and GEP-1619 session
                // persistence (`:322-323`), both `<gateway:experimental>`.
                for (key, name) in [
                    ("retry", "retry"),
                    ("sessionPersistence", "sessionPersistence"),
                ] {
                    if !rule[key].is_null() {
                        found(format!("{at}.{name}"), Experimental);
                    }
                }
                let mut filters = |at: String, list: &Value| {
                    for (j, f) in list.as_array().into_iter().flatten().enumerate() {
                        let at = format!("{at}.filters[{j}]");
                        match f["type"].as_str() {
                            Some("ExternalAuth") => {
                                found(format!("{at}.type: ExternalAuth"), Experimental)
                            }
                            Some("CORS") => found(format!("{at}.type: CORS"), StandardFromV1_5),
                            _ => {}
                        }
                        // v1.4.1 standard: `Enum=301;302` (`httproute_types.go:1273`);
                        // v1.5.1: `Enum=301;302;303;307;308` (`:1283`).
                        if let Some(code) = f["requestRedirect"]["statusCode"].as_i64() {
                            if [303, 307, 308].contains(&code) {
                                found(
                                    format!("{at}.requestRedirect.statusCode: {code}"),
                                    StandardFromV1_5,
                                );
                            }
                        }
                    }
                };
                filters(at.clone(), &rule["filters"]);
                let backends = rule["backendRefs"].as_array().into_iter().flatten();
                for (k, b) in backends.enumerate() {
                    filters(format!("{at}.backendRefs[{k}]"), &b["filters"]);
                }
            }
        }
        "Gateway" => {
            for (key, channel) in [
                ("allowedListeners", StandardFromV1_5),
                ("tls", StandardFromV1_5),
                ("defaultScope", Experimental),
            ] {
                if !spec[key].is_null() {
                    found(format!("spec.{key}"), channel);
                }
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_what_the_standard_channel_lacks() {
        let route = json!({"spec": {"rules": [
            {"retry": {"attempts": 2}, "filters": [{"type": "RequestHeaderModifier"}]},
            {"backendRefs": [{"name": "s", "filters": [{"type": "CORS"}]}],
             "filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 307}}]},
        ]}});
        let got: Vec<String> = fields("HTTPRoute", &route)
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(
            got,
            [
                "spec.rules[0].retry",
                "spec.rules[1].filters[0].requestRedirect.statusCode: 307",
                "spec.rules[1].backendRefs[0].filters[0].type: CORS",
            ]
        );
        let plain = json!({"spec": {"rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 302}}]}]}});
        assert!(fields("HTTPRoute", &plain).is_empty());
        let gw = json!({"spec": {"allowedListeners": {}, "listeners": []}});
        assert_eq!(fields("Gateway", &gw)[0].channel, Channel::StandardFromV1_5);
    }

    #[test]
    fn the_check_stage_builds_every_path_read_here() {
        for p in PATHS {
            assert!(crate::check::refs::FACT_PATHS.contains(p), "{p:?}");
        }
    }
}

//! The mesh config entries of `deploykf_dependencies.istio.telemetry`
//! (issue 32): the Envoy file access log provider and the OpenTelemetry
//! tracing provider, which the `Telemetry` objects of
//! `model::telemetry` (and the profiles' waypoints) select by name. Field
//! names are meshconfig's (istio/api 2e43f07b30b6, the commit istio/istio
//! 1.30.3 `go.mod:99` pins: `mesh/v1alpha1/config.proto:1010-1050`
//! `EnvoyFileAccessLogProvider {path, logFormat {text | labels}}`,
//! `:1195-1205` `OpenTelemetryTracingProvider {service, port}`).
//!
//! This module computes; whether the endpoint is a `host:port` is judged
//! by `rules::telemetry` (an entry is built from it only when it is).

use crate::config::{AccessLogFormat, Config};
use serde_json::{json, Map, Value};

/// The extension provider writing Envoy access logs to stdout.
pub const ACCESS_LOG_PROVIDER: &str = "meshgen-access-log";
/// The extension provider sending traces to the OTLP collector.
pub const TRACING_PROVIDER: &str = "meshgen-otel";

/// The fields of a JSON access log line: what an operator needs to follow
/// one request (response code, flags and details, upstream cluster and
/// host, authority, path, duration, request id), the names Istio's own
/// default JSON format uses (istio/istio 1.30.3
/// `pilot/pkg/model/telemetry_logging.go:78-103`), without the client's
/// address, `x-forwarded-for` and user agent (personal data). The path
/// is logged without its query (`REQ_WITHOUT_QUERY`, for which istiod adds
/// Envoy's formatter itself, `telemetry_logging.go:60,117-120`): a query
/// carries the login flow's authorization `code` and `state`.
const JSON_FIELDS: [(&str, &str); 15] = [
    ("start_time", "%START_TIME%"),
    ("method", "%REQ(:METHOD)%"),
    ("authority", "%REQ(:AUTHORITY)%"),
    ("path", "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
    ("protocol", "%PROTOCOL%"),
    ("response_code", "%RESPONSE_CODE%"),
    ("response_flags", "%RESPONSE_FLAGS%"),
    ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
    ("bytes_received", "%BYTES_RECEIVED%"),
    ("bytes_sent", "%BYTES_SENT%"),
    ("duration", "%DURATION%"),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
    ("upstream_host", "%UPSTREAM_HOST%"),
    ("upstream_cluster", "%UPSTREAM_CLUSTER_RAW%"),
    ("route_name", "%ROUTE_NAME%"),
];

/// The key of the user identity in a JSON line.
pub const USER_FIELD: &str = "user";

/// The `%REQ(...)%` operator of the verified user identity header.
pub fn user_operator(config: &Config) -> String {
    format!(
        "%REQ({})%",
        config.deploykf_core.deploykf_auth.identity.user_header
    )
}

/// The access log format: JSON `labels`, or a text line with the same
/// fields in the order of Istio's default text format
/// (`telemetry_logging.go:44-51`), with the same omissions.
pub fn log_format(config: &Config) -> Value {
    let logs = &config.deploykf_dependencies.istio.telemetry.access_logs;
    // Only a header the gateway verified (the login flow's) is an identity;
    // without it, a client could write any name there.
    let verified = config.deploykf_core.deploykf_auth.common.enabled;
    let user = (logs.include_user_identity && verified).then(|| user_operator(config));
    match logs.format {
        AccessLogFormat::Json => {
            let mut labels: Map<String, Value> = JSON_FIELDS
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            if let Some(user) = user {
                labels.insert(USER_FIELD.into(), json!(user));
            }
            json!({ "labels": labels })
        }
        AccessLogFormat::Text => {
            let mut text = String::from(
                "[%START_TIME%] \"%REQ(:METHOD)% %REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" \
                 %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %BYTES_RECEIVED% %BYTES_SENT% \
                 %DURATION% \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" \
                 %UPSTREAM_CLUSTER_RAW% %ROUTE_NAME%",
            );
            if let Some(user) = user {
                text.push_str(&format!(" \"{user}\""));
            }
            text.push('\n');
            json!({ "text": text })
        }
    }
}

/// `host:port` split, when the port is a number 1-65535 and the host a
/// DNS name (a service of the mesh's registry: the provider's `service`
/// is `[<Namespace>/]<Hostname>`, config.proto:1196-1202, never an
/// address or a URL).
pub fn split_endpoint(endpoint: &str) -> Option<(&str, u16)> {
    let (host, port) = endpoint.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    if !port_text_is_plain(endpoint) {
        return None;
    }
    let labels_ok = host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    // A name whose last label is all digits is an address (1.2.3.4).
    let address = host
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    (labels_ok && !address).then_some((host, port))
}

/// The port part is digits only (no sign, no spaces; `u16::from_str`
/// accepts a leading `+`).
fn port_text_is_plain(endpoint: &str) -> bool {
    endpoint
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The `extensionProviders` entries the telemetry keys turn on.
pub fn extension_providers(config: &Config) -> Vec<Value> {
    let t = &config.deploykf_dependencies.istio.telemetry;
    let mut out = Vec::new();
    if t.access_logs.enabled {
        out.push(json!({
            "name": ACCESS_LOG_PROVIDER,
            "envoyFileAccessLog": {
                "path": "/dev/stdout",
                "logFormat": log_format(config),
            },
        }));
    }
    if t.tracing.enabled {
        if let Some((host, port)) = split_endpoint(&t.tracing.otlp_endpoint) {
            out.push(json!({
                "name": TRACING_PROVIDER,
                "opentelemetry": { "service": host, "port": port },
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_host_colon_port() {
        assert_eq!(
            split_endpoint("otel-collector.observability.svc.cluster.local:4317"),
            Some(("otel-collector.observability.svc.cluster.local", 4317))
        );
        assert_eq!(split_endpoint("collector:4317"), Some(("collector", 4317)));
        for bad in [
            "",
            "collector",
            "collector:",
            ":4317",
            "collector:0",
            "collector:65536",
            "collector:+4317",
            "http://collector:4317",
            "collector:4317/v1/traces",
            "Collector:4317",
            "10.0.0.1:4317",
            "a..b:4317",
            "-a:4317",
            "collector :4317",
        ] {
            assert_eq!(split_endpoint(bad), None, "{bad:?}");
        }
    }
}

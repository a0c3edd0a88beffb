//! Rules for `deploykf_dependencies.istio.telemetry`: with tracing on, the
//! collector's `otlpEndpoint` must be a `host:port` meshgen can turn into
//! the OpenTelemetry provider's `service` and `port`
//! (`facts::telemetry::split_endpoint`); the user identity in access logs
//! needs the login flow that verifies it.

use super::{Ctx, Findings};

const TELEMETRY: &str = "deploykf_dependencies.istio.telemetry";

pub fn check(ctx: &Ctx, f: &mut Findings) {
    let t = &ctx.config.deploykf_dependencies.istio.telemetry;
    let endpoint = &t.tracing.otlp_endpoint;
    let endpoint_key = format!("{TELEMETRY}.tracing.otlpEndpoint");
    let enabled_key = format!("{TELEMETRY}.tracing.enabled");
    if t.tracing.enabled && crate::facts::telemetry::split_endpoint(endpoint).is_none() {
        const EXPECTED: &str = "the OpenTelemetry collector's OTLP/gRPC endpoint as `host:port` (a DNS name of a service in the mesh, no scheme or path, and a port 1-65535, e.g. \"otel-collector.observability.svc.cluster.local:4317\")";
        // Unset, the error is where tracing was turned on (never at the
        // empty default in default_values.yaml).
        f.errors
            .push(if endpoint.is_empty() && !ctx.set_by_user(&endpoint_key) {
                ctx.error(
                    &enabled_key,
                    format!("is true, so `{endpoint_key}` must be set to {EXPECTED}"),
                )
            } else {
                ctx.error(
                    &endpoint_key,
                    format!(
                        "must be {EXPECTED} while {} is true, got {endpoint:?}",
                        ctx.located(&enabled_key)
                    ),
                )
            });
    }
    let auth = &ctx.config.deploykf_core.deploykf_auth;
    if t.access_logs.enabled && t.access_logs.include_user_identity && !auth.enabled {
        f.warnings.push(ctx.warning(
            &format!("{TELEMETRY}.accessLogs.includeUserIdentity"),
            format!(
                "has no effect while `deploykf_core.deploykf_auth.enabled` is false: no login verifies the `{}` header, and meshgen does not log an unverified one",
                auth.identity.user_header
            ),
        ));
    }
}

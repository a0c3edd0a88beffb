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
    if t.tracing.enabled && crate::facts::telemetry::split_endpoint(endpoint).is_none() {
        let enabled = ctx.located(&format!("{TELEMETRY}.tracing.enabled"));
        f.errors.push(ctx.error(
            &format!("{TELEMETRY}.tracing.otlpEndpoint"),
            format!(
                "must be the OpenTelemetry collector's OTLP/gRPC endpoint as `host:port` (a DNS name of a service in the mesh, no scheme or path, and a port 1-65535, e.g. \"otel-collector.observability.svc.cluster.local:4317\") with {enabled} true, got {endpoint:?}"
            ),
        ));
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

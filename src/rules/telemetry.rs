//! Rules for `deploykf_dependencies.istio.telemetry`: with tracing on, the
//! collector's `otlpEndpoint` must be a `host:port` meshgen can turn into
//! the OpenTelemetry provider's `service` and `port`
//! (`facts::telemetry::split_endpoint`); the user identity in access logs
//! needs the login flow that verifies it; the `Telemetry` objects need an
//! Istio that serves `telemetry.istio.io/v1` (1.22 and later), which only
//! your own Istio can lack.

use super::{Ctx, Findings};
use crate::code::Code;
use crate::values::path::ValuePath;

const TELEMETRY: &str = "deploykf_dependencies.istio.telemetry";

pub fn check(ctx: &Ctx, f: &mut Findings) {
    let t = &ctx.config.deploykf_dependencies.istio.telemetry;
    let endpoint = &t.tracing.otlp_endpoint;
    let base = ValuePath::keys(TELEMETRY);
    let endpoint_key = base.key("tracing").key("otlpEndpoint");
    let enabled_key = base.key("tracing").key("enabled");
    if t.tracing.enabled && crate::facts::telemetry::split_endpoint(endpoint).is_none() {
        const EXPECTED: &str = "the OpenTelemetry collector's OTLP/gRPC endpoint as `host:port` (a DNS name of a service in the mesh, no scheme or path, and a port 1-65535, e.g. \"otel-collector.observability.svc.cluster.local:4317\")";
        // Unset, the error is where tracing was turned on (never at the
        // empty default in default_values.yaml).
        f.errors
            .push(if endpoint.is_empty() && !ctx.set_by_user(&endpoint_key) {
                ctx.error(
                    enabled_key,
                    format!("is true, so `{endpoint_key}` must be set to {EXPECTED}"),
                )
            } else {
                ctx.error(
                    endpoint_key,
                    format!(
                        "must be {EXPECTED} while {} is true, got {endpoint:?}",
                        ctx.located(&enabled_key)
                    ),
                )
            });
    }
    refuse_own_istio_without_telemetry_v1(ctx, f);
    let auth = &ctx.config.deploykf_core.deploykf_auth;
    if t.access_logs.enabled && t.access_logs.include_user_identity && !auth.common.enabled {
        f.warnings.push(ctx.warning(Code::NoEffect,
            base.key("accessLogs").key("includeUserIdentity"),
            format!(
                "has no effect while `deploykf_core.deploykf_auth.enabled` is false: no login verifies the `{}` header, and meshgen does not log an unverified one",
                auth.identity.user_header
            ),
        ));
    }
}

/// The first Istio minor serving `telemetry.istio.io/v1`: istio/istio
/// 1.22.0 `manifests/charts/base/crds/crd-all.gen.yaml:12407` (1.21.0
/// serves only `v1alpha1`, `:8166`).
pub const TELEMETRY_V1_SINCE: (u64, u64) = (1, 22);

/// With your own Istio, known by the gateway version it must match (see
/// `rules::istio`), older than [`TELEMETRY_V1_SINCE`]: the gateway's (and
/// waypoints') Telemetry objects would be refused, so the key that renders
/// them is an error.
fn refuse_own_istio_without_telemetry_v1(ctx: &Ctx, f: &mut Findings) {
    let config = ctx.config;
    let istio = &config.deploykf_dependencies.istio;
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    if istio.common.enabled || !gw.common.enabled {
        return;
    }
    let version = &gw.charts.istio_gateway.chart.version;
    let Some(minor) = crate::config::istio_minor(version) else {
        return;
    };
    if minor >= TELEMETRY_V1_SINCE {
        return;
    }
    let t = &istio.telemetry;
    for (on, key) in [
        (t.access_logs.enabled, "accessLogs"),
        (t.tracing.enabled, "tracing"),
    ] {
        if on {
            let (major, since) = TELEMETRY_V1_SINCE;
            f.errors.push(ctx.error(
                ValuePath::keys(TELEMETRY).key(key).key("enabled"),
                format!(
                    "needs Istio {major}.{since} or later (its Telemetry objects are `telemetry.istio.io/v1`), but your Istio runs {version} (`deploykf_core.deploykf_istio_gateway.charts.istioGateway.version`); upgrade Istio or set it to false"
                ),
            ));
        }
    }
}

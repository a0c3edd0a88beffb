//! `deploykf_dependencies.istio.telemetry`: meshgen's own keys for what the
//! edge shows of its traffic (issue 32): access logs, metrics, traces and
//! Grafana dashboards. deployKF has no such section.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Telemetry {
    /// Envoy access logs of the ingress gateway (and, with ambient, of the
    /// profiles' waypoints), to the proxies' standard output.
    pub access_logs: AccessLogs,
    /// How Prometheus finds Istio's metrics.
    pub metrics: Metrics,
    /// Traces of requests through the gateway (and waypoints), sent by
    /// OTLP/gRPC.
    pub tracing: Tracing,
    /// Grafana dashboards as ConfigMaps for Grafana's dashboard sidecar.
    pub dashboards: Dashboards,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLogs {
    /// Log every request through the gateway (and waypoints).
    pub enabled: bool,
    /// `json` (one object per request, named fields) or `text` (Envoy's
    /// default line format).
    pub format: AccessLogFormat,
    /// Also log the verified `kubeflow-userid` of each request (personal
    /// data: off unless you need it). Only with `format: json`.
    pub include_user_identity: bool,
}

/// The access log line format (`accessLogs.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metrics {
    /// Render Istio's PodMonitor and ServiceMonitor
    /// (monitoring.coreos.com/v1) for the Prometheus Operator; false relies
    /// on the `prometheus.io/*` scrape annotations Istio puts on its pods.
    pub prometheus_operator: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tracing {
    /// Send traces to `otlpEndpoint`.
    pub enabled: bool,
    /// The OpenTelemetry collector's OTLP/gRPC endpoint as `host:port`,
    /// e.g. `otel-collector.observability.svc.cluster.local:4317` (a
    /// service of the mesh's registry).
    #[schemars(length(max = 253))]
    pub otlp_endpoint: String,
    /// Percentage of requests traced, 0 to 100.
    #[schemars(range(min = 0, max = 100))]
    pub sampling_percent: f64,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dashboards {
    /// Render Istio's dashboards for the installed minor and meshgen's
    /// edge dashboard as ConfigMaps labelled `grafana_dashboard: "1"`.
    pub enabled: bool,
}

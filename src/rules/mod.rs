//! Stage 2b: cross-field rules the JSON Schema cannot express, run on the
//! typed [`Config`] after the schema passed. deployKF's own checks for
//! these sections (`check-values--incompatible-configs.tpl`) are here with
//! their tips, plus meshgen's.
//!
//! Each rule names the key at fault and where it was set. Rules judge the
//! config; they never change a value. Besides the verdicts they hand on
//! what they had to compute anyway: the [`Facts`] (derived once, here,
//! for the rules and every later stage) and each component's parsed
//! `extraManifests`.

pub mod auth;
pub mod profiles;

use crate::component::{Overrides, ALL};
use crate::config::Config;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::facts::Facts;
use crate::source::SourceMap;
use crate::values::path::ValuePath;
use crate::values::Values;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

const GW: &str = "deploykf_core.deploykf_istio_gateway";
const IN_CLUSTER: &str = "https://kubernetes.default.svc";
const ISTIO: &str = "deploykf_dependencies.istio";

/// Ports the Istio proxy itself listens on inside a gateway pod; a Gateway
/// server on one of them would never receive traffic.
const ISTIO_RESERVED_PORTS: &[(u16, &str)] = &[
    (15000, "Envoy admin"),
    (15001, "Envoy outbound"),
    (15004, "debug"),
    (15006, "Envoy inbound"),
    (15008, "HBONE tunnel"),
    (15020, "merged Prometheus telemetry"),
    (15021, "health checks"),
    (15053, "DNS proxy"),
    (15090, "Envoy Prometheus telemetry"),
];

/// What the rules hand on: the typed config, its facts, the parsed
/// `extraManifests` of each component (by component id), and warnings.
#[derive(Debug, Clone)]
pub struct Checked {
    pub config: Config,
    pub facts: Facts,
    pub extra_manifests: BTreeMap<&'static str, Vec<Value>>,
    pub warnings: Diagnostics,
}

/// Deserialize the typed config and run every rule.
pub fn check(values: &Values, json: &Value, sources: &SourceMap) -> Result<Checked, Diagnostics> {
    let config = Config::deserialize(json).map_err(|e| {
        Diagnostics::from(Diagnostic::error(format!(
            "internal: values passed the schema but do not fit meshgen's model: {e}"
        )))
    })?;
    let facts = Facts::derive(&config);
    let mut diags = Diagnostics::default();
    let mut fail = |path: String, message: String| {
        let path = ValuePath::keys(&path);
        diags.push(
            Diagnostic::error(message)
                .at(values.origin_of(&path))
                .at_path(path),
        );
    };
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let istio = &config.deploykf_dependencies.istio;
    let argo = &config.argocd;

    // deployKF: one cluster holds one platform, so a name prefix (for
    // several clusters in one Argo CD) needs a remote destination.
    if !argo.app_name_prefix.is_empty() {
        if !argo.destination.name.is_empty() {
            if argo.destination.name == "in-cluster" {
                fail(
                    "argocd.destination.name".into(),
                    "can not be 'in-cluster' if `argocd.appNamePrefix` is set, a single cluster can only have one instance of deployKF".into(),
                );
            }
        } else if argo.destination.server == IN_CLUSTER {
            fail(
                "argocd.destination.server".into(),
                format!("can not be '{IN_CLUSTER}' if `argocd.appNamePrefix` is set, a single cluster can only have one instance of deployKF (TIP: set `argocd.destination.name` or a remote server)"),
            );
        }
    }
    if (argo.sync_policy.prune || argo.sync_policy.self_heal) && !argo.sync_policy.automated {
        fail(
            "argocd.syncPolicy.automated".into(),
            "must be true when `argocd.syncPolicy.prune` or `selfHeal` is set (they apply to automated sync)".into(),
        );
    }

    if !gw.gateway.tls.enabled {
        fail(
            format!("{GW}.gateway.tls.enabled"),
            format!("must be true (TIP: to allow HTTP connections on the gateway, set `{GW}.gateway.tls.redirect` to false)"),
        );
    }
    if gw.gateway.tls.redirect && !gw.gateway.tls.clients_use_https {
        fail(
            format!("{GW}.gateway.tls.clientsUseHttps"),
            format!("must be true when `{GW}.gateway.tls.redirect` is true (redirecting to HTTPS makes clients use HTTPS)"),
        );
    }
    let ports = gw.gateway.ports;
    if ports.http == ports.https {
        fail(
            format!("{GW}.gateway.ports.https"),
            format!(
                "must differ from `{GW}.gateway.ports.http` (both are {})",
                ports.http
            ),
        );
    }
    for (name, port) in [("http", ports.http), ("https", ports.https)] {
        if let Some((_, what)) = ISTIO_RESERVED_PORTS.iter().find(|(p, _)| *p == port) {
            fail(
                format!("{GW}.gateway.ports.{name}"),
                format!("port {port} is reserved by the Istio proxy ({what}); choose another port"),
            );
        }
    }
    let (public_http, public_https) = crate::facts::public_ports(&config);
    if public_http == public_https && ports.http != ports.https {
        fail(
            format!("{GW}.gatewayService.ports.https"),
            format!("the public HTTP and HTTPS ports are both {public_http}; set `{GW}.gatewayService.ports` to two different ports"),
        );
    }
    let auto = &gw.gateway_deployment.autoscaling;
    if auto.min_replicas > auto.max_replicas {
        fail(
            format!("{GW}.gatewayDeployment.autoscaling.minReplicas"),
            format!(
                "must not exceed `{GW}.gatewayDeployment.autoscaling.maxReplicas` ({} > {})",
                auto.min_replicas, auto.max_replicas
            ),
        );
    }
    if istio.enabled {
        let base = &istio.charts.istio_base.version;
        let daemon = &istio.charts.istio_daemon.version;
        if base != daemon {
            fail(
                format!("{ISTIO}.charts.istioBase.version"),
                format!("must equal `{ISTIO}.charts.istioDaemon.version` when meshgen installs Istio ({base} vs {daemon})"),
            );
        }
        let gateway = &gw.charts.istio_gateway;
        if gw.enabled && gateway.enabled && &gateway.version != daemon {
            fail(
                format!("{GW}.charts.istioGateway.version"),
                format!(
                    "must equal `{ISTIO}.charts.istioDaemon.version` when meshgen installs Istio and the gateway ({} vs {daemon}); a gateway must run the same Istio version as istiod",
                    gateway.version
                ),
            );
        }
    }
    let longest = facts.gateway.names.longest();
    if longest.len() > MAX_NAME {
        let max = MAX_NAME - (longest.len() - gw.gateway.name.len());
        fail(
            format!("{GW}.gateway.name"),
            format!(
                "must be at most {max} characters (meshgen derives longer names from it), got {}",
                gw.gateway.name.len()
            ),
        );
    }
    let mut warnings = Diagnostics::default();
    for d in ALL {
        if let Overrides::Unused(why) = d.overrides {
            if (d.values_overrides)(&config).is_some_and(|o| !o.is_empty()) {
                warnings.push(unused_overrides(values, d.section, why));
            }
        }
    }
    profiles::check(&config, values, sources, &mut diags);
    auth::check(&config, values, sources, &mut diags);
    auth::check_apps(&config, &facts, values, sources, &mut diags);
    warn_required_overrides(values, &mut warnings);
    if config.gitops.engine == crate::config::GitopsEngine::Argocd
        && argo.source.repo.url.is_empty()
    {
        warnings.push(Diagnostic::notice(
            "no Argo CD objects rendered: set `argocd.source.repo.url`, `argocd.source.repo.revision` and `argocd.source.repo.path` to where you commit this tree (or set `gitops.engine` to flux or none)",
        ));
    }
    if !istio.enabled && gw.enabled && gw.charts.istio_gateway.enabled {
        let path = ValuePath::keys(&format!("{ISTIO}.enabled"));
        warnings.push(
            Diagnostic::warning(format!(
                "meshgen does not install Istio: your istiod must run Istio {}, the version of the gateway meshgen deploys (`{GW}.charts.istioGateway.version`); see REQUIRED-MESH-CONFIG.md in the output",
                gw.charts.istio_gateway.version
            ))
            .at(values.origin_of(&path))
            .at_path(path),
        );
    }
    let mut extra = BTreeMap::new();
    for d in ALL {
        let items = (d.extra_manifests)(&config);
        let docs = extra_manifests(values, &d.key_path("extraManifests"), items, &mut diags);
        extra.insert(d.id, docs);
    }
    diags.sort();
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Checked {
        config,
        facts,
        extra_manifests: extra,
        warnings,
    })
}

/// An error about the value at `path`, located where that value was set.
pub(crate) fn error_at(values: &Values, path: ValuePath, message: String) -> Diagnostic {
    Diagnostic::error(message)
        .at(values.origin_of(&path))
        .at_path(path)
}

/// `<section>.valuesOverrides` of a chart meshgen does not render through:
/// a warning at the key saying `why` it has no effect.
fn unused_overrides(values: &Values, section: &str, why: &str) -> Diagnostic {
    let path = ValuePath::keys(&format!("{section}.valuesOverrides"));
    Diagnostic::warning(format!("has no effect: {why}"))
        .at(values.origin_of(&path))
        .at_path(path)
}

/// `path` and where it was set, to name a second place in a message.
pub(crate) fn located(values: &Values, sources: &SourceMap, path: &ValuePath) -> String {
    match values.origin_of(path) {
        Some(o) => format!("`{path}` at {}", sources.display(o)),
        None => format!("`{path}`"),
    }
}

/// A user value that conflicts with a setting deployKF requires is
/// overridden; say so, naming the key and where it was set.
fn warn_required_overrides(values: &Values, warnings: &mut Diagnostics) {
    use crate::facts::{required_istio_settings, DAEMON_ALIAS};
    for (path, required) in required_istio_settings() {
        let mut places = Vec::new();
        if path[0] == "meshConfig" {
            places.push(ValuePath::keys(&format!("{ISTIO}.{}", path.join("."))));
        }
        let mut over = ValuePath::keys(&format!("{ISTIO}.valuesOverrides")).key(DAEMON_ALIAS);
        for p in &path {
            over = over.key(p);
        }
        places.push(over);
        for place in places {
            let Some(node) = values.get(&place) else {
                continue;
            };
            if node.to_json() != required {
                warnings.push(
                    Diagnostic::warning(format!(
                        "deployKF requires {}; meshgen keeps that value and ignores this one",
                        crate::yaml::emit::inline(&required)
                    ))
                    .at(Some(node.origin))
                    .at_path(place),
                );
            }
        }
    }
}

/// Kubernetes object names stop at 253 characters.
const MAX_NAME: usize = 253;

/// Parse `extraManifests`: each item is a YAML string (one or more
/// documents) or a map; every document must be a Kubernetes object.
fn extra_manifests(
    values: &Values,
    key: &str,
    items: &[Value],
    diags: &mut Diagnostics,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = ValuePath::keys(key).index(i);
        let origin = values.origin_of(&path);
        let mut fail = |message: String| {
            diags.push(Diagnostic::error(message).at_path(path.clone()).at(origin));
        };
        let docs: Vec<Value> = match item {
            Value::Object(_) => vec![item.clone()],
            Value::String(text) => {
                match crate::yaml::load_documents(text, crate::source::SourceId(0)) {
                    Ok(docs) => docs.into_iter().flatten().map(|n| n.to_json()).collect(),
                    Err(e) => {
                        fail(format!(
                            "is not valid YAML (line {} of the manifest: {})",
                            e.origin.pos.line, e.message
                        ));
                        continue;
                    }
                }
            }
            other => {
                fail(format!(
                    "expected a manifest (a map, or a YAML string), got {}",
                    crate::schema::describe(other)
                ));
                continue;
            }
        };
        if docs.is_empty() {
            fail("holds no document".into());
        }
        for (n, doc) in docs.into_iter().enumerate() {
            let has = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
            if !(has(&doc["apiVersion"]) && has(&doc["kind"]) && has(&doc["metadata"]["name"])) {
                fail(format!(
                    "document {n} is not a Kubernetes object: it needs apiVersion, kind and metadata.name"
                ));
                continue;
            }
            out.push(doc);
        }
    }
    out
}

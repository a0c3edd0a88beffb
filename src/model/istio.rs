//! The Istio install: the values of the Helm wrapper chart meshgen renders
//! for the upstream `base`, `istiod` (and `cni`; with ambient also
//! `ztunnel`) charts, built as a JSON value (never as text).
//!
//! Merge order, lowest first: meshgen's settings (image pins, revision,
//! CNI, the user's `meshConfig` over meshgen's mesh defaults), then the
//! user's `valuesOverrides`, then the settings deployKF requires, which
//! always win; overriding one of those gives a warning naming it.
//!
//! Subchart values live under deployKF's aliases (`istio-base`,
//! `istio-daemon`, `istio-cni`), so a deployKF user's `valuesOverrides`
//! apply unchanged. Keys are the ones the pinned 1.30 charts read: the
//! istiod image is the top-level `image` (a full reference), the proxy image
//! `global.proxy.image` (`pilot.image`, which deployKF sets, has no effect
//! in these charts).
//!
//! `dataplaneMode: ambient` selects the upstream `ambient` profile with one
//! `global.profile`: every chart's `templates/zzz_profile.yaml` reads
//! `coalesce .Values.profile .Values.global.profile`
//! (`../shared/reference/istio-1.30.3/charts/ztunnel/templates/zzz_profile.yaml:27`,
//! the same line in each chart and minor) and merges it under the user's values, so meshgen's values
//! still win and maps merge (the profile's `ISTIO_META_ENABLE_HBONE` stays
//! beside meshgen's `proxyMetadata`: `tests/helm_istio.rs`). It also forces
//! istio-cni on (the profile's `cni.ambient.enabled` turns on its ambient
//! redirection) and adds the `ztunnel` chart.

use crate::component::{
    ChartDependency, Delivery, Descriptor, HelmChart, Input, Overrides, Packaging, Part,
};
use crate::config::{DataplaneMode, Istio, StringMap};
use crate::facts::{required_istio_settings, BASE_ALIAS, CNI_ALIAS, DAEMON_ALIAS, ZTUNNEL_ALIAS};
use serde::Serialize;
use serde_json::{json, Map, Value};

pub static COMPONENT: Descriptor = Descriptor {
    id: "istio",
    summary: "Istio: the pinned base, istiod (and CNI) charts with meshgen's mesh config",
    key: "istio",
    section: "deploykf_dependencies.istio",
    templates: "manifests/deploykf-dependencies/istio",
    wave: -10,
    packaging: Packaging::HelmChart,
    delivery: Delivery::WEBHOOK_CHART,
    overrides: Overrides::Chart,
    fan_out: &[],
    enabled: |c| c.deploykf_dependencies.istio.common.enabled,
    namespace: |c| Some(c.deploykf_dependencies.istio.common.namespace.clone()),
    // Not in the chart, where Helm would evaluate them: see `istio_extra`.
    extra_manifests: crate::component::no_extra_manifests,
    values_overrides: |c| Some(&c.deploykf_dependencies.istio.common.values_overrides),
    patches: crate::component::no_patches,
    rules: crate::rules::istio::check,
    derive,
    more: crate::component::single,
    shards: crate::component::no_shards,
    // Its namespace, created by Helm/Argo CD/Flux with the release.
    contribute: |c, _| {
        let i = &c.deploykf_dependencies.istio;
        crate::component::Contributions {
            namespaces: i
                .common
                .enabled
                .then(|| i.common.namespace.clone())
                .into_iter()
                .collect(),
            ..Default::default()
        }
    },
};

#[derive(Debug, Clone, Serialize)]
pub struct IstioModel {
    /// meshgen installs Istio (`deploykf_dependencies.istio.enabled`).
    pub managed: bool,
    /// Render the mesh-wide STRICT PeerAuthentication (opt-in).
    pub mesh_wide_strict_mtls: bool,
    pub namespace: String,
    pub version: String,
    /// "" for the default revision.
    pub revision: String,
    /// `dataplaneMode: ambient`.
    pub ambient: bool,
    /// Namespace labels that turn on sidecar injection.
    pub injection_labels: StringMap,
    /// The wrapper chart (always computed; rendered when `managed`).
    pub chart: IstioChart,
    /// What a user's own Istio must set, as istiod Helm values.
    pub required_helm_values: Value,
    /// The same, as an IstioOperator.
    pub required_istio_operator: Value,
    /// The Istio version of the gateway meshgen deploys.
    pub gateway_version: String,
    /// The Istio minors meshgen installs, e.g. "1.28–1.30".
    pub supported_window: String,
    /// The oldest Istio an Istio meshgen does not install may run, e.g.
    /// "1.18", and what meshgen relies on since when.
    pub minimum_own: String,
    pub own_features: Vec<IstioFeature>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IstioFeature {
    pub what: &'static str,
    pub since: String,
}

/// The wrapper chart: its dependencies and values (`HelmChart`, whose
/// keys templates read as `chart.dependencies`, `chart.values`), and what
/// its `values.yaml` header names.
#[derive(Debug, Clone, Serialize)]
pub struct IstioChart {
    #[serde(flatten)]
    pub helm: HelmChart,
    pub pilot_image: String,
    pub proxy_image: String,
    /// The ztunnel image, with `dataplaneMode: ambient`.
    pub ztunnel_image: Option<String>,
    /// The istio-cni chart is installed (`cni.enabled`, or ambient).
    pub cni: bool,
}

fn derive(input: &Input) -> Part {
    let config = input.config;
    let facts = input.facts;
    let istio = &config.deploykf_dependencies.istio;
    let mut extra_mesh = Map::new();
    // What the other components add to the mesh config and istiod.
    let mesh = input.contributions;
    if !mesh.extension_providers.is_empty() {
        extra_mesh.insert(
            "extensionProviders".into(),
            Value::Array(mesh.extension_providers.clone()),
        );
    }
    let chart = chart(istio, &extra_mesh, &mesh.istiod_env);
    let required = required_helm_values();
    let model = IstioModel {
        managed: facts.istio.managed,
        mesh_wide_strict_mtls: facts.istio.managed && istio.mesh_wide_strict_mtls,
        namespace: facts.istio.namespace.clone(),
        version: istio.charts.istio_daemon.version.clone(),
        revision: facts.istio.revision.clone(),
        ambient: facts.istio.ambient,
        injection_labels: facts.istio.injection_labels.clone(),
        required_istio_operator: json!({
            "apiVersion": "install.istio.io/v1alpha1",
            "kind": "IstioOperator",
            "spec": {
                "meshConfig": required["meshConfig"],
                "values": {"sidecarInjectorWebhook": required["sidecarInjectorWebhook"]},
            },
        }),
        required_helm_values: required,
        gateway_version: config
            .deploykf_core
            .deploykf_istio_gateway
            .charts
            .istio_gateway
            .chart
            .version
            .clone(),
        supported_window: crate::config::supported_istio_window(),
        minimum_own: {
            let (major, minor) =
                crate::config::minimum_own_istio(facts.istio.ambient, facts.gateway.gateway_api);
            format!("{major}.{minor}")
        },
        own_features: crate::config::istio_features(facts.istio.ambient, facts.gateway.gateway_api)
            .map(|(what, (major, minor), _)| IstioFeature {
                what,
                since: format!("{major}.{minor}"),
            })
            .collect(),
        chart,
    };
    let mut part = Part::of(&model);
    part.chart = Some(model.chart.helm);
    part
}

/// The required settings as istiod Helm values.
fn required_helm_values() -> Value {
    let mut v = json!({});
    for (path, value) in required_istio_settings() {
        set_path(&mut v, &path, value);
    }
    v
}

/// `tag: ~` means `<istiod version>-<variant>`, or the bare version.
pub fn resolve_tag(tag: Option<&str>, version: &str, variant: &str) -> String {
    match tag.filter(|t| !t.is_empty()) {
        Some(t) => t.to_string(),
        None if variant.is_empty() => version.to_string(),
        None => format!("{version}-{variant}"),
    }
}

/// Deep-merge `over` into `base`: maps recursively, everything else
/// replaces (a `null` deletes, as in values files).
pub fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(k);
                } else if let Some(existing) = b.get_mut(k) {
                    deep_merge(existing, v);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Set `value` at `path`, creating maps on the way.
fn set_path(root: &mut Value, path: &[&str], value: Value) {
    let mut node = root;
    for key in &path[..path.len() - 1] {
        if !node.get(*key).is_some_and(Value::is_object) {
            node[*key] = json!({});
        }
        node = &mut node[*key];
    }
    node[path[path.len() - 1]] = value;
}

/// Build the wrapper chart; `extra_mesh` is mesh config other components
/// need (merged under the user's `meshConfig`, except `extensionProviders`:
/// those are added to the user's list, replacing an entry of the same
/// name), `extra_env` environment istiod needs.
pub fn chart(
    istio: &Istio,
    extra_mesh: &Map<String, Value>,
    extra_env: &Map<String, Value>,
) -> IstioChart {
    let version = &istio.charts.istio_daemon.version;
    let variant = &istio.default_image_variant;
    let pilot = &istio.images.istio_pilot;
    let proxy = &istio.images.istio_proxy;
    let pilot_image = format!(
        "{}:{}",
        pilot.repository,
        resolve_tag(pilot.tag.as_deref(), version, variant)
    );
    let proxy_image = format!(
        "{}:{}",
        proxy.repository,
        resolve_tag(proxy.tag.as_deref(), version, variant)
    );
    let ambient = istio.dataplane_mode == DataplaneMode::Ambient;
    // Ambient needs the CNI agent (it redirects pod traffic to ztunnel);
    // the rules refuse an explicit `cni.enabled: false` with ambient.
    let cni = istio.cni.enabled || ambient;
    let ztunnel_image = ambient.then(|| {
        let z = &istio.images.ztunnel;
        format!(
            "{}:{}",
            z.repository,
            resolve_tag(z.tag.as_deref(), version, variant)
        )
    });

    let mut mesh = json!({ "trustDomain": "cluster.local" });
    let mut extra_mesh = extra_mesh.clone();
    let ours = extra_mesh.remove("extensionProviders");
    deep_merge(&mut mesh, &Value::Object(extra_mesh));
    deep_merge(&mut mesh, &Value::Object(istio.mesh_config.clone()));
    if let Some(Value::Array(ours)) = ours {
        let mut providers: Vec<Value> = match mesh.get("extensionProviders") {
            Some(Value::Array(theirs)) => theirs
                .iter()
                .filter(|p| !ours.iter().any(|o| o["name"] == p["name"]))
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        providers.extend(ours);
        mesh["extensionProviders"] = Value::Array(providers);
    }

    if istio.egress.mode == crate::config::EgressMode::RegistryOnly {
        // Sidecars refuse a host no ServiceEntry (or Service) declares
        // (`outboundTrafficPolicy`, istio/api `mesh/v1alpha1/config.proto`
        // `REGISTRY_ONLY`); set over the user's `meshConfig`: the key asks
        // for it.
        mesh["outboundTrafficPolicy"] = json!({ "mode": "REGISTRY_ONLY" });
    }

    let mut daemon = json!({
        "image": pilot_image,
        "revision": istio.revision,
        "meshConfig": mesh,
        "sidecarInjectorWebhook": {
            "enableNamespacesByDefault": false,
            "injectedAnnotations": istio.sidecar_injector_webhook.injected_annotations,
        },
    });
    if cni {
        daemon["cni"] = json!({ "enabled": true });
    }
    if ambient {
        // Waypoints (and automated gateways) are pods istiod deploys from
        // its templates; their pod seccompProfile is this value, unset by
        // default (istio 1.30.3 `istio-discovery/values.yaml:571`,
        // `files/waypoint.yaml:253-255`), and Pod Security "restricted"
        // requires it.
        daemon["gateways"] = json!({ "seccompProfile": { "type": "RuntimeDefault" } });
    }
    if !extra_env.is_empty() {
        daemon["env"] = Value::Object(extra_env.clone());
    }
    let mut values = json!({
        "global": {
            "istioNamespace": istio.common.namespace,
            "proxy": { "image": proxy_image, "clusterDomain": "cluster.local" },
            "proxy_init": { "image": proxy_image },
        },
        BASE_ALIAS: {},
        DAEMON_ALIAS: daemon,
    });
    if istio.network_policy.enabled {
        // Each upstream chart renders its NetworkPolicy from this global
        // (istio/istio 1.30.3 `manifests/charts/istio-control/istio-discovery/templates/networkpolicy.yaml:2`,
        // `istio-cni/templates/networkpolicy.yaml:1`, `ztunnel/templates/networkpolicy.yaml:1`;
        // istiod's from 1.28, istio-cni's and ztunnel's from 1.29: 1.28.10 has
        // none for them, so there they run without one), and a parent chart's `global` reaches
        // every subchart: istiod admits its webhook (15017), xDS/CA and
        // monitoring ports from anywhere, ztunnel HBONE (15008) and its
        // probe/DNS ports, all egress stays open.
        values["global"]["networkPolicy"] = json!({ "enabled": true });
    }
    if cni {
        values[CNI_ALIAS] = json!({});
    }
    if let Some(image) = &ztunnel_image {
        values["global"]["profile"] = json!("ambient");
        // `image` with a "/" is used as the whole reference, so the
        // profile's `global.variant` does not touch it (istio 1.30.3
        // `charts/ztunnel/templates/daemonset.yaml:65-68`; 58-61 in 1.28);
        // `revision` "" is the only one the rules allow with ambient;
        // resources stay the chart's (requests 200m CPU / 512Mi per node,
        // `charts/ztunnel/values.yaml:58-63`).
        values[ZTUNNEL_ALIAS] = json!({
            "image": image,
            "istioNamespace": istio.common.namespace,
            "revision": "",
        });
        // ztunnel takes no Telemetry: what istiod sends it (the workload
        // API, istio/istio 1.30.3 `pkg/workloadapi/workload.proto`) has no
        // access log or tracing setting. It logs each connection itself
        // (at `logLevel` info, its default), and `logAsJson` makes those lines
        // JSON (`LOG_FORMAT=json`; istio 1.30.3
        // `charts/ztunnel/values.yaml:119-124`,
        // `templates/daemonset.yaml:122-125`; 1.28: `values.yaml:114`,
        // `daemonset.yaml:115`). With JSON access logs, the whole edge
        // logs JSON.
        let logs = &istio.telemetry.access_logs;
        if logs.enabled && logs.format == crate::config::AccessLogFormat::Json {
            values[ZTUNNEL_ALIAS]["logAsJson"] = json!(true);
        }
    }
    deep_merge(
        &mut values,
        &Value::Object(istio.common.values_overrides.clone()),
    );

    // What deployKF requires wins over meshConfig and valuesOverrides (the
    // rules stage has already warned about each conflict).
    for (path, value) in required_istio_settings() {
        let mut full = vec![DAEMON_ALIAS];
        full.extend(path);
        set_path(&mut values, &full, value);
    }

    let mut dependencies = vec![
        ChartDependency {
            name: istio.charts.istio_base.name.clone(),
            alias: BASE_ALIAS,
            release: "istio-base",
            version: istio.charts.istio_base.version.clone(),
            repository: istio.charts.istio_base.repository.clone(),
        },
        ChartDependency {
            name: istio.charts.istio_daemon.name.clone(),
            alias: DAEMON_ALIAS,
            release: "istiod",
            version: version.clone(),
            repository: istio.charts.istio_daemon.repository.clone(),
        },
    ];
    if cni {
        dependencies.push(ChartDependency {
            name: "cni".into(),
            alias: CNI_ALIAS,
            release: "istio-cni",
            version: version.clone(),
            repository: istio.charts.istio_daemon.repository.clone(),
        });
    }
    if ambient {
        dependencies.push(ChartDependency {
            name: "ztunnel".into(),
            alias: ZTUNNEL_ALIAS,
            release: "ztunnel",
            version: version.clone(),
            repository: istio.charts.istio_daemon.repository.clone(),
        });
    }
    IstioChart {
        helm: HelmChart {
            repository_url: istio.charts.istio_daemon.repository.clone(),
            dependencies,
            values,
        },
        pilot_image,
        proxy_image,
        ztunnel_image,
        cni,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_resolve_like_deploykf() {
        assert_eq!(
            resolve_tag(None, "1.30.3", "distroless"),
            "1.30.3-distroless"
        );
        assert_eq!(resolve_tag(None, "1.30.3", ""), "1.30.3");
        assert_eq!(
            resolve_tag(Some("1.30.2-debug"), "1.30.3", "distroless"),
            "1.30.2-debug"
        );
    }

    #[test]
    fn deep_merge_merges_maps_and_deletes_nulls() {
        let mut a = json!({"a": {"b": 1, "c": 2}, "d": [1]});
        deep_merge(&mut a, &json!({"a": {"c": null, "e": 3}, "d": [2]}));
        assert_eq!(a, json!({"a": {"b": 1, "e": 3}, "d": [2]}));
    }
}

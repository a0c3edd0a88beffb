//! deployKF renders the gateway through Istio's `gateway` chart, so its
//! users tune the gateway pods and Service with
//! `deploykf_istio_gateway.valuesOverrides.gateway.<chart key>` (a real
//! user sets `service.externalIPs`). meshgen renders the Deployment and
//! Service itself, so each chart key that has an equivalent in them
//! becomes a strategic-merge patch of that object (the same `patches`
//! the user can write, applied by kustomize), following where the
//! chart's templates put it (istio/istio 1.30.3
//! `manifests/charts/gateway/templates/deployment.yaml` and
//! `service.yaml`); a key meshgen has its own key for points there; any
//! other key is an error naming it, never silently dropped.

use super::patch::Mapped;
use crate::config::Config;
use crate::values::path::ValuePath;
use serde_json::{json, Map, Value};

/// The gateway container (the injected proxy) in meshgen's Deployment.
const CONTAINER: &str = "istio-proxy";

/// Pod spec fields the chart copies as they are.
const POD_SPEC: &[&str] = &[
    "nodeSelector",
    "tolerations",
    "affinity",
    "topologySpreadConstraints",
    "priorityClassName",
    "terminationGracePeriodSeconds",
    "imagePullSecrets",
];

/// Service spec fields the chart copies as they are.
const SERVICE_SPEC: &[&str] = &[
    "type",
    "loadBalancerIP",
    "loadBalancerSourceRanges",
    "externalTrafficPolicy",
    "externalIPs",
    "ipFamilyPolicy",
    "ipFamilies",
    "clusterIP",
];

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Every key of `valuesOverrides` (at `base`), mapped.
pub fn map(config: &Config, base: &ValuePath) -> Vec<Mapped> {
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let name = gw.gateway_service.name.clone();
    let native = |path: ValuePath, ours: &str| Mapped::Refused {
        path,
        message: format!(
            "meshgen has its own key for this: set `deploykf_core.deploykf_istio_gateway.{ours}`"
        ),
    };
    let none = |path: ValuePath| {
        Mapped::Refused {
        path,
        message: "has no equivalent in the gateway Deployment and Service meshgen renders; change those with `deploykf_core.deploykf_istio_gateway.patches` (kustomize patches)".into(),
    }
    };
    let mut out = Vec::new();
    for (top, chart) in &gw.common.values_overrides {
        let at = base.key(top);
        let Some(chart) = chart.as_object().filter(|_| top == "gateway") else {
            if !is_empty(chart) {
                out.push(Mapped::Refused {
                    path: at,
                    message: "is not a key of deployKF's gateway chart, whose upstream chart's values meshgen maps (`valuesOverrides.gateway.<key>`)".into(),
                });
            }
            continue;
        };
        for (k, v) in chart {
            let path = at.key(k);
            if is_empty(v) {
                continue;
            }
            let patch = |kind: &'static str, body: Value| Mapped::Patch {
                path: path.clone(),
                kind,
                name: name.clone(),
                body,
            };
            let pod = |spec: Value| json!({"spec": {"template": {"spec": spec}}});
            match k.as_str() {
                k if POD_SPEC.contains(&k) => out.push(patch("Deployment", pod(json!({k: v})))),
                "resources" => out.push(patch(
                    "Deployment",
                    pod(json!({"containers": [{"name": CONTAINER, "resources": v}]})),
                )),
                "env" => {
                    // The chart's `env` is a map, written as `name`/`value` pairs.
                    let Some(env) = v.as_object() else {
                        out.push(Mapped::Refused {
                            path,
                            message: "must be a map of variable names to values, as the chart reads it".into(),
                        });
                        continue;
                    };
                    let list: Vec<Value> = env
                        .iter()
                        .map(|(n, v)| json!({"name": n, "value": v}))
                        .collect();
                    out.push(patch(
                        "Deployment",
                        pod(json!({"containers": [{"name": CONTAINER, "env": list}]})),
                    ));
                }
                "strategy" | "minReadySeconds" => {
                    out.push(patch("Deployment", json!({"spec": {k: v}})))
                }
                "annotations" => out.push(patch(
                    "Deployment",
                    json!({"metadata": {"annotations": v}}),
                )),
                "labels" => out.push(patch(
                    "Deployment",
                    json!({"metadata": {"labels": v}, "spec": {"template": {"metadata": {"labels": v}}}}),
                )),
                "podAnnotations" => out.push(native(path, "gatewayDeployment.podAnnotations")),
                "replicaCount" => out.push(native(path, "gatewayDeployment.replicaCount")),
                "autoscaling" => out.push(native(path, "gatewayDeployment.autoscaling")),
                "serviceAccount" => out.push(native(path, "gatewayDeployment.serviceAccount")),
                "service" => {
                    let Some(service) = v.as_object() else {
                        out.push(none(path));
                        continue;
                    };
                    let mut spec = Map::new();
                    for (sk, sv) in service {
                        let spath = path.key(sk);
                        if is_empty(sv) {
                            continue;
                        }
                        match sk.as_str() {
                            sk if SERVICE_SPEC.contains(&sk) => {
                                spec.insert(sk.to_string(), sv.clone());
                            }
                            "annotations" => out.push(native(spath, "gatewayService.annotations")),
                            "ports" => out.push(native(spath, "gatewayService.ports")),
                            _ => out.push(none(spath)),
                        }
                    }
                    if !spec.is_empty() {
                        out.push(patch("Service", json!({"spec": spec})));
                    }
                }
                _ => out.push(none(path)),
            }
        }
    }
    out
}

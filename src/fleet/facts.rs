//! What the fleet needs to know of one cluster, read from its merged
//! values in one place ([`of`]): the fleet-wide checks and the entry
//! points read these and nothing else of a cluster's values. When the
//! values change shape (several gateways), this function is what moves.

use crate::values::path::{lookup, ValuePath};
use serde_json::Value;

/// A security setting the fleet compares between the base and each
/// cluster: its key, and how strong the value is (higher is stronger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: &'static str,
    pub strength: u8,
    /// The value as a user writes it, for messages.
    pub shown: String,
}

/// The Argo CD delivery of one cluster (`argocd.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Argo {
    pub app_name_prefix: String,
    pub namespace: String,
    pub repo_url: String,
    pub repo_path: String,
    pub destination_server: String,
    pub destination_name: String,
}

/// The Flux delivery of one cluster (`gitops.flux.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flux {
    pub namespace: String,
    pub source_kind: String,
    pub source_name: String,
    pub path: String,
    pub interval: String,
}

/// One cluster, as the fleet sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterFacts {
    /// (key, hostname) of every public host name the cluster serves: the
    /// primary gateway's and each of `additionalGateways` (issue 33).
    pub hostnames: Vec<(ValuePath, String)>,
    /// (key, address) of every fixed gateway address, likewise.
    pub addresses: Vec<(ValuePath, String)>,
    /// (key, version) of the Istio the cluster runs, when meshgen
    /// installs Istio or its gateway.
    pub istio: Option<(&'static str, String)>,
    pub security: Vec<Setting>,
    /// `gitops.engine`: argocd, flux or none.
    pub engine: String,
    pub argo: Argo,
    pub flux: Flux,
}

const PRIMARY: &str = "deploykf_core.deploykf_istio_gateway";
const ADDITIONAL: &str = "deploykf_core.deploykf_istio_gateway.additionalGateways";
/// Under a gateway's section (the primary's or an `additionalGateways` item).
const HOSTNAME: &str = "gateway.hostname";
const ADDRESS: &str = "gatewayService.loadBalancerIP";
const ISTIO_ENABLED: &str = "deploykf_dependencies.istio.enabled";
const ISTIO_VERSION: &str = "deploykf_dependencies.istio.charts.istioDaemon.version";
const GATEWAY_CHART_ENABLED: &str =
    "deploykf_core.deploykf_istio_gateway.charts.istioGateway.enabled";
const GATEWAY_CHART_VERSION: &str =
    "deploykf_core.deploykf_istio_gateway.charts.istioGateway.version";

const GATEWAY_POD_SECURITY: &str = "deploykf_core.deploykf_istio_gateway.namespacePodSecurity";

/// The settings an overlay must not weaken unnoticed (issue 34): auth,
/// the TLS redirect, mesh-wide STRICT mTLS, Pod Security levels, egress.
const SECURITY: &[&str] = &[
    "deploykf_core.deploykf_auth.enabled",
    "deploykf_core.deploykf_istio_gateway.gateway.tls.redirect",
    "deploykf_dependencies.istio.meshWideStrictMtls",
    GATEWAY_POD_SECURITY,
    "deploykf_core.deploykf_profiles_generator.namespacePodSecurity",
    "deploykf_dependencies.istio.egress.mode",
];

fn at<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |v, k| v.get(k))
}

fn text(v: &Value, dotted: &str) -> String {
    match at(v, dotted) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn flag(v: &Value, dotted: &str) -> bool {
    matches!(at(v, dotted), Some(Value::Bool(true)))
}

/// How strong a security setting's value is.
fn strength(key: &str, value: Option<&Value>) -> (u8, String) {
    let shown = match value {
        None | Some(Value::Null) => "null".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let s = match (key.rsplit('.').next(), value) {
        (_, Some(Value::Bool(b))) => u8::from(*b),
        (Some("namespacePodSecurity"), Some(Value::String(level))) => match level.as_str() {
            "restricted" => 3,
            "baseline" => 2,
            _ => 1,
        },
        (Some("mode"), Some(Value::String(mode))) => u8::from(mode == "registry-only"),
        _ => 0,
    };
    (s, shown)
}

/// Read a cluster's facts from its merged values (`meshgen values`).
pub fn of(values: &Value) -> ClusterFacts {
    let mut f = ClusterFacts::default();
    // The primary gateway at its keys, each additional one at its item's.
    let primary = ValuePath::keys(PRIMARY);
    let mut gateways = vec![primary.clone()];
    if let Some(Value::Array(more)) = at(values, ADDITIONAL) {
        let list = ValuePath::keys(ADDITIONAL);
        gateways.extend((0..more.len()).map(|i| list.index(i)));
    }
    for gateway in gateways {
        for (keys, found) in [(HOSTNAME, &mut f.hostnames), (ADDRESS, &mut f.addresses)] {
            let path = keys.split('.').fold(gateway.clone(), |p, k| p.key(k));
            if let Some(Value::String(v)) = lookup(values, &path) {
                if !v.is_empty() {
                    found.push((path, v.clone()));
                }
            }
        }
    }
    f.istio = if flag(values, ISTIO_ENABLED) {
        Some((ISTIO_VERSION, text(values, ISTIO_VERSION)))
    } else if flag(values, GATEWAY_CHART_ENABLED) {
        Some((GATEWAY_CHART_VERSION, text(values, GATEWAY_CHART_VERSION)))
    } else {
        None
    };
    f.security = SECURITY
        .iter()
        .map(|key| {
            let (mut strength, mut shown) = strength(key, at(values, key));
            // null: "restricted" when meshgen deploys the gateway
            // (default_values.yaml, `deploykf_istio_gateway.namespacePodSecurity`).
            if *key == GATEWAY_POD_SECURITY
                && shown == "null"
                && flag(values, GATEWAY_CHART_ENABLED)
            {
                (strength, shown) = (3, "null (restricted)".into());
            }
            Setting {
                key,
                strength,
                shown,
            }
        })
        .collect();
    f.engine = text(values, "gitops.engine");
    f.argo = Argo {
        app_name_prefix: text(values, "argocd.appNamePrefix"),
        namespace: text(values, "argocd.namespace"),
        repo_url: text(values, "argocd.source.repo.url"),
        repo_path: text(values, "argocd.source.repo.path"),
        destination_server: text(values, "argocd.destination.server"),
        destination_name: text(values, "argocd.destination.name"),
    };
    f.flux = Flux {
        namespace: text(values, "gitops.flux.namespace"),
        source_kind: text(values, "gitops.flux.sourceRef.kind"),
        source_name: text(values, "gitops.flux.sourceRef.name"),
        path: text(values, "gitops.flux.path"),
        interval: text(values, "gitops.flux.interval"),
    };
    f
}

/// The minor of an Istio version (`1.30.3` → (1, 30)), as the rules
/// read it.
pub fn minor(version: &str) -> Option<(u64, u64)> {
    crate::config::istio_minor(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_keys_of_the_values() {
        let v = json!({
            "deploykf_core": {"deploykf_istio_gateway": {"gateway": {"hostname": "a.example", "tls": {"redirect": false}}, "gatewayService": {"loadBalancerIP": "10.0.0.1"}, "charts": {"istioGateway": {"enabled": true, "version": "1.29.1"}}}},
            "deploykf_dependencies": {"istio": {"enabled": false, "egress": {"mode": "registry-only"}}},
        });
        let f = of(&v);
        let primary = |k: &str| ValuePath::keys(&format!("{PRIMARY}.{k}"));
        assert_eq!(
            f.hostnames,
            vec![(primary(HOSTNAME), "a.example".to_string())]
        );
        assert_eq!(
            f.addresses,
            vec![(primary(ADDRESS), "10.0.0.1".to_string())]
        );
        assert_eq!(f.istio, Some((GATEWAY_CHART_VERSION, "1.29.1".to_string())));
        let s = |k: &str| f.security.iter().find(|s| s.key == k).map(|s| s.strength);
        assert_eq!(
            s("deploykf_core.deploykf_istio_gateway.gateway.tls.redirect"),
            Some(0)
        );
        assert_eq!(s("deploykf_dependencies.istio.egress.mode"), Some(1));
        assert_eq!(minor("1.30.3"), Some((1, 30)));
    }
}

//! Stage 3: the derived model, computed once from the validated config and
//! handed to every template: which components are on and where they
//! write, namespaces, resolved ports, hosts, names, labels.
//!
//! Templates read the model instead of recomputing things such as "the
//! public HTTPS port is `gatewayService.ports.https`, else
//! `gateway.ports.https`". Nothing here renders text.

pub mod auth;
pub mod gitops;
pub mod istio;
pub mod profiles;

use crate::config::{Config, StringMap};
use crate::rules::Checked;
use indexmap::IndexMap;
use serde::Serialize;

/// One output component: a self-contained directory with its own
/// `kustomization.yaml`.
#[derive(Debug, Clone, Serialize)]
pub struct Component {
    /// Stable identifier, e.g. `deploykf-istio-gateway`.
    pub id: &'static str,
    /// Output directory relative to the output root; also the template
    /// directory under `templates/`.
    pub dir: &'static str,
    pub enabled: bool,
    pub namespace: String,
    /// A Helm chart (rendered by Helm, Argo CD or Flux) rather than a
    /// kustomize directory: it gets no `kustomization.yaml`.
    pub helm_chart: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub components: Vec<Component>,
    /// Labels on every object meshgen renders.
    pub common_labels: StringMap,
    pub istio: IstioModel,
    pub cert_manager: CertManagerModel,
    pub gateway: GatewayModel,
    pub auth: auth::AuthModel,
    pub edge: auth::EdgeModel,
    pub gitops: gitops::GitopsModel,
    pub profiles: profiles::ProfilesModel,
    /// Directories that get a generated `kustomization.yaml`.
    pub kustomize_dirs: Vec<String>,
    /// Namespaces objects may live in without the tree creating them.
    pub existing_namespaces: Vec<String>,
    /// Secrets the user provides for Gateway credentials.
    pub user_credentials: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IstioModel {
    /// meshgen installs Istio (`deploykf_dependencies.istio.enabled`).
    pub managed: bool,
    pub namespace: String,
    pub version: String,
    /// "" for the default revision.
    pub revision: String,
    /// Namespace labels that turn on sidecar injection.
    pub injection_labels: StringMap,
    /// The wrapper chart (always computed; rendered when `managed`).
    pub chart: istio::IstioChart,
    /// What a user's own Istio must set, as istiod Helm values.
    pub required_helm_values: serde_json::Value,
    /// The same, as an IstioOperator.
    pub required_istio_operator: serde_json::Value,
    /// `extraManifests`, parsed and checked.
    pub extra_manifests: Vec<serde_json::Value>,
    /// The Istio version of the gateway meshgen deploys.
    pub gateway_version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CertManagerModel {
    /// Namespace cert-manager runs in (its cluster resource namespace).
    pub namespace: String,
    /// meshgen renders the self-signed issuer chain.
    pub issuer_managed: bool,
    /// The ClusterIssuer that signs the gateway certificate.
    pub issuer_name: String,
    pub ca_issuer_name: String,
    pub ca_secret_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GatewayModel {
    pub namespace: String,
    /// Name of the main (HTTPS) Gateway resource.
    pub name: String,
    /// Name of the HTTP Gateway resource used for redirects.
    pub redirect_name: String,
    pub hostname: String,
    /// `hosts` of the Gateway servers.
    pub hosts: Vec<String>,
    /// Names covered by the gateway certificate.
    pub dns_names: Vec<String>,
    /// Ports the gateway pods listen on.
    pub http_port: u16,
    pub https_port: u16,
    /// Ports clients connect to (the Service ports).
    pub public_http_port: u16,
    pub public_https_port: u16,
    pub selector_labels: StringMap,
    /// Secret holding the gateway's TLS certificate (gateway namespace).
    pub tls_credential_name: String,
    /// meshgen renders a cert-manager Certificate for that Secret.
    pub certificate_managed: bool,
    pub tls_redirect: bool,
    pub clients_use_https: bool,
    /// The URL users open: scheme from `tls.clientsUseHttps`, the public
    /// port only when it is not the scheme's default.
    pub public_url: String,
    pub xff_num_trusted_hops: u32,
    pub proxy_protocol: bool,
    /// The deployment is ours (`charts.istioGateway.enabled`).
    pub deployment_managed: bool,
    pub deployment: GatewayDeploymentModel,
    /// `extraManifests`, parsed and checked, in order.
    pub extra_manifests: Vec<serde_json::Value>,
}

/// The gateway Deployment, Service, autoscaling, as rendered when
/// `charts.istioGateway.enabled`.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayDeploymentModel {
    /// Name of the Deployment, Service, HPA, PDB, Role and RoleBinding
    /// (`gatewayService.name`, as deployKF names the chart release).
    pub name: String,
    pub service_account: String,
    pub service_account_annotations: StringMap,
    pub pod_labels: StringMap,
    pub pod_annotations: StringMap,
    /// `None` while the HPA owns the replica count.
    pub replicas: Option<u32>,
    pub autoscaling: Option<AutoscalingModel>,
    /// More than one replica can run: render a PodDisruptionBudget.
    pub disruption_budget: bool,
    pub service_type: String,
    pub service_annotations: StringMap,
    pub load_balancer_ip: Option<String>,
    pub load_balancer_source_ranges: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AutoscalingModel {
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub target_cpu: u32,
}

/// Secret name deployKF uses for the gateway certificate.
pub const TLS_CREDENTIAL_NAME: &str = "deploykf-istio-gateway-cert";

fn map(pairs: &[(&str, &str)]) -> StringMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn derive(checked: &Checked) -> Model {
    let config = &checked.config;
    let istio = &config.deploykf_dependencies.istio;
    let cm = &config.deploykf_dependencies.cert_manager;
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let g = &gw.gateway;
    let hosts = if g.tls.match_sni {
        vec![format!("*/{}", g.hostname), format!("*/*.{}", g.hostname)]
    } else {
        vec!["*".to_string()]
    };
    let public_http = gw.gateway_service.ports.http.unwrap_or(g.ports.http);
    let public_https = gw.gateway_service.ports.https.unwrap_or(g.ports.https);
    let user_credential = g.tls.credential_name.clone().filter(|c| !c.is_empty());
    let user_credential_list: Vec<String> = user_credential.iter().cloned().collect();
    let components = components(config);
    let mut gateway_model =
        gateway_model(checked, hosts, public_http, public_https, user_credential);
    let edge = auth::derive_edge(config, &gateway_model);
    gateway_model.hosts = edge.gateway_hosts.clone();
    let auth_model = auth::derive(config, &gateway_model, &edge, &checked.auth_extra_manifests);
    let mut extra_mesh = serde_json::Map::new();
    let mut extra_env = serde_json::Map::new();
    if auth_model.enabled {
        extra_mesh.insert(
            "extensionProviders".into(),
            serde_json::json!([auth_model.provider]),
        );
        if auth_model.dex.is_some() {
            // dex's keys are fetched by the gateway's proxy through the
            // mesh (mTLS), not by istiod: istiod is outside the mesh and
            // dex's STRICT mTLS would refuse it. External issuers are
            // still fetched by istiod.
            extra_env.insert(
                istio::REMOTE_JWKS_ENV.into(),
                serde_json::json!(istio::REMOTE_JWKS_MODE),
            );
        }
    }
    let chart = istio::chart(istio, &extra_mesh, &extra_env);
    let gitops = gitops::derive(config, &components, &chart);
    let mut kustomize_dirs: Vec<String> = components
        .iter()
        .filter(|c| c.enabled && !c.helm_chart)
        .map(|c| c.dir.to_string())
        .collect();
    match (&gitops.argocd, &gitops.flux) {
        (Some(_), _) => kustomize_dirs.push("argocd-applications".into()),
        (_, Some(f)) => {
            kustomize_dirs.push("flux".into());
            if let Some(i) = &f.istio {
                kustomize_dirs.push(i.dir.clone());
            }
        }
        _ => {}
    }
    let mut existing_namespaces = vec![
        "kube-system".to_string(),
        cm.namespace.clone(),
        config.argocd.namespace.clone(),
        config.gitops.flux.namespace.clone(),
    ];
    if istio.enabled {
        // Created by Helm/Argo CD/Flux with the release.
        existing_namespaces.push(istio.namespace.clone());
    }
    let pg = &config.deploykf_core.deploykf_profiles_generator;
    if pg.enabled && pg.output == crate::config::ProfilesOutput::Profiles {
        // The Kubeflow Profiles controller creates these.
        let prefix = &pg.profile_defaults.profile_name_prefix;
        existing_namespaces.extend(pg.profiles.iter().map(|p| format!("{prefix}{}", p.name)));
    }
    existing_namespaces.extend(config.gitops.existing_namespaces.iter().cloned());
    // The apps' namespaces are the user's.
    existing_namespaces.extend(edge.apps.iter().map(|a| a.namespace.clone()));
    existing_namespaces.sort();
    existing_namespaces.dedup();
    let injection_labels = if istio.revision.is_empty() {
        map(&[("istio-injection", "enabled")])
    } else {
        map(&[("istio.io/rev", &istio.revision)])
    };
    let injection_labels_for_profiles = injection_labels.clone();
    let required = required_helm_values();
    Model {
        components,
        common_labels: map(&[("app.kubernetes.io/managed-by", "meshgen")]),
        istio: IstioModel {
            managed: istio.enabled,
            namespace: istio.namespace.clone(),
            version: istio.charts.istio_daemon.version.clone(),
            revision: istio.revision.clone(),
            injection_labels,
            chart,
            required_istio_operator: serde_json::json!({
                "apiVersion": "install.istio.io/v1alpha1",
                "kind": "IstioOperator",
                "spec": {
                    "meshConfig": required["meshConfig"],
                    "values": {"sidecarInjectorWebhook": required["sidecarInjectorWebhook"]},
                },
            }),
            required_helm_values: required,
            extra_manifests: checked.istio_extra_manifests.clone(),
            gateway_version: gw.charts.istio_gateway.version.clone(),
        },
        cert_manager: CertManagerModel {
            namespace: cm.namespace.clone(),
            issuer_managed: cm.cluster_issuer.enabled,
            issuer_name: cm.cluster_issuer.issuer_name.clone(),
            ca_issuer_name: cm.cluster_issuer.self_signed.ca_issuer_name.clone(),
            ca_secret_name: cm.cluster_issuer.self_signed.ca_secret_name.clone(),
        },
        gateway: gateway_model,
        auth: auth_model,
        edge,
        profiles: profiles::derive(
            config,
            &injection_labels_for_profiles,
            &checked.profiles_extra_manifests,
        ),
        gitops,
        kustomize_dirs,
        existing_namespaces,
        user_credentials: user_credential_list,
    }
}

fn gateway_model(
    checked: &Checked,
    hosts: Vec<String>,
    public_http: u16,
    public_https: u16,
    user_credential: Option<String>,
) -> GatewayModel {
    let config = &checked.config;
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let g = &gw.gateway;
    GatewayModel {
        namespace: gw.namespace.clone(),
        name: g.name.clone(),
        redirect_name: format!("{}-https-redirect", g.name),
        hostname: g.hostname.clone(),
        hosts,
        dns_names: vec![g.hostname.clone(), format!("*.{}", g.hostname)],
        http_port: g.ports.http,
        https_port: g.ports.https,
        public_http_port: public_http,
        public_https_port: public_https,
        selector_labels: g.selector_labels.clone(),
        certificate_managed: user_credential.is_none(),
        tls_credential_name: user_credential.unwrap_or_else(|| TLS_CREDENTIAL_NAME.to_string()),
        tls_redirect: g.tls.redirect,
        clients_use_https: g.tls.clients_use_https,
        public_url: public_url(
            g.tls.clients_use_https,
            &g.hostname,
            public_http,
            public_https,
        ),
        xff_num_trusted_hops: g.xff_num_trusted_hops,
        proxy_protocol: g.enable_proxy_protocol,
        deployment_managed: gw.charts.istio_gateway.enabled,
        deployment: derive_deployment(config),
        extra_manifests: checked.gateway_extra_manifests.clone(),
    }
}

/// The component table: every component meshgen knows, on or off.
fn components(config: &Config) -> Vec<Component> {
    let istio = &config.deploykf_dependencies.istio;
    let cm = &config.deploykf_dependencies.cert_manager;
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    vec![
        Component {
            id: "istio",
            dir: "manifests/deploykf-dependencies/istio",
            enabled: istio.enabled,
            namespace: istio.namespace.clone(),
            helm_chart: true,
        },
        Component {
            id: "cert-manager",
            dir: "manifests/deploykf-dependencies/cert-manager",
            enabled: cm.cluster_issuer.enabled,
            namespace: cm.namespace.clone(),
            helm_chart: false,
        },
        Component {
            id: "deploykf-auth",
            dir: "manifests/deploykf-core/deploykf-auth",
            enabled: config.deploykf_core.deploykf_auth.enabled,
            namespace: config.deploykf_core.deploykf_auth.namespace.clone(),
            helm_chart: false,
        },
        Component {
            id: "deploykf-istio-gateway",
            dir: "manifests/deploykf-core/deploykf-istio-gateway",
            enabled: gw.enabled,
            namespace: gw.namespace.clone(),
            helm_chart: false,
        },
        Component {
            id: "deploykf-profiles-generator",
            dir: "manifests/deploykf-core/deploykf-profiles-generator",
            enabled: config.deploykf_core.deploykf_profiles_generator.enabled,
            // Each profile has its own namespace.
            namespace: String::new(),
            helm_chart: false,
        },
    ]
}

fn derive_deployment(config: &Config) -> GatewayDeploymentModel {
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let d = &gw.gateway_deployment;
    let s = &gw.gateway_service;
    // Injection first, then the selector labels (which the Service, the
    // Gateways and every policy select on), then upstream's ambient opt-out.
    let mut pod_labels: StringMap = map(&[("sidecar.istio.io/inject", "true")]);
    pod_labels.extend(gw.gateway.selector_labels.clone());
    pod_labels.insert("istio.io/dataplane-mode".into(), "none".into());
    let mut pod_annotations = map(&[
        ("inject.istio.io/templates", "gateway"),
        ("prometheus.io/path", "/stats/prometheus"),
        ("prometheus.io/port", "15020"),
        ("prometheus.io/scrape", "true"),
    ]);
    pod_annotations.extend(d.pod_annotations.clone());
    let autoscaling = d.autoscaling.enabled.then_some(AutoscalingModel {
        min_replicas: d.autoscaling.min_replicas,
        max_replicas: d.autoscaling.max_replicas,
        target_cpu: d.autoscaling.target_cpu_utilization_percentage,
    });
    let max_running = match &autoscaling {
        Some(a) => a.max_replicas,
        None => d.replica_count,
    };
    let mut service_annotations = IndexMap::new();
    service_annotations.extend(s.annotations.clone());
    GatewayDeploymentModel {
        name: s.name.clone(),
        service_account: d.service_account.name.clone(),
        service_account_annotations: d.service_account.annotations.clone(),
        pod_labels,
        pod_annotations,
        replicas: (!d.autoscaling.enabled).then_some(d.replica_count),
        disruption_budget: max_running > 1,
        autoscaling,
        service_type: s.service_type.as_str().to_owned(),
        service_annotations,
        load_balancer_ip: (!s.load_balancer_ip.is_empty()
            && s.service_type == crate::config::ServiceType::LoadBalancer)
            .then(|| s.load_balancer_ip.clone()),
        load_balancer_source_ranges: s.load_balancer_source_ranges.clone(),
    }
}

/// The required settings as istiod Helm values.
fn required_helm_values() -> serde_json::Value {
    let mut v = serde_json::json!({});
    for (path, value) in istio::required_settings() {
        istio::set_path(&mut v, &path, value);
    }
    v
}

fn public_url(https: bool, host: &str, http_port: u16, https_port: u16) -> String {
    match (https, https_port, http_port) {
        (true, 443, _) => format!("https://{host}/"),
        (true, p, _) => format!("https://{host}:{p}/"),
        (false, _, 80) => format!("http://{host}/"),
        (false, _, p) => format!("http://{host}:{p}/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_omits_default_ports() {
        assert_eq!(public_url(true, "a.b", 80, 443), "https://a.b/");
        assert_eq!(public_url(true, "a.b", 80, 8443), "https://a.b:8443/");
        assert_eq!(public_url(false, "a.b", 80, 443), "http://a.b/");
        assert_eq!(public_url(false, "a.b", 8080, 443), "http://a.b:8080/");
    }
}

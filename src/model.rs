//! Stage 3: the derived model, computed once from the validated config and
//! handed to every template: which components are on and where they
//! write, namespaces, resolved ports, hosts, names.
//!
//! Templates read the model instead of recomputing things such as "the
//! public HTTPS port is `gatewayService.ports.https`, else
//! `gateway.ports.https`". Nothing here renders text.

use crate::config::{Config, StringMap};
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
}

#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub components: Vec<Component>,
    /// Labels on every object meshgen renders.
    pub common_labels: StringMap,
    pub istio: IstioModel,
    pub gateway: GatewayModel,
}

#[derive(Debug, Clone, Serialize)]
pub struct IstioModel {
    /// meshgen installs Istio (`deploykf_dependencies.istio.enabled`).
    pub managed: bool,
    pub namespace: String,
    pub version: String,
    /// Namespace labels that turn on sidecar injection.
    pub injection_labels: StringMap,
}

#[derive(Debug, Clone, Serialize)]
pub struct GatewayModel {
    pub namespace: String,
    /// Name of the main (HTTPS) Gateway resource.
    pub name: String,
    /// Name of the HTTP Gateway resource used for redirects.
    pub redirect_name: String,
    pub hostname: String,
    /// `hosts` of the Gateway servers and VirtualServices.
    pub hosts: Vec<String>,
    /// Ports the gateway pods listen on.
    pub http_port: u16,
    pub https_port: u16,
    /// Ports clients connect to (the Service ports).
    pub public_http_port: u16,
    pub public_https_port: u16,
    pub selector_labels: StringMap,
    /// Secret holding the gateway's TLS certificate (in the gateway
    /// namespace).
    pub tls_credential_name: String,
    pub tls_redirect: bool,
    pub clients_use_https: bool,
    /// Fully qualified name of the gateway Service.
    pub service_host: String,
    /// The URL users open: scheme from `tls.clientsUseHttps`, the public
    /// port only when it is not the scheme's default.
    pub public_url: String,
    /// The deployment is ours (`charts.istioGateway.enabled`).
    pub deployment_managed: bool,
}

/// Secret name deployKF uses for the gateway certificate.
pub const TLS_CREDENTIAL_NAME: &str = "deploykf-istio-gateway-cert";

pub fn derive(config: &Config) -> Model {
    let istio = &config.deploykf_dependencies.istio;
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let g = &gw.gateway;
    let hosts = if g.tls.match_sni {
        vec![format!("*/{}", g.hostname), format!("*/*.{}", g.hostname)]
    } else {
        vec!["*".to_string()]
    };
    let public_http = gw.gateway_service.ports.http.unwrap_or(g.ports.http);
    let public_https = gw.gateway_service.ports.https.unwrap_or(g.ports.https);
    let mut common_labels = IndexMap::new();
    common_labels.insert("app.kubernetes.io/managed-by".into(), "meshgen".into());
    let mut injection_labels = IndexMap::new();
    injection_labels.insert("istio-injection".into(), "enabled".into());
    Model {
        components: vec![Component {
            id: "deploykf-istio-gateway",
            dir: "manifests/deploykf-core/deploykf-istio-gateway",
            enabled: gw.enabled,
            namespace: gw.namespace.clone(),
        }],
        common_labels,
        istio: IstioModel {
            managed: istio.enabled,
            namespace: istio.namespace.clone(),
            version: istio.charts.istio_daemon.version.clone(),
            injection_labels,
        },
        gateway: GatewayModel {
            namespace: gw.namespace.clone(),
            name: g.name.clone(),
            redirect_name: format!("{}-https-redirect", g.name),
            hostname: g.hostname.clone(),
            hosts,
            http_port: g.ports.http,
            https_port: g.ports.https,
            public_http_port: public_http,
            public_https_port: public_https,
            selector_labels: g.selector_labels.clone(),
            tls_credential_name: TLS_CREDENTIAL_NAME.to_string(),
            tls_redirect: g.tls.redirect,
            clients_use_https: g.tls.clients_use_https,
            service_host: format!(
                "{}.{}.svc.cluster.local",
                gw.gateway_service.name, gw.namespace
            ),
            public_url: public_url(
                g.tls.clients_use_https,
                &g.hostname,
                public_http,
                public_https,
            ),
            deployment_managed: gw.charts.istio_gateway.enabled,
        },
    }
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

//! Facts derived once from the typed [`Config`], before the rules run:
//! the gateway's public ports, URL, hosts and the names of the objects
//! derived from it, the apps as they are served (host, prefix, public or
//! not), the paths the login flow owns and the Istio injection labels:
//! facts of the whole install. What one component adds to others (a
//! gateway's principal, mesh config entries, istiod's environment,
//! assumed namespaces) is not a fact: it is that component's
//! contribution (`component::Contributions`).
//!
//! Rules, component models, templates and the whole-tree checks read these
//! instead of recomputing them; each fact has one function here. This
//! module computes; it never judges a value (that is `rules`), and builds
//! no object body (every manifest body belongs to a component model).

pub mod telemetry;

use crate::config::{
    App, AppAuth, Config, DataplaneMode, GatewayApi, GatewayAuth, GatewayComponent,
    PodSecurityLevel, StringMap,
};
use crate::values::path::ValuePath;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Secret name deployKF uses for the gateway certificate.
pub const TLS_CREDENTIAL_NAME: &str = "deploykf-istio-gateway-cert";

/// The ports oauth2-proxy and dex listen on (the login flow's services).
pub const OAUTH2_PROXY_PORT: u16 = 4180;
pub const DEX_PORT: u16 = 5556;

/// Aliases of the upstream charts in Istio's wrapper chart (deployKF's
/// names, so that its users' `valuesOverrides` apply unchanged).
pub const BASE_ALIAS: &str = "istio-base";
pub const DAEMON_ALIAS: &str = "istio-daemon";
pub const CNI_ALIAS: &str = "istio-cni";
pub const ZTUNNEL_ALIAS: &str = "ztunnel";

/// istiod's setting for who fetches a RequestAuthentication's JWKS, and
/// the mode meshgen needs: Envoy for in-mesh issuers (dex), istiod for the
/// others.
pub const REMOTE_JWKS_ENV: &str = "PILOT_JWT_ENABLE_REMOTE_JWKS";
pub const REMOTE_JWKS_MODE: &str = "hybrid";

#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// The primary gateway (`deploykf_core.deploykf_istio_gateway`); each
    /// of `additionalGateways` is a [`GatewayView`] (see [`gateways`]), and
    /// what a gateway adds to other components is its contribution
    /// (`component::Contributions`).
    pub gateway: GatewayFacts,
    pub apps: Vec<AppFacts>,
    pub login: LoginFacts,
    pub istio: IstioFacts,
}

/// The gateway as clients and the other components see it.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayFacts {
    /// `api` is `gateway-api`: the ingress is a Gateway API Gateway with
    /// HTTPRoutes, and its policies attach by `targetRefs`.
    pub gateway_api: bool,
    pub namespace: String,
    /// Name of the main (HTTPS) Gateway resource.
    pub name: String,
    /// Namespace of the main (HTTPS) Istio Gateway resource
    /// (`gateway.namespace`, else `namespace`).
    pub object_namespace: String,
    /// `<object_namespace>/<name>`: how VirtualServices name the main
    /// Gateway (Istio reads an unqualified name in the VirtualService's
    /// own namespace).
    pub reference: String,
    /// `<namespace>/<redirect_name>`: the HTTP Gateway, as named by the
    /// redirect VirtualService.
    pub redirect_reference: String,
    /// Name of the HTTP Gateway resource used for redirects.
    pub redirect_name: String,
    /// Names of the objects derived from the gateway name.
    pub names: GatewayNames,
    pub hostname: String,
    /// `hosts` of the HTTPS Gateway server (with the `*/` namespace).
    pub hosts: Vec<String>,
    /// `hosts` of the HTTP Gateway server: the same names, but only for
    /// VirtualServices in the gateway namespace (`./`). No policy checks
    /// a login on the HTTP port, so nothing but meshgen's redirect (or
    /// relay to HTTPS) may be served there.
    pub http_hosts: Vec<String>,
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
    /// SPIFFE principal of the gateway pods' ServiceAccount.
    pub principal: String,
    /// Who its users are: `login` for the primary, an additional
    /// gateway's `auth`.
    pub auth: GatewayAuth,
}

/// Every object name meshgen derives from `gateway.name`.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayNames {
    pub routes: String,
    pub login: String,
    pub require_jwt: String,
    pub jwt: String,
    pub xff_num_trusted_hops: String,
    pub proxy_protocol: String,
    /// The ValidatingAdmissionPolicy (and binding) guarding identity
    /// headers in VirtualServices.
    pub identity_headers: String,
    /// The ValidatingAdmissionPolicy (and binding) keeping tenants'
    /// VirtualServices inside their namespace's paths.
    pub tenant_routes: String,
}

impl GatewayNames {
    fn new(gateway: &str) -> Self {
        let n = |suffix: &str| format!("{gateway}-{suffix}");
        GatewayNames {
            routes: n("routes"),
            login: n("login"),
            require_jwt: n("require-jwt"),
            jwt: n("jwt"),
            xff_num_trusted_hops: n("xff-num-trusted-hops"),
            proxy_protocol: n("proxy-protocol"),
            identity_headers: n("identity-headers"),
            tenant_routes: n("tenant-routes"),
        }
    }

    /// The longest derived name (Kubernetes names stop at 253).
    pub fn longest(&self) -> &str {
        [
            &self.routes,
            &self.login,
            &self.require_jwt,
            &self.jwt,
            &self.xff_num_trusted_hops,
            &self.proxy_protocol,
            &self.identity_headers,
            &self.tenant_routes,
        ]
        .into_iter()
        .max_by_key(|n| n.len())
        .map_or("", String::as_str)
    }
}

/// One app behind the gateway, as it is served.
#[derive(Debug, Clone, Serialize)]
pub struct AppFacts {
    pub name: String,
    pub namespace: String,
    /// The host it is served on.
    pub host: String,
    /// Its prefix on the main host; `None` for a subdomain app.
    pub path: Option<String>,
    pub selector: Option<StringMap>,
    /// The port its pods listen on (`targetPort`), when given. Istio
    /// matches an AuthorizationPolicy's `ports` against the workload's port
    /// (`destination.port`), never the Service port.
    pub target_port: Option<u16>,
    pub public: bool,
}

/// The login flow (dex, oauth2-proxy) on the main host.
#[derive(Debug, Clone, Serialize)]
pub struct LoginFacts {
    pub enabled: bool,
    /// Path prefixes the login flow serves on the main host.
    pub paths: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IstioFacts {
    /// meshgen installs Istio (`deploykf_dependencies.istio.enabled`).
    pub managed: bool,
    pub namespace: String,
    /// "" for the default revision.
    pub revision: String,
    /// Namespace labels that turn on sidecar injection.
    pub injection_labels: StringMap,
    /// `deploykf_dependencies.istio.dataplaneMode` is `ambient`.
    pub ambient: bool,
    /// Namespace labels that put a namespace's workloads in the mesh:
    /// `injection_labels` with sidecars; in ambient
    /// `istio.io/dataplane-mode: ambient` instead (no injection label, or
    /// the sidecar injector's namespace selectors would inject the pods
    /// too). The gateway namespace keeps `injection_labels` in both modes.
    pub mesh_labels: StringMap,
    /// Injected pods get Istio's `istio-init` container: sidecars without
    /// istio-cni (`cni.enabled: false`; ambient always runs it). It runs
    /// as root with NET_ADMIN and NET_RAW (istio/istio 1.30.3
    /// `charts/istio-control/istio-discovery/files/injection-template.yaml:82-86,156-171`),
    /// which only Pod Security "privileged" admits (kubernetes/pod-security-admission
    /// `policy/check_capabilities_baseline.go:62-76`: NET_ADMIN and NET_RAW
    /// are not in baseline's set). With istio-cni the injector adds
    /// `istio-validation` instead, as UID 1337 with every capability
    /// dropped (`:172-177`).
    pub istio_init: bool,
}

/// The label that makes a namespace enforce a Pod Security level
/// (kubernetes/pod-security-admission `api/constants.go:40`
/// `EnforceLevelLabel`; the levels `:22-24`).
pub const POD_SECURITY_ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// The labels of a namespace enforcing `level`; none for `None`.
pub fn pod_security_labels(level: Option<PodSecurityLevel>) -> StringMap {
    level
        .map(|l| string_map(&[(POD_SECURITY_ENFORCE_LABEL, l.as_str())]))
        .unwrap_or_default()
}

/// The ports clients connect to: the Service's, else the pods'.
pub fn public_ports(config: &Config) -> (u16, u16) {
    public_ports_of(&config.deploykf_core.deploykf_istio_gateway)
}

/// [`public_ports`] of one gateway.
pub fn public_ports_of(gw: &GatewayComponent) -> (u16, u16) {
    let p = gw.gateway.ports;
    (
        gw.gateway_service.ports.http.unwrap_or(p.http),
        gw.gateway_service.ports.https.unwrap_or(p.https),
    )
}

/// The host an app is served on: its subdomain of the gateway hostname,
/// else the hostname.
pub fn app_host(config: &Config, app: &App) -> String {
    let host = &config.deploykf_core.deploykf_istio_gateway.gateway.hostname;
    match &app.subdomain {
        Some(s) => format!("{s}.{host}"),
        None => host.clone(),
    }
}

/// The path prefix an app claims on its host.
pub fn app_prefix(app: &App) -> &str {
    app.path.as_deref().unwrap_or("/")
}

/// Path prefixes the login flow serves on the main host.
pub fn login_paths(config: &Config) -> Vec<&'static str> {
    let a = &config.deploykf_core.deploykf_auth;
    let mut out = Vec::new();
    if a.common.enabled {
        if a.dex.enabled {
            out.push("/dex");
        }
        out.push("/oauth2");
    }
    out
}

/// `<name>.<namespace>.svc.cluster.local`.
pub fn service_host(name: &str, namespace: &str) -> String {
    format!("{name}.{namespace}.svc.cluster.local")
}

/// Settings deployKF requires, as (path under the istiod subchart's
/// values, value). They win over `meshConfig` and `valuesOverrides`.
pub fn required_istio_settings() -> Vec<(Vec<&'static str>, Value)> {
    let proxy = |k: &'static str| {
        (
            vec!["meshConfig", "defaultConfig", "proxyMetadata", k],
            json!("true"),
        )
    };
    vec![
        (
            vec![
                "meshConfig",
                "defaultConfig",
                "holdApplicationUntilProxyStarts",
            ],
            json!(true),
        ),
        proxy("ISTIO_META_DNS_CAPTURE"),
        proxy("ISTIO_META_DNS_AUTO_ALLOCATE"),
        (
            vec!["sidecarInjectorWebhook", "enableNamespacesByDefault"],
            json!(false),
        ),
    ]
}

/// A label or annotation map from pairs.
pub fn string_map(pairs: &[(&str, &str)]) -> StringMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn public_url(https: bool, host: &str, http_port: u16, https_port: u16) -> String {
    match (https, https_port, http_port) {
        (true, 443, _) => format!("https://{host}/"),
        (true, p, _) => format!("https://{host}:{p}/"),
        (false, _, 80) => format!("http://{host}/"),
        (false, _, p) => format!("http://{host}:{p}/"),
    }
}

/// The gateway-name label: Istio treats a pod as an instance of the
/// Kubernetes Gateway named by its value, and attaches `targetRefs`
/// policies to it only then (istio/istio 1.30.3
/// `pilot/pkg/model/policyattachment.go:104-107` `workloadGatewayName`,
/// `:128-136`: without it a policy with targetRefs is ignored).
pub const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";

/// A Go duration (`config::text::GO_DURATION`, what `apps[].timeout`
/// accepts) as a Gateway API Duration (GEP-2257: `^([0-9]{1,5}(h|m|s|ms)){1,4}$`,
/// kubernetes-sigs/gateway-api v1.5.1 `apis/v1/shared_types.go:867-871`),
/// the same length of time exactly: `1.5s` is `1s500ms`, `90m` is
/// `1h30m`. `Err` says why it has no such form (a part below a
/// millisecond, or more than 99999 hours).
pub fn gateway_api_duration(go: &str) -> Result<String, String> {
    const UNITS: &[(&str, u128)] = &[
        ("ns", 1),
        ("us", 1_000),
        ("\u{b5}s", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let mut total: u128 = 0;
    let mut rest = go;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, s)| *s)
            .ok_or_else(|| format!("`{go}` is not a Go duration"))?;
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if int.is_empty() && frac.is_empty() {
            return Err(format!("`{go}` is not a Go duration"));
        }
        let parse = |s: &str| -> Result<u128, String> {
            if s.is_empty() {
                Ok(0)
            } else {
                s.parse::<u128>()
                    .map_err(|_| format!("`{go}` is too long a duration"))
            }
        };
        // The fraction, exactly: digits / 10^len of the unit, which must
        // come out in whole nanoseconds.
        let digits = frac.len() as u32;
        let pow = 10u128
            .checked_pow(digits)
            .ok_or_else(|| format!("`{go}` has too many decimals"))?;
        let frac_ns = parse(frac)? * scale;
        if !frac_ns.is_multiple_of(pow) {
            return Err(format!("`{go}` is not a whole number of nanoseconds"));
        }
        total = parse(int)?
            .checked_mul(scale)
            .and_then(|v| v.checked_add(frac_ns / pow))
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{go}` is too long a duration"))?;
        rest = tail;
    }
    const MS: u128 = 1_000_000;
    if !total.is_multiple_of(MS) {
        return Err(format!(
            "the Gateway API counts durations in whole milliseconds (GEP-2257), and `{go}` is not a whole number of them"
        ));
    }
    let mut ms = total / MS;
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        let n = ms / size;
        ms %= size;
        if n > 0 {
            if n > 99_999 {
                return Err(format!(
                    "`{go}` is longer than the Gateway API's longest duration (99999h, GEP-2257)"
                ));
            }
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    Ok(out)
}

/// `<scheme>://<host>[:port]` as users reach `host`.
pub fn base_url(gw: &GatewayFacts, host: &str) -> String {
    gw.public_url
        .replacen(&gw.hostname, host, 1)
        .trim_end_matches('/')
        .to_string()
}

impl Facts {
    /// The facts of the install (of a gateway's view of it, for
    /// [`GatewayView::facts`]).
    pub fn derive(config: &Config) -> Facts {
        let gateway = gateway(config);
        let apps = config
            .deploykf_core
            .deploykf_istio_gateway
            .apps
            .iter()
            .map(|app| AppFacts {
                name: app.name.clone(),
                namespace: app.namespace.clone(),
                host: app_host(config, app),
                path: app.path.clone(),
                selector: app.selector.clone(),
                target_port: app.target_port,
                public: app.auth == AppAuth::None,
            })
            .collect();
        let login = LoginFacts {
            enabled: config.deploykf_core.deploykf_auth.common.enabled,
            paths: login_paths(config),
        };
        let istio = &config.deploykf_dependencies.istio;
        let injection_labels = if istio.revision.is_empty() {
            string_map(&[("istio-injection", "enabled")])
        } else {
            string_map(&[("istio.io/rev", &istio.revision)])
        };
        let ambient = istio.dataplane_mode == DataplaneMode::Ambient;
        let istio = IstioFacts {
            managed: istio.common.enabled,
            namespace: istio.common.namespace.clone(),
            revision: istio.revision.clone(),
            mesh_labels: if ambient {
                string_map(&[("istio.io/dataplane-mode", "ambient")])
            } else {
                injection_labels.clone()
            },
            injection_labels,
            ambient,
            istio_init: !ambient && !istio.cni.enabled,
        };
        Facts {
            gateway,
            apps,
            login,
            istio,
        }
    }
}

fn gateway(config: &Config) -> GatewayFacts {
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let g = &gw.gateway;
    let (public_http, public_https) = public_ports(config);
    let user_credential = g.tls.credential_name.clone().filter(|c| !c.is_empty());
    let hosts = if g.tls.match_sni {
        // The main host, then every subdomain app's host, sorted.
        let mut sub: Vec<String> = gw
            .apps
            .iter()
            .filter(|a| a.subdomain.is_some())
            .map(|a| format!("*/{}", app_host(config, a)))
            .collect();
        sub.sort();
        let mut hosts = vec![format!("*/{}", g.hostname)];
        if g.wildcard_host {
            hosts.push(format!("*/*.{}", g.hostname));
        }
        hosts.extend(sub);
        hosts
    } else {
        vec!["*".to_string()]
    };
    let http_hosts = hosts
        .iter()
        .map(|h| format!("./{}", h.strip_prefix("*/").unwrap_or(h)))
        .collect();
    let object_namespace = g
        .namespace
        .clone()
        .unwrap_or_else(|| gw.common.namespace.clone());
    GatewayFacts {
        gateway_api: gw.api == GatewayApi::GatewayApi,
        namespace: gw.common.namespace.clone(),
        name: g.name.clone(),
        reference: format!("{object_namespace}/{}", g.name),
        redirect_reference: format!("{}/{}-https-redirect", gw.common.namespace, g.name),
        object_namespace,
        redirect_name: format!("{}-https-redirect", g.name),
        names: GatewayNames::new(&g.name),
        hostname: g.hostname.clone(),
        hosts,
        http_hosts,
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
        principal: gateway_principal(gw),
        auth: GatewayAuth::Login,
    }
}

/// The SPIFFE principal of a gateway's pods: its Deployment's
/// ServiceAccount in its namespace.
pub fn gateway_principal(gw: &GatewayComponent) -> String {
    format!(
        "cluster.local/ns/{}/sa/{}",
        gw.common.namespace, gw.gateway_deployment.service_account.name
    )
}

/// One gateway of the install, as its own component: the primary
/// (`index` `None`) or `additionalGateways[index]`, with the primary's
/// section keys that every gateway shares (namespace, `api`, charts,
/// network policies) and its own gateway, Deployment, Service and apps.
#[derive(Debug, Clone)]
pub struct GatewayView {
    pub index: Option<usize>,
    /// Its values path: the primary's section, or its item.
    pub path: ValuePath,
    pub auth: GatewayAuth,
    pub component: GatewayComponent,
}

/// The values section of the primary gateway.
pub const GATEWAY_SECTION: &str = "deploykf_core.deploykf_istio_gateway";

/// Every gateway, the primary first.
pub fn gateways(config: &Config) -> Vec<GatewayView> {
    let primary = &config.deploykf_core.deploykf_istio_gateway;
    let section = ValuePath::keys(GATEWAY_SECTION);
    let mut out = vec![GatewayView {
        index: None,
        path: section.clone(),
        auth: GatewayAuth::Login,
        component: primary.clone(),
    }];
    for (i, a) in primary.additional_gateways.iter().enumerate() {
        let mut component = primary.clone();
        component.additional_gateways = Vec::new();
        component.gateway = a.gateway.clone();
        component.gateway_service = a.gateway_service.clone();
        component.gateway_deployment = a.gateway_deployment.clone();
        component.apps = a.apps.clone();
        // The primary's own: its extraManifests, patches, chart
        // overrides and namespace-wide policies (rendered once).
        component.common.extra_manifests = Vec::new();
        component.patches = Vec::new();
        component.common.values_overrides = Map::new();
        component.namespace_zero_trust = Some(false);
        out.push(GatewayView {
            index: Some(i),
            path: section.key("additionalGateways").index(i),
            auth: a.auth,
            component,
        });
    }
    out
}

impl GatewayView {
    /// The values path of one of its keys (dotted, under its section or
    /// item): `v.at("gateway.ports.https")`. Every key a rule names this
    /// way is checked against the schema by `rules::gateway`'s tests.
    pub fn at(&self, key: &str) -> ValuePath {
        let mut p = self.path.clone();
        for k in key.split('.').filter(|k| !k.is_empty()) {
            p = p.key(k);
        }
        p
    }

    /// The config as this gateway's component reads it: the primary's
    /// section replaced by this gateway's.
    pub fn config(&self, config: &Config) -> Config {
        let mut c = config.clone();
        c.deploykf_core.deploykf_istio_gateway = self.component.clone();
        c
    }

    /// The facts as this gateway's component reads them: its own gateway
    /// and apps; the login flow's paths only where it is served (the
    /// primary; `login` gateways send users there).
    pub fn facts(&self, config: &Config) -> Facts {
        if self.index.is_none() {
            return Facts::derive(config);
        }
        let own = self.config(config);
        let mut f = Facts::derive(&own);
        let g = &mut f.gateway;
        g.auth = self.auth;
        if g.certificate_managed {
            g.tls_credential_name = format!("{}-cert", g.name);
        }
        f.login.paths = Vec::new();
        if self.auth == GatewayAuth::None {
            f.login.enabled = false;
        }
        f
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

    #[test]
    fn go_durations_as_gateway_api_durations() {
        for (go, want) in [
            ("10s", "10s"),
            ("1.5s", "1s500ms"),
            ("90m", "1h30m"),
            ("1h0m0s", "1h"),
            ("0s", "0s"),
            ("2500ms", "2s500ms"),
            ("1500000us", "1s500ms"),
            ("0.001s", "1ms"),
            ("36h", "36h"),
            ("1.25h", "1h15m"),
        ] {
            assert_eq!(gateway_api_duration(go).as_deref(), Ok(want), "{go}");
        }
        for bad in ["100us", "1.0005s", "1ns", "100000h", "5x"] {
            assert!(gateway_api_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn longest_derived_gateway_name() {
        assert_eq!(GatewayNames::new("gw").longest(), "gw-xff-num-trusted-hops");
    }
}

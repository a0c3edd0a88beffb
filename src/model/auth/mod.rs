//! The auth component (`deploykf_core.deploykf_auth`): dex or an external
//! issuer, oauth2-proxy behind Istio ext-authz, the gateway's JWT
//! verification and login policies, and the Secrets generated in the
//! cluster. Split by concern: [`dex`] and [`oauth2_proxy`] build each
//! server's configuration (as values, never as text), [`policies`] the
//! bodies of the gateway's RequestAuthentication and CUSTOM/DENY
//! policies. This module ties them into the [`AuthModel`] templates read.

pub mod dex;
pub mod oauth2_proxy;
pub mod policies;

use crate::component::{
    Delivery, Descriptor, FanOut, Input, Overrides, Packaging, Part, IDENTITY_GATEWAYS,
    LOGIN_GATEWAYS,
};
use crate::config::{Config, PulledImage, SecretRef};
use crate::facts::{
    DEX_PORT, GATEWAY_NAME_LABEL, OAUTH2_PROXY_PORT, REMOTE_JWKS_ENV, REMOTE_JWKS_MODE,
};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const DEX_TELEMETRY_PORT: u16 = 5558;

const WHY_NO_OVERRIDES: &str =
    "meshgen renders dex and oauth2-proxy as plain manifests; use the documented keys, or `extraManifests`";

pub static COMPONENT: Descriptor = Descriptor {
    id: "deploykf-auth",
    summary: "the login: oauth2-proxy (Istio's ext-authz provider) and dex (the OpenID issuer), in a deny-by-default namespace",
    key: "auth",
    section: "deploykf_core.deploykf_auth",
    templates: "manifests/deploykf-core/deploykf-auth",
    wave: 10,
    packaging: Packaging::Kustomize,
    delivery: Delivery::PLAIN,
    overrides: Overrides::Unused(WHY_NO_OVERRIDES),
    fan_out: &[FanOut {
        placeholder: "secret",
        collection: &["generated_secrets"],
        within: None,
    }],
    enabled: |c| c.deploykf_core.deploykf_auth.common.enabled,
    namespace: |c| Some(c.deploykf_core.deploykf_auth.common.namespace.clone()),
    extra_manifests: |c| &c.deploykf_core.deploykf_auth.common.extra_manifests,
    values_overrides: |c| Some(&c.deploykf_core.deploykf_auth.common.values_overrides),
    patches: |c| &c.deploykf_core.deploykf_auth.patches,
    rules: |ctx, f| {
        crate::rules::auth::check(ctx.config, ctx.values, ctx.sources, &mut f.errors);
        crate::rules::auth::check_redirect_uris(ctx, f);
    },
    derive,
    more: crate::component::single,
    shards: crate::component::no_shards,
    contribute,
};

/// What auth adds to others: its ext-authz provider to the mesh config
/// (the login flow's, `extensionProvider.name`), and istiod's JWKS mode
/// for dex's keys.
fn contribute(config: &Config, _: Option<usize>) -> crate::component::Contributions {
    let mut out = crate::component::Contributions {
        extension_providers: ext_authz_provider(config).into_iter().collect(),
        ..Default::default()
    };
    let a = &config.deploykf_core.deploykf_auth;
    if a.common.enabled && a.dex.enabled {
        // dex's keys are fetched by the gateway's proxy through the mesh
        // (mTLS), not by istiod: istiod is outside the mesh and dex's
        // STRICT mTLS would refuse it. External issuers are still fetched
        // by istiod.
        out.istiod_env
            .insert(REMOTE_JWKS_ENV.into(), serde_json::json!(REMOTE_JWKS_MODE));
    }
    out
}

/// The mesh config's `extensionProviders` entry of the login flow
/// (oauth2-proxy as Envoy's ext-authz service); `None` with auth off.
fn ext_authz_provider(config: &Config) -> Option<Value> {
    let a = &config.deploykf_core.deploykf_auth;
    if !a.common.enabled {
        return None;
    }
    let scheme = if config
        .deploykf_core
        .deploykf_istio_gateway
        .gateway
        .tls
        .clients_use_https
    {
        "https"
    } else {
        "http"
    };
    Some(serde_json::json!({
        "name": a.extension_provider.name,
        "envoyExtAuthzHttp": {
            "service": crate::facts::service_host("oauth2-proxy", &a.common.namespace),
            "port": OAUTH2_PROXY_PORT,
            // `accept`: oauth2-proxy answers 401 to `application/json`
            // (API) requests instead of a login redirect.
            "includeRequestHeadersInCheck": ["accept", "cookie", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"],
            "includeAdditionalHeadersInCheck": {
                "X-Auth-Request-Redirect": format!("{scheme}://%REQ(:authority)%%REQ(:path)%"),
            },
            "headersToUpstreamOnAllow": ["authorization"],
            "headersToDownstreamOnAllow": ["set-cookie"],
            "headersToDownstreamOnDeny": ["content-type", "set-cookie"],
        },
    }))
}

/// An environment variable read from a Secret.
#[derive(Debug, Clone, Serialize)]
pub struct SecretEnv {
    pub name: String,
    pub secret: String,
    pub key: String,
}

/// What a generated Secret holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretKind {
    /// One random value under `key`.
    Random,
    /// A random password under `password` and its bcrypt hash under `key`.
    Password,
}

/// A Secret a Job creates in the cluster when it does not exist.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratedSecret {
    /// Name of the Job, its ServiceAccount, Role and RoleBinding (and the
    /// output file): at most 63 characters.
    pub name: String,
    pub secret: String,
    pub kind: SecretKind,
    pub key: String,
}

/// A Secret of the auth namespace the user creates, and what reads it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RequiredSecret {
    pub secret: String,
    /// Its keys, in the order first read; `file` keys hold a file's text
    /// (a dex connector's YAML config), the others one value.
    pub keys: Vec<RequiredKey>,
    /// `dex`, `oauth2-proxy` or both.
    pub readers: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RequiredKey {
    pub key: String,
    pub file: bool,
}

/// [`RequiredSecret`]s of what the servers read: environment variables
/// and mounted files, minus the Secrets a Job generates.
fn required_secrets(
    servers: &[(&'static str, Option<&ServerModel>)],
    generated: &[GeneratedSecret],
) -> Vec<RequiredSecret> {
    let mut out: Vec<RequiredSecret> = Vec::new();
    let mut add = |reader: &'static str, secret: &str, key: &str, file: bool| {
        if generated.iter().any(|g| g.secret == secret) {
            return;
        }
        let i = match out.iter().position(|r| r.secret == secret) {
            Some(i) => i,
            None => {
                out.push(RequiredSecret {
                    secret: secret.to_string(),
                    keys: Vec::new(),
                    readers: Vec::new(),
                });
                out.len() - 1
            }
        };
        let r = &mut out[i];
        if !r.keys.iter().any(|k| k.key == key) {
            r.keys.push(RequiredKey {
                key: key.to_string(),
                file,
            });
        }
        if !r.readers.contains(&reader) {
            r.readers.push(reader);
        }
    };
    for (reader, server) in servers {
        let Some(server) = server else { continue };
        for e in &server.env {
            add(reader, &e.secret, &e.key, false);
        }
        for m in server.assembly.iter().flat_map(|a| &a.secrets) {
            add(reader, &m.secret, &m.key, m.dir.starts_with("connector"));
        }
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct StaticUser {
    pub email: String,
    pub secret: String,
    pub key: String,
}

/// oauth2-proxy or dex: its image, its configuration file and the
/// environment it reads from Secrets.
#[derive(Debug, Clone, Serialize)]
pub struct ServerModel {
    pub image: String,
    pub pull_policy: String,
    /// The configuration file: dex's `config.yaml` (made by the emitter) or
    /// oauth2-proxy's `oauth2_proxy.cfg` (TOML; every value JSON-quoted).
    pub config: String,
    /// Changes with the configuration, so that the pods restart to read it.
    pub config_digest: String,
    pub env: Vec<SecretEnv>,
    /// dex only: the configuration is assembled in the pod (a plain
    /// password or a connector config read from a Secret).
    pub assembly: Option<dex::Assembly>,
}

impl ServerModel {
    fn new(image: &PulledImage, config: String, env: Vec<SecretEnv>) -> Self {
        ServerModel {
            image: image_ref(image),
            pull_policy: image.pull_policy.clone(),
            config_digest: sha256_hex(&config, 8),
            config,
            env,
            assembly: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthModel {
    pub enabled: bool,
    pub namespace: String,
    pub issuer: String,
    pub dex: Option<ServerModel>,
    pub oauth2_proxy: ServerModel,
    pub provider_name: String,
    /// The mesh config `extensionProviders` entry.
    pub provider: Value,
    /// `jwtRules` of the gateway's RequestAuthentication.
    pub jwt_rules: Vec<Value>,
    /// `rules` of the gateway's CUSTOM (login) policy.
    pub login_rules: Vec<Value>,
    /// `rules` of the gateway's DENY policy (no valid token, or a token
    /// without the identity claim).
    pub deny_rules: Vec<Value>,
    pub identity_headers: Vec<String>,
    pub generated_secrets: Vec<GeneratedSecret>,
    /// Secrets the user must create before applying (the output README's
    /// prerequisites): every one dex and oauth2-proxy read that no Job
    /// generates, by name.
    pub required_secrets: Vec<RequiredSecret>,
    /// dex's static users: login email and the Secret holding the password.
    pub static_users: Vec<StaticUser>,
    pub gateway_principal: String,
    /// The additional `login` gateways' principals: they send users to
    /// oauth2-proxy (ext-authz) as the primary does.
    pub more_login_principals: Vec<String>,
    /// The additional `login` and `token` gateways' principals: their
    /// proxies fetch dex's keys to verify tokens (`REMOTE_JWKS_MODE`).
    pub more_token_principals: Vec<String>,
    pub oauth2_proxy_principal: String,
    pub m2m_discovery_binding: bool,
    /// Render the JWKS relay (m2m on, `m2m.jwksUri` empty).
    pub jwks_relay: bool,
    pub jwks_relay_name: &'static str,
    pub jwks_relay_port: u16,
    pub jwks_relay_paths: [&'static str; 2],
    pub extra_manifests: Vec<Value>,
    pub dex_port: u16,
    pub dex_telemetry_port: u16,
    pub oauth2_proxy_port: u16,
    pub kubectl_image: String,
    pub kubectl_pull_policy: String,
    pub password_hasher_image: String,
    pub password_hasher_pull_policy: String,
    /// The namespace's mesh labels (`facts::IstioFacts::mesh_labels`).
    pub mesh_labels: crate::config::StringMap,
    /// The namespace's Pod Security label: "restricted", which every pod
    /// meshgen renders here meets (`tests/pod_security.rs`), unless the
    /// injector adds `istio-init` (`facts::IstioFacts::istio_init`), which
    /// only "privileged" admits: then none.
    pub pod_security: crate::config::StringMap,
    /// `dataplaneMode: ambient`: ztunnel, not a sidecar, enforces this
    /// namespace's policies (all L4: principals and ports, so no waypoint).
    pub ambient: bool,
    /// Some profile verifies dex's tokens itself (its `idpGroup` members'
    /// RequestAuthentication): its sidecars, or its waypoint in ambient,
    /// fetch dex's keys (`jwksUri` in the mesh is fetched by the verifying
    /// proxy, istio/istio 1.30.3 `pilot/pkg/security/authn/policy_applier.go:199-223`),
    /// so dex admits that fetch.
    pub profiles_fetch_dex_keys: bool,
    /// In ambient, the principals of the waypoints that fetch dex's keys:
    /// `waypoint` (the ServiceAccount of `Gateway/waypoint`) of each
    /// profile namespace with `idpGroup` members, no other namespace's
    /// (any editor's pod can run as a ServiceAccount named `waypoint`).
    pub dex_key_waypoints: Vec<String>,
    /// The path of dex's keys on its port ([`DEX_KEYS_PATH`]).
    pub dex_keys_path: &'static str,
    /// Its NetworkPolicies (`networkPolicy.enabled`; empty when off).
    pub network_policies: Vec<crate::model::netpol::NetworkPolicyModel>,
    /// `istio.egress.mode: registry-only`: this namespace keeps open egress
    /// (a namespace-wide `Sidecar` with ALLOW_ANY): dex's connectors and an
    /// external issuer are hosts meshgen can not list.
    pub egress_open: bool,
}

/// Where the issuer sends browsers back to oauth2-proxy: dex's client
/// registration and oauth2-proxy's `redirect_url` must agree on it.
fn oauth2_proxy_callback(gw: &crate::facts::GatewayFacts) -> String {
    format!(
        "{}/oauth2/callback",
        crate::facts::base_url(gw, &gw.hostname)
    )
}

/// dex's issuer path inside the mesh, where oauth2-proxy redeems codes
/// and the gateway fetches keys (`/token`, `/keys` below it).
/// Where dex serves its signing keys: under its issuer path `/dex`.
pub const DEX_KEYS_PATH: &str = "/dex/keys";

fn dex_internal_url(namespace: &str) -> String {
    format!(
        "http://{}:{DEX_PORT}/dex",
        crate::facts::service_host("dex", namespace)
    )
}

/// meshgen's JWKS relay: `kubectl proxy` serving the API server's
/// `/openid/v1/jwks` (and the discovery document) over in-mesh HTTP, as
/// Kubeflow's `common/oauth2-proxy/components/cluster-jwks-proxy` does.
pub const JWKS_RELAY: &str = "jwks-relay";
pub const JWKS_RELAY_PORT: u16 = 8080;
/// The paths the relay passes on (`kubectl proxy --accept-paths`).
pub const JWKS_RELAY_PATHS: [&str; 2] = ["/openid/v1/jwks", "/.well-known/openid-configuration"];

/// Where the gateway fetches the cluster's keys from the relay (its
/// Service listens on 80).
fn jwks_relay_url(namespace: &str) -> String {
    format!(
        "http://{}/openid/v1/jwks",
        crate::facts::service_host(JWKS_RELAY, namespace)
    )
}

fn image_ref(i: &PulledImage) -> String {
    format!("{}:{}", i.repository, i.tag)
}

/// The first `n` bytes of the sha256 of `text`, in hex.
fn sha256_hex(text: &str, n: usize) -> String {
    let mut hex = format!("{:x}", Sha256::digest(text.as_bytes()));
    hex.truncate(2 * n);
    hex
}

/// A Kubernetes name of at most 63 characters: `prefix + name`, shortened
/// with a hash of the whole when too long.
fn short_name(prefix: &str, name: &str) -> String {
    let full = format!("{prefix}{name}");
    if full.len() <= 63 {
        return full;
    }
    let hex = sha256_hex(&full, 4);
    let keep = full[..54].trim_end_matches(['-', '.']).to_string();
    format!("{keep}-{hex}")
}

fn secret_env(name: String, r: &SecretRef) -> SecretEnv {
    SecretEnv {
        name,
        secret: r.existing_secret.clone(),
        key: r.existing_secret_key.clone(),
    }
}

/// Secrets to generate in the cluster, in the order they are named.
#[derive(Default)]
struct Generated(Vec<GeneratedSecret>);

impl Generated {
    fn add(&mut self, r: &SecretRef, kind: SecretKind) {
        if r.generate_secret && !r.existing_secret.is_empty() {
            self.0.push(GeneratedSecret {
                name: short_name("generate-", &r.existing_secret),
                secret: r.existing_secret.clone(),
                kind,
                key: r.existing_secret_key.clone(),
            });
        }
    }
}

/// The issuer of the users' tokens: dex on the primary gateway's host,
/// else the external one.
pub fn issuer(config: &crate::config::Config, facts: &crate::facts::Facts) -> String {
    let a = &config.deploykf_core.deploykf_auth;
    if a.dex.enabled {
        format!(
            "{}/dex",
            crate::facts::base_url(&facts.gateway, &facts.gateway.hostname)
        )
    } else {
        a.oauth2_proxy.oidc.issuer_url.clone()
    }
}

fn derive(input: &Input) -> Part {
    let config = input.config;
    let facts = input.facts;
    let a = &config.deploykf_core.deploykf_auth;
    let ns = &a.common.namespace;
    let issuer = issuer(config, facts);
    let mut generated = Generated::default();
    let dex = a
        .dex
        .enabled
        .then(|| dex::derive(config, &facts.gateway, &issuer, &mut generated));
    let oauth2_proxy = oauth2_proxy::derive(config, &facts.gateway, &issuer, &mut generated);
    let id = &a.identity;
    let policies = policies::derive(config, facts, &issuer);
    let required = required_secrets(
        &[("dex", dex.as_ref()), ("oauth2-proxy", Some(&oauth2_proxy))],
        &generated.0,
    );
    // The profile namespaces that verify dex's tokens themselves.
    let pg = &config.deploykf_core.deploykf_profiles_generator;
    let idp_namespaces: Vec<String> = (pg.profiles.iter())
        .filter(|_| a.dex.enabled)
        .filter(|p| p.members.iter().any(|m| m.idp_group.is_some()))
        .map(|p| format!("{}{}", pg.profile_defaults.profile_name_prefix, p.name))
        .collect();
    Part::of(&AuthModel {
        enabled: a.common.enabled,
        namespace: ns.clone(),
        issuer,
        dex,
        oauth2_proxy,
        provider_name: a.extension_provider.name.clone(),
        provider: ext_authz_provider(config).unwrap_or(Value::Null),
        jwt_rules: policies.jwt_rules,
        login_rules: policies.login_rules,
        deny_rules: policies.deny_rules,
        identity_headers: vec![id.user_header.clone(), id.groups_header.clone()],
        required_secrets: required,
        generated_secrets: generated.0,
        static_users: if a.dex.enabled {
            a.dex
                .static_passwords
                .iter()
                .map(|p| StaticUser {
                    email: p.email.clone(),
                    secret: p.password.existing_secret.clone(),
                    key: p.password.existing_secret_key.clone(),
                })
                .collect()
        } else {
            Vec::new()
        },
        gateway_principal: input.contributions.primary_gateway_principal(),
        more_login_principals: input
            .contributions
            .additional_gateways_with(LOGIN_GATEWAYS)
            .map(|g| g.principal.clone())
            .collect(),
        more_token_principals: input
            .contributions
            .additional_gateways_with(IDENTITY_GATEWAYS)
            .map(|g| g.principal.clone())
            .collect(),
        oauth2_proxy_principal: format!("cluster.local/ns/{ns}/sa/oauth2-proxy"),
        m2m_discovery_binding: a.m2m.enabled && a.m2m.allow_anonymous_discovery,
        jwks_relay: a.m2m.enabled && a.m2m.jwks_uri.is_empty(),
        jwks_relay_name: JWKS_RELAY,
        jwks_relay_port: JWKS_RELAY_PORT,
        jwks_relay_paths: JWKS_RELAY_PATHS,
        extra_manifests: input.extra_manifests.to_vec(),
        mesh_labels: facts.istio.mesh_labels.clone(),
        pod_security: crate::facts::pod_security_labels(
            (!facts.istio.istio_init).then_some(crate::config::PodSecurityLevel::Restricted),
        ),
        ambient: facts.istio.ambient,
        profiles_fetch_dex_keys: !idp_namespaces.is_empty(),
        dex_key_waypoints: (idp_namespaces.iter())
            .filter(|_| facts.istio.ambient)
            .map(|ns| format!("cluster.local/ns/{ns}/sa/waypoint"))
            .collect(),
        dex_keys_path: DEX_KEYS_PATH,
        network_policies: network_policies(input, &idp_namespaces),
        // In ambient nothing here has a sidecar to read a Sidecar, and
        // ztunnel enforces no REGISTRY_ONLY: the namespace's egress is open.
        egress_open: config.deploykf_dependencies.istio.egress.mode
            == crate::config::EgressMode::RegistryOnly
            && !input.facts.istio.ambient,
        dex_port: DEX_PORT,
        dex_telemetry_port: DEX_TELEMETRY_PORT,
        oauth2_proxy_port: OAUTH2_PROXY_PORT,
        kubectl_image: image_ref(&a.images.kubectl),
        kubectl_pull_policy: a.images.kubectl.pull_policy.clone(),
        password_hasher_image: image_ref(&a.images.password_hasher),
        password_hasher_pull_policy: a.images.password_hasher.pull_policy.clone(),
    })
}

/// The auth namespace's NetworkPolicies: nothing but what its
/// AuthorizationPolicies admit, on L4. dex admits the gateway (its /dex
/// routes and keys) and oauth2-proxy (redeeming codes) on its port, and the
/// profiles in `idp_namespaces` (their sidecars, or waypoints in ambient,
/// fetch its keys: see [`AuthModel::profiles_fetch_dex_keys`]); oauth2-proxy
/// admits the gateway (ext-authz); the JWKS relay the gateway and those
/// profiles. In ambient every port adds HBONE and the kubelet's probes come
/// from istio-cni's address (see `model::netpol`).
fn network_policies(
    input: &Input,
    idp_namespaces: &[String],
) -> Vec<crate::model::netpol::NetworkPolicyModel> {
    use crate::model::netpol;
    let config = input.config;
    let facts = input.facts;
    let a = &config.deploykf_core.deploykf_auth;
    if !a.network_policy.enabled {
        return Vec::new();
    }
    let ambient = facts.istio.ambient;
    let name = |n: &str| crate::facts::string_map(&[("app.kubernetes.io/name", n)]);
    let gateway = netpol::pods_in(&facts.gateway.namespace, &facts.gateway.selector_labels);
    // The additional gateways' pods: `login` ones reach oauth2-proxy, and
    // `login` and `token` ones fetch the keys they verify tokens with.
    let more = |login_only: bool| -> Vec<Value> {
        input
            .contributions
            .additional_gateways_with(if login_only {
                LOGIN_GATEWAYS
            } else {
                IDENTITY_GATEWAYS
            })
            .map(|g| g.pods.clone())
            .collect()
    };
    // Who verifies tokens itself in a profile: every pod's sidecar, or the
    // namespace's waypoint (`Gateway/waypoint`'s pods carry its name:
    // istio/istio 1.30.3 `manifests/charts/istio-control/istio-discovery/files/waypoint.yaml:69`).
    let key_fetchers = |namespaces: &[String]| -> Option<Value> {
        (!namespaces.is_empty()).then(|| {
            let waypoint = crate::facts::string_map(&[(GATEWAY_NAME_LABEL, "waypoint")]);
            if ambient {
                netpol::pods_in_namespaces(namespaces, &waypoint)
            } else {
                netpol::namespaces(namespaces)
            }
        })
    };
    let mut out = vec![netpol::default_deny_ingress()];
    if ambient {
        out.push(netpol::allow_namespace(
            "kubelet-probes",
            vec![netpol::probe_rule()],
        ));
    }
    if a.dex.enabled {
        let from = std::iter::once(gateway.clone())
            .chain(more(false))
            .chain([json!({"podSelector": {"matchLabels": name("oauth2-proxy")}})])
            .chain(key_fetchers(idp_namespaces))
            .collect();
        out.push(netpol::allow(
            "dex",
            &name("dex"),
            from,
            netpol::tcp_ports(&[DEX_PORT], ambient),
        ));
    }
    out.push(netpol::allow(
        "oauth2-proxy",
        &name("oauth2-proxy"),
        std::iter::once(gateway.clone()).chain(more(true)).collect(),
        netpol::tcp_ports(&[OAUTH2_PROXY_PORT], ambient),
    ));
    if a.m2m.enabled && a.m2m.jwks_uri.is_empty() {
        // The profiles whose RequestAuthentication names the relay: those
        // with `idpGroup` members, whoever issues their users' tokens.
        let pg = &config.deploykf_core.deploykf_profiles_generator;
        let relay_fetchers: Vec<String> = (pg.profiles.iter())
            .filter(|p| p.members.iter().any(|m| m.idp_group.is_some()))
            .map(|p| format!("{}{}", pg.profile_defaults.profile_name_prefix, p.name))
            .collect();
        let from = std::iter::once(gateway)
            .chain(more(false))
            .chain(key_fetchers(&relay_fetchers))
            .collect();
        out.push(netpol::allow(
            JWKS_RELAY,
            &name(JWKS_RELAY),
            from,
            netpol::tcp_ports(&[JWKS_RELAY_PORT], ambient),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_fit_a_label() {
        assert_eq!(short_name("generate-", "abc"), "generate-abc");
        let long = short_name("generate-", &"x".repeat(80));
        assert!(long.len() <= 63, "{long}");
        assert_ne!(long, short_name("generate-", &"x".repeat(81)));
    }
}

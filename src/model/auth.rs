//! The login edge, derived once: dex's and oauth2-proxy's configuration
//! (built as values, never as text), the Istio extension provider, the
//! gateway's JWT rules and the rules of its CUSTOM and DENY policies, the
//! routes of the apps, and the Secrets generated in the cluster.
//!
//! Which requests are protected is computed here, from the declared apps:
//! everything the gateway serves except the login endpoints and the apps
//! declared `auth: none`. New hosts are protected by default.

use crate::config::{Config, SecretRef};
use crate::model::{GatewayModel, StringMap};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const DEX_PORT: u16 = 5556;
pub const DEX_TELEMETRY_PORT: u16 = 5558;
pub const OAUTH2_PROXY_PORT: u16 = 4180;

/// An environment variable read from a Secret.
#[derive(Debug, Clone, Serialize)]
pub struct SecretEnv {
    pub name: String,
    pub secret: String,
    pub key: String,
}

/// A Secret a Job creates in the cluster when it does not exist.
#[derive(Debug, Clone, Serialize)]
pub struct GeneratedSecret {
    /// Name of the Job, its ServiceAccount, Role and RoleBinding (and the
    /// output file): at most 63 characters.
    pub name: String,
    pub secret: String,
    /// `random`: one random value under `key`; `password`: a random
    /// password under `password` and its bcrypt hash under `key`.
    pub kind: &'static str,
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
}

/// One app behind the gateway, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct AppModel {
    pub name: String,
    pub namespace: String,
    /// The host it is served on.
    pub host: String,
    /// Its prefix on the main host (a route in the main VirtualService);
    /// `None` for a subdomain app, which has its own VirtualService.
    pub path: Option<String>,
    /// HTTP routes of its VirtualService (subdomain apps only).
    pub routes: Vec<Value>,
    pub selector: Option<StringMap>,
    pub target_port: u16,
    pub public: bool,
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
    pub gateway_principal: String,
    pub oauth2_proxy_principal: String,
    pub m2m_discovery_binding: bool,
    pub extra_manifests: Vec<Value>,
    pub dex_port: u16,
    pub dex_telemetry_port: u16,
    pub oauth2_proxy_port: u16,
    pub kubectl_image: String,
    pub kubectl_pull_policy: String,
    pub password_hasher_image: String,
    pub password_hasher_pull_policy: String,
}

/// Routes and policies of the gateway for the apps and the login flow.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeModel {
    /// HTTP routes of the main host's VirtualService, most specific first.
    pub main_routes: Vec<Value>,
    pub apps: Vec<AppModel>,
    /// Hosts of the Gateway servers' `hosts` (with the `*/` namespace).
    pub gateway_hosts: Vec<String>,
}

/// An issuer the gateway trusts: (issuer, the claim naming the user,
/// [(identity header, the claim it is copied from, if any)]).
type Issuer = (String, String, Vec<(String, Option<String>)>);

fn image(i: &crate::config::PulledImage) -> String {
    format!("{}:{}", i.repository, i.tag)
}

/// `<scheme>://<host>[:port]` as users reach `host`.
pub fn base_url(gw: &GatewayModel, host: &str) -> String {
    gw.public_url
        .replacen(&gw.hostname, host, 1)
        .trim_end_matches('/')
        .to_string()
}

/// The first `n` bytes of the sha256 of `text`, in hex.
fn sha256_hex(text: &str, n: usize) -> String {
    let mut hex = format!("{:x}", Sha256::digest(text.as_bytes()));
    hex.truncate(2 * n);
    hex
}

/// A short digest of a configuration, for a pod annotation.
fn digest(text: &str) -> String {
    sha256_hex(text, 8)
}

fn svc(name: &str, ns: &str) -> String {
    format!("{name}.{ns}.svc.cluster.local")
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

/// A stable, opaque dex user id for an email.
fn user_id(email: &str) -> String {
    let hex = sha256_hex(&email.to_ascii_lowercase(), 16);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn secret_env(name: String, r: &SecretRef) -> SecretEnv {
    SecretEnv {
        name,
        secret: r.existing_secret.clone(),
        key: r.existing_secret_key.clone(),
    }
}

/// `prefix*` as an AuthorizationPolicy path (same reach as a route prefix).
fn path_glob(prefix: &str) -> String {
    format!("{prefix}*")
}

/// A host and the same host with any port (the `:authority` carries the
/// port when it is not the scheme's default).
fn with_ports(host: &str) -> [String; 2] {
    [host.to_string(), format!("{host}:*")]
}

fn route(name: &str, prefix: &str, dest: &str, port: u16) -> serde_json::Map<String, Value> {
    let mut r = serde_json::Map::new();
    r.insert("name".into(), json!(name));
    r.insert("match".into(), json!([{"uri": {"prefix": prefix}}]));
    r.insert(
        "route".into(),
        json!([{"destination": {"host": dest, "port": {"number": port}}}]),
    );
    r
}

pub fn derive_edge(config: &Config, gw: &GatewayModel) -> EdgeModel {
    let a = &config.deploykf_core.deploykf_auth;
    let host = &gw.hostname;
    let remove = json!({"request": {"remove": [a.identity.user_header, a.identity.groups_header]}});
    let mut main_routes: Vec<(usize, String, Value)> = Vec::new();
    if a.enabled {
        if a.dex.enabled {
            let mut r = route("dex", "/dex", &svc("dex", &a.namespace), DEX_PORT);
            r.insert("headers".into(), remove.clone());
            main_routes.push((usize::MAX, "/dex".into(), Value::Object(r)));
        }
        let mut r = route(
            "oauth2-proxy",
            "/oauth2",
            &svc("oauth2-proxy", &a.namespace),
            OAUTH2_PROXY_PORT,
        );
        r.insert("headers".into(), remove.clone());
        main_routes.push((usize::MAX, "/oauth2".into(), Value::Object(r)));
    }
    let mut apps = Vec::new();
    let mut sub_hosts = Vec::new();
    for app in &config.deploykf_core.deploykf_istio_gateway.apps {
        let prefix = app.path.clone().unwrap_or_else(|| "/".into());
        let mut r = route(
            &app.name,
            &prefix,
            &svc(&app.service, &app.namespace),
            app.port,
        );
        if let Some(rw) = &app.rewrite {
            r.insert("rewrite".into(), json!({"uri": rw}));
        }
        if let Some(t) = &app.timeout {
            r.insert("timeout".into(), json!(t));
        }
        if let Some(rt) = &app.retries {
            r.insert("retries".into(), json!(rt));
        }
        let public = app.auth == "none";
        if public {
            // No identity reaches a public app, whatever the client sent.
            r.insert("headers".into(), remove.clone());
        }
        let (app_host, routes) = match &app.subdomain {
            Some(s) => {
                let h = format!("{s}.{host}");
                sub_hosts.push(format!("*/{h}"));
                (h, vec![Value::Object(r)])
            }
            None => {
                main_routes.push((prefix.len(), prefix.clone(), Value::Object(r)));
                (host.clone(), Vec::new())
            }
        };
        apps.push(AppModel {
            name: app.name.clone(),
            namespace: app.namespace.clone(),
            host: app_host,
            path: app.path.clone(),
            routes,
            selector: app.selector.clone(),
            target_port: app.target_port.unwrap_or(app.port),
            public,
        });
    }
    // Longest prefix first: Envoy takes the first route that matches.
    main_routes.sort_by(|x, y| y.0.cmp(&x.0).then_with(|| x.1.cmp(&y.1)));
    let mut gateway_hosts = vec![format!("*/{host}")];
    if !gw.hosts.iter().any(|h| h == "*") {
        sub_hosts.sort();
        gateway_hosts.extend(sub_hosts);
    } else {
        gateway_hosts = gw.hosts.clone();
    }
    EdgeModel {
        main_routes: main_routes.into_iter().map(|(_, _, r)| r).collect(),
        apps,
        gateway_hosts,
    }
}

/// The operations (hosts and paths) that need a logged-in user.
fn protected_operations(config: &Config, gw: &GatewayModel, edge: &EdgeModel) -> Vec<Value> {
    let a = &config.deploykf_core.deploykf_auth;
    let host = &gw.hostname;
    let mut not_paths: Vec<String> = Vec::new();
    if a.dex.enabled {
        not_paths.extend(["/dex".to_string(), "/dex/*".to_string()]);
    }
    not_paths.push("/oauth2/*".into());
    let mut public_hosts: Vec<String> = with_ports(host).to_vec();
    for app in &edge.apps {
        if !app.public {
            continue;
        }
        match &app.path {
            Some(p) => not_paths.push(path_glob(p)),
            None => public_hosts.extend(with_ports(&app.host)),
        }
    }
    vec![
        json!({"operation": {"hosts": with_ports(host), "notPaths": not_paths}}),
        json!({"operation": {"notHosts": public_hosts}}),
    ]
}

pub fn derive(
    config: &Config,
    gw: &GatewayModel,
    edge: &EdgeModel,
    extra_manifests: &[Value],
) -> AuthModel {
    let a = &config.deploykf_core.deploykf_auth;
    let g = &config.deploykf_core.deploykf_istio_gateway;
    let ns = &a.namespace;
    let main_url = base_url(gw, &gw.hostname);
    let dex_svc = svc("dex", ns);
    let dex_internal = format!("http://{dex_svc}:{DEX_PORT}/dex");
    let issuer = if a.dex.enabled {
        format!("{main_url}/dex")
    } else {
        a.oauth2_proxy.oidc.issuer_url.clone()
    };
    let mut generated = Vec::new();
    let mut generate = |r: &SecretRef, kind: &'static str| {
        if r.generate_secret && !r.existing_secret.is_empty() {
            generated.push(GeneratedSecret {
                name: short_name("generate-", &r.existing_secret),
                secret: r.existing_secret.clone(),
                kind,
                key: r.existing_secret_key.clone(),
            });
        }
    };

    let dex = a.dex.enabled.then(|| {
        let d = &a.dex;
        let mut env = Vec::new();
        let mut passwords = Vec::new();
        for (i, p) in d.static_passwords.iter().enumerate() {
            let var = format!("MESHGEN_DEX_PASSWORD_HASH_{i}");
            env.push(secret_env(var.clone(), &p.password));
            generate(&p.password, "password");
            let username = p.email.split('@').next().unwrap_or(&p.email);
            passwords.push(json!({
                "email": p.email,
                "hashFromEnv": var,
                "username": username,
                "userID": user_id(&p.email),
            }));
        }
        let mut clients = Vec::new();
        let c = &d.clients;
        for (var, client, redirect) in [
            (
                "MESHGEN_DEX_CLIENT_SECRET_OAUTH2_PROXY",
                &c.oauth2_proxy,
                format!("{main_url}/oauth2/callback"),
            ),
            (
                "MESHGEN_DEX_CLIENT_SECRET_MINIO_CONSOLE",
                &c.minio_console,
                format!(
                    "{}/oauth_callback",
                    base_url(gw, &format!("minio-console.{}", gw.hostname))
                ),
            ),
            (
                "MESHGEN_DEX_CLIENT_SECRET_ARGO_SERVER",
                &c.argo_server,
                format!(
                    "{}/oauth2/callback",
                    base_url(gw, &format!("argo-server.{}", gw.hostname))
                ),
            ),
        ] {
            if client.client_secret.existing_secret.is_empty() {
                continue;
            }
            env.push(secret_env(var.into(), &client.client_secret));
            generate(&client.client_secret, "random");
            clients.push(json!({
                "id": client.client_id,
                "name": client.client_id,
                "secretEnv": var,
                "redirectURIs": [redirect],
            }));
        }
        if c.kubeflow_pipelines_sdk.enabled {
            clients.push(json!({
                "id": c.kubeflow_pipelines_sdk.client_id,
                "name": c.kubeflow_pipelines_sdk.client_id,
                "public": true,
            }));
        }
        let mut connectors = Vec::new();
        for conn in &d.connectors {
            for (name, r) in &conn.env {
                env.push(secret_env(name.clone(), r));
            }
            connectors.push(json!({
                "type": conn.kind, "id": conn.id, "name": conn.name, "config": conn.config,
            }));
        }
        let mut cfg = json!({
            "issuer": issuer,
            "storage": {"type": "kubernetes", "config": {"inCluster": true}},
            "web": {"http": format!("0.0.0.0:{DEX_PORT}")},
            "telemetry": {"http": format!("0.0.0.0:{DEX_TELEMETRY_PORT}")},
            "expiry": {
                "idTokens": d.expiry.id_token,
                "refreshTokens": {
                    "validIfNotUsedFor": d.expiry.refresh_token.idle,
                    "absoluteLifetime": d.expiry.refresh_token.total,
                },
            },
            "oauth2": {"skipApprovalScreen": true},
            "enablePasswordDB": !passwords.is_empty(),
            "staticClients": clients,
        });
        if !passwords.is_empty() {
            cfg["staticPasswords"] = Value::Array(passwords);
        }
        if !connectors.is_empty() {
            cfg["connectors"] = Value::Array(connectors);
        }
        let config = crate::yaml::emit::document(&cfg);
        ServerModel {
            image: image(&a.images.dex),
            pull_policy: a.images.dex.pull_policy.clone(),
            config_digest: digest(&config),
            config,
            env,
        }
    });

    // oauth2-proxy
    let o = &a.oauth2_proxy;
    let scheme_https = gw.clients_use_https;
    let mut cfg: Vec<(&str, Value)> = vec![
        ("provider", json!("oidc")),
        ("oidc_issuer_url", json!(issuer)),
        (
            "client_id",
            json!(if a.dex.enabled {
                a.dex.clients.oauth2_proxy.client_id.clone()
            } else {
                o.oidc.client_id.clone()
            }),
        ),
        (
            "http_address",
            json!(format!("0.0.0.0:{OAUTH2_PROXY_PORT}")),
        ),
        ("reverse_proxy", json!(true)),
        ("upstreams", json!(["static://200"])),
        ("email_domains", json!(["*"])),
        ("redirect_url", json!(format!("{main_url}/oauth2/callback"))),
        ("cookie_name", json!(o.cookie.name)),
        ("cookie_expire", json!(o.cookie.expire)),
        ("cookie_refresh", json!(o.cookie.refresh)),
        ("cookie_secure", json!(scheme_https)),
        ("cookie_domains", json!([format!(".{}", gw.hostname)])),
        (
            "whitelist_domains",
            json!([format!("{}:*", gw.hostname), format!(".{}:*", gw.hostname)]),
        ),
        ("set_authorization_header", json!(true)),
        ("skip_provider_button", json!(!o.enable_sign_in_page)),
        ("silence_ping_logging", json!(true)),
    ];
    if a.dex.enabled {
        cfg.extend([
            ("scope", json!("openid email profile groups offline_access")),
            // Browsers log in at the public URL; tokens and keys are
            // fetched inside the mesh.
            ("skip_oidc_discovery", json!(true)),
            ("login_url", json!(format!("{issuer}/auth"))),
            ("redeem_url", json!(format!("{dex_internal}/token"))),
            ("oidc_jwks_url", json!(format!("{dex_internal}/keys"))),
        ]);
    } else {
        cfg.push(("scope", json!(o.oidc.scopes.join(" "))));
    }
    let config_text: String = cfg.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    let client_secret = if a.dex.enabled {
        &a.dex.clients.oauth2_proxy.client_secret
    } else {
        &o.oidc.client_secret
    };
    let oauth2_proxy = ServerModel {
        image: image(&a.images.oauth2_proxy),
        pull_policy: a.images.oauth2_proxy.pull_policy.clone(),
        config_digest: digest(&config_text),
        config: config_text,
        env: vec![
            secret_env("OAUTH2_PROXY_CLIENT_SECRET".into(), client_secret),
            secret_env("OAUTH2_PROXY_COOKIE_SECRET".into(), &o.cookie.secret),
        ],
    };
    generate(&o.cookie.secret, "random");

    let scheme = if scheme_https { "https" } else { "http" };
    let provider = json!({
        "name": a.extension_provider.name,
        "envoyExtAuthzHttp": {
            "service": svc("oauth2-proxy", ns),
            "port": OAUTH2_PROXY_PORT,
            "includeRequestHeadersInCheck": ["cookie", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"],
            "includeAdditionalHeadersInCheck": {
                "X-Auth-Request-Redirect": format!("{scheme}://%REQ(:authority)%%REQ(:path)%"),
            },
            "headersToUpstreamOnAllow": ["authorization"],
            "headersToDownstreamOnAllow": ["set-cookie"],
            "headersToDownstreamOnDeny": ["content-type", "set-cookie"],
        },
    });

    let id = &a.identity;
    let mut jwt_rules = Vec::new();
    let mut issuers: Vec<Issuer> = Vec::new();
    let mut user_rule = json!({
        "issuer": issuer,
        "forwardOriginalToken": true,
        "fromHeaders": [{"name": "Authorization", "prefix": "Bearer "}],
        "outputClaimToHeaders": [
            {"header": id.user_header, "claim": id.user_claim},
            {"header": id.groups_header, "claim": id.groups_claim},
        ],
    });
    if a.dex.enabled {
        user_rule["jwksUri"] = json!(format!("{dex_internal}/keys"));
        let mut aud = vec![a.dex.clients.oauth2_proxy.client_id.clone()];
        if a.dex.clients.kubeflow_pipelines_sdk.enabled {
            aud.push(a.dex.clients.kubeflow_pipelines_sdk.client_id.clone());
        }
        user_rule["audiences"] = json!(aud);
    } else {
        if !o.oidc.jwks_uri.is_empty() {
            user_rule["jwksUri"] = json!(o.oidc.jwks_uri);
        }
        user_rule["audiences"] = json!([o.oidc.client_id]);
    }
    jwt_rules.push(user_rule);
    issuers.push((
        issuer.clone(),
        id.user_claim.clone(),
        vec![
            (id.user_header.clone(), Some(id.user_claim.clone())),
            (id.groups_header.clone(), Some(id.groups_claim.clone())),
        ],
    ));
    if a.m2m.enabled {
        let mut rule = json!({
            "issuer": a.m2m.issuer,
            "jwksUri": a.m2m.jwks_uri,
            "forwardOriginalToken": true,
            "fromHeaders": [{"name": "Authorization", "prefix": "Bearer "}],
            "outputClaimToHeaders": [{"header": id.user_header, "claim": a.m2m.user_claim}],
        });
        if !a.m2m.audiences.is_empty() {
            rule["audiences"] = json!(a.m2m.audiences);
        }
        jwt_rules.push(rule);
        issuers.push((
            a.m2m.issuer.clone(),
            a.m2m.user_claim.clone(),
            vec![
                (id.user_header.clone(), Some(a.m2m.user_claim.clone())),
                (id.groups_header.clone(), None),
            ],
        ));
    }

    let ops = protected_operations(config, gw, edge);
    let login_rules = vec![json!({
        "to": ops,
        // A request that carries a token is verified by the gateway
        // itself (SDKs, machine identities); browsers carry a cookie.
        "when": [{"key": "request.headers[authorization]", "notValues": ["*"]}],
    })];
    let mut deny_rules = vec![json!({
        "from": [{"source": {"notRequestPrincipals": ["*"]}}],
        "to": ops,
    })];
    for (iss, user_claim, headers) in &issuers {
        let from = json!([{"source": {"requestPrincipals": [format!("{iss}/*")]}}]);
        // A token that does not name the user.
        deny_rules.push(json!({
            "from": from,
            "to": ops,
            "when": [{"key": format!("request.auth.claims[{user_claim}]"), "notValues": ["*"]}],
        }));
        // An identity header the token did not fill: the client sent it.
        for (header, claim) in headers {
            let mut when =
                vec![json!({"key": format!("request.headers[{header}]"), "values": ["*"]})];
            if let Some(c) = claim {
                when.push(json!({"key": format!("request.auth.claims[{c}]"), "notValues": ["*"]}));
            }
            deny_rules.push(json!({"from": from, "to": ops, "when": when}));
        }
    }
    let gateway_principal = format!(
        "cluster.local/ns/{}/sa/{}",
        g.namespace, g.gateway_deployment.service_account.name
    );
    AuthModel {
        enabled: a.enabled,
        namespace: ns.clone(),
        issuer,
        dex,
        oauth2_proxy,
        provider_name: a.extension_provider.name.clone(),
        provider,
        jwt_rules,
        login_rules,
        deny_rules,
        identity_headers: vec![id.user_header.clone(), id.groups_header.clone()],
        generated_secrets: generated,
        gateway_principal,
        oauth2_proxy_principal: format!("cluster.local/ns/{ns}/sa/oauth2-proxy"),
        m2m_discovery_binding: a.m2m.enabled && a.m2m.allow_anonymous_discovery,
        extra_manifests: extra_manifests.to_vec(),
        dex_port: DEX_PORT,
        dex_telemetry_port: DEX_TELEMETRY_PORT,
        oauth2_proxy_port: OAUTH2_PROXY_PORT,
        kubectl_image: image(&a.images.kubectl),
        kubectl_pull_policy: a.images.kubectl.pull_policy.clone(),
        password_hasher_image: image(&a.images.password_hasher),
        password_hasher_pull_policy: a.images.password_hasher.pull_policy.clone(),
    }
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

    #[test]
    fn user_ids_are_stable_uuids() {
        let a = user_id("Admin@example.com");
        assert_eq!(a, user_id("admin@example.com"));
        assert_eq!(a.len(), 36);
    }
}

//! oauth2-proxy's configuration (`oauth2_proxy.cfg`, TOML with every value
//! JSON-quoted): the OIDC client of dex or of an external issuer, cookies
//! for the gateway's hostname and its subdomains. The client and cookie
//! secrets come from existing Secrets through the environment.

use super::{secret_env, Generated, SecretKind, ServerModel};
use crate::config::Config;
use crate::facts::{GatewayFacts, OAUTH2_PROXY_PORT};
use serde_json::{json, Value};

pub(super) fn derive(
    config: &Config,
    gw: &GatewayFacts,
    issuer: &str,
    generated: &mut Generated,
) -> ServerModel {
    let a = &config.deploykf_core.deploykf_auth;
    let o = &a.oauth2_proxy;
    let dex_internal = super::dex_internal_url(&a.namespace);
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
        ("redirect_url", json!(super::oauth2_proxy_callback(gw))),
        ("cookie_name", json!(o.cookie.name)),
        ("cookie_expire", json!(o.cookie.expire)),
        ("cookie_refresh", json!(o.cookie.refresh)),
        ("cookie_secure", json!(gw.clients_use_https)),
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
    let text: String = cfg.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    let client_secret = if a.dex.enabled {
        &a.dex.clients.oauth2_proxy.client_secret
    } else {
        &o.oidc.client_secret
    };
    let env = vec![
        secret_env("OAUTH2_PROXY_CLIENT_SECRET".into(), client_secret),
        secret_env("OAUTH2_PROXY_COOKIE_SECRET".into(), &o.cookie.secret),
    ];
    generated.add(&o.cookie.secret, SecretKind::Random);
    ServerModel::new(&a.images.oauth2_proxy, text, env)
}

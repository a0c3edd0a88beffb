//! oauth2-proxy's configuration (`oauth2_proxy.cfg`, TOML with every value
//! JSON-quoted): the OIDC client of dex or of an external issuer, cookies
//! and redirects for exactly the hosts the gateway serves. The client and cookie
//! secrets come from existing Secrets through the environment.

use super::{secret_env, Generated, SecretKind, ServerModel};
use crate::config::Config;
use crate::facts::{GatewayFacts, OAUTH2_PROXY_PORT};
use serde_json::{json, Value};

/// Path regexes of Kubeflow's APIs on the main host: the dashboard's
/// `/api/`, the web apps' `/<app>/api/`, the Pipelines API and KFAM.
pub const API_ROUTES: [&str; 4] = ["^/api/", "^/[^/]+/api/", "^/pipeline/apis/", "^/kfam/"];

pub(super) fn derive(
    config: &Config,
    gw: &GatewayFacts,
    issuer: &str,
    generated: &mut Generated,
) -> ServerModel {
    let a = &config.deploykf_core.deploykf_auth;
    let o = &a.oauth2_proxy;
    let dex_internal = super::dex_internal_url(&a.common.namespace);
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
        // Sent on top-level navigations from other sites (the issuer's
        // redirect back), not on their subrequests.
        ("cookie_samesite", json!("lax")),
    ];
    // Exactly the hosts the gateway serves (issue 28, point 6): redirects
    // after login go only there (`whitelist_domains`, `host:*` any port).
    // With subdomain apps the session cookie is given each host's own
    // domain (oauth2-proxy v7.15.3 `pkg/cookies/cookies.go:59-69` picks
    // the longest listed domain the request's host ends with, longest
    // first: `pkg/validation/cookie.go:31-33`), not `.<hostname>`, which
    // named every host under it; without subdomain apps it is host-only.
    let mut hosts = vec![gw.hostname.clone()];
    let gateway = &config.deploykf_core.deploykf_istio_gateway;
    let mut sub: Vec<String> = (gateway.apps.iter())
        .filter(|app| app.subdomain.is_some())
        .map(|app| crate::facts::app_host(config, app))
        .collect();
    sub.sort();
    sub.dedup();
    let subdomains = !sub.is_empty();
    hosts.extend(sub);
    if subdomains {
        let mut longest_first = hosts.clone();
        longest_first.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        cfg.push(("cookie_domains", json!(longest_first)));
    }
    cfg.push((
        "whitelist_domains",
        json!(hosts.iter().map(|h| format!("{h}:*")).collect::<Vec<_>>()),
    ));
    cfg.extend([
        // PKCE on the authorization code flow (dex supports S256).
        ("code_challenge_method", json!("S256")),
        // API calls get 401, not a login redirect (oauth2-proxy
        // `oauthproxy.go`: `isAjax` (an `Accept: application/json`, which
        // the gateway forwards) or `isAPIPath`).
        ("api_routes", json!(API_ROUTES)),
        ("set_authorization_header", json!(true)),
        ("skip_provider_button", json!(!o.enable_sign_in_page)),
        ("silence_ping_logging", json!(true)),
    ]);
    if a.dex.enabled {
        // `federated:id` makes dex put `federated_claims.connector_id` in
        // the ID token (dex v2.45.1 server/oauth2.go:127,260,368-372), which profiles
        // bound to a connector match.
        let pg = &config.deploykf_core.deploykf_profiles_generator;
        let bound = pg.idp_groups.connector.is_some()
            || pg.profiles.iter().any(|p| p.idp_connector.is_some());
        let scope = if bound {
            "openid email profile groups offline_access federated:id"
        } else {
            "openid email profile groups offline_access"
        };
        cfg.extend([
            ("scope", json!(scope)),
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

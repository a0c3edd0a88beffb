//! The bodies of the gateway's authentication objects, built as values:
//! the RequestAuthentication's `jwtRules` (every trusted issuer), the
//! CUSTOM policy's rules (requests without a token go to oauth2-proxy) and
//! the DENY policy's rules (no valid token, a token that does not name the
//! user, or an identity header the token did not fill).
//!
//! Which requests are protected is computed here, from the facts: every
//! host and path the gateway serves except the login flow's paths and the
//! apps declared `auth: none`. New hosts are protected by default.

use crate::config::Config;
use crate::facts::Facts;
use serde_json::{json, Value};

pub struct Policies {
    pub jwt_rules: Vec<Value>,
    pub login_rules: Vec<Value>,
    pub deny_rules: Vec<Value>,
}

/// An issuer the gateway trusts: (issuer, the claim naming the user,
/// [(identity header, the claim it is copied from, if any)]).
type Issuer = (String, String, Vec<(String, Option<String>)>);

/// The Kubeflow Pipelines API on the main host (deployKF's
/// `ml-pipeline-ui-route`, prefix `/pipeline`), where the SDK's tokens
/// are accepted.
pub const PIPELINES_API_PATHS: [&str; 2] = ["/pipeline", "/pipeline/*"];

/// `prefix*` as an AuthorizationPolicy path (same reach as a route prefix).
fn path_glob(prefix: &str) -> String {
    format!("{prefix}*")
}

/// A host and the same host with any port (the `:authority` carries the
/// port when it is not the scheme's default).
fn with_ports(host: &str) -> [String; 2] {
    [host.to_string(), format!("{host}:*")]
}

/// The operations (hosts and paths) that need a logged-in user, on every
/// port of the gateway pods but the HTTP listener's (`notPorts`), so that
/// a Gateway someone else binds to these pods on another port (Kubeflow's
/// and Knative's select pods by labels) can not serve a route without a
/// login (issue 27, point 3): Istio matches `ports` against the port the
/// gateway pod listens on (`destination.port`, the Gateway server's
/// port; istio/istio `pilot/pkg/security/authz/model/model.go`
/// `destPortGenerator`, Envoy RBAC `destination_port`). On the HTTP port,
/// oauth2-proxy's `Secure` CSRF cookie would be dropped by the browser
/// and the callback would fail, so the HTTP listener only redirects (or
/// relays to HTTPS, where these apply); its Gateway admits only the
/// gateway namespace's VirtualServices (`GatewayFacts::http_hosts`).
fn protected_operations(facts: &Facts) -> Vec<Value> {
    let host = &facts.gateway.hostname;
    let not_http = [facts.gateway.http_port.to_string()];
    let mut not_paths: Vec<String> = Vec::new();
    for path in &facts.login.paths {
        // dex's issuer URL is `/dex` itself; oauth2-proxy only serves
        // below `/oauth2/`.
        if *path == "/dex" {
            not_paths.push(path.to_string());
        }
        not_paths.push(format!("{path}/*"));
    }
    let mut public_hosts: Vec<String> = with_ports(host).to_vec();
    for app in facts.apps.iter().filter(|a| a.public) {
        match &app.path {
            Some(p) => not_paths.push(path_glob(p)),
            None => public_hosts.extend(with_ports(&app.host)),
        }
    }
    vec![
        json!({"operation": {"notPorts": not_http, "hosts": with_ports(host), "notPaths": not_paths}}),
        json!({"operation": {"notPorts": not_http, "notHosts": public_hosts}}),
    ]
}

pub fn derive(config: &Config, facts: &Facts, issuer: &str) -> Policies {
    let a = &config.deploykf_core.deploykf_auth;
    let o = &a.oauth2_proxy;
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
        user_rule["jwksUri"] = json!(format!(
            "{}{}",
            super::dex_internal_url(&a.common.namespace).trim_end_matches("/dex"),
            super::DEX_KEYS_PATH
        ));
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
        issuer.to_string(),
        id.user_claim.clone(),
        vec![
            (id.user_header.clone(), Some(id.user_claim.clone())),
            (id.groups_header.clone(), Some(id.groups_claim.clone())),
        ],
    ));
    if a.m2m.enabled {
        let jwks_uri = if a.m2m.jwks_uri.is_empty() {
            super::jwks_relay_url(&a.common.namespace)
        } else {
            a.m2m.jwks_uri.clone()
        };
        let mut rule = json!({
            "issuer": a.m2m.issuer,
            "jwksUri": jwks_uri,
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

    let ops = protected_operations(facts);
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
    // The Kubeflow Pipelines SDK's tokens (its own audience) only on the
    // Pipelines API paths, as deployKF's `kubeflow_pipelines_api` JWT
    // requirement on `ml-pipeline-ui-route` (prefix `/pipeline`) does
    // (deployKF `generator/templates/manifests/deploykf-core/
    // deploykf-istio-gateway/templates/gateway/EnvoyFilter-ext-authz.yaml`,
    // FILTER 3 and "ROUTE - Use special JwtAuthn requirement"): elsewhere a
    // dex token must be oauth2-proxy's. `request.auth.audiences` matches
    // when any `aud` of the token is listed (istio/istio
    // `pilot/pkg/security/authz/model/generator.go`
    // `requestAudiencesGenerator`, a list matcher on the `aud` claim).
    if a.dex.enabled && a.dex.clients.kubeflow_pipelines_sdk.enabled {
        let mut ops = ops.clone();
        ops[0]["operation"]["notPaths"]
            .as_array_mut()
            .expect("the main host's operation lists notPaths")
            .extend(PIPELINES_API_PATHS.iter().map(|p| json!(p)));
        deny_rules.push(json!({
            "from": [{"source": {"requestPrincipals": [format!("{issuer}/*")]}}],
            "to": ops,
            "when": [{"key": "request.auth.audiences", "notValues": [a.dex.clients.oauth2_proxy.client_id]}],
        }));
    }
    Policies {
        jwt_rules,
        login_rules,
        deny_rules,
    }
}

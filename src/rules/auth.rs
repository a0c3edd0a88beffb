//! Rules for `deploykf_core.deploykf_auth` and the gateway's `apps`: no
//! secret value may enter the output, every secret a component needs is
//! named, generated Secrets are generated once, dex can use what it is
//! given, and apps are unambiguous (unique names, one of `path` or
//! `subdomain`, no two apps on the same host and path).

use super::{error_at, located};
use crate::code::Code;
use crate::config::{Config, SecretRef};
use crate::diagnostic::Diagnostics;
use crate::facts::{app_prefix, Facts};
use crate::source::SourceMap;
use crate::values::path::ValuePath;
use crate::values::Values;
use std::collections::HashMap;

pub const AUTH: &str = "deploykf_core.deploykf_auth";
const GW: &str = "deploykf_core.deploykf_istio_gateway";

/// Every secret reference of the auth section, with its key path.
pub fn secret_refs(config: &Config) -> Vec<(ValuePath, &SecretRef)> {
    let a = &config.deploykf_core.deploykf_auth;
    let base = ValuePath::keys(AUTH);
    let mut out = Vec::new();
    for (i, p) in a.dex.static_passwords.iter().enumerate() {
        out.push((
            base.key("dex")
                .key("staticPasswords")
                .index(i)
                .key("password"),
            &p.password,
        ));
    }
    for (i, c) in a.dex.connectors.iter().enumerate() {
        for (name, r) in &c.env {
            out.push((
                base.key("dex")
                    .key("connectors")
                    .index(i)
                    .key("env")
                    .key(name),
                r,
            ));
        }
    }
    let clients = base.key("dex").key("clients");
    for (key, client) in [
        ("oauth2Proxy", &a.dex.clients.oauth2_proxy),
        ("minioConsole", &a.dex.clients.minio_console),
        ("argoServer", &a.dex.clients.argo_server),
    ] {
        out.push((clients.key(key).key("clientSecret"), &client.client_secret));
    }
    out.push((
        base.key("oauth2Proxy").key("cookie").key("secret"),
        &a.oauth2_proxy.cookie.secret,
    ));
    out.push((
        base.key("oauth2Proxy").key("oidc").key("clientSecret"),
        &a.oauth2_proxy.oidc.client_secret,
    ));
    out
}

/// A Go duration (`1h30m`, `45m`, `10s`) in seconds; `None` if malformed.
fn go_duration(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let (unit, scale) = [
            ("ns", 1e-9),
            ("us", 1e-6),
            ("µs", 1e-6),
            ("ms", 1e-3),
            ("s", 1.0),
            ("m", 60.0),
            ("h", 3600.0),
        ]
        .into_iter()
        .find(|(u, _)| rest.starts_with(u))?;
        // "ms" before "m": the list is ordered so that the longer unit wins.
        rest = &rest[unit.len()..];
        total += value * scale;
    }
    Some(total)
}

/// An `https://` URL of a host inside the cluster (a Service name).
fn in_cluster_https(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    host == "kubernetes"
        || host.ends_with(".svc")
        || host.contains(".svc.")
        || host.ends_with(".cluster.local")
}

/// Names of the `$VAR` references in a connector config value.
fn env_refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(i) = rest.find('$') {
                rest = &rest[i + 1..];
                let braced = rest.starts_with('{');
                let body = if braced { &rest[1..] } else { rest };
                let name: String = body
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| env_refs(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| env_refs(x, out)),
        _ => {}
    }
}

/// Connector config keys that hold credentials in dex's connectors.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "password", "bindpw", "token", "privatekey"]
        .iter()
        .any(|w| k.contains(w))
}

/// A literal credential in a connector config: its key path and key.
fn literal_secrets(v: &serde_json::Value, path: &ValuePath, out: &mut Vec<ValuePath>) {
    if let serde_json::Value::Object(m) = v {
        for (k, child) in m {
            let p = path.key(k);
            match child {
                serde_json::Value::String(s)
                    if is_secret_key(k) && !s.is_empty() && !s.starts_with('$') =>
                {
                    out.push(p)
                }
                _ => literal_secrets(child, &p, out),
            }
        }
    }
}

/// Whether `s` is a DNS-1123 label.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub fn check(config: &Config, values: &Values, sources: &SourceMap, diags: &mut Diagnostics) {
    let mut fail = |path: ValuePath, message: String| diags.push(error_at(values, path, message));
    let place = |path: &ValuePath| located(values, sources, path);
    let a = &config.deploykf_core.deploykf_auth;
    let base = ValuePath::keys(AUTH);

    let refs = secret_refs(config);
    // No secret value, anywhere, even in a part that is off.
    for (path, r) in &refs {
        if r.value.as_deref().is_some_and(|v| !v.is_empty()) {
            fail(
                path.key("value"),
                format!(
                    "a secret value would be written into the output: create a Secret in namespace `{}` and set `{}` (and `existingSecretKey`){}",
                    a.common.namespace,
                    path.key("existingSecret"),
                    if path.to_string().ends_with("oidc.clientSecret") {
                        ""
                    } else {
                        ", or set `generateSecret: true` to have it generated in the cluster"
                    }
                ),
            );
        }
        if r.generate_secret && r.existing_secret.is_empty() {
            fail(
                path.key("existingSecret"),
                "must name the Secret to generate when `generateSecret` is true".into(),
            );
        }
    }
    if !a.common.enabled {
        return;
    }
    // Missing, and not already reported (a `value`, or `generateSecret`
    // without a name).
    let need = |r: &SecretRef| {
        r.existing_secret.is_empty()
            && !r.generate_secret
            && r.value.as_deref().is_none_or(str::is_empty)
    };
    if need(&a.oauth2_proxy.cookie.secret) {
        fail(
            base.key("oauth2Proxy").key("cookie").key("secret").key("existingSecret"),
            "oauth2-proxy needs a cookie secret: name an existing Secret, or a Secret to generate with `generateSecret: true`".into(),
        );
    }
    if a.dex.enabled {
        if let (Some(refresh), Some(id)) = (
            go_duration(&a.oauth2_proxy.cookie.refresh),
            go_duration(&a.dex.expiry.id_token),
        ) {
            if refresh == 0.0 || refresh >= id {
                fail(
                    base.key("oauth2Proxy").key("cookie").key("refresh"),
                    format!(
                        "must be shorter than dex's ID token lifetime `{}` (`{}`), and not 0: oauth2-proxy renews the token only when it refreshes the cookie, so a longer interval lets the gateway see an expired token (401)",
                        a.dex.expiry.id_token,
                        base.key("dex").key("expiry").key("idToken")
                    ),
                );
            }
        }
    }
    if a.m2m.enabled {
        let m2m = base.key("m2m");
        if a.m2m.audiences.is_empty() {
            fail(
                m2m.key("audiences"),
                "must name at least one audience when `m2m.enabled` is true: without one, a ServiceAccount token minted for any audience (the API server's, another service's) is accepted at the gateway (TIP: `audiences: [\"deploykf\"]`, and mint tokens with `kubectl create token SA --audience deploykf`; Kubeflow's documented `kubectl -n PROFILE create token default-editor` has no `--audience`, so its token carries the API server's and is refused: add `--audience deploykf` to it)".into(),
            );
        }
        if in_cluster_https(&a.m2m.jwks_uri) {
            fail(
                m2m.key("jwksUri"),
                format!("`{}` is in the mesh and HTTPS: the gateway fetches in-mesh keys itself (PILOT_JWT_ENABLE_REMOTE_JWKS=hybrid) without TLS origination, so every ServiceAccount token would be refused (TIP: leave `jwksUri` empty to use meshgen's JWKS relay)", a.m2m.jwks_uri),
            );
        }
    }
    let oidc = &a.oauth2_proxy.oidc;
    let oidc_path = base.key("oauth2Proxy").key("oidc");
    if a.dex.enabled {
        if need(&a.dex.clients.oauth2_proxy.client_secret) {
            fail(
                base.key("dex").key("clients").key("oauth2Proxy").key("clientSecret").key("existingSecret"),
                "oauth2-proxy needs its dex client secret: name an existing Secret, or a Secret to generate with `generateSecret: true`".into(),
            );
        }
        let mut emails: HashMap<String, usize> = HashMap::new();
        for (i, p) in a.dex.static_passwords.iter().enumerate() {
            let path = base.key("dex").key("staticPasswords").index(i);
            if let Some(&first) = emails.get(&p.email.to_ascii_lowercase()) {
                let first_path = base
                    .key("dex")
                    .key("staticPasswords")
                    .index(first)
                    .key("email");
                fail(
                    path.key("email"),
                    format!(
                        "duplicate email `{}`, first defined as {}",
                        p.email,
                        place(&first_path)
                    ),
                );
            } else {
                emails.insert(p.email.to_ascii_lowercase(), i);
            }
            let pw = &p.password;
            let has_value = pw.value.as_deref().is_some_and(|v| !v.is_empty());
            if has_value {
                // reported above
            } else if pw.existing_secret.is_empty() {
                fail(
                    path.key("password").key("existingSecret"),
                    "must name the Secret holding the password's bcrypt hash (or a Secret to generate with `generateSecret: true`)".into(),
                );
            } else if pw.generate_secret && pw.kind != Some(crate::config::SecretKind::Hash) {
                fail(
                    path.key("password").key("type"),
                    "must be \"hash\" when `generateSecret` is true: the generated Secret keeps the bcrypt hash under `existingSecretKey`".into(),
                );
            } else if pw.existing_secret_key.is_empty() {
                fail(
                    path.key("password").key("existingSecretKey"),
                    "must name the key of the password in the Secret".into(),
                );
            }
            if pw.generate_secret && pw.existing_secret_key == "password" {
                fail(
                    path.key("password").key("existingSecretKey"),
                    "must not be `password` when `generateSecret` is true: the generated Secret keeps the plain password under `password` and the hash under this key".into(),
                );
            }
        }
        for (i, c) in a.dex.connectors.iter().enumerate() {
            let path = base.key("dex").key("connectors").index(i);
            if c.config_existing_secret
                .as_deref()
                .is_some_and(|s| !s.is_empty())
            {
                if c.config_existing_secret_key
                    .as_deref()
                    .is_none_or(str::is_empty)
                {
                    fail(
                        path.key("configExistingSecretKey"),
                        "must name the key of the connector's YAML config in `configExistingSecret`".into(),
                    );
                }
                if !c.config.is_empty() {
                    fail(
                        path.key("config"),
                        "must be empty when `configExistingSecret` is set: the connector's whole config is read from that Secret".into(),
                    );
                }
            } else if c
                .config_existing_secret_key
                .as_deref()
                .is_some_and(|s| !s.is_empty())
            {
                fail(
                    path.key("configExistingSecret"),
                    "must name the Secret when `configExistingSecretKey` is set".into(),
                );
            }
            let mut literal = Vec::new();
            literal_secrets(
                &serde_json::Value::Object(c.config.clone()),
                &path.key("config"),
                &mut literal,
            );
            for p in literal {
                fail(
                    p,
                    "a secret value would be written into the output: write `$VAR` instead, and set the connector's `env.VAR: {existingSecret, existingSecretKey}`".into(),
                );
            }
            let mut refs = Vec::new();
            env_refs(&serde_json::Value::Object(c.config.clone()), &mut refs);
            refs.sort();
            refs.dedup();
            for name in refs {
                if !c.env.contains_key(&name) {
                    fail(
                        path.key("config"),
                        format!("references `${name}`, which the connector's `env` does not define (add `env.{name}: {{existingSecret, existingSecretKey}}`)"),
                    );
                }
            }
            for (name, r) in &c.env {
                if r.existing_secret.is_empty() {
                    fail(
                        path.key("env").key(name).key("existingSecret"),
                        "must name the Secret the variable is read from".into(),
                    );
                }
            }
        }
    } else {
        for (key, v) in [
            ("issuerUrl", &oidc.issuer_url),
            ("clientId", &oidc.client_id),
        ] {
            if v.is_empty() {
                fail(
                    oidc_path.key(key),
                    format!("must be set when `{AUTH}.dex.enabled` is false (oauth2-proxy and the gateway use this issuer)"),
                );
            }
        }
        if need(&oidc.client_secret) {
            fail(
                oidc_path.key("clientSecret").key("existingSecret"),
                format!("must name the Secret holding oauth2-proxy's client secret at the issuer when `{AUTH}.dex.enabled` is false"),
            );
        }
    }
    if oidc.client_secret.generate_secret {
        fail(
            oidc_path.key("clientSecret").key("generateSecret"),
            "must be false: an external issuer issues the client secret; store it in a Secret and set `existingSecret`".into(),
        );
    }
    let id = &a.identity;
    if id.user_header == id.groups_header {
        fail(
            base.key("identity").key("groupsHeader"),
            format!(
                "must differ from `{AUTH}.identity.userHeader` (both are `{}`)",
                id.user_header
            ),
        );
    }

    // A Secret is generated by one Job only.
    let mut generated: HashMap<&str, &ValuePath> = HashMap::new();
    for (path, r) in &refs {
        if !r.generate_secret {
            continue;
        }
        if let Some(first) = generated.get(r.existing_secret.as_str()) {
            fail(
                path.key("existingSecret"),
                format!(
                    "Secret `{}` is already generated for {}; give each generated secret its own Secret",
                    r.existing_secret,
                    place(&first.key("existingSecret"))
                ),
            );
        } else {
            generated.insert(&r.existing_secret, path);
        }
    }
}

/// The gateway's `apps`.
/// Issue 29: a dex connector's `redirectURI` is where the identity provider
/// sends the browser back, and dex serves it only under the gateway's
/// public URL (`{public_url}/dex/callback`). Another host (a copied
/// example's `deploykf.example.com`) fails only at the first login, so it
/// is a warning here. A `$VAR` reference is the user's to get right.
pub fn check_redirect_uris(ctx: &super::Ctx, f: &mut super::Findings) {
    let a = &ctx.config.deploykf_core.deploykf_auth;
    if !a.common.enabled || !a.dex.enabled {
        return;
    }
    // dex's issuer is `{base}/dex` (model/auth), its callback `{issuer}/callback`.
    let gw = &ctx.facts.gateway;
    let base = crate::facts::base_url(gw, &gw.hostname);
    let want = format!("{base}/dex/callback");
    for (i, c) in a.dex.connectors.iter().enumerate() {
        let Some(uri) = c.config.get("redirectURI").and_then(|v| v.as_str()) else {
            continue;
        };
        if uri == want || uri.contains('$') {
            continue;
        }
        let path = ValuePath::keys(AUTH)
            .key("dex")
            .key("connectors")
            .index(i)
            .key("config")
            .key("redirectURI");
        let message = if uri.starts_with(&format!("{base}/")) {
            format!("dex serves its callback at `{want}`; the identity provider will send users to another path, and their login fails")
        } else {
            format!("is not under the gateway's public URL `{base}`: the identity provider will send users back to another host, and their login fails; set `{want}` (and register it with the provider)")
        };
        f.warnings
            .push(ctx.warning(Code::RedirectElsewhere, path, message));
    }
}

pub fn check_apps(
    config: &Config,
    facts: &Facts,
    values: &Values,
    sources: &SourceMap,
    diags: &mut Diagnostics,
) {
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let auth_on = facts.login.enabled;
    let mut fail = |path: ValuePath, message: String| diags.push(error_at(values, path, message));
    let place = |path: &ValuePath| located(values, sources, path);
    let base = ValuePath::keys(GW).key("apps");
    let mut names: HashMap<&str, usize> = HashMap::new();
    // (host, path) -> the app that claimed it
    let mut routes: HashMap<(String, String), usize> = HashMap::new();
    for (i, app) in gw.apps.iter().enumerate() {
        let path = base.index(i);
        if let Some(&first) = names.get(app.name.as_str()) {
            fail(
                path.key("name"),
                format!(
                    "duplicate app name `{}`, first defined as {}",
                    app.name,
                    place(&base.index(first).key("name"))
                ),
            );
        } else {
            names.insert(&app.name, i);
        }
        let (host, prefix, key) = match (&app.path, &app.subdomain) {
            (Some(_), Some(_)) => {
                fail(
                    path.clone(),
                    "an app has either `path` or `subdomain`, not both".into(),
                );
                continue;
            }
            (None, None) => {
                fail(path.clone(), "an app needs `path` (a prefix such as /my-app/) or `subdomain` (served at <subdomain>.<hostname>)".into());
                continue;
            }
            (Some(p), None) => {
                if !p.starts_with('/') {
                    fail(
                        path.key("path"),
                        format!("must start with \"/\" (did you mean \"/{p}\"?)"),
                    );
                    continue;
                }
                {
                    let clash = facts.login.paths.iter().find(|l| {
                        p == *l
                            || p.starts_with(&format!("{l}/"))
                            || (l.starts_with(p.as_str()) && p.ends_with('/') && p != "/")
                    });
                    if let Some(l) = clash {
                        fail(
                            path.key("path"),
                            format!("`{p}` overlaps `{l}`, which the login flow (dex, oauth2-proxy) serves on the main host; choose another path"),
                        );
                    }
                }
                (
                    facts.apps[i].host.clone(),
                    app_prefix(app).to_string(),
                    "path",
                )
            }
            (None, Some(s)) => {
                if !is_dns_label(s) {
                    fail(
                        path.key("subdomain"),
                        format!("`{s}` is not a DNS label: lowercase letters, digits and \"-\", at most 63, starting and ending with a letter or digit"),
                    );
                    continue;
                }
                (
                    facts.apps[i].host.clone(),
                    app_prefix(app).to_string(),
                    "subdomain",
                )
            }
        };
        if let Some(&first) = routes.get(&(host.clone(), prefix.clone())) {
            let first_app = &gw.apps[first];
            let first_key = if first_app.path.is_some() {
                "path"
            } else {
                "subdomain"
            };
            fail(
                path.key(key),
                format!(
                    "app `{}` claims {host}{prefix}, already claimed by app `{}` ({})",
                    app.name,
                    first_app.name,
                    place(&base.index(first).key(first_key))
                ),
            );
        } else {
            routes.insert((host, prefix), i);
        }
        if app.auth == crate::config::AppAuth::Required && !auth_on {
            fail(
                path.key("auth"),
                format!("is \"required\" but `{AUTH}.enabled` is false, so nothing would authenticate users; enable auth or set `auth: none`"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_env_references_and_literal_secrets() {
        let mut refs = Vec::new();
        env_refs(
            &json!({"a": "$X", "b": ["${Y_2}-z"], "c": {"d": "no"}}),
            &mut refs,
        );
        assert_eq!(refs, vec!["X", "Y_2"]);
        let mut lit = Vec::new();
        literal_secrets(
            &json!({"clientSecret": "abc", "bindPW": "$PW", "issuer": "x", "nested": {"password": "p"}}),
            &ValuePath::keys("c"),
            &mut lit,
        );
        let lit: Vec<String> = lit.iter().map(|p| p.to_string()).collect();
        assert_eq!(lit, vec!["c.clientSecret", "c.nested.password"]);
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("minio-console"));
        assert!(!is_dns_label("Minio"));
        assert!(!is_dns_label("a.b"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(""));
    }
}

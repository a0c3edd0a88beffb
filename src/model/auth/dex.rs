//! dex's configuration (`config.yaml`, made by the YAML emitter from a
//! value): static passwords and client secrets are read from the
//! environment, which the pod fills from existing Secrets; nothing secret
//! is in the file.

use super::{secret_env, Generated, SecretKind, ServerModel, DEX_TELEMETRY_PORT};
use crate::config::Config;
use crate::facts::{base_url, GatewayFacts, DEX_PORT};
use serde_json::{json, Value};

/// A stable, opaque dex user id for an email.
fn user_id(email: &str) -> String {
    let hex = super::sha256_hex(&email.to_ascii_lowercase(), 16);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

pub(super) fn derive(
    config: &Config,
    gw: &GatewayFacts,
    issuer: &str,
    generated: &mut Generated,
) -> ServerModel {
    let a = &config.deploykf_core.deploykf_auth;
    let d = &a.dex;
    let mut env = Vec::new();
    let mut passwords = Vec::new();
    for (i, p) in d.static_passwords.iter().enumerate() {
        let var = format!("MESHGEN_DEX_PASSWORD_HASH_{i}");
        env.push(secret_env(var.clone(), &p.password));
        generated.add(&p.password, SecretKind::Password);
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
            super::oauth2_proxy_callback(gw),
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
        generated.add(&client.client_secret, SecretKind::Random);
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
    ServerModel::new(&a.images.dex, crate::yaml::emit::document(&cfg), env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_stable_uuids() {
        let a = user_id("Admin@example.com");
        assert_eq!(a, user_id("admin@example.com"));
        assert_eq!(a.len(), 36);
    }
}

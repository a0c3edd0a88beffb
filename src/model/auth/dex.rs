//! dex's configuration (`config.yaml`, made by the YAML emitter from a
//! value): static passwords and client secrets are read from the
//! environment, which the pod fills from existing Secrets; nothing secret
//! is in the file.
//!
//! A plain-text password in a Secret (deployKF's `type: plain`) or a
//! connector config in a Secret (`configExistingSecret`) can not be read
//! by dex through its environment: then the pod assembles the file when it
//! starts ([`Assembly`]). meshgen renders the configuration without its
//! `staticPasswords` and `connectors` and one fragment per list item; an
//! init container runs the fixed [`ASSEMBLE_SCRIPT`], which concatenates
//! them, appends the bcrypt hash of each plain password and each Secret's
//! connector config (indented under `config:`), and writes the result to a
//! memory-backed emptyDir that dex reads. No user string is part of the
//! script: it reads them from files.

use super::{secret_env, Generated, SecretKind, ServerModel, DEX_TELEMETRY_PORT};
use crate::config::{Config, SecretKind as PasswordKind};
use crate::facts::{base_url, GatewayFacts, DEX_PORT};
use serde::Serialize;
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

/// The init container's script (`/bin/sh`, busybox in the password
/// hasher's image): fixed text. It reads `/template` (the ConfigMap: the
/// base `config.yaml` and the `password-NNNN.yaml` / `connector-NNNN.yaml`
/// fragments, each one list item), `/secrets/<fragment>/password` (a plain
/// password) and `/secrets/<fragment>/config` (a connector's YAML config),
/// and writes `/config/config.yaml`. A hash is checked to be bcrypt before
/// it is written; a connector config is indented by four spaces under the
/// item's `config:` key, so that nothing in it can leave that mapping. That
/// holds only if LF is its only line break: dex reads its config with
/// gopkg.in/yaml.v2 (through github.com/ghodss/yaml, dex v2.45.1
/// cmd/dex/serve.go:26,100), which also breaks lines at CR, NEL, U+2028
/// and U+2029 (yaml.v2 v2.4.0 yamlprivateh.go:102-108), where `sed` adds no
/// indentation: a CR before LF is dropped (CRLF is one break to yaml.v2,
/// so the config means the same), and a config holding any other is
/// refused.
pub const ASSEMBLE_SCRIPT: &str = r#"set -eu
umask 077
cr=$(printf '\r'); nel=$(printf '\302\205'); lsep=$(printf '\342\200\250'); psep=$(printf '\342\200\251')
out=/config/config.yaml.tmp
cat /template/config.yaml >"$out"
header=staticPasswords
for f in /template/password-*.yaml; do
  [ -e "$f" ] || continue
  [ -z "$header" ] || { printf '%s:\n' "$header" >>"$out"; header=; }
  n=${f##*/}; n=${n%.yaml}
  cat "$f" >>"$out"
  if [ -e "/secrets/$n/password" ]; then
    [ -s "/secrets/$n/password" ] || { echo "$n: the password in the Secret is empty" >&2; exit 1; }
    hash=$(htpasswd -niBC 10 dex <"/secrets/$n/password" | cut -d: -f2- | tr -d '\r\n')
    case "$hash" in
      '$2'[aby]'$'[0-9][0-9]'$'*) ;;
      *) echo "$n: htpasswd did not print a bcrypt hash" >&2; exit 1 ;;
    esac
    case "$hash" in
      *[!A-Za-z0-9./\$]*) echo "$n: unexpected character in the bcrypt hash" >&2; exit 1 ;;
    esac
    printf '  hash: "%s"\n' "$hash" >>"$out"
  fi
done
header=connectors
for f in /template/connector-*.yaml; do
  [ -e "$f" ] || continue
  [ -z "$header" ] || { printf '%s:\n' "$header" >>"$out"; header=; }
  n=${f##*/}; n=${n%.yaml}
  cat "$f" >>"$out"
  if [ -e "/secrets/$n/config" ]; then
    [ -s "/secrets/$n/config" ] || { echo "$n: the connector config in the Secret is empty" >&2; exit 1; }
    if sed "s/$cr\$//" "/secrets/$n/config" | LC_ALL=C grep -qF -e "$cr" -e "$nel" -e "$lsep" -e "$psep"; then
      echo "$n: the connector config in the Secret holds a line break other than LF or CRLF (CR, NEL, U+2028 or U+2029), which dex's YAML reader also breaks lines at; save it with LF line ends only" >&2; exit 1
    fi
    printf '  config:\n' >>"$out"
    sed "s/$cr\$//; s/^/    /" "/secrets/$n/config" >>"$out"
    [ -z "$(tail -c 1 "/secrets/$n/config")" ] || printf '\n' >>"$out"
  fi
done
mv "$out" /config/config.yaml
echo "assembled /config/config.yaml"
"#;

/// How the pod assembles dex's configuration when it starts.
#[derive(Debug, Clone, Serialize)]
pub struct Assembly {
    pub script: &'static str,
    /// ConfigMap keys beside `config.yaml`: one list item each.
    pub fragments: Vec<Fragment>,
    /// Secrets the init container mounts: the only ones it reads.
    pub secrets: Vec<MountedSecret>,
    pub image: String,
    pub pull_policy: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fragment {
    /// `password-NNNN.yaml` or `connector-NNNN.yaml`.
    pub key: String,
    pub text: String,
}

/// One key of a Secret, mounted as `/secrets/<dir>/<file>`.
#[derive(Debug, Clone, Serialize)]
pub struct MountedSecret {
    pub volume: String,
    pub dir: String,
    pub file: &'static str,
    pub secret: String,
    pub key: String,
}

/// Whether a static password is a plain-text value in a Secret, which the
/// pod hashes when it starts (deployKF's default `type`).
pub fn is_plain(p: &crate::config::SecretRef) -> bool {
    p.kind != Some(PasswordKind::Hash)
}

fn fragment(key: String, item: &Value) -> Fragment {
    let mut text = crate::yaml::emit::block(&Value::Array(vec![item.clone()]), 0);
    text.push('\n');
    Fragment { key, text }
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
    let mut mounts = Vec::new();
    for (i, p) in d.static_passwords.iter().enumerate() {
        let username = p.email.split('@').next().unwrap_or(&p.email);
        let mut item = json!({"email": p.email});
        if is_plain(&p.password) {
            mounts.push(MountedSecret {
                volume: format!("secret-password-{i:04}"),
                dir: format!("password-{i:04}"),
                file: "password",
                secret: p.password.existing_secret.clone(),
                key: p.password.existing_secret_key.clone(),
            });
        } else {
            let var = format!("MESHGEN_DEX_PASSWORD_HASH_{i}");
            env.push(secret_env(var.clone(), &p.password));
            generated.add(&p.password, SecretKind::Password);
            item["hashFromEnv"] = json!(var);
        }
        item["username"] = json!(username);
        item["userID"] = json!(user_id(&p.email));
        passwords.push(item);
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
    for (i, conn) in d.connectors.iter().enumerate() {
        for (name, r) in &conn.env {
            env.push(secret_env(name.clone(), r));
        }
        let mut item = json!({"type": conn.kind, "id": conn.id, "name": conn.name});
        match conn.config_existing_secret.as_deref() {
            Some(secret) if !secret.is_empty() => mounts.push(MountedSecret {
                volume: format!("secret-connector-{i:04}"),
                dir: format!("connector-{i:04}"),
                file: "config",
                secret: secret.to_string(),
                key: conn.config_existing_secret_key.clone().unwrap_or_default(),
            }),
            _ => item["config"] = Value::Object(conn.config.clone()),
        }
        connectors.push(item);
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
    if mounts.is_empty() {
        if !passwords.is_empty() {
            cfg["staticPasswords"] = Value::Array(passwords);
        }
        if !connectors.is_empty() {
            cfg["connectors"] = Value::Array(connectors);
        }
        return ServerModel::new(&a.images.dex, crate::yaml::emit::document(&cfg), env);
    }
    let mut fragments: Vec<Fragment> = passwords
        .iter()
        .enumerate()
        .map(|(i, p)| fragment(format!("password-{i:04}.yaml"), p))
        .collect();
    fragments.extend(
        connectors
            .iter()
            .enumerate()
            .map(|(i, c)| fragment(format!("connector-{i:04}.yaml"), c)),
    );
    let mut server = ServerModel::new(&a.images.dex, crate::yaml::emit::document(&cfg), env);
    let mut all = server.config.clone();
    for f in &fragments {
        all.push_str(&f.key);
        all.push('\n');
        all.push_str(&f.text);
    }
    for m in &mounts {
        all.push_str(&format!("{}/{}/{}\n", m.dir, m.secret, m.key));
    }
    server.config_digest = super::sha256_hex(&all, 8);
    server.assembly = Some(Assembly {
        script: ASSEMBLE_SCRIPT,
        fragments,
        secrets: mounts,
        image: super::image_ref(&a.images.password_hasher),
        pull_policy: a.images.password_hasher.pull_policy.clone(),
    });
    server
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs [`ASSEMBLE_SCRIPT`] with `/bin/sh` on fake inputs (its
    /// absolute paths moved into a temporary directory). Without
    /// `htpasswd` on the PATH a stand-in prints a fixed bcrypt-shaped hash
    /// after checking that it read the password from stdin.
    #[test]
    fn the_assemble_script_puts_hashes_and_connector_configs_in_place() {
        use std::fs;
        use std::process::Command;
        if !std::path::Path::new("/bin/sh").exists() {
            eprintln!("skipped: no /bin/sh");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let dir = |d: &str| {
            let p = root.join(d);
            fs::create_dir_all(&p).unwrap();
            p
        };
        let template = dir("template");
        let out = dir("config");
        let bin = dir("bin");
        fs::write(
            template.join("config.yaml"),
            "issuer: \"https://x/dex\"\nenablePasswordDB: true\n",
        )
        .unwrap();
        let frag = |v: Value| {
            let mut t = crate::yaml::emit::block(&Value::Array(vec![v]), 0);
            t.push('\n');
            t
        };
        fs::write(
            template.join("password-0000.yaml"),
            frag(json!({"email": "a@x", "hashFromEnv": "H0", "username": "a", "userID": "1"})),
        )
        .unwrap();
        fs::write(
            template.join("password-0001.yaml"),
            frag(json!({"email": "b@x", "username": "b", "userID": "2"})),
        )
        .unwrap();
        fs::write(
            template.join("connector-0000.yaml"),
            frag(json!({"type": "oidc", "id": "sso", "name": "SSO"})),
        )
        .unwrap();
        fs::write(
            template.join("connector-0001.yaml"),
            frag(json!({"type": "github", "id": "gh", "name": "GH", "config": {"clientID": "c"}})),
        )
        .unwrap();
        // Values a shell would evaluate if they were ever interpolated.
        let password = "p'$(touch PWNED)\"`id`";
        fs::create_dir_all(root.join("secrets/password-0001")).unwrap();
        fs::write(root.join("secrets/password-0001/password"), password).unwrap();
        fs::create_dir_all(root.join("secrets/connector-0000")).unwrap();
        // Column-0 keys stay inside the connector's `config`.
        let connector = "issuer: https://sso.example.com\nclientSecret: \"$(touch PWNED)\"\nscopes:\n  - openid\nstorage:\n  type: memory\nnote: |\n  kept\nlast: x";
        fs::write(root.join("secrets/connector-0000/config"), connector).unwrap();
        let real = Command::new("/bin/sh")
            .args(["-c", "command -v htpasswd"])
            .output()
            .is_ok_and(|o| o.status.success());
        let mut path = std::env::var("PATH").unwrap_or_default();
        if !real {
            let stub = bin.join("htpasswd");
            fs::write(
                &stub,
                format!(
                    "#!/bin/sh\n[ \"$*\" = \"-niBC 10 dex\" ] || exit 2\n[ \"$(cat)\" = {} ] || exit 3\necho 'dex:$2y$10$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ0123.'\n",
                    shell_quote(password)
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).unwrap();
            path = format!("{}:{path}", bin.display());
        }
        let o = run_script(ASSEMBLE_SCRIPT, root, &path);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(!root.join("PWNED").exists(), "a value was evaluated");
        let text = fs::read_to_string(out.join("config.yaml")).unwrap();
        let docs = crate::yaml::load_json_documents(&text).expect("valid YAML");
        assert_eq!(docs.len(), 1, "{text}");
        let cfg = &docs[0];
        let keys: Vec<&String> = cfg.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "issuer",
                "enablePasswordDB",
                "staticPasswords",
                "connectors"
            ]
        );
        assert_eq!(cfg["issuer"], "https://x/dex");
        let pw = cfg["staticPasswords"].as_array().unwrap();
        assert_eq!(pw.len(), 2);
        assert_eq!(pw[0]["hashFromEnv"], "H0");
        assert!(pw[0].get("hash").is_none());
        let hash = pw[1]["hash"].as_str().unwrap();
        assert!(hash.starts_with("$2") && hash.len() == 60, "{hash}");
        assert_eq!(pw[1]["email"], "b@x");
        let c = cfg["connectors"].as_array().unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0]["id"], "sso");
        assert_eq!(
            c[0]["config"],
            json!({
                "issuer": "https://sso.example.com",
                "clientSecret": "$(touch PWNED)",
                "scopes": ["openid"],
                "storage": {"type": "memory"},
                "note": "kept\n",
                "last": "x",
            })
        );
        assert_eq!(c[1]["config"], json!({"clientID": "c"}));
        assert!(!root.join("config/config.yaml.tmp").exists());
    }

    /// Runs `script` with `/bin/sh`, its absolute paths moved under `root`.
    fn run_script(script: &str, root: &std::path::Path, path: &str) -> std::process::Output {
        let r = root.display().to_string();
        let script = script
            .replace("/template/", &format!("{r}/template/"))
            .replace("/secrets/", &format!("{r}/secrets/"))
            .replace("/config/", &format!("{r}/config/"));
        std::process::Command::new("/bin/sh")
            .args(["-ec", &script])
            .current_dir(root)
            .env("PATH", path)
            .output()
            .unwrap()
    }

    /// The top-level keys of `text` as dex reads it: gopkg.in/yaml.v2
    /// breaks lines at CR, NEL, U+2028 and U+2029 as at LF
    /// (yamlprivateh.go:102-108), YAML 1.2 (our loader) only at CR and LF;
    /// so each becomes LF before our loader parses it.
    fn dex_top_level_keys(text: &str) -> Result<Vec<String>, String> {
        let text: String = text
            .chars()
            .map(|c| match c {
                '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' => '\n',
                c => c,
            })
            .collect();
        let docs = crate::yaml::load_json_documents(&text).map_err(|e| format!("{e:?}"))?;
        Ok(docs[0].as_object().unwrap().keys().cloned().collect())
    }

    /// Issue 28, point 5: a connector config in a Secret holding a line
    /// break other than LF added top-level keys to dex's config (here
    /// `storage`, moving dex's state to memory). The script refuses it.
    #[test]
    fn regression_issue_28_the_assemble_script_refuses_other_line_breaks() {
        if !std::path::Path::new("/bin/sh").exists() {
            eprintln!("skipped: no /bin/sh");
            return;
        }
        let guard_start = ASSEMBLE_SCRIPT.find("    if sed").unwrap();
        let guard_end = guard_start + ASSEMBLE_SCRIPT[guard_start..].find("    fi\n").unwrap() + 7;
        // The script before the fix: no guard, and CRs kept.
        let before = format!(
            "{}{}",
            &ASSEMBLE_SCRIPT[..guard_start],
            &ASSEMBLE_SCRIPT[guard_end..]
        );
        let indent = r#"sed "s/$cr\$//; s/^/    /""#;
        assert!(before.contains(indent));
        let before = before.replace(indent, "sed 's/^/    /'");
        let path = std::env::var("PATH").unwrap_or_default();
        for brk in ["\r", "\u{85}", "\u{2028}", "\u{2029}", "\r\n"] {
            for (script, fixed) in [(ASSEMBLE_SCRIPT, true), (before.as_str(), false)] {
                let crlf = brk == "\r\n";
                let tmp = tempfile::tempdir().unwrap();
                let root = tmp.path();
                for d in ["template", "config", "secrets/connector-0000"] {
                    std::fs::create_dir_all(root.join(d)).unwrap();
                }
                std::fs::write(
                    root.join("template/config.yaml"),
                    "issuer: \"https://x/dex\"\nstorage:\n  type: kubernetes\n",
                )
                .unwrap();
                std::fs::write(
                    root.join("template/connector-0000.yaml"),
                    "- type: oidc\n  id: sso\n  name: SSO\n",
                )
                .unwrap();
                let secret =
                    format!("issuer: https://sso.example.com{brk}storage:{brk}  type: memory\n");
                std::fs::write(root.join("secrets/connector-0000/config"), secret).unwrap();
                let o = run_script(script, root, &path);
                let err = String::from_utf8_lossy(&o.stderr);
                if crlf {
                    // Windows line ends keep working, and mean the same.
                    assert!(o.status.success(), "{err}");
                    let text = std::fs::read_to_string(root.join("config/config.yaml")).unwrap();
                    assert_eq!(
                        dex_top_level_keys(&text),
                        Ok(vec!["issuer".into(), "storage".into(), "connectors".into()]),
                        "{text:?}"
                    );
                    if fixed {
                        assert!(!text.contains('\r'), "{text:?}");
                        let cfg = &crate::yaml::load_json_documents(&text).unwrap()[0];
                        assert_eq!(cfg["connectors"][0]["config"]["storage"]["type"], "memory");
                    }
                } else if fixed {
                    assert!(!o.status.success(), "{brk:?}: assembled");
                    assert!(
                        err.contains("connector-0000: the connector config in the Secret holds a line break other than LF or CRLF"),
                        "{brk:?}: {err}"
                    );
                    assert!(!root.join("config/config.yaml").exists());
                } else {
                    // The replay: without the guard, dex's reader sees a
                    // second `storage` key at the top level (a duplicate
                    // that yaml.v2 lets win, or our loader refuses).
                    assert!(o.status.success(), "{brk:?}: {err}");
                    let text = std::fs::read_to_string(root.join("config/config.yaml")).unwrap();
                    let keys = dex_top_level_keys(&text);
                    assert!(
                        keys.as_ref().is_err_and(|e| e.contains("storage"))
                            || keys.as_ref().is_ok_and(|k| k
                                .iter()
                                .filter(|k| *k == "storage")
                                .count()
                                > 1),
                        "{brk:?}: {keys:?}\n{text:?}"
                    );
                }
            }
        }
    }

    fn shell_quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', "'\\''"))
    }

    #[test]
    fn user_ids_are_stable_uuids() {
        let a = user_id("Admin@example.com");
        assert_eq!(a, user_id("admin@example.com"));
        assert_eq!(a.len(), 36);
    }
}

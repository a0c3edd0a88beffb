//! deployKF users' real values files (issue 15): each file of
//! `tests/users/` is a values file taken from a public repository or from
//! deployKF's website docs (its header names the source), run through the
//! real binary as a user runs it: `meshgen generate -f <file> -o <dir>`.
//!
//! The table below records what happens to each, and the test asserts it:
//! - `Renders`: exit 0, every YAML file of the output parses, and one fact
//!   the values ask for is in the named output file;
//! - `Refused`: exit 1 with the named reason, only for a reason deployKF
//!   itself gives or for a secret value written in the values file (the
//!   message then points at `existingSecret`);

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

enum Expect {
    /// Exit 0; `file` (under `manifests/`) holds `fact`.
    Renders {
        file: &'static str,
        fact: &'static str,
    },
    /// Exit 1 with every one of these substrings in the standard error.
    Refused(&'static [&'static str]),
}
use Expect::*;

/// Every file of `tests/users/`, with its expected outcome.
const TABLE: &[(&str, Expect)] = &[
    // aws-samples/sample-financial-fraud-detection-with-nvidia: an EKS
    // deployment's ArgoCD plugin values. deployKF (0.1.x) has no
    // `cert_manager.images.kubectl` key and silently ignores it; meshgen
    // warns (an image name other sections use, so not a typo) and renders
    // the startupapicheck image the file pins under its old key.
    (
        "aws-fraud-detection-eks.yaml",
        Renders {
            file: "deploykf-dependencies/cert-manager/values.yaml",
            fact: "repository: quay.io/jetstack/cert-manager-startupapicheck",
        },
    ),
    // deployKF's own overrides template: every override commented out
    (
        "deploykf-sample-values-overrides.yaml",
        Renders {
            file: "deploykf-core/deploykf-istio-gateway/Gateway.yaml",
            fact: "\"*/deploykf.example.com\"",
        },
    ),
    (
        "docs-cert-manager-own-issuer.yaml",
        Renders {
            file: "deploykf-core/deploykf-istio-gateway/Certificate.yaml",
            fact: "name: my-cluster-issuer",
        },
    ),
    (
        "docs-dex-connector-existing-secret.yaml",
        Renders {
            file: "deploykf-core/deploykf-auth/Deployment-dex.yaml",
            fact: "secretName: my-secret-name",
        },
    ),
    // the docs' own `clientSecret: "XXXX..."` placeholder is a secret value
    // in the values file
    (
        "docs-dex-github-connector.yaml",
        Refused(&[
            "`deploykf_core.deploykf_auth.dex.connectors[0].config.clientSecret`: a secret value would be written into the output",
            "existingSecret",
        ]),
    ),
    // options 1 and 2 of the docs (plain text and bcrypt hash) are secret
    // values in the values file; option 3 (existingSecret) is not refused
    (
        "docs-dex-static-passwords.yaml",
        Refused(&[
            "`deploykf_core.deploykf_auth.dex.staticPasswords[0].password.value`: a secret value would be written into the output",
            "`deploykf_core.deploykf_auth.dex.staticPasswords[1].password.value`: a secret value would be written into the output",
            "set `deploykf_core.deploykf_auth.dex.staticPasswords[0].password.existingSecret`",
            "meshgen: 2 errors",
        ]),
    ),
    (
        "docs-external-istio.yaml",
        Renders {
            file: "deploykf-core/deploykf-istio-gateway/Gateway.yaml",
            fact: "namespace: my-gateway-namespace",
        },
    ),
    (
        "docs-gateway-hostname-ports.yaml",
        Renders {
            file: "deploykf-core/deploykf-istio-gateway/Gateway.yaml",
            fact: "\"*/deploykf.example.com\"",
        },
    ),
    (
        "docs-gateway-internal-ports.yaml",
        Renders {
            file: "deploykf-core/deploykf-istio-gateway/Gateway.yaml",
            fact: "number: 18443",
        },
    ),
    (
        "docs-gateway-own-cluster-issuer.yaml",
        Renders {
            file: "deploykf-core/deploykf-istio-gateway/Certificate.yaml",
            fact: "name: my-cluster-issuer",
        },
    ),
    (
        "docs-gateway-service-aws-nlb.yaml",
        Renders {
            file: "deploykf-core/deploykf-istio-gateway/Service.yaml",
            fact: "service.beta.kubernetes.io/aws-load-balancer-scheme: internal",
        },
    ),
    (
        "docs-gateway-tls-matchsni.yaml",
        Renders {
            file: "deploykf-core/deploykf-istio-gateway/Gateway.yaml",
            fact: "- \"*\"",
        },
    ),
    // `tls.redirect: false`: the HTTP listener proxies to the HTTPS one
    (
        "docs-gateway-tls-no-redirect.yaml",
        Renders {
            file: "deploykf-core/deploykf-istio-gateway/DestinationRule-https-redirect.yaml",
            fact: "name: https-redirect",
        },
    ),
    (
        "docs-profiles-users-groups.yaml",
        Renders {
            file: "deploykf-core/deploykf-profiles-generator/team-1.yaml",
            fact: "\"user2@example.com\"",
        },
    ),
];

fn users_dir() -> PathBuf {
    common::root().join("tests/users")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run(file: &str, out: &Path) -> Output {
    let values = users_dir().join(file);
    common::run_meshgen(
        &common::root(),
        &[
            "generate",
            "-f",
            values.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    )
}

#[test]
fn every_file_is_in_the_table_and_names_its_source() {
    let files: Vec<String> = common::walk(&users_dir())
        .into_iter()
        .map(|p| p.to_str().unwrap().to_owned())
        .collect();
    let table: Vec<String> = TABLE.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(files, table, "tests/users/ and TABLE (sorted) differ");
    for f in &files {
        let text = std::fs::read_to_string(users_dir().join(f)).unwrap();
        let first = text.lines().next().unwrap_or("");
        assert!(
            first.starts_with("# Source: ") && first.contains("fetched 2026-12-02"),
            "{f}: the first line must be `# Source: <where>, fetched <date>`, not {first:?}"
        );
    }
}

#[test]
fn each_file_has_its_recorded_outcome() {
    let mut failures = Vec::new();
    for (file, expect) in TABLE {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let o = run(file, &out);
        let err = stderr(&o);
        let code = o.status.code();
        let problem = match expect {
            Renders { file: f, fact } => {
                if code != Some(0) {
                    Some(format!("expected exit 0, got {code:?}:\n{err}"))
                } else {
                    let mut p = None;
                    for rel in common::walk(&out) {
                        let name = rel.to_str().unwrap();
                        if name.ends_with(".yaml") {
                            let text = std::fs::read_to_string(out.join(&rel)).unwrap();
                            if let Err(e) = meshgen::yaml::load_json_documents(&text) {
                                p = Some(format!("{name} does not parse: {e:?}"));
                                break;
                            }
                        }
                    }
                    p.or_else(|| {
                        let path = out.join("manifests").join(f);
                        match std::fs::read_to_string(&path) {
                            Ok(text) if text.contains(fact) => None,
                            Ok(text) => Some(format!("{f} lacks {fact:?}:\n{text}")),
                            Err(e) => Some(format!("{f}: {e}")),
                        }
                    })
                }
            }
            Refused(reasons) => {
                let missing: Vec<_> = reasons.iter().filter(|r| !err.contains(**r)).collect();
                if code != Some(1) || !missing.is_empty() {
                    Some(format!(
                        "expected exit 1 with {missing:?}, got {code:?}:\n{err}"
                    ))
                } else {
                    None
                }
            }
        };
        if let Some(p) = problem {
            failures.push(format!("{file}: {p}"));
        }
        if code == Some(1) {
            assert!(
                !out.exists(),
                "{file}: a refused run wrote {}",
                out.display()
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

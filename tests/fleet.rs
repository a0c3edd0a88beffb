//! Fleets (issue 34): `generate --fleet` and `diff --fleet` through the
//! real binary. The golden fleets `tests/fleets/<name>/` render and
//! compare like the golden trees (markers excluded; accept a change with
//! `MESHGEN_UPDATE_GOLDEN=1 cargo test --test fleet`, then review `git
//! diff tests/fleets`); each cluster is byte for byte what a single
//! `generate` with its layers writes; the fleet is written all or none;
//! every fleet-wide check has a snapshot (`tests/snapshots/fleet__*`).

mod common;

use common::{read_tree, root};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn run(dir: &Path, args: &[&str]) -> Output {
    common::run_meshgen(dir, args)
}

const FLEETS: &[&str] = &["argocd", "flux"];

fn fleet_dir(name: &str) -> PathBuf {
    root().join("tests/fleets").join(name)
}

/// The fleet's files, markers excluded (their version changes with every
/// commit).
fn without_markers(tree: BTreeMap<PathBuf, Vec<u8>>) -> BTreeMap<String, String> {
    tree.into_iter()
        .map(|(p, b)| (p.to_string_lossy().replace('\\', "/"), b))
        .filter(|(p, _)| p.rsplit('/').next() != Some(meshgen::write::MARKER))
        .map(|(p, b)| (p, String::from_utf8(b).unwrap()))
        .collect()
}

/// The golden fleets (issue 34, in the layout of issue 33 point 5): the
/// entry points (`argocd/`, `flux/`) are kept whole under
/// `tests/fleets/<fleet>/out/`; each cluster's tree, which
/// [`each_cluster_is_byte_for_byte_its_single_render`] proves is its
/// single render, is a delta snapshot against the reference tree
/// `tests/golden/defaults` (`fleet__cluster@<fleet>-<cluster>.snap`, a
/// patch `git apply` reads). `MESHGEN_UPDATE_GOLDEN=1` accepts both.
/// `.ci/run` renders the fleets whole to validate and build them.
#[test]
fn golden_fleets_render_as_committed() {
    let update = std::env::var_os("MESHGEN_UPDATE_GOLDEN").is_some();
    assert!(!update || std::env::var_os("CI").is_none(), "not in CI");
    let reference = root().join("tests/golden/defaults");
    for name in FLEETS {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let o = run(
            &fleet_dir(name),
            &[
                "generate",
                "--fleet",
                "fleet.yaml",
                "-o",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let rendered = without_markers(read_tree(&out));
        let (clusters, entry): (meshgen::write::Files, meshgen::write::Files) = rendered
            .into_iter()
            .partition(|(rel, _)| rel.starts_with("clusters/"));
        let golden = fleet_dir(name).join("out");
        if update {
            if golden.exists() {
                std::fs::remove_dir_all(&golden).unwrap();
            }
            for (rel, text) in &entry {
                let p = golden.join(rel);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            }
        } else {
            let expected = without_markers(read_tree(&golden));
            let d = meshgen::write::diff(&golden, &entry, &[]).unwrap();
            assert!(
                d.is_empty() && expected.len() == entry.len(),
                "tests/fleets/{name}/out differs (MESHGEN_UPDATE_GOLDEN=1 to accept, then review git diff):\n{d}"
            );
        }
        let mut names: Vec<&str> = clusters
            .keys()
            .filter_map(|rel| rel.split('/').nth(1))
            .collect();
        names.dedup();
        for cluster in names {
            let prefix = format!("clusters/{cluster}/");
            let files: meshgen::write::Files = clusters
                .iter()
                .filter_map(|(rel, text)| {
                    rel.strip_prefix(&prefix)
                        .map(|r| (r.to_string(), text.clone()))
                })
                .collect();
            let delta = meshgen::write::diff(&reference, &files, &[]).unwrap();
            let snapshot = format!("cluster@{name}-{cluster}");
            let description = format!(
                "what cluster {cluster} of the golden fleet tests/fleets/{name} renders differently from tests/golden/defaults: a patch git apply reads"
            );
            if update {
                let text = format!(
                    "---\nsource: tests/fleet.rs\ndescription: \"{description}\"\n---\n{}\n",
                    delta.trim_end()
                );
                std::fs::write(
                    root().join(format!("tests/snapshots/fleet__{snapshot}.snap")),
                    text,
                )
                .unwrap();
                continue;
            }
            insta::with_settings!({
                description => description,
                omit_expression => true,
            }, {
                insta::assert_snapshot!(snapshot, delta);
            });
        }
    }
}

/// The arguments of a single `meshgen generate` with a cluster's layers,
/// as README "Fleets" says them.
fn single_args(fleet: &meshgen::fleet::Fleet, cluster: &str) -> Vec<String> {
    let c = fleet.clusters.iter().find(|c| c.name == cluster).unwrap();
    let inputs = c.inputs();
    let mut args = vec!["generate".to_string()];
    if let Some(p) = &inputs.preset {
        args.extend(["--preset".into(), p.clone()]);
    }
    for f in &inputs.files {
        args.extend(["-f".into(), f.display().to_string()]);
    }
    for s in &inputs.sets {
        let flag = if s.force_string {
            "--set-string"
        } else {
            "--set"
        };
        args.extend([flag.into(), s.text.clone()]);
    }
    args
}

#[test]
fn each_cluster_is_byte_for_byte_its_single_render() {
    for name in FLEETS {
        let dir = fleet_dir(name);
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let o = run(
            &dir,
            &[
                "generate",
                "--fleet",
                "fleet.yaml",
                "-o",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let fleet = meshgen::fleet::load(
            &dir.join("fleet.yaml"),
            &mut meshgen::source::SourceMap::default(),
        )
        .unwrap();
        for c in &fleet.clusters {
            let single = tmp.path().join(format!("single-{}", c.name));
            let mut args = single_args(&fleet, &c.name);
            args.extend(["-o".into(), single.display().to_string()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = run(&dir, &args);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            let a = read_tree(&out.join("clusters").join(&c.name));
            let b = read_tree(&single);
            assert!(a.len() > 10, "{name}/{}: {} files", c.name, a.len());
            assert_eq!(
                a.keys().collect::<Vec<_>>(),
                b.keys().collect::<Vec<_>>(),
                "{name}/{}",
                c.name
            );
            // The markers too: the same binary writes the same bytes.
            for (path, bytes) in &a {
                assert!(
                    b.get(path) == Some(bytes),
                    "{name}/{}: {} differs from the single render",
                    c.name,
                    path.display()
                );
            }
        }
    }
}

/// Validate every document of `file` against `schema` (JSON Schema).
fn validate(schema: &Path, file: &Path) {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    for doc in common::docs(&text) {
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
    }
}

#[test]
fn the_entry_points_validate_against_their_schemas() {
    let Some(appset) = common::shared(
        "schemas/applicationset-argoproj-v1alpha1.json",
        "the_entry_points_validate_against_their_schemas",
    ) else {
        return;
    };
    let Some(flux) = common::shared(
        "schemas/kustomization-kustomize-v1.json",
        "the_entry_points_validate_against_their_schemas",
    ) else {
        return;
    };
    validate(
        &appset,
        &fleet_dir("argocd").join("out/argocd/applicationset.yaml"),
    );
    for c in ["dev", "staging", "prod"] {
        validate(
            &flux,
            &fleet_dir("flux").join(format!("out/flux/{c}/deploykf-platform.yaml")),
        );
    }
}

/// A scratch fleet: the golden argocd fleet copied, so a test may edit it.
fn scratch(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_tree(&fleet_dir(name), &tmp.path().join("fleet"));
    let _ = std::fs::remove_dir_all(tmp.path().join("fleet/out"));
    tmp
}

#[test]
fn the_fleet_is_written_all_or_none() {
    let tmp = scratch("argocd");
    let dir = tmp.path().join("fleet");
    let o = run(&dir, &["generate", "--fleet", "fleet.yaml", "-o", "../out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let before = read_tree(&tmp.path().join("out"));
    // One cluster's values break: no cluster changes.
    let prod = std::fs::read_to_string(dir.join("values/prod.yaml")).unwrap();
    std::fs::write(
        dir.join("values/prod.yaml"),
        prod.replace(
            "hostname: ml.example.net",
            "hostname: ml.example.net\n      ports: {https: 0}",
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("values/dev.yaml"),
        std::fs::read_to_string(dir.join("values/dev.yaml"))
            .unwrap()
            .replace("dev.ml.example.net", "dev2.ml.example.net"),
    )
    .unwrap();
    let o = run(&dir, &["generate", "--fleet", "fleet.yaml", "-o", "../out"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("in cluster `prod`:") && stderr(&o).contains("--> values/prod.yaml:"),
        "{}",
        stderr(&o)
    );
    assert_eq!(before, read_tree(&tmp.path().join("out")));
    // A file meshgen did not write, in one cluster's directory: refused,
    // nothing changes.
    std::fs::write(tmp.path().join("out/clusters/dev/notes.txt"), "mine").unwrap();
    std::fs::write(dir.join("values/prod.yaml"), prod).unwrap();
    let o = run(&dir, &["generate", "--fleet", "fleet.yaml", "-o", "../out"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("clusters/dev/notes.txt"),
        "{}",
        stderr(&o)
    );
    let mut expected = before.clone();
    expected.insert(PathBuf::from("clusters/dev/notes.txt"), b"mine".to_vec());
    assert_eq!(expected, read_tree(&tmp.path().join("out")));
}

#[test]
fn diff_reports_only_the_changed_cluster() {
    let tmp = scratch("argocd");
    let dir = tmp.path().join("fleet");
    let o = run(&dir, &["generate", "--fleet", "fleet.yaml", "-o", "../out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let fleet_diff = |extra: &[&str]| {
        let mut args = vec!["diff", "--fleet", "fleet.yaml", "-o", "../out"];
        args.extend(extra);
        run(&dir, &args)
    };
    let o = fleet_diff(&["--exit-code"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    // Promotion is a values change: staging's host name.
    std::fs::write(
        dir.join("values/staging.yaml"),
        std::fs::read_to_string(dir.join("values/staging.yaml"))
            .unwrap()
            .replace("staging.ml.example.net", "stage.ml.example.net"),
    )
    .unwrap();
    let o = fleet_diff(&["--exit-code"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let patch = stdout(&o);
    let touched: Vec<&str> = patch
        .lines()
        .filter_map(|l| l.strip_prefix("diff --meshgen a/"))
        .collect();
    assert!(!touched.is_empty());
    assert!(
        touched.iter().all(|l| l.starts_with("clusters/staging/")),
        "{touched:?}"
    );
    assert!(
        stderr(&o).contains("cluster `dev`: unchanged"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("cluster `staging`: changed"),
        "{}",
        stderr(&o)
    );
    let o = fleet_diff(&["--stat"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stat = stdout(&o);
    assert!(stat.starts_with("cluster `staging`:\n"), "{stat}");
    assert!(!stat.contains("clusters/dev/"), "{stat}");
    // Paths narrow it.
    let o = fleet_diff(&["--stat", "--", "clusters/dev"]);
    assert_eq!(stdout(&o), "");
}

/// The fleet file `fleet` and the values `files` in a new directory,
/// rendered with `generate --fleet`; what it printed snapshotted.
fn check_snapshot(name: &str, description: &str, fleet: &str, files: &[(&str, &str)]) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("fleet.yaml"), fleet).unwrap();
    for (path, text) in files {
        std::fs::write(tmp.path().join(path), text).unwrap();
    }
    let args = ["generate", "--fleet", "fleet.yaml", "-o", "out"];
    let o = run(tmp.path(), &args);
    let text = format!(
        "exit_code: {}\n----- fleet.yaml -----\n{fleet}----- stderr -----\n{}",
        o.status.code().unwrap_or(-1),
        stderr(&o)
            .lines()
            .filter(|l| !l.contains("self-signed CA"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    insta::with_settings!({
        description => description,
        info => &args,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
    if o.status.code() == Some(1) {
        assert!(!tmp.path().join("out").exists(), "nothing is written");
    }
}

#[test]
fn fleet_checks() {
    check_snapshot(
        "duplicate_cluster_names",
        "two clusters named alike",
        "clusters:\n  - name: dev\n  - name: prod\n  - name: dev\n",
        &[],
    );
    check_snapshot(
        "duplicate_destinations",
        "two clusters deploying to one Argo CD cluster",
        "clusters:\n  - name: a\n    destination: {name: eu}\n  - name: b\n    destination: {name: eu}\n",
        &[],
    );
    check_snapshot(
        "same_hostname_and_address",
        "two clusters on the defaults' host name; two with one load balancer IP",
        "clusters:\n  - name: a\n    set: [\"deploykf_core.deploykf_istio_gateway.gatewayService.loadBalancerIP=198.51.100.7\"]\n  - name: b\n    set: [\"deploykf_core.deploykf_istio_gateway.gatewayService.loadBalancerIP=198.51.100.7\"]\n",
        &[],
    );
    check_snapshot(
        "istio_minors_apart",
        "one cluster two Istio minors behind (a warning: it still renders)",
        "clusters:\n  - name: new\n    set: [\"deploykf_core.deploykf_istio_gateway.gateway.hostname=new.example.com\"]\n  - name: old\n    values: [old.yaml]\n",
        &[(
            "old.yaml",
            "deploykf_core:\n  deploykf_istio_gateway:\n    gateway: {hostname: old.example.com}\n    charts: {istioGateway: {version: \"1.28.0\"}}\ndeploykf_dependencies:\n  istio:\n    charts:\n      istioBase: {version: \"1.28.0\"}\n      istioDaemon: {version: \"1.28.0\"}\n",
        )],
    );
    check_snapshot(
        "security_turned_off",
        "an overlay turning off what the base turns on: each key listed, with where it was set",
        "base: [base.yaml]\nclusters:\n  - name: dev\n    values: [dev.yaml]\n",
        &[
            (
                "base.yaml",
                "deploykf_dependencies:\n  istio:\n    meshWideStrictMtls: true\n    egress: {mode: registry-only}\n",
            ),
            (
                "dev.yaml",
                "deploykf_core:\n  deploykf_auth:\n    enabled: false\n  deploykf_istio_gateway:\n    namespacePodSecurity: baseline\n    gateway:\n      tls: {redirect: false}\n  deploykf_profiles_generator:\n    namespacePodSecurity: privileged\ndeploykf_dependencies:\n  istio:\n    meshWideStrictMtls: false\n    egress: {mode: open}\n",
            ),
        ],
    );
    check_snapshot(
        "delivery_mismatch",
        "Argo CD clusters whose tree says it lives elsewhere, and two with one Application prefix",
        "base: [base.yaml]\nclusters:\n  - name: a\n    set: [\"argocd.source.repo.path=./fleet/clusters/a/\", \"deploykf_core.deploykf_istio_gateway.gateway.hostname=a.example.com\"]\n    destination: {name: a}\n  - name: b\n    set: [\"argocd.source.repo.path=./elsewhere/\", \"deploykf_core.deploykf_istio_gateway.gateway.hostname=b.example.com\"]\n    destination: {name: b}\n",
        &[(
            "base.yaml",
            "argocd:\n  appNamePrefix: fleet-\n  source:\n    repo: {url: \"https://git.example.com/p\", revision: main}\n",
        )],
    );
    check_snapshot(
        "bad_fleet_file",
        "a fleet file's errors, located, with suggestions",
        "bases: [x.yaml]\nclusters:\n  - name: Dev\n  - name: b\n    values: x.yaml\n    destination: {server: a, name: b}\n  - name: c\n    preset: nope\n",
        &[],
    );
}

#[test]
fn a_fleet_is_never_written_to_stdout() {
    let o = run(
        &fleet_dir("argocd"),
        &["generate", "--fleet", "fleet.yaml", "-o", "-"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).is_empty());
    assert!(
        stderr(&o).starts_with("error[fleet]: a fleet is written to a directory"),
        "{}",
        stderr(&o)
    );
    let o = run(&fleet_dir("argocd"), &["generate", "--fleet", "fleet.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn schema_fleet_prints_the_fleet_files_schema() {
    let o = run(&root(), &["schema", "--fleet"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["required"], serde_json::json!(["clusters"]));
}

/// Issue 33 point 4 for fleets: `--deny-warnings` fails a fleet whose
/// cluster or fleet-wide check warns, writing nothing; `--allow-warning`
/// of that code lets it through.
#[test]
fn deny_warnings_and_allow_warning_apply_to_a_fleet() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("fleet.yaml"),
        "clusters:\n  - name: new\n    set: [\"deploykf_core.deploykf_istio_gateway.gateway.hostname=new.example.com\"]\n  - name: old\n    values: [old.yaml]\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("old.yaml"),
        "deploykf_core:\n  deploykf_istio_gateway:\n    gateway: {hostname: old.example.com}\n    charts: {istioGateway: {version: \"1.28.0\"}}\ndeploykf_dependencies:\n  istio:\n    charts:\n      istioBase: {version: \"1.28.0\"}\n      istioDaemon: {version: \"1.28.0\"}\n",
    )
    .unwrap();
    let base = ["generate", "--fleet", "fleet.yaml", "-o", "out"];
    let o = run(tmp.path(), &[&base[..], &["--deny-warnings"]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning[fleet-istio-skew]"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("denied by --deny-warnings"),
        "{}",
        stderr(&o)
    );
    assert!(!tmp.path().join("out").exists(), "nothing is written");
    // Every other warning these clusters raise, allowed too.
    let o = run(
        tmp.path(),
        &[
            &base[..],
            &[
                "--deny-warnings",
                "--allow-warning",
                "fleet-istio-skew",
                "--allow-warning",
                "self-signed-ca",
                "--allow-warning",
                "fleet-repo-unset",
                "--allow-warning",
                "argocd-repo-unset",
            ],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("fleet-istio-skew"), "{}", stderr(&o));
    assert!(tmp.path().join("out/clusters/old").is_dir());
}

/// Issue 34 with issue 33: a host name one cluster's additional gateway
/// serves and another cluster's primary gateway serves is one clash,
/// named at the additional gateway's key.
#[test]
fn a_host_name_clash_through_an_additional_gateway_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("fleet.yaml"),
        "clusters:\n  - name: a\n    set: [\"deploykf_core.deploykf_istio_gateway.gateway.hostname=a.example.com\"]\n  - name: b\n    values: [b.yaml]\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("b.yaml"),
        "deploykf_core:\n  deploykf_istio_gateway:\n    gateway: {hostname: b.example.com}\n    additionalGateways:\n      - auth: token\n        gateway: {name: internal-gateway, hostname: a.example.com}\n        apps: []\n",
    )
    .unwrap();
    let o = run(
        tmp.path(),
        &["generate", "--fleet", "fleet.yaml", "-o", "out"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "`deploykf_core.deploykf_istio_gateway.additionalGateways[0].gateway.hostname`"
        ) && stderr(&o).contains("clusters `a` and `b` both claim `a.example.com`"),
        "{}",
        stderr(&o)
    );
}

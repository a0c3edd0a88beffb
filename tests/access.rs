//! `meshgen access explain` and `meshgen access check` through the real
//! binary (issue 31): on the golden values of every mode combination,
//! from values or a tree on disk, with `--with` other manifests, and the
//! exit codes and located errors of a check file.

mod common;

use common::{root, run_meshgen};
use std::path::Path;
use std::process::Output;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The values arguments of a golden case (its values file, or its base's,
/// and its `set-args`).
fn case_args(case: &str) -> Vec<String> {
    let dir = root().join("tests/cases").join(case);
    let base = std::fs::read_to_string(dir.join("base")).ok();
    let values = match &base {
        Some(b) => root()
            .join("tests/cases")
            .join(b.trim())
            .join("values.yaml"),
        None => dir.join("values.yaml"),
    };
    let mut args = vec!["-f".to_string(), values.display().to_string()];
    if let Ok(sets) = std::fs::read_to_string(dir.join("set-args")) {
        for s in sets.lines().filter(|l| !l.trim().is_empty()) {
            args.extend(["--set".to_string(), s.trim().to_string()]);
        }
    }
    args
}

/// `meshgen access explain` on a case's values; exit 0 expected.
fn explain(dir: &Path, case: &str, who: &[&str], request: &[&str]) -> String {
    let mut args: Vec<String> = vec!["access".into(), "explain".into()];
    args.extend(case_args(case));
    args.extend(who.iter().map(|s| s.to_string()));
    args.extend(request.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run_meshgen(dir, &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
}

const MAIN: &str = "https://deploykf.example.com";
const GW: &str = "manifests/deploykf-core/deploykf-istio-gateway";

/// The verdict line of an explanation.
fn verdict(out: &str) -> &str {
    out.lines()
        .find_map(|l| l.strip_prefix("verdict: "))
        .unwrap_or_else(|| panic!("no verdict in {out}"))
}

#[test]
fn explain_names_each_deciding_object_and_its_file_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    for case in [
        "istio-sidecar",
        "gateway-api-sidecar",
        "istio-ambient",
        "gateway-api-ambient",
    ] {
        let api = case.starts_with("gateway-api");
        // Without a session: the login, named by its policy.
        let out = explain(
            dir.path(),
            case,
            &["--anonymous"],
            &["GET", &format!("{MAIN}/")],
        );
        assert!(verdict(&out).starts_with("login redirect"), "{case}: {out}");
        assert!(
            out.contains(&format!(
                "by AuthorizationPolicy/deploykf-istio-gateway/deploykf-gateway-login ({GW}/AuthorizationPolicy-login.yaml)"
            )),
            "{case}: {out}"
        );
        // Plain HTTP: redirected to HTTPS by the HTTP listener's route.
        let out = explain(
            dir.path(),
            case,
            &["--anonymous"],
            &["GET", "http://deploykf.example.com/x"],
        );
        assert_eq!(
            verdict(&out),
            "redirected (https://deploykf.example.com/x)",
            "{case}"
        );
        // A signed-in user reaches an app on its subdomain, through the
        // route of the case's routing API, and the app's policy admits
        // the gateway at its pods (the sidecar, or the ambient enforcers).
        let out = explain(
            dir.path(),
            case,
            &["--as", "alice@example.com"],
            &["GET", "https://minio-console.deploykf.example.com/"],
        );
        assert_eq!(
            verdict(&out),
            "allowed (minio-console.minio.svc.cluster.local receives it)",
            "{case}: {out}"
        );
        let route = if api { "HTTPRoute/" } else { "VirtualService/" };
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(&format!("by {route}"))),
            "{case}: {out}"
        );
        // A pod of another namespace to a profile's workload: refused by
        // the profile's NetworkPolicies (issue 28.9) before its Istio
        // policies (which refuse it too: tests/auth/netpol.rs).
        let out = explain(
            dir.path(),
            case,
            &["--from-pod", "team-x/default"],
            &["GET", "http://nb.research/"],
        );
        assert_eq!(
            verdict(&out),
            "403 denied (a NetworkPolicy of research refuses team-x)",
            "{case}: {out}"
        );
        assert!(
            out.contains("by NetworkPolicy/research/default-deny-ingress"),
            "{case}: {out}"
        );
        // Without the profiles' NetworkPolicies, the Istio layer refuses it.
        let out = explain(
            dir.path(),
            case,
            &[
                "--set",
                "deploykf_core.deploykf_profiles_generator.networkPolicy.enabled=false",
                "--from-pod",
                "team-x/default",
            ],
            &["GET", "http://nb.research/"],
        );
        assert_eq!(
            verdict(&out),
            "403 denied (refused at nb.research.svc.cluster.local)",
            "{case}: {out}"
        );
        let enforcer = if case.ends_with("ambient") {
            "at ztunnel: no rule of the"
        } else {
            "at the sidecar: no rule of the"
        };
        assert!(out.contains(enforcer), "{case}: {out}");
        // Anything else stays closed: an unknown host is not routed.
        let out = explain(
            dir.path(),
            case,
            &["--as", "alice@example.com"],
            &["GET", "https://other.example.net/"],
        );
        assert!(
            matches!(verdict(&out), v if v.starts_with("not routed") || v.starts_with("403")),
            "{case}: {out}"
        );
    }
}

#[test]
fn explain_on_the_istio_sidecar_golden_values() {
    let dir = tempfile::tempdir().unwrap();
    // The dashboard: its Service is Kubeflow's, not in the tree, so the
    // destination is judged at a pod of its namespace, on the port the
    // app's policy names (the app's `targetPort`), as the trace says.
    let out = explain(
        dir.path(),
        "istio-sidecar",
        &["--as", "alice@example.com"],
        &["GET", &format!("{MAIN}/")],
    );
    insta::assert_snapshot!("explain_istio_sidecar_user", out);
    // The public status page, for anyone.
    let out = explain(
        dir.path(),
        "istio-sidecar",
        &["--anonymous"],
        &["GET", &format!("{MAIN}/status/x")],
    );
    insta::assert_snapshot!("explain_istio_sidecar_public", out);
    // A pod of another namespace to a profile's workload: refused by
    // the profile's namespace-wide policies.
    let out = explain(
        dir.path(),
        "istio-sidecar",
        &["--from-pod", "team-x/default"],
        &["GET", "http://nb.research/"],
    );
    insta::assert_snapshot!("explain_istio_sidecar_from_pod", out);
}

/// `--tree` reads what `generate -o` wrote and explains the same.
#[test]
fn explain_reads_a_tree_on_disk_as_the_render() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["generate".to_string()];
    args.extend(case_args("istio-ambient"));
    args.extend(["-o".into(), "out".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run_meshgen(dir.path(), &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let request = [
        "--as",
        "alice@example.com",
        "GET",
        "https://minio-console.deploykf.example.com/",
    ];
    let mut from_tree = vec!["access", "explain", "--tree", "out"];
    from_tree.extend(request);
    let o = run_meshgen(dir.path(), &from_tree);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rendered = explain(dir.path(), "istio-ambient", &request[..2], &request[2..]);
    assert_eq!(stdout(&o), rendered);
    // --tree and values are one or the other.
    let o = run_meshgen(
        dir.path(),
        &[
            "access",
            "explain",
            "--tree",
            "out",
            "--set",
            "a=b",
            "--anonymous",
            "GET",
            MAIN,
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// What a user typed is printed escaped: no terminal control reaches the
/// terminal.
#[test]
fn explain_escapes_what_users_typed() {
    let dir = tempfile::tempdir().unwrap();
    let out = explain(
        dir.path(),
        "istio-sidecar",
        &["--as", "eve\u{1b}]0;x\u{7}@example.com"],
        &["GET", &format!("{MAIN}/status/\u{1b}[2J")],
    );
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert!(out.contains("eve\\u{1b}]0;x\\u{7}@example.com"), "{out}");
}

/// With `--with`, Kubeflow's built applications are part of the tree:
/// the owner reaches the central dashboard through Kubeflow's own route,
/// NetworkPolicy and sidecar policy (skipped without `../shared`).
#[test]
fn explain_with_kubeflow_built_manifests() {
    let Some(built) = common::shared(
        "reference/kubeflow-26.03/built",
        "explain_with_kubeflow_built_manifests",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let with: Vec<String> = [
        "centraldashboard.yaml",
        "kubeflow-namespace.yaml",
        "profiles.yaml",
    ]
    .iter()
    .map(|f| built.join(f).display().to_string())
    .collect();
    let mut args = vec!["access", "explain", "--preset", "kubeflow"];
    for w in &with {
        args.extend(["--with", w]);
    }
    args.extend([
        "--as",
        "admin@example.com",
        "GET",
        "https://deploykf.example.com/",
    ]);
    let o = run_meshgen(dir.path(), &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(
        verdict(&out),
        "allowed (centraldashboard.kubeflow.svc.cluster.local receives it)",
        "{out}"
    );
    for object in [
        "by VirtualService/kubeflow/centraldashboard",
        "by NetworkPolicy/kubeflow/centraldashboard",
        "by AuthorizationPolicy/kubeflow/central-dashboard",
    ] {
        assert!(out.contains(object), "{object}: {out}");
    }
}

const EXPECT: &str = "\
- as: {user: alice@example.com}
  request: GET https://minio-console.deploykf.example.com/
  expect: allow
- as: anonymous
  request: GET https://deploykf.example.com/
  expect: login
- as: anonymous
  request: GET http://deploykf.example.com/
  expect: redirect
- as: {serviceAccount: team-1/pipeline-runner}
  request: GET https://deploykf.example.com/status/x
  expect: allow
- as: {fromPod: team-x/default}
  request: GET http://nb.research/
  expect: deny
";

fn check(dir: &Path, file: &str, text: &str, case: &str) -> Output {
    std::fs::write(dir.join(file), text).unwrap();
    let mut args = vec!["access".to_string(), "check".into(), file.into()];
    args.extend(case_args(case));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_meshgen(dir, &args)
}

#[test]
fn check_passes_when_every_expectation_holds() {
    let dir = tempfile::tempdir().unwrap();
    for case in ["istio-sidecar", "gateway-api-ambient"] {
        let o = check(dir.path(), "expect.yaml", EXPECT, case);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{case}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(
            stdout(&o).ends_with("5 expectations: 5 hold, 0 failed\n"),
            "{}",
            stdout(&o)
        );
    }
}

/// A wrong expectation fails with its trace (exit 1); the others still
/// run.
#[test]
fn check_fails_with_the_trace_of_a_wrong_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = EXPECT.replacen("expect: login", "expect: allow", 1);
    let o = check(dir.path(), "expect.yaml", &wrong, "istio-sidecar");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    insta::assert_snapshot!("check_fails_with_trace", stdout(&o));
}

/// A malformed file: every error located (file:line:col and key path),
/// with a suggestion for a misspelt key or verdict; exit 2, nothing
/// checked.
#[test]
fn check_refuses_a_malformed_file_with_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = "\
- as: {usr: alice@example.com}
  request: GET https://deploykf.example.com/
  expect: alow
- as: {serviceAccount: pipeline-runner}
  requets: GET https://deploykf.example.com/
  expect: deny
";
    let o = check(dir.path(), "expect.yaml", bad, "istio-sidecar");
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert_eq!(stdout(&o), "");
    insta::assert_snapshot!("check_malformed", stderr(&o));
    // A tree that can not be read checks nothing either.
    std::fs::write(dir.path().join("ok.yaml"), EXPECT).unwrap();
    let o = run_meshgen(
        dir.path(),
        &["access", "check", "ok.yaml", "--tree", "missing"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).ends_with("meshgen: 1 error; nothing was checked (exit code 2)\n"),
        "{}",
        stderr(&o)
    );
}

/// The README's section: its check file holds on the golden values it
/// names, and its explain examples print what the binary prints.
#[test]
fn the_readme_examples_are_what_the_binary_prints() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let at = readme
        .find("### `meshgen access check`")
        .expect("the README's check section");
    let block = &readme[at..];
    let start = block.find("```yaml\n").unwrap() + "```yaml\n".len();
    let len = block[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let o = check(
        dir.path(),
        "access.yaml",
        &block[start..start + len],
        "istio-sidecar",
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    for (who, url) in [
        ("--anonymous", "https://deploykf.example.com/status/x"),
        ("--from-pod team-x/default", "http://nb.research/"),
    ] {
        let who: Vec<&str> = who.split(' ').collect();
        let out = explain(dir.path(), "istio-sidecar", &who, &["GET", url]);
        let shown = format!(
            "$ meshgen access explain -f tests/cases/istio-sidecar/values.yaml {} GET {url}\n{out}",
            who.join(" ")
        );
        assert!(readme.contains(&shown), "README.md should show:\n{shown}");
    }
    let case = "egress-registry-only";
    let url = "https://pypi.org/simple/";
    let out = explain(
        dir.path(),
        case,
        &["--from-pod", "team-c/default-editor"],
        &["GET", url],
    );
    let shown = format!(
        "$ meshgen access explain -f tests/cases/{case}/values.yaml --from-pod team-c/default-editor GET {url}\n{out}"
    );
    assert!(readme.contains(&shown), "README.md should show:\n{shown}");
}

/// Several gateways (issue 33): `explain` and `check` pick the gateway by
/// the URL's host, as a client's DNS would, on the `two-gateways` case (a
/// public `login` gateway at ml.example.com, an internal `token` one at
/// ml.internal.example.com). The same path: a browser without a session
/// gets the login at the public host; at the internal host it is refused
/// with no login page (403: the internal gateway's `require-jwt` DENY
/// policy matches a request without a request principal, istio/istio
/// pilot/pkg/security/authz/builder/builder.go:130: a DENY policy is an RBAC
/// filter whose match is a 403), and a signed-in user's token is let in
/// with their identity. A host no gateway serves is not routed.
#[test]
fn explain_and_check_pick_the_gateway_by_host() {
    const INTERNAL_GW: &str = "manifests/deploykf-core/deploykf-istio-gateway-internal-gateway";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let runs = "/pipeline/apis/v2beta1/runs";
    let public = format!("https://ml.example.com{runs}");
    let internal = format!("https://ml.internal.example.com{runs}");

    let out = explain(d, "two-gateways", &["--anonymous"], &["GET", &public]);
    assert!(verdict(&out).starts_with("login redirect"), "{out}");
    assert!(
        out.contains(&format!("served by the gateway of {GW}\n")),
        "{out}"
    );

    let out = explain(d, "two-gateways", &["--anonymous"], &["GET", &internal]);
    assert!(verdict(&out).starts_with("403 denied"), "{out}");
    assert!(
        out.contains(&format!(
            "({INTERNAL_GW}/AuthorizationPolicy-require-jwt.yaml)"
        )),
        "the steps name the internal gateway's own files: {out}"
    );
    assert!(
        !out.contains("ext-authz"),
        "a login on the internal gateway: {out}"
    );

    let who = ["--as", "alice@example.com"];
    let out = explain(d, "two-gateways", &who, &["GET", &internal]);
    assert!(verdict(&out).starts_with("allowed"), "{out}");
    assert!(
        out.contains(r#"{"kubeflow-userid": "alice@example.com"}"#),
        "{out}"
    );

    let out = explain(
        d,
        "two-gateways",
        &["--anonymous"],
        &["GET", "https://x.example.com/"],
    );
    assert_eq!(
        verdict(&out),
        "not routed (no gateway serves x.example.com)"
    );
    assert!(
        out.contains("the gateways serve ml.example.com, ml.internal.example.com"),
        "{out}"
    );

    let expect = format!(
        "\
- as: anonymous
  request: GET {public}
  expect: login
- as: anonymous
  request: GET {internal}
  expect: deny
- as: {{user: alice@example.com}}
  request: GET {internal}
  expect: allow
- as: anonymous
  request: GET http://ml.internal.example.com{runs}
  expect: redirect
- as: anonymous
  request: GET https://x.example.com/
  expect: not-routed
"
    );
    let o = check(d, "expect.yaml", &expect, "two-gateways");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).ends_with("5 expectations: 5 hold, 0 failed\n"),
        "{}",
        stdout(&o)
    );
}

/// A pod connecting to a host outside the cluster (`--from-pod` with a
/// host that is no Service of the cluster): judged by the egress model
/// (`meshgen::access::egress`, issue 32 point 5) over what the CLI reads
/// of the tree, which includes the mesh config of the Istio wrapper
/// chart's values (before, its REGISTRY_ONLY was not read and every host
/// was reached). The cases' own statements: team-a may reach PyPI,
/// team-c nothing, the auth namespace keeps open egress.
#[test]
fn explain_and_check_judge_a_pod_connecting_outside_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let case = "egress-registry-only";
    let pod = |ns: &str, url: &str| {
        let from = format!("{ns}/default-editor");
        explain(dir.path(), case, &["--from-pod", &from], &["GET", url])
    };
    let out = pod("team-a", "https://pypi.org/simple/");
    assert_eq!(verdict(&out), "allowed (pypi.org:443 is reached)", "{out}");
    assert!(
        out.contains("istio-injection: enabled: the pod has a sidecar\n     by Namespace/team-a (manifests/deploykf-core/deploykf-profiles-generator/team-a.yaml)"),
        "{out}"
    );
    assert!(
        out.contains("taken to resolve to the public address 198.51.100.10"),
        "{out}"
    );
    for (ns, url, host) in [
        (
            "team-a",
            "https://exfil.example.net/x",
            "exfil.example.net:443",
        ),
        ("team-a", "http://pypi.org/", "pypi.org:80"),
        ("team-c", "https://pypi.org/", "pypi.org:443"),
        ("team-a", "https://203.0.113.7/", "203.0.113.7:443"),
    ] {
        let out = pod(ns, url);
        assert_eq!(
            verdict(&out),
            format!("403 denied (REGISTRY_ONLY: no ServiceEntry seen from `{ns}` declares {host})"),
            "{out}"
        );
    }
    let out = pod("team-c", "https://pypi.org/");
    assert!(
        out.contains("the sidecar's outbound traffic policy is REGISTRY_ONLY, from the mesh config (istio-daemon.meshConfig in manifests/deploykf-dependencies/istio/values.yaml)"),
        "{out}"
    );
    // Its own Sidecar keeps the auth namespace's egress open.
    let out = pod("deploykf-auth", "https://exfil.example.net/");
    assert!(verdict(&out).starts_with("allowed"), "{out}");
    assert!(
        out.contains("the sidecar's outbound traffic policy is ALLOW_ANY\n     by Sidecar/deploykf-auth/default (manifests/deploykf-core/deploykf-auth/Sidecar.yaml)"),
        "{out}"
    );
    assert!(!out.contains("not modelled"), "{out}");
    // A name of the cluster's DNS is still a Service: `.svc`, or a
    // namespace the tree holds.
    let out = pod("team-a", "http://nb.team-c.svc/");
    assert!(!out.contains("outside the cluster"), "{out}");
    // The same in ambient, through the egress waypoint.
    let ambient = |ns: &str, url: &str| {
        let mut args: Vec<String> = ["access", "explain", "-f"].map(String::from).to_vec();
        for f in ["istio-sidecar", "egress-ambient"] {
            args.push(
                root()
                    .join("tests/cases")
                    .join(f)
                    .join("values.yaml")
                    .display()
                    .to_string(),
            );
            args.push("-f".into());
        }
        args.pop();
        for s in [
            "deploykf_core.deploykf_istio_gateway.api=gateway-api",
            "deploykf_dependencies.istio.dataplaneMode=ambient",
        ] {
            args.extend(["--set".to_string(), s.to_string()]);
        }
        args.extend([
            "--from-pod".into(),
            format!("{ns}/default-editor"),
            "GET".into(),
            url.into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run_meshgen(dir.path(), &args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stdout(&o)
    };
    let out = ambient("team-a", "https://pypi.org/");
    assert_eq!(verdict(&out), "allowed (pypi.org:443 is reached)", "{out}");
    assert!(
        out.contains("the namespace is ambient: ztunnel takes the pod's traffic"),
        "{out}"
    );
    let out = ambient("team-c", "https://pypi.org/");
    assert!(
        verdict(&out).starts_with("403 denied (ServiceEntry/deploykf-istio-egress/")
            && verdict(&out).contains("a NetworkPolicy refuses `team-c`"),
        "{out}"
    );
    // `check` takes the same requests.
    let expect = "\
- as: {fromPod: team-a/default-editor}
  request: GET https://pypi.org/simple/
  expect: allow
- as: {fromPod: team-c/default-editor}
  request: GET https://pypi.org/simple/
  expect: deny
";
    let o = check(dir.path(), "egress.yaml", expect, case);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let wrong = expect.replacen("expect: deny", "expect: allow", 1);
    let o = check(dir.path(), "egress.yaml", &wrong, case);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("REGISTRY_ONLY: no ServiceEntry seen from `team-c`"),
        "{}",
        stdout(&o)
    );
}

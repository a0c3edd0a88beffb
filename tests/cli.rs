//! The real binary, as a user runs it: exit codes, one-line messages with
//! key path and file:line:col, and the previous output left untouched by
//! every failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const GW: &str = "deploykf_core.deploykf_istio_gateway";

fn meshgen(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshgen"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run meshgen")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn file(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path().join(name), bytes).unwrap();
    }
    fn run(&self, args: &[&str]) -> Output {
        meshgen(self.path(), args)
    }
}

#[test]
fn defaults_render_and_rerender_byte_identically() {
    let ws = Workspace::new();
    let first = ws.run(&["generate", "-o", "out"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let a = snapshot(&ws.path().join("out"));
    assert!(a.contains_key(Path::new(".meshgen-output")));
    assert!(a.contains_key(Path::new(
        "manifests/deploykf-core/deploykf-istio-gateway/Gateway.yaml"
    )));
    let second = ws.run(&["generate", "-o", "out"]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert!(stderr(&second).contains("replacing the previous output"));
    assert_eq!(a, snapshot(&ws.path().join("out")));
    for (path, bytes) in &a {
        assert!(
            bytes.ends_with(b"\n") && !bytes.ends_with(b"\n\n"),
            "{path:?} must end with one newline"
        );
        assert!(!bytes.contains(&b'\r'), "{path:?} must use LF");
    }
}

/// Each bad input: file content (or none), extra args, and what the one
/// error line must contain.
/// (name, values file content, extra arguments, what the first error line holds)
type BadInput = (
    &'static str,
    Option<&'static [u8]>,
    Vec<&'static str>,
    Vec<&'static str>,
);

fn bad_inputs() -> Vec<BadInput> {
    vec![
        ("missing file", None, vec!["-f", "nope.yaml"], vec!["error: cannot read values file `nope.yaml`: no such file"]),
        ("directory", None, vec!["-f", "."], vec!["values file `.` is a directory"]),
        ("binary", Some(b"a: 1\n\x00\x01\x02"), vec![], vec!["holds binary data", "--> bad.yaml:2:1"]),
        ("not utf-8", Some(b"a: \"caf\xe9\"\n"), vec![], vec!["is not UTF-8 text", "--> bad.yaml:1:8"]),
        ("malformed", Some(b"deploykf_core:\n  x: [1, 2\n"), vec![], vec!["invalid YAML", "--> bad.yaml:"]),
        ("duplicate key", Some(b"deploykf_core: {}\ndeploykf_core: {}\n"), vec![], vec!["duplicate key `deploykf_core` (first set on line 1)", "--> bad.yaml:2:1"]),
        ("top-level list", Some(b"- a\n"), vec![], vec!["top level of a values file must be a map", "--> bad.yaml:1:1"]),
        ("top-level scalar", Some(b"hello\n"), vec![], vec!["got a string", "--> bad.yaml:1:1"]),
        ("two documents", Some(b"a: 1\n---\nb: 2\n"), vec![], vec!["holds one YAML document, found 2", "--> bad.yaml:3:1"]),
        (
            "wrong type",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      selectorLabels: [a]\n"),
            vec![],
            vec!["error: deploykf_core.deploykf_istio_gateway.gateway.selectorLabels: expected a map, got a list", "--> bad.yaml:4:23"],
        ),
        (
            "wrong scalar type",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      xffNumTrustedHops: two\n"),
            vec![],
            vec!["error: deploykf_core.deploykf_istio_gateway.gateway.xffNumTrustedHops: expected an integer, got the string \"two\" --> bad.yaml:4:26"],
        ),
        (
            "bad label key",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      selectorLabels:\n        \"bad key\": x\n"),
            vec![],
            vec!["gateway.selectorLabels[\"bad key\"]: invalid key \"bad key\": expected a label or annotation key", "--> bad.yaml:5:9"],
        ),
        (
            "out of range",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      ports:\n        https: 70000\n"),
            vec![],
            vec!["error: deploykf_core.deploykf_istio_gateway.gateway.ports.https: must be at most 65535, got the number 70000 --> bad.yaml:5:16"],
        ),
        (
            "typo at depth",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      tls:\n        matchSni: false\n"),
            vec![],
            vec!["error: deploykf_core.deploykf_istio_gateway.gateway.tls.matchSni: unknown key `matchSni`; did you mean `matchSNI`? --> bad.yaml:5:9"],
        ),
        (
            "typo in an ignored deployKF section",
            Some(b"kubeflow_tools:\n  pipelines:\n    bukcet: {}\n"),
            vec![],
            vec!["error: kubeflow_tools.pipelines.bukcet: unknown key `bukcet`; did you mean `bucket`? --> bad.yaml:3:5"],
        ),
        (
            "typo at the top",
            Some(b"deploykf_cor: {}\n"),
            vec![],
            vec!["error: deploykf_cor: unknown key `deploykf_cor`; did you mean `deploykf_core`? --> bad.yaml:1:1"],
        ),
        (
            "yaml injection in a hostname",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      hostname: \"x\\\"\\n  evil: true\"\n"),
            vec![],
            vec!["gateway.hostname: expected a DNS name", "--> bad.yaml:4:17"],
        ),
        (
            "hostname with a scheme",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      hostname: https://ml.example.com\n"),
            vec![],
            vec!["gateway.hostname: expected a DNS name", "(no scheme, port, path"],
        ),
        (
            "yaml 1.1 boolean",
            Some(b"deploykf_dependencies:\n  istio:\n    enabled: yes\n"),
            vec![],
            vec!["deploykf_dependencies.istio.enabled: expected a boolean, got `yes`", "write `true`", "--> bad.yaml:3:14"],
        ),
        (
            "version read as a float",
            Some(b"deploykf_dependencies:\n  istio:\n    charts:\n      istioBase:\n        version: 1.30\n"),
            vec![],
            vec!["charts.istioBase.version: expected a string, got `1.30`", "quote it: \"1.30\"", "--> bad.yaml:5:18"],
        ),
        (
            "map over scalar",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      hostname:\n        a: 1\n"),
            vec![],
            vec!["error: deploykf_core.deploykf_istio_gateway.gateway.hostname: expected a string, got a map", "--> bad.yaml:5:9"],
        ),
        (
            "tls disabled (deployKF's rule and tip)",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      tls:\n        enabled: false\n"),
            vec![],
            vec!["gateway.tls.enabled: must be true (TIP: to allow HTTP connections", "--> bad.yaml:5:18"],
        ),
        (
            "redirect without https clients",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      tls:\n        clientsUseHttps: false\n"),
            vec![],
            vec!["gateway.tls.clientsUseHttps: must be true when", "--> bad.yaml:5:26"],
        ),
        (
            "istio versions differ",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    charts:\n      istioGateway:\n        version: \"1.29.1\"\n"),
            vec![],
            vec!["charts.istioGateway.version: must equal `deploykf_dependencies.istio.charts.istioDaemon.version`", "(1.29.1 vs 1.30.3)", "--> bad.yaml:5:18"],
        ),
        (
            "same http and https ports",
            None,
            vec!["--set", "deploykf_core.deploykf_istio_gateway.gateway.ports.http=443"],
            vec!["gateway.ports.https: must differ from", "--> default_values.yaml:"],
        ),
        (
            "bad --set",
            None,
            vec!["--set", "deploykf_core.deploykf_istio_gateway.gateway.ports.https=70000"],
            vec!["ports.https: must be at most 65535", "--> --set deploykf_core.deploykf_istio_gateway.gateway.ports.https=70000 (column 58)"],
        ),
        (
            "extra manifest that is not a Kubernetes object",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    extraManifests:\n      - \"kind: ConfigMap\"\n"),
            vec![],
            vec!["error: deploykf_core.deploykf_istio_gateway.extraManifests[0]: document 0 is not a Kubernetes object", "--> bad.yaml:4:9"],
        ),
        (
            "target CPU above 100",
            None,
            vec!["--set", "deploykf_core.deploykf_istio_gateway.gatewayDeployment.autoscaling.targetCPUUtilizationPercentage=150"],
            vec!["targetCPUUtilizationPercentage: must be at most 100, got the number 150"],
        ),
        (
            "bad CIDR",
            None,
            vec!["--set", "deploykf_core.deploykf_istio_gateway.gatewayService.loadBalancerSourceRanges={10.0.0.0/33}"],
            vec!["loadBalancerSourceRanges[0]: expected an IPv4 or IPv6 CIDR"],
        ),
        (
            "duplicate profile",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    profiles:\n      - name: team-a\n      - name: team-b\n      - name: team-a\n"),
            vec![],
            vec!["error: deploykf_core.deploykf_profiles_generator.profiles[2].name: duplicate profile `team-a` (namespace `team-a`), first defined as `deploykf_core.deploykf_profiles_generator.profiles[0].name` at bad.yaml:4:15", "--> bad.yaml:6:15"],
        ),
        (
            "member with an unknown user",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    profiles:\n      - name: team-a\n        members:\n          - user: nobody\n"),
            vec![],
            vec!["error: deploykf_core.deploykf_profiles_generator.profiles[0].members[0].user: unknown user id `nobody`", "--> bad.yaml:6:19"],
        ),
        (
            "member with an unknown group",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    profiles:\n      - name: team-a\n        members:\n          - group: ghosts\n"),
            vec![],
            vec!["profiles[0].members[0].group: unknown group id `ghosts`", "--> bad.yaml:6:20"],
        ),
        (
            "member with user and group",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    profiles:\n      - name: team-a\n        members:\n          - {user: user-1, group: team-1}\n"),
            vec![],
            vec!["profiles[0].members[0]: a member has either `user` or `group`, not both", "--> bad.yaml:6:13"],
        ),
        (
            "member with neither user nor group",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    profiles:\n      - name: team-a\n        members:\n          - access: {role: edit}\n"),
            vec![],
            vec!["profiles[0].members[0]: a member needs `user` or `group`"],
        ),
        (
            "duplicate user id",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    users:\n      - {id: a, email: a@example.com}\n      - {id: a, email: b@example.com}\n    groups: []\n    profiles: []\n"),
            vec![],
            vec!["users[1].id: duplicate user id `a`, first defined as `deploykf_core.deploykf_profiles_generator.users[0].id` at bad.yaml:4:14"],
        ),
        (
            "duplicate group id",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    users:\n      - {id: a, email: a@example.com}\n    groups:\n      - {id: g, users: [a]}\n      - {id: g, users: []}\n    profiles: []\n"),
            vec![],
            vec!["groups[1].id: duplicate group id `g`, first defined as `deploykf_core.deploykf_profiles_generator.groups[0].id` at bad.yaml:6:14", "--> bad.yaml:7:14"],
        ),
        (
            "invalid email",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    users:\n      - {id: a, email: not-an-email}\n    groups: []\n    profiles: []\n"),
            vec![],
            vec!["users[0].email: expected an email address", "--> bad.yaml:4:24"],
        ),
        (
            "profile namespace too long",
            None,
            vec!["--set", "deploykf_core.deploykf_profiles_generator.profileDefaults.profileNamePrefix=a-very-long-organisation-prefix-for-every-single-team-"],
            vec!["error: deploykf_core.deploykf_profiles_generator.profiles[1].name: namespace `a-very-long-organisation-prefix-for-every-single-team-team-1-prod` (profileNamePrefix + name) is 65 characters; Kubernetes allows at most 63"],
        ),
        (
            "profile taking a reserved namespace",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    profiles:\n      - name: istio-system\n"),
            vec![],
            vec!["profiles[0].name: namespace `istio-system` is already used by `deploykf_dependencies.istio.namespace`", "--> bad.yaml:4:15"],
        ),
        (
            "plain-text secret (deployKF's default shape)",
            Some(b"deploykf_core:\n  deploykf_auth:\n    oauth2Proxy:\n      cookie:\n        secret:\n          value: cccccccccccccccc\n"),
            vec![],
            vec!["error: deploykf_core.deploykf_auth.oauth2Proxy.cookie.secret.value: a secret value would be written into the output: create a Secret", "set `deploykf_core.deploykf_auth.oauth2Proxy.cookie.secret.existingSecret`", "--> bad.yaml:6:18"],
        ),
        (
            "plain-text dex password",
            Some(b"deploykf_core:\n  deploykf_auth:\n    dex:\n      staticPasswords:\n        - email: admin@example.com\n          password:\n            value: admin\n"),
            vec![],
            vec!["staticPasswords[0].password.value: a secret value would be written into the output", "--> bad.yaml:7:20"],
        ),
        (
            "literal secret in a dex connector",
            Some(b"deploykf_core:\n  deploykf_auth:\n    dex:\n      connectors:\n        - type: github\n          id: gh\n          name: GitHub\n          config:\n            clientSecret: hunter2\n"),
            vec![],
            vec!["connectors[0].config.clientSecret: a secret value would be written into the output: write `$VAR` instead", "--> bad.yaml:9:27"],
        ),
        (
            "dex off without an issuer",
            None,
            vec!["--set", "deploykf_core.deploykf_auth.dex.enabled=false"],
            vec!["oauth2Proxy.oidc.issuerUrl: must be set when `deploykf_core.deploykf_auth.dex.enabled` is false", "--> default_values.yaml:"],
        ),
        (
            "two apps on one host and path",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    apps:\n      - {name: a, namespace: x, service: s, port: 80, path: /app/}\n      - {name: b, namespace: y, service: t, port: 80, path: /app/}\n"),
            vec![],
            vec!["apps[1].path: app `b` claims deploykf.example.com/app/, already claimed by app `a` (`deploykf_core.deploykf_istio_gateway.apps[0].path` at bad.yaml:4:61)", "--> bad.yaml:5:61"],
        ),
        (
            "app path without a leading slash",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    apps:\n      - {name: a, namespace: x, service: s, port: 80, path: app}\n"),
            vec![],
            vec!["apps[0].path: must start with \"/\" (did you mean \"/app\"?)", "--> bad.yaml:4:61"],
        ),
        (
            "app with path and subdomain",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    apps:\n      - {name: a, namespace: x, service: s, port: 80, path: /a, subdomain: a}\n"),
            vec![],
            vec!["apps[0]: an app has either `path` or `subdomain`, not both", "--> bad.yaml:4:9"],
        ),
        (
            "app with neither path nor subdomain",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    apps:\n      - {name: a, namespace: x, service: s, port: 80}\n"),
            vec![],
            vec!["apps[0]: an app needs `path`", "--> bad.yaml:4:9"],
        ),
        (
            "app subdomain not a DNS label",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    apps:\n      - {name: a, namespace: x, service: s, port: 80, subdomain: My_App}\n"),
            vec![],
            vec!["apps[0].subdomain: `My_App` is not a DNS label", "--> bad.yaml:4:66"],
        ),
        (
            "app path over the login endpoints",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    apps:\n      - {name: a, namespace: x, service: s, port: 80, path: /dex/x}\n"),
            vec![],
            vec!["apps[0].path: `/dex/x` overlaps `/dex`", "--> bad.yaml:4:61"],
        ),
        ("malformed --set", None, vec!["--set", "justakey"], vec!["`justakey` is not an assignment; expected PATH=VALUE"]),
        (
            "minReplicas above maxReplicas",
            None,
            vec!["--set", "deploykf_core.deploykf_istio_gateway.gatewayDeployment.autoscaling.minReplicas=9"],
            vec!["autoscaling.minReplicas: must not exceed", "(9 > 5)"],
        ),
    ]
}

#[test]
fn every_bad_input_exits_1_with_a_located_message_and_leaves_the_tree_untouched() {
    let ws = Workspace::new();
    assert_eq!(ws.run(&["generate", "-o", "out"]).status.code(), Some(0));
    let before = snapshot(&ws.path().join("out"));
    for (name, content, extra, expected) in bad_inputs() {
        let mut args = vec!["generate", "-o", "out"];
        if let Some(bytes) = content {
            ws.file("bad.yaml", bytes);
            args.extend(["-f", "bad.yaml"]);
        }
        args.extend(extra.iter().copied());
        let o = ws.run(&args);
        let err = stderr(&o);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{name}: exit code; stderr:\n{err}"
        );
        let first = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        for want in &expected {
            assert!(
                first.contains(want),
                "{name}: first line must contain {want:?}, stderr:\n{err}"
            );
        }
        assert!(!err.contains("panicked"), "{name}: panic\n{err}");
        assert!(
            err.trim_end().ends_with("nothing was written"),
            "{name}: {err}"
        );
        assert_eq!(
            snapshot(&ws.path().join("out")),
            before,
            "{name}: previous output changed"
        );
        let leftovers: Vec<_> = std::fs::read_dir(ws.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("meshgen-"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "{name}: temporary directories left: {leftovers:?}"
        );
    }
}

#[test]
fn all_errors_are_reported_at_once_sorted_by_line() {
    let ws = Workspace::new();
    ws.file(
        "bad.yaml",
        b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      ports:\n        https: 0\n      hostnme: a\n    gatewayService:\n      type: Loadbalancer\n",
    );
    let o = ws.run(&["generate", "-f", "bad.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].ends_with("bad.yaml:5:16"), "{err}");
    assert!(
        lines[1].contains("did you mean `hostname`?") && lines[1].ends_with("bad.yaml:6:7"),
        "{err}"
    );
    assert!(
        lines[2].contains("did you mean `LoadBalancer`?") && lines[2].ends_with("bad.yaml:8:13"),
        "{err}"
    );
    assert_eq!(stdout(&o), "", "nothing is printed on failure");
}

#[test]
fn an_empty_values_file_means_no_overrides() {
    let ws = Workspace::new();
    ws.file("empty.yaml", b"");
    ws.file("comments.yaml", b"# nothing set yet\n");
    let plain = ws.run(&["generate"]);
    let empty = ws.run(&["generate", "-f", "empty.yaml", "-f", "comments.yaml"]);
    assert_eq!(empty.status.code(), Some(0), "{}", stderr(&empty));
    assert_eq!(stdout(&plain), stdout(&empty));
}

#[test]
fn refuses_a_non_empty_directory_it_did_not_write() {
    let ws = Workspace::new();
    std::fs::create_dir(ws.path().join("mine")).unwrap();
    ws.file("mine/notes.md", b"my notes");
    let o = ws.run(&["generate", "-o", "mine"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            "refusing to write into `mine`: it is not empty and was not written by meshgen"
        ),
        "{}",
        stderr(&o)
    );
    // The last line says what is true of the directory, not that nothing
    // at all was written (a temporary tree may have been, and removed).
    assert!(
        stderr(&o)
            .trim_end()
            .ends_with("meshgen: 1 error; `mine` was not changed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(snapshot(&ws.path().join("mine")).len(), 1);
    // A file added by hand into a meshgen output is not deleted either.
    assert_eq!(ws.run(&["generate", "-o", "out"]).status.code(), Some(0));
    ws.file("out/extra.yaml", b"kind: Mine\n");
    let o = ws.run(&["generate", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("e.g. `extra.yaml`"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(ws.path().join("out/extra.yaml")).unwrap(),
        b"kind: Mine\n"
    );
    // A file where the directory should be.
    ws.file("afile", b"x");
    assert_eq!(ws.run(&["generate", "-o", "afile"]).status.code(), Some(1));
    assert_eq!(std::fs::read(ws.path().join("afile")).unwrap(), b"x");
}

#[test]
fn diff_exit_code_reports_drift() {
    let ws = Workspace::new();
    assert_eq!(ws.run(&["generate", "-o", "out"]).status.code(), Some(0));
    let same = ws.run(&["diff", "-o", "out", "--exit-code"]);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    assert_eq!(stdout(&same), "");
    let host = format!("{GW}.gateway.hostname=ml.example.org");
    let drift = ws.run(&["diff", "--set", &host, "-o", "out", "--exit-code"]);
    assert_eq!(drift.status.code(), Some(1));
    let d = stdout(&drift);
    assert!(
        d.contains("--- a/manifests/deploykf-core/deploykf-istio-gateway/Gateway.yaml"),
        "{d}"
    );
    assert!(d.contains("-        - \"*/deploykf.example.com\"\n"), "{d}");
    assert!(d.contains("+        - \"*/ml.example.org\"\n"), "{d}");
    // Without --exit-code a diff is not a failure.
    assert_eq!(
        ws.run(&["diff", "--set", &host, "-o", "out"]).status.code(),
        Some(0)
    );
    // A file that would disappear is shown as removed.
    let off = ws.run(&[
        "diff",
        "--set",
        &format!("{GW}.enabled=false"),
        "-o",
        "out",
        "--exit-code",
    ]);
    assert_eq!(off.status.code(), Some(1));
    assert!(stdout(&off).contains("+++ /dev/null"), "{}", stdout(&off));
}

#[test]
fn stdout_is_one_stream_with_source_comments() {
    let ws = Workspace::new();
    let o = ws.run(&["generate"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    let sources: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("# Source: "))
        .collect();
    // Every manifest once (no kustomization, README or marker), the
    // Namespace before anything that lives in it.
    assert_eq!(sources.len(), 47, "{sources:?}");
    assert!(sources
        .iter()
        .all(|s| s.ends_with(".yaml") && !s.ends_with("kustomization.yaml")));
    assert_eq!(
        &sources[..2],
        [
            "manifests/deploykf-core/deploykf-auth/Namespace.yaml",
            "manifests/deploykf-core/deploykf-istio-gateway/Namespace.yaml"
        ]
    );
    let pos = |name: &str| sources.iter().position(|s| s.ends_with(name)).unwrap();
    assert!(pos("/ServiceAccount.yaml") < pos("/Deployment.yaml"));
    assert!(pos("/Service.yaml") < pos("/Deployment.yaml"));
    assert_eq!(
        out.matches("# Source: ").count(),
        out.matches("---\n# Source: ").count()
    );
}

#[test]
fn values_prints_the_merged_tree_and_warns_once_per_ignored_section() {
    let ws = Workspace::new();
    ws.file(
        "v.yaml",
        b"deploykf_opt:\n  deploykf_minio:\n    enabled: true\n    namespace: x\nkubeflow_tools:\n  katib: {enabled: false}\n",
    );
    let o = ws.run(&[
        "values",
        "-f",
        "v.yaml",
        "--set",
        &format!("{GW}.gateway.hostname=a.example.com"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(
        err.matches("ignored: meshgen does not render deploykf_opt.deploykf_minio")
            .count(),
        1,
        "{err}"
    );
    assert_eq!(
        err.matches("ignored: meshgen does not render kubeflow_tools.katib")
            .count(),
        1,
        "{err}"
    );
    assert!(err.contains("--> v.yaml:2:3"), "{err}");
    let out = stdout(&o);
    assert!(
        out.contains("    gateway:\n      name: deploykf-gateway\n      hostname: a.example.com\n"),
        "{out}"
    );
    assert!(out.contains("version: \"1.30.3\""), "{out}");
}

#[test]
fn deploykf_sample_values_generate_unchanged() {
    let ws = Workspace::new();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/deploykf-0.1.5/sample-values.yaml");
    let o = ws.run(&["generate", "-f", sample.to_str().unwrap(), "-o", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let warnings = stderr(&o)
        .lines()
        .filter(|l| l.starts_with("warning: ignored:"))
        .count();
    assert!(warnings >= 10, "{}", stderr(&o));
}

#[test]
fn the_seeds_yaml_snippets_are_accepted_verbatim() {
    let seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seeds/deploykf-istio.md"),
    )
    .unwrap();
    // Fenced YAML blocks whose first key is one of our top-level sections.
    let mut snippets = Vec::new();
    let mut lines = seed.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```yaml" {
            let indent = line.len() - line.trim_start().len();
            let mut block = String::new();
            for l in lines.by_ref() {
                if l.trim() == "```" {
                    break;
                }
                block.push_str(l.get(indent..).unwrap_or(""));
                block.push('\n');
            }
            if block.starts_with("deploykf_") {
                snippets.push(block);
            }
        }
    }
    assert!(snippets.len() >= 6, "found {} snippets", snippets.len());
    let ws = Workspace::new();
    // Followed in order, as a reader of the guide would, every snippet
    // applies on top of the earlier ones.
    let mut args = vec!["generate".to_string()];
    for (i, s) in snippets.iter().enumerate() {
        let name = format!("snippet-{i}.yaml");
        ws.file(&name, s.as_bytes());
        args.extend(["-f".to_string(), name]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = ws.run(&argv);
        assert_eq!(
            o.status.code(),
            Some(0),
            "snippet {i}:\n{s}\n{}",
            stderr(&o)
        );
    }
    // Alone, each works over the defaults, except pinning the gateway to
    // Istio 1.19.6 while meshgen installs Istio 1.30.3: that is refused,
    // naming both versions, as the seed's "Gateway Version Alignment" asks.
    for (i, s) in snippets.iter().enumerate() {
        let o = ws.run(&["generate", "-f", &format!("snippet-{i}.yaml")]);
        if s.contains("version: 1.19.6") {
            assert_eq!(o.status.code(), Some(1));
            assert!(stderr(&o).contains("(1.19.6 vs 1.30.3)"), "{}", stderr(&o));
        } else {
            assert_eq!(
                o.status.code(),
                Some(0),
                "snippet {i}:\n{s}\n{}",
                stderr(&o)
            );
        }
    }
}

#[test]
fn overriding_a_required_mesh_setting_warns_with_its_place() {
    let ws = Workspace::new();
    ws.file(
        "v.yaml",
        b"deploykf_dependencies:\n  istio:\n    meshConfig:\n      accessLogFile: /dev/stdout\n      defaultConfig:\n        holdApplicationUntilProxyStarts: false\n    valuesOverrides:\n      istio-daemon:\n        sidecarInjectorWebhook:\n          enableNamespacesByDefault: true\n",
    );
    let o = ws.run(&["generate", "-f", "v.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("warning: deploykf_dependencies.istio.meshConfig.defaultConfig.holdApplicationUntilProxyStarts: deployKF requires true; meshgen keeps that value and ignores this one --> v.yaml:6:42"), "{err}");
    assert!(err.contains("warning: deploykf_dependencies.istio.valuesOverrides.istio-daemon.sidecarInjectorWebhook.enableNamespacesByDefault: deployKF requires false"), "{err}");
    assert!(err.contains("--> v.yaml:10:38"), "{err}");
    let values = std::fs::read_to_string(
        ws.path()
            .join("out/manifests/deploykf-dependencies/istio/values.yaml"),
    )
    .unwrap();
    assert!(
        values.contains("      holdApplicationUntilProxyStarts: true\n"),
        "{values}"
    );
    assert!(
        values.contains("    accessLogFile: /dev/stdout\n"),
        "{values}"
    );
}

#[test]
fn bringing_your_own_istio_explains_what_it_must_provide() {
    let ws = Workspace::new();
    let o = ws.run(&[
        "generate",
        "--set",
        "deploykf_dependencies.istio.enabled=false",
        "-o",
        "out",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning: deploykf_dependencies.istio.enabled: meshgen does not install Istio: your istiod must run Istio 1.30.3"),
        "{err}"
    );
    let out = ws.path().join("out");
    assert!(!out.join("manifests/deploykf-dependencies/istio").exists());
    let guide = std::fs::read_to_string(out.join("REQUIRED-MESH-CONFIG.md")).unwrap();
    assert!(
        guide.contains("ISTIO_META_DNS_AUTO_ALLOCATE: \"true\""),
        "{guide}"
    );
    assert!(guide.contains("kind: IstioOperator"), "{guide}");
    assert!(guide.contains("`1.30.3`"), "{guide}");
    // With meshgen's Istio and gateway, there is nothing to explain.
    let o = ws.run(&["generate", "-o", "out"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!out.join("REQUIRED-MESH-CONFIG.md").exists());
    assert!(out
        .join("manifests/deploykf-dependencies/istio/Chart.yaml")
        .exists());
}

#[test]
fn argo_cd_rules_and_the_missing_repository_notice() {
    let ws = Workspace::new();
    // The defaults succeed and say what to set for Argo CD.
    let o = ws.run(&["generate", "-o", "out"]);
    assert_eq!(o.status.code(), Some(0));
    let lines = stderr_lines(&o);
    let notices: Vec<&String> = lines.iter().filter(|l| l.starts_with("notice:")).collect();
    assert_eq!(notices.len(), 1, "{}", stderr(&o));
    assert!(
        notices[0].contains("`argocd.source.repo.url`"),
        "{}",
        notices[0]
    );
    assert!(!ws.path().join("out/app-of-apps.yaml").exists());
    // deployKF's rule: a prefix needs a remote destination.
    let o = ws.run(&[
        "generate",
        "--set",
        "argocd.appNamePrefix=prod-",
        "-o",
        "out",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("error: argocd.destination.server: can not be 'https://kubernetes.default.svc' if `argocd.appNamePrefix` is set"), "{}", stderr(&o));
    let o = ws.run(&[
        "generate",
        "--set",
        "argocd.appNamePrefix=prod-,argocd.destination.name=in-cluster",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("error: argocd.destination.name: can not be 'in-cluster'"),
        "{}",
        stderr(&o)
    );
    let o = ws.run(&[
        "generate",
        "--set",
        "argocd.source.repo.url=ftp://example.com/repo",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("error: argocd.source.repo.url: expected a git URL"),
        "{}",
        stderr(&o)
    );
    ws.file(
        "p.yaml",
        b"argocd:\n  source:\n    plugin:\n      enabled: true\n",
    );
    let o = ws.run(&["generate", "-f", "p.yaml", "--set", "gitops.engine=flux"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: ignored: meshgen does not render argocd.source.plugin"),
        "{}",
        stderr(&o)
    );
}

fn stderr_lines(o: &Output) -> Vec<String> {
    stderr(o).lines().map(str::to_string).collect()
}

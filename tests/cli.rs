//! The real binary, as a user runs it: exit codes, one-line messages with
//! key path and file:line:col, and the previous output left untouched by
//! every failure.

mod common;

use common::read_tree;
use std::path::Path;
use std::process::Output;

const GW: &str = "deploykf_core.deploykf_istio_gateway";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
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
        common::run_meshgen(self.path(), args)
    }
}

#[test]
fn defaults_render_and_rerender_byte_identically() {
    let ws = Workspace::new();
    let first = ws.run(&["generate", "-o", "out"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let a = read_tree(&ws.path().join("out"));
    assert!(a.contains_key(Path::new(".meshgen-output")));
    assert!(a.contains_key(Path::new(
        "manifests/deploykf-core/deploykf-istio-gateway/Gateway.yaml"
    )));
    let second = ws.run(&["generate", "-o", "out"]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    // Issue 17: the same values again leave the tree as it is.
    assert!(
        stderr(&second).ends_with(&format!(
            "out is up to date: its {} files are what these values render; nothing written\n",
            a.len()
        )),
        "{}",
        stderr(&second)
    );
    assert_eq!(a, read_tree(&ws.path().join("out")));
    let third = ws.run(&[
        "generate",
        "-o",
        "out",
        "--set",
        "deploykf_core.deploykf_istio_gateway.gateway.hostname=other.example.com",
    ]);
    assert_eq!(third.status.code(), Some(0), "{}", stderr(&third));
    assert!(
        stderr(&third).contains("(replacing the previous output; "),
        "{}",
        stderr(&third)
    );
    for (path, bytes) in &a {
        assert!(
            bytes.ends_with(b"\n") && !bytes.ends_with(b"\n\n"),
            "{path:?} must end with one newline"
        );
        assert!(!bytes.contains(&b'\r'), "{path:?} must use LF");
    }
}

/// Each bad input: (name, the content of `bad.yaml` if one is passed,
/// extra arguments). What each one prints is its snapshot,
/// `tests/snapshots/cli__bad_input_<name>.snap`.
type BadInput = (&'static str, Option<&'static [u8]>, Vec<&'static str>);

fn bad_inputs() -> Vec<BadInput> {
    vec![
        ("missing file", None, vec!["-f", "nope.yaml"]),
        // Issue 16: a name quoted in a message cannot talk to the terminal.
        (
            "file name with control characters",
            None,
            vec!["-f", "no\x1b[2Jpe\x07.yaml"],
        ),
        (
            // Issue 13: it would have replaced the component's kustomization.yaml.
            "profile named like a component file",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    profileDefaults:\n      profileNamePrefix: \"\"\n    profiles:\n      - name: kustomization\n"),
            vec![],
        ),
        ("directory", None, vec!["-f", "."]),
        // Issue 16, point 3: each of these reached an `internal:` error or
        // named no key, or pointed at default_values.yaml.
        ("section deleted with null", Some(b"gitops: null\n"), vec![]),
        ("section deleted with --set null", None, vec!["--set", "deploykf_core=null"]),
        ("required key deleted with null", Some(b"argocd: {source: null}\n"), vec![]),
        (
            "duplicate nested key",
            Some(b"gitops:\n  engine: none\n  engine: flux\n"),
            vec![],
        ),
        ("unsupported tag on a value", Some(b"gitops: {engine: !foo none}\n"), vec![]),
        ("invalid int tag in a list", Some(b"kubernetes: [1, !!int x]\n"), vec![]),
        (
            "integer beyond 64 bits",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gatewayService:\n      ports: {http: 123456789012345678901234567890}\n"),
            vec![],
        ),
        (
            "nesting beyond the recursion limit",
            Some(b"gitops: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]\n"),
            vec![],
        ),
        // Issue 16, point 4.
        ("unknown key with terminal escapes", Some(b"\"\\e]0;pwned\\a\": 1\n"), vec![]),
        ("unknown key with a line separator", Some(b"\"a\\Lb\": 1\n"), vec![]),

        ("binary", Some(b"a: 1\n\x00\x01\x02"), vec![]),
        ("not utf-8", Some(b"a: \"caf\xe9\"\n"), vec![]),
        ("malformed", Some(b"deploykf_core:\n  x: [1, 2\n"), vec![]),
        ("duplicate key", Some(b"deploykf_core: {}\ndeploykf_core: {}\n"), vec![]),
        ("top-level list", Some(b"- a\n"), vec![]),
        ("top-level scalar", Some(b"hello\n"), vec![]),
        ("two documents", Some(b"a: 1\n---\nb: 2\n"), vec![]),
        (
            "wrong type",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      selectorLabels: [a]\n"),
            vec![],
        ),
        (
            "wrong scalar type",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      xffNumTrustedHops: two\n"),
            vec![],
        ),
        (
            "bad label key",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      selectorLabels:\n        \"bad key\": x\n"),
            vec![],
        ),
        (
            "out of range",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      ports:\n        https: 70000\n"),
            vec![],
        ),
        (
            "typo at depth",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      tls:\n        matchSni: false\n"),
            vec![],
        ),
        (
            "typo at the top",
            Some(b"deploykf_cor: {}\n"),
            vec![],
        ),
        (
            "yaml injection in a hostname",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      hostname: \"x\\\"\\n  evil: true\"\n"),
            vec![],
        ),
        (
            "hostname with a scheme",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      hostname: https://ml.example.com\n"),
            vec![],
        ),
        (
            "yaml 1.1 boolean",
            Some(b"deploykf_dependencies:\n  istio:\n    enabled: yes\n"),
            vec![],
        ),
        (
            "version read as a float",
            Some(b"deploykf_dependencies:\n  istio:\n    charts:\n      istioBase:\n        version: 1.30\n"),
            vec![],
        ),
        (
            "map over scalar",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      hostname:\n        a: 1\n"),
            vec![],
        ),
        (
            "tls disabled (deployKF's rule and tip)",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      tls:\n        enabled: false\n"),
            vec![],
        ),
        (
            "redirect without https clients",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      tls:\n        clientsUseHttps: false\n"),
            vec![],
        ),
        (
            // Issue 15: a deployKF file pinning Istio 1.21 got values in the
            // 1.30 layout, which the old charts may ignore, silently.
            "istio version outside the supported window",
            Some(b"deploykf_dependencies:\n  istio:\n    charts:\n      istioBase:\n        version: \"1.21.0\"\n      istioDaemon:\n        version: \"1.21.0\"\n    images:\n      istioPilot:\n        tag: \"1.21.0-distroless\"\ndeploykf_core:\n  deploykf_istio_gateway:\n    charts:\n      istioGateway:\n        version: \"1.21.0\"\n"),
            vec![],
        ),
        (
            "istio versions differ",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    charts:\n      istioGateway:\n        version: \"1.29.1\"\n"),
            vec![],
        ),
        // Issue 32: the tracing endpoint is a host:port, checked by the
        // rules at the key (a URL, a missing port, an address); the
        // sampling percentage and the log format by the schema.
        (
            "tracing endpoint a url",
            Some(b"deploykf_dependencies:\n  istio:\n    telemetry:\n      tracing:\n        enabled: true\n        otlpEndpoint: \"http://otel-collector.observability:4317\"\n"),
            vec![],
        ),
        (
            "tracing endpoint without a port",
            None,
            vec![
                "--set", "deploykf_dependencies.istio.telemetry.tracing.enabled=true",
                "--set", "deploykf_dependencies.istio.telemetry.tracing.otlpEndpoint=otel-collector",
            ],
        ),
        (
            "tracing enabled without an endpoint",
            Some(b"deploykf_dependencies:\n  istio:\n    telemetry:\n      tracing: {enabled: true}\n"),
            vec![],
        ),
        // Your own Istio older than 1.22 serves no telemetry.istio.io/v1.
        (
            "access logs with an own istio older than 1.22",
            Some(b"deploykf_dependencies:\n  istio:\n    enabled: false\n    telemetry:\n      accessLogs: {enabled: true}\ndeploykf_core:\n  deploykf_istio_gateway:\n    charts:\n      istioGateway: {version: \"1.21.6\"}\n"),
            vec![],
        ),
        (
            "tracing sampling over 100",
            Some(b"deploykf_dependencies:\n  istio:\n    telemetry:\n      tracing: {samplingPercent: 101}\n"),
            vec![],
        ),
        (
            "access log format unknown",
            Some(b"deploykf_dependencies:\n  istio:\n    telemetry:\n      accessLogs: {format: yaml}\n"),
            vec![],
        ),
        (
            "same http and https ports",
            None,
            vec!["--set", "deploykf_core.deploykf_istio_gateway.gateway.ports.http=443"],
        ),
        (
            "bad --set",
            None,
            vec!["--set", "deploykf_core.deploykf_istio_gateway.gateway.ports.https=70000"],
        ),
        (
            "extra manifest that is not a Kubernetes object",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    extraManifests:\n      - \"kind: ConfigMap\"\n"),
            vec![],
        ),
        (
            // Issue 15: a whole-tree check's error points at the values,
            // not at the generated extra-manifests.yaml.
            "extra manifest in a namespace that will not exist",
            Some(b"deploykf_core:\n  deploykf_auth:\n    extraManifests:\n      - |\n        apiVersion: v1\n        kind: ConfigMap\n        metadata: {name: a}\n        ---\n        apiVersion: v1\n        kind: ConfigMap\n        metadata: {name: b, namespace: nowhere}\n"),
            vec![],
        ),
        (
            // Without a namespace it goes into deploykf-auth, where meshgen
            // renders dex's ServiceAccount.
            "extra manifest that meshgen renders too",
            Some(b"deploykf_core:\n  deploykf_auth:\n    extraManifests:\n      - {apiVersion: v1, kind: ServiceAccount, metadata: {name: dex}}\n"),
            vec![],
        ),
        (
            "extra manifest written twice",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    extraManifests:\n      - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n  deploykf_auth:\n    extraManifests:\n      - {apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: deploykf-istio-gateway}}\n"),
            vec![],
        ),
        (
            "profiles extra manifest without a namespace",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    extraManifests:\n      - {apiVersion: v1, kind: LimitRange, metadata: {name: defaults}}\n"),
            vec![],
        ),
        (
            "target CPU above 100",
            None,
            vec!["--set", "deploykf_core.deploykf_istio_gateway.gatewayDeployment.autoscaling.targetCPUUtilizationPercentage=150"],
        ),
        (
            "bad CIDR",
            None,
            vec!["--set", "deploykf_core.deploykf_istio_gateway.gatewayService.loadBalancerSourceRanges={10.0.0.0/33}"],
        ),
        (
            // Issue 15: an image name no section knows is still a typo.
            "typo in an image name",
            Some(b"deploykf_dependencies:\n  cert_manager:\n    images:\n      certManagerControler: {repository: x}\n"),
            vec![],
        ),
        (
            // Issue 15, point 6: the rule error was hidden behind the schema error.
            "schema and rule errors in different sections",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      xffNumTrustedHops: two\n  deploykf_profiles_generator:\n    profiles:\n      - name: team-1\n      - name: team-1\n"),
            vec![],
        ),
        (
            "duplicate profile",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    profiles:\n      - name: team-a\n      - name: team-b\n      - name: team-a\n"),
            vec![],
        ),
        (
            "member with an unknown user",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    profiles:\n      - name: team-a\n        members:\n          - user: nobody\n"),
            vec![],
        ),
        (
            "member with an unknown group",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    profiles:\n      - name: team-a\n        members:\n          - group: ghosts\n"),
            vec![],
        ),
        (
            "member with user and group",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    profiles:\n      - name: team-a\n        members:\n          - {user: user-1, group: team-1}\n"),
            vec![],
        ),
        (
            "member with neither user nor group",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    profiles:\n      - name: team-a\n        members:\n          - access: {role: edit}\n"),
            vec![],
        ),
        (
            "duplicate user id",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    users:\n      - {id: a, email: a@example.com}\n      - {id: a, email: b@example.com}\n    groups: []\n    profiles: []\n"),
            vec![],
        ),
        (
            "duplicate group id",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    users:\n      - {id: a, email: a@example.com}\n    groups:\n      - {id: g, users: [a]}\n      - {id: g, users: []}\n    profiles: []\n"),
            vec![],
        ),
        (
            "invalid email",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    users:\n      - {id: a, email: not-an-email}\n    groups: []\n    profiles: []\n"),
            vec![],
        ),
        (
            "profile namespace too long",
            None,
            vec!["--set", "deploykf_core.deploykf_profiles_generator.profileDefaults.profileNamePrefix=a-very-long-organisation-prefix-for-every-single-team-"],
        ),
        (
            "profile taking a reserved namespace",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    profiles:\n      - name: istio-system\n"),
            vec![],
        ),
        (
            "plain-text secret (deployKF's default shape)",
            Some(b"deploykf_core:\n  deploykf_auth:\n    oauth2Proxy:\n      cookie:\n        secret:\n          value: cccccccccccccccc\n"),
            vec![],
        ),
        (
            "plain-text dex password",
            Some(b"deploykf_core:\n  deploykf_auth:\n    dex:\n      staticPasswords:\n        - email: admin@example.com\n          password:\n            value: admin\n"),
            vec![],
        ),
        (
            "literal secret in a dex connector",
            Some(b"deploykf_core:\n  deploykf_auth:\n    dex:\n      connectors:\n        - type: github\n          id: gh\n          name: GitHub\n          config:\n            clientSecret: hunter2\n"),
            vec![],
        ),
        (
            // Issue 15: the generated Secret keeps a hash, dex can not log in with it as a password.
            "generated plain dex password",
            Some(b"deploykf_core:\n  deploykf_auth:\n    dex:\n      staticPasswords:\n        - email: admin@example.com\n          password:\n            existingSecret: dex-admin\n            existingSecretKey: password_hash\n            type: plain\n            generateSecret: true\n"),
            vec![],
        ),
        (
            "dex connector config from a Secret without its key and with a config",
            Some(b"deploykf_core:\n  deploykf_auth:\n    dex:\n      connectors:\n        - type: oidc\n          id: sso\n          name: SSO\n          configExistingSecret: dex-sso\n          config:\n            issuer: https://sso.example.com\n"),
            vec![],
        ),
        (
            "dex off without an issuer",
            None,
            vec!["--set", "deploykf_core.deploykf_auth.dex.enabled=false"],
        ),
        (
            "two apps on one host and path",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    apps:\n      - {name: a, namespace: x, service: s, port: 80, path: /app/}\n      - {name: b, namespace: y, service: t, port: 80, path: /app/}\n"),
            vec![],
        ),
        (
            "app path without a leading slash",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    apps:\n      - {name: a, namespace: x, service: s, port: 80, path: app}\n"),
            vec![],
        ),
        (
            "app with path and subdomain",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    apps:\n      - {name: a, namespace: x, service: s, port: 80, path: /a, subdomain: a}\n"),
            vec![],
        ),
        (
            "app with neither path nor subdomain",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    apps:\n      - {name: a, namespace: x, service: s, port: 80}\n"),
            vec![],
        ),
        (
            "app subdomain not a DNS label",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    apps:\n      - {name: a, namespace: x, service: s, port: 80, subdomain: My_App}\n"),
            vec![],
        ),
        (
            "app path over the login endpoints",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    apps:\n      - {name: a, namespace: x, service: s, port: 80, path: /dex/x}\n"),
            vec![],
        ),
        // Issue 18: what `api: gateway-api` can not express.
        (
            "gateway api app retries",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    api: gateway-api\n    apps:\n      - {name: a, namespace: x, service: s, port: 80, path: /a, retries: {attempts: 3}}\n"),
            vec![],
        ),
        (
            "gateway api app timeout below a millisecond",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    api: gateway-api\n    apps:\n      - {name: a, namespace: x, service: s, port: 80, path: /a, timeout: 1500us}\n"),
            vec![],
        ),
        (
            "gateway api own deployment without the gateway name label",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    api: gateway-api\n    charts:\n      istioGateway:\n        enabled: false\n    gateway:\n      selectorLabels:\n        app: my-gateway\n"),
            vec![],
        ),
        // Issue 18: what `dataplaneMode: ambient` and `api: gateway-api`
        // can not work with.
        (
            "ambient with istio cni explicitly off",
            Some(b"deploykf_dependencies:\n  istio:\n    dataplaneMode: ambient\n    cni:\n      enabled: false\n"),
            vec![],
        ),
        (
            "ambient with a ztunnel tag outside the window",
            Some(b"deploykf_dependencies:\n  istio:\n    dataplaneMode: ambient\n    images:\n      ztunnel:\n        tag: 1.27.3\n"),
            vec![],
        ),
        (
            "ambient with an istio revision",
            Some(b"deploykf_dependencies:\n  istio:\n    dataplaneMode: ambient\n    revision: 1-30-3\n"),
            vec![],
        ),
        (
            // 1.24 reads `istio.io/ingress-use-waypoint` on Services only.
            "ambient with own istio 1.24",
            Some(b"deploykf_dependencies:\n  istio:\n    enabled: false\n    dataplaneMode: ambient\ndeploykf_core:\n  deploykf_istio_gateway:\n    charts:\n      istioGateway:\n        version: 1.24.6\n"),
            vec![],
        ),
        (
            "gateway api with own istio 1.21",
            Some(b"deploykf_dependencies:\n  istio:\n    enabled: false\ndeploykf_core:\n  deploykf_istio_gateway:\n    api: gateway-api\n    charts:\n      istioGateway:\n        version: 1.21.6\n"),
            vec![],
        ),
        (
            "ambient with profiles output",
            Some(b"deploykf_dependencies:\n  istio:\n    dataplaneMode: ambient\ndeploykf_core:\n  deploykf_profiles_generator:\n    output: profiles\n"),
            vec![],
        ),
        // Issue 28, point 2: Pod Security baseline refuses istio-init.
        (
            "sidecars without istio cni in baseline profile namespaces",
            Some(b"deploykf_dependencies:\n  istio:\n    cni:\n      enabled: false\n"),
            vec![],
        ),
        (
            "gateway pod security in istio's namespace",
            None,
            vec!["--set", "deploykf_core.deploykf_istio_gateway.namespace=istio-system,deploykf_core.deploykf_istio_gateway.namespacePodSecurity=restricted"],
        ),
        // Issue 27: KServe's wildcard host.
        (
            "wildcard host with the gateway api",
            None,
            vec!["--set", "deploykf_core.deploykf_istio_gateway.gateway.wildcardHost=true,deploykf_core.deploykf_istio_gateway.api=gateway-api"],
        ),
        (
            "wildcard host with a subdomain app",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      wildcardHost: true\n    apps:\n      - {name: a, namespace: x, service: s, port: 80, subdomain: a}\n"),
            vec![],
        ),
        (
            "wildcard host with profile namespaces one ending with the other",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      wildcardHost: true\n  deploykf_profiles_generator:\n    profiles:\n      - {name: a}\n      - {name: c-a}\n"),
            vec![],
        ),
        ("malformed --set", None, vec!["--set", "justakey"]),
        // Issue 27: an unknown preset is named with the closest one.
        ("unknown preset", None, vec!["--preset", "kubeflw"]),
        // Issue 27: a Gateway API Gateway's policies attach only in its own namespace.
        (
            "gateway resource namespace with the gateway api",
            None,
            vec!["--set", "deploykf_core.deploykf_istio_gateway.api=gateway-api,deploykf_core.deploykf_istio_gateway.gateway.namespace=kubeflow"],
        ),
        // Issue 32 point 5: ztunnel enforces neither REGISTRY_ONLY nor exportTo.
        (
            "registry-only egress with ambient",
            Some(b"deploykf_dependencies:\n  istio:\n    dataplaneMode: ambient\n    egress:\n      mode: registry-only\n"),
            vec![],
        ),
        // In ambient the profiles' NetworkPolicy is what bounds egress.
        (
            "registry-only egress with ambient and no profile network policy",
            Some(b"deploykf_dependencies:\n  istio:\n    dataplaneMode: ambient\n    egress:\n      mode: registry-only\n      gateway:\n        enabled: true\n        apiServerCIDRs: [10.0.0.10/32]\ndeploykf_core:\n  deploykf_profiles_generator:\n    networkPolicy:\n      enabled: false\n"),
            vec![],
        ),
        // The egress gateway routes registry-only's ServiceEntries.
        (
            "egress gateway without registry-only",
            None,
            vec!["--set", "deploykf_dependencies.istio.egress.gateway.enabled=true"],
        ),
        (
            "egress gateway in the ingress gateway's namespace",
            Some(b"deploykf_dependencies:\n  istio:\n    egress:\n      mode: registry-only\n      gateway:\n        enabled: true\n        namespace: deploykf-istio-gateway\n"),
            vec![],
        ),
        (
            "egress host with a scheme",
            Some(b"deploykf_core:\n  deploykf_profiles_generator:\n    profileDefaults:\n      egress:\n        allowedHosts: [\"https://pypi.org\"]\n"),
            vec![],
        ),
        // Issue 27, point 3: namespace-wide policies in Istio's root namespace are mesh-wide.
        (
            "gateway zero trust in istio's root namespace",
            None,
            vec!["--set", "deploykf_core.deploykf_istio_gateway.namespace=istio-system,deploykf_core.deploykf_istio_gateway.namespaceZeroTrust=true"],
        ),
        (
            "login in istio's root namespace",
            None,
            vec!["--set", "deploykf_core.deploykf_auth.namespace=istio-system"],
        ),
        // Issue 27, point 3: the audience stays required, and the error says how Kubeflow's token flow changes.
        (
            "m2m without an audience",
            None,
            vec!["--set", "deploykf_core.deploykf_auth.m2m.enabled=true"],
        ),
        // Issue 27: a value the preset set is located in the preset.
        (
            "preset value refused by a rule",
            None,
            vec!["--preset", "kubeflow", "--set", "deploykf_dependencies.istio.dataplaneMode=ambient"],
        ),
        (
            "minReplicas above maxReplicas",
            None,
            vec!["--set", "deploykf_core.deploykf_istio_gateway.gatewayDeployment.autoscaling.minReplicas=9"],
        ),
        // Issue 33: nothing two gateways would share; the error names both keys.
        (
            "additional gateway with the primary's hostname",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    additionalGateways:\n      - auth: token\n        gateway: {name: internal, hostname: deploykf.example.com}\n        apps: []\n"),
            vec![],
        ),
        (
            "two gateways with one name and one app name",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    apps:\n      - {name: ui, namespace: kubeflow, service: ui, port: 80, path: /ui/}\n    additionalGateways:\n      - auth: login\n        gateway: {name: deploykf-gateway, hostname: a.example.com}\n        apps:\n          - {name: ui, namespace: kubeflow, service: ui, port: 80, path: /ui/}\n"),
            vec![],
        ),
        (
            "private app behind a gateway without auth",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    additionalGateways:\n      - auth: none\n        gateway: {name: open, hostname: open.example.com}\n        apps:\n          - {name: ui, namespace: kubeflow, service: ui, port: 80, path: /}\n"),
            vec![],
        ),
        // Issue 33: an additional gateway's own settings are checked as the
        // primary's, at its own keys.
        (
            "additional gateway on a port of the Istio proxy",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    additionalGateways:\n      - auth: token\n        gateway: {name: internal, hostname: a.example.com, ports: {http: 15021}}\n        apps: []\n"),
            vec![],
        ),
        (
            "additional gateway selecting the primary's pods",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    additionalGateways:\n      - auth: token\n        gateway:\n          name: internal\n          hostname: a.example.com\n          selectorLabels: {app: deploykf-gateway, istio: deploykf-gateway, tier: internal}\n        apps: []\n"),
            vec![],
        ),
        (
            "two gateways on one load balancer address and port",
            Some(b"deploykf_core:\n  deploykf_istio_gateway:\n    gatewayService: {type: LoadBalancer, loadBalancerIP: 10.0.0.5}\n    additionalGateways:\n      - auth: token\n        gateway: {name: internal, hostname: a.example.com}\n        gatewayService: {loadBalancerIP: 10.0.0.5}\n        apps: []\n"),
            vec![],
        ),
    ]
}

/// The snapshot name of a case: `missing file` -> `missing_file`.
fn snapshot_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// What a run of the real binary shows a user, for a snapshot.
#[derive(Clone, Copy, PartialEq)]
enum Shown {
    /// Exit code, stdout and stderr.
    All,
    /// Exit code and stderr (stdout is a whole tree, asserted on elsewhere).
    Stderr,
}

/// Run the real binary in `ws` and snapshot what it showed (the arguments
/// in the header, `description` above them), with the workspace's path
/// shown as `[TMP]`, the crate's as `[ROOT]` and a line in
/// `default_values.yaml` as `default_values.yaml:[line]` (issue 33, point 5:
/// a comment added to the defaults must not churn every snapshot; the
/// lines themselves are asserted by
/// `diagnostics_in_the_defaults_point_at_the_keys_line`); returns the
/// output for further assertions.
fn assert_run_snapshot(
    name: &str,
    ws: &Workspace,
    args: &[&str],
    description: &str,
    shown: Shown,
) -> Output {
    let o = ws.run(args);
    assert_output_snapshot(name, ws, args, description, shown, o)
}

/// [`assert_run_snapshot`] for a run made otherwise (with a timeout, or
/// something on stdin).
fn assert_output_snapshot(
    name: &str,
    ws: &Workspace,
    args: &[&str],
    description: &str,
    shown: Shown,
    o: Output,
) -> Output {
    let code = o
        .status
        .code()
        .map_or("none (killed)".into(), |c| c.to_string());
    let mut text = format!("exit_code: {code}\n");
    if shown == Shown::All {
        text.push_str(&format!("----- stdout -----\n{}", stdout(&o)));
    }
    text.push_str(&format!("----- stderr -----\n{}", stderr(&o)));
    let tmp = regex_escape(&ws.path().to_string_lossy());
    let root = regex_escape(env!("CARGO_MANIFEST_DIR"));
    insta::with_settings!({
        description => description,
        info => &args,
        omit_expression => true,
        filters => vec![
            (tmp.as_str(), "[TMP]"),
            (root.as_str(), "[ROOT]"),
            (DEFAULTS_LINE, "default_values.yaml:[line]"),
        ],
    }, {
        insta::assert_snapshot!(name, text);
    });
    o
}

/// A position in the embedded defaults, redacted in snapshots.
const DEFAULTS_LINE: &str = r"default_values\.yaml:\d+:\d+";

/// `file:line:col` of `key` (`key:` at the start of a line, after the
/// indentation) below the line holding `under`, in the defaults: where a
/// diagnostic about that default must point.
fn defaults_position(under: &str, key: &str) -> String {
    let text = std::fs::read_to_string(common::root().join("default_values.yaml")).unwrap();
    let start = text.lines().position(|l| l.contains(under)).unwrap();
    let (n, line) = text
        .lines()
        .enumerate()
        .skip(start)
        .find(|(_, l)| l.trim_start().starts_with(&format!("{key}:")))
        .unwrap();
    let value = line.find(':').unwrap() + 2;
    format!("default_values.yaml:{}:{}", n + 1, value + 1)
}

/// The one test about lines in the defaults (snapshots redact them): a
/// diagnostic about a default points at its key's value, and a message
/// naming where another key is set names its line.
#[test]
fn diagnostics_in_the_defaults_point_at_the_keys_line() {
    let ws = Workspace::new();
    let o = ws.run(&[
        "generate",
        "-o",
        "out",
        "--set",
        "deploykf_core.deploykf_auth.dex.enabled=false",
    ]);
    let err = stderr(&o);
    let issuer = defaults_position("oauth2Proxy:", "issuerUrl");
    assert!(
        err.lines().any(|l| l
            .starts_with("error[rule]: `deploykf_core.deploykf_auth.oauth2Proxy.oidc.issuerUrl`")
            && l.ends_with(&format!("--> {issuer}"))),
        "{issuer}\n{err}"
    );
    ws.file(
        "bad.yaml",
        b"deploykf_dependencies:\n  istio:\n    cni:\n      enabled: false\n",
    );
    let o = ws.run(&["generate", "-o", "out", "-f", "bad.yaml"]);
    let err = stderr(&o);
    let security = defaults_position("deploykf_profiles_generator:", "namespacePodSecurity");
    let mode = defaults_position("  istio:", "dataplaneMode");
    assert!(
        err.contains(&format!("`deploykf_core.deploykf_profiles_generator.namespacePodSecurity` at {security} set to \"baseline\""))
            && err.contains(&format!("`deploykf_dependencies.istio.dataplaneMode` at {mode} \"sidecar\"")),
        "{security} {mode}\n{err}"
    );
}

/// `text` as a regex matching itself.
fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn values_description(content: Option<&[u8]>) -> String {
    match content {
        Some(bytes) => format!("bad.yaml:\n{}", String::from_utf8_lossy(bytes)),
        None => "no values file".to_string(),
    }
}

#[test]
fn every_bad_input_exits_1_with_a_located_message_and_leaves_the_tree_untouched() {
    let ws = Workspace::new();
    assert_eq!(ws.run(&["generate", "-o", "out"]).status.code(), Some(0));
    let before = read_tree(&ws.path().join("out"));
    let mut names = std::collections::BTreeSet::new();
    for (name, content, extra) in bad_inputs() {
        let snapshot = format!("bad_input_{}", snapshot_name(name));
        assert!(names.insert(snapshot.clone()), "two cases named {snapshot}");
        let mut args = vec!["generate", "-o", "out"];
        if let Some(bytes) = content {
            ws.file("bad.yaml", bytes);
            args.extend(["-f", "bad.yaml"]);
        }
        args.extend(extra.iter().copied());
        // Exit code and the whole stderr, reviewed once, in the snapshot;
        // what holds for every bad input is asserted here as well.
        let o = assert_run_snapshot(
            &snapshot,
            &ws,
            &args,
            &values_description(content),
            Shown::All,
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: exit code\n{err}");
        assert_eq!(stdout(&o), "", "{name}: stdout");
        let lines: Vec<&str> = err.lines().collect();
        assert!(
            lines.iter().any(|l| l.starts_with("error[")),
            "{name}: no error line\n{err}"
        );
        let (summary, diagnostics) = lines.split_last().unwrap();
        assert!(
            summary.starts_with("meshgen: ") && summary.ends_with("; nothing was written"),
            "{name}: last line\n{err}"
        );
        for line in diagnostics {
            assert!(
                ["error[", "warning[", "notice["]
                    .iter()
                    .any(|s| line.starts_with(s)),
                "{name}: a diagnostic spans lines, or is not one\n{err}"
            );
        }
        assert_eq!(
            read_tree(&ws.path().join("out")),
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
    // Three errors, one line each, sorted by line; nothing on stdout.
    assert_run_snapshot(
        "all_errors_at_once",
        &ws,
        &["generate", "-f", "bad.yaml"],
        "bad.yaml with three errors, on lines 5, 6 and 8",
        Shown::All,
    );
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
    assert_run_snapshot(
        "refuses_a_directory_it_did_not_write",
        &ws,
        &["generate", "-o", "mine"],
        "mine/ holds notes.md",
        Shown::All,
    );
    // The last line says what is true of the directory, not that nothing
    // at all was written (a temporary tree may have been, and removed).
    let o = ws.run(&["generate", "-o", "mine"]);
    assert!(
        stderr(&o)
            .trim_end()
            .ends_with("meshgen: 1 error; `mine` was not changed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(read_tree(&ws.path().join("mine")).len(), 1);
    // A file added by hand into a meshgen output is not deleted either.
    assert_eq!(ws.run(&["generate", "-o", "out"]).status.code(), Some(0));
    ws.file("out/extra.yaml", b"kind: Mine\n");
    assert_run_snapshot(
        "refuses_to_delete_a_file_it_did_not_write",
        &ws,
        &["generate", "-o", "out"],
        "out/ is a meshgen output plus extra.yaml",
        Shown::All,
    );
    assert_eq!(
        std::fs::read(ws.path().join("out/extra.yaml")).unwrap(),
        b"kind: Mine\n"
    );
    // A file where the directory should be.
    ws.file("afile", b"x");
    assert_run_snapshot(
        "refuses_to_replace_a_file",
        &ws,
        &["generate", "-o", "afile"],
        "afile is a file",
        Shown::All,
    );
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
    // Issue 29: values that do not validate are not drift: exit code 2
    // (as diff(1)'s "trouble"), so CI tells the two apart.
    let bad = ws.run(&[
        "diff",
        "--set",
        &format!("{GW}.gateway.hostnme=x"),
        "-o",
        "out",
        "--exit-code",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).ends_with("meshgen: 1 error; nothing was compared (exit code 2)\n"),
        "{}",
        stderr(&bad)
    );
}

/// Issue 29: `-o -` is standard output, as `helm template` and `kubectl`
/// users expect: the same stream as without `-o`, and no directory `-`.
#[test]
fn regression_issue_29_output_dash_is_stdout() {
    let ws = Workspace::new();
    let dash = ws.run(&["generate", "-o", "-"]);
    assert_eq!(dash.status.code(), Some(0), "{}", stderr(&dash));
    let plain = ws.run(&["generate"]);
    assert_eq!(dash.stdout, plain.stdout);
    assert!(
        stdout(&dash).starts_with("---\n# Source: "),
        "{}",
        stdout(&dash)
    );
    assert!(!ws.path().join("-").exists());
    // `./-` is still a directory of that name.
    let o = ws.run(&["generate", "-o", "./-"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(ws.path().join("-/README.md").is_file());
    assert!(
        stderr(&o).ends_with(
            "wrote 60 files to ./-; ./-/README.md says what was rendered and how to apply it\n"
        ),
        "{}",
        stderr(&o)
    );
}

/// Issue 18: moving Istio 1.30 → 1.29 takes the Gateway API CRDs from
/// v1.5.1 down to v1.4.1, which the v1.5.1 safe-upgrades
/// ValidatingAdmissionPolicy refuses (kubernetes-sigs/gateway-api v1.5.1
/// `config/crd/standard/gateway.networking.k8s.io_vap_safeupgrades.yaml:24-28`);
/// `meshgen diff` says so, naming the policy and the remedy. Going up, or
/// staying, does not warn.
#[test]
fn diff_warns_when_the_gateway_api_crds_go_below_v1_5() {
    let ws = Workspace::new();
    let api = format!("{GW}.api=gateway-api");
    let pin = |v: &str| {
        vec![
            "--set".to_string(),
            format!("deploykf_dependencies.istio.charts.istioBase.version={v}"),
            "--set".to_string(),
            format!("deploykf_dependencies.istio.charts.istioDaemon.version={v}"),
            "--set".to_string(),
            format!("{GW}.charts.istioGateway.version={v}"),
        ]
    };
    let run = |cmd: &str, istio: &str| {
        let mut args = vec![cmd.to_string(), "--set".into(), api.clone()];
        args.extend(pin(istio));
        args.extend(["-o".to_string(), "out".to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ws.run(&args)
    };
    let warning = "warning[crd-downgrade]: the Gateway API CRDs go down from v1.5.1 (the tree on disk) to v1.4.1: the ValidatingAdmissionPolicy `safe-upgrades.gateway.networking.k8s.io` that v1.5.1 installed refuses CRDs of a bundle before v1.5.0 (\"Installing CRDs with version before v1.5.0 is prohibited by default\"), so applying this tree fails on every CRD; delete it first (`kubectl delete validatingadmissionpolicybinding,validatingadmissionpolicy safe-upgrades.gateway.networking.k8s.io`), or stay on the Istio minor of v1.5.1\n";
    let first = run("generate", "1.30.3");
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let down = run("diff", "1.29.6");
    assert_eq!(down.status.code(), Some(0), "{}", stderr(&down));
    let crd_lines = |o: &Output| -> Vec<String> {
        stderr(o)
            .lines()
            .filter(|l| l.contains("Gateway API CRDs"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(crd_lines(&down), [warning]);
    let d = stdout(&down);
    for line in [
        "-    gateway.networking.k8s.io/bundle-version: v1.5.1\n",
        "+    gateway.networking.k8s.io/bundle-version: v1.4.1\n",
    ] {
        assert!(d.contains(line), "{line}");
    }
    assert!(
        d.contains("--- a/manifests/deploykf-dependencies/gateway-api/gateway.networking.k8s.io_vap_safeupgrades.yaml\n+++ /dev/null"),
        "the policy leaves the tree"
    );
    let same = run("diff", "1.30.3");
    assert!(crd_lines(&same).is_empty());
    assert_eq!(stdout(&same), "");
    assert!(crd_lines(&first).is_empty(), "a new tree replaces nothing");
    // Issue 29, point 5: `generate` writing over the tree says the same
    // as `diff` (it was silent).
    let written = run("generate", "1.29.6");
    assert_eq!(written.status.code(), Some(0), "{}", stderr(&written));
    assert_eq!(crd_lines(&written), [warning]);
    // From v1.4.1 up to v1.5.1: no warning.
    let up = run("diff", "1.30.3");
    assert!(crd_lines(&up).is_empty());
    assert!(!stdout(&up).is_empty());
    // Leaving the tree (your own Istio now): deleting a CRD deletes its
    // objects, which a pruning engine would do.
    let own = ws.run(&[
        "diff",
        "--set",
        &api,
        "--set",
        "deploykf_dependencies.istio.enabled=false",
        "-o",
        "out",
    ]);
    assert_eq!(own.status.code(), Some(0), "{}", stderr(&own));
    let lines = crd_lines(&own);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "warning[crds-left-behind]: the Gateway API CRDs (v1.4.1) leave this tree"
        ),
        "{}",
        lines[0]
    );
    let own = ws.run(&[
        "generate",
        "--set",
        &api,
        "--set",
        "deploykf_dependencies.istio.enabled=false",
        "-o",
        "out",
    ]);
    assert_eq!(own.status.code(), Some(0), "{}", stderr(&own));
    assert_eq!(crd_lines(&own), lines);
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
    assert_eq!(sources.len(), 50, "{sources:?}");
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
    let host = format!("{GW}.gateway.hostname=a.example.com");
    let o = assert_run_snapshot(
        "values_warns_once_per_ignored_section",
        &ws,
        &["values", "-f", "v.yaml", "--set", &host],
        "v.yaml sets deploykf_opt.deploykf_minio (2 keys) and kubeflow_tools.katib",
        Shown::Stderr,
    );
    let out = stdout(&o);
    assert!(
        out.contains("    gateway:\n      name: deploykf-gateway\n      hostname: a.example.com\n"),
        "{out}"
    );
    assert!(out.contains("version: \"1.30.3\""), "{out}");
}

/// Issue 15: a values file carried over from deployKF 0.1.3 holds a key
/// 0.1.5 dropped and a key a fork added to a section meshgen does not
/// render; a typo there is the fork's business too. All three are
/// warnings at the user's file:line:col, the tree is written (the same
/// typo in a section meshgen renders stays an error: `typo at depth`).
#[test]
fn older_release_keys_and_unknown_keys_in_unrendered_sections_are_warnings() {
    let ws = Workspace::new();
    let case = common::root().join("tests/cases/deploykf-older-release/values.yaml");
    ws.file("upgraded.yaml", &std::fs::read(case).unwrap());
    ws.file(
        "typo.yaml",
        b"kubeflow_tools:\n  pipelines:\n    bukcet: {}\n",
    );
    let o = assert_run_snapshot(
        "older_release_keys_and_unknown_keys_in_unrendered_sections",
        &ws,
        &[
            "generate",
            "-f",
            "upgraded.yaml",
            "-f",
            "typo.yaml",
            "-o",
            "out",
        ],
        "upgraded.yaml is tests/cases/deploykf-older-release/values.yaml; typo.yaml sets kubeflow_tools.pipelines.bukcet",
        Shown::All,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let warning = |path: &str| {
        err.lines()
            .find(|l| l.starts_with("warning[") && l.contains(&format!("]: `{path}`: ")))
            .unwrap_or_else(|| panic!("no warning about `{path}`\n{err}"))
            .to_string()
    };
    assert!(warning("kubeflow_tools.pipelines.kfpV2.minioFix").ends_with(
        "removed in deployKF 0.1.5 (known in 0.1.0\u{2013}0.1.4); it has no effect --> upgraded.yaml:28:7"
    ));
    assert!(warning("deploykf_opt.deploykf_minio.tenant").ends_with("--> upgraded.yaml:15:5"));
    assert!(warning("kubeflow_tools.pipelines.bukcet")
        .contains("unknown key `bukcet`; did you mean `bucket`?"));
    assert!(!err.contains("error["), "{err}");
}

#[test]
fn deploykf_sample_values_generate_unchanged() {
    let ws = Workspace::new();
    let sample = common::root().join(common::DEPLOYKF_SAMPLE);
    ws.file("sample-values.yaml", &std::fs::read(sample).unwrap());
    // Succeeds, with one warning per deployKF section meshgen ignores.
    assert_run_snapshot(
        "deploykf_sample_values",
        &ws,
        &["generate", "-f", "sample-values.yaml", "-o", "out"],
        "deployKF 0.1.5's sample-values.yaml",
        Shown::All,
    );
}

#[test]
fn the_seeds_yaml_snippets_are_accepted_verbatim() {
    let Some(seed) = common::shared(
        "seeds/deploykf-istio.md",
        "the_seeds_yaml_snippets_are_accepted_verbatim",
    ) else {
        return;
    };
    let seed = std::fs::read_to_string(seed).unwrap();
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
        let file = format!("snippet-{i}.yaml");
        if s.contains("version: 1.19.6") {
            assert_run_snapshot(
                &format!("seed_snippet_{i}_pins_the_gateway_to_istio_1_19_6"),
                &ws,
                &["generate", "-f", &file],
                s,
                Shown::All,
            );
        } else {
            let o = ws.run(&["generate", "-f", &file]);
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
    // Two warnings, at lines 6 and 10.
    assert_run_snapshot(
        "overriding_a_required_mesh_setting",
        &ws,
        &["generate", "-f", "v.yaml", "-o", "out"],
        "v.yaml sets holdApplicationUntilProxyStarts: false (line 6) and enableNamespacesByDefault: true (line 10)",
        Shown::All,
    );
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

/// Issue 15: your own Istio, older than what meshgen's objects rely on,
/// is a warning naming each missing feature and since when Istio has it;
/// no window applies to it (meshgen does not install it).
#[test]
fn own_istio_older_than_meshgen_needs_warns_with_what_it_lacks() {
    let ws = Workspace::new();
    ws.file(
        "v.yaml",
        b"deploykf_dependencies:\n  istio:\n    enabled: false\n    charts:\n      istioBase:\n        version: \"1.16.0\"\ndeploykf_core:\n  deploykf_istio_gateway:\n    charts:\n      istioGateway:\n        version: \"1.16.0\"\n",
    );
    let o = ws.run(&["generate", "-f", "v.yaml", "-o", "out"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("warning[own-istio-too-old]: `deploykf_core.deploykf_istio_gateway.charts.istioGateway.version`: Istio 1.16.0 is older"))
        .unwrap_or_else(|| panic!("no warning\n{err}"));
    assert!(line.contains("Istio 1.18 or later"), "{line}");
    assert!(
        line.contains("`outputClaimToHeaders` (since Istio 1.17)"),
        "{line}"
    );
    assert!(line.contains("(since Istio 1.18)"), "{line}");
    assert!(!line.contains("since Istio 1.9"), "{line}");
    assert!(line.ends_with("--> v.yaml:11:18"), "{line}");
    assert!(
        !err.contains("outside the versions meshgen installs"),
        "{err}"
    );
    let required = std::fs::read_to_string(ws.path().join("out/REQUIRED-MESH-CONFIG.md")).unwrap();
    assert!(
        required.contains("Your Istio MUST be **1.18 or later**"),
        "{required}"
    );
}

/// Issue 18: ambient with your own Istio new enough for meshgen's objects
/// is a warning listing what meshgen cannot see, repeated in
/// REQUIRED-MESH-CONFIG.md; the version boundaries of the two modes (1.25
/// for ambient, 1.22 for gateway-api) pass; `cni.enabled: false` left to
/// the defaults is no error, and has no effect, with ambient.
#[test]
fn ambient_with_your_own_istio_warns_what_meshgen_cannot_verify() {
    let ws = Workspace::new();
    ws.file(
        "v.yaml",
        b"deploykf_dependencies:\n  istio:\n    enabled: false\n    dataplaneMode: ambient\ndeploykf_core:\n  deploykf_istio_gateway:\n    api: gateway-api\n    charts:\n      istioGateway:\n        version: 1.25.0\n",
    );
    let o = assert_run_snapshot(
        "ambient_with_your_own_istio",
        &ws,
        &["generate", "-f", "v.yaml", "-o", "out"],
        "ambient and gateway-api with your own Istio 1.25.0",
        Shown::Stderr,
    );
    assert_eq!(o.status.code(), Some(0));
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| {
            l.starts_with(
                "warning[own-istio-unverified]: `deploykf_dependencies.istio.dataplaneMode`: ",
            )
        })
        .unwrap_or_else(|| panic!("no warning\n{err}"));
    for needed in [
        "ztunnel DaemonSet",
        "istio-cni with ambient enabled",
        "`PILOT_ENABLE_AMBIENT=true`",
        "ISTIO_META_ENABLE_HBONE",
        "Gateway API CRDs, standard channel v1.4 or later",
    ] {
        assert!(line.contains(needed), "{needed}: {line}");
    }
    assert!(line.ends_with("--> v.yaml:4:20"), "{line}");
    assert!(!err.contains("error["), "{err}");
    let guide = std::fs::read_to_string(ws.path().join("out/REQUIRED-MESH-CONFIG.md")).unwrap();
    assert!(
        guide.contains("Your Istio MUST be **1.25 or later**"),
        "{guide}"
    );
    assert!(guide.contains("`istio.io/ingress-use-waypoint`"), "{guide}");
    assert!(guide.contains("by `targetRefs`"), "{guide}");
    assert!(guide.contains("**Ambient**"), "{guide}");
    assert!(
        guide.contains("the ztunnel DaemonSet on every node"),
        "{guide}"
    );

    // The sidecar defaults say nothing of ambient, nor of the modes'
    // features.
    let o = ws.run(&[
        "generate",
        "--set",
        "deploykf_dependencies.istio.enabled=false",
        "-o",
        "out",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!stderr(&o).contains("ambient"), "{}", stderr(&o));
    let guide = std::fs::read_to_string(ws.path().join("out/REQUIRED-MESH-CONFIG.md")).unwrap();
    assert!(
        guide.contains("Your Istio MUST be **1.18 or later**"),
        "{guide}"
    );
    assert!(!guide.contains("ingress-use-waypoint"), "{guide}");
    assert!(!guide.contains("**Ambient**"), "{guide}");

    // meshgen's Istio: ambient (istio-cni whatever `cni.enabled` says).
    let o = ws.run(&[
        "generate",
        "--set",
        "deploykf_dependencies.istio.dataplaneMode=ambient",
        "-o",
        "out",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("dataplaneMode"), "{}", stderr(&o));
}

#[test]
fn bringing_your_own_istio_explains_what_it_must_provide() {
    let ws = Workspace::new();
    assert_run_snapshot(
        "bringing_your_own_istio",
        &ws,
        &[
            "generate",
            "--set",
            "deploykf_dependencies.istio.enabled=false",
            "-o",
            "out",
        ],
        "no values file",
        Shown::All,
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
    assert_run_snapshot(
        "argocd_defaults_notice_the_missing_repository",
        &ws,
        &["generate", "-o", "out"],
        "no values file",
        Shown::All,
    );
    assert!(!ws.path().join("out/app-of-apps.yaml").exists());
    // deployKF's rules: a prefix needs a remote destination; the source is
    // a git URL.
    for (name, set) in [
        (
            "argocd_prefix_with_the_local_server",
            "argocd.appNamePrefix=prod-",
        ),
        (
            "argocd_prefix_with_the_in_cluster_name",
            "argocd.appNamePrefix=prod-,argocd.destination.name=in-cluster",
        ),
        (
            "argocd_repository_not_a_git_url",
            "argocd.source.repo.url=ftp://example.com/repo",
        ),
    ] {
        assert_run_snapshot(
            name,
            &ws,
            &["generate", "--set", set, "-o", "out"],
            "no values file",
            Shown::All,
        );
    }
    ws.file(
        "p.yaml",
        b"argocd:\n  source:\n    plugin:\n      enabled: true\n",
    );
    assert_run_snapshot(
        "argocd_settings_ignored_under_flux",
        &ws,
        &[
            "generate",
            "-f",
            "p.yaml",
            "--set",
            "gitops.engine=flux",
            "-o",
            "out",
        ],
        "p.yaml sets argocd.source.plugin.enabled: true",
        Shown::All,
    );
}

#[test]
fn a_usage_error_exits_2_before_reading_anything() {
    let ws = Workspace::new();
    assert_run_snapshot(
        "usage_error_unknown_option",
        &ws,
        &["generate", "--output-dir-typo", "out"],
        "no values file",
        Shown::All,
    );
    assert_run_snapshot(
        "usage_error_missing_value",
        &ws,
        &["generate", "-f"],
        "no values file",
        Shown::All,
    );
    assert!(!ws.path().join("out").exists());
}

/// Issue 32 point 5: with the egress gateway, profile pods reach only pods
/// of the cluster and `apiServerCIDRs`; left empty, a warning at the line
/// that turned the gateway on says what breaks, and none once it is set.
#[test]
fn egress_gateway_without_api_server_cidrs_warns_at_the_users_line() {
    let ws = Workspace::new();
    ws.file(
        "v.yaml",
        b"deploykf_dependencies:\n  istio:\n    egress:\n      mode: registry-only\n      gateway:\n        enabled: true\n",
    );
    let o = ws.run(&["generate", "-f", "v.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning[api-server-unset]: `deploykf_dependencies.istio.egress.gateway.enabled`: `deploykf_dependencies.istio.egress.gateway.apiServerCIDRs` is empty: each profile's NetworkPolicy lets its pods reach only pods of the cluster")
            && stderr(&o).contains("--> v.yaml:6:18"),
        "{}",
        stderr(&o)
    );
    let o = ws.run(&[
        "generate",
        "-f",
        "v.yaml",
        "-o",
        "out2",
        "--set",
        "deploykf_dependencies.istio.egress.gateway.apiServerCIDRs[0]=10.0.0.10/32",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("apiServerCIDRs"), "{}", stderr(&o));
}

/// Issue 15: with your own cert-manager, meshgen renders no ClusterIssuer
/// (it used to render a self-signed one under `issuerName`);
/// `clusterIssuer.enabled: true` set by the user is named as having no
/// effect, and the not-for-production warning of the self-signed default
/// is not given.
#[test]
fn regression_own_cert_manager_warns_that_cluster_issuer_enabled_has_no_effect() {
    let ws = Workspace::new();
    ws.file(
        "v.yaml",
        b"deploykf_dependencies:\n  cert_manager:\n    enabled: false\n    clusterIssuer:\n      enabled: true\n      issuerName: my-cluster-issuer\n",
    );
    let o = assert_run_snapshot(
        "own_cert_manager_with_cluster_issuer_enabled",
        &ws,
        &["generate", "-f", "v.yaml", "-o", "out"],
        "v.yaml: cert_manager.enabled false, clusterIssuer.enabled true (line 5), issuerName my-cluster-issuer",
        Shown::All,
    );
    assert_eq!(o.status.code(), Some(0));
    let err = stderr(&o);
    assert!(!err.contains("self-signed CA"), "{err}");
    let defaults = ws.run(&["generate", "-o", "out2"]);
    assert!(
        stderr(&defaults).contains("warning[self-signed-ca]: `deploykf_dependencies.cert_manager.clusterIssuer.enabled`: the gateway certificate is signed by meshgen's self-signed CA"),
        "{}",
        stderr(&defaults)
    );
}

/// Issue 13: `injectedConfigMapName` was read nowhere and setting it gave
/// no warning; the default itself stays silent.
#[test]
fn regression_injected_config_map_name_set_by_the_user_warns() {
    let ws = Workspace::new();
    ws.file(
        "v.yaml",
        b"deploykf_dependencies:\n  cert_manager:\n    clusterIssuer:\n      selfSigned:\n        injectedConfigMapName: my-root-ca\n",
    );
    let o = assert_run_snapshot(
        "injected_config_map_name_set_by_the_user",
        &ws,
        &["generate", "-f", "v.yaml", "-o", "out"],
        "v.yaml sets clusterIssuer.selfSigned.injectedConfigMapName (line 5)",
        Shown::All,
    );
    assert_eq!(o.status.code(), Some(0));
    let defaults = ws.run(&["generate", "-o", "out2"]);
    assert!(
        !stderr(&defaults).contains("injectedConfigMapName"),
        "{}",
        stderr(&defaults)
    );
}

/// Issue 16, point 2: `-f FIFO` without a writer blocked forever and
/// `-f /dev/zero` grew without limit. Whatever is not a regular file is
/// refused before it is opened, and no values input may hold more than
/// 64 MiB (standard input included). Each run is killed after a while:
/// a run that blocks fails here instead of hanging the suite.
#[test]
fn regression_issue_16_values_inputs_are_bounded() {
    let ws = Workspace::new();
    let limit = meshgen::values::load::MAX_VALUES_BYTES;
    assert_eq!(limit, 64 << 20, "README.md, Input limits, names 64 MiB");
    let timeout = std::time::Duration::from_secs(60);
    let run = |args: &[&str], stdin: Option<Vec<u8>>| {
        common::run_meshgen_bounded(ws.path(), args, stdin, timeout)
    };
    let refused = |name: &str, args: &[&str], description: &str, stdin: Option<Vec<u8>>| {
        let o = assert_output_snapshot(name, &ws, args, description, Shown::All, run(args, stdin));
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 2, "{name}: {}", stderr(&o));
    };
    #[cfg(unix)]
    {
        let made = std::process::Command::new("mkfifo")
            .arg(ws.path().join("values.fifo"))
            .status()
            .expect("mkfifo");
        assert!(made.success());
        refused(
            "values_input_a_fifo",
            &["generate", "-f", "values.fifo", "-o", "out"],
            "values.fifo is a named pipe nobody writes to",
            None,
        );
        refused(
            "values_input_dev_zero",
            &["generate", "-f", "/dev/zero", "-o", "out"],
            "/dev/zero never ends",
            None,
        );
    }
    // One byte over the limit: refused by its size, before it is read
    // (the file is sparse, so this test writes almost nothing).
    let big = std::fs::File::create(ws.path().join("big.yaml")).unwrap();
    big.set_len(limit + 1).unwrap();
    drop(big);
    refused(
        "values_input_over_the_size_limit",
        &["generate", "-f", "big.yaml", "-o", "out"],
        "big.yaml is 64 MiB and one byte",
        None,
    );
    // Standard input has no size to look at: reading stops one byte
    // past the limit.
    let mut flood = b"a: ".to_vec();
    flood.resize(limit as usize + 1, b'x');
    refused(
        "values_input_stdin_over_the_size_limit",
        &["generate", "-f", "-", "-o", "out"],
        "64 MiB and one byte on stdin",
        Some(flood),
    );
    assert!(!ws.path().join("out").exists());
    // `-f -` reads the values from standard input, like a file.
    let values = "deploykf_core:\n  deploykf_istio_gateway:\n    gateway:\n      hostname: stdin.example.com\n";
    ws.file("v.yaml", values.as_bytes());
    let from_file = run(&["generate", "-f", "v.yaml"], None);
    let from_stdin = run(&["generate", "-f", "-"], Some(values.as_bytes().to_vec()));
    assert_eq!(from_stdin.status.code(), Some(0), "{}", stderr(&from_stdin));
    assert!(stdout(&from_stdin).contains("stdin.example.com"));
    assert_eq!(stdout(&from_stdin), stdout(&from_file));
    refused(
        "values_input_stdin_located",
        &["generate", "-f", "-"],
        "a typo on line 4 of stdin",
        Some(values.replace("hostname", "hostnme").into_bytes()),
    );
    refused(
        "values_input_stdin_twice",
        &["generate", "-f", "-", "-f", "-"],
        "stdin named twice",
        Some(values.as_bytes().to_vec()),
    );
}

/// Issue 16, point 5: Istio's `extraManifests` went into the wrapper
/// chart's `templates/`, where Helm evaluated them. They are written, as
/// given, into a kustomize directory beside the chart, which holds no
/// template at all (`tests/helm_istio.rs` renders that chart with helm).
#[test]
fn regression_issue_16_istio_extra_manifests_are_not_helm_templates() {
    let ws = Workspace::new();
    ws.file(
        "v.yaml",
        b"deploykf_dependencies:\n  istio:\n    extraManifests:\n      - apiVersion: v1\n        kind: ConfigMap\n        metadata: {name: notes, namespace: istio-system}\n        data: {note: \"{{ `{{ 7*7 }} {{ .Release.Name }}` }}\"}\n",
    );
    let o = ws.run(&["generate", "-f", "v.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = ws.path().join("out/manifests/deploykf-dependencies");
    let chart: Vec<_> = common::walk(&out.join("istio"));
    assert_eq!(
        chart,
        [Path::new("Chart.yaml"), Path::new("values.yaml")],
        "the chart has no templates/"
    );
    let extra = std::fs::read_to_string(out.join("istio-extra/extra-manifests.yaml")).unwrap();
    let docs = common::docs(&extra);
    assert_eq!(docs.len(), 1, "{extra}");
    assert_eq!(docs[0]["data"]["note"], "{{ 7*7 }} {{ .Release.Name }}");
    let kustomization =
        std::fs::read_to_string(out.join("istio-extra/kustomization.yaml")).unwrap();
    assert_eq!(
        common::docs(&kustomization)[0]["resources"],
        serde_json::json!(["extra-manifests.yaml"])
    );
    // The output README applies them right after the chart.
    let readme = std::fs::read_to_string(ws.path().join("out/README.md")).unwrap();
    let helm = readme.find("helm upgrade --install istio").unwrap();
    let extra_at = readme
        .find("kubectl apply -k manifests/deploykf-dependencies/istio-extra")
        .unwrap();
    let issuers = readme
        .find("kubectl apply -k manifests/deploykf-dependencies/cert-manager")
        .unwrap();
    assert!(helm < extra_at && extra_at < issuers, "{readme}");
}

/// Files made impossible to delete, for as long as this lives: their
/// directory read-only, which stops anyone but a privileged user (root,
/// as in many CI containers), or else each file immutable (`chattr +i`,
/// which stops root too). Dropping it undoes both under `undo_under`,
/// wherever meshgen moved the files meanwhile.
struct Undeletable {
    undo_under: std::path::PathBuf,
}

impl Undeletable {
    /// `None` (with the reason) when neither works here.
    #[cfg(unix)]
    fn new(dir: &Path, undo_under: &Path) -> Result<Undeletable, String> {
        use std::os::unix::fs::PermissionsExt;
        let guard = Undeletable {
            undo_under: undo_under.to_path_buf(),
        };
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let probe = dir.join(".probe");
        if std::fs::write(&probe, "").is_err() {
            return Ok(guard); // the read-only directory holds
        }
        // Privileged: permissions do not stop us. Make the files immutable.
        std::fs::remove_file(&probe).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let made = std::process::Command::new("chattr")
                .arg("+i")
                .arg(&path)
                .output();
            match made {
                Ok(o) if o.status.success() => {}
                Ok(o) => return Err(format!("chattr +i: {}", String::from_utf8_lossy(&o.stderr))),
                Err(e) => return Err(format!("chattr: {e}")),
            }
        }
        Ok(guard)
    }

    #[cfg(not(unix))]
    fn new(_: &Path, _: &Path) -> Result<Undeletable, String> {
        Err("needs a unix filesystem".into())
    }
}

impl Drop for Undeletable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .args(["-R", "-i"])
            .arg(&self.undo_under)
            .output();
        let _ = std::process::Command::new("chmod")
            .args(["-R", "u+rwX"])
            .arg(&self.undo_under)
            .output();
    }
}

/// `text` with every `.out.meshgen-old-<random>` holder named `[HOLDER]`.
fn holders_named(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(".out.meshgen-old-") {
        let start = at + ".out.meshgen-old-".len();
        out.push_str(&rest[..at]);
        out.push_str("[HOLDER]");
        let end = rest[start..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(rest.len(), |i| start + i);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Issue 16, point 6: when the previous output could not be deleted
/// after the swap, the warning promised that the next run would delete
/// it, but deletion had taken the marker first, and the next run called
/// the leftover a stranger's forever. Now the run succeeds (the new tree
/// is in) naming exactly what is left, the marker is deleted last, and
/// the next run deletes the rest. The fault is real: files that cannot
/// be deleted.
#[test]
fn regression_issue_16_a_previous_output_that_resists_deletion() {
    let ws = Workspace::new();
    assert_eq!(ws.run(&["generate", "-o", "out"]).status.code(), Some(0));
    let chart = ws.path().join("out/manifests/deploykf-dependencies/istio");
    let fault = match Undeletable::new(&chart, ws.path()) {
        Ok(f) => f,
        Err(why) => {
            eprintln!("skipped: cannot make a file undeletable here ({why})");
            return;
        }
    };
    let host = format!("{GW}.gateway.hostname=new.example.com");
    let args = ["generate", "--set", &host, "-o", "out"];
    let mut o = ws.run(&args);
    // Root and others see the same, both files of the chart left, but
    // for the reason: EPERM (immutable) or EACCES (read-only directory).
    o.stderr = holders_named(&stderr(&o))
        .replace("Operation not permitted (os error 1)", "[CANNOT DELETE]")
        .replace("Permission denied (os error 13)", "[CANNOT DELETE]")
        .into_bytes();
    let o = assert_output_snapshot(
        "previous_output_resists_deletion",
        &ws,
        &args,
        "out/manifests/deploykf-dependencies/istio/{Chart,values}.yaml cannot be deleted",
        Shown::Stderr,
        o,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let gateway = std::fs::read_to_string(
        ws.path()
            .join("out/manifests/deploykf-core/deploykf-istio-gateway/Gateway.yaml"),
    )
    .unwrap();
    assert!(gateway.contains("new.example.com"), "{gateway}");
    let holders: Vec<String> = std::fs::read_dir(ws.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".out.meshgen-old-"))
        .collect();
    let [holder] = holders.as_slice() else {
        panic!("one holder expected: {holders:?}")
    };
    let left = common::walk(&ws.path().join(holder));
    assert_eq!(
        left,
        [
            "out/.meshgen-output",
            "out/manifests/deploykf-dependencies/istio/Chart.yaml",
            "out/manifests/deploykf-dependencies/istio/values.yaml",
        ]
        .map(std::path::PathBuf::from),
        "all but what resists is deleted, the marker is kept"
    );
    // Once the files can go, the next run deletes them, silently.
    drop(fault);
    let o = ws.run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("meshgen-old"), "{}", stderr(&o));
    assert!(!ws.path().join(holder).exists());
}

/// Issue 16, point 6: `-o /` walked the whole filesystem before refusing;
/// the root and the home directory are refused at once, and a directory
/// without a marker is refused before it is walked.
#[test]
fn regression_issue_16_refuses_the_root_and_home_at_once() {
    let ws = Workspace::new();
    let timeout = std::time::Duration::from_secs(30);
    let o = common::run_meshgen_bounded(ws.path(), &["generate", "-o", "/"], None, timeout);
    let o = assert_output_snapshot(
        "refuses_the_filesystem_root",
        &ws,
        &["generate", "-o", "/"],
        "the filesystem root",
        Shown::All,
        o,
    );
    assert_eq!(o.status.code(), Some(1));
    std::fs::create_dir(ws.path().join("home")).unwrap();
    ws.file("home/.profile", b"# mine\n");
    let mut cmd = common::meshgen_command(ws.path());
    cmd.env("HOME", ws.path().join("home"));
    let o = cmd.args(["generate", "-o", "home"]).output().unwrap();
    let o = assert_output_snapshot(
        "refuses_the_home_directory",
        &ws,
        &["generate", "-o", "home"],
        "HOME=[TMP]/home, holding .profile",
        Shown::All,
        o,
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(common::walk(&ws.path().join("home")).len(), 1);
    // `diff` neither walks the root nor opens a FIFO it finds.
    let o = common::run_meshgen_bounded(ws.path(), &["diff", "-o", "/"], None, timeout);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(
            "error[output]: refusing to compare with `/`: it is the root of the filesystem"
        ),
        "{}",
        stderr(&o)
    );
    #[cfg(unix)]
    {
        assert_eq!(ws.run(&["generate", "-o", "out"]).status.code(), Some(0));
        let made = std::process::Command::new("mkfifo")
            .arg(ws.path().join("out/pipe"))
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let o = common::run_meshgen_bounded(ws.path(), &["diff", "-o", "out"], None, timeout);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o)
                .contains("error[output]: cannot compare `out/pipe`: it is not a regular file"),
            "{}",
            stderr(&o)
        );
    }
}

/// Issue 16, point 6: an empty directory a user made inside the output
/// was deleted with the previous tree, silently; it is refused like a
/// file meshgen did not write.
#[test]
fn regression_issue_16_an_empty_directory_of_the_user_is_refused_not_deleted() {
    let ws = Workspace::new();
    assert_eq!(ws.run(&["generate", "-o", "out"]).status.code(), Some(0));
    std::fs::create_dir(ws.path().join("out/my-notes")).unwrap();
    let o = assert_run_snapshot(
        "refuses_an_empty_directory_it_did_not_make",
        &ws,
        &["generate", "-o", "out"],
        "out/ is a meshgen output plus an empty my-notes/",
        Shown::All,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(ws.path().join("out/my-notes").is_dir());
}

/// Issue 15, point 6: the stream names the wrapper charts it leaves out
/// (and how to render them); `meshgen values` never says it wrote nothing.
#[test]
fn regression_issue_15_stream_names_the_charts_it_leaves_out() {
    let ws = Workspace::new();
    let o = ws.run(&["generate"]);
    assert_eq!(o.status.code(), Some(0));
    let err = stderr(&o);
    for chart in ["istio", "cert-manager"] {
        let dir = format!("manifests/deploykf-dependencies/{chart}");
        assert!(
            err.contains(&format!("the Helm chart `{dir}` is not in this stream"))
                && err.contains(&format!("helm dependency build DIR/{dir}")),
            "{err}"
        );
    }
    assert!(!String::from_utf8_lossy(&o.stdout)
        .contains("# Source: manifests/deploykf-dependencies/istio/"));
    let o = ws.run(&["values", "--set", "gitops.engine=argo"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.ends_with("meshgen: 1 error; no values were printed\n"),
        "{err}"
    );
}

/// Issue 18: reviewing a mode change. `diff --stat` lists each changed
/// file with its added and removed lines (new and gone files marked) and a
/// total; paths after `--` narrow `diff`, `--stat` and `--exit-code` to
/// those files and directories, as git's pathspecs do.
#[test]
fn diff_stat_and_paths_narrow_the_review_of_a_mode_change() {
    let ws = Workspace::new();
    let first = ws.run(&["generate", "-o", "out"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let ambient = "deploykf_dependencies.istio.dataplaneMode=ambient";
    let stat = ws.run(&["diff", "--set", ambient, "-o", "out", "--stat"]);
    assert_eq!(stat.status.code(), Some(0), "{}", stderr(&stat));
    let out = stdout(&stat);
    let lines: Vec<&str> = out.lines().collect();
    let httproutes = lines
        .iter()
        .find(|l| l.contains("gateway-api/gateway.networking.k8s.io_httproutes.yaml"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(httproutes.ends_with(" -0 (new)"), "{httproutes}");
    let values = lines
        .iter()
        .find(|l| l.contains("deploykf-dependencies/istio/values.yaml"))
        .unwrap();
    assert!(
        values.contains(" | +") && !values.contains("(new)"),
        "{values}"
    );
    let total = lines.last().unwrap();
    assert!(
        total.starts_with(&format!(" {} files changed, ", lines.len() - 1)),
        "{total}"
    );
    // Only the istio chart: two files, and its diff alone.
    let dir = "manifests/deploykf-dependencies/istio";
    let narrow = ws.run(&["diff", "--set", ambient, "-o", "out", "--stat", "--", dir]);
    assert_eq!(stdout(&narrow).lines().count(), 3, "{}", stdout(&narrow));
    let d = ws.run(&[
        "diff",
        "--set",
        ambient,
        "-o",
        "out",
        "--",
        &format!("{dir}/"),
    ]);
    let d = stdout(&d);
    assert!(d.contains("+  profile: ambient\n"), "{d}");
    assert!(!d.contains("gateway-api/"), "{d}");
    // A file ambient does not change: no drift there.
    let same = ws.run(&[
        "diff",
        "--set",
        ambient,
        "-o",
        "out",
        "--exit-code",
        "--",
        "manifests/deploykf-core/deploykf-istio-gateway/Deployment.yaml",
    ]);
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));
    assert!(stdout(&same).is_empty());
    let drift = ws.run(&[
        "diff",
        "--set",
        ambient,
        "-o",
        "out",
        "--exit-code",
        "--",
        dir,
    ]);
    assert_eq!(drift.status.code(), Some(1));
    // A directory name is a whole path element: `istio` is not `istio-x`.
    let none = ws.run(&[
        "diff",
        "--set",
        ambient,
        "-o",
        "out",
        "--stat",
        "--",
        "manifests/deploykf-dependencies/ist",
    ]);
    assert!(stdout(&none).is_empty(), "{}", stdout(&none));
}

/// Issue 29, point 7: deployKF runs Helm's `tpl` over `extraManifests`,
/// and its documented ExternalSecret writes `` {{ `{{ .clientID | quote }}` }} ``
/// to hand External Secrets the literal `{{ .clientID | quote }}`. meshgen
/// copied the escape as is, so dex would have read a client id with
/// backquotes. Now the escape becomes its literal, in a YAML string item
/// and in a map item alike, and any other `{{` is refused, located, with the
/// escape shown.
#[test]
fn regression_issue_29_helm_escaped_extra_manifests() {
    let ws = Workspace::new();
    ws.file(
        "v.yaml",
        br#"deploykf_core:
  deploykf_auth:
    extraManifests:
      - |
        apiVersion: external-secrets.io/v1
        kind: ExternalSecret
        metadata:
          name: dex-oauth2-proxy-client
        spec:
          secretStoreRef: {name: vault, kind: ClusterSecretStore}
          target:
            template:
              data:
                client_id: "{{ `{{ .clientID | quote }}` }}"
                client_secret: {{ `"{{ .clientSecret }}"` }}
          dataFrom: [{extract: {key: dex/oauth2-proxy}}]
      - apiVersion: v1
        kind: ConfigMap
        metadata: {name: notes}
        data: {"{{ `{{ k }}` }}": "{{`{{ v }}`}}"}
"#,
    );
    let o = ws.run(&["generate", "-f", "v.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let extra = std::fs::read_to_string(
        ws.path()
            .join("out/manifests/deploykf-core/deploykf-auth/extra-manifests.yaml"),
    )
    .unwrap();
    let docs = common::docs(&extra);
    let data = &docs[0]["spec"]["target"]["template"]["data"];
    assert_eq!(data["client_id"], "{{ .clientID | quote }}");
    assert_eq!(data["client_secret"], "{{ .clientSecret }}");
    assert_eq!(docs[1]["data"], serde_json::json!({"{{ k }}": "{{ v }}"}));

    // Anything else in `{{ }}` is refused, at the item, with the escape.
    for (item, at) in [
        ("      - \"apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: a, namespace: x}\\ndata: {a: '{{ .Values.x }}'}\\n\"\n", "line 4 of the manifest"),
        ("      - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}, data: {note: '{{ 7*7 }}'}}\n", "`data.note` of the manifest"),
    ] {
        ws.file(
            "bad.yaml",
            format!("deploykf_core:\n  deploykf_auth:\n    extraManifests:\n{item}").as_bytes(),
        );
        let o = ws.run(&["generate", "-f", "bad.yaml", "-o", "out"]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.matches("error[").count(), 1, "{err}");
        assert!(
            err.contains(&format!("error[rule]: `deploykf_core.deploykf_auth.extraManifests[0]`: holds `{{{{` at {at}, which only a template engine would read: meshgen evaluates no template"))
                && err.contains("{{ `{{ .clientID }}` }}")
                && err.contains("--> bad.yaml:4:9"),
            "{err}"
        );
    }
}

/// Issue 29, points 8 and 9. deployKF's IRSA snippet pasted with every
/// annotation commented out leaves `annotations:` null: in deployKF an
/// empty map, here it was "required and cannot be deleted". And a warning
/// about a key the user set (an unused `valuesOverrides`) named
/// `default_values.yaml`, which an installed binary does not ship.
#[test]
fn regression_issue_29_null_free_form_maps_and_warnings_at_the_users_line() {
    let ws = Workspace::new();
    ws.file(
        "v.yaml",
        br#"deploykf_dependencies:
  cert_manager:
    controller:
      serviceAccount:
        annotations:
          #eks.amazonaws.com/role-arn: "arn:aws:iam::MY_ACCOUNT_ID:role/MY_ROLE_NAME"
deploykf_core:
  deploykf_istio_gateway:
    gatewayService:
      annotations:
  deploykf_auth:
    valuesOverrides:
      dex:
        replicas: 2
"#,
    );
    let o = ws.run(&["generate", "-f", "v.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!err.contains("default_values.yaml:7"), "{err}");
    let overrides: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("`deploykf_core.deploykf_auth.valuesOverrides`"))
        .collect();
    assert_eq!(overrides.len(), 1, "{err}");
    assert!(overrides[0].ends_with("--> v.yaml:13:7"), "{err}");
    let service = std::fs::read_to_string(
        ws.path()
            .join("out/manifests/deploykf-core/deploykf-istio-gateway/Service.yaml"),
    );
    let docs = common::docs(&service.unwrap());
    assert!(
        docs[0]["metadata"].get("annotations").is_none(),
        "{:?}",
        docs[0]
    );
}

/// Issue 29: a repository URL without its revision or path rendered
/// Applications following HEAD at the repository's root.
#[test]
fn regression_issue_29_half_filled_argocd_repo_is_an_error() {
    let ws = Workspace::new();
    ws.file(
        "v.yaml",
        b"argocd:\n  source:\n    repo:\n      url: https://github.com/example/platform\n",
    );
    let o = ws.run(&["generate", "-f", "v.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("error[rule]: `argocd.source.repo.url`: is set, but `argocd.source.repo.revision` and `argocd.source.repo.path` are empty: set the branch, tag or commit Argo CD follows (e.g. main) and the tree's folder in the repository (e.g. ./GENERATOR_OUTPUT/, or ./ for its root) --> v.yaml:4:12"),
        "{err}"
    );
    assert!(!ws.path().join("out").exists());
    let o = ws.run(&[
        "generate",
        "-f",
        "v.yaml",
        "--set",
        "argocd.source.repo.revision=main",
        "-o",
        "out",
    ]);
    assert!(
        stderr(&o).contains("but `argocd.source.repo.path` is empty"),
        "{}",
        stderr(&o)
    );
    let o = ws.run(&[
        "generate",
        "-f",
        "v.yaml",
        "--set",
        "argocd.source.repo.revision=main",
        "--set",
        "argocd.source.repo.path=./",
        "-o",
        "out",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Issue 29: a connector's `redirectURI` on another host than the gateway
/// (a copied example's) failed only at the first login; now a warning at
/// the key, naming the URL dex serves.
#[test]
fn regression_issue_29_connector_redirect_uri_off_the_gateway_warns() {
    let ws = Workspace::new();
    let values = |uri: &str| {
        format!("deploykf_core:\n  deploykf_istio_gateway:\n    gateway: {{hostname: ml.corp.net}}\n  deploykf_auth:\n    dex:\n      connectors:\n        - type: oidc\n          id: corp\n          name: Corp\n          config:\n            issuer: https://sso.corp.net\n            clientID: ml\n            clientSecret: $SECRET\n            redirectURI: {uri}\n          env:\n            SECRET: {{existingSecret: corp-oidc, existingSecretKey: secret}}\n")
    };
    let warnings = |uri: &str| -> Vec<String> {
        ws.file("v.yaml", values(uri).as_bytes());
        let o = ws.run(&["generate", "-f", "v.yaml"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stderr(&o)
            .lines()
            .filter(|l| l.contains("redirectURI"))
            .map(String::from)
            .collect()
    };
    assert_eq!(
        warnings("https://deploykf.example.com/dex/callback"),
        ["warning[redirect-elsewhere]: `deploykf_core.deploykf_auth.dex.connectors[0].config.redirectURI`: is not under the gateway's public URL `https://ml.corp.net`: the identity provider will send users back to another host, and their login fails; set `https://ml.corp.net/dex/callback` (and register it with the provider) --> v.yaml:14:13"]
    );
    let path = warnings("https://ml.corp.net/callback");
    assert_eq!(path.len(), 1);
    assert!(
        path[0].contains("dex serves its callback at `https://ml.corp.net/dex/callback`"),
        "{path:?}"
    );
    assert!(warnings("https://ml.corp.net/dex/callback").is_empty());
}

/// Issue 29, point 6: `patches` tune what meshgen renders natively. A
/// target that matches nothing is refused (kustomize would apply the
/// patch to nothing, silently), with the name meant; an operation that is
/// not JSON 6902 is refused at the patch. And kustomize (kubectl's) applies
/// what meshgen wrote: skipped without kubectl, a failure under
/// MESHGEN_REQUIRE_TOOLS=1.
#[test]
fn regression_issue_29_patches() {
    let ws = Workspace::new();
    let run = |patch: &str| {
        ws.file(
            "v.yaml",
            format!("deploykf_core:\n  deploykf_auth:\n    patches:\n      - {patch}\n").as_bytes(),
        );
        ws.run(&["generate", "-f", "v.yaml", "-o", "out"])
    };
    let o = run("{target: {kind: Deployment, name: dexx}, patch: {spec: {replicas: 2}}}");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("error[tree]: `deploykf_core.deploykf_auth.patches[0]`: target Deployment `dexx` is not an object of `manifests/deploykf-core/deploykf-auth/`, so kustomize would apply this patch to nothing; did you mean `dex`? --> v.yaml:4:9"),
        "{}",
        stderr(&o)
    );
    let o = run("{target: {kind: Deployment, name: dex}, patch: [{op: merge, path: /spec}]}");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("error[rule]: `deploykf_core.deploykf_auth.patches[0].patch`: operation 0 needs `op`: one of add, remove, replace, move, copy, test"),
        "{}",
        stderr(&o)
    );
    let o = run("{target: {kind: Deployment, name: dex}, patch: 3}");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!ws.path().join("out").exists());

    let o = run("{target: {kind: Deployment, name: dex}, patch: {spec: {template: {spec: {priorityClassName: high}}}}}");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = ws.path().join("out/manifests/deploykf-core/deploykf-auth");
    let Some(docs) = common::kustomize_build(&dir) else {
        return;
    };
    let dex = docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "dex")
        .unwrap();
    assert_eq!(dex["spec"]["template"]["spec"]["priorityClassName"], "high");
    let proxy = docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "oauth2-proxy")
        .unwrap();
    assert!(proxy["spec"]["template"]["spec"]
        .get("priorityClassName")
        .is_none());
}

/// Issue 29, point 6: a real deployKF user sets
/// `valuesOverrides.gateway.service.externalIPs` (deployKF renders the
/// gateway with Istio's `gateway` chart); meshgen dropped it with a
/// warning. Each chart key with an equivalent in meshgen's Deployment and
/// Service is now a patch of it (what kustomize builds is checked when
/// kubectl is there); a key meshgen has its own key for, or none, is an
/// error naming it.
#[test]
fn regression_issue_29_gateway_chart_overrides_take_effect() {
    let ws = Workspace::new();
    ws.file(
        "v.yaml",
        b"deploykf_core:\n  deploykf_istio_gateway:\n    valuesOverrides:\n      gateway:\n        service:\n          externalIPs: [192.0.2.7]\n          externalTrafficPolicy: Local\n        resources: {requests: {cpu: 200m}}\n        tolerations: [{key: edge, operator: Exists}]\n",
    );
    let o = ws.run(&["generate", "-f", "v.yaml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("valuesOverrides"), "{}", stderr(&o));
    let dir = ws
        .path()
        .join("out/manifests/deploykf-core/deploykf-istio-gateway");
    let k = common::docs(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap());
    assert_eq!(
        k[0]["patches"].as_array().unwrap().len(),
        3,
        "{:?}",
        k[0]["patches"]
    );
    if let Some(docs) = common::kustomize_build(&dir) {
        let find = |kind: &str| {
            docs.iter()
                .find(|d| d["kind"] == kind && d["metadata"]["name"] == "deploykf-gateway")
                .unwrap()
                .clone()
        };
        let svc = find("Service");
        assert_eq!(svc["spec"]["externalIPs"], serde_json::json!(["192.0.2.7"]));
        assert_eq!(svc["spec"]["externalTrafficPolicy"], "Local");
        let pod = &find("Deployment")["spec"]["template"]["spec"];
        assert_eq!(pod["tolerations"][0]["key"], "edge");
        assert_eq!(pod["containers"][0]["name"], "istio-proxy");
        assert_eq!(pod["containers"][0]["resources"]["requests"]["cpu"], "200m");
    }
    ws.file(
        "bad.yaml",
        b"deploykf_core:\n  deploykf_istio_gateway:\n    valuesOverrides:\n      gateway:\n        replicaCount: 3\n        volumes: [{name: x, emptyDir: {}}]\n",
    );
    let o = ws.run(&["generate", "-f", "bad.yaml", "-o", "out2"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("error[rule]: `deploykf_core.deploykf_istio_gateway.valuesOverrides.gateway.replicaCount`: meshgen has its own key for this: set `deploykf_core.deploykf_istio_gateway.gatewayDeployment.replicaCount`"), "{err}");
    assert!(err.contains("error[rule]: `deploykf_core.deploykf_istio_gateway.valuesOverrides.gateway.volumes`: has no equivalent in the gateway Deployment and Service meshgen renders; change those with `deploykf_core.deploykf_istio_gateway.patches`"), "{err}");
}

/// Issue 27, point 1: `meshgen presets` lists each preset on one line, and
/// `meshgen values --preset` shows the preset's values between the
/// defaults and the user's (the user's files still win).
#[test]
fn presets_are_listed_and_layered_between_the_defaults_and_the_user() {
    let ws = Workspace::new();
    let o = ws.run(&["presets"]);
    assert_eq!(o.status.code(), Some(0));
    let list = stdout(&o);
    assert_eq!(
        list.lines().count(),
        meshgen::values::preset::ALL.len(),
        "{list}"
    );
    assert!(list.starts_with("kubeflow "), "{list}");
    ws.file(
        "my.yaml",
        b"deploykf_core:\n  deploykf_istio_gateway:\n    gatewayService:\n      name: mine\n",
    );
    let o = ws.run(&["values", "--preset", "kubeflow", "-f", "my.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.starts_with("# merged: default_values.yaml, then preset `kubeflow` (presets/kubeflow.yaml, embedded)"),
        "{text}"
    );
    let v = common::docs(&text).remove(0);
    let gw = &v["deploykf_core"]["deploykf_istio_gateway"];
    assert_eq!(gw["namespace"], "istio-system", "the preset's value");
    assert_eq!(gw["gatewayService"]["name"], "mine", "the user's file wins");
    // The same for `diff`, which takes the same value arguments.
    let o = ws.run(&["diff", "--preset", "nope", "-o", "out"]);
    assert_eq!(o.status.code(), Some(2), "diff's invalid input (issue 29)");
    assert!(
        stderr(&o).contains("unknown preset `nope`"),
        "{}",
        stderr(&o)
    );
}

/// Issue 32: asking for the user identity in access logs without the
/// login that verifies it is a warning at your line, and the identity is
/// not logged (a client could write any name in the header).
#[test]
fn issue_32_user_identity_without_the_login_is_a_warning_and_not_logged() {
    let ws = Workspace::new();
    ws.file(
        "v.yaml",
        b"deploykf_core:\n  deploykf_auth:\n    enabled: false\ndeploykf_dependencies:\n  istio:\n    telemetry:\n      accessLogs:\n        enabled: true\n        includeUserIdentity: true\n",
    );
    let o = ws.run(&["generate", "-f", "v.yaml", "-o", "out"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let warning: Vec<&str> = err
        .lines()
        .filter(|l| {
            l.starts_with(
                "warning[no-effect]: `deploykf_dependencies.istio.telemetry.accessLogs.includeUserIdentity`",
            )
        })
        .collect();
    assert_eq!(warning.len(), 1, "{err}");
    assert!(warning[0].ends_with("--> v.yaml:9:30"), "{err}");
    let values = std::fs::read_to_string(
        ws.path()
            .join("out/manifests/deploykf-dependencies/istio/values.yaml"),
    )
    .unwrap();
    let values = &common::docs(&values)[0];
    let providers = values["istio-daemon"]["meshConfig"]["extensionProviders"]
        .as_array()
        .unwrap();
    assert_eq!(providers.len(), 1, "{providers:?}");
    let labels = &providers[0]["envoyFileAccessLog"]["logFormat"]["labels"];
    assert!(labels.get("user").is_none(), "{labels}");
    assert_eq!(labels["request_id"], "%REQ(X-REQUEST-ID)%");
}

/// Issue 27: `gateway.wildcardHost` warns that KServe must be told the
/// domain and the Gateway (meshgen renders neither), with the values; and,
/// with your own certificate Secret, that it must name the wildcard.
#[test]
fn wildcard_host_names_kserves_ingress_settings() {
    let ws = Workspace::new();
    let o = ws.run(&[
        "generate",
        "--preset",
        "kubeflow",
        "--set",
        "deploykf_core.deploykf_istio_gateway.gateway.wildcardHost=true,deploykf_core.deploykf_istio_gateway.gateway.tls.credentialName=mine",
        "-o",
        "out",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("set `ingressDomain` to \"deploykf.example.com\" and `ingressGateway` to \"kubeflow/kubeflow-gateway\" in the `ingress` key of ConfigMap `inferenceservice-config`"),
        "{err}"
    );
    assert!(
        err.contains("your certificate Secret `mine`")
            && err.contains("must name `*.deploykf.example.com` too"),
        "{err}"
    );
}

/// Issue 33, point 4: `--deny-warnings` fails a run on a warning shown
/// (generate then writes nothing), `--allow-warning CODE` hides exactly
/// that code's warnings, and an unknown or error code is a usage error
/// naming the closest code.
#[test]
fn warnings_denied_and_allowed_by_code() {
    let ws = Workspace::new();
    let o = assert_run_snapshot(
        "deny_warnings_writes_nothing",
        &ws,
        &["generate", "-o", "out", "--deny-warnings"],
        "the defaults warn self-signed-ca",
        Shown::All,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!ws.path().join("out").exists());
    let o = assert_run_snapshot(
        "deny_warnings_with_the_warning_allowed",
        &ws,
        &[
            "generate",
            "-o",
            "out",
            "--deny-warnings",
            "--allow-warning",
            "self-signed-ca",
        ],
        "the one warning allowed; the notice is shown and never denied",
        Shown::All,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning["), "{}", stderr(&o));
    assert!(ws.path().join("out/README.md").is_file());
    // diff: the comparison is made and printed, then the run fails.
    let o = assert_run_snapshot(
        "deny_warnings_on_diff",
        &ws,
        &[
            "diff",
            "-o",
            "out",
            "--deny-warnings",
            "--allow-warning",
            "argocd-repo-unset",
        ],
        "no drift, one warning",
        Shown::All,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    for (name, code) in [
        ("allow_warning_unknown_code", "self-signed-cs"),
        ("allow_warning_error_code", "schema"),
    ] {
        let o = assert_run_snapshot(
            name,
            &ws,
            &["generate", "-o", "out", "--allow-warning", code],
            "a code --allow-warning does not take",
            Shown::All,
        );
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    }
}

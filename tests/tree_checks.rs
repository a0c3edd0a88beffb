//! The whole-tree reference checks, each fired on a deliberately broken
//! tree built here (not by bad values), with the file and document named.

mod common;

use meshgen::check::refs::TreeContext;
use meshgen::check::{check, CheckedTree};
use meshgen::diagnostic::Diagnostics;
use meshgen::render::{RenderedFile, RenderedTree};

const NS: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: edge\n";
const GATEWAY: &str = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n  namespace: edge\nspec:\n  selector: {app: gw}\n  servers:\n    - port: {number: 443, name: https, protocol: HTTPS}\n      hosts: [\"*\"]\n      tls: {mode: SIMPLE, credentialName: gw-cert}\n";
const CERT: &str = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: gw-cert\n  namespace: edge\nspec:\n  secretName: gw-cert\n  dnsNames: [a.example.com]\n  issuerRef: {name: x, kind: ClusterIssuer}\n";

fn tree(files: &[(&str, &str)]) -> RenderedTree {
    let mut t = RenderedTree::default();
    for (p, text) in files {
        t.files.insert(
            p.to_string(),
            RenderedFile {
                text: text.to_string(),
                template: None,
                declared: None,
            },
        );
    }
    t
}

fn ctx() -> TreeContext {
    TreeContext {
        argo_prefix: Some("out".into()),
        flux_prefix: Some(String::new()),
        existing_namespaces: vec!["argocd".into(), "flux-system".into()],
        user_credentials: vec![],
        gateway_pod_namespaces: vec![],
        extension_providers: vec!["oauth2-proxy".into()],
        user_objects: vec![],
        patches: vec![],
        gateway_api_bundle: Some("v1.4.1"),
        ambient: false,
    }
}

/// A valid base tree plus `extra` files.
fn run(extra: &[(&str, &str)]) -> Result<CheckedTree, Diagnostics> {
    let mut files = vec![
        ("c/Namespace.yaml", NS),
        ("c/Gateway.yaml", GATEWAY),
        ("c/Certificate.yaml", CERT),
        (
            "c/kustomization.yaml",
            "resources: [Namespace.yaml, Gateway.yaml, Certificate.yaml]\n",
        ),
    ];
    files.extend_from_slice(extra);
    check(tree(&files), &ctx())
}

fn one_error(extra: &[(&str, &str)]) -> String {
    let e = run(extra).expect_err("the broken tree must be refused");
    assert_eq!(e.0.len(), 1, "{:?}", e.0);
    e.0[0].message.clone()
}

#[test]
fn the_valid_base_tree_passes() {
    let checked = run(&[]).unwrap_or_else(|e| panic!("the base tree is refused: {:?}", e.0));
    let mut manifests: Vec<&str> = checked.manifests.iter().map(|m| m.path.as_str()).collect();
    manifests.sort();
    assert_eq!(
        manifests,
        ["c/Certificate.yaml", "c/Gateway.yaml", "c/Namespace.yaml"]
    );
}

#[test]
fn argo_application_paths_must_exist() {
    let app = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: a\n  namespace: argocd\nspec:\n  source:\n    path: out/c-typo\n";
    let m = one_error(&[("argocd-applications/a.yaml", app)]);
    assert_eq!(m, "argocd-applications/a.yaml (document 0, Application a): spec.source.path `out/c-typo` is not a directory of this tree");
    let ok = app.replace("out/c-typo", "out/c");
    assert!(run(&[("argocd-applications/a.yaml", &ok)]).is_ok());
}

#[test]
fn flux_kustomization_paths_must_exist() {
    let k = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: k\n  namespace: flux-system\nspec:\n  path: ./missing\n";
    let m = one_error(&[("flux/k.yaml", k)]);
    assert_eq!(m, "flux/k.yaml (document 0, Kustomization k): spec.path `./missing` is not a directory of this tree");
}

#[test]
fn kustomization_resources_must_exist() {
    let e = run(&[("d/kustomization.yaml", "resources: [gone.yaml]\n")]).unwrap_err();
    assert_eq!(e.0[0].message, "d/kustomization.yaml (document 0, Kustomization): resource `gone.yaml` does not exist in this tree");
}

#[test]
fn virtual_service_gateways_must_resolve() {
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: v\n  namespace: edge\nspec:\n  hosts: [\"*\"]\n  gateways: [mesh, gw, edge/gw, other/gw]\n";
    let m = one_error(&[("c/vs.yaml", vs)]);
    assert_eq!(m, "c/vs.yaml (document 0, VirtualService v): spec.gateways entry `other/gw` names no rendered Gateway");
}

#[test]
fn custom_authorization_needs_a_declared_provider() {
    let ap = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: edge\nspec:\n  action: CUSTOM\n  provider: {name: dex-authz}\n  rules: [{}]\n";
    let m = one_error(&[("c/ap.yaml", ap)]);
    assert_eq!(m, "c/ap.yaml (document 0, AuthorizationPolicy p): action CUSTOM names extension provider `dex-authz`, which no mesh config declares");
    assert!(run(&[("c/ap.yaml", &ap.replace("dex-authz", "oauth2-proxy"))]).is_ok());
}

#[test]
fn gateway_credentials_must_be_produced_or_named() {
    let gw2 = GATEWAY
        .replace("name: gw\n", "name: gw2\n")
        .replace("gw-cert", "other-cert");
    let m = one_error(&[("c/gw2.yaml", &gw2)]);
    assert_eq!(m, "c/gw2.yaml (document 0, Gateway gw2): tls.credentialName `other-cert` is produced by no Certificate in namespace `edge` and was not named by you (`gateway.tls.credentialName`)");
}

/// Issue 27: a Gateway set apart from its pods (`gateway.namespace`,
/// Kubeflow's `kubeflow/kubeflow-gateway`) has its Secret looked up where
/// istiod looks, in the pods' namespace (istio/istio master 86c9f01
/// `pilot/pkg/xds/sds.go:99`), not in its own.
#[test]
fn a_gateway_apart_from_its_pods_finds_its_credential_in_theirs() {
    let apart = GATEWAY
        .replace("name: gw\n", "name: gw2\n")
        .replace("namespace: edge\n", "namespace: apps\n");
    let ns = NS.replace("name: edge", "name: apps");
    let files = [("c/gw2.yaml", apart.as_str()), ("c/ns2.yaml", ns.as_str())];
    let m = one_error(&files);
    assert_eq!(m, "c/gw2.yaml (document 0, Gateway gw2): tls.credentialName `gw-cert` is produced by no Certificate in namespace `apps` and was not named by you (`gateway.tls.credentialName`)");
    let mut all = vec![
        ("c/Namespace.yaml", NS),
        ("c/Gateway.yaml", GATEWAY),
        ("c/Certificate.yaml", CERT),
        (
            "c/kustomization.yaml",
            "resources: [Namespace.yaml, Gateway.yaml, Certificate.yaml]\n",
        ),
    ];
    all.extend_from_slice(&files);
    let mut c = ctx();
    c.gateway_pod_namespaces = vec![(("apps".into(), "gw2".into()), "edge".into())];
    assert!(check(tree(&all), &c).is_ok());
}

#[test]
fn namespaced_objects_need_a_namespace_that_will_exist() {
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: nowhere\n";
    let m = one_error(&[("c/cm.yaml", cm)]);
    assert_eq!(m, "c/cm.yaml (document 0, ConfigMap c): namespace `nowhere` is neither created by this tree nor known to exist; add it to `gitops.existingNamespaces` if your cluster has it");
    let bare = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
    let m = one_error(&[("c/cm.yaml", bare)]);
    assert!(
        m.contains("a namespaced object without metadata.namespace"),
        "{m}"
    );
    // Cluster-scoped kinds need none.
    let ci = "apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata:\n  name: i\nspec: {selfSigned: {}}\n";
    assert!(run(&[("c/ci.yaml", ci)]).is_ok());
}

#[test]
fn duplicate_objects_are_refused_naming_both_files() {
    let m = one_error(&[("d/Namespace.yaml", NS)]);
    assert_eq!(
        m,
        "Namespace /edge is rendered twice: in c/Namespace.yaml and in d/Namespace.yaml"
    );
}

/// Issue 18: `../shared/schemas` holds the Gateway API's experimental
/// channel, so only this check refuses what the standard CRDs lack.
#[test]
fn gateway_api_fields_outside_the_standard_channel_are_refused() {
    let route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: r\n  namespace: edge\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n    - backendRefs: [{name: s, port: 80}]\n";
    assert!(run(&[("c/r.yaml", route)]).is_ok());
    for (rule, want) in [
        ("      retry: {attempts: 2}\n", "`spec.rules[0].retry` exists only in the Gateway API's experimental channel; clusters with the standard channel CRDs refuse it"),
        ("      sessionPersistence: {type: Cookie}\n", "`spec.rules[0].sessionPersistence` exists only in the Gateway API's experimental channel"),
        ("      filters: [{type: ExternalAuth, externalAuth: {protocol: HTTP, backendRef: {name: a}}}]\n", "`spec.rules[0].filters[0].type: ExternalAuth` exists only in the Gateway API's experimental channel"),
        ("      filters: [{type: CORS, cors: {allowOrigins: [\"*\"]}}]\n", "`spec.rules[0].filters[0].type: CORS` is in the Gateway API's standard channel only from v1.5"),
        ("      filters: [{type: RequestRedirect, requestRedirect: {statusCode: 307}}]\n", "`spec.rules[0].filters[0].requestRedirect.statusCode: 307` is in the Gateway API's standard channel only from v1.5"),
    ] {
        let bad = format!("{route}{rule}");
        let m = one_error(&[("c/r.yaml", &bad)]);
        assert!(
            m.starts_with("c/r.yaml (document 0, HTTPRoute r): ") && m.contains(want),
            "{m}"
        );
    }
    let gw = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: g\n  namespace: edge\nspec:\n  gatewayClassName: istio\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n";
    assert!(run(&[("c/g.yaml", gw)]).is_ok());
    let m = one_error(&[(
        "c/g.yaml",
        &format!("{gw}  allowedListeners: {{namespaces: {{from: Same}}}}\n"),
    )]);
    assert!(
        m.contains(
            "`spec.allowedListeners` is in the Gateway API's standard channel only from v1.5"
        ),
        "{m}"
    );
    // Istio's own kinds are not read as Gateway API ones.
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: v\n  namespace: edge\nspec:\n  hosts: [\"*\"]\n  gateways: [gw]\n  tls: [{match: [{sniHosts: [a]}], route: [{destination: {host: a}}]}]\n";
    assert!(run(&[("c/vs.yaml", vs)]).is_ok());
}

/// A Gateway API listener's certificate is a Secret the tree produces or
/// the user named, as for Istio's Gateway servers.
#[test]
fn gateway_api_certificate_refs_must_be_produced_or_named() {
    let gw = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: g\n  namespace: edge\nspec:\n  gatewayClassName: istio\n  listeners:\n    - name: https\n      port: 443\n      protocol: HTTPS\n      tls: {mode: Terminate, certificateRefs: [{group: \"\", kind: Secret, name: gw-cert}]}\n";
    assert!(run(&[("c/g.yaml", gw)]).is_ok());
    let m = one_error(&[("c/g.yaml", &gw.replace("name: gw-cert", "name: other-cert"))]);
    assert_eq!(m, "c/g.yaml (document 0, Gateway g): tls.credentialName `other-cert` is produced by no Certificate in namespace `edge` and was not named by you (`gateway.tls.credentialName`)");
}

/// Issue 18: a Gateway API kind or version the pinned bundle does not
/// serve (`check::served`, the `served` versions of the vendored CRDs):
/// ReferenceGrant is `v1beta1` only in v1.4.1 (Istio 1.28, 1.29;
/// kubernetes-sigs/gateway-api v1.4.1
/// `config/crd/standard/gateway.networking.k8s.io_referencegrants.yaml`
/// has one version), and ListenerSet is standard only from v1.5.1.
#[test]
fn gateway_api_kinds_the_pinned_bundle_does_not_serve_are_refused() {
    let grant = "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata:\n  name: g\n  namespace: edge\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: edge}]\n  to: [{group: \"\", kind: Service}]\n";
    assert!(run(&[("c/rg.yaml", grant)]).is_ok());
    let v1 = grant.replace("/v1beta1", "/v1");
    // The second document of the file is the one named.
    let two = format!("{NS}---\n{v1}").replace("name: edge\n---", "name: other\n---");
    let m = one_error(&[("c/rg.yaml", &two)]);
    assert_eq!(m, "c/rg.yaml (document 1, ReferenceGrant g): the Gateway API v1.4.1 standard CRDs (the bundle of Istio 1.28, 1.29) serve ReferenceGrant only as v1beta1, not v1; use `apiVersion: gateway.networking.k8s.io/v1beta1`");
    let ls = "apiVersion: gateway.networking.k8s.io/v1\nkind: ListenerSet\nmetadata:\n  name: l\n  namespace: edge\nspec:\n  parentRef: {name: gw}\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n";
    let m = one_error(&[("c/ls.yaml", ls)]);
    assert_eq!(m, "c/ls.yaml (document 0, ListenerSet l): the Gateway API v1.4.1 standard CRDs (the bundle of Istio 1.28, 1.29) have no kind ListenerSet; it is experimental, or standard only in a later bundle");
    // Istio 1.30's bundle serves both.
    let newer = TreeContext {
        gateway_api_bundle: Some("v1.5.1"),
        ..ctx()
    };
    let mut files = vec![
        ("c/Namespace.yaml", NS),
        ("c/rg.yaml", v1.as_str()),
        ("c/ls.yaml", ls),
    ];
    files.push((
        "c/kustomization.yaml",
        "resources: [Namespace.yaml, rg.yaml, ls.yaml]\n",
    ));
    assert!(check(tree(&files), &newer).is_ok());
}

/// The same check on one of your `extraManifests`, through the whole
/// pipeline: reported at the values item (file, line and the document of
/// a multi-document string), with the Istio meshgen installs deciding the
/// bundle (1.29 → v1.4.1; 1.30 → v1.5.1 serves it).
#[test]
fn gateway_api_kinds_in_extra_manifests_are_refused_at_the_values_item() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        "deploykf_core:\n  deploykf_istio_gateway:\n    extraManifests:\n      - |\n        apiVersion: v1\n        kind: ConfigMap\n        metadata:\n          name: c\n        ---\n        apiVersion: gateway.networking.k8s.io/v1\n        kind: ReferenceGrant\n        metadata:\n          name: mine\n        spec:\n          from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: a}]\n          to: [{group: \"\", kind: Service}]\n",
    )
    .unwrap();
    let istio = |v: &str| {
        [
            format!("deploykf_dependencies.istio.charts.istioBase.version={v}"),
            format!("deploykf_dependencies.istio.charts.istioDaemon.version={v}"),
            format!("deploykf_core.deploykf_istio_gateway.charts.istioGateway.version={v}"),
        ]
    };
    let sets = istio("1.29.6");
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let inputs = common::inputs(vec![values.clone()], &sets);
    let mut session = meshgen::Session::default();
    let e = meshgen::generate(&inputs, &mut session).expect_err("ReferenceGrant v1 under v1.4.1");
    let shown: Vec<String> =
        e.0.iter()
            .map(|d| d.display(&session.sources).to_string())
            .collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    let at = values.display().to_string();
    assert_eq!(
        shown[0].replace(&at, "values.yaml"),
        "error[tree]: `deploykf_core.deploykf_istio_gateway.extraManifests[0]`: document 1, ReferenceGrant mine: the Gateway API v1.4.1 standard CRDs (the bundle of Istio 1.28, 1.29) serve ReferenceGrant only as v1beta1, not v1; use `apiVersion: gateway.networking.k8s.io/v1beta1` --> values.yaml:5:9"
    );
    let sets = istio("1.30.3");
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    common::generate(&common::inputs(vec![values], &sets));
}

/// Issue 18, ambient: ztunnel enforces the policies of an ambient namespace
/// that have no `targetRefs`, and only their L4 part (istio/istio 1.30.3
/// `pilot/pkg/serviceregistry/ambient/authorization.go:419-423` targetRefs
/// skipped, `:433-445` ALLOW/DENY only, `:491-531` and `:578-614` the HTTP
/// attributes, `:599-603` an ALLOW rule with them dropped, `:481-489` a DENY
/// rule kept on its L4 part): such a policy is refused there.
#[test]
fn ambient_namespaces_refuse_l7_policies_ztunnel_would_enforce() {
    let ns = |labels: &str| {
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels: {{{labels}}}\n"
        )
    };
    let ambient = ns("istio.io/dataplane-mode: ambient");
    let policy = |spec: &str| {
        format!("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: team\nspec:\n{spec}")
    };
    // meshgen's sidecar-mode profile-access rule, namespace-wide.
    let header = policy("  action: ALLOW\n  rules:\n    - from: [{source: {principals: [cluster.local/ns/gw/sa/gw]}}]\n      when: [{key: \"request.headers[kubeflow-userid]\", values: [a@example.com]}]\n");
    let m = one_error(&[("t/ns.yaml", &ambient), ("t/p.yaml", &header)]);
    assert!(
        m.starts_with("t/p.yaml (document 0, AuthorizationPolicy p): namespace `team` is in the ambient data plane")
            && m.contains("spec.rules[0].when[0] key `request.headers[kubeflow-userid]`")
            && m.contains("targetRefs"),
        "{m}"
    );
    // notebook-access as in sidecar mode: a DENY on paths.
    let deny = policy("  action: DENY\n  rules:\n    - to: [{operation: {paths: [/notebook/team/*]}}]\n      from: [{source: {requestPrincipals: [\"*\"]}}]\n");
    let m = one_error(&[("t/ns.yaml", &ambient), ("t/p.yaml", &deny)]);
    assert!(
        m.contains(
            "spec.rules[0].from[0].source.requestPrincipals, spec.rules[0].to[0].operation.paths"
        ),
        "{m}"
    );
    // ext-authz is not ztunnel's either, by selector as namespace-wide.
    let custom = policy("  selector: {matchLabels: {app: a}}\n  action: CUSTOM\n  provider: {name: oauth2-proxy}\n  rules: [{to: [{operation: {ports: [\"80\"]}}]}]\n");
    let m = one_error(&[("t/ns.yaml", &ambient), ("t/p.yaml", &custom)]);
    assert!(m.contains("spec.action CUSTOM"), "{m}");
    // The same policies on the waypoint pass, and so does the L4 split.
    let waypoint =
        "  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}]\n";
    for p in [&header, &deny, &custom] {
        let attached = p.replace("spec:\n", &format!("spec:\n{waypoint}"));
        assert!(run(&[("t/ns.yaml", &ambient), ("t/p.yaml", &attached)]).is_ok());
    }
    let l4 = policy("  action: ALLOW\n  rules:\n    - from: [{source: {namespaces: [team]}}]\n    - from: [{source: {principals: [a]}}]\n      to: [{operation: {ports: [\"8080\"]}}]\n      when: [{key: source.ip, values: [10.0.0.0/8]}]\n");
    assert!(run(&[("t/ns.yaml", &ambient), ("t/p.yaml", &l4)]).is_ok());
    // Outside ambient (sidecars enforce L7) nothing is refused.
    let injected = ns("istio-injection: enabled");
    assert!(run(&[("t/ns.yaml", &injected), ("t/p.yaml", &header)]).is_ok());
}

/// Through the real pipeline: the ambient golden values (`istio-ambient`)
/// render profile namespaces whose split passes the check; an
/// `extraManifests` policy in one that puts the header rule on ztunnel is
/// refused at the values item that holds it (file, line, key path).
#[test]
fn ambient_split_passes_and_an_extra_manifest_l7_policy_is_refused_where_written() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("extra.yaml");
    std::fs::write(
        &values,
        "deploykf_core:\n  deploykf_profiles_generator:\n    extraManifests:\n      - apiVersion: security.istio.io/v1\n        kind: AuthorizationPolicy\n        metadata: {name: by-header, namespace: research}\n        spec:\n          action: ALLOW\n          rules:\n            - from: [{source: {namespaces: [kubeflow]}}]\n              to: [{operation: {methods: [GET]}}]\n",
    )
    .unwrap();
    let root = common::root();
    let base = root.join("tests/cases/istio-sidecar/values.yaml");
    let base = base.to_str().unwrap();
    let set = "deploykf_dependencies.istio.dataplaneMode=ambient";
    let ok = common::run_meshgen(dir.path(), &["generate", "-f", base, "--set", set]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = common::run_meshgen(
        dir.path(),
        &["generate", "-f", base, "-f", "extra.yaml", "--set", set],
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("deploykf_core.deploykf_profiles_generator.extraManifests[0]")
            && errors[0].contains("namespace `research` is in the ambient data plane")
            && errors[0].contains("spec.rules[0].to[0].operation.methods")
            && errors[0].contains("extra.yaml:4:"),
        "{stderr}"
    );
}

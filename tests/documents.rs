//! Assertions on parsed documents for the rules that matter, across value
//! sets (not only the defaults).

mod common;

use serde_json::{json, Value};

const GW: &str = "deploykf_core.deploykf_istio_gateway";
const DIR: &str = "manifests/deploykf-core/deploykf-istio-gateway";

/// Render with `--set` arguments; return each file's documents as JSON.
fn render(sets: &[&str]) -> std::collections::BTreeMap<String, Vec<Value>> {
    let g = common::generate(&common::inputs(vec![], sets));
    g.files
        .iter()
        .filter(|(p, _)| p.ends_with(".yaml"))
        .map(|(p, text)| (p.clone(), common::docs(text)))
        .collect()
}

fn doc(tree: &std::collections::BTreeMap<String, Vec<Value>>, file: &str) -> Value {
    let docs = tree
        .get(&format!("{DIR}/{file}"))
        .unwrap_or_else(|| panic!("{file} not rendered"));
    assert_eq!(docs.len(), 1);
    docs[0].clone()
}

#[test]
fn gateways_use_internal_ports_and_select_the_gateway_pods() {
    let t = render(&[
        &format!("{GW}.gateway.ports.http=8080,{GW}.gateway.ports.https=8443"),
        &format!(r"{GW}.gateway.selectorLabels.app\.kubernetes\.io/name=edge"),
    ]);
    let https = doc(&t, "Gateway.yaml");
    let http = doc(&t, "Gateway-https-redirect.yaml");
    let selector = json!({"app": "deploykf-gateway", "istio": "deploykf-gateway", "app.kubernetes.io/name": "edge"});
    assert_eq!(https["spec"]["selector"], selector);
    assert_eq!(http["spec"]["selector"], selector);
    assert_eq!(https["metadata"]["name"], "deploykf-gateway");
    assert_eq!(http["metadata"]["name"], "deploykf-gateway-https-redirect");
    let servers = https["spec"]["servers"].as_array().unwrap();
    assert_eq!(
        servers.len(),
        1,
        "the main gateway holds only the HTTPS server"
    );
    assert_eq!(
        servers[0]["port"],
        json!({"number": 8443, "name": "https", "protocol": "HTTPS"})
    );
    assert_eq!(servers[0]["tls"]["mode"], "SIMPLE");
    assert_eq!(
        servers[0]["tls"]["credentialName"],
        "deploykf-istio-gateway-cert"
    );
    let servers = http["spec"]["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0]["port"]["number"], 8080);
    assert!(servers[0].get("tls").is_none());
}

#[test]
fn sni_matching_decides_the_hosts() {
    let on = render(&[&format!("{GW}.gateway.hostname=ml.example.org")]);
    assert_eq!(
        doc(&on, "Gateway.yaml")["spec"]["servers"][0]["hosts"],
        json!(["*/ml.example.org"])
    );
    // Subdomain apps add their hosts, and nothing else does.
    let apps = render(&[
        &format!("{GW}.gateway.hostname=ml.example.org"),
        &format!("{GW}.apps[0].name=minio,{GW}.apps[0].namespace=minio,{GW}.apps[0].service=console,{GW}.apps[0].port=9090,{GW}.apps[0].subdomain=minio"),
    ]);
    assert_eq!(
        doc(&apps, "Gateway.yaml")["spec"]["servers"][0]["hosts"],
        json!(["*/ml.example.org", "*/minio.ml.example.org"])
    );
    let off = render(&[&format!("{GW}.gateway.tls.matchSNI=false")]);
    assert_eq!(
        doc(&off, "Gateway.yaml")["spec"]["servers"][0]["hosts"],
        json!(["*"])
    );
    // The HTTP listener serves only the gateway namespace's VirtualServices
    // (it checks no login: issue 14, point 1).
    assert_eq!(
        doc(&off, "Gateway-https-redirect.yaml")["spec"]["servers"][0]["hosts"],
        json!(["./*"])
    );
}

#[test]
fn redirect_goes_to_the_public_https_port() {
    // Internal 8443, public 443: the browser must be sent to 443.
    let t = render(&[&format!(
        "{GW}.gateway.ports.https=8443,{GW}.gatewayService.ports.https=443"
    )]);
    let vs = doc(&t, "VirtualService-https-redirect.yaml");
    assert_eq!(vs["metadata"]["name"], "https-redirect");
    assert_eq!(
        vs["spec"]["gateways"],
        json!(["deploykf-istio-gateway/deploykf-gateway-https-redirect"])
    );
    assert_eq!(
        vs["spec"]["http"][0]["redirect"],
        json!({"scheme": "https", "port": 443, "redirectCode": 307})
    );
    assert!(!t.contains_key(&format!("{DIR}/DestinationRule-https-loopback.yaml")));
    // Without a gatewayService port, the public port is the internal one.
    let t = render(&[&format!("{GW}.gateway.ports.https=8443")]);
    let vs = doc(&t, "VirtualService-https-redirect.yaml");
    assert_eq!(vs["spec"]["http"][0]["redirect"]["port"], 8443);
}

#[test]
fn without_redirect_http_is_proxied_to_the_https_listener() {
    let t = render(&[&format!(
        "{GW}.gateway.tls.redirect=false,{GW}.gateway.tls.clientsUseHttps=false,{GW}.gatewayService.ports.https=9443"
    )]);
    let vs = doc(&t, "VirtualService-https-redirect.yaml");
    let route = &vs["spec"]["http"][0];
    assert!(route.get("redirect").is_none());
    assert_eq!(
        route["route"][0]["destination"],
        json!({"host": "deploykf.example.com", "port": {"number": 9443}})
    );
    let dr = doc(&t, "DestinationRule-https-redirect.yaml");
    assert_eq!(dr["metadata"]["name"], "https-redirect");
    assert_eq!(dr["spec"]["host"], "deploykf.example.com");
    let tls = &dr["spec"]["trafficPolicy"]["portLevelSettings"][0];
    assert_eq!(tls["port"]["number"], 9443);
    assert_eq!(tls["tls"]["mode"], "SIMPLE");
    assert_eq!(tls["tls"]["sni"], "deploykf.example.com");
    // The hostname resolves, inside the mesh, to the gateway pods.
    let se = doc(&t, "ServiceEntry.yaml");
    assert_eq!(se["spec"]["hosts"], json!(["deploykf.example.com"]));
    assert_eq!(se["spec"]["location"], "MESH_INTERNAL");
    assert_eq!(se["spec"]["resolution"], "STATIC");
    assert_eq!(
        se["spec"]["ports"][1],
        json!({"number": 9443, "name": "https", "protocol": "TLS", "targetPort": 443})
    );
}

#[test]
fn namespace_and_every_object_live_in_the_gateway_namespace() {
    let t = render(&[&format!("{GW}.namespace=edge-system")]);
    let ns = doc(&t, "Namespace.yaml");
    assert_eq!(ns["metadata"]["name"], "edge-system");
    assert_eq!(ns["metadata"]["labels"]["istio-injection"], "enabled");
    for (path, docs) in t.iter().filter(|(p, _)| p.starts_with(DIR)) {
        for d in docs {
            if path.ends_with("/PeerAuthentication-mesh.yaml") {
                // mesh-wide mTLS lives in the Istio root namespace
                assert_eq!(d["metadata"]["namespace"], "istio-system", "{path}");
            } else if path.ends_with("/ValidatingAdmissionPolicy-identity-headers.yaml") {
                // cluster-scoped; its binding exempts the gateway namespace
                assert!(d["metadata"].get("namespace").is_none(), "{path}");
                if d["kind"] == "ValidatingAdmissionPolicyBinding" {
                    assert_eq!(
                        d["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]
                            ["values"],
                        json!(["edge-system"]),
                        "{path}"
                    );
                }
            } else if path.ends_with("/ValidatingAdmissionPolicy-tenant-routes.yaml") {
                // cluster-scoped; its binding exempts meshgen's namespaces
                assert!(d["metadata"].get("namespace").is_none(), "{path}");
                if d["kind"] == "ValidatingAdmissionPolicyBinding" {
                    let exempt = &d["spec"]["matchResources"]["namespaceSelector"]
                        ["matchExpressions"][0]["values"];
                    assert!(
                        exempt
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|n| n == "edge-system"),
                        "{path}: {exempt}"
                    );
                }
            } else if d["kind"] != "Namespace" && d["kind"] != "Kustomization" {
                assert_eq!(d["metadata"]["namespace"], "edge-system", "{path}");
            }
        }
    }
    let k = doc(&t, "kustomization.yaml");
    let listed: Vec<String> = k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{DIR}/{}", r.as_str().unwrap()))
        .collect();
    let rendered: Vec<String> = t
        .keys()
        .filter(|p| p.starts_with(DIR) && !p.ends_with("kustomization.yaml"))
        .cloned()
        .collect();
    assert_eq!(
        listed, rendered,
        "the kustomization lists exactly the rendered manifests"
    );
}

#[test]
fn a_disabled_component_renders_no_directory() {
    let t = render(&[&format!("{GW}.enabled=false")]);
    assert!(t.keys().all(|p| !p.starts_with(DIR)), "{:?}", t.keys());
}

/// Kinds that select the gateway pods, and where their selector is.
fn gateway_selectors(t: &std::collections::BTreeMap<String, Vec<Value>>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for docs in t.iter().filter(|(p, _)| p.starts_with(DIR)).map(|(_, d)| d) {
        for d in docs {
            let sel = match d["kind"].as_str().unwrap_or_default() {
                "Gateway" => d["spec"]["selector"].clone(),
                // Namespace-wide policies (the zero-trust baseline) select no pods.
                "PeerAuthentication" | "AuthorizationPolicy"
                    if d["spec"].get("selector").is_none() =>
                {
                    continue
                }
                "PeerAuthentication"
                | "AuthorizationPolicy"
                | "RequestAuthentication"
                | "PodDisruptionBudget" => d["spec"]["selector"]["matchLabels"].clone(),
                "ServiceEntry" | "EnvoyFilter" => d["spec"]["workloadSelector"]["labels"].clone(),
                "Service" => d["spec"]["selector"].clone(),
                "Deployment" => d["spec"]["selector"]["matchLabels"].clone(),
                _ => continue,
            };
            out.push((
                format!(
                    "{}/{}",
                    d["kind"].as_str().unwrap(),
                    d["metadata"]["name"].as_str().unwrap()
                ),
                sel,
            ));
        }
    }
    out
}

#[test]
fn a_custom_gateway_deployment_is_selected_by_every_gateway_resource() {
    let t = render(&[
        &format!("{GW}.charts.istioGateway.enabled=false"),
        &format!("{GW}.gateway.selectorLabels=null"),
        &format!("{GW}.gateway.selectorLabels.app=my-gateway-deployment,{GW}.gateway.selectorLabels.istio=my-gateway-deployment"),
        &format!("{GW}.gateway.xffNumTrustedHops=1,{GW}.gateway.enableProxyProtocol=true"),
    ]);
    for kind in [
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "PodDisruptionBudget",
    ] {
        assert!(
            !t.contains_key(&format!("{DIR}/{kind}.yaml")),
            "{kind} must not be rendered for a custom deployment"
        );
    }
    let selectors = gateway_selectors(&t);
    let names: Vec<&str> = selectors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "AuthorizationPolicy/deploykf-gateway-login",
            "AuthorizationPolicy/deploykf-gateway-require-jwt",
            "AuthorizationPolicy/deploykf-gateway",
            "EnvoyFilter/deploykf-gateway-proxy-protocol",
            "EnvoyFilter/deploykf-gateway-xff-num-trusted-hops",
            "Gateway/deploykf-gateway-https-redirect",
            "Gateway/deploykf-gateway",
            "PeerAuthentication/deploykf-gateway",
            "RequestAuthentication/deploykf-gateway-jwt",
            "ServiceEntry/deploykf-gateway",
        ]
    );
    for (name, sel) in selectors {
        assert_eq!(
            sel,
            json!({"app": "my-gateway-deployment", "istio": "my-gateway-deployment"}),
            "{name}"
        );
    }
}

#[test]
fn the_managed_deployment_maps_public_ports_to_internal_ones() {
    let t = render(&[&format!(
        "{GW}.gateway.ports.http=8080,{GW}.gateway.ports.https=8443,{GW}.gatewayService.ports.http=80,{GW}.gatewayService.ports.https=443"
    )]);
    let svc = doc(&t, "Service.yaml");
    assert_eq!(
        svc["spec"]["ports"],
        json!([
            {"name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021},
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443},
        ])
    );
    assert_eq!(
        doc(&t, "Gateway.yaml")["spec"]["servers"][0]["port"]["number"],
        8443
    );
    assert_eq!(
        doc(&t, "VirtualService-https-redirect.yaml")["spec"]["http"][0]["redirect"]["port"],
        443
    );
    let ap = doc(&t, "AuthorizationPolicy.yaml");
    assert_eq!(
        ap["spec"]["rules"][0]["to"][0]["operation"]["ports"],
        json!(["8080", "8443"])
    );
    for (name, sel) in gateway_selectors(&t) {
        assert_eq!(
            sel,
            json!({"app": "deploykf-gateway", "istio": "deploykf-gateway"}),
            "{name}"
        );
    }
}

#[test]
fn replicas_belong_to_the_hpa_or_to_replica_count() {
    let auto = render(&[]);
    let dep = doc(&auto, "Deployment.yaml");
    assert!(
        dep["spec"].get("replicas").is_none(),
        "no replicas while the HPA owns them"
    );
    assert_eq!(
        doc(&auto, "HorizontalPodAutoscaler.yaml")["spec"]["maxReplicas"],
        5
    );
    assert_eq!(
        doc(&auto, "PodDisruptionBudget.yaml")["spec"]["maxUnavailable"],
        1
    );
    let fixed = render(&[&format!(
        "{GW}.gatewayDeployment.autoscaling.enabled=false,{GW}.gatewayDeployment.replicaCount=1"
    )]);
    assert_eq!(doc(&fixed, "Deployment.yaml")["spec"]["replicas"], 1);
    assert!(!fixed.contains_key(&format!("{DIR}/HorizontalPodAutoscaler.yaml")));
    assert!(
        !fixed.contains_key(&format!("{DIR}/PodDisruptionBudget.yaml")),
        "one replica: no PDB"
    );
    let single = render(&[&format!("{GW}.gatewayDeployment.autoscaling.maxReplicas=1")]);
    assert!(!single.contains_key(&format!("{DIR}/PodDisruptionBudget.yaml")));
}

#[test]
fn the_pod_is_injected_as_a_gateway_with_the_user_annotations() {
    let t = render(&[&format!(
        r"{GW}.gatewayDeployment.podAnnotations.example\.com/team=ml,{GW}.gatewayDeployment.serviceAccount.name=edge-sa"
    )]);
    let pod = &doc(&t, "Deployment.yaml")["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"]["sidecar.istio.io/inject"], "true");
    assert_eq!(pod["metadata"]["labels"]["app"], "deploykf-gateway");
    assert_eq!(
        pod["metadata"]["annotations"]["inject.istio.io/templates"],
        "gateway"
    );
    assert_eq!(pod["metadata"]["annotations"]["example.com/team"], "ml");
    assert_eq!(pod["spec"]["serviceAccountName"], "edge-sa");
    assert_eq!(pod["spec"]["containers"][0]["image"], "auto");
    assert_eq!(
        doc(&t, "ServiceAccount.yaml")["metadata"]["name"],
        "edge-sa"
    );
    assert_eq!(
        doc(&t, "RoleBinding.yaml")["subjects"][0]["name"],
        "edge-sa"
    );
}

#[test]
fn certificates_come_from_the_issuer_unless_the_user_brings_a_secret() {
    let t = render(&[&format!("{GW}.gateway.hostname=ml.example.org")]);
    let cert = doc(&t, "Certificate.yaml");
    assert_eq!(cert["spec"]["secretName"], "deploykf-istio-gateway-cert");
    assert_eq!(cert["metadata"]["namespace"], "deploykf-istio-gateway");
    assert_eq!(
        cert["spec"]["dnsNames"],
        json!(["ml.example.org", "*.ml.example.org"])
    );
    assert_eq!(cert["spec"]["issuerRef"]["name"], "deploykf-gateway-issuer");
    let gw = doc(&t, "Gateway.yaml");
    assert_eq!(
        gw["spec"]["servers"][0]["tls"]["credentialName"],
        cert["spec"]["secretName"]
    );
    // The self-signed chain (deployKF's): self-signed Issuer -> root CA
    // certificate -> gateway ClusterIssuer, applied after the chart.
    let cm = "manifests/deploykf-dependencies/cert-manager-issuer/";
    let root = &t[&format!("{cm}Certificate-root-ca.yaml")][0];
    let issuer = &t[&format!("{cm}ClusterIssuer.yaml")][0];
    let ca = &t[&format!("{cm}Issuer-self-signed.yaml")][0];
    assert_eq!(ca["kind"], "Issuer");
    assert_eq!(ca["metadata"]["namespace"], "cert-manager");
    assert_eq!(root["metadata"]["namespace"], "cert-manager");
    assert_eq!(root["spec"]["isCA"], true);
    assert_eq!(root["spec"]["issuerRef"]["kind"], "Issuer");
    assert_eq!(root["spec"]["issuerRef"]["name"], ca["metadata"]["name"]);
    assert_eq!(
        issuer["spec"]["ca"]["secretName"],
        root["spec"]["secretName"]
    );
    assert_eq!(issuer["kind"], "ClusterIssuer");
    assert_eq!(issuer["metadata"]["name"], "deploykf-gateway-issuer");

    let own = render(&[&format!("{GW}.gateway.tls.credentialName=my-tls")]);
    assert!(!own.contains_key(&format!("{DIR}/Certificate.yaml")));
    assert_eq!(
        doc(&own, "Gateway.yaml")["spec"]["servers"][0]["tls"]["credentialName"],
        "my-tls"
    );

    // Your own issuer with meshgen's cert-manager: the chart, no issuer.
    let byo_issuer = render(&["deploykf_dependencies.cert_manager.clusterIssuer.enabled=false,deploykf_dependencies.cert_manager.clusterIssuer.issuerName=letsencrypt"]);
    assert!(byo_issuer.keys().all(|p| !p.starts_with(cm)));
    assert!(byo_issuer.contains_key("manifests/deploykf-dependencies/cert-manager/Chart.yaml"));
    assert_eq!(
        doc(&byo_issuer, "Certificate.yaml")["spec"]["issuerRef"]["name"],
        "letsencrypt"
    );
}

/// Issue 15: with `cert_manager.enabled: false` and `issuerName` set
/// (deployKF's documented way to use your own issuer), meshgen rendered a
/// self-signed ClusterIssuer under the user's name, which would replace
/// the user's ACME issuer on apply. Like deployKF, nothing of cert-manager
/// is rendered then, even with `clusterIssuer.enabled` left true.
#[test]
fn regression_issue_15_own_cert_manager_renders_no_issuer_under_the_users_name() {
    let t = render(&["deploykf_dependencies.cert_manager.enabled=false,deploykf_dependencies.cert_manager.clusterIssuer.issuerName=my-cluster-issuer"]);
    let issuers: Vec<&str> = t
        .iter()
        .flat_map(|(path, docs)| docs.iter().map(move |d| (path, d)))
        .filter(|(_, d)| d["kind"] == "ClusterIssuer" || d["kind"] == "Issuer")
        .map(|(path, _)| path.as_str())
        .collect();
    assert_eq!(issuers, Vec::<&str>::new());
    assert!(t
        .keys()
        .all(|p| !p.starts_with("manifests/deploykf-dependencies/cert-manager")));
    assert_eq!(
        doc(&t, "Certificate.yaml")["spec"]["issuerRef"]["name"],
        "my-cluster-issuer"
    );
}

#[test]
fn forwarded_for_hops_and_proxy_protocol_patch_the_gateway_listeners() {
    let none = render(&[]);
    assert!(none.keys().all(|p| !p.contains("EnvoyFilter")));
    let t = render(&[&format!(
        "{GW}.gateway.xffNumTrustedHops=2,{GW}.gateway.enableProxyProtocol=true"
    )]);
    let xff = doc(&t, "EnvoyFilter-xff-num-trusted-hops.yaml");
    let patch = &xff["spec"]["configPatches"][0];
    assert_eq!(patch["applyTo"], "NETWORK_FILTER");
    assert_eq!(patch["match"]["context"], "GATEWAY");
    assert_eq!(
        patch["patch"]["value"]["typed_config"]["xff_num_trusted_hops"],
        2
    );
    let pp = doc(&t, "EnvoyFilter-proxy-protocol.yaml");
    let patch = &pp["spec"]["configPatches"][0];
    assert_eq!(patch["applyTo"], "LISTENER");
    assert_eq!(
        patch["patch"]["value"]["listener_filters"][0]["name"],
        "envoy.filters.listener.proxy_protocol"
    );
}

#[test]
fn extra_manifests_are_rendered_after_being_checked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.yaml");
    std::fs::write(
        &file,
        "deploykf_core:\n  deploykf_istio_gateway:\n    extraManifests:\n      - |\n        apiVersion: v1\n        kind: ConfigMap\n        metadata:\n          name: a\n          namespace: deploykf-istio-gateway\n        ---\n        apiVersion: v1\n        kind: ConfigMap\n        metadata:\n          name: b\n          namespace: deploykf-istio-gateway\n      - {apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: deploykf-istio-gateway}}\n",
    )
    .unwrap();
    let g = common::generate(&common::inputs(vec![file], &[]));
    let docs = common::docs(&g.files[&format!("{DIR}/extra-manifests.yaml")]);
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["a", "b", "c"]);
}

/// Issue 15: as deployKF renders them, a namespaced extra object without
/// `metadata.namespace` goes into its component's namespace (here a
/// non-default one), a cluster-scoped one keeps none, and one that names a
/// namespace keeps it.
#[test]
fn extra_manifests_without_a_namespace_go_into_their_components() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.yaml");
    std::fs::write(
        &file,
        "deploykf_core:\n  deploykf_istio_gateway:\n    namespace: edge\n    extraManifests:\n      - |\n        apiVersion: networking.k8s.io/v1\n        kind: Ingress\n        metadata:\n          name: deploykf-gateway\n        spec: {ingressClassName: alb}\n        ---\n        apiVersion: rbac.authorization.k8s.io/v1\n        kind: ClusterRole\n        metadata:\n          name: reader\n        rules: []\n      - {apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: deploykf-auth}}\n      - {apiVersion: v1, kind: ConfigMap, metadata: {name: d, namespace: null}}\n",
    )
    .unwrap();
    let g = common::generate(&common::inputs(vec![file], &[]));
    let docs = common::docs(&g.files[&format!("{DIR}/extra-manifests.yaml")]);
    let placed: Vec<(&str, &Value)> = docs
        .iter()
        .map(|d| (d["kind"].as_str().unwrap(), &d["metadata"]["namespace"]))
        .collect();
    assert_eq!(
        placed,
        vec![
            ("Ingress", &json!("edge")),
            ("ClusterRole", &Value::Null),
            ("ConfigMap", &json!("deploykf-auth")),
            ("ConfigMap", &json!("edge")),
        ]
    );
    // Nothing else of the document changes.
    assert_eq!(docs[0]["spec"], json!({"ingressClassName": "alb"}));
    assert_eq!(
        docs[0]["metadata"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["name", "namespace"]
    );
}

// ---------------------------------------------------------------------
// dex: secrets kept in Kubernetes Secrets, assembled in the pod (issue 15)

const AUTH: &str = "manifests/deploykf-core/deploykf-auth";

fn case_tree(
    name: &str,
) -> (
    meshgen::Generated,
    std::collections::BTreeMap<String, Vec<Value>>,
) {
    let g = common::generate(&common::case_inputs(name));
    let tree = g
        .files
        .iter()
        .filter(|(p, _)| p.ends_with(".yaml"))
        .map(|(p, text)| (p.clone(), common::docs(text)))
        .collect();
    (g, tree)
}

fn one_doc(t: &std::collections::BTreeMap<String, Vec<Value>>, path: &str) -> Value {
    let docs = t.get(path).unwrap_or_else(|| panic!("{path} not rendered"));
    assert_eq!(docs.len(), 1, "{path}");
    docs[0].clone()
}

#[test]
fn dex_assembles_its_config_from_exactly_the_secrets_it_is_given() {
    let (g, t) = case_tree("dex-secrets");
    let dep = one_doc(&t, &format!("{AUTH}/Deployment-dex.yaml"));
    let pod = &dep["spec"]["template"]["spec"];
    let volumes = pod["volumes"].as_array().unwrap();
    let volume = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
            .clone()
    };

    // The init container: Pod Security "restricted", reads only files.
    let inits = pod["initContainers"].as_array().unwrap();
    assert_eq!(inits.len(), 1);
    let init = &inits[0];
    assert_eq!(init["name"], "config");
    assert!(init["image"].as_str().unwrap().contains("httpd:"));
    assert!(init.get("env").is_none() && init.get("envFrom").is_none());
    let sc = &init["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    let script = init["command"][2].as_str().unwrap();
    assert_eq!(script, meshgen::model::auth::dex::ASSEMBLE_SCRIPT);

    // It mounts exactly the Secrets of the plain password and of the
    // connector config, each key as one file.
    let mut read = Vec::new();
    for m in init["volumeMounts"].as_array().unwrap() {
        let v = volume(m["name"].as_str().unwrap());
        if let Some(secret) = v.get("secret") {
            assert_eq!(m["readOnly"], true);
            let items = secret["items"].as_array().unwrap();
            assert_eq!(items.len(), 1);
            read.push((
                secret["secretName"].as_str().unwrap().to_string(),
                items[0]["key"].as_str().unwrap().to_string(),
                format!(
                    "{}/{}",
                    m["mountPath"].as_str().unwrap(),
                    items[0]["path"].as_str().unwrap()
                ),
            ));
        }
    }
    assert_eq!(
        read,
        [
            (
                "dex-user-alice".to_string(),
                "password".to_string(),
                "/secrets/password-0001/password".to_string()
            ),
            (
                "dex-connector-corp-sso".to_string(),
                "config.yaml".to_string(),
                "/secrets/connector-0000/config".to_string()
            ),
        ]
    );
    let secret_volumes: Vec<&Value> = volumes
        .iter()
        .filter(|v| v.get("secret").is_some())
        .collect();
    assert_eq!(secret_volumes.len(), 2, "no other Secret volume");

    // dex reads the assembled file from memory, not the ConfigMap.
    assert_eq!(volume("config")["emptyDir"]["medium"], "Memory");
    assert!(volume("config").get("configMap").is_none());
    assert_eq!(volume("template")["configMap"]["name"], "dex");
    let dex = &pod["containers"][0];
    let mount = dex["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/etc/dex")
        .unwrap();
    assert_eq!(mount["name"], "config");
    assert_eq!(mount["readOnly"], true);
    // The hashed password keeps its environment variable; the others none.
    let env: Vec<&str> = dex["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["valueFrom"]["secretKeyRef"]["name"].as_str().unwrap())
        .collect();
    assert!(env.contains(&"generated--dex-password-admin"));
    assert!(!env.contains(&"dex-user-alice") && !env.contains(&"dex-connector-corp-sso"));

    // The ConfigMap: the base without the lists, one item per fragment,
    // neither a hash nor the Secret's config.
    let cm = one_doc(&t, &format!("{AUTH}/ConfigMap-dex.yaml"));
    let data = cm["data"].as_object().unwrap();
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "config.yaml",
            "password-0000.yaml",
            "password-0001.yaml",
            "connector-0000.yaml",
            "connector-0001.yaml"
        ]
    );
    let base = &common::docs(data["config.yaml"].as_str().unwrap())[0];
    assert!(base.get("staticPasswords").is_none() && base.get("connectors").is_none());
    let item = |k: &str| common::docs(data[k].as_str().unwrap())[0][0].clone();
    assert_eq!(
        item("password-0000.yaml")["hashFromEnv"],
        "MESHGEN_DEX_PASSWORD_HASH_0"
    );
    let alice = item("password-0001.yaml");
    assert_eq!(alice["email"], "alice@example.com");
    assert!(alice.get("hash").is_none() && alice.get("hashFromEnv").is_none());
    let sso = item("connector-0000.yaml");
    assert_eq!(sso["id"], "corp-sso");
    assert!(sso.get("config").is_none());
    assert_eq!(
        item("connector-0001.yaml")["config"]["clientSecret"],
        "$GITHUB_CLIENT_SECRET"
    );

    // No Secret object and no hash anywhere in the output.
    for (path, text) in &g.files {
        assert!(!text.contains("$2y$") && !text.contains("$2a$"), "{path}");
        assert!(!text.lines().any(|l| l.trim() == "kind: Secret"), "{path}");
    }
}

#[test]
fn without_a_plain_password_or_a_config_secret_dex_reads_its_configmap() {
    let (_, t) = case_tree("auth-m2m");
    let dep = one_doc(&t, &format!("{AUTH}/Deployment-dex.yaml"));
    let pod = &dep["spec"]["template"]["spec"];
    assert!(pod.get("initContainers").is_none());
    assert_eq!(pod["volumes"][0]["configMap"]["name"], "dex");
}

/// Issue 18: the Istio wrapper chart with `dataplaneMode: ambient`: the
/// ambient profile through one `global.profile`, istio-cni forced on,
/// the ztunnel chart with meshgen's image and the Istio namespace, and the
/// seccomp of istiod-deployed waypoints; none of it in sidecar mode but
/// istio-cni, on by default since issue 28 (Pod Security baseline refuses
/// istio-init), and off with `cni.enabled: false`. What the upstream
/// charts make of these values is `tests/helm_istio.rs`.
#[test]
fn ambient_wrapper_chart_adds_ztunnel_and_cni_with_the_ambient_profile() {
    const ISTIO: &str = "deploykf_dependencies.istio";
    const CHART: &str = "manifests/deploykf-dependencies/istio";
    let chart = |sets: &[&str]| {
        let t = render(sets);
        (
            t[&format!("{CHART}/Chart.yaml")][0].clone(),
            t[&format!("{CHART}/values.yaml")][0].clone(),
        )
    };
    let deps = |c: &Value| -> Vec<(String, String)> {
        c["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                assert_eq!(d["version"], "1.30.3");
                assert_eq!(
                    d["repository"],
                    "https://istio-release.storage.googleapis.com/charts"
                );
                (
                    d["name"].as_str().unwrap().to_string(),
                    d["alias"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };

    let (c, v) = chart(&[]);
    assert_eq!(
        deps(&c),
        pairs(&[
            ("base", "istio-base"),
            ("istiod", "istio-daemon"),
            ("cni", "istio-cni"),
        ])
    );
    assert!(v["global"].get("profile").is_none(), "{v}");
    assert!(v.get("ztunnel").is_none());
    assert_eq!(v["istio-cni"], json!({}));
    assert_eq!(v["istio-daemon"]["cni"], json!({"enabled": true}));
    assert!(v["istio-daemon"].get("gateways").is_none());

    let (c, v) = chart(&[
        &format!("{ISTIO}.cni.enabled=false"),
        "deploykf_core.deploykf_profiles_generator.namespacePodSecurity=privileged",
    ]);
    assert_eq!(
        deps(&c),
        pairs(&[("base", "istio-base"), ("istiod", "istio-daemon")])
    );
    assert!(v.get("ztunnel").is_none() && v.get("istio-cni").is_none());
    assert!(v["istio-daemon"].get("cni").is_none());

    let (c, v) = chart(&[&format!("{ISTIO}.dataplaneMode=ambient")]);
    assert_eq!(
        deps(&c),
        pairs(&[
            ("base", "istio-base"),
            ("istiod", "istio-daemon"),
            ("cni", "istio-cni"),
            ("ztunnel", "ztunnel"),
        ])
    );
    assert!(
        c["description"].as_str().unwrap().contains("cni, ztunnel"),
        "{c}"
    );
    assert_eq!(v["global"]["profile"], "ambient");
    assert_eq!(v["istio-cni"], json!({}));
    assert_eq!(v["istio-daemon"]["cni"], json!({"enabled": true}));
    assert_eq!(
        v["istio-daemon"]["gateways"],
        json!({"seccompProfile": {"type": "RuntimeDefault"}})
    );
    assert_eq!(
        v["ztunnel"],
        json!({
            "image": "docker.io/istio/ztunnel:1.30.3-distroless",
            "istioNamespace": "istio-system",
            "revision": "",
        })
    );

    // The ztunnel image is derived like the others; `valuesOverrides`
    // reach the ztunnel chart under its alias.
    let (_, v) = chart(&[
        &format!("{ISTIO}.dataplaneMode=ambient"),
        &format!("{ISTIO}.namespace=mesh-system"),
        &format!("{ISTIO}.images.ztunnel.repository=registry.example.com/ztunnel"),
        &format!("{ISTIO}.images.ztunnel.tag=1.30.2"),
        &format!("{ISTIO}.valuesOverrides.ztunnel.resources.requests.cpu=500m"),
    ]);
    assert_eq!(
        v["ztunnel"],
        json!({
            "image": "registry.example.com/ztunnel:1.30.2",
            "istioNamespace": "mesh-system",
            "revision": "",
            "resources": {"requests": {"cpu": "500m"}},
        })
    );
}

/// Issue 27, point 2: `gateway.namespace` moves only the main Istio
/// Gateway (Kubeflow's apps bind to `kubeflow/kubeflow-gateway`); the
/// pods, policies, certificate and redirect Gateway stay, meshgen's
/// VirtualServices name the Gateway namespace-qualified, and no Namespace
/// is rendered for it; with `api: gateway-api` it is refused by name.
#[test]
fn the_gateway_resource_may_live_in_a_namespace_of_its_own() {
    let t = render(&[&format!(
        "{GW}.gateway.namespace=kubeflow,{GW}.gateway.name=kubeflow-gateway,{GW}.apps[0].name=a,{GW}.apps[0].namespace=team,{GW}.apps[0].service=a,{GW}.apps[0].port=80,{GW}.apps[0].subdomain=a,{GW}.apps[1].name=b,{GW}.apps[1].namespace=team,{GW}.apps[1].service=b,{GW}.apps[1].port=80,{GW}.apps[1].path=/b/"
    )]);
    let gw = doc(&t, "Gateway.yaml");
    assert_eq!(gw["metadata"]["namespace"], "kubeflow");
    assert_eq!(
        doc(&t, "Gateway-https-redirect.yaml")["metadata"]["namespace"],
        "deploykf-istio-gateway"
    );
    for file in ["VirtualService-routes.yaml", "app-a.yaml"] {
        let vs = t[&format!("{DIR}/{file}")]
            .iter()
            .find(|d| d["kind"] == "VirtualService")
            .unwrap_or_else(|| panic!("{file}: no VirtualService"));
        assert_eq!(
            vs["spec"]["gateways"],
            json!(["kubeflow/kubeflow-gateway"]),
            "{file}"
        );
    }
    for file in [
        "AuthorizationPolicy-login.yaml",
        "Certificate.yaml",
        "Deployment.yaml",
    ] {
        assert_eq!(
            doc(&t, file)["metadata"]["namespace"],
            "deploykf-istio-gateway",
            "{file}"
        );
    }
    assert!(
        t.values()
            .flatten()
            .all(|d| !(d["kind"] == "Namespace" && d["metadata"]["name"] == "kubeflow")),
        "a Namespace for kubeflow was rendered"
    );
}

/// Issue 27, point 3: a gateway in Istio's namespace (Kubeflow's
/// `istio-system`) renders no Namespace (Istio's: two owners would
/// overwrite each other's labels, and pruning either deletes it) and no
/// namespace-wide policy there (the root namespace: it would be
/// mesh-wide; STRICT mTLS there only by the mesh-wide opt-in); with a
/// revision, the pods select their injector by label.
#[test]
fn a_gateway_in_istios_namespace_leaves_the_namespace_to_istio() {
    let t = render(&[&format!("{GW}.namespace=istio-system")]);
    for file in [
        "Namespace.yaml",
        "AuthorizationPolicy-allow-nothing.yaml",
        "PeerAuthentication-namespace.yaml",
    ] {
        assert!(!t.contains_key(&format!("{DIR}/{file}")), "{file} rendered");
    }
    assert_eq!(
        doc(&t, "Deployment.yaml")["metadata"]["namespace"],
        "istio-system"
    );
    let t = render(&[&format!(
        "{GW}.namespace=istio-system,deploykf_dependencies.istio.meshWideStrictMtls=true"
    )]);
    assert_eq!(
        doc(&t, "PeerAuthentication-mesh.yaml")["spec"]["mtls"]["mode"],
        "STRICT"
    );
    assert!(!t.contains_key(&format!("{DIR}/AuthorizationPolicy-allow-nothing.yaml")));
    let t = render(&[&format!(
        "{GW}.namespace=istio-system,deploykf_dependencies.istio.revision=1-30-3"
    )]);
    let labels = &doc(&t, "Deployment.yaml")["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["istio.io/rev"], "1-30-3");
    // Elsewhere the namespace label selects the injector, as before.
    let t = render(&["deploykf_dependencies.istio.revision=1-30-3"]);
    let labels = &doc(&t, "Deployment.yaml")["spec"]["template"]["metadata"]["labels"];
    assert!(labels.get("istio.io/rev").is_none());
    assert!(t.contains_key(&format!("{DIR}/Namespace.yaml")));
}

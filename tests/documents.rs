//! Assertions on parsed documents for the rules that matter, across value
//! sets (not only the defaults).

use meshgen::source::SourceId;
use meshgen::values::{SetArg, ValueInputs};
use meshgen::Session;
use serde_json::{json, Value};

const GW: &str = "deploykf_core.deploykf_istio_gateway";
const DIR: &str = "manifests/deploykf-core/deploykf-istio-gateway";

/// Render with `--set` arguments; return each file's documents as JSON.
fn render(sets: &[&str]) -> std::collections::BTreeMap<String, Vec<Value>> {
    let inputs = ValueInputs {
        files: vec![],
        sets: sets
            .iter()
            .map(|s| SetArg {
                text: s.to_string(),
                force_string: false,
            })
            .collect(),
    };
    let g = meshgen::generate(&inputs, &mut Session::default()).expect("render");
    g.files
        .iter()
        .filter(|(p, _)| p.ends_with(".yaml"))
        .map(|(p, text)| {
            let docs = meshgen::yaml::load_documents(text, SourceId(0)).unwrap();
            (
                p.clone(),
                docs.into_iter().flatten().map(|n| n.to_json()).collect(),
            )
        })
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
        json!(["*/ml.example.org", "*/*.ml.example.org"])
    );
    let off = render(&[&format!("{GW}.gateway.tls.matchSNI=false")]);
    assert_eq!(
        doc(&off, "Gateway.yaml")["spec"]["servers"][0]["hosts"],
        json!(["*"])
    );
    assert_eq!(
        doc(&off, "Gateway-https-redirect.yaml")["spec"]["servers"][0]["hosts"],
        json!(["*"])
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
        json!(["deploykf-gateway-https-redirect"])
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
        "{GW}.gateway.tls.redirect=false,{GW}.gatewayService.name=edge,{GW}.gatewayService.ports.https=9443"
    )]);
    let vs = doc(&t, "VirtualService-https-redirect.yaml");
    let route = &vs["spec"]["http"][0];
    assert!(route.get("redirect").is_none());
    assert_eq!(
        route["route"][0]["destination"],
        json!({"host": "edge.deploykf-istio-gateway.svc.cluster.local", "port": {"number": 9443}})
    );
    let dr = doc(&t, "DestinationRule-https-loopback.yaml");
    assert_eq!(
        dr["spec"]["host"],
        "edge.deploykf-istio-gateway.svc.cluster.local"
    );
    let tls = &dr["spec"]["trafficPolicy"]["portLevelSettings"][0];
    assert_eq!(tls["port"]["number"], 9443);
    assert_eq!(tls["tls"]["mode"], "SIMPLE");
    assert_eq!(tls["tls"]["sni"], "deploykf.example.com");
}

#[test]
fn namespace_and_every_object_live_in_the_gateway_namespace() {
    let t = render(&[&format!("{GW}.namespace=edge-system")]);
    let ns = doc(&t, "Namespace.yaml");
    assert_eq!(ns["metadata"]["name"], "edge-system");
    assert_eq!(ns["metadata"]["labels"]["istio-injection"], "enabled");
    for (path, docs) in &t {
        for d in docs {
            if d["kind"] != "Namespace" && d["kind"] != "Kustomization" {
                assert_eq!(d["metadata"]["namespace"], "edge-system", "{path}");
            }
        }
    }
    let k = doc(&t, "kustomization.yaml");
    assert_eq!(
        k["resources"],
        json!([
            "Gateway-https-redirect.yaml",
            "Gateway.yaml",
            "Namespace.yaml",
            "VirtualService-https-redirect.yaml"
        ])
    );
}

#[test]
fn a_disabled_component_renders_no_directory() {
    let t = render(&[&format!("{GW}.enabled=false")]);
    assert!(t.keys().all(|p| !p.starts_with(DIR)), "{:?}", t.keys());
}

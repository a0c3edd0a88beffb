//! The gateway component: the facts of the gateway (names, ports, hosts;
//! see `facts`), the Deployment/Service/autoscaling meshgen renders when
//! `charts.istioGateway.enabled`, and the route and policy bodies of the
//! main host and of every app, built as values (never as text). Templates
//! only write the objects around them.

use crate::component::{
    Contributions, Delivery, Descriptor, FanOut, GatewayContribution, Input, Overrides, Packaging,
    Part,
};
use crate::config::{Config, PodSecurityLevel, ServiceType, StringMap};
use crate::facts::{
    gateway_api_duration, service_host, string_map, GatewayFacts, DEX_PORT, GATEWAY_NAME_LABEL,
    OAUTH2_PROXY_PORT,
};
use serde::Serialize;
use serde_json::{json, Value};

pub static COMPONENT: Descriptor = Descriptor {
    id: "deploykf-istio-gateway",
    summary: "the ingress gateway: its deployment, Gateway/VirtualService routes, TLS certificate and the authentication and authorization policies at the edge",
    key: "gateway",
    section: "deploykf_core.deploykf_istio_gateway",
    templates: "manifests/deploykf-core/deploykf-istio-gateway",
    wave: 0,
    packaging: Packaging::Kustomize,
    delivery: Delivery::PLAIN,
    overrides: Overrides::Patches(crate::rules::gateway_chart::map),
    fan_out: &[FanOut {
        placeholder: "app",
        collection: &["apps"],
        within: None,
    }],
    enabled: |c| c.deploykf_core.deploykf_istio_gateway.common.enabled,
    namespace: |c| Some(c.deploykf_core.deploykf_istio_gateway.common.namespace.clone()),
    extra_manifests: |c| &c.deploykf_core.deploykf_istio_gateway.common.extra_manifests,
    values_overrides: |c| Some(&c.deploykf_core.deploykf_istio_gateway.common.values_overrides),
    patches: |c| &c.deploykf_core.deploykf_istio_gateway.patches,
    rules: crate::rules::gateway::check,
    derive,
    // `additionalGateways`: one instance each, in the primary's namespace.
    more: |c| {
        let gw = &c.deploykf_core.deploykf_istio_gateway;
        (gw.additional_gateways.iter())
            .map(|a| a.gateway.name.clone())
            .collect()
    },
    shards: crate::component::no_shards,
    contribute,
};

/// What a gateway instance adds to the others, from its own section (the
/// primary's, or its `additionalGateways` item as `facts::gateways` makes
/// it): who its users are, its principal and its pods, for the policies
/// that admit it (auth's, the profiles'); and the namespaces it assumes:
/// its apps' are the user's, and so is the namespace of a Gateway
/// resource set apart (`gateway.namespace`: Kubeflow's); Istio's
/// namespace is Istio's, when the gateway shares it
/// (`namespace_rendered`).
fn contribute(config: &Config, index: Option<usize>) -> Contributions {
    let views = crate::facts::gateways(config);
    let Some(view) = views.get(index.map_or(0, |i| i + 1)) else {
        return Contributions::default();
    };
    let gw = &view.component;
    let istio = &config.deploykf_dependencies.istio.common.namespace;
    Contributions {
        gateways: vec![GatewayContribution {
            id: match index {
                None => COMPONENT.id.to_string(),
                Some(_) => format!("{}-{}", COMPONENT.id, gw.gateway.name),
            },
            primary: index.is_none(),
            auth: view.auth,
            principal: crate::facts::gateway_principal(gw),
            pods: super::netpol::pods_in(&gw.common.namespace, &gw.gateway.selector_labels),
        }],
        namespaces: (gw.apps.iter().map(|a| a.namespace.clone()))
            .chain(gw.gateway.namespace.clone())
            .chain((gw.common.namespace == *istio).then(|| istio.clone()))
            .collect(),
        ..Default::default()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GatewayModel {
    #[serde(flatten)]
    pub facts: GatewayFacts,
    /// `rules` of the policy that lets anyone reach the listening ports.
    pub allow_rules: Vec<Value>,
    /// HTTP routes of the main host's VirtualService, most specific first.
    pub main_routes: Vec<Value>,
    pub apps: Vec<AppModel>,
    /// The deployment is ours (`charts.istioGateway.enabled`).
    pub deployment_managed: bool,
    /// Render allow-nothing and STRICT mTLS for the whole gateway namespace.
    pub namespace_zero_trust: bool,
    /// Render the gateway namespace's Namespace: not when it is Istio's
    /// (`istio.namespace`, created with Istio's release or by your Istio
    /// install, and its root namespace): two owners of one Namespace
    /// overwrite each other's labels, and pruning either deletes it.
    pub namespace_rendered: bool,
    /// `gateway.wildcardHost`: `*.<hostname>` is served too (KServe).
    pub wildcard_host: bool,
    /// The gateway Namespace's Pod Security label (`namespacePodSecurity`;
    /// by default "restricted" when the deployment is ours, none on your
    /// own gateway's namespace).
    pub pod_security: StringMap,
    /// Its NetworkPolicies (`networkPolicy.enabled`; empty when off).
    pub network_policies: Vec<super::netpol::NetworkPolicyModel>,
    pub deployment: GatewayDeploymentModel,
    /// `extraManifests`, parsed and checked, in order.
    pub extra_manifests: Vec<Value>,
    pub identity_header_guard: IdentityHeaderGuard,
    /// Tenants' VirtualServices stay in their namespace's paths (issue 28).
    pub tenant_routes: Option<super::tenant_routes::TenantRouteGuard>,
    /// `api: gateway-api`: the Kubernetes Gateway API objects that replace
    /// Istio's Gateways and VirtualServices; `None` under `api: istio`.
    pub gateway_api: Option<GatewayApiModel>,
    /// `dataplaneMode: ambient` (the gateway namespace stays injected; see
    /// its Namespace template).
    pub ambient: bool,
    /// One of `additionalGateways`: what is the namespace's or the mesh's
    /// (the Namespace, the mesh-wide PeerAuthentication, the identity
    /// header admission policy) is rendered by the primary only.
    pub additional: bool,
    /// Name of the HTTP listener's redirect objects (VirtualService or
    /// HTTPRoute, DestinationRule): `https-redirect` on the primary,
    /// `<gateway.name>-https-redirect` on an additional gateway (one
    /// namespace).
    pub redirect_object_name: String,
    /// Name of its Telemetry.
    pub telemetry_name: String,
    /// Render the CUSTOM (login redirect) policy: `login` gateways.
    pub login_policy: bool,
    /// Render the RequestAuthentication and the DENY policy: `login` and
    /// `token` gateways, with the login flow on.
    pub token_policy: bool,
    /// `jwtRules` of its RequestAuthentication (every trusted issuer).
    pub jwt_rules: Vec<Value>,
    /// `rules` of its CUSTOM (login) policy.
    pub login_rules: Vec<Value>,
    /// `rules` of its DENY policy.
    pub deny_rules: Vec<Value>,
}

/// The ingress as Gateway API objects (`api: gateway-api`), always in the
/// manual deployment mode: the Gateway's one `Hostname` address names the
/// gateway Service, so istiod deploys nothing and programs the pods behind
/// that Service (istio/istio 1.30.3
/// `pilot/pkg/config/kube/gatewaycommon/gateway_utils.go:64-77` `IsManaged`,
/// `pilot/pkg/config/kube/gateway/conversion.go:2003-2024`
/// `extractGatewayServices`). Listener ports are therefore the Service's
/// ports, which istiod resolves to their targetPorts, the pod ports
/// (`pilot/pkg/model/gateway.go:476-505` `resolvePorts`: "we just find the
/// matching port and return the targetPort"); the AuthorizationPolicies'
/// `ports` stay the pod ports.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayApiModel {
    /// `spec.addresses` of the Gateway.
    pub addresses: Vec<Value>,
    /// `spec.listeners` of the Gateway.
    pub listeners: Vec<Value>,
    /// `spec` of `HTTPRoute/https-redirect` (on the `http` listener).
    pub redirect_route: Value,
    /// `spec` of the main host's HTTPRoute; `None` without routes.
    pub main_route: Option<Value>,
    /// `targetRefs` of the gateway's policies (and of the EnvoyFilters of
    /// a gateway Deployment meshgen does not own).
    pub target_refs: Vec<Value>,
    /// The ReferenceGrant of the login flow's Services, rendered by the
    /// auth component with its namespace; an app's comes with the app.
    pub reference_grants: Vec<ReferenceGrantModel>,
}

/// A `gateway.networking.k8s.io/v1beta1` ReferenceGrant (the only version
/// both bundles meshgen installs serve: standard v1.4.1 has no v1) that lets
/// the HTTPRoutes of the gateway namespace name these Services.
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceGrantModel {
    pub name: String,
    pub namespace: String,
    pub spec: Value,
}

/// The ValidatingAdmissionPolicy that keeps identity headers out of
/// VirtualServices outside the gateway's namespace (issue 14, point 5).
/// Istio applies a route's `headers.request` in the router, after the
/// gateway's authorization filters (istio/istio
/// `pilot/pkg/networking/core/route/route.go`, `TranslateRoute` puts them in
/// Envoy's `request_headers_to_add` / `request_headers_to_remove` of the
/// route), so such a route could hand an app any identity.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityHeaderGuard {
    /// CEL list of the lower-cased identity headers.
    pub headers: String,
    /// CEL: no route of the VirtualService touches them.
    pub expression: String,
    pub message: String,
}

fn identity_header_guard(config: &Config, gateway: &str, namespace: &str) -> IdentityHeaderGuard {
    let id = &config.deploykf_core.deploykf_auth.identity;
    let mut names: Vec<String> = [&id.user_header, &id.groups_header]
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    names.dedup();
    let list = names
        .iter()
        .map(|h| serde_json::to_string(h).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(", ");
    // Header names are case-insensitive (Envoy lower-cases them), so each
    // key is compared lower-cased.
    let clean = |r: &str| {
        let op = |o: &str| {
            format!("(!has({r}.headers.request.{o}) || {r}.headers.request.{o}.all(h, !(h.lowerAscii() in variables.identityHeaders)))")
        };
        format!(
            "(!has({r}.headers) || !has({r}.headers.request) || ({} && {} && {}))",
            op("set"),
            op("add"),
            op("remove")
        )
    };
    IdentityHeaderGuard {
        headers: format!("[{list}]"),
        expression: format!(
            "!has(object.spec.http) || object.spec.http.all(r, {} && (!has(r.route) || r.route.all(d, {})))",
            clean("r"),
            clean("d")
        ),
        message: format!(
            "identity headers ({}) are set by the gateway {gateway} only; a VirtualService outside namespace {namespace} may not set, add or remove them",
            names.join(", ")
        ),
    }
}

/// One app behind the gateway: its routes and its policy.
#[derive(Debug, Clone, Serialize)]
pub struct AppModel {
    pub name: String,
    pub namespace: String,
    /// The host it is served on.
    pub host: String,
    /// Its prefix on the main host (a route in the main VirtualService);
    /// `None` for a subdomain app, which has its own VirtualService.
    pub path: Option<String>,
    /// HTTP routes of its VirtualService (subdomain apps only).
    pub routes: Vec<Value>,
    pub selector: Option<StringMap>,
    /// `rules` of the policy that lets the gateway reach its pods.
    pub policy_rules: Vec<Value>,
    /// `api: gateway-api`: its HTTPRoute's `spec` (subdomain apps only).
    pub http_route: Option<Value>,
    /// `api: gateway-api`: the ReferenceGrant its route needs (a backend
    /// outside the gateway namespace).
    pub reference_grant: Option<ReferenceGrantModel>,
}

/// The gateway Deployment, Service, autoscaling, as rendered when
/// `charts.istioGateway.enabled`.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayDeploymentModel {
    /// Name of the Deployment, Service, HPA, PDB, Role and RoleBinding
    /// (`gatewayService.name`, as deployKF names the chart release).
    pub name: String,
    pub service_account: String,
    pub service_account_annotations: StringMap,
    pub pod_labels: StringMap,
    pub pod_annotations: StringMap,
    /// `None` while the HPA owns the replica count.
    pub replicas: Option<u32>,
    pub autoscaling: Option<AutoscalingModel>,
    /// More than one replica can run: render a PodDisruptionBudget.
    pub disruption_budget: bool,
    pub service_type: ServiceType,
    pub service_annotations: StringMap,
    pub load_balancer_ip: Option<String>,
    pub load_balancer_source_ranges: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AutoscalingModel {
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub target_cpu: u32,
}

fn derive(input: &Input) -> Part {
    let Some(i) = input.index else {
        return derive_one(input, input.facts);
    };
    // An additional gateway: the model of its own view of the config.
    let views = crate::facts::gateways(input.config);
    let Some(view) = views.get(i + 1) else {
        return Part::of(&());
    };
    let config = view.config(input.config);
    let facts = view.facts(input.config);
    derive_one(
        &Input {
            config: &config,
            facts: &facts,
            extra_manifests: &[],
            index: input.index,
            contributions: input.contributions,
        },
        input.facts,
    )
}

/// The model of one gateway; `install` the facts of the whole install
/// (the issuer lives on the primary's host).
fn derive_one(input: &Input, install: &crate::facts::Facts) -> Part {
    use crate::config::GatewayAuth;
    let config = input.config;
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let facts = &input.facts.gateway;
    let additional = input.index.is_some();
    let auth_on = config.deploykf_core.deploykf_auth.common.enabled;
    let policies =
        super::auth::policies::derive(config, input.facts, &super::auth::issuer(config, install));
    let (main_routes, mut apps) = routes(input);
    let gateway_api = facts.gateway_api.then(|| gateway_api(input, &mut apps));
    let in_istio_namespace = gw.common.namespace == input.facts.istio.namespace;
    // In Istio's root namespace, namespace-wide policies are mesh-wide
    // (`rules::gateway::check_root_namespace`): off unless asked for.
    let namespace_zero_trust = gw
        .namespace_zero_trust
        .unwrap_or(gw.charts.istio_gateway.enabled && !in_istio_namespace);
    Part::of(&GatewayModel {
        facts: facts.clone(),
        allow_rules: vec![json!({"to": [{"operation": {"ports": [
            facts.http_port.to_string(),
            facts.https_port.to_string(),
        ]}}]})],
        main_routes,
        apps,
        deployment_managed: gw.charts.istio_gateway.enabled,
        namespace_zero_trust,
        namespace_rendered: !in_istio_namespace && !additional,
        wildcard_host: gw.gateway.wildcard_host,
        // meshgen's gateway pods meet "restricted" with sidecars (the
        // gateway injection template adds no init container) and in ambient
        // (tests/pod_security.rs); in Istio's namespace there is no
        // Namespace to label (`rules::gateway::check_root_namespace`).
        pod_security: crate::facts::pod_security_labels(
            gw.namespace_pod_security
                .or((gw.charts.istio_gateway.enabled).then_some(PodSecurityLevel::Restricted))
                .filter(|_| !in_istio_namespace),
        ),
        network_policies: network_policies(input, namespace_zero_trust),
        deployment: deployment(config),
        extra_manifests: input.extra_manifests.to_vec(),
        identity_header_guard: identity_header_guard(
            config,
            &gw.gateway.name,
            &gw.common.namespace,
        ),
        tenant_routes: super::tenant_routes::guard(config, facts),
        ambient: input.facts.istio.ambient,
        gateway_api,
        additional,
        redirect_object_name: if additional {
            facts.redirect_name.clone()
        } else {
            "https-redirect".to_string()
        },
        telemetry_name: format!("{}-telemetry", facts.name),
        login_policy: auth_on && facts.auth == GatewayAuth::Login,
        token_policy: auth_on && facts.auth != GatewayAuth::None,
        jwt_rules: policies.jwt_rules,
        login_rules: policies.login_rules,
        deny_rules: policies.deny_rules,
    })
}

/// The gateway's NetworkPolicies: its pods admit their listening ports
/// and [`GATEWAY_STATUS_PORTS`](super::netpol::GATEWAY_STATUS_PORTS) from
/// anywhere (the load balancer's clients), as Istio's gateway chart does;
/// where the namespace is ours (`namespaceZeroTrust`) nothing else is
/// admitted in it. Your own gateway's pods in a namespace that is not
/// ours get none: meshgen does not know every port they serve.
fn network_policies(
    input: &Input,
    namespace_zero_trust: bool,
) -> Vec<super::netpol::NetworkPolicyModel> {
    use super::netpol;
    let gw = &input.config.deploykf_core.deploykf_istio_gateway;
    let facts = &input.facts.gateway;
    let mut out = Vec::new();
    if !gw.network_policy.enabled || !(gw.charts.istio_gateway.enabled || namespace_zero_trust) {
        return out;
    }
    if namespace_zero_trust {
        out.push(netpol::default_deny_ingress());
    }
    let mut ports = vec![facts.http_port, facts.https_port];
    ports.extend(netpol::GATEWAY_STATUS_PORTS);
    // The gateway is injected in both data-plane modes: its pods are
    // Envoys, never captured by ztunnel, so no HBONE port.
    out.push(netpol::allow(
        &gw.gateway_service.name,
        &facts.selector_labels,
        Vec::new(),
        netpol::tcp_ports(&ports, false),
    ));
    out
}

fn route(name: &str, prefix: &str, dest: &str, port: u16) -> serde_json::Map<String, Value> {
    let mut r = serde_json::Map::new();
    r.insert("name".into(), json!(name));
    r.insert("match".into(), json!([{"uri": {"prefix": prefix}}]));
    r.insert(
        "route".into(),
        json!([{"destination": {"host": dest, "port": {"number": port}}}]),
    );
    r
}

/// What tells browsers to use only HTTPS for the host (RFC 6797), on every
/// response of the HTTPS listener when clients use HTTPS. Not
/// `includeSubDomains`: other names under the hostname need not be ours.
pub const HSTS: (&str, &str) = ("strict-transport-security", "max-age=31536000");

/// A route's `headers`: identity headers removed (public routes) and HSTS
/// set on the response (clients use HTTPS).
fn route_headers(r: &mut serde_json::Map<String, Value>, remove: Option<&Value>, hsts: bool) {
    let mut h = serde_json::Map::new();
    if let Some(remove) = remove {
        h.insert("request".into(), json!({"remove": remove}));
    }
    if hsts {
        h.insert("response".into(), json!({"set": {HSTS.0: HSTS.1}}));
    }
    if !h.is_empty() {
        r.insert("headers".into(), Value::Object(h));
    }
}

/// The main host's routes (login flow and path apps, longest prefix
/// first) and every app with its own routes and policy.
fn routes(input: &Input) -> (Vec<Value>, Vec<AppModel>) {
    let config = input.config;
    let a = &config.deploykf_core.deploykf_auth;
    let hsts = input.facts.gateway.clients_use_https;
    let remove = json!([a.identity.user_header, a.identity.groups_header]);
    let mut main_routes: Vec<(usize, String, Value)> = Vec::new();
    for path in &input.facts.login.paths {
        let (name, port) = match *path {
            "/dex" => ("dex", DEX_PORT),
            _ => ("oauth2-proxy", OAUTH2_PROXY_PORT),
        };
        let mut r = route(name, path, &service_host(name, &a.common.namespace), port);
        route_headers(&mut r, Some(&remove), hsts);
        main_routes.push((usize::MAX, path.to_string(), Value::Object(r)));
    }
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let mut apps = Vec::new();
    for (app, f) in gw.apps.iter().zip(&input.facts.apps) {
        let prefix = crate::facts::app_prefix(app);
        let mut r = route(
            &app.name,
            prefix,
            &service_host(&app.service, &app.namespace),
            app.port,
        );
        if let Some(rw) = &app.rewrite {
            r.insert("rewrite".into(), json!({"uri": rw}));
        }
        if let Some(t) = &app.timeout {
            r.insert("timeout".into(), json!(t));
        }
        if let Some(rt) = &app.retries {
            r.insert("retries".into(), json!(rt));
        }
        // No identity reaches a public app, whatever the client sent.
        route_headers(&mut r, f.public.then_some(&remove), hsts);
        let routes = if app.subdomain.is_some() {
            vec![Value::Object(r)]
        } else {
            main_routes.push((prefix.len(), prefix.to_string(), Value::Object(r)));
            Vec::new()
        };
        apps.push(AppModel {
            name: f.name.clone(),
            namespace: f.namespace.clone(),
            host: f.host.clone(),
            path: f.path.clone(),
            routes,
            selector: f.selector.clone(),
            policy_rules: vec![app_policy_rule(
                &input.facts.gateway.principal,
                f.target_port,
            )],
            http_route: None,
            reference_grant: None,
        });
    }
    // Longest prefix first: Envoy takes the first route that matches.
    main_routes.sort_by(|x, y| y.0.cmp(&x.0).then_with(|| x.1.cmp(&y.1)));
    (main_routes.into_iter().map(|(_, _, r)| r).collect(), apps)
}

/// The rule that lets the gateway reach an app's pods. Istio matches
/// `ports` against the port the request arrives on at the workload
/// (istio/istio `pilot/pkg/security/authz/model/model.go`: `ports` ->
/// `destPortGenerator` in generator.go -> `permissionDestinationPort` in
/// permission.go, Envoy RBAC's `destination_port`, the port the sidecar's
/// inbound connection was made to), not the Service port: a Service 80 -> 8082 app is reached on
/// 8082. Without `targetPort` the pod port is unknown, so the rule names no
/// port; the selector (or the namespace) bounds it.
fn app_policy_rule(gateway_principal: &str, target_port: Option<u16>) -> Value {
    let from = json!([{"source": {"principals": [gateway_principal]}}]);
    match target_port {
        Some(p) => json!({"from": from, "to": [{"operation": {"ports": [p.to_string()]}}]}),
        None => json!({"from": from}),
    }
}

fn deployment(config: &Config) -> GatewayDeploymentModel {
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let d = &gw.gateway_deployment;
    let s = &gw.gateway_service;
    // Injection first, then the selector labels (which the Service, the
    // Gateways and every policy select on), then upstream's ambient opt-out.
    let mut pod_labels: StringMap = string_map(&[("sidecar.istio.io/inject", "true")]);
    // In Istio's own namespace (no injection label: `namespace_rendered`),
    // the pod's labels select the injector: `sidecar.istio.io/inject: "true"`
    // the default revision's, `istio.io/rev` another's (istio/istio master
    // 86c9f01 manifests/charts/istio-control/istio-discovery/templates/
    // mutatingwebhook.yaml:88-106 `rev.object.`, :130-144 `object.`).
    let istio = &config.deploykf_dependencies.istio;
    if gw.common.namespace == istio.common.namespace && !istio.revision.is_empty() {
        pod_labels.insert("istio.io/rev".into(), istio.revision.clone());
    }
    pod_labels.extend(gw.gateway.selector_labels.clone());
    pod_labels.insert("istio.io/dataplane-mode".into(), "none".into());
    let gateway_api = gw.api == crate::config::GatewayApi::GatewayApi;
    if gateway_api {
        // What makes Istio attach the `targetRefs` policies to these pods
        // (`facts::GATEWAY_NAME_LABEL`).
        pod_labels.insert(GATEWAY_NAME_LABEL.into(), gw.gateway.name.clone());
    }
    let mut pod_annotations = string_map(&[
        ("inject.istio.io/templates", "gateway"),
        ("prometheus.io/path", "/stats/prometheus"),
        ("prometheus.io/port", "15020"),
        ("prometheus.io/scrape", "true"),
    ]);
    pod_annotations.extend(d.pod_annotations.clone());
    if gateway_api {
        if let Some(topology) = gateway_topology(config) {
            pod_annotations.insert("proxy.istio.io/config".into(), topology);
        }
    }
    let autoscaling = d.autoscaling.enabled.then_some(AutoscalingModel {
        min_replicas: d.autoscaling.min_replicas,
        max_replicas: d.autoscaling.max_replicas,
        target_cpu: d.autoscaling.target_cpu_utilization_percentage,
    });
    let max_running = match &autoscaling {
        Some(a) => a.max_replicas,
        None => d.replica_count,
    };
    GatewayDeploymentModel {
        name: s.name.clone(),
        service_account: d.service_account.name.clone(),
        service_account_annotations: d.service_account.annotations.clone(),
        pod_labels,
        pod_annotations,
        replicas: (!d.autoscaling.enabled).then_some(d.replica_count),
        disruption_budget: max_running > 1,
        autoscaling,
        service_type: s.service_type,
        service_annotations: s.annotations.clone(),
        load_balancer_ip: (!s.load_balancer_ip.is_empty()
            && s.service_type == ServiceType::LoadBalancer)
            .then(|| s.load_balancer_ip.clone()),
        load_balancer_source_ranges: s.load_balancer_source_ranges.clone(),
    }
}

/// `api: gateway-api` on meshgen's own gateway pods: the client-address
/// settings as the proxy's `gatewayTopology` instead of EnvoyFilters.
/// pilot-agent reads the pod annotation `proxy.istio.io/config` from the
/// downward-API podinfo file and applies it over the mesh defaults and
/// `PROXY_CONFIG` (istio/istio 1.30.3
/// `pilot/cmd/pilot-agent/config/config.go:37-54,136-142`; the gateway
/// injection template mounts podinfo with the pod's annotations,
/// `manifests/charts/istio-control/istio-discovery/files/gateway-injection-template.yaml:232-240`);
/// istiod then sets the HTTP connection manager's `xff_num_trusted_hops`
/// from `gatewayTopology.numTrustedProxies` (`pilot/pkg/networking/core/gateway.go:724-725`)
/// and adds the PROXY listener filter when `gatewayTopology.proxyProtocol`
/// is set (`:168-169`). `None` when neither is on.
fn gateway_topology(config: &Config) -> Option<String> {
    let g = &config.deploykf_core.deploykf_istio_gateway.gateway;
    let mut topology = serde_json::Map::new();
    if g.xff_num_trusted_hops > 0 {
        topology.insert("numTrustedProxies".into(), json!(g.xff_num_trusted_hops));
    }
    if g.enable_proxy_protocol {
        topology.insert("proxyProtocol".into(), json!({}));
    }
    (!topology.is_empty()).then(|| json!({"gatewayTopology": topology}).to_string())
}

/// The Gateway API objects of `api: gateway-api` (see [`GatewayApiModel`]),
/// and each app's HTTPRoute and ReferenceGrant.
fn gateway_api(input: &Input, apps: &mut [AppModel]) -> GatewayApiModel {
    let config = input.config;
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let facts = &input.facts.gateway;
    let a = &config.deploykf_core.deploykf_auth;
    let match_sni = gw.gateway.tls.match_sni;
    let https_listener = |name: String, host: &str| {
        let mut l = serde_json::Map::new();
        l.insert("name".into(), json!(name));
        // Without `matchSNI`, one listener takes any SNI; the routes'
        // `hostnames` still decide what is served.
        if match_sni {
            l.insert("hostname".into(), json!(host));
        }
        l.insert("port".into(), json!(facts.public_https_port));
        l.insert("protocol".into(), json!("HTTPS"));
        l.insert(
            "tls".into(),
            json!({"mode": "Terminate", "certificateRefs": [
                {"group": "", "kind": "Secret", "name": facts.tls_credential_name}
            ]}),
        );
        // Only routes of the gateway's namespace: login and token checks
        // are the gateway's, so nobody else may bind routes here (as
        // `Gateway/https-redirect` admits only `./` VirtualServices).
        l.insert(
            "allowedRoutes".into(),
            json!({"namespaces": {"from": "Same"}}),
        );
        Value::Object(l)
    };
    let mut listeners = vec![https_listener("https".into(), &facts.hostname)];
    let mut sub: Vec<&AppModel> = apps.iter().filter(|a| a.path.is_none()).collect();
    sub.sort_by(|x, y| x.host.cmp(&y.host));
    if match_sni {
        for app in &sub {
            listeners.push(https_listener(format!("https-{}", app.name), &app.host));
        }
    }
    listeners.push(json!({
        "name": "http",
        "port": facts.public_http_port,
        "protocol": "HTTP",
        "allowedRoutes": {"namespaces": {"from": "Same"}},
    }));
    let parent = |section: &str| json!([{"name": facts.name, "sectionName": section}]);

    // The HTTP listener: redirect, or relay to the HTTPS listener.
    let redirect_rule = if facts.tls_redirect {
        // 302: the standard channel of v1.4.1 (Istio 1.28 and 1.29) allows
        // only 301 and 302 (kubernetes-sigs/gateway-api v1.4.1
        // `apis/v1/httproute_types.go:1273` `Enum=301;302`); 307 is
        // standard only from v1.5 (v1.5.1 `:1283`).
        json!({"name": "https-redirect", "filters": [{"type": "RequestRedirect", "requestRedirect": {
            "scheme": "https", "port": facts.public_https_port, "statusCode": 302,
        }}]})
    } else {
        // An Istio `Hostname` backend: the gateway's own HTTPS listener
        // through `ServiceEntry/<gateway>`, TLS by
        // `DestinationRule/https-redirect` (istio/istio 1.30.3
        // `pilot/pkg/config/kube/gateway/conversion.go:1116-1123`).
        json!({"name": "http-to-https", "backendRefs": [{
            "group": "networking.istio.io", "kind": "Hostname",
            "name": facts.hostname, "port": facts.public_https_port,
        }]})
    };
    let mut redirect_route = serde_json::Map::new();
    redirect_route.insert("parentRefs".into(), parent("http"));
    if match_sni {
        let mut hosts = vec![facts.hostname.clone()];
        hosts.extend(sub.iter().map(|a| a.host.clone()));
        redirect_route.insert("hostnames".into(), json!(hosts));
    }
    redirect_route.insert("rules".into(), json!([redirect_rule]));

    // The rules, in the VirtualServices' order.
    let hsts = facts.clients_use_https;
    let remove = [
        a.identity.user_header.clone(),
        a.identity.groups_header.clone(),
    ];
    let mut main_rules: Vec<(usize, String, Value)> = Vec::new();
    let mut grants = Vec::new();
    let mut login_services = Vec::new();
    for path in &input.facts.login.paths {
        let (name, port) = match *path {
            "/dex" => ("dex", DEX_PORT),
            _ => ("oauth2-proxy", OAUTH2_PROXY_PORT),
        };
        let rule = http_rule(
            name,
            path,
            name,
            &a.common.namespace,
            port,
            Some(&remove),
            hsts,
        );
        main_rules.push((usize::MAX, path.to_string(), rule));
        login_services.push(name);
    }
    if gw.common.enabled && !login_services.is_empty() && a.common.namespace != gw.common.namespace
    {
        grants.push(reference_grant(
            "meshgen-gateway-login".into(),
            &a.common.namespace,
            &gw.common.namespace,
            &login_services,
        ));
    }
    for ((app, f), model) in gw.apps.iter().zip(&input.facts.apps).zip(apps.iter_mut()) {
        let prefix = crate::facts::app_prefix(app);
        let mut rule = http_rule(
            &app.name,
            prefix,
            &app.service,
            &app.namespace,
            app.port,
            f.public.then_some(&remove),
            hsts,
        );
        if let Some(rw) = &app.rewrite {
            push_filter(
                &mut rule,
                json!({"type": "URLRewrite", "urlRewrite": {"path": {
                    "type": "ReplacePrefixMatch", "replacePrefixMatch": rw,
                }}}),
            );
        }
        if let Some(t) = &app.timeout {
            // `rules::gateway` refuses a timeout with no exact form.
            if let Ok(t) = gateway_api_duration(t) {
                rule["timeouts"] = json!({"request": t});
            }
        }
        if app.namespace != gw.common.namespace {
            model.reference_grant = Some(reference_grant(
                format!("meshgen-gateway-{}", app.name),
                &app.namespace,
                &gw.common.namespace,
                &[app.service.as_str()],
            ));
        }
        if app.subdomain.is_some() {
            let section = if match_sni {
                format!("https-{}", app.name)
            } else {
                "https".into()
            };
            model.http_route = Some(json!({
                "parentRefs": parent(&section),
                "hostnames": [model.host],
                "rules": [rule],
            }));
        } else {
            main_rules.push((prefix.len(), prefix.to_string(), rule));
        }
    }
    // Longest prefix first, as in the VirtualService; the Gateway API
    // orders by the longest prefix anyway (kubernetes-sigs/gateway-api
    // v1.5.1 `apis/v1/httproute_types.go:176-200`).
    main_rules.sort_by(|x, y| y.0.cmp(&x.0).then_with(|| x.1.cmp(&y.1)));
    let main_route = (!main_rules.is_empty()).then(|| {
        json!({
            "parentRefs": parent("https"),
            "hostnames": [facts.hostname],
            "rules": main_rules.into_iter().map(|(_, _, r)| r).collect::<Vec<_>>(),
        })
    });
    GatewayApiModel {
        addresses: vec![json!({
            "type": "Hostname",
            "value": service_host(&gw.gateway_service.name, &gw.common.namespace),
        })],
        listeners,
        redirect_route: Value::Object(redirect_route),
        main_route,
        target_refs: vec![json!({
            "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": facts.name,
        })],
        reference_grants: grants,
    }
}

/// One HTTPRoute rule: a `PathPrefix` match, the identity headers removed
/// (public routes), HSTS on the response, one backend.
///
/// `PathPrefix` matches whole path elements and ignores a trailing `/`
/// (kubernetes-sigs/gateway-api v1.5.1 `apis/v1/httproute_types.go:498-503`):
/// Istio trims the `/` (istio/istio 1.30.3
/// `pilot/pkg/config/kube/gateway/conversion.go:1548-1555`) and Envoy
/// matches a `path_separated_prefix` (`pilot/pkg/networking/core/route/route.go:1099-1104`),
/// so `/status/` serves `/status` too, where the VirtualService's string
/// prefix did not (there `/status` went to `/`'s app). Nothing is opened by
/// it: the login policies' `notPaths` are string patterns (`/status/*`), so
/// `/status` still needs a login.
fn http_rule(
    name: &str,
    prefix: &str,
    service: &str,
    namespace: &str,
    port: u16,
    remove: Option<&[String; 2]>,
    hsts: bool,
) -> Value {
    let mut rule = json!({
        "name": name,
        "matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
    });
    if let Some(remove) = remove {
        push_filter(
            &mut rule,
            json!({"type": "RequestHeaderModifier", "requestHeaderModifier": {"remove": remove}}),
        );
    }
    if hsts {
        push_filter(
            &mut rule,
            json!({"type": "ResponseHeaderModifier", "responseHeaderModifier": {"set": [
                {"name": HSTS.0, "value": HSTS.1}
            ]}}),
        );
    }
    rule["backendRefs"] = json!([{"name": service, "namespace": namespace, "port": port}]);
    rule
}

fn push_filter(rule: &mut Value, filter: Value) {
    match rule.get_mut("filters").and_then(Value::as_array_mut) {
        Some(f) => f.push(filter),
        None => rule["filters"] = json!([filter]),
    }
}

/// Lets the HTTPRoutes of `from` name these Services of `namespace`
/// (Istio refuses a cross-namespace backendRef without one: istio/istio
/// 1.30.3 `pilot/pkg/config/kube/gateway/conversion.go:1093-1097`).
fn reference_grant(
    name: String,
    namespace: &str,
    from: &str,
    services: &[&str],
) -> ReferenceGrantModel {
    ReferenceGrantModel {
        name,
        namespace: namespace.to_string(),
        spec: json!({
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": from}],
            "to": services.iter().map(|s| json!({"group": "", "kind": "Service", "name": s})).collect::<Vec<_>>(),
        }),
    }
}

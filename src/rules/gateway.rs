//! Rules for `deploykf_core.deploykf_istio_gateway`: TLS settings
//! deployKF requires, ports that differ and are free in the gateway pod,
//! autoscaling bounds, names that fit, and apps that are unambiguous
//! (`super::auth::check_apps`).

use super::{Ctx, Findings};
use crate::code::Code;
use crate::facts::GatewayFacts;
use crate::values::path::ValuePath;
use serde_json::{json, Value};

const GW: &str = "deploykf_core.deploykf_istio_gateway";

/// Ports the Istio proxy itself listens on inside a gateway pod; a Gateway
/// server on one of them would never receive traffic.
const ISTIO_RESERVED_PORTS: &[(u16, &str)] = &[
    (15000, "Envoy admin"),
    (15001, "Envoy outbound"),
    (15004, "debug"),
    (15006, "Envoy inbound"),
    (15008, "HBONE tunnel"),
    (15020, "merged Prometheus telemetry"),
    (15021, "health checks"),
    (15053, "DNS proxy"),
    (15090, "Envoy Prometheus telemetry"),
];

/// Kubernetes object names stop at 253 characters.
const MAX_NAME: usize = 253;

pub fn check(ctx: &Ctx, f: &mut Findings) {
    let config = ctx.config;
    let facts = ctx.facts;
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let base = ValuePath::keys(GW);
    // Each gateway's own settings, at its own keys (the primary's section
    // or its `additionalGateways` item).
    for v in crate::facts::gateways(config) {
        let own = match v.index {
            None => facts.gateway.clone(),
            Some(_) => v.facts(config).gateway,
        };
        check_one(ctx, f, &v, &own);
    }
    if !gw.gateway.tls.redirect && !facts.gateway.certificate_managed {
        f.warnings.push(ctx.warning(Code::RelayNeedsCa,
            base.key("gateway").key("tls").key("credentialName"),
            format!(
                "with `{GW}.gateway.tls.redirect` false the gateway relays HTTP to its own HTTPS listener and verifies its certificate there: Secret `{c}` must hold the issuing CA under `ca.crt` (or a Secret `{c}-cacert` must, under `ca.crt` or `cacert`), or every http:// request fails",
                c = facts.gateway.tls_credential_name
            ),
        ));
    }
    if gw.namespace_zero_trust.is_none() && !gw.charts.istio_gateway.enabled {
        let n = &facts.gateway.names;
        f.warnings.push(ctx.warning(Code::NoNamespaceZeroTrust,
            base.key("namespaceZeroTrust"),
            format!(
                "your own gateway's namespace `{ns}` gets no namespace-wide deny-by-default or STRICT mTLS from meshgen (other workloads there keep the policies you give them); meshgen renders only policies that select the gateway pods: AuthorizationPolicy `{gw}`, `{login}` and `{deny}`, PeerAuthentication `{gw}` (PERMISSIVE); for zero trust there, add a deny-by-default AuthorizationPolicy and a STRICT PeerAuthentication yourself, or set `{GW}.namespaceZeroTrust` to true",
                ns = gw.common.namespace,
                gw = facts.gateway.name,
                login = n.login,
                deny = n.require_jwt,
            ),
        ));
    }
    check_root_namespace(ctx, f);
    if gw.gateway.namespace.is_some() && !gw.gateway.tls.match_sni {
        // Istio intersects a VirtualService's hosts with the server's
        // (istio/istio master 86c9f01 pilot/pkg/networking/core/gateway.go:455):
        // with a `*` server, meshgen's routes (host `gateway.hostname`) get
        // a virtual host of their own, which Envoy prefers to the `*` one of
        // Kubeflow's VirtualServices (`hosts: ["*"]`) for that host.
        f.warnings.push(ctx.warning(Code::MatchSniOff,
            base.key("gateway").key("tls").key("matchSNI"),
            format!("with the Gateway in a namespace of its own (`{GW}.gateway.namespace`) for apps you do not render, keep it true: with false the server's hosts are `*`, and meshgen's own routes on `{}` shadow every VirtualService of those apps written for `hosts: [\"*\"]` (Kubeflow's), which then answer 404", facts.gateway.hostname),
        ));
    }
    if gw.gateway.wildcard_host {
        check_wildcard_host(ctx, f);
    }
    super::auth::check_apps(config, facts, ctx.values, ctx.sources, &mut f.errors);
    check_additional(ctx, f);
    warn_namespace_wide_app_policies(ctx, f);
    if facts.gateway.gateway_api {
        check_gateway_api(ctx, f);
    }
}

/// The settings of one gateway (`v`, with its facts `facts`), each error
/// at its key under `v.path`: TLS as deployKF requires it, ports that
/// differ and are free in the gateway pod, autoscaling bounds, a name
/// short enough for the names derived from it.
fn check_one(ctx: &Ctx, f: &mut Findings, v: &crate::facts::GatewayView, facts: &GatewayFacts) {
    let gw = &v.component;
    let at = |key: &str| v.at(key);
    let mut fail = |path: ValuePath, message: String| f.errors.push(ctx.error(path, message));
    if !gw.gateway.tls.enabled {
        fail(
            at("gateway.tls.enabled"),
            format!(
                "must be true (TIP: to allow HTTP connections on the gateway, set `{}` to false)",
                at("gateway.tls.redirect")
            ),
        );
    }
    if gw.gateway.tls.redirect && !gw.gateway.tls.clients_use_https {
        fail(
            at("gateway.tls.clientsUseHttps"),
            format!(
                "must be true when `{}` is true (redirecting to HTTPS makes clients use HTTPS)",
                at("gateway.tls.redirect")
            ),
        );
    }
    if !gw.gateway.tls.redirect && gw.gateway.enable_proxy_protocol {
        fail(
            at("gateway.enableProxyProtocol"),
            format!("can not be true while `{r}` is false: the HTTP listener relays each request to the gateway's own HTTPS listener over a new connection without a PROXY header, and the HTTPS listener (which expects one on every connection) drops it (TIP: set `{r}` to true, or turn the PROXY protocol off and keep the client address with `{x}`)", r = at("gateway.tls.redirect"), x = at("gateway.xffNumTrustedHops")),
        );
    }
    let ports = gw.gateway.ports;
    if ports.http == ports.https {
        fail(
            at("gateway.ports.https"),
            format!(
                "must differ from `{}` (both are {})",
                at("gateway.ports.http"),
                ports.http
            ),
        );
    }
    for (name, port) in [("http", ports.http), ("https", ports.https)] {
        if let Some((_, what)) = ISTIO_RESERVED_PORTS.iter().find(|(p, _)| *p == port) {
            fail(
                at(&format!("gateway.ports.{name}")),
                format!("port {port} is reserved by the Istio proxy ({what}); choose another port"),
            );
        }
    }
    let (public_http, public_https) = (facts.public_http_port, facts.public_https_port);
    if public_http == public_https && ports.http != ports.https {
        fail(
            at("gatewayService.ports.https"),
            format!("the public HTTP and HTTPS ports are both {public_http}; set `{}` to two different ports", at("gatewayService.ports")),
        );
    }
    // With a label selector (the Istio API's Gateway), istiod listens
    // for a server whose port equals any port of a Service selecting the
    // gateway pods on that Service port's targetPort (istio/istio
    // 1.30.3 `pilot/pkg/model/gateway.go:482-507` `resolvePorts`, the
    // first match): a pod port equal to the other listener's Service
    // port moves this server onto the other's pod port.
    if !facts.gateway_api {
        for (name, pod, other, service) in [
            ("http", ports.http, "https", public_https),
            ("https", ports.https, "http", public_http),
        ] {
            if pod == service && ports.http != ports.https {
                fail(
                    at(&format!("gateway.ports.{name}")),
                    format!("{pod} is also the gateway Service's {other} port (`{}`): istiod would serve this {name} Gateway server on that Service port's targetPort, the {other} pod port, instead (istio/istio pilot/pkg/model/gateway.go resolvePorts); choose a pod port that is no other Service port", at(&format!("gatewayService.ports.{other}"))),
                );
            }
        }
    }
    let auto = &gw.gateway_deployment.autoscaling;
    if auto.min_replicas > auto.max_replicas {
        fail(
            at("gatewayDeployment.autoscaling.minReplicas"),
            format!(
                "must not exceed `{}` ({} > {})",
                at("gatewayDeployment.autoscaling.maxReplicas"),
                auto.min_replicas,
                auto.max_replicas
            ),
        );
    }
    let longest = facts.names.longest();
    if longest.len() > MAX_NAME {
        let max = MAX_NAME - (longest.len() - gw.gateway.name.len());
        fail(
            at("gateway.name"),
            format!(
                "must be at most {max} characters (meshgen derives longer names from it), got {}",
                gw.gateway.name.len()
            ),
        );
    }
}

/// Istio's root namespace (its install namespace, `istio.namespace`):
/// a policy there without a selector applies to every workload of the
/// mesh (istio/istio `pilot/pkg/model/authorization.go`
/// `ListAuthorizationPolicies` and `pilot/pkg/model/policyattachment.go`
/// read the root namespace's policies for every proxy; a PeerAuthentication
/// there is mesh-wide, `pilot/pkg/security/authn/policy_applier.go`). The
/// gateway namespace may be it (Kubeflow's layout: `istio-system`), but
/// then `namespaceZeroTrust` (`allow-nothing` and STRICT mTLS, namespace
/// wide) would deny and require mTLS across the whole mesh: it defaults to
/// off there and `true` is refused; mesh-wide STRICT mTLS is the opt-in
/// `deploykf_dependencies.istio.meshWideStrictMtls` (its own
/// PeerAuthentication), and a mesh-wide `allow-nothing` meshgen never
/// renders (issue 27, point 3).
/// The login's namespace always gets both, so it may not be the root.
fn check_root_namespace(ctx: &Ctx, f: &mut Findings) {
    let config = ctx.config;
    let root = &config.deploykf_dependencies.istio.common.namespace;
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let opt_in = "deploykf_dependencies.istio.meshWideStrictMtls";
    if gw.common.namespace == *root && gw.namespace_zero_trust == Some(true) {
        f.errors.push(ctx.error(
            ValuePath::keys(GW).key("namespaceZeroTrust"),
            format!("the gateway namespace `{root}` is Istio's root namespace, where a namespace-wide `allow-nothing` AuthorizationPolicy and a STRICT PeerAuthentication apply to every workload of the mesh; set it to null or false (meshgen then renders only the policies that select the gateway pods); for STRICT mTLS across the mesh, opt in with `{opt_in}: true`"),
        ));
    }
    if gw.common.namespace == *root && gw.namespace_pod_security.is_some() {
        f.errors.push(ctx.error(
            ValuePath::keys(GW).key("namespacePodSecurity"),
            format!("the gateway namespace `{root}` is Istio's namespace, whose Namespace object meshgen does not render (Istio's release or your Istio install creates it), so there is nothing to label; set it to null, and label `{root}` where it is created (with istio-cni or ambient its DaemonSets need the level \"privileged\" there)"),
        ));
    }
    let auth = &config.deploykf_core.deploykf_auth;
    if auth.common.enabled && auth.common.namespace == *root {
        f.errors.push(ctx.error(
            ValuePath::keys("deploykf_core.deploykf_auth").key("namespace"),
            format!("`{root}` is Istio's root namespace: the login's namespace-wide `allow-nothing` AuthorizationPolicy and STRICT PeerAuthentication would apply to every workload of the mesh; choose a namespace of its own (the default is `deploykf-auth`)"),
        ));
    }
}

/// `gateway.wildcardHost` (issue 27): `*.<hostname>` on the HTTPS server,
/// for KServe's host-based URLs, and tenants' VirtualServices admitted on
/// `<their name>-<their namespace>.<hostname>`
/// (`model::tenant_routes`).
fn check_wildcard_host(ctx: &Ctx, f: &mut Findings) {
    let config = ctx.config;
    let facts = ctx.facts;
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let key = ValuePath::keys(GW).key("gateway").key("wildcardHost");
    let host = &facts.gateway.hostname;
    if facts.gateway.gateway_api {
        f.errors.push(ctx.error(
            key.clone(),
            format!("must be false with {} set to \"gateway-api\": its listeners admit routes of the gateway namespace only, so KServe's VirtualServices (in each inference service's namespace) could not bind it; use \"istio\"", ctx.located(&ValuePath::keys(GW).key("api"))),
        ));
    }
    if let Some((i, app)) = gw
        .apps
        .iter()
        .enumerate()
        .find(|(_, a)| a.subdomain.is_some())
    {
        f.errors.push(ctx.error(
            key.clone(),
            format!(
                "must be false while an app is served on a subdomain (`{GW}.apps[{i}].subdomain`, app `{}`): the login cookie is then scoped to `{host}` and sent to every name under it (RFC 6265 5.1.3), so a tenant's inference service at `<name>-<namespace>.{host}` would receive every user's session; serve KServe on a gateway of its own, or the app under a path",
                app.name
            ),
        ));
    }
    if !facts.gateway.certificate_managed {
        f.warnings.push(ctx.warning(Code::KserveWildcard,
            key.clone(),
            format!("your certificate Secret `{}` (`{GW}.gateway.tls.credentialName`) must name `*.{host}` too, or clients refuse KServe's host-based URLs", facts.gateway.tls_credential_name),
        ));
    }
    f.warnings.push(ctx.warning(Code::KserveWildcard,
        key.clone(),
        format!(
            "KServe builds host-based URLs from its own settings, which meshgen does not render: set `ingressDomain` to \"{host}\" and `ingressGateway` to \"{}\" in the `ingress` key of ConfigMap `inferenceservice-config` (KServe's namespace; Kubeflow 26.03 ships `ingressDomain: example.com`), or its inference services get hosts this Gateway does not serve",
            facts.gateway.reference
        ),
    ));
    // `<name>-<namespace>` is ambiguous when one profile namespace ends
    // with `-` and another's name: `b-c` in `a` and `b` in `c-a` are both
    // `b-c-a.<hostname>`, and the admission rule would admit both
    // VirtualServices.
    let pg = &config.deploykf_core.deploykf_profiles_generator;
    if !pg.enabled {
        return;
    }
    let prefix = &pg.profile_defaults.profile_name_prefix;
    let namespaces: std::collections::HashSet<String> = pg
        .profiles
        .iter()
        .map(|p| format!("{prefix}{}", p.name))
        .collect();
    for (i, p) in pg.profiles.iter().enumerate() {
        let ns = format!("{prefix}{}", p.name);
        let shorter = ns
            .match_indices('-')
            .map(|(at, _)| &ns[at + 1..])
            .find(|rest| namespaces.contains(*rest));
        if let Some(other) = shorter {
            f.errors.push(ctx.error(
                ValuePath::keys("deploykf_core.deploykf_profiles_generator")
                    .key("profiles")
                    .index(i)
                    .key("name"),
                format!(
                    "namespace `{ns}` ends with `-{other}`, another profile's namespace: with {} KServe names inference service `x` of `{ns}` and `x-{head}` of `{other}` both `x-{ns}.{host}`, and the VirtualService of either namespace would be admitted for the other's; rename one",
                    ctx.located(&key),
                    head = &ns[..ns.len() - other.len() - 1],
                ),
            ));
        }
    }
}

/// Most listeners a Gateway may have (kubernetes-sigs/gateway-api v1.5.1
/// `apis/v1/gateway_types.go:237`, `Listeners` `MaxItems=64`).
const MAX_LISTENERS: usize = 64;

/// `api: gateway-api`: what the Gateway API's standard channel can not
/// express, and what Istio needs to attach policies to the gateway pods.
fn check_gateway_api(ctx: &Ctx, f: &mut Findings) {
    use crate::facts::GATEWAY_NAME_LABEL;
    let gw = &ctx.config.deploykf_core.deploykf_istio_gateway;
    let api = format!("`{GW}.api` is gateway-api");
    for (i, app) in gw.apps.iter().enumerate() {
        let at = |key: &str| ValuePath::keys(GW).key("apps").index(i).key(key);
        if app.retries.is_some() {
            // HTTPRoute `retry` (GEP-1731) is experimental: it is not in
            // the standard channel meshgen installs (kubernetes-sigs/
            // gateway-api v1.5.1 `apis/v1/httproute_types.go:313-314`,
            // `<gateway:experimental>`), so a cluster with the standard
            // CRDs refuses it.
            f.errors.push(ctx.error(
                at("retries"),
                format!("{api}, and the Gateway API has retries only in its experimental channel (HTTPRoute `retry`), which meshgen does not install; remove `retries` (Istio's default retry policy applies), or set `{GW}.api` to istio"),
            ));
        }
        if let Some(t) = &app.timeout {
            if let Err(why) = crate::facts::gateway_api_duration(t) {
                f.errors.push(ctx.error(
                    at("timeout"),
                    format!("{api}, and this timeout has no Gateway API form: {why}; write it in whole milliseconds, e.g. 1s500ms or 1500ms"),
                ));
            }
        }
    }
    if let Some(ns) = gw
        .gateway
        .namespace
        .as_ref()
        .filter(|ns| **ns != gw.common.namespace)
    {
        // A Gateway API Gateway's policies attach by `targetRefs` only in
        // the Gateway's own namespace (istio 1.30.3
        // `pilot/pkg/model/policyattachment.go:185-197`), and its pods are
        // deployed beside it.
        f.errors.push(ctx.error(
            ValuePath::keys(GW).key("gateway").key("namespace"),
            format!("{api}: the Gateway must be in the gateway namespace `{}` (its policies attach by `targetRefs` in its own namespace only), got `{ns}`; set it to null, or set `{GW}.api` to istio", gw.common.namespace),
        ));
    }
    let labels = &gw.gateway.selector_labels;
    let name = &gw.gateway.name;
    match labels.get(GATEWAY_NAME_LABEL) {
        Some(v) if v != name => f.errors.push(ctx.error(
            ValuePath::keys(GW).key("gateway").key("selectorLabels"),
            format!("{api}: label `{GATEWAY_NAME_LABEL}` must be the Gateway's name `{name}` (Istio attaches the gateway's policies to pods whose label names their Gateway), got `{v}`"),
        )),
        None if !gw.charts.istio_gateway.enabled => f.errors.push(
            // Located at the labels as written (the map's own origin is
            // the defaults file, which sets it first).
            crate::diagnostic::Diagnostic::error(Code::Rule, format!("{api} and the gateway Deployment is yours (`{GW}.charts.istioGateway.enabled` is false): your gateway pods must carry the label `{GATEWAY_NAME_LABEL}: {name}`, and these labels must include it, or Istio attaches none of the gateway's policies (login, token checks) to them (istio/istio pilot/pkg/model/policyattachment.go: a policy with targetRefs is ignored on a pod without that label)"))
            .at(labels.keys().next().and_then(|k| {
                let at = ValuePath::keys(GW).key("gateway").key("selectorLabels").key(k);
                ctx.values.origin_of(&at)
            }))
            .at_path(ValuePath::keys(GW).key("gateway").key("selectorLabels")),
        ),
        _ => {}
    }
    let subdomain_apps = gw.apps.iter().filter(|a| a.subdomain.is_some()).count();
    if gw.gateway.tls.match_sni && subdomain_apps + 2 > MAX_LISTENERS {
        f.errors.push(ctx.error(
            ValuePath::keys(GW).key("apps"),
            format!("{api}: the Gateway gets one HTTPS listener per subdomain app, and {subdomain_apps} subdomain apps need {} listeners (with the main host and HTTP), more than the Gateway API's {MAX_LISTENERS}; serve some apps on a path, or set `{GW}.gateway.tls.matchSNI` to false", subdomain_apps + 2),
        ));
    }
    let g = &gw.gateway;
    if gw.charts.istio_gateway.enabled
        && (g.xff_num_trusted_hops > 0 || g.enable_proxy_protocol)
        && gw
            .gateway_deployment
            .pod_annotations
            .contains_key("proxy.istio.io/config")
    {
        f.errors.push(ctx.error(
            ValuePath::keys(GW)
                .key("gatewayDeployment")
                .key("podAnnotations")
                .key("proxy.istio.io/config"),
            format!("{api}: meshgen sets this annotation to the gateway's `gatewayTopology` (`{GW}.gateway.xffNumTrustedHops`, `{GW}.gateway.enableProxyProtocol`); remove yours, or put those settings in it and set both keys to their defaults"),
        ));
    }
}

/// An app without `selector` gets a namespace-wide ALLOW policy. In a
/// namespace meshgen does not own, that policy is the first ALLOW there
/// and turns the whole namespace deny-by-default (istio/istio
/// `pilot/pkg/security/authz/builder/builder.go` turns ALLOW policies into
/// one Envoy RBAC filter with action ALLOW, and Envoy's RBAC engine denies
/// a request no policy of an ALLOW filter matches), cutting off every
/// other workload's callers.
fn warn_namespace_wide_app_policies(ctx: &Ctx, f: &mut Findings) {
    let config = ctx.config;
    let owned = owned_namespaces(config);
    for (i, app) in config
        .deploykf_core
        .deploykf_istio_gateway
        .apps
        .iter()
        .enumerate()
    {
        if app.selector.is_none() && !owned.contains(&app.namespace) {
            let path = ValuePath::keys(GW).key("apps").index(i);
            f.warnings.push(
                crate::diagnostic::Diagnostic::warning(Code::AppWithoutSelector, format!(
                    "app `{}` has no `selector`: its AuthorizationPolicy applies to every workload in namespace `{}`, which then refuses all traffic no ALLOW policy there names (other workloads in it lose their callers); set `selector` to the labels of the app's pods",
                    app.name, app.namespace
                ))
                .at(ctx.values.origin_of(&path))
                .at_path(path),
            );
        }
    }
}

/// Namespaces whose policies meshgen renders in full (each has its
/// deny-by-default policy already): the gateway's, the login's and the
/// profiles'.
fn owned_namespaces(config: &crate::config::Config) -> Vec<String> {
    let core = &config.deploykf_core;
    let mut owned = vec![core.deploykf_istio_gateway.common.namespace.clone()];
    if core.deploykf_auth.common.enabled {
        owned.push(core.deploykf_auth.common.namespace.clone());
    }
    let pg = &core.deploykf_profiles_generator;
    if pg.enabled {
        let prefix = &pg.profile_defaults.profile_name_prefix;
        owned.extend(pg.profiles.iter().map(|p| format!("{prefix}{}", p.name)));
    }
    owned
}

/// `additionalGateways` with the keys left out taken from the primary
/// gateway (see `config::GatewayComponent::additional_gateways`), before
/// the typed config is read; `None` when there are none. A key an item
/// sets wins, map by map; lists and scalars are replaced whole.
pub fn inherit(json: &Value) -> Option<Value> {
    let primary = json.pointer("/deploykf_core/deploykf_istio_gateway")?;
    let items = primary.get("additionalGateways")?.as_array()?;
    if items.is_empty() {
        return None;
    }
    let mut out = json.clone();
    let mut inherited = Vec::with_capacity(items.len());
    for item in items {
        let Some(own) = item.as_object() else {
            inherited.push(item.clone());
            continue;
        };
        let mut item = Value::Object(own.clone());
        let name = item
            .pointer("/gateway/name")
            .and_then(Value::as_str)
            .map(str::to_string);
        for (key, own_keys) in [
            (
                "gateway",
                &[
                    "name",
                    "hostname",
                    "namespace",
                    "wildcardHost",
                    "selectorLabels",
                ][..],
            ),
            ("gatewayService", &["name", "annotations", "loadBalancerIP"]),
            ("gatewayDeployment", &[]),
        ] {
            let mut base = primary.get(key).cloned().unwrap_or(Value::Null);
            if let Some(b) = base.as_object_mut() {
                for k in own_keys {
                    b.remove(*k);
                }
                if key == "gateway" {
                    if let Some(tls) = b.get_mut("tls").and_then(Value::as_object_mut) {
                        tls.remove("credentialName");
                    }
                }
                if key == "gatewayDeployment" {
                    if let Some(sa) = b.get_mut("serviceAccount").and_then(Value::as_object_mut) {
                        sa.remove("name");
                        sa.remove("annotations");
                    }
                }
            }
            let slot = item
                .as_object_mut()
                .map(|o| o.entry(key).or_insert(Value::Null));
            if let Some(slot) = slot {
                let mut merged = base;
                overlay(&mut merged, slot.take());
                *slot = merged;
            }
        }
        // The names of its objects, from its own name.
        if let Some(name) = name {
            let defaults = [
                (
                    "/gateway",
                    "selectorLabels",
                    json!({"app": name, "istio": name}),
                ),
                ("/gatewayService", "name", json!(name)),
                ("/gatewayService", "loadBalancerIP", json!("")),
                ("/gatewayDeployment/serviceAccount", "name", json!(name)),
            ];
            for (at, key, value) in defaults {
                if let Some(o) = item.pointer_mut(at).and_then(Value::as_object_mut) {
                    o.entry(key).or_insert(value);
                }
            }
        }
        inherited.push(item);
    }
    if let Some(slot) = out.pointer_mut("/deploykf_core/deploykf_istio_gateway/additionalGateways")
    {
        *slot = Value::Array(inherited);
    }
    Some(out)
}

/// `top` over `base`, map by map (`null` in `top` keeps `base`).
fn overlay(base: &mut Value, top: Value) {
    match (base, top) {
        (_, Value::Null) => {}
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                overlay(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, t) => *b = t,
    }
}

/// The rules of `additionalGateways`: each one's own settings as the
/// primary's are checked, and nothing two gateways would share: the
/// Gateway, Deployment, Service and ServiceAccount names, host names
/// (an app's subdomain host included), a fixed load balancer address with
/// a port on it, app names (the objects they name live in one
/// namespace), and pod labels one of which selects the other's pods.
/// Each error names both keys.
pub fn check_additional(ctx: &Ctx, f: &mut Findings) {
    use crate::config::{AppAuth, GatewayAuth};
    let gw = &ctx.config.deploykf_core.deploykf_istio_gateway;
    if gw.additional_gateways.is_empty() {
        return;
    }
    let views = crate::facts::gateways(ctx.config);
    let at = |v: &crate::facts::GatewayView, key: &str| v.at(key);
    let err = |f: &mut Findings, path: ValuePath, message: String| {
        f.errors.push(ctx.error(path, message));
    };
    for v in views.iter().filter(|v| v.index.is_some()) {
        let c = &v.component;
        if v.auth == GatewayAuth::None {
            for (i, app) in c.apps.iter().enumerate() {
                if app.auth != AppAuth::None {
                    err(
                        f,
                        v.path.key("apps").index(i).key("auth"),
                        format!("must be none: app `{}` is behind a gateway with `{}` none, which verifies no identity (set the app's auth to none, or the gateway's auth to login or token)", app.name, at(v, "auth")),
                    );
                }
            }
        }
        if v.auth != GatewayAuth::None && !ctx.config.deploykf_core.deploykf_auth.common.enabled {
            err(
                f,
                at(v, "auth"),
                format!("is {} while `deploykf_core.deploykf_auth.enabled` is false: no issuer verifies its users; set it to none", v.auth.as_str()),
            );
        }
    }
    // Nothing shared between two gateways.
    type Key = (&'static str, String, ValuePath);
    let mut seen: Vec<Key> = Vec::new();
    for v in &views {
        let c = &v.component;
        let mut keys: Vec<Key> = vec![
            ("name", c.gateway.name.clone(), at(v, "gateway.name")),
            (
                "Service name",
                c.gateway_service.name.clone(),
                at(v, "gatewayService.name"),
            ),
            (
                "ServiceAccount name",
                c.gateway_deployment.service_account.name.clone(),
                at(v, "gatewayDeployment.serviceAccount.name"),
            ),
            (
                "host name",
                c.gateway.hostname.clone(),
                at(v, "gateway.hostname"),
            ),
        ];
        for (i, app) in c.apps.iter().enumerate() {
            let app_at = v.path.key("apps").index(i);
            keys.push(("app name", app.name.clone(), app_at.key("name")));
            if let Some(s) = &app.subdomain {
                keys.push((
                    "host name",
                    format!("{s}.{}", c.gateway.hostname),
                    app_at.key("subdomain"),
                ));
            }
        }
        let s = &c.gateway_service;
        if !s.load_balancer_ip.is_empty() {
            let (http, https) = crate::facts::public_ports_of(c);
            for (name, port) in [("http", http), ("https", https)] {
                keys.push((
                    "load balancer address and port",
                    format!("{}:{port}", s.load_balancer_ip),
                    at(v, &format!("gatewayService.ports.{name}")),
                ));
            }
        }
        for (what, value, path) in keys {
            let other = seen.iter().find(|(w, val, p)| {
                *w == what && *val == value && (v.index.is_some() || !same_gateway(p, &v.path))
            });
            if let Some((_, _, first)) = other {
                err(
                    f,
                    path,
                    format!(
                        "{what} `{value}` is also {}: two gateways may not share it",
                        ctx.located(first)
                    ),
                );
                continue;
            }
            seen.push((what, value, path));
        }
    }
    // Pod labels: a gateway's policies, Service and Gateway select its
    // pods by `gateway.selectorLabels` (every label must match: istio/istio
    // master 86c9f01 `pkg/config/labels/instance.go:60-72` `SubsetOf`), so
    // one gateway's labels
    // inside another's would select both gateways' pods.
    for (j, b) in views.iter().enumerate().skip(1) {
        let lb = &b.component.gateway.selector_labels;
        for a in &views[..j] {
            let la = &a.component.gateway.selector_labels;
            let within = |x: &crate::config::StringMap, y: &crate::config::StringMap| {
                x.iter().all(|(k, v)| y.get(k) == Some(v))
            };
            if within(la, lb) || within(lb, la) {
                err(
                    f,
                    at(b, "gateway.selectorLabels"),
                    format!(
                        "select the pods of {} too (one set of labels holds the other): each gateway's policies and Service would apply to both; give each gateway labels of its own",
                        ctx.located(&at(a, "gateway.selectorLabels"))
                    ),
                );
            }
        }
    }
}

/// Whether `path` is a key of the gateway at `gateway` (the primary's
/// keys are a prefix of every additional one's, so that one is told by
/// `additionalGateways`).
fn same_gateway(path: &ValuePath, gateway: &ValuePath) -> bool {
    use crate::values::path::Segment;
    let additional = |p: &ValuePath| {
        p.0.iter()
            .position(|s| *s == Segment::Key("additionalGateways".into()))
            .and_then(|i| match p.0.get(i + 1) {
                Some(Segment::Index(n)) => Some(*n),
                _ => None,
            })
    };
    path.starts_with(gateway) && additional(path) == additional(gateway)
}

#[cfg(test)]
mod tests {
    /// Every key the gateway rules name through `GatewayView::at` (a
    /// literal `at("...")`, or the literal head of `at(&format!("...{x}"))`)
    /// is a key of the gateway's section in the schema: a misspelt one
    /// fails here rather than losing its location silently.
    #[test]
    fn every_key_named_through_a_gateway_view_exists() {
        let schema = crate::schema::derive::derived();
        let section =
            &schema["properties"]["deploykf_core"]["properties"]["deploykf_istio_gateway"];
        let source = include_str!("gateway.rs");
        let start = source.find("fn check_one(").unwrap_or(0);
        let one = &source[start..start + source[start..].find("\n}\n").unwrap_or(0)];
        let mut keys = Vec::new();
        let patterns = [
            (one, "at(\"", '"'),
            (one, "at(&format!(\"", '{'),
            (source, "at(v, \"", '"'),
            (source, "at(v, &format!(\"", '{'),
        ];
        for (text, open, close) in patterns {
            for (i, _) in text.match_indices(open) {
                let rest = &text[i + open.len()..];
                if let Some(end) = rest.find(close) {
                    keys.push(rest[..end].trim_end_matches('.').to_string());
                }
            }
        }
        assert!(keys.len() > 10, "found only {keys:?}");
        let item = &section["properties"]["additionalGateways"]["items"];
        for key in keys {
            let found = |mut node: &serde_json::Value| {
                for k in key.split('.') {
                    node = &node["properties"][k];
                }
                node.is_object()
            };
            assert!(
                found(section) || found(item),
                "`{key}` is no key of a gateway"
            );
        }
    }
}

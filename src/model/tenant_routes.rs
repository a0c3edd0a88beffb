//! The admission rule that keeps tenants' VirtualServices on the platform
//! Gateway inside their own namespace's paths (issue 28, point 1): the
//! CEL of `ValidatingAdmissionPolicy/<gateway>-tenant-routes`, built as
//! text from the gateway's facts. It is a rule of its own, beside the
//! identity-header policy, and changes nothing else of the gateway model.
//!
//! Why: istiod appends the routes of every VirtualService bound to a
//! Gateway host (istio/istio 1.30.3 `pilot/pkg/networking/core/gateway.go`
//! 490-491) and then moves catch-all `/` routes last
//! (`pilot/pkg/networking/core/route/route.go` 1621-1631
//! `SortVHostRoutes`). So a profile's VirtualService matching `/api/` on
//! the platform host took every user's dashboard requests to `/api/...`,
//! with the forwarded ID token.

use crate::config::Config;
use crate::facts::GatewayFacts;
use serde::Serialize;

/// Path prefixes Kubeflow's controllers give a namespace's own
/// VirtualServices, each followed by `<namespace>/`:
/// - `/notebook/`: the notebook controller, `/notebook/<ns>/<name>/`
///   (kubeflow/kubeflow v1.9.2
///   `components/notebook-controller/controllers/notebook_controller.go:475`);
/// - `/tensorboard/`: the tensorboard controller, `/tensorboard/<ns>/<name>/`
///   (`components/tensorboard-controller/controllers/tensorboard_controller.go:322`);
/// - `/pvcviewers/`: the PVC viewer controller,
///   `<basePrefix>/<ns>/<name>/` (`components/pvcviewer-controller/controllers/pvcviewer_controller.go:276`),
///   with the volumes web app's `basePrefix: /pvcviewers`
///   (kubeflow/manifests, built `volumes-web-app.yaml`, `/pvcviewers/$NAMESPACE/$NAME/`);
/// - `/serving/`: KServe's path-based routes, `pathTemplate:
///   /serving/{{ .Namespace }}/{{ .Name }}` (kubeflow/manifests, built
///   `kserve.yaml`, `inferenceservice-config` `ingress`).
pub const KUBEFLOW_NAMESPACE_PREFIXES: &[&str] =
    &["/notebook/", "/pvcviewers/", "/serving/", "/tensorboard/"];

/// What the template writes: each CEL expression, and the namespaces the
/// binding leaves out.
#[derive(Debug, Clone, Serialize)]
pub struct TenantRouteGuard {
    pub name: String,
    /// `(name, expression)` of `spec.variables`, in order.
    pub variables: Vec<(String, String)>,
    /// `(expression, message)` of `spec.validations`.
    pub validations: Vec<(String, String)>,
    /// meshgen's own namespaces: the enabled components', sorted.
    pub exempt_namespaces: Vec<String>,
    /// The prefixes as documentation writes them (`/notebook/<namespace>/`).
    pub prefixes: Vec<String>,
}

fn cel_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

/// The rule for the Istio API's Gateway; `None` under the Gateway API,
/// whose listeners admit routes of the gateway's namespace only.
pub fn guard(config: &Config, gw: &GatewayFacts) -> Option<TenantRouteGuard> {
    if gw.gateway_api {
        return None;
    }
    // The Gateway object's namespace (`gateway.namespace`, e.g. Kubeflow's
    // `kubeflow/kubeflow-gateway`), which VirtualServices name, not the
    // pods'.
    let (ns, name) = (&gw.object_namespace, &gw.name);
    // The names a VirtualService outside the gateway's namespace binds
    // this Gateway by: `ns/name`, or the legacy `name.ns` and
    // `name.ns.<anything>` (istio/istio 1.30.3 `pilot/pkg/model/config.go`
    // 233-262 `resolveGatewayName`; a short name is the VirtualService's
    // own namespace).
    let gateways = cel_list(&[format!("{ns}/{name}"), format!("{name}.{ns}")]);
    let fqdn = serde_json::to_string(&format!("{name}.{ns}.")).unwrap_or_default();
    let hosts = cel_list(&[gw.hostname.to_ascii_lowercase(), "*".into()]);
    let bases: Vec<String> = KUBEFLOW_NAMESPACE_PREFIXES
        .iter()
        .map(|p| p.to_string())
        .collect();
    let names_gateway =
        "(g in variables.platformGateways || g.startsWith(variables.platformGatewayFqdn))";
    let bound = format!(
        "(has(object.spec.gateways) && object.spec.gateways.exists(g, {names_gateway})) || (has(object.spec.http) && object.spec.http.exists(r, has(r.match) && r.match.exists(m, has(m.gateways) && m.gateways.exists(g, {names_gateway}))))"
    );
    let under = |field: &str| {
        format!("(has(m.uri.{field}) && variables.tenantPrefixes.exists(p, m.uri.{field}.startsWith(p)))")
    };
    let wildcard = config
        .deploykf_core
        .deploykf_istio_gateway
        .gateway
        .wildcard_host;
    let host = gw.hostname.to_ascii_lowercase();
    // meshgen's namespaces, and the one holding the Gateway object: the
    // platform's (with the Kubeflow preset, `kubeflow`, where Kubeflow's
    // own apps bind it for `/`, `/jupyter/`, ...).
    let mut exempt: Vec<String> = crate::registry::ALL
        .iter()
        .filter(|d| (d.enabled)(config))
        .filter_map(|d| (d.namespace)(config))
        .filter(|n| !n.is_empty())
        .chain(std::iter::once(gw.object_namespace.clone()))
        .collect();
    exempt.sort();
    exempt.dedup();
    let shown: Vec<String> = KUBEFLOW_NAMESPACE_PREFIXES
        .iter()
        .map(|p| format!("{p}<namespace>/"))
        .collect();
    let prefixes = shown.join(", ");
    let mut variables = vec![
        ("platformGateways".into(), gateways),
        ("platformGatewayFqdn".into(), fqdn),
        ("tenantHosts".into(), hosts),
        ("tenantPrefixBases".into(), cel_list(&bases)),
        (
            "tenantPrefixes".into(),
            "variables.tenantPrefixBases.map(p, p + object.metadata.namespace + \"/\")".into(),
        ),
        ("bound".into(), bound),
    ];
    // `gateway.wildcardHost`: KServe's VirtualService for an
    // InferenceService, named after it in its namespace (kserve/kserve
    // v0.16.0 pkg/controller/v1beta1/inferenceservice/reconcilers/ingress/
    // ingress_reconciler.go:682-692), names the hosts
    // `<name>.<namespace>.svc.cluster.local`, `<name>-<namespace>.<ingressDomain>`
    // (the domainTemplate of Kubeflow's inferenceservice-config) and, for
    // path-based URLs, the ingressDomain itself (:503-505,562-565,661), and
    // matches its host-based routes by authority only, with the regex
    // `constants.HostRegExp` writes (pkg/constants/constants.go:696-713:
    // `^` + QuoteMeta(host) + `(?::\d{1,5})?$`, :378-409). Its matches for
    // the local gateway and `mesh` name those gateways (:395).
    let (host_rule, host_message, match_rule) = if wildcard {
        variables.push((
            "tenantHost".into(),
            format!(
                "object.metadata.name + \"-\" + object.metadata.namespace + {}",
                serde_json::to_string(&format!(".{host}")).unwrap_or_default()
            ),
        ));
        variables.push((
            "tenantAuthority".into(),
            format!(
                "\"^\" + object.metadata.name + \"-\" + object.metadata.namespace + {}",
                serde_json::to_string(&format!(
                    "{}(?::\\d{{1,5}})?$",
                    regex_quote(&format!(".{host}"))
                ))
                .unwrap_or_default()
            ),
        ));
        variables.push((
            "localHostSuffix".into(),
            "\".\" + object.metadata.namespace + \".svc.cluster.local\"".into(),
        ));
        (
            "h.lowerAscii() in variables.tenantHosts || h.lowerAscii() == variables.tenantHost || h.lowerAscii().endsWith(variables.localHostSuffix)",
            format!(" and (`gateway.wildcardHost`) <its name>-<its namespace>.{} and <name>.<its namespace>.svc.cluster.local", gw.hostname),
            format!(" || (has(m.authority) && has(m.authority.regex) && m.authority.regex == variables.tenantAuthority) || (has(m.gateways) && !m.gateways.exists(g, {names_gateway}))"),
        )
    } else {
        (
            "h.lowerAscii() in variables.tenantHosts",
            String::new(),
            String::new(),
        )
    };
    Some(TenantRouteGuard {
        name: gw.names.tenant_routes.clone(),
        variables,
        validations: vec![
            (
                format!("!variables.bound || !has(object.spec.hosts) || object.spec.hosts.all(h, {host_rule})"),
                format!("a VirtualService outside meshgen's namespaces bound to the Gateway {ns}/{name} may name only the hosts {} and *{host_message}", gw.hostname),
            ),
            (
                "!variables.bound || ((!has(object.spec.tcp) || size(object.spec.tcp) == 0) && (!has(object.spec.tls) || size(object.spec.tls) == 0))".into(),
                format!("a VirtualService outside meshgen's namespaces bound to the Gateway {ns}/{name} may have HTTP routes only"),
            ),
            (
                {
                    let paths = format!("has(m.uri) && ({} || {})", under("prefix"), under("exact"));
                    let each = if match_rule.is_empty() { paths } else { format!("({paths}){match_rule}") };
                    format!("!variables.bound || !has(object.spec.http) || object.spec.http.all(r, has(r.match) && size(r.match) > 0 && r.match.all(m, {each}))")
                },
                format!("a VirtualService outside meshgen's namespaces bound to the Gateway {ns}/{name} may route only paths under its own namespace's prefixes ({prefixes}): every route needs a uri prefix or exact match there{}", if wildcard { ", or the authority of its own host (`gateway.wildcardHost`)" } else { "" }),
            ),
        ],
        exempt_namespaces: exempt,
        prefixes: shown,
    })
}

/// `s` as Go's `regexp.QuoteMeta` writes it: every byte of
/// `\.+*?()|[]{}^$` escaped (golang/go src/regexp/regexp.go `special`).
fn regex_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn regex_quote_is_go_quote_meta() {
        assert_eq!(
            super::regex_quote(".a-b.example.com"),
            "\\.a-b\\.example\\.com"
        );
        assert_eq!(super::regex_quote("a+b(c)"), "a\\+b\\(c\\)");
    }
}

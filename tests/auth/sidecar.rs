//! The destination side of the request model: a request at a
//! workload's sidecar, after the gateway or another pod sent it.

use super::*;

// Destination side: a request at a workload's sidecar (inbound), after the
// gateway or another pod sent it. Semantics modelled, with their source
// (istio/istio at the fetched HEAD):
// - PeerAuthentication: the workload's own (selector) policy wins over the
//   namespace's, which wins over the root namespace's
//   (`pilot/pkg/security/authn/policy_applier.go`, ComposePeerAuthentication);
//   STRICT refuses plaintext, and only mTLS gives a source principal.
// - AuthorizationPolicy applies from the root namespace and the workload's
//   namespace when its selector matches the pod's labels, or it has none
//   (`pilot/pkg/model/authorization.go`, ListAuthorizationPolicies).
// - DENY before ALLOW; with any ALLOW policy applied, a request no rule
//   matches is denied; `spec: {}` is an ALLOW policy without rules, so it
//   denies everything (`pilot/pkg/security/authz/builder/builder.go`, one
//   Envoy RBAC filter per action).
// - `ports` is the workload's port (`model.go` -> `destPortGenerator` ->
//   `permissionDestinationPort`, Envoy RBAC `destination_port`);
//   `principals`/`namespaces` come from the peer certificate
//   (`source.principal`, `source.namespace` in `model.go`).
// - A route's `headers.request` is applied by the router after the
//   gateway's filters (`pilot/pkg/networking/core/route/route.go`,
//   TranslateRoute sets `request_headers_to_add`/`_to_remove`), so what a
//   VirtualService sets reaches the destination unchecked.

pub(crate) const ROOT_NS: &str = "istio-system";

#[derive(Clone, Debug)]
pub(crate) struct Pod {
    pub(crate) namespace: String,
    pub(crate) labels: BTreeMap<String, String>,
    /// The port the container listens on.
    pub(crate) port: u16,
}

#[derive(Clone, Debug)]
pub(crate) struct Inbound {
    pub(crate) pod: Pod,
    /// The caller's SPIFFE identity; `None`: plaintext (no sidecar).
    pub(crate) principal: Option<String>,
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) headers: BTreeMap<String, String>,
    /// A token in `Authorization`: (issuer, claims; list claims as lists).
    pub(crate) token: Option<(String, Value)>,
}

/// A JSON map of strings (labels, a selector) as a map.
pub(crate) fn string_map_of(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

/// The pod behind a Service host (`<svc>.<ns>.svc.cluster.local`) and
/// port: its Deployment's or StatefulSet's pod labels, and the target
/// port (a number, or a container port's name).
pub(crate) fn pod_behind(t: &Tree, host: &str, port: u16) -> Result<Pod, String> {
    let mut parts = host.split('.');
    let (name, ns) = (parts.next().unwrap(), parts.next().unwrap_or_default());
    let svc = all_docs(t)
        .map(|(_, d)| d)
        .find(|d| {
            d["kind"] == "Service"
                && d["metadata"]["name"] == name
                && d["metadata"]["namespace"] == ns
        })
        .ok_or("no such Service")?;
    let sp = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"].as_u64() == Some(u64::from(port)))
        .ok_or("no such Service port")?;
    let selector = string_map_of(&svc["spec"]["selector"]);
    let workload = all_docs(t)
        .map(|(_, d)| d)
        .find(|d| {
            ["Deployment", "StatefulSet"].contains(&d["kind"].as_str().unwrap_or_default())
                && d["metadata"]["namespace"] == ns
                && selector.iter().all(|(k, v)| {
                    d["spec"]["template"]["metadata"]["labels"][k].as_str() == Some(v.as_str())
                })
        })
        .ok_or("no pods behind the Service")?;
    let template = &workload["spec"]["template"];
    let target = match &sp["targetPort"] {
        Value::Number(n) => n.as_u64().unwrap() as u16,
        Value::String(named) => template["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .find(|p| p["name"] == named.as_str())
            .and_then(|p| p["containerPort"].as_u64())
            .ok_or(format!("no container port {named} behind {ns}/{name}"))?
            as u16,
        _ => port,
    };
    Ok(Pod {
        namespace: ns.to_string(),
        labels: string_map_of(&template["metadata"]["labels"]),
        port: target,
    })
}

pub(crate) fn selects(spec: &Value, labels: &BTreeMap<String, String>) -> bool {
    match spec.get("selector") {
        None => true,
        Some(s) => s["matchLabels"]
            .as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str()),
    }
}

pub(crate) fn peer_mode(t: &Tree, pod: &Pod) -> String {
    let mut best: Option<(u8, String)> = None;
    for (_, d) in all_docs(t) {
        let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
        if d["kind"] != "PeerAuthentication" || !selects(&d["spec"], &pod.labels) {
            continue;
        }
        let rank = match (ns == pod.namespace, d["spec"].get("selector").is_some()) {
            (true, true) => 3,
            (true, false) => 2,
            (false, false) if ns == ROOT_NS => 1,
            _ => continue,
        };
        let mode = d["spec"]["mtls"]["mode"]
            .as_str()
            .unwrap_or("PERMISSIVE")
            .to_string();
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, mode));
        }
    }
    best.map_or("PERMISSIVE".into(), |(_, m)| m)
}

pub(crate) fn source_namespace(principal: Option<&str>) -> Option<String> {
    principal
        .and_then(|p| p.strip_prefix("cluster.local/ns/"))
        .and_then(|p| p.split('/').next())
        .map(String::from)
}

/// What a token verified at this sidecar says: its issuer and claims.
pub(crate) type Verified<'a> = Option<(&'a str, &'a Value)>;

/// The values of a `when` key at the sidecar. A list claim matches if one
/// of its elements does: Istio's requestClaimGenerator.extendedPrincipal
/// (`pilot/pkg/security/authz/model/generator.go`) builds a
/// MetadataListValueMatcher, a ListMatcher `OneOf`
/// (`pilot/pkg/security/authz/matcher/metadata.go`). Without a verified
/// token there are no claims: Istio adds the JWT filter only when a
/// RequestAuthentication selects the workload (`policy_applier.go`,
/// JwtFilter returns nil without JWT rules).
pub(crate) fn inbound_attribute(req: &Inbound, verified: Verified, key: &str) -> Vec<String> {
    if key == "source.namespace" {
        return source_namespace(req.principal.as_deref())
            .into_iter()
            .collect();
    }
    if let Some(h) = key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'))
    {
        return req.headers.get(h).into_iter().cloned().collect();
    }
    if let Some(c) = key
        .strip_prefix("request.auth.claims[")
        .and_then(|k| k.strip_suffix(']'))
    {
        // A nested claim is `[a][b]` (Istio's `request.auth.claims[a][b]`).
        let claim =
            verified.and_then(|(_, claims)| c.split("][").try_fold(claims, |v, k| v.get(k)));
        return match claim {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
    }
    panic!("attribute {key} not modelled at the sidecar")
}

pub(crate) fn inbound_rule_matches(rule: &Value, req: &Inbound, verified: Verified) -> bool {
    let principal = req.principal.as_deref();
    let src_ns = source_namespace(principal);
    let request_principal =
        verified.map(|(iss, c)| format!("{iss}/{}", c["sub"].as_str().unwrap_or_default()));
    let from_ok = rule.get("from").is_none_or(|from| {
        from.as_array().unwrap().iter().any(|f| {
            let s = &f["source"];
            s.get("principals").is_none_or(|l| any_match(l, principal))
                && s.get("namespaces")
                    .is_none_or(|l| any_match(l, src_ns.as_deref()))
                && s.get("requestPrincipals")
                    .is_none_or(|l| any_match(l, request_principal.as_deref()))
        })
    });
    let port = req.pod.port.to_string();
    let to_ok = rule.get("to").is_none_or(|to| {
        to.as_array().unwrap().iter().any(|t| {
            let o = &t["operation"];
            o.get("ports").is_none_or(|l| any_match(l, Some(&port)))
                && o.get("paths").is_none_or(|l| any_match(l, Some(&req.path)))
                && o.get("notPaths")
                    .is_none_or(|l| !any_match(l, Some(&req.path)))
                && o.get("methods")
                    .is_none_or(|l| any_match(l, Some(req.method)))
                && o.get("hosts").is_none()
        })
    });
    let when_ok = rule["when"].as_array().into_iter().flatten().all(|w| {
        let v = inbound_attribute(req, verified, w["key"].as_str().unwrap());
        let any = |l: &Value| v.iter().any(|x| any_match(l, Some(x)));
        w.get("values").is_none_or(any) && w.get("notValues").is_none_or(|l| !any(l))
    });
    from_ok && to_ok && when_ok
}

/// Whether the sidecar of `req.pod` lets `req` through to the container.
pub(crate) fn at_sidecar(t: &Tree, req: &Inbound) -> bool {
    if req.principal.is_none() && peer_mode(t, &req.pod) == "STRICT" {
        return false;
    }
    authorize(t, req, Enforcer::Sidecar)
}

/// Where a destination's policies are enforced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Enforcer<'a> {
    /// The pod's own Envoy: the policies of its namespace and the root
    /// namespace that select it (or select nothing), full HTTP attributes.
    Sidecar,
    /// A waypoint (a Gateway of class `istio-waypoint` in the pod's
    /// namespace, by name): the policies whose `targetRefs` name it.
    Waypoint(&'a str),
    /// The node's ztunnel (ambient): the policies a sidecar would apply,
    /// except `targetRefs` ones, lowered to L4 (`ambient.rs`).
    Ztunnel,
}

/// A policy (AuthorizationPolicy or RequestAuthentication) applies to
/// `req` at `at`. A `targetRefs` policy attaches only to the proxies of
/// the Gateway it names, in its own namespace (istio 1.30.3
/// `pilot/pkg/model/policyattachment.go:123-136,185-197`), and ztunnel
/// never receives one (`pilot/pkg/serviceregistry/ambient/authorization.go:419-423`).
pub(crate) fn applies(d: &Value, req: &Inbound, at: Enforcer) -> bool {
    let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
    let refs = d["spec"].get("targetRefs");
    match at {
        Enforcer::Waypoint(name) => {
            ns == req.pod.namespace
                && refs
                    .into_iter()
                    .flat_map(|r| r.as_array().unwrap())
                    .any(|r| {
                        r["group"] == "gateway.networking.k8s.io"
                            && r["kind"] == "Gateway"
                            && r["name"] == name
                    })
        }
        Enforcer::Sidecar | Enforcer::Ztunnel => {
            refs.is_none()
                && (ns == req.pod.namespace || ns == ROOT_NS)
                && selects(&d["spec"], &req.pod.labels)
        }
    }
}

/// The identity of the proxy that enforces at `at`: a waypoint runs as
/// the service account of its name (`ambient.rs`); a sidecar as its pod's,
/// here the one Kubeflow's workloads in a profile run as (`default-editor`).
pub(crate) fn verifier(req: &Inbound, at: Enforcer) -> String {
    let ns = &req.pod.namespace;
    match at {
        Enforcer::Waypoint(name) => format!("cluster.local/ns/{ns}/sa/{name}"),
        Enforcer::Sidecar | Enforcer::Ztunnel => format!("cluster.local/ns/{ns}/sa/default-editor"),
    }
}

/// The authorization of `req` at one enforcement point: JWT
/// authentication (not at ztunnel), then DENY, then ALLOW.
pub(crate) fn authorize(t: &Tree, req: &Inbound, at: Enforcer) -> bool {
    // JWT authentication before authorization: a token of an issuer the
    // workload's RequestAuthentications list is verified (its claims are
    // then known); one of no listed issuer is refused (401); without any
    // RequestAuthentication the token is not looked at. ztunnel has no
    // RequestAuthentication at all (none is converted in
    // `pilot/pkg/serviceregistry/ambient/`).
    let jwt_rules: Vec<&Value> = all_docs(t)
        .map(|(_, d)| d)
        .filter(|d| {
            d["kind"] == "RequestAuthentication" && at != Enforcer::Ztunnel && applies(d, req, at)
        })
        .flat_map(|d| d["spec"]["jwtRules"].as_array().unwrap().iter())
        .collect();
    let mut verified = None;
    if let Some((iss, claims)) = &req.token {
        if !jwt_rules.is_empty() {
            let Some(rule) = jwt_rules.iter().find(|r| r["issuer"] == iss.as_str()) else {
                return false;
            };
            // The verifying proxy fetches the issuer's keys itself; without
            // them the token is refused (401).
            if jwks_fetch_by(t, rule, &verifier(req, at)).is_err() {
                return false;
            }
            verified = Some((iss.as_str(), claims));
        }
    }
    let mut allow_policies = 0;
    let mut allowed = false;
    for (_, d) in all_docs(t) {
        if d["kind"] != "AuthorizationPolicy" || !applies(d, req, at) {
            continue;
        }
        let action = d["spec"]["action"].as_str().unwrap_or("ALLOW");
        let rules = d["spec"]["rules"].as_array().cloned().unwrap_or_default();
        let rules: Vec<Value> = if at == Enforcer::Ztunnel {
            assert_ne!(action, "CUSTOM", "ztunnel refuses CUSTOM policies");
            rules
                .iter()
                .filter_map(|r| ztunnel_rule(r, action))
                .collect()
        } else {
            rules
        };
        let hit = rules.iter().any(|r| inbound_rule_matches(r, req, verified));
        match action {
            "DENY" if hit => return false,
            "ALLOW" => {
                allow_policies += 1;
                allowed |= hit;
            }
            _ => {}
        }
    }
    allow_policies == 0 || allowed
}

/// A VirtualService as the API server sees it: does an admission policy
/// refuse it? The rendered ValidatingAdmissionPolicies are read for their
/// binding's namespaces and their data: the identity-header policy for its
/// header list (its CEL expression is checked to test `set`, `add` and
/// `remove` on both route levels,
/// `the_identity_header_guard_reads_every_header_operation`), the
/// tenant-routes policy by [`tenant_routes_admit`].
pub(crate) fn admitted(t: &Tree, vs: &Value) -> bool {
    let ns = vs["metadata"]["namespace"].as_str().unwrap();
    for (_, d) in all_docs(t) {
        if d["kind"] != "ValidatingAdmissionPolicy" {
            continue;
        }
        let name = &d["metadata"]["name"];
        let Some((_, b)) = all_docs(t).find(|(_, b)| {
            b["kind"] == "ValidatingAdmissionPolicyBinding" && &b["spec"]["policyName"] == name
        }) else {
            continue;
        };
        let exempt = b["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| {
                e["operator"] == "NotIn" && e["values"].as_array().unwrap().iter().any(|v| v == ns)
            });
        if exempt {
            continue;
        }
        if d["spec"]["variables"][0]["name"] != "identityHeaders" {
            // Issue 28: tenants' routes stay in their namespace's paths.
            if !tenant_routes_admit(d, vs) {
                return false;
            }
            continue;
        }
        let list: Vec<String> =
            serde_json::from_str(d["spec"]["variables"][0]["expression"].as_str().unwrap())
                .unwrap();
        let touches = |h: &Value| {
            let r = &h["request"];
            ["set", "add"]
                .iter()
                .flat_map(|o| {
                    r[o].as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, _)| k.clone())
                })
                .chain(
                    r["remove"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| v.as_str().unwrap().to_string()),
                )
                .any(|k| list.contains(&k.to_ascii_lowercase()))
        };
        for r in vs["spec"]["http"].as_array().into_iter().flatten() {
            if touches(&r["headers"])
                || r["route"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|d| touches(&d["headers"]))
            {
                return false;
            }
        }
    }
    true
}

/// The identity headers the gateway writes for a verified dex user
/// (`outputClaimToHeaders` of the gateway's RequestAuthentication).
pub(crate) fn gateway_identity(t: &Tree, email: &str) -> BTreeMap<String, String> {
    let ra = one(t, &format!("{GW_DIR}/RequestAuthentication-jwt.yaml"));
    let rule = &ra["spec"]["jwtRules"][0];
    rule["outputClaimToHeaders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["claim"] == "email")
        .map(|o| (o["header"].as_str().unwrap().to_string(), email.to_string()))
        .collect()
}

/// A verified user's request through a tenant's VirtualService route: the
/// route's header operations run after the gateway's authorization.
pub(crate) fn through_tenant_route(
    headers: &BTreeMap<String, String>,
    route: &Value,
) -> BTreeMap<String, String> {
    let mut h = headers.clone();
    for level in std::iter::once(&route["headers"]).chain(
        route["route"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| &d["headers"]),
    ) {
        for (k, v) in level["request"]["set"].as_object().into_iter().flatten() {
            h.insert(k.to_ascii_lowercase(), v.as_str().unwrap().to_string());
        }
        for (k, v) in level["request"]["add"].as_object().into_iter().flatten() {
            h.insert(k.to_ascii_lowercase(), v.as_str().unwrap().to_string());
        }
        for k in level["request"]["remove"].as_array().into_iter().flatten() {
            h.remove(&k.as_str().unwrap().to_ascii_lowercase());
        }
    }
    h
}

pub(crate) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    claims(pairs)
}

pub(crate) fn pod(ns: &str, l: &[(&str, &str)], port: u16) -> Pod {
    Pod {
        namespace: ns.into(),
        labels: labels(l),
        port,
    }
}

pub(crate) fn inbound(
    p: &Pod,
    principal: Option<&str>,
    method: &'static str,
    path: &str,
    user: Option<&str>,
) -> Inbound {
    Inbound {
        pod: p.clone(),
        principal: principal.map(String::from),
        method,
        path: path.into(),
        headers: user
            .map(|u| claims(&[("kubeflow-userid", u)]))
            .unwrap_or_default(),
        token: None,
    }
}

pub(crate) fn apps_and_teams() -> Tree {
    render_inputs(&common::cases_inputs(&["apps", "multi-team"], &[]))
}

/// Replays the destination-side scenarios; returns what went wrong.
pub(crate) fn destination_violations(t: &Tree) -> Vec<String> {
    let mut bad = Vec::new();
    let mut expect = |what: &str, req: &Inbound, want: bool| {
        if at_destination(t, req) != want {
            bad.push(format!(
                "{what}: {} expected, {req:?}",
                if want { "allowed" } else { "denied" }
            ));
        }
    };
    // Gateway -> app pods. The dashboard's Service maps 80 -> 8082
    // (targetPort given); minio's console Service 9090 reaches the pods on
    // 9001 (no targetPort in the values: meshgen cannot know the pod port).
    let dashboard = pod("kubeflow", &[("app", "centraldashboard")], 8082);
    let minio = pod("minio", &[("app", "minio")], 9001);
    let minio_api = pod("minio", &[("app", "minio-api")], 9000);
    let status = pod("status", &[("app", "statuspage")], 8080);
    let gw = Some(GATEWAY_PRINCIPAL);
    for (name, p) in [
        ("dashboard", &dashboard),
        ("minio-console", &minio),
        ("status", &status),
    ] {
        expect(
            &format!("gateway -> {name} pod"),
            &inbound(p, gw, "GET", "/", Some("alice@example.com")),
            true,
        );
        expect(
            &format!("a tenant pod -> {name} pod"),
            &inbound(
                p,
                Some("cluster.local/ns/kf-research/sa/default-editor"),
                "GET",
                "/",
                None,
            ),
            false,
        );
    }
    // The dashboard's policy names its pod port: another port of that pod
    // stays closed to the gateway.
    let mut other_port = dashboard.clone();
    other_port.port = 9090;
    expect(
        "gateway -> dashboard pod, another port",
        &inbound(&other_port, gw, "GET", "/", None),
        false,
    );
    // A selector keeps the policy on its pods: a neighbour in minio's
    // namespace keeps its callers.
    expect(
        "a neighbour's caller -> minio API pod",
        &inbound(
            &minio_api,
            Some("cluster.local/ns/ml/sa/trainer"),
            "GET",
            "/",
            None,
        ),
        true,
    );
    // Profiles: the gateway with a member's verified identity reaches the
    // profile; a pod of another profile never does, whatever it claims.
    let research = pod("kf-research", &[("app", "nb")], 8888);
    let analytics = pod("kf-analytics", &[("app", "nb")], 8888);
    let alice = "alice@example.com";
    let admin = "ml-platform-admin@example.com";
    expect(
        "gateway as a member -> its profile",
        &inbound(&research, gw, "GET", "/", Some(alice)),
        true,
    );
    expect(
        "gateway as a non-member -> a profile",
        &inbound(&analytics, gw, "GET", "/", Some(alice)),
        false,
    );
    expect(
        "a pod of kf-research -> kf-analytics, claiming its owner",
        &inbound(
            &analytics,
            Some("cluster.local/ns/kf-research/sa/default-editor"),
            "GET",
            "/",
            Some(admin),
        ),
        false,
    );
    expect(
        "a pod of kf-research -> kf-research",
        &inbound(
            &research,
            Some("cluster.local/ns/kf-research/sa/default-editor"),
            "GET",
            "/",
            None,
        ),
        true,
    );
    expect(
        "plaintext -> a profile",
        &inbound(&research, None, "GET", "/", Some(alice)),
        false,
    );
    // Only STRICT mTLS keeps a caller without a sidecar off the paths
    // every mesh workload may probe.
    expect(
        "plaintext -> a profile's probe path",
        &inbound(&research, None, "GET", "/healthz", None),
        false,
    );
    expect(
        "plaintext -> minio console",
        &inbound(&minio, None, "GET", "/", Some(alice)),
        false,
    );
    // Kubeflow parity (profile_controller.go, getAuthorizationPolicy).
    let kfp_ui = Some("cluster.local/ns/kubeflow/sa/ml-pipeline-ui");
    let nb_ctl = Some("cluster.local/ns/kubeflow/sa/notebook-controller-service-account");
    let activator = Some("cluster.local/ns/knative-serving/sa/controller");
    expect(
        "Pipelines UI for a member",
        &inbound(&research, kfp_ui, "GET", "/artifacts", Some(alice)),
        true,
    );
    expect(
        "Pipelines UI for a non-member",
        &inbound(&analytics, kfp_ui, "GET", "/artifacts", Some(alice)),
        false,
    );
    // The activator probes pods by IP: past a waypoint, so in ambient
    // mode ztunnel refuses it (README, ambient "Limits"; fail closed).
    let probes = !in_ambient(t, "kf-research");
    let mut by_pod_ip = Vec::new();
    for path in ["/healthz", "/metrics", "/wait-for-drain"] {
        let req = inbound(&research, activator, "GET", path, None);
        if at_destination_by_pod_ip(t, &req) != probes {
            by_pod_ip.push(format!("Knative probe {path}: {probes} expected"));
        }
    }
    expect(
        "Knative's controller elsewhere",
        &inbound(&research, activator, "GET", "/api", None),
        false,
    );
    let kernels = "/notebook/kf-research/nb/api/kernels";
    expect(
        "notebook controller polls kernels",
        &inbound(&research, nb_ctl, "GET", kernels, None),
        true,
    );
    expect(
        "notebook controller POSTs kernels",
        &inbound(&research, nb_ctl, "POST", kernels, None),
        false,
    );
    expect(
        "notebook controller elsewhere",
        &inbound(
            &research,
            nb_ctl,
            "GET",
            "/notebook/kf-research/nb/lab",
            None,
        ),
        false,
    );
    // A tenant's VirtualService bound to the gateway, which sets the
    // identity header on its route after the gateway verified alice.
    for (key, level) in [
        ("set", "route"),
        ("add", "destination"),
        ("set", "destination"),
    ] {
        let header = json!({"request": {key: {"Kubeflow-Userid": admin}}});
        let mut route = json!({
            "match": [{"uri": {"prefix": "/notebook/kf-research/x/"}}],
            "route": [{"destination": {"host": "nb.kf-analytics.svc.cluster.local"}}],
        });
        if level == "route" {
            route["headers"] = header;
        } else {
            route["route"][0]["headers"] = header;
        }
        let vs = json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "steal", "namespace": "kf-research"},
            "spec": {"gateways": ["deploykf-istio-gateway/deploykf-gateway"], "hosts": ["deploykf.example.com"], "http": [route.clone()]},
        });
        if !admitted(t, &vs) {
            continue;
        }
        let seen = through_tenant_route(&gateway_identity(t, alice), &route);
        let req = Inbound {
            pod: analytics.clone(),
            principal: gw.map(String::from),
            method: "GET",
            path: "/notebook/kf-research/x/".into(),
            headers: seen,
            token: None,
        };
        if at_destination(t, &req) {
            bad.push(format!(
                "a tenant VirtualService ({key} on the {level}) made kf-analytics see {admin}"
            ));
        }
    }
    bad.extend(by_pod_ip);
    bad
}

#[test]
pub(crate) fn the_destination_admits_only_verified_callers() {
    let t = apps_and_teams();
    let bad = destination_violations(&t);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The destination replay notices when any one safeguard is missing.
#[test]
pub(crate) fn the_destination_replay_notices_a_missing_safeguard() {
    let base = apps_and_teams();
    let mut mutants: Vec<(String, Tree)> = Vec::new();
    // Drop one document.
    for (path, what) in [
        (
            format!("{GW_DIR}/ValidatingAdmissionPolicy-identity-headers.yaml"),
            "the identity-header admission policy",
        ),
        (
            format!("{GW_DIR}/app-minio-console.yaml"),
            "minio's app policy",
        ),
    ] {
        let mut t = base.clone();
        assert!(t.remove(&path).is_some(), "{path}");
        mutants.push((what.into(), t));
    }
    let mut t = base.clone();
    for docs in t.values_mut() {
        docs.retain(|d| d["kind"] != "PeerAuthentication");
    }
    mutants.push(("every PeerAuthentication".into(), t));
    // The selector of minio's policy.
    let mut t = base.clone();
    t.get_mut(&format!("{GW_DIR}/app-minio-console.yaml"))
        .unwrap()[1]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("selector");
    mutants.push(("the selector of minio's policy".into(), t));
    // The dashboard's port.
    let mut t = base.clone();
    t.get_mut(&format!("{GW_DIR}/app-dashboard.yaml")).unwrap()[0]["spec"]["rules"][0]
        .as_object_mut()
        .unwrap()
        .remove("to");
    mutants.push(("the dashboard policy's port".into(), t));
    // Each rule of a profile's profile-access policy.
    let file = "manifests/deploykf-core/deploykf-profiles-generator/kf-research.yaml";
    let at = base[file]
        .iter()
        .position(|d| d["metadata"]["name"] == "profile-access")
        .unwrap();
    // (Rules on the groups header or claim are another replay's: this one
    // sends no groups.)
    let profile_rules = base[file][at]["spec"]["rules"].as_array().unwrap();
    for (i, rule) in profile_rules.iter().enumerate() {
        if rule.to_string().contains("groups") {
            continue;
        }
        let mut t = base.clone();
        t.get_mut(file).unwrap()[at]["spec"]["rules"]
            .as_array_mut()
            .unwrap()
            .remove(i);
        mutants.push((format!("rule {i} of kf-research's profile-access"), t));
    }
    // A header missing from the admission policy's list.
    let mut t = base.clone();
    let vap = &mut t
        .get_mut(&format!(
            "{GW_DIR}/ValidatingAdmissionPolicy-identity-headers.yaml"
        ))
        .unwrap()[0];
    vap["spec"]["variables"][0]["expression"] = json!("[\"kubeflow-groups\"]");
    mutants.push(("kubeflow-userid in the admission policy".into(), t));
    for (what, t) in mutants {
        assert!(
            !destination_violations(&t).is_empty(),
            "without {what} the replay still passes"
        );
    }
}

#[test]
pub(crate) fn app_policies_match_the_pod_port_and_warn_without_selector() {
    let t = case("apps");
    let rules = |name: &str| {
        t[&format!("{GW_DIR}/app-{name}.yaml")].last().unwrap()["spec"]["rules"].clone()
    };
    // targetPort given: the pod port; none: no port list.
    assert_eq!(
        rules("dashboard"),
        json!([{"from": [{"source": {"principals": [GATEWAY_PRINCIPAL]}}], "to": [{"operation": {"ports": ["8082"]}}]}])
    );
    assert_eq!(
        rules("minio-console"),
        json!([{"from": [{"source": {"principals": [GATEWAY_PRINCIPAL]}}]}])
    );
    let warnings = warnings_of(&common::case_inputs("apps"));
    let about = |key: &str| {
        warnings
            .iter()
            .any(|w| w.contains(key) && w.contains("no `selector`"))
    };
    assert!(about("apps[0]"), "{warnings:?}");
    assert!(!about("apps[1]"), "{warnings:?}");
}

#[test]
pub(crate) fn the_identity_header_guard_reads_every_header_operation() {
    let t = case("apps");
    let docs = &t[&format!("{GW_DIR}/ValidatingAdmissionPolicy-identity-headers.yaml")];
    let vap = &docs[0]["spec"];
    assert_eq!(vap["failurePolicy"], "Fail");
    assert_eq!(
        vap["matchConstraints"]["resourceRules"][0]["resources"],
        json!(["virtualservices"])
    );
    assert_eq!(
        vap["variables"][0]["expression"],
        "[\"kubeflow-userid\", \"kubeflow-groups\"]"
    );
    let cel = vap["validations"][0]["expression"].as_str().unwrap();
    for level in ["r", "d"] {
        for op in ["set", "add", "remove"] {
            assert!(
                cel.contains(&format!("{level}.headers.request.{op}.all(h, !(h.lowerAscii() in variables.identityHeaders))")),
                "{level}.{op}: {cel}"
            );
        }
    }
    assert!(cel.contains("r.route.all(d, "), "{cel}");
    assert_eq!(docs[1]["spec"]["validationActions"], json!(["Deny"]));
    assert_eq!(
        docs[1]["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]["values"],
        json!(["deploykf-istio-gateway"])
    );
}

/// Issue 14, point 4: with `output: profiles`, Kubeflow's profile controller
/// and KFAM name the principal in `ISTIO_INGRESS_GATEWAY_PRINCIPAL`
/// (kubeflow/dashboard `components/profile-controller/controllers/
/// profile_controller.go` and `components/access-management/kfam/
/// bindings.go`, `getAuthorizationPolicy`; default
/// `cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account`),
/// read by both containers from the ConfigMap `config` (kubeflow/manifests
/// `applications/profiles/upstream/manager/kustomization.yaml`): the output
/// README gives the merge that points it at meshgen's gateway.
#[test]
pub(crate) fn with_kubeflow_profiles_the_readme_sets_the_gateway_principal() {
    let inputs = common::inputs(
        vec![],
        &["deploykf_core.deploykf_profiles_generator.output=profiles"],
    );
    let g = common::generate(&inputs);
    let readme = &g.files["README.md"];
    assert!(
        readme.contains(&format!(
            "        - ISTIO_INGRESS_GATEWAY_PRINCIPAL={GATEWAY_PRINCIPAL}\n"
        )),
        "{readme}"
    );
    assert!(
        readme.contains("        - USERID_HEADER=kubeflow-userid\n"),
        "{readme}"
    );
    assert!(
        readme.contains("    - name: config\n      behavior: merge\n"),
        "{readme}"
    );
    // With `output: namespaces` meshgen renders the policies itself.
    let g = common::generate(&common::inputs(vec![], &[]));
    assert!(!g.files["README.md"].contains("ISTIO_INGRESS_GATEWAY_PRINCIPAL"));
}

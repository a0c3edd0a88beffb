//! Issue 28, point 2: Pod Security levels. Every namespace meshgen renders
//! enforces one (`pod-security.kubernetes.io/enforce`): profile namespaces
//! "baseline" as Kubeflow labels them, meshgen's own "restricted" where
//! every pod it renders there meets it. The levels are evaluated here as
//! the API server's admission does (kubernetes/pod-security-admission at
//! 8f84a87, `policy/check_*.go`, the latest policy version), on every pod
//! template of every case, with the containers Istio's injector adds
//! (istio/istio 1.30.3 `charts/istio-control/istio-discovery/files/
//! injection-template.yaml` and `gateway-injection-template.yaml`, with the
//! chart's defaults: `global.proxy.privileged: false`, no
//! `global.proxy.seccompProfile`, interception REDIRECT).

mod common;

use serde_json::{json, Value};
use std::collections::BTreeMap;

const ENFORCE: &str = "pod-security.kubernetes.io/enforce";
const AUTH: &str = "manifests/deploykf-core/deploykf-auth";
const GATEWAY: &str = "manifests/deploykf-core/deploykf-istio-gateway";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    fn of(namespace: &Value) -> Level {
        match namespace["metadata"]["labels"][ENFORCE].as_str() {
            None | Some("privileged") => Level::Privileged,
            Some("baseline") => Level::Baseline,
            Some("restricted") => Level::Restricted,
            Some(other) => panic!("unknown level {other}"),
        }
    }
}

// ---------------------------------------------------------------------
// The Pod Security Standards, as pod-security-admission checks them

/// Every container of a pod spec, init containers included.
fn containers(spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| spec[*k].as_array())
        .flatten()
        .collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The reasons `spec` (a pod spec) is refused at `level`; empty when it
/// is admitted.
fn violations(spec: &Value, level: Level) -> Vec<String> {
    let mut out = Vec::new();
    if level == Level::Privileged {
        return out;
    }
    let cs = containers(spec);
    let name = |c: &Value| c["name"].as_str().unwrap_or("?").to_string();
    // Baseline.
    // check_hostNamespaces.go
    for k in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[k] == true {
            out.push(format!("host namespaces ({k})"));
        }
    }
    // check_privileged.go
    for c in &cs {
        if c["securityContext"]["privileged"] == true {
            out.push(format!("privileged ({})", name(c)));
        }
    }
    // check_capabilities_baseline.go:62-76
    const BASELINE_CAPS: [&str; 13] = [
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ];
    for c in &cs {
        for cap in strings(&c["securityContext"]["capabilities"]["add"]) {
            if !BASELINE_CAPS.contains(&cap) {
                out.push(format!("non-default capabilities ({}: {cap})", name(c)));
            }
        }
    }
    let volumes: Vec<&Value> = spec["volumes"].as_array().into_iter().flatten().collect();
    // check_hostPathVolumes.go
    for v in &volumes {
        if v.get("hostPath").is_some() {
            out.push(format!("hostPath volume ({})", v["name"]));
        }
    }
    // check_hostPorts.go
    for c in &cs {
        for p in c["ports"].as_array().into_iter().flatten() {
            if p["hostPort"].as_u64().unwrap_or(0) != 0 {
                out.push(format!("hostPort ({})", name(c)));
            }
        }
    }
    // check_procMount_baseline.go
    for c in &cs {
        if let Some(m) = c["securityContext"]["procMount"].as_str() {
            if m != "Default" {
                out.push(format!("procMount ({})", name(c)));
            }
        }
    }
    // check_seccompProfile_baseline.go: never Unconfined
    let seccomp = |sc: &Value| sc["seccompProfile"]["type"].as_str().map(str::to_string);
    for sc in
        std::iter::once(&spec["securityContext"]).chain(cs.iter().map(|c| &c["securityContext"]))
    {
        if seccomp(sc).as_deref() == Some("Unconfined") {
            out.push("seccompProfile Unconfined".into());
        }
    }
    // check_sysctls.go:92-116 (the latest version's set)
    const SAFE_SYSCTLS: [&str; 14] = [
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
        "net.ipv4.tcp_slow_start_after_idle",
        "net.ipv4.tcp_notsent_lowat",
    ];
    for s in spec["securityContext"]["sysctls"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let n = s["name"].as_str().unwrap_or("");
        if !SAFE_SYSCTLS.contains(&n) {
            out.push(format!("unsafe sysctl {n}"));
        }
    }
    if level == Level::Baseline {
        return out;
    }
    // Restricted.
    // check_restrictedVolumes.go:30-40
    const VOLUME_TYPES: [&str; 9] = [
        "configMap",
        "downwardAPI",
        "emptyDir",
        "projected",
        "secret",
        "csi",
        "persistentVolumeClaim",
        "ephemeral",
        "image",
    ];
    for v in &volumes {
        let kinds: Vec<&String> = v
            .as_object()
            .map(|o| o.keys().filter(|k| *k != "name").collect())
            .unwrap_or_default();
        if kinds.iter().any(|k| !VOLUME_TYPES.contains(&k.as_str())) {
            out.push(format!("restricted volume type ({})", v["name"]));
        }
    }
    for c in &cs {
        let sc = &c["securityContext"];
        // check_allowPrivilegeEscalation.go: must be false, explicitly
        if sc["allowPrivilegeEscalation"] != false {
            out.push(format!("allowPrivilegeEscalation != false ({})", name(c)));
        }
        // check_capabilities_restricted.go: drop ALL, add at most NET_BIND_SERVICE
        if !strings(&sc["capabilities"]["drop"]).contains(&"ALL") {
            out.push(format!("capabilities not dropping ALL ({})", name(c)));
        }
        for cap in strings(&sc["capabilities"]["add"]) {
            if cap != "NET_BIND_SERVICE" {
                out.push(format!("capability {cap} ({})", name(c)));
            }
        }
        // check_runAsNonRoot.go: true on the pod or every container, never false
        let pod = &spec["securityContext"]["runAsNonRoot"];
        if sc["runAsNonRoot"] == false || (sc["runAsNonRoot"] != true && *pod != true) {
            out.push(format!("runAsNonRoot != true ({})", name(c)));
        }
        // check_runAsUser.go: never 0
        if sc["runAsUser"] == 0 {
            out.push(format!("runAsUser=0 ({})", name(c)));
        }
        // check_seccompProfile_restricted.go: RuntimeDefault or Localhost,
        // on the container or inherited from the pod
        let own = seccomp(sc).or_else(|| seccomp(&spec["securityContext"]));
        if !matches!(own.as_deref(), Some("RuntimeDefault" | "Localhost")) {
            out.push(format!("seccompProfile ({})", name(c)));
        }
    }
    if spec["securityContext"]["runAsUser"] == 0 {
        out.push("runAsUser=0 (pod)".into());
    }
    if spec["securityContext"]["runAsNonRoot"] == false {
        out.push("runAsNonRoot=false (pod)".into());
    }
    out
}

// ---------------------------------------------------------------------
// What Istio's injector adds

/// The mesh a pod joins, as the namespace's labels and its own say.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Injection {
    None,
    /// Istio's "sidecar" template; `cni`: istio-cni runs.
    Sidecar {
        cni: bool,
    },
    /// Istio's "gateway" template (`inject.istio.io/templates: gateway`).
    Gateway,
}

fn injection(namespace: &Value, pod: &Value, cni: bool) -> Injection {
    let labels = &namespace["metadata"]["labels"];
    let selected = labels["istio-injection"] == "enabled" || labels.get("istio.io/rev").is_some();
    let meta = &pod["metadata"];
    let off = meta["labels"]["sidecar.istio.io/inject"] == "false"
        || meta["annotations"]["sidecar.istio.io/inject"] == "false";
    if !selected || off {
        return Injection::None;
    }
    if meta["annotations"]["inject.istio.io/templates"] == "gateway" {
        Injection::Gateway
    } else {
        Injection::Sidecar { cni }
    }
}

/// The volumes both templates add (injection-template.yaml:472-520,
/// gateway-injection-template.yaml:208-260): emptyDir, downwardAPI,
/// projected (the istio token) and configMap (istiod's CA).
fn injected_volumes() -> Vec<Value> {
    vec![
        json!({"name": "workload-socket", "emptyDir": {}}),
        json!({"name": "credential-socket", "emptyDir": {}}),
        json!({"name": "workload-certs", "emptyDir": {}}),
        json!({"name": "istio-envoy", "emptyDir": {"medium": "Memory"}}),
        json!({"name": "istio-data", "emptyDir": {}}),
        json!({"name": "istio-podinfo", "downwardAPI": {"items": []}}),
        json!({"name": "istio-token", "projected": {"sources": []}}),
        json!({"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}}),
    ]
}

/// The pod spec once injected.
fn injected(spec: &Value, how: Injection) -> Value {
    let mut spec = spec.clone();
    let push = |spec: &mut Value, key: &str, items: Vec<Value>| {
        if spec[key].is_null() {
            spec[key] = json!([]);
        }
        spec[key].as_array_mut().unwrap().extend(items);
    };
    match how {
        Injection::None => return spec,
        Injection::Sidecar { cni } => {
            // injection-template.yaml:82-86 (the name), :156-177 (its
            // securityContext, by `pilot.cni.enabled`)
            let init = if cni {
                json!({"name": "istio-validation", "securityContext": {
                    "allowPrivilegeEscalation": false, "privileged": false,
                    "capabilities": {"drop": ["ALL"]},
                    "readOnlyRootFilesystem": true,
                    "runAsGroup": 1337, "runAsUser": 1337, "runAsNonRoot": true}})
            } else {
                json!({"name": "istio-init", "securityContext": {
                    "allowPrivilegeEscalation": false, "privileged": false,
                    "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
                    "readOnlyRootFilesystem": false,
                    "runAsGroup": 0, "runAsNonRoot": false, "runAsUser": 0}})
            };
            // :378-416 (REDIRECT, no capNetBindService)
            let proxy = json!({"name": "istio-proxy",
                "ports": [{"containerPort": 15090, "protocol": "TCP", "name": "http-envoy-prom"}],
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]},
                    "privileged": false, "readOnlyRootFilesystem": true,
                    "runAsNonRoot": true, "runAsUser": 1337, "runAsGroup": 1337}});
            push(&mut spec, "initContainers", vec![init]);
            push(&mut spec, "containers", vec![proxy]);
        }
        Injection::Gateway => {
            // gateway-injection-template.yaml:17-24 (the pod's sysctl,
            // merged into the pod's securityContext) and :51-53 (the
            // container's user and group, merged into istio-proxy's)
            let sc = &mut spec["securityContext"];
            if sc["sysctls"].is_null() {
                sc["sysctls"] =
                    json!([{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]);
            }
            let proxy = spec["containers"]
                .as_array_mut()
                .and_then(|cs| cs.iter_mut().find(|c| c["name"] == "istio-proxy"))
                .expect("the gateway pod names its istio-proxy container");
            proxy["securityContext"]["runAsUser"] = json!(1337);
            proxy["securityContext"]["runAsGroup"] = json!(1337);
        }
    }
    push(&mut spec, "volumes", injected_volumes());
    spec
}

// ---------------------------------------------------------------------
// The trees

/// A case's tree: its Namespaces (by name), its pod templates (namespace,
/// the workload's kind/name, the pod template), whether istio-cni runs
/// (`deploykf_dependencies.istio.cni.enabled`, or ambient), and the
/// profiles' output.
struct Tree {
    generated: meshgen::Generated,
    namespaces: BTreeMap<String, Value>,
    pods: Vec<(String, String, Value)>,
    cni: bool,
    output: String,
}

fn tree(inputs: &meshgen::values::ValueInputs) -> Tree {
    let mut session = meshgen::Session::default();
    let json = meshgen::validate(inputs, &mut session)
        .unwrap_or_else(|e| panic!("invalid values: {:?}", e.0))
        .json;
    let istio = &json["deploykf_dependencies"]["istio"];
    let cni = istio["cni"]["enabled"] == true || istio["dataplaneMode"] == "ambient";
    let output = json["deploykf_core"]["deploykf_profiles_generator"]["output"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let g = common::generate(inputs);
    let mut namespaces = BTreeMap::new();
    let mut pods = Vec::new();
    for m in &g.manifests {
        // a user's extraManifests are theirs
        if g.templates
            .get(&m.path)
            .is_some_and(|t| t.ends_with("/extra-manifests.yaml.j2"))
        {
            continue;
        }
        for doc in common::docs(&g.files[&m.path]) {
            let kind = doc["kind"].as_str().unwrap_or("").to_string();
            let name = doc["metadata"]["name"].as_str().unwrap_or("").to_string();
            let ns = doc["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string();
            match kind.as_str() {
                "Namespace" => {
                    namespaces.insert(name, doc);
                }
                "Pod" => pods.push((ns, format!("{kind}/{name}"), doc)),
                "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => pods.push((
                    ns,
                    format!("{kind}/{name}"),
                    doc["spec"]["template"].clone(),
                )),
                "CronJob" => pods.push((
                    ns,
                    format!("{kind}/{name}"),
                    doc["spec"]["jobTemplate"]["spec"]["template"].clone(),
                )),
                _ => {}
            }
        }
    }
    Tree {
        generated: g,
        namespaces,
        pods,
        cni,
        output,
    }
}

/// Every pod meshgen renders into a namespace it renders meets the level
/// that namespace enforces, once Istio injected it.
#[test]
fn issue_28_every_pod_meets_its_namespaces_pod_security_level() {
    let (mut checked, mut restricted) = (0, 0);
    let mut refused = Vec::new();
    for case in common::cases() {
        let t = tree(&common::case_inputs(&case));
        for (ns, workload, pod) in &t.pods {
            let Some(namespace) = t.namespaces.get(ns) else {
                continue;
            };
            let level = Level::of(namespace);
            let spec = injected(&pod["spec"], injection(namespace, pod, t.cni));
            checked += 1;
            restricted += usize::from(level == Level::Restricted);
            for v in violations(&spec, level) {
                refused.push(format!("{case}: {ns} {workload} ({level:?}): {v}"));
            }
        }
    }
    assert!(checked > 100, "only {checked} pods checked");
    assert!(
        restricted > 100,
        "only {restricted} pods checked at restricted"
    );
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
}

/// Which level each namespace meshgen renders enforces: profile namespaces
/// "baseline" (Kubeflow: kubeflow/manifests 26.03 applications/profiles/pss,
/// built `profiles.yaml:428`); the auth namespace "restricted" unless
/// istio-init runs there; the gateway's "restricted" when meshgen deploys
/// the gateway, none on your own gateway's. Failed before issue 28: no
/// Namespace had a level.
#[test]
fn issue_28_namespaces_enforce_pod_security_levels() {
    let mut seen = (0, 0, 0);
    for case in common::cases() {
        let t = tree(&common::case_inputs(&case));
        let labels = |ns: &Value| ns["metadata"]["labels"].clone();
        for (name, ns) in &t.namespaces {
            let level = labels(ns)[ENFORCE].clone();
            let is_profile = labels(ns)["app.kubernetes.io/part-of"] == "kubeflow-profile";
            if is_profile {
                seen.0 += 1;
                assert_eq!(level, "baseline", "{case}: profile namespace {name}");
            }
        }
        let g = &t.generated;
        let ns_of = |dir: &str| {
            g.files
                .get(&format!("{dir}/Namespace.yaml"))
                .map(|f| common::docs(f)[0].clone())
        };
        if let Some(auth) = ns_of(AUTH) {
            seen.1 += 1;
            assert_eq!(
                labels(&auth)[ENFORCE],
                "restricted",
                "{case}: auth namespace"
            );
        }
        if let Some(gw) = ns_of(GATEWAY) {
            let managed = g.files.contains_key(&format!("{GATEWAY}/Deployment.yaml"));
            if managed {
                seen.2 += 1;
                assert_eq!(
                    labels(&gw)[ENFORCE],
                    "restricted",
                    "{case}: gateway namespace"
                );
            } else {
                assert!(
                    labels(&gw).get(ENFORCE).is_none(),
                    "{case}: your own gateway's namespace"
                );
            }
        }
        if case == "kubeflow" || case == "kserve-wildcard" {
            // Kubeflow's own namespaces keep the labels Kubeflow gives them
            // (built kubeflow-namespace.yaml: `kubeflow` restricted): the
            // preset renders no Namespace for them, nor for Istio's.
            for ns in ["kubeflow", "istio-system", "kubeflow-system"] {
                assert!(
                    !t.namespaces.contains_key(ns),
                    "{case}: Namespace {ns} rendered"
                );
            }
        }
        if t.output == "profiles" {
            // the profile controller makes (and labels) the namespaces
            assert!(!t
                .namespaces
                .values()
                .any(|n| labels(n)["app.kubernetes.io/part-of"] == "kubeflow-profile"));
        }
    }
    assert!(seen.0 > 10 && seen.1 > 10 && seen.2 > 10, "{seen:?}");
}

/// The auth namespace without istio-cni (`cni.enabled: false`, the
/// profiles' level lowered, or the rules refuse it): no level, since its
/// injected pods carry istio-init; the gateway's stays "restricted" (no
/// init container in the gateway template), and its pods still meet it.
#[test]
fn issue_28_without_istio_cni_only_the_auth_namespace_loses_its_level() {
    let t = tree(&common::inputs(
        vec![],
        &[
            "deploykf_dependencies.istio.cni.enabled=false",
            "deploykf_core.deploykf_profiles_generator.namespacePodSecurity=privileged",
        ],
    ));
    assert!(!t.cni);
    let level = |ns: &str| t.namespaces[ns]["metadata"]["labels"][ENFORCE].clone();
    assert_eq!(level("deploykf-auth"), Value::Null);
    assert_eq!(level("deploykf-istio-gateway"), "restricted");
    assert_eq!(level("team-1"), "privileged");
    // dex with istio-init would be refused at "restricted" (and "baseline")
    let (_, _, dex) = (t.pods.iter())
        .find(|(ns, w, _)| ns == "deploykf-auth" && w == "Deployment/dex")
        .expect("dex");
    let spec = injected(
        &dex["spec"],
        injection(&t.namespaces["deploykf-auth"], dex, false),
    );
    let why = violations(&spec, Level::Baseline);
    assert_eq!(
        why,
        vec![
            "non-default capabilities (istio-init: NET_ADMIN)",
            "non-default capabilities (istio-init: NET_RAW)"
        ]
    );
    let (_, _, gw) = (t.pods.iter())
        .find(|(ns, _, _)| ns == "deploykf-istio-gateway")
        .expect("the gateway pods");
    let ns = &t.namespaces["deploykf-istio-gateway"];
    assert_eq!(injection(ns, gw, false), Injection::Gateway);
    assert_eq!(
        violations(
            &injected(&gw["spec"], Injection::Gateway),
            Level::Restricted
        ),
        Vec::<String>::new()
    );
}

/// The replay of issue 28, point 2: a profile's editor (ClusterRole
/// kubeflow-edit creates pods) asks for a privileged pod with the node's
/// root filesystem and network; the level its Namespace enforces refuses
/// it. A Kubeflow notebook (the notebook controller's StatefulSet: one
/// container, its volume and `/dev/shm`; kubeflow/kubeflow
/// components/notebook-controller) with its sidecar is still admitted.
/// Failed before issue 28: profile namespaces had no level (privileged).
#[test]
fn issue_28_a_profile_editor_can_not_run_a_privileged_pod() {
    let t = tree(&common::inputs(vec![], &[]));
    let ns = &t.namespaces["team-1"];
    let level = Level::of(ns);
    let attacker = json!({
        "metadata": {"name": "x", "namespace": "team-1"},
        "spec": {
            "hostNetwork": true,
            "hostPID": true,
            "containers": [{"name": "x", "image": "busybox",
                "securityContext": {"privileged": true},
                "volumeMounts": [{"name": "host", "mountPath": "/host"}]}],
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}]
        }
    });
    let spec = injected(&attacker["spec"], injection(ns, &attacker, t.cni));
    let why = violations(&spec, level);
    for reason in [
        "host namespaces (hostNetwork)",
        "host namespaces (hostPID)",
        "privileged (x)",
        "hostPath volume (\"host\")",
    ] {
        assert!(
            why.iter().any(|w| w == reason),
            "{reason} not in {why:?} at {level:?}"
        );
    }
    let notebook = json!({
        "metadata": {"name": "nb-0", "namespace": "team-1", "labels": {"notebook-name": "nb"}},
        "spec": {
            "containers": [{"name": "nb", "image": "ghcr.io/kubeflow/kubeflow/notebook-servers/jupyter-scipy:v1.10.0",
                "ports": [{"containerPort": 8888, "name": "notebook-port"}]}],
            "volumes": [
                {"name": "nb-volume", "persistentVolumeClaim": {"claimName": "nb-volume"}},
                {"name": "dshm", "emptyDir": {"medium": "Memory"}}
            ]
        }
    });
    let how = injection(ns, &notebook, t.cni);
    assert_eq!(how, Injection::Sidecar { cni: true });
    assert_eq!(
        violations(&injected(&notebook["spec"], how), level),
        Vec::<String>::new()
    );
    // ...which istio-init (no istio-cni) would not be: why the rules refuse
    // `cni.enabled: false` with a "baseline" profile level.
    let without_cni = injected(&notebook["spec"], Injection::Sidecar { cni: false });
    assert!(!violations(&without_cni, Level::Baseline).is_empty());
}

//! `meshgen access matrix`: for every profile and app of a rendered tree,
//! who is admitted and with what, read from the tree's objects.
//!
//! It is computed per profile, not by enumerating requests: the subjects
//! of a profile are the identities its objects name (the users and IdP
//! groups of its AuthorizationPolicies' conditions, their principals and
//! namespaces, its RoleBindings' subjects, a Kubeflow Profile's owner),
//! plus two stand-ins for everyone else (a logged-in user and a workload
//! of the mesh named nowhere, so a profile open to all shows). Each is
//! decided once per capability by the policies that apply where the
//! profile's workloads are enforced, in Istio's order:
//!
//! - sidecar: the policies of the namespace and of the root namespace
//!   without `targetRefs` or `selector` (a policy selecting some pods is
//!   reported, not applied); ambient: the waypoint's (`targetRefs`) when
//!   the namespace uses one and the gateway is sent through it
//!   (`istio.io/ingress-use-waypoint`), then ztunnel's, lowered to L4
//!   (an ALLOW rule with an HTTP attribute never matches, a DENY rule
//!   keeps its L4 part: istio/istio 86c9f01
//!   `pilot/pkg/serviceregistry/ambient/authorization.go`), or ztunnel's
//!   alone for the pod's IP; a caller takes whichever way lets it in;
//! - a token is verified where a RequestAuthentication applies (a token
//!   of an issuer none lists is refused), and then its claims are known;
//! - DENY before ALLOW; with an ALLOW policy applied, a request no ALLOW
//!   rule matches is refused (`pilot/pkg/security/authz/builder/builder.go:116-137`);
//!   values match exactly, by `prefix*`, `*suffix` or `*` (present)
//!   (`pilot/pkg/security/authz/matcher/string.go:100-115`);
//! - the gateway admits any logged-in user (its CUSTOM login) and sets the
//!   user header from the verified token (its RequestAuthentication's
//!   `outputClaimToHeaders`: `email` for dex, `sub`,
//!   `system:serviceaccount:NS:SA`, for the cluster's tokens).
//!
//! Capabilities: `api` (a request to the profile's workloads, `GET /`),
//! `notebooks` (`GET /notebook/<profile>/<name>/`), `role` (the
//! ClusterRole a RoleBinding of the namespace gives: `view`, `edit`,
//! `admin` for Kubeflow's, else its name); for an app, `api` is the app
//! through the gateway (after the login, for `any-user`). A level is
//! `yes`, `no` or `only …` (some requests: the rule's conditions).
//!
//! `tests/auth/matrix.rs` checks every cell of the golden cases against
//! a concrete request replayed through the request model.

use super::rule::Rule;
use super::tree::Tree;
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// What is reached: a profile (its namespace) or an app of the gateway.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Target {
    pub kind: &'static str,
    pub name: String,
}

/// Who: `user`, `idp-group`, `group` (a RoleBinding's Group not named by
/// any policy), `service-account` (`NS/SA`: its cluster token through the
/// gateway, or its pods in the mesh), `namespace` (its workloads in the
/// mesh), `workload` (a SPIFFE principal), `any-user` (a logged-in user
/// named nowhere), `any-workload` (a workload of the mesh named nowhere),
/// `anonymous`, `token` (a token the gateway accepts, by issuer and
/// audience). `via` names the gateway (its Deployment) a subject's
/// requests come through: with several gateways, one row per gateway, and
/// a ServiceAccount's own pods a row without `via`. With one gateway the
/// rows are the same keys (so adding a gateway only adds rows to a
/// `diff --access`), a ServiceAccount's one row covering both ways, and
/// `via` is not printed ([`Matrix::several`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Subject {
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub via: String,
}

impl Subject {
    /// A subject of no particular gateway.
    pub fn new(kind: &'static str, name: &str) -> Subject {
        Subject {
            kind,
            name: name.to_string(),
            via: String::new(),
        }
    }

    /// Its name as printed: `name`, or `name via <gateway>`.
    pub fn label(&self) -> String {
        if self.via.is_empty() {
            self.name.clone()
        } else {
            format!("{} via {}", self.name, self.via)
        }
    }
}

/// `api`, `notebooks` or `role`.
pub type Capability = &'static str;

pub const CAPABILITIES: [Capability; 3] = ["api", "notebooks", "role"];

/// One cell: its level and the objects that decided it
/// (`Kind/namespace/name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub level: String,
    pub by: Vec<String>,
}

impl Grant {
    fn no(by: Vec<String>) -> Grant {
        Grant {
            level: "no".into(),
            by,
        }
    }
    fn yes(by: Vec<String>) -> Grant {
        Grant {
            level: "yes".into(),
            by,
        }
    }
    pub fn granted(&self) -> bool {
        self.level != "no"
    }
}

/// How much a level grants, to tell widened access from narrowed:
/// `no` < `only …` < `yes`; `view` < `edit` < `admin`, another
/// ClusterRole between `view` and `edit`.
pub fn rank(level: &str) -> u8 {
    match level {
        "no" => 0,
        "view" => 1,
        "edit" => 3,
        "admin" => 4,
        "yes" => 3,
        l if l.starts_with("only ") => 1,
        _ => 2,
    }
}

/// Who reaches what: every granted cell (absent: `no`), and what the
/// tree holds that the matrix does not model.
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    pub cells: BTreeMap<(Target, Subject, Capability), Grant>,
    pub targets: BTreeSet<Target>,
    pub notes: Vec<String>,
    /// The tree has several gateways: the subjects' `via` is printed.
    pub several: bool,
}

/// The cell of (`target`, `subject`, `cap`), `no` when absent.
impl Matrix {
    pub fn get(&self, target: &Target, subject: &Subject, cap: Capability) -> Option<&Grant> {
        self.cells.get(&(target.clone(), subject.clone(), cap))
    }

    /// A subject's name as printed: with [`Matrix::several`] gateways
    /// `name via <gateway>` ([`Subject::label`]), else its name.
    pub fn label(&self, subject: &Subject) -> String {
        label_of(subject, self.several).into_owned()
    }
}

/// [`Matrix::label`] of a matrix with `several` gateways or not.
fn label_of(subject: &Subject, several: bool) -> Cow<'_, str> {
    if several {
        Cow::Owned(subject.label())
    } else {
        Cow::Borrowed(&subject.name)
    }
}

/// Kinds that decide traffic or access which the matrix does not model:
/// each object of one is reported.
const NOT_MODELLED: &[&str] = &[
    "NetworkPolicy",
    "AdminNetworkPolicy",
    "BaselineAdminNetworkPolicy",
    "EnvoyFilter",
    "WasmPlugin",
    "Sidecar",
    "ClusterRoleBinding",
    "AuthorizationPolicy/CUSTOM",
];

/// The root namespace (Istio's default `rootNamespace`).
pub const ROOT_NS: &str = "istio-system";
const DEX_GROUPS: &str = "request.auth.claims[groups]";
const K8S_SA: &str = "system:serviceaccount:";

/// An object of the tree, with the file it is in.
#[derive(Clone, Copy)]
struct Obj<'a> {
    doc: &'a Value,
    // Read once: a JSON map lookup hashes its key each time.
    kind: &'a str,
    ns: &'a str,
    name: &'a str,
    spec: &'a Value,
}

impl<'a> Obj<'a> {
    fn new(doc: &'a Value) -> Obj<'a> {
        let meta = &doc["metadata"];
        Obj {
            doc,
            kind: doc["kind"].as_str().unwrap_or_default(),
            ns: meta["namespace"].as_str().unwrap_or_default(),
            name: meta["name"].as_str().unwrap_or_default(),
            spec: &doc["spec"],
        }
    }
    fn kind(&self) -> &'a str {
        self.kind
    }
    fn ns(&self) -> &'a str {
        self.ns
    }
    fn name(&self) -> &'a str {
        self.name
    }
    fn id(&self) -> String {
        match self.ns() {
            "" => format!("{}/{}", self.kind(), self.name()),
            ns => format!("{}/{ns}/{}", self.kind(), self.name()),
        }
    }
    fn spec(&self) -> &'a Value {
        self.spec
    }
}

/// What the gateway does, read once from the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// The gateway pods' SPIFFE principal.
    pub gateway: String,
    /// Its Deployment's name (`""` when its pods are not in the tree).
    pub name: String,
    /// The header the gateway sets from a verified user's `email`.
    pub user_header: String,
    /// The issuer of users' tokens (dex), and whether the gateway forwards them.
    pub user_issuer: Option<(String, bool)>,
    /// Issuers whose `sub` the gateway writes into the user header (the
    /// cluster's ServiceAccount tokens), with whether it forwards them
    /// and their audiences.
    pub m2m: Vec<(String, bool, Vec<String>)>,
    /// The gateway's RequestAuthentication.
    pub by: Vec<String>,
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn labels_select(selector: &Value, labels: &Value) -> bool {
    selector["matchLabels"]
        .as_object()
        .is_some_and(|m| !m.is_empty())
        && selector["matchLabels"]
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| labels[k] == *v)
}

/// The gateways: each Deployment a RequestAuthentication that writes a
/// header from a claim selects, in the tree's order (Kubeflow's
/// default gateway when there is none).
pub fn contexts(tree: &Tree) -> Vec<Context> {
    let objs: Vec<Obj> = tree.values().flatten().map(Obj::new).collect();
    contexts_of(&objs)
}

/// Whether policy `o` attaches to pods labelled `labels` in `ns`: by
/// `targetRefs` to the Gateway its `gateway.networking.k8s.io/gateway-name`
/// label names, by its selector, or namespace-wide (istio/istio 86c9f01
/// `pilot/pkg/model/policyattachment.go`, ShouldAttachPolicy).
fn attaches(o: &Obj, labels: &Value, ns: &str) -> bool {
    if o.ns() != ns && o.ns() != ROOT_NS {
        return false;
    }
    match (o.spec().get("targetRefs"), o.spec().get("selector")) {
        (Some(refs), _) => {
            o.ns() == ns
                && strs_refs(Some(refs)).any(|(g, k, n)| {
                    g == "gateway.networking.k8s.io"
                        && k == "Gateway"
                        && labels["gateway.networking.k8s.io/gateway-name"] == n
                })
        }
        (None, Some(sel)) => labels_select(sel, labels),
        (None, None) => true,
    }
}

fn pod_labels<'a>(d: &Obj<'a>) -> &'a Value {
    &d.spec()["template"]["metadata"]["labels"]
}

fn default_context() -> Context {
    Context {
        gateway: "cluster.local/ns/deploykf-istio-gateway/sa/deploykf-gateway".into(),
        name: String::new(),
        user_header: "kubeflow-userid".into(),
        user_issuer: None,
        m2m: Vec::new(),
        by: Vec::new(),
    }
}

fn contexts_of(objs: &[Obj]) -> Vec<Context> {
    let mut out: Vec<Context> = Vec::new();
    for ra in objs.iter().filter(|o| o.kind() == "RequestAuthentication") {
        let writes_headers = ra.spec()["jwtRules"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r.get("outputClaimToHeaders").is_some());
        let Some(pods) = objs.iter().find(|d| {
            d.kind() == "Deployment"
                && writes_headers
                && d.ns() == ra.ns()
                && ra
                    .spec()
                    .get("selector")
                    .or(ra.spec().get("targetRefs"))
                    .is_some()
                && attaches(ra, pod_labels(d), d.ns())
        }) else {
            continue;
        };
        let sa = pods.spec()["template"]["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default");
        let principal = format!("cluster.local/ns/{}/sa/{sa}", pods.ns());
        let i = match out.iter().position(|c| c.gateway == principal) {
            Some(i) => i,
            None => {
                out.push(Context {
                    gateway: principal,
                    name: pods.name().to_string(),
                    ..default_context()
                });
                out.len() - 1
            }
        };
        let ctx = &mut out[i];
        ctx.by.push(ra.id());
        for rule in ra.spec()["jwtRules"].as_array().into_iter().flatten() {
            let iss = rule["issuer"].as_str().unwrap_or_default().to_string();
            let fwd = rule["forwardOriginalToken"] == true;
            for o in rule["outputClaimToHeaders"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let header = o["header"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                match o["claim"].as_str() {
                    Some("email") => {
                        ctx.user_header = header;
                        ctx.user_issuer = Some((iss.clone(), fwd));
                    }
                    Some("sub") => ctx.m2m.push((
                        iss.clone(),
                        fwd,
                        strs(&rule["audiences"])
                            .into_iter()
                            .map(String::from)
                            .collect(),
                    )),
                    _ => {}
                }
            }
        }
    }
    if out.is_empty() {
        out.push(default_context());
    }
    out
}

/// The principals of every gateway.
fn gateway_principals(ctxs: &[Context]) -> Vec<&str> {
    ctxs.iter().map(|c| c.gateway.as_str()).collect()
}

/// A request at a profile's enforcement point, borrowing from its
/// [`Caller`] (issue 31: a profile's every subject asks twice).
#[derive(Debug, Clone)]
struct Req<'r> {
    /// The caller's SPIFFE principal (mTLS).
    principal: Cow<'r, str>,
    /// The header the gateway set: (lowercase name, value).
    header: Option<(&'r str, &'r str)>,
    /// A token: (issuer, claims).
    token: Option<(&'r str, &'r Value)>,
    path: &'r str,
    /// The pod port, when known (an app's `targetPort`); unknown, a rule's
    /// `ports` or `notPorts` is taken to hold.
    port: Option<&'r str>,
}

/// How a subject comes to a profile: through a gateway, with the header
/// and the token it forwards, or from a pod (`captured`: by ambient).
struct Caller {
    principal: String,
    header: Option<(String, String)>,
    token: Option<(String, Value)>,
    from_gateway: bool,
    captured: bool,
}

impl Caller {
    fn to<'r>(&'r self, path: &'r str) -> Req<'r> {
        Req {
            principal: Cow::Borrowed(&self.principal),
            header: self.header.as_ref().map(|(n, v)| (n.as_str(), v.as_str())),
            token: self.token.as_ref().map(|(i, c)| (i.as_str(), c)),
            path,
            port: None,
        }
    }
}

/// Where a profile's policies are enforced.
#[derive(Debug, Clone, Copy, PartialEq)]
enum At<'a> {
    Sidecar,
    Waypoint(&'a str),
    Ztunnel,
}

// ztunnel's lowering of rules (`authorization.go:481-489,599-603`), as
// the request model applies it.
use super::ambient::{has_l7, ztunnel_rule};

/// The values of a `when` key for `req` (`verified`: the token's claims
/// when a RequestAuthentication verified it). `None`: not modelled.
fn attribute<'a>(
    req: &'a Req,
    verified: Option<&'a Value>,
    key: &str,
) -> Option<Vec<Cow<'a, str>>> {
    if key == "source.namespace" {
        return Some(
            source_ns(&req.principal)
                .map(Cow::Borrowed)
                .into_iter()
                .collect(),
        );
    }
    if key == "source.principal" {
        return Some(vec![Cow::Borrowed(&req.principal)]);
    }
    if let Some(h) = key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'))
    {
        // Header names are case-insensitive; the gateway's is lowercase.
        return Some(
            (req.header.into_iter())
                .filter(|(n, _)| h.eq_ignore_ascii_case(n))
                .map(|(_, v)| Cow::Borrowed(v))
                .collect(),
        );
    }
    if let Some(c) = key
        .strip_prefix("request.auth.claims[")
        .and_then(|k| k.strip_suffix(']'))
    {
        let values = super::sidecar::claim_values(verified, c);
        return Some(values.into_iter().map(Cow::Owned).collect());
    }
    if key == "request.auth.audiences" {
        return Some(match verified.map(|c| &c["aud"]) {
            Some(Value::String(s)) => vec![Cow::Borrowed(s.as_str())],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(Cow::Borrowed))
                .collect(),
            _ => Vec::new(),
        });
    }
    None
}

/// The namespace of a SPIFFE principal.
pub(super) fn source_ns(principal: &str) -> Option<&str> {
    principal
        .strip_prefix("cluster.local/ns/")
        .and_then(|p| p.split('/').next())
}

fn source_namespace(principal: &str) -> Option<String> {
    source_ns(principal).map(String::from)
}

/// Whether `rule` matches `req` at a profile's workload (method `GET`).
fn rule_matches(rule: &Rule, req: &Req, verified: Option<(&str, &Value)>) -> bool {
    // Each part only when the ones before hold: a profile's users are
    // asked of every rule, and most fail at `from` (issue 31).
    rule.from_ok(Some(&req.principal), verified)
        && rule.to_ok(None, req.path, req.port)
        && rule
            .when
            .iter()
            .all(|w| w.holds(&attribute(req, verified.map(|(_, c)| c), &w.key).unwrap_or_default()))
}

/// An ALLOW or DENY AuthorizationPolicy as enforced at one point: its
/// rules read once (`None`: a rule ztunnel never matches).
struct Policy<'a> {
    /// Its `Kind/namespace/name`, made once: every request's verdict names it.
    id: String,
    action: &'a str,
    rules: Vec<Option<Rule>>,
}

/// Policies of one kind found for one enforcement point.
type Found<'a> = (&'static str, At<'a>, Rc<[Obj<'a>]>);

/// The objects of one profile namespace, and the root namespace's.
struct Namespace<'a> {
    name: &'a str,
    objs: Vec<Obj<'a>>,
    root: &'a [Obj<'a>],
    /// The labels of the pods reached, when known (an app's, by its
    /// Service's selector): policies with a `selector` apply by them.
    pods: Option<&'a Value>,
    /// The Namespace object's labels, read once.
    labels: Option<&'a Value>,
    /// [`Self::policies`] by kind and where enforced, each found once:
    /// every subject's requests ask for them again.
    found: RefCell<Vec<Found<'a>>>,
    /// [`Self::enforced`] by where enforced, each read once.
    read: RefCell<Vec<(At<'a>, Rc<[Policy<'a>]>)>>,
}

impl<'a> Namespace<'a> {
    fn new(
        name: &'a str,
        objs: Vec<Obj<'a>>,
        root: &'a [Obj<'a>],
        pods: Option<&'a Value>,
    ) -> Self {
        let labels = objs
            .iter()
            .find(|o| o.kind() == "Namespace" && o.name() == name)
            .map(|o| &o.doc["metadata"]["labels"]);
        Namespace {
            name,
            objs,
            root,
            pods,
            labels,
            found: RefCell::new(Vec::new()),
            read: RefCell::new(Vec::new()),
        }
    }

    fn labels(&self) -> Option<&'a Value> {
        self.labels
    }

    fn ambient(&self) -> bool {
        self.labels()
            .is_some_and(|l| l["istio.io/dataplane-mode"] == "ambient")
    }

    /// The waypoint its Services use (`waypoints.go` getUseWaypoint).
    fn waypoint(&self) -> Option<&'a str> {
        let name = self.labels()?["istio.io/use-waypoint"].as_str()?;
        self.objs
            .iter()
            .find(|o| {
                o.kind() == "Gateway"
                    && o.name() == name
                    && o.spec()["gatewayClassName"] == "istio-waypoint"
                    && matches!(
                        o.doc["metadata"]["labels"]["istio.io/waypoint-for"].as_str(),
                        None | Some("service") | Some("all")
                    )
            })
            .map(|o| o.name())
    }

    fn policies(&self, kind: &'static str, at: At<'a>) -> Rc<[Obj<'a>]> {
        let found = self.found.borrow();
        if let Some((_, _, p)) = found.iter().find(|(k, a, _)| *k == kind && *a == at) {
            return p.clone();
        }
        drop(found);
        let p: Rc<[Obj<'a>]> = self.find_policies(kind, at).into();
        self.found.borrow_mut().push((kind, at, p.clone()));
        p
    }

    /// The ALLOW and DENY AuthorizationPolicies enforced at `at`, their
    /// rules as enforced there: at ztunnel, a rule with HTTP attributes
    /// lowered (`ambient::ztunnel_rule`).
    fn enforced(&self, at: At<'a>) -> Rc<[Policy<'a>]> {
        if let Some((_, p)) = self.read.borrow().iter().find(|(a, _)| *a == at) {
            return p.clone();
        }
        let read: Rc<[Policy<'a>]> = (self.policies("AuthorizationPolicy", at).iter())
            .map(|o| {
                let action = o.spec()["action"].as_str().unwrap_or("ALLOW");
                let rules = (o.spec()["rules"].as_array().into_iter().flatten())
                    .map(|r| {
                        if at == At::Ztunnel && has_l7(r) {
                            ztunnel_rule(r, action).map(|r| Rule::new(&r))
                        } else {
                            Some(Rule::new(r))
                        }
                    })
                    .collect();
                Policy {
                    id: o.id(),
                    action,
                    rules,
                }
            })
            .collect();
        self.read.borrow_mut().push((at, read.clone()));
        read
    }

    fn find_policies(&self, kind: &str, at: At) -> Vec<Obj<'a>> {
        self.objs
            .iter()
            .chain(self.root.iter())
            .filter(|o| o.kind() == kind)
            .filter(|o| {
                let refs = o.spec().get("targetRefs");
                match at {
                    At::Waypoint(w) => {
                        o.ns() == self.name
                            && strs_refs(refs).any(|(g, k, n)| {
                                g == "gateway.networking.k8s.io" && k == "Gateway" && n == w
                            })
                    }
                    At::Sidecar | At::Ztunnel => {
                        refs.is_none()
                            && o.spec()
                                .get("selector")
                                .is_none_or(|sel| self.pods.is_some_and(|l| labels_select(sel, l)))
                    }
                }
            })
            .copied()
            .collect()
    }

    /// Whether `req` is let through at `at`, and the objects that decided.
    fn authorize(&self, req: &Req, at: At<'a>) -> (bool, Vec<String>) {
        let mut verified = None;
        if at != At::Ztunnel {
            let ras = self.policies("RequestAuthentication", at);
            if let Some((iss, claims)) = req.token {
                if !ras.is_empty() {
                    let listed = ras.iter().find(|ra| {
                        ra.spec()["jwtRules"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|r| r["issuer"] == iss)
                    });
                    match listed {
                        Some(_) => verified = Some((iss, claims)),
                        None => return (false, ras.iter().map(|r| r.id()).collect()),
                    }
                }
            }
        }
        let aps = self.enforced(at);
        let hit = |p: &Policy| {
            p.rules
                .iter()
                .flatten()
                .any(|r| rule_matches(r, req, verified))
        };
        for p in aps.iter().filter(|p| p.action == "DENY") {
            if hit(p) {
                return (false, vec![p.id.clone()]);
            }
        }
        let allow: Vec<&Policy> = aps.iter().filter(|p| p.action == "ALLOW").collect();
        if allow.is_empty() {
            return (true, Vec::new());
        }
        for p in &allow {
            if hit(p) {
                return (true, vec![p.id.clone()]);
            }
        }
        (false, allow.iter().map(|p| p.id.clone()).collect())
    }

    /// Whether `req` reaches a workload of the namespace, on the way that
    /// lets it (`tests/auth/ambient.rs` `at_destination`), with the
    /// objects that decided.
    fn reaches(&self, req: &Req, from_gateway: bool, captured: bool) -> (bool, Vec<String>) {
        if !self.ambient() {
            return self.authorize(req, At::Sidecar);
        }
        let ingress = self
            .labels()
            .is_some_and(|l| l["istio.io/ingress-use-waypoint"] == "true");
        let mut by = Vec::new();
        if let Some(w) = self
            .waypoint()
            .filter(|_| captured || (from_gateway && ingress))
        {
            let (ok, b) = self.authorize(req, At::Waypoint(w));
            if ok {
                let mut hop = req.clone();
                hop.principal = Cow::Owned(format!("cluster.local/ns/{}/sa/{w}", self.name));
                let (ok, b2) = self.authorize(&hop, At::Ztunnel);
                if ok {
                    return (true, [b, b2].concat());
                }
                by.extend(b2);
            } else {
                by.extend(b);
            }
        }
        // The Service without a waypoint, or the pod's IP: ztunnel alone.
        let (ok, b) = self.authorize(req, At::Ztunnel);
        if ok {
            return (true, b);
        }
        by.extend(b);
        by.sort();
        by.dedup();
        (false, by)
    }
}

fn strs_refs(refs: Option<&Value>) -> impl Iterator<Item = (&str, &str, &str)> {
    refs.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["group"].as_str().unwrap_or_default(),
                r["kind"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default(),
            )
        })
}

/// The role a ClusterRole name stands for.
fn role_of(cluster_role: &str) -> String {
    match cluster_role {
        "kubeflow-admin" => "admin".into(),
        "kubeflow-edit" => "edit".into(),
        "kubeflow-view" => "view".into(),
        other => other.into(),
    }
}

/// An address named nowhere, for the stand-ins.
pub const NOBODY: &str = "any-user@meshgen.invalid";

/// The request a subject makes to `path` of profile `ns`, the way it
/// comes (through the gateway or from its pods): (request, from the
/// gateway, captured by ambient). `None`: it has no such way.
/// (`tokens`: whether a token can be verified where they go; without a
/// RequestAuthentication none is made.)
fn callers(
    ctx: &Context,
    subject: &Subject,
    ambient_ns: &dyn Fn(&str) -> bool,
    tokens: bool,
) -> Vec<Caller> {
    let via_gateway = |user: &str, token: Option<(String, Value)>| Caller {
        principal: ctx.gateway.clone(),
        header: Some((ctx.user_header.clone(), user.to_string())),
        token,
        from_gateway: true,
        captured: false,
    };
    let dex = |email: &str, groups: &[&str]| {
        ctx.user_issuer
            .as_ref()
            .filter(|(_, fwd)| *fwd && tokens)
            .map(|(iss, _)| {
                (
                    iss.clone(),
                    serde_json::json!({"sub": email, "email": email, "groups": groups}),
                )
            })
    };
    let in_mesh = |principal: String| Caller {
        captured: source_ns(&principal).is_some_and(ambient_ns),
        principal,
        header: None,
        token: None,
        from_gateway: false,
    };
    match subject.kind {
        "user" => vec![via_gateway(&subject.name, dex(&subject.name, &[]))],
        "any-user" => vec![via_gateway(NOBODY, dex(NOBODY, &[]))],
        "idp-group" => vec![via_gateway(NOBODY, dex(NOBODY, &[subject.name.as_str()]))],
        "service-account" => {
            let (ns, sa) = subject.name.split_once('/').unwrap_or_default();
            let sub = format!("{K8S_SA}{ns}:{sa}");
            let mut out: Vec<Caller> = ctx
                .m2m
                .iter()
                .map(|(iss, fwd, _)| {
                    let token =
                        (*fwd && tokens).then(|| (iss.clone(), serde_json::json!({"sub": sub})));
                    via_gateway(&sub, token)
                })
                .collect();
            out.push(in_mesh(format!("cluster.local/ns/{ns}/sa/{sa}")));
            out
        }
        "namespace" => vec![in_mesh(format!(
            "cluster.local/ns/{}/sa/default",
            subject.name
        ))],
        "workload" => vec![in_mesh(subject.name.clone())],
        "any-workload" => vec![in_mesh(
            "cluster.local/ns/meshgen-nowhere/sa/default".into(),
        )],
        _ => Vec::new(),
    }
}

/// The conditions of the ALLOW rules that name `subject` (or, for
/// `any-workload`, that name no source), when no request of the matrix
/// matched them: what the subject may still do.
fn limited(ns: &Namespace, subject: &Subject, ctx: &Context) -> Option<(String, Vec<String>)> {
    // No rule names the other kinds: none of a profile's many users
    // walks its policies again (issue 31).
    if !matches!(subject.kind, "any-workload" | "workload" | "namespace") {
        return None;
    }
    let names = |rule: &Value| -> bool {
        let from = rule.get("from");
        match subject.kind {
            "any-workload" => from.is_none(),
            "workload" | "namespace" => {
                from.into_iter()
                    .flat_map(|f| f.as_array())
                    .flatten()
                    .any(|f| {
                        let s = &f["source"];
                        (subject.kind == "workload"
                            && strs(&s["principals"]).contains(&subject.name.as_str()))
                            || (subject.kind == "namespace"
                                && strs(&s["namespaces"]).contains(&subject.name.as_str()))
                    })
            }
            _ => false,
        }
    };
    let mut what = BTreeSet::new();
    let mut by = Vec::new();
    let at = if ns.ambient() {
        ns.waypoint().map_or(At::Ztunnel, At::Waypoint)
    } else {
        At::Sidecar
    };
    for p in ns.policies("AuthorizationPolicy", at).iter() {
        if p.spec()["action"].as_str().unwrap_or("ALLOW") != "ALLOW" {
            continue;
        }
        for rule in p.spec()["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| names(r))
        {
            let mut parts = Vec::new();
            for t in rule["to"].as_array().into_iter().flatten() {
                let o = &t["operation"];
                let methods = strs(&o["methods"]).join(",");
                let paths = strs(&o["paths"]).join(",");
                parts.push(format!("{methods} {paths}").trim().to_string());
            }
            for w in rule["when"].as_array().into_iter().flatten() {
                let key = w["key"].as_str().unwrap_or_default();
                if key == format!("request.headers[{}]", ctx.user_header) {
                    parts.push(format!("for its users ({key})"));
                } else {
                    parts.push(format!("when {key}"));
                }
            }
            if !parts.is_empty() {
                what.insert(parts.join(" "));
                by.push(p.id());
            }
        }
    }
    by.dedup();
    (!what.is_empty()).then(|| {
        (
            format!("only {}", what.into_iter().collect::<Vec<_>>().join("; ")),
            by,
        )
    })
}

/// The subjects profile `ns`'s objects name.
fn subjects(ns: &Namespace, ctx: &Context, gateways: &[&str]) -> BTreeSet<Subject> {
    let mut out = BTreeSet::new();
    let s = Subject::new;
    let user_key = format!("request.headers[{}]", ctx.user_header);
    let user = |v: &str| {
        if let Some(sa) = v.strip_prefix(K8S_SA) {
            s("service-account", &sa.replacen(':', "/", 1))
        } else {
            s("user", v)
        }
    };
    for p in ns.objs.iter().filter(|o| o.kind() == "AuthorizationPolicy") {
        for rule in p.spec()["rules"].as_array().into_iter().flatten() {
            for w in rule["when"].as_array().into_iter().flatten() {
                let key = w["key"].as_str().unwrap_or_default();
                let values = strs(&w["values"]).into_iter().chain(strs(&w["notValues"]));
                for v in values.filter(|v| !v.contains('*')) {
                    if key.eq_ignore_ascii_case(&user_key) {
                        out.insert(user(v));
                    } else if key == DEX_GROUPS {
                        out.insert(s("idp-group", v));
                    }
                }
            }
            for f in rule["from"].as_array().into_iter().flatten() {
                for p in strs(&f["source"]["principals"]) {
                    if !gateways.contains(&p) && !p.contains('*') {
                        out.insert(s("workload", p));
                    }
                }
                for n in strs(&f["source"]["namespaces"]) {
                    if !n.contains('*') {
                        out.insert(s("namespace", n));
                    }
                }
            }
        }
    }
    let groups: Vec<String> = out
        .iter()
        .filter(|s| s.kind == "idp-group")
        .map(|s| s.name.clone())
        .collect();
    for rb in ns.objs.iter().filter(|o| o.kind() == "RoleBinding") {
        for subj in rb.doc["subjects"].as_array().into_iter().flatten() {
            let name = subj["name"].as_str().unwrap_or_default();
            match subj["kind"].as_str() {
                Some("User") => {
                    out.insert(user(name));
                }
                Some("Group") => {
                    out.insert(rbac_group(name, &groups));
                }
                Some("ServiceAccount") => {
                    let sns = subj["namespace"].as_str().unwrap_or(ns.name);
                    out.insert(s("service-account", &format!("{sns}/{name}")));
                }
                _ => {}
            }
        }
    }
    for p in ns.objs.iter().filter(|o| o.kind() == "Profile") {
        if let Some(owner) = p.spec()["owner"]["name"].as_str() {
            out.insert(user(owner));
        }
    }
    out.insert(s("any-user", "*"));
    out.insert(s("any-workload", "*"));
    out
}

/// A RoleBinding's Group as an IdP group the policies name, when it is
/// that group behind the API server's groups prefix (`oidc:`: a prefix
/// ending in `:`), else a group of its own.
fn rbac_group(name: &str, idp_groups: &[String]) -> Subject {
    for g in idp_groups {
        if let Some(prefix) = name.strip_suffix(g.as_str()) {
            if prefix.is_empty() || prefix.ends_with(':') {
                return Subject::new("idp-group", g);
            }
        }
    }
    Subject::new("group", name)
}

/// The role each subject holds in the namespace, by its RoleBindings
/// (the most permissive; among equals the first), and a Kubeflow
/// Profile's owner `admin` (the profile controller's `namespaceAdmin`
/// binding, kubeflow/dashboard
/// `components/profile-controller/controllers/profile_controller.go`).
/// Each binding's subjects are read once, not once for every subject of
/// the profile (issue 31).
fn roles(ns: &Namespace, idp_groups: &[String]) -> BTreeMap<(&'static str, String), Grant> {
    let mut best: BTreeMap<(&'static str, String), Grant> = BTreeMap::new();
    let mut offer = |subject: (&'static str, String), level: &str, by: &str| {
        if best
            .get(&subject)
            .is_none_or(|b| rank(level) > rank(&b.level))
        {
            best.insert(
                subject,
                Grant {
                    level: level.to_string(),
                    by: vec![by.to_string()],
                },
            );
        }
    };
    let s = |kind: &'static str, name: String| (kind, name);
    for rb in ns.objs.iter().filter(|o| o.kind() == "RoleBinding") {
        let mut hit: BTreeSet<(&'static str, String)> = BTreeSet::new();
        for subj in rb.doc["subjects"].as_array().into_iter().flatten() {
            let name = subj["name"].as_str().unwrap_or_default();
            match subj["kind"].as_str() {
                Some("User") => {
                    hit.insert(s("user", name.to_string()));
                    if let Some(sa) = name.strip_prefix(K8S_SA) {
                        hit.insert(s("service-account", sa.replacen(':', "/", 1)));
                    }
                }
                Some("Group") => {
                    let g = rbac_group(name, idp_groups);
                    hit.insert((g.kind, g.name));
                }
                Some("ServiceAccount") => {
                    let sns = subj["namespace"].as_str().unwrap_or(ns.name);
                    hit.insert(s("service-account", format!("{sns}/{name}")));
                }
                _ => {}
            }
        }
        if hit.is_empty() {
            continue;
        }
        let level = role_of(rb.doc["roleRef"]["name"].as_str().unwrap_or_default());
        let id = rb.id();
        for subject in hit {
            offer(subject, &level, &id);
        }
    }
    for p in ns.objs.iter().filter(|o| o.kind() == "Profile") {
        if let Some(owner) = p.spec()["owner"]["name"].as_str() {
            offer(s("user", owner.to_string()), "admin", &p.id());
        }
    }
    best
}

/// The cells of profile `ns`, sorted (issue 31: pushed and sorted by
/// subject, not inserted into a map whose every key starts with the
/// same profile).
fn profile_cells(
    ns: &Namespace,
    ctxs: &[Context],
    ambient_ns: &dyn Fn(&str) -> bool,
) -> Vec<ProfileCell> {
    let mut out = Vec::new();
    let ctx = &ctxs[0];
    let subjects = subjects(ns, ctx, &gateway_principals(ctxs));
    let idp_groups: Vec<String> = subjects
        .iter()
        .filter(|s| s.kind == "idp-group")
        .map(|s| s.name.clone())
        .collect();
    let owner_policy = ns.objs.iter().find(|o| o.kind() == "Profile");
    // By kind, then name: found without a key made for each subject.
    let mut roles_of: BTreeMap<&str, BTreeMap<String, Grant>> = BTreeMap::new();
    for ((kind, name), g) in roles(ns, &idp_groups) {
        roles_of.entry(kind).or_default().insert(name, g);
    }
    let notebooks = format!("/notebook/{}/nb/", ns.name);
    // A token is read only by a RequestAuthentication (`authorize`).
    let tokens = (ns.objs.iter().chain(ns.root)).any(|o| o.kind() == "RequestAuthentication");
    for (subject, ctx, way) in subjects.iter().flat_map(|s| ways(ctxs, s)) {
        let callers = callers(ctx, &subject, ambient_ns, tokens);
        for (cap, path) in [("api", "/"), ("notebooks", notebooks.as_str())] {
            let mut grant = None;
            let mut denied_by = Vec::new();
            for c in (callers.iter()).filter(|c| way.is_none_or(|w| w == c.from_gateway)) {
                let (ok, by) = ns.reaches(&c.to(path), c.from_gateway, c.captured);
                if ok {
                    grant = Some(Grant::yes(by));
                    break;
                }
                denied_by.extend(by);
            }
            // A Kubeflow Profile's owner is admitted by the policy the
            // profile controller makes at run time (`ns-owner-access-istio`,
            // profile_controller.go getAuthorizationPolicy), unless a
            // DENY of the tree refuses.
            if grant.is_none() && subject.kind == "user" {
                if let Some(p) =
                    owner_policy.filter(|p| p.spec()["owner"]["name"] == subject.name.as_str())
                {
                    if !denied_by.iter().any(|b| is_deny(ns, b)) {
                        grant = Some(Grant::yes(vec![p.id()]));
                    }
                }
            }
            let grant = match grant {
                Some(g) => g,
                None => match limited(ns, &subject, ctx) {
                    Some((level, by)) if cap == "api" => Grant { level, by },
                    _ => Grant::no(denied_by),
                },
            };
            if grant.granted() {
                out.push((subject.clone(), cap, grant));
            }
        }
        // A subject's role is its own, whichever gateway it comes through.
        let role = roles_of
            .get(subject.kind)
            .and_then(|r| r.get(&subject.name));
        if let Some(r) = role {
            out.push((subject.clone(), "role", r.clone()));
        }
    }
    // Stable: of two cells of one key the later holds, as in a map.
    out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    out
}

/// The ways `subject` is judged: (the subject as its row names it, the
/// gateway its requests come through, `Some(true)` only through the
/// gateway, `Some(false)` only from its pods, `None` both). One gateway:
/// the subject as it is, both ways. Several: a subject that comes through
/// a gateway gets a row per gateway (`via`), a ServiceAccount one per
/// gateway that accepts its cluster token and one for its pods.
fn ways<'c>(ctxs: &'c [Context], subject: &Subject) -> Vec<(Subject, &'c Context, Option<bool>)> {
    let via = |c: &'c Context| {
        (
            Subject {
                via: c.name.clone(),
                ..subject.clone()
            },
            c,
            Some(true),
        )
    };
    if let [one] = ctxs {
        let mut s = subject.clone();
        if matches!(subject.kind, "user" | "any-user" | "idp-group") {
            s.via = one.name.clone();
        }
        return vec![(s, one, None)];
    }
    match subject.kind {
        "user" | "any-user" | "idp-group" => ctxs.iter().map(via).collect(),
        "service-account" => std::iter::once((subject.clone(), &ctxs[0], Some(false)))
            .chain(ctxs.iter().filter(|c| !c.m2m.is_empty()).map(via))
            .collect(),
        _ => vec![(subject.clone(), &ctxs[0], None)],
    }
}

fn is_deny(ns: &Namespace, id: &str) -> bool {
    ns.objs
        .iter()
        .any(|o| o.id() == id && o.spec()["action"] == "DENY")
}

/// The namespaces of the profiles: Namespaces labelled
/// `app.kubernetes.io/part-of: kubeflow-profile` (meshgen's) and Kubeflow
/// Profiles (the profile controller makes their namespaces).
pub fn profiles_of<'a>(docs: impl Iterator<Item = &'a Value>) -> BTreeSet<&'a str> {
    let objs: Vec<Obj> = docs.filter(|d| d.is_object()).map(Obj::new).collect();
    profile_names(&objs)
}

/// The namespace `doc` belongs to: a Namespace's or a Profile's own
/// name, else its `metadata.namespace` (`None`: cluster-scoped).
pub fn home_of(doc: &Value) -> Option<&str> {
    home(&Obj::new(doc))
}

/// The namespaces of the profiles (see [`profiles_of`]).
fn profile_names<'a>(objs: &[Obj<'a>]) -> BTreeSet<&'a str> {
    objs.iter()
        .filter(|o| {
            (o.kind() == "Namespace"
                && o.doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kubeflow-profile")
                || (o.kind() == "Profile"
                    && o.doc["apiVersion"]
                        .as_str()
                        .is_some_and(|v| v.starts_with("kubeflow.org/")))
        })
        .map(|o| o.name())
        .collect()
}

/// Objects of kinds (or actions) the matrix does not model, one note per
/// kind with how many and the first few.
fn unmodelled(objs: &[Obj], profiles: &BTreeSet<&str>, gateway_ns: &[String]) -> Vec<String> {
    let mut by_kind: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in objs {
        let kind = if o.kind() == "AuthorizationPolicy"
            && o.spec()["action"] == "CUSTOM"
            && !gateway_ns.iter().any(|g| g == o.ns())
        {
            "AuthorizationPolicy/CUSTOM".to_string()
        } else {
            o.kind().to_string()
        };
        if NOT_MODELLED.contains(&kind.as_str()) {
            by_kind.entry(kind).or_default().push(o.id());
        } else if o.kind() == "AuthorizationPolicy"
            && o.spec().get("selector").is_some()
            && profiles.contains(o.ns())
        {
            by_kind
                .entry("AuthorizationPolicy with a selector (applies to some pods; not in the profiles' cells)".into())
                .or_default()
                .push(o.id());
        }
    }
    by_kind
        .into_iter()
        .map(|(kind, ids)| {
            let shown: Vec<&str> = ids.iter().take(3).map(String::as_str).collect();
            let more = if ids.len() > 3 {
                format!(" and {} more", ids.len() - 3)
            } else {
                String::new()
            };
            format!(
                "not modelled: {} {kind} ({}{more})",
                ids.len(),
                shown.join(", ")
            )
        })
        .collect()
}

/// The matrix of `tree`.
pub fn compute(tree: &Tree) -> Matrix {
    let objs: Vec<Obj> = tree
        .values()
        .flatten()
        .filter(|d| d.is_object())
        .map(Obj::new)
        .collect();
    compute_of(&objs, None)
}

/// The matrix of the objects `docs`, limited to the profiles in `only`
/// (every profile and app when `None`; no app, and no notes, when
/// limited).
pub fn compute_docs<'a>(
    docs: impl Iterator<Item = &'a Value>,
    only: Option<&BTreeSet<String>>,
) -> Matrix {
    let objs: Vec<Obj> = docs.filter(|d| d.is_object()).map(Obj::new).collect();
    compute_of(&objs, only)
}

/// The namespace an object belongs to: a Namespace's or a Profile's own
/// name, else its `metadata.namespace` (`None`: cluster-scoped).
fn home<'a>(o: &Obj<'a>) -> Option<&'a str> {
    let ns = match o.kind() {
        "Namespace" | "Profile" => o.name(),
        _ => o.ns(),
    };
    (!ns.is_empty()).then_some(ns)
}

/// When every object that differs between two trees (`touched_old` in
/// the old, `touched_new` in the new) belongs to a profile namespace and
/// nothing outside it reads them, those profiles: only their cells can
/// differ. `None` when a change may reach further: a cluster-scoped
/// object, one of the root namespace, of the gateway's or of a namespace
/// that is no profile, a profile namespace an app routes into, or a
/// Namespace whose data-plane mode changed (callers from it change way).
pub fn local_profiles<'a>(
    old: impl Iterator<Item = &'a Value>,
    new: impl Iterator<Item = &'a Value>,
    touched_old: &[&'a Value],
    touched_new: &[&'a Value],
) -> Option<BTreeSet<String>> {
    let old: Vec<Obj> = old.filter(|d| d.is_object()).map(Obj::new).collect();
    let new: Vec<Obj> = new.filter(|d| d.is_object()).map(Obj::new).collect();
    let profiles: BTreeSet<&str> = profile_names(&old)
        .into_iter()
        .chain(profile_names(&new))
        .collect();
    let gateway_ns: Vec<String> = (contexts_of(&old).into_iter())
        .chain(contexts_of(&new))
        .filter_map(|c| source_namespace(&c.gateway))
        .collect();
    let mut out = BTreeSet::new();
    for doc in touched_old
        .iter()
        .chain(touched_new)
        .filter(|d| d.is_object())
    {
        let ns = home(&Obj::new(doc))?;
        if !profiles.contains(ns) || ns == ROOT_NS || gateway_ns.iter().any(|g| g == ns) {
            return None;
        }
        out.insert(ns.to_string());
    }
    let mode = |objs: &[Obj], ns: &str| {
        objs.iter()
            .find(|o| o.kind() == "Namespace" && o.name() == ns)
            .map(|o| o.doc["metadata"]["labels"]["istio.io/dataplane-mode"].clone())
    };
    if out.iter().any(|ns| mode(&old, ns) != mode(&new, ns)) {
        return None;
    }
    for objs in [&old, &new] {
        for gw in &gateway_ns {
            if apps(objs, gw, None).iter().any(|a| out.contains(&a.3)) {
                return None;
            }
        }
    }
    Some(out)
}

/// One cell of a profile: who, what, and the grant (the profile is the
/// target).
type ProfileCell = (Subject, Capability, Grant);

/// A profile's matrix target.
fn profile_target(name: &str) -> Target {
    Target {
        kind: "profile",
        name: name.to_string(),
    }
}

/// The matrix of profiles `names` from their cells ([`profile_cells`],
/// in the profiles' order).
fn profiles_matrix(names: &[&str], cells: Vec<Vec<ProfileCell>>, several: bool) -> Matrix {
    let targets: Vec<Target> = names.iter().map(|n| profile_target(n)).collect();
    Matrix {
        cells: (targets.iter().zip(cells))
            .flat_map(|(t, cells)| {
                (cells.into_iter()).map(move |(s, cap, g)| ((t.clone(), s, cap), g))
            })
            .collect(),
        targets: targets.into_iter().collect(),
        notes: Vec::new(),
        several,
    }
}

fn compute_of(objs: &[Obj], only: Option<&BTreeSet<String>>) -> Matrix {
    use rayon::prelude::*;
    let ctxs = contexts_of(objs);
    let mut by_ns: BTreeMap<&str, Vec<Obj>> = BTreeMap::new();
    for o in objs {
        by_ns.entry(home_or_ns(o)).or_default().push(*o);
    }
    let root: Vec<Obj> = by_ns.get(ROOT_NS).cloned().unwrap_or_default();
    let ambient = ambient_namespaces(objs);
    let ambient_ns = |n: &str| ambient.contains(n);
    let names: Vec<&str> = profile_names(objs)
        .into_iter()
        .filter(|n| only.is_none_or(|o| o.contains(*n)))
        .collect();
    let per_profile: Vec<Vec<_>> = names
        .par_iter()
        .map(|name| {
            let ns = Namespace::new(
                name,
                by_ns.get(name).cloned().unwrap_or_default(),
                &root,
                None,
            );
            profile_cells(&ns, &ctxs, &ambient_ns)
        })
        .collect();
    // In the profiles' order, which is the cells' (target first): built
    // from sorted entries at once, not merged map into map.
    let mut m = profiles_matrix(&names, per_profile, ctxs.len() > 1);
    if only.is_none() {
        // With several gateways, each judges the apps it routes, and
        // their rows name it.
        let several = ctxs.len() > 1;
        for ctx in &ctxs {
            app_cells(objs, &by_ns, &root, ctx, several, &ambient_ns, &mut m);
        }
        m.notes = matrix_notes(objs, &names, &ctxs);
    }
    m
}

/// The namespaces in ambient capture (`istio.io/dataplane-mode: ambient`).
fn ambient_namespaces<'a>(objs: &[Obj<'a>]) -> BTreeSet<&'a str> {
    objs.iter()
        .filter(|o| {
            o.kind() == "Namespace"
                && o.doc["metadata"]["labels"]["istio.io/dataplane-mode"] == "ambient"
        })
        .map(|o| o.name())
        .collect()
}

/// The matrix's notes: what the tree holds that it does not model, and
/// each gateway whose pods are not in the tree.
fn matrix_notes(objs: &[Obj], profiles: &[&str], ctxs: &[Context]) -> Vec<String> {
    let gw_ns: Vec<String> = ctxs
        .iter()
        .map(|c| source_namespace(&c.gateway).unwrap_or_default())
        .collect();
    let mut notes = unmodelled(objs, &profiles.iter().copied().collect(), &gw_ns);
    for ctx in ctxs {
        if !objs
            .iter()
            .any(|o| o.kind() == "Deployment" && ctx.by.iter().any(|b| b.contains(o.ns())))
        {
            notes.push(format!(
                "the gateway's pods are not in the tree: its principal is taken to be {}",
                ctx.gateway
            ));
        }
    }
    notes
}

/// Kinds a file may hold and be read with its profile alone (see
/// [`compute_in_parts`]): what only the cells of its own namespace read.
const LOCAL_KINDS: &[&str] = &[
    "Namespace",
    "Profile",
    "AuthorizationPolicy",
    "RoleBinding",
    "ServiceAccount",
    "NetworkPolicy",
    "PeerAuthentication",
];

/// Of [`LOCAL_KINDS`], those no cell reads (the notes read a
/// NetworkPolicy light: [`light_form`]).
const UNREAD_BY_CELLS: &[&str] = &["ServiceAccount", "NetworkPolicy", "PeerAuthentication"];

/// Profiles computed at once by [`compute_in_parts`], on all cores.
const PART: usize = 128;

/// What [`compute_in_parts`] hands out: the notes, once and first, then
/// the cells, part by part.
pub enum Part<'m> {
    Notes(&'m [String]),
    Cells(&'m Matrix),
    /// The CSV lines of a part of the profiles ([`Matrix::write_csv_rows`]
    /// of its cells), made where its cells are, on all cores: asked for
    /// with [`Text::Csv`] (issue 31: building each part's matrix to write
    /// it, then writing it on one thread, was a tenth of the CPU at 10,000
    /// profiles).
    Csv(&'m [u8]),
    /// The JSON rows of a part of the profiles, each after `,\n`
    /// ([`JsonRows::text`] writes them), asked for with [`Text::Json`].
    Json(&'m [u8]),
    /// The table lines of a part of the profiles ([`Matrix::table_lines`]:
    /// its rows, and its profiles nobody reaches), asked for with
    /// [`Text::Table`].
    Table(TableLines),
}

/// A table's rows (target, subject, role, notebooks, API) and its lines
/// of targets nobody reaches, before its columns are aligned
/// ([`format_table`]).
pub type TableLines = (Vec<TableRow>, Vec<String>);

/// A table row's five fields (target, subject, role, notebooks, API),
/// held as one string (issue 31: at 10,000 profiles, five strings a row
/// took the table past 300 MiB). Each field is escaped
/// (`escape_controls`), so it holds no NUL, which separates them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRow(String);

impl TableRow {
    pub fn new(fields: [&str; 5]) -> TableRow {
        TableRow(fields.join("\0"))
    }

    /// Its five fields.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.split('\0')
    }
}

/// The text [`compute_in_parts`] makes of the profiles' cells where they
/// are computed, instead of handing out each part's matrix.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Text {
    Csv,
    Json,
    Table,
}

/// Why [`compute_in_parts`] stopped: the tree could not be read, or a
/// part could not be written.
#[derive(Debug)]
pub enum PartsError {
    Tree(String),
    Write(std::io::Error),
}

impl From<std::io::Error> for PartsError {
    fn from(e: std::io::Error) -> Self {
        PartsError::Write(e)
    }
}

/// Whether a light object of a profile's file is read before the cells:
/// what the profiles, the ambient namespaces and the notes of
/// unmodelled objects ([`unmodelled`]) are made of.
fn light_kept(o: &Obj) -> bool {
    matches!(o.kind(), "Namespace" | "Profile")
        || NOT_MODELLED.contains(&o.kind())
        || (o.kind() == "AuthorizationPolicy"
            && (o.spec()["action"] == "CUSTOM" || o.spec().get("selector").is_some()))
}

/// What is kept of a light object: of one the notes only count (a
/// NetworkPolicy), its kind, name and namespace (issue 31: at 10,000
/// profiles their NetworkPolicies are 20,000 objects).
fn light_form(d: Value) -> Value {
    let o = Obj::new(&d);
    if o.kind() != "AuthorizationPolicy" && NOT_MODELLED.contains(&o.kind()) {
        serde_json::json!({"kind": o.kind(), "metadata": {"name": o.name(), "namespace": o.ns()}})
    } else {
        d
    }
}

/// The objects of two trees with different files, in the order of one
/// tree of both (by file, then as in the file), each with its file.
fn in_file_order<'a>(a: &'a Tree, b: &'a Tree) -> Vec<(&'a str, Obj<'a>)> {
    let mut files: Vec<(&String, &Vec<Value>)> = a.iter().chain(b.iter()).collect();
    files.sort_by(|x, y| x.0.cmp(y.0));
    files
        .into_iter()
        .flat_map(|(p, docs)| docs.iter().map(move |d| (p.as_str(), Obj::new(d))))
        .collect()
}

/// A file as [`compute_in_parts`] reads it first: a profile's own, or
/// any other (kept whole).
enum Read {
    Whole(Vec<Value>),
    /// A profile's own file (its namespace): what is read before the
    /// cells, and, read from disk, what its cells read as compact JSON.
    Own(String, Vec<Value>, Option<Vec<u8>>),
}

/// The first read of file `key` of `lazy` (`None`: left out). A file on
/// disk is read once: each object built light ([`super::tree::LIGHT`])
/// and written as compact JSON of what the matrix reads
/// ([`super::tree::SELECT`]), in one pass; a render's, in memory, is
/// read light, and a profile's own again in full for its cells (their
/// JSON beside the render's text was more than 300 MiB).
fn first_read(
    lazy: &super::tree::Lazy,
    key: &String,
    once: bool,
) -> Result<Option<(String, Read)>, String> {
    use super::tree::{LIGHT, SELECT};
    // Each object, light, with its JSON when read once.
    let super::tree::Split { docs, json } = if once {
        match lazy.split(key, LIGHT, SELECT)? {
            Some(split) => split,
            None => return Ok(None),
        }
    } else {
        let Some(docs) = lazy.objects(key, Some(LIGHT))? else {
            return Ok(None);
        };
        super::tree::Split {
            docs: docs.into_iter().map(|d| (d, 0..0)).collect(),
            json: Vec::new(),
        }
    };
    let objs: Vec<Obj> = docs.iter().map(|(d, _)| Obj::new(d)).collect();
    let homes: BTreeSet<Option<&str>> = objs.iter().map(home).collect();
    let own = match homes.iter().collect::<Vec<_>>().as_slice() {
        [Some(ns)] if *ns != ROOT_NS && objs.iter().all(|o| LOCAL_KINDS.contains(&o.kind())) => {
            Some(ns.to_string())
        }
        _ => None,
    };
    let keep: Vec<(bool, bool)> = objs
        .iter()
        .map(|o| (light_kept(o), !UNREAD_BY_CELLS.contains(&o.kind())))
        .collect();
    drop(objs);
    Ok(Some(match own {
        Some(ns) => {
            // What the cells read, as one JSON list: not the kinds only a
            // namespace's own files may also hold.
            let read = once.then(|| {
                let mut out = b"[".to_vec();
                for ((_, range), _) in docs.iter().zip(&keep).filter(|(_, k)| k.1) {
                    if out.len() > 1 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&json[range.clone()]);
                }
                out.push(b']');
                out
            });
            let kept = docs
                .into_iter()
                .zip(keep)
                .filter_map(|((d, _), k)| k.0.then(|| light_form(d)))
                .collect();
            (key.clone(), Read::Own(ns, kept, read))
        }
        None if once => {
            // In full: each object's JSON read back.
            let docs = (docs.iter())
                .map(|(_, r)| serde_json::from_slice(&json[r.clone()]))
                .collect::<Result<Vec<Value>, _>>()
                .map_err(|e| format!("{key}: {e}"))?;
            (key.clone(), Read::Whole(docs))
        }
        None => (
            key.clone(),
            Read::Whole(lazy.objects(key, Some(SELECT))?.unwrap_or_default()),
        ),
    }))
}

/// [`compute`] of the tree `lazy` with the files `with`, handed out in
/// parts, each sorted and after the one before: the notes first
/// then the apps, then the profiles a few hundred at a time; the cells are the same (issue 31: at 10,000 profiles,
/// 800,000 cells and every profile's objects were 1.2 GiB).
///
/// A tree on disk is read once (issue 31). Each file is parsed for what
/// the matrix reads ([`super::tree::SELECT`]); a file whose objects are
/// all of one namespace and of [`LOCAL_KINDS`] is a profile's own: only
/// what the notes and the profile list read of it is kept as objects,
/// and all of it as compact JSON, read back for its profile's cells (the
/// objects themselves of 10,000 profiles were 700 MiB; their JSON is
/// 80 MB). Any other file is kept. A render's files are in memory: each
/// is read light first ([`super::tree::LIGHT`]) and a profile's own
/// again in full for its cells, since their JSON beside the render's
/// text was more than 300 MiB. A namespace whose own files are read in
/// full before any cell: one that is no profile, the gateway's, the root
/// namespace, or one an app routes to (what the apps' cells read). Then,
/// a part of profiles at a time, each profile's own objects are read,
/// its cells computed from them and the kept files' objects of its
/// namespace (in the tree's order), and dropped. With `text`, a part of
/// profiles is handed out as that text ([`Part::Csv`], [`Part::Json`],
/// [`Part::Table`]), made with each profile's cells on all cores, not as
/// a matrix; the notes and the apps' part are as without.
pub fn compute_in_parts(
    lazy: &super::tree::Lazy,
    with: Tree,
    text: Option<Text>,
    each: &mut dyn FnMut(Part) -> std::io::Result<()>,
) -> Result<(), PartsError> {
    use super::tree::SELECT;
    use rayon::prelude::*;
    let once = lazy.on_disk();
    let read = lazy
        .keys()
        .par_iter()
        .map(|key| first_read(lazy, key, once))
        .collect::<Result<Vec<_>, String>>()
        .map_err(PartsError::Tree)?;
    let mut whole: Tree = BTreeMap::new();
    let mut light: Tree = BTreeMap::new();
    let mut own: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut packed: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (key, r) in read.into_iter().flatten() {
        match r {
            Read::Whole(docs) => {
                whole.insert(key, docs);
            }
            Read::Own(ns, docs, json) => {
                light.insert(key.clone(), docs);
                if let Some(json) = json {
                    packed.insert(key.clone(), json);
                }
                own.entry(ns).or_default().push(key);
            }
        }
    }
    // A profile's own file in full: its JSON, or the file read again.
    let unpack = |key: &str| -> Result<Vec<Value>, String> {
        match packed.get(key) {
            Some(json) => serde_json::from_slice(json).map_err(|e| format!("{key}: {e}")),
            None => Ok(lazy.objects(key, Some(SELECT))?.unwrap_or_default()),
        }
    };
    // The `--with` files, over any of the tree's of the same name.
    for (key, docs) in with {
        if light.remove(&key).is_some() {
            for keys in own.values_mut() {
                keys.retain(|k| *k != key);
            }
        }
        whole.insert(key, docs);
    }
    let again: Vec<String> = {
        let objs: Vec<Obj> = in_file_order(&whole, &light)
            .into_iter()
            .map(|(_, o)| o)
            .collect();
        let profiles = profile_names(&objs);
        let gw_ns: Vec<String> = (contexts_of(&objs).iter())
            .filter_map(|c| source_namespace(&c.gateway))
            .collect();
        let dests: BTreeSet<String> = (gw_ns.iter())
            .flat_map(|g| apps(&objs, g, None))
            .map(|a| a.3)
            .collect();
        own.keys()
            .filter(|n| !profiles.contains(n.as_str()) || gw_ns.contains(*n) || dests.contains(*n))
            .cloned()
            .collect()
    };
    for ns in again {
        for key in own.remove(&ns).unwrap_or_default() {
            light.remove(&key);
            // Read again in full: its JSON has only what the cells read.
            let docs = lazy.objects(&key, Some(SELECT)).map_err(PartsError::Tree)?;
            whole.insert(key.clone(), docs.unwrap_or_default());
        }
    }
    // As `compute_of`, over the kept objects.
    let objs: Vec<Obj> = in_file_order(&whole, &light)
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    let ctxs = contexts_of(&objs);
    let several = ctxs.len() > 1;
    let mut by_ns: BTreeMap<&str, Vec<(&str, Obj)>> = BTreeMap::new();
    for (p, docs) in &whole {
        for o in docs.iter().map(Obj::new) {
            by_ns
                .entry(home_or_ns(&o))
                .or_default()
                .push((p.as_str(), o));
        }
    }
    let whole_by_ns: BTreeMap<&str, Vec<Obj>> = by_ns
        .iter()
        .map(|(n, v)| (*n, v.iter().map(|(_, o)| *o).collect()))
        .collect();
    let root: Vec<Obj> = whole_by_ns.get(ROOT_NS).cloned().unwrap_or_default();
    let ambient = ambient_namespaces(&objs);
    let ambient_ns = |n: &str| ambient.contains(n);
    let names: Vec<&str> = profile_names(&objs).into_iter().collect();
    let mut first = Matrix {
        notes: matrix_notes(&objs, &names, &ctxs),
        several,
        ..Matrix::default()
    };
    each(Part::Notes(&first.notes))?;
    for ctx in &ctxs {
        app_cells(
            &objs,
            &whole_by_ns,
            &root,
            ctx,
            several,
            &ambient_ns,
            &mut first,
        );
    }
    each(Part::Cells(&first))?;
    drop(first);
    let part = |chunk: &[&str]| -> Result<Made, String> {
        let made = chunk
            .par_iter()
            .map(|name| {
                let mut docs: Vec<(&str, Vec<Value>)> = Vec::new();
                for key in own.get(*name).into_iter().flatten() {
                    docs.push((key.as_str(), unpack(key)?));
                }
                let mut mine: Vec<(&str, Obj)> = by_ns.get(name).cloned().unwrap_or_default();
                mine.extend(
                    docs.iter()
                        .flat_map(|(p, d)| d.iter().map(move |d| (*p, Obj::new(d)))),
                );
                // The tree's order: by file, then as in the file.
                mine.sort_by(|a, b| a.0.cmp(b.0));
                let ns = Namespace::new(
                    name,
                    mine.into_iter().map(|(_, o)| o).collect(),
                    &root,
                    None,
                );
                let cells = profile_cells(&ns, &ctxs, &ambient_ns);
                // Asked for, its text, the cells dropped here.
                Ok(match text {
                    Some(Text::Table) => {
                        let m = profiles_matrix(&[name], vec![cells], several);
                        Made::Table(m.table_lines())
                    }
                    Some(t) => Made::Text(profile_text(t, name, &cells, several)),
                    None => Made::Cells(cells),
                })
            })
            .collect::<Result<Vec<Made>, String>>()?;
        Ok(match text {
            Some(Text::Csv | Text::Json) => Made::Text(
                (made.into_iter())
                    .map(|m| match m {
                        Made::Text(t) => t,
                        _ => Vec::new(),
                    })
                    .collect::<Vec<Vec<u8>>>()
                    .concat(),
            ),
            Some(Text::Table) => {
                let mut lines: TableLines = Default::default();
                for m in made {
                    if let Made::Table((rows, nobody)) = m {
                        lines.0.extend(rows);
                        lines.1.extend(nobody);
                    }
                }
                Made::Table(lines)
            }
            None => {
                let cells = (made.into_iter())
                    .map(|m| match m {
                        Made::Cells(c) => c,
                        _ => Vec::new(),
                    })
                    .collect();
                Made::Matrix(profiles_matrix(chunk, cells, several))
            }
        })
    };
    // Each part is handed out while the next is computed, by one thread
    // (one allocator heap) ahead of at most one part.
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        s.spawn(move || {
            for chunk in names.chunks(PART) {
                if tx.send(part(chunk)).is_err() {
                    break;
                }
            }
        });
        for m in rx {
            match m.map_err(PartsError::Tree)? {
                Made::Matrix(m) => each(Part::Cells(&m))?,
                Made::Text(t) if text == Some(Text::Json) => each(Part::Json(&t))?,
                Made::Text(t) => each(Part::Csv(&t))?,
                Made::Table(lines) => each(Part::Table(lines))?,
                Made::Cells(_) => {}
            }
        }
        Ok(())
    })
}

/// What [`compute_in_parts`] makes of a part: its matrix, or its CSV
/// lines.
enum Made {
    Cells(Vec<ProfileCell>),
    Matrix(Matrix),
    Text(Vec<u8>),
    Table(TableLines),
}

/// The CSV lines of one profile's `cells` (sorted by subject and
/// capability; of two of one key the later holds, as in a matrix's map:
/// `rows_of` puts the later in the row).
fn profile_text(text: Text, name: &str, cells: &[ProfileCell], several: bool) -> Vec<u8> {
    debug_assert!(text != Text::Table, "a table's lines are aligned whole");
    let target = profile_target(name);
    let rows = rows_of(cells.iter().map(|(s, cap, g)| (&target, s, *cap, g)));
    let mut out = Vec::new();
    // Writing to memory does not fail.
    let _ = match text {
        Text::Csv => write_csv_rows_of(&rows, several, &mut out),
        Text::Json => (rows.iter()).try_for_each(|r| {
            out.extend_from_slice(b",\n");
            write_json_row(r, several, &mut out)
        }),
        Text::Table => Ok(()),
    };
    out
}

/// The namespace whose objects `o` is among, as `compute_of` groups
/// them: a Namespace's or a Profile's own name, else its namespace.
fn home_or_ns<'a>(o: &Obj<'a>) -> &'a str {
    if o.kind() == "Namespace" || o.kind() == "Profile" {
        o.name()
    } else {
        o.ns()
    }
}

/// A request at the gateway, for the apps.
struct GwReq<'a> {
    host: &'a str,
    path: &'a str,
    port: String,
    /// The client sends an `Authorization` header (a token).
    authorization: bool,
    /// A token the gateway verified: (issuer, claims).
    verified: Option<(&'a str, &'a Value)>,
}

fn gateway_rule_matches(rule: &Value, req: &GwReq) -> bool {
    let rule = Rule::new(rule);
    let from_ok = rule.from_ok(None, req.verified);
    let to_ok = rule.to_ok(Some(req.host), req.path, Some(&req.port));
    let when_ok = rule.when.iter().all(|w| {
        let v: Vec<String> = if &*w.key == "request.headers[authorization]" {
            if req.authorization {
                vec!["Bearer x".into()]
            } else {
                Vec::new()
            }
        } else {
            let none = Req {
                principal: Cow::Borrowed(""),
                header: None,
                token: None,
                path: "",
                port: None,
            };
            // The identity headers are the gateway's to set, after.
            (attribute(&none, req.verified.map(|(_, c)| c), &w.key)
                .into_iter()
                .flatten())
            .map(Cow::into_owned)
            .collect()
        };
        w.holds(&v)
    });
    from_ok && to_ok && when_ok
}

/// The HTTPS pod port of the gateway: its Istio Gateway's HTTPS server,
/// or its Gateway API HTTPS listener's Service port translated to the
/// pods' `targetPort`.
fn https_port(objs: &[Obj], gw_ns: &str, own: Option<&[(String, String)]>) -> String {
    for g in objs
        .iter()
        .filter(|o| o.kind() == "Gateway" && o.ns() == gw_ns)
        .filter(|o| own.is_none_or(|own| is_own(own, o.ns(), o.name())))
    {
        for s in g.spec()["servers"].as_array().into_iter().flatten() {
            if s["port"]["protocol"] == "HTTPS" {
                return s["port"]["number"].to_string();
            }
        }
        for l in g.spec()["listeners"].as_array().into_iter().flatten() {
            if l["protocol"] == "HTTPS" {
                let target = objs
                    .iter()
                    .filter(|o| o.kind() == "Service" && o.ns() == gw_ns)
                    .flat_map(|o| o.spec()["ports"].as_array().into_iter().flatten())
                    .find(|p| p["port"] == l["port"])
                    .map(|p| p["targetPort"].to_string());
                return target.unwrap_or_else(|| l["port"].to_string());
            }
        }
    }
    "443".into()
}

/// An app: a named route of the gateway (VirtualService `http` item or
/// HTTPRoute rule) to a Service: (name, host, path, destination namespace).
type App = (String, String, String, String, String, u64);

/// Whether `ns/name` is one of `own` (a gateway's Gateway objects).
fn is_own(own: &[(String, String)], ns: &str, name: &str) -> bool {
    own.iter().any(|(n, m)| n == ns && m == name)
}

/// The Gateway objects (namespace, name) serving pods labelled `labels`
/// in `ns`: an Istio Gateway whose `selector` they match (in any
/// namespace), a Gateway API Gateway of their namespace named by their
/// `gateway.networking.k8s.io/gateway-name` label.
fn gateways_of(objs: &[Obj], labels: &Value, ns: &str) -> Vec<(String, String)> {
    objs.iter()
        .filter(|o| o.kind() == "Gateway")
        .filter(|o| {
            if o.doc["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("gateway.networking.k8s.io/"))
            {
                o.ns() == ns && labels["gateway.networking.k8s.io/gateway-name"] == o.name()
            } else {
                o.spec()["selector"]
                    .as_object()
                    .is_some_and(|sel| !sel.is_empty() && sel.iter().all(|(k, v)| labels[k] == *v))
            }
        })
        .map(|o| (o.ns().to_string(), o.name().to_string()))
        .collect()
}

/// The apps routed by the gateways in `gw_ns`, or, given `own`, by those
/// Gateway objects only.
fn apps(objs: &[Obj], gw_ns: &str, own: Option<&[(String, String)]>) -> Vec<App> {
    let mut out = Vec::new();
    let dest_ns = |host: &str, own: &str| -> String {
        let mut parts = host.split('.');
        let _svc = parts.next();
        parts.next().map_or(own.to_string(), String::from)
    };
    for vs in objs.iter().filter(|o| o.kind() == "VirtualService") {
        let bound = strs(&vs.spec()["gateways"]).iter().any(|g| match own {
            Some(own) => {
                let (ns, name) = g.split_once('/').unwrap_or((vs.ns(), g));
                is_own(own, ns, name)
            }
            None => g.starts_with(&format!("{gw_ns}/")) || (!g.contains('/') && vs.ns() == gw_ns),
        });
        if !bound {
            continue;
        }
        for host in strs(&vs.spec()["hosts"]).into_iter().take(1) {
            for r in vs.spec()["http"].as_array().into_iter().flatten() {
                let Some(name) = r["name"].as_str() else {
                    continue;
                };
                let Some(dest) = r["route"][0]["destination"]["host"].as_str() else {
                    continue;
                };
                // A path under the prefix (`/oauth2` → `/oauth2/`).
                let path = match r["match"][0]["uri"]["prefix"].as_str() {
                    Some(p) if !p.ends_with('/') => format!("{p}/"),
                    Some(p) => p.to_string(),
                    None => r["match"][0]["uri"]["exact"]
                        .as_str()
                        .unwrap_or("/")
                        .to_string(),
                };
                let svc = dest.split('.').next().unwrap_or_default().to_string();
                let port = r["route"][0]["destination"]["port"]["number"]
                    .as_u64()
                    .unwrap_or(80);
                out.push((
                    name.to_string(),
                    host.to_string(),
                    path.to_string(),
                    dest_ns(dest, vs.ns()),
                    svc,
                    port,
                ));
            }
        }
    }
    for hr in objs.iter().filter(|o| o.kind() == "HTTPRoute") {
        let bound = hr.spec()["parentRefs"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| {
                let ns = p["namespace"].as_str().unwrap_or(hr.ns());
                match own {
                    Some(own) => is_own(own, ns, p["name"].as_str().unwrap_or_default()),
                    None => ns == gw_ns,
                }
            });
        if !bound {
            continue;
        }
        for host in strs(&hr.spec()["hostnames"]).into_iter().take(1) {
            for r in hr.spec()["rules"].as_array().into_iter().flatten() {
                let Some(be) = r["backendRefs"][0].as_object() else {
                    continue;
                };
                let name = r["name"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| hr.name().trim_start_matches("app-").to_string());
                let path = match r["matches"][0]["path"]["value"].as_str() {
                    Some(p) if !p.ends_with('/') && r["matches"][0]["path"]["type"] != "Exact" => {
                        format!("{p}/")
                    }
                    Some(p) => p.to_string(),
                    None => "/".to_string(),
                };
                let ns = be
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(hr.ns());
                let svc = be
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let port = be.get("port").and_then(Value::as_u64).unwrap_or(80);
                out.push((
                    name,
                    host.to_string(),
                    path.to_string(),
                    ns.to_string(),
                    svc,
                    port,
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A caller of the apps: (subject, its token's issuer and claims, sends
/// `Authorization`, logs in).
type Class = (Subject, Option<(String, Value)>, bool, bool);

/// The apps' cells: who the gateway lets through to each (its CUSTOM
/// login, JWT verification, DENY then ALLOW policies on the pods' HTTPS
/// port), and then the app namespace's policies for the gateway.
/// Each row names the gateway (`via`); with `several` gateways, only the
/// apps `ctx`'s Gateway objects route.
fn app_cells(
    objs: &[Obj],
    by_ns: &BTreeMap<&str, Vec<Obj>>,
    root: &[Obj],
    ctx: &Context,
    several: bool,
    ambient_ns: &dyn Fn(&str) -> bool,
    m: &mut Matrix,
) {
    let gw_ns = source_namespace(&ctx.gateway).unwrap_or_default();
    let pods = objs.iter().find(|d| {
        d.kind() == "Deployment"
            && d.ns() == gw_ns
            && format!(
                "cluster.local/ns/{gw_ns}/sa/{}",
                d.spec()["template"]["spec"]["serviceAccountName"]
                    .as_str()
                    .unwrap_or("default")
            ) == ctx.gateway
    });
    let Some(pods) = pods else { return };
    let labels = pod_labels(pods);
    let policies: Vec<Obj> = objs
        .iter()
        .filter(|o| o.kind() == "AuthorizationPolicy" && attaches(o, labels, &gw_ns))
        .copied()
        .collect();
    let ra_rules: Vec<&Value> = objs
        .iter()
        .filter(|o| o.kind() == "RequestAuthentication" && ctx.by.contains(&o.id()))
        .flat_map(|o| o.spec()["jwtRules"].as_array().into_iter().flatten())
        .collect();
    let own = several.then(|| gateways_of(objs, labels, &gw_ns));
    let own = own.as_deref();
    let via = ctx.name.clone();
    let subject = |kind: &'static str, name: String| Subject {
        kind,
        name,
        via: via.clone(),
    };
    let port = https_port(objs, &gw_ns, own);
    // (subject, token claims, sends Authorization, logs in)
    let mut classes: Vec<Class> = vec![
        (subject("anonymous", "*".into()), None, false, false),
        (
            subject("any-user", "*".into()),
            ctx.user_issuer.as_ref().map(|(iss, _)| {
                (
                    iss.clone(),
                    serde_json::json!({"sub": NOBODY, "email": NOBODY, "aud": "oauth2-proxy"}),
                )
            }),
            false,
            true,
        ),
    ];
    for r in &ra_rules {
        let iss = r["issuer"].as_str().unwrap_or_default();
        for aud in strs(&r["audiences"]) {
            let claims = if ctx.m2m.iter().any(|(i, _, _)| i == iss) {
                serde_json::json!({"sub": "system:serviceaccount:meshgen-nowhere:default", "aud": aud})
            } else {
                serde_json::json!({"sub": NOBODY, "email": NOBODY, "aud": aud})
            };
            classes.push((
                subject("token", format!("{iss} aud={aud}")),
                Some((iss.to_string(), claims)),
                true,
                false,
            ));
        }
    }
    let action = |p: &Obj| p.spec()["action"].as_str().unwrap_or("ALLOW").to_string();
    for (name, host, path, dest, svc, svc_port) in apps(objs, &gw_ns, own) {
        let target = Target {
            kind: "app",
            name: name.clone(),
        };
        m.targets.insert(target.clone());
        for (subject, token, authorization, logs_in) in &classes {
            let verified = token.as_ref().map(|(i, c)| (i.as_str(), c));
            let req = GwReq {
                host: &host,
                path: &path,
                port: port.clone(),
                authorization: *authorization,
                verified: if *logs_in { None } else { verified },
            };
            let mut by: Vec<String> = Vec::new();
            // CUSTOM (the login) first: a match without a session is a
            // redirect to the login page.
            let login = policies.iter().filter(|p| action(p) == "CUSTOM").find(|p| {
                p.spec()["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| gateway_rule_matches(r, &req))
            });
            if let Some(p) = login {
                by.push(p.id());
                if !logs_in {
                    continue;
                }
            }
            // After the login, the session's token (oauth2-proxy's ID
            // token, which ext-authz puts in `authorization`): only where
            // the gateway asks for the login. At a gateway that does not (a
            // `token` gateway), a browser's session is a cookie only.
            let req = if login.is_some() || !logs_in {
                GwReq { verified, ..req }
            } else {
                req
            };
            if let Some(p) = policies.iter().filter(|p| action(p) == "DENY").find(|p| {
                p.spec()["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| gateway_rule_matches(r, &req))
            }) {
                let _ = p;
                continue;
            }
            let allow: Vec<&Obj> = policies.iter().filter(|p| action(p) == "ALLOW").collect();
            let allowed_by = allow.iter().find(|p| {
                p.spec()["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| gateway_rule_matches(r, &req))
            });
            match allowed_by {
                Some(p) => by.push(p.id()),
                None if allow.is_empty() => {}
                None => continue,
            }
            // The app's namespace, for the gateway with the identity it set.
            let user = match token {
                Some((_, c)) => c["email"]
                    .as_str()
                    .or(c["sub"].as_str())
                    .unwrap_or_default()
                    .to_string(),
                None => String::new(),
            };
            let objs_here: &[Obj] = by_ns.get(dest.as_str()).map_or(&[], |v| v.as_slice());
            let service = objs_here
                .iter()
                .find(|o| o.kind() == "Service" && o.name() == svc);
            // The pods' port behind the route's Service port.
            let target_port = service.and_then(|s| {
                s.spec()["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["port"].as_u64() == Some(svc_port))
                    .and_then(|p| match &p["targetPort"] {
                        Value::Null => Some(p["port"].to_string()),
                        // A named port: the containerPort of that name in
                        // the pods the Service selects.
                        Value::String(name) => objs_here
                            .iter()
                            .filter(|d| d.kind() == "Deployment")
                            .filter(|d| {
                                s.spec()["selector"].as_object().is_some_and(|sel| {
                                    sel.iter().all(|(k, v)| pod_labels(d)[k] == *v)
                                })
                            })
                            .flat_map(|d| {
                                d.spec()["template"]["spec"]["containers"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                            })
                            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                            .find(|cp| cp["name"] == name.as_str())
                            .map(|cp| cp["containerPort"].to_string()),
                        v => Some(v.to_string()),
                    })
            });
            let dreq = Req {
                principal: Cow::Borrowed(&ctx.gateway),
                header: Some((&ctx.user_header, &user)),
                token: None,
                path: &path,
                port: target_port.as_deref(),
            };
            let ns = Namespace::new(
                &dest,
                objs_here.to_vec(),
                root,
                service.map(|s| &s.spec()["selector"]),
            );
            let _ = ambient_ns;
            let (ok, b) = ns.reaches(&dreq, true, false);
            if ok {
                by.extend(b);
                m.cells
                    .insert((target.clone(), subject.clone(), "api"), Grant::yes(by));
            }
        }
    }
}

/// The rows of `cells` (sorted by target, subject and capability): a row
/// per target and subject, with its three cells.
fn rows_of<'a>(
    cells: impl Iterator<Item = (&'a Target, &'a Subject, Capability, &'a Grant)>,
) -> Vec<Row<'a>> {
    let mut rows: Vec<Row> = Vec::new();
    for (t, s, cap, g) in cells {
        let i = CAPABILITIES.iter().position(|c| *c == cap).unwrap_or(0);
        match rows.last_mut() {
            Some(r) if r.target == t && r.subject == s => r.cells[i] = Some(g),
            _ => {
                let mut cells = [None; 3];
                cells[i] = Some(g);
                rows.push(Row {
                    target: t,
                    subject: s,
                    cells,
                });
            }
        }
    }
    rows
}

/// The CSV lines of `rows` (see [`Matrix::write_csv`]); `several`: a
/// subject's gateway is printed.
fn write_csv_rows_of(
    rows: &[Row],
    several: bool,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let mut by: Vec<&str> = Vec::new();
    for r in rows {
        fn level(c: Option<&Grant>) -> &str {
            c.map_or("no", |g| g.level.as_str())
        }
        by.clear();
        by.extend(
            r.cells
                .iter()
                .flatten()
                .flat_map(|g| g.by.iter().map(String::as_str)),
        );
        by.sort_unstable();
        by.dedup();
        let fields = [
            r.target.kind,
            r.target.name.as_str(),
            r.subject.kind,
            &label_of(r.subject, several),
            level(r.cells[0]),
            level(r.cells[1]),
            r.cells[2].map_or("", |g| g.level.as_str()),
        ];
        for f in fields {
            write_csv_field(out, f)?;
            out.write_all(b",")?;
        }
        write_csv_field(out, &by.join(" "))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// One row: a target and a subject, with their three cells.
pub struct Row<'a> {
    pub target: &'a Target,
    pub subject: &'a Subject,
    pub cells: [Option<&'a Grant>; 3],
}

impl Matrix {
    /// The rows, sorted by target then subject.
    pub fn rows(&self) -> Vec<Row<'_>> {
        rows_of(self.cells.iter().map(|((t, s, c), g)| (t, s, *c, g)))
    }

    /// As JSON: `{"rows": [{target, subject, api, notebooks, role}],
    /// "notes": [...]}`, a cell `{level, by}` or null (`no`).
    pub fn to_json(&self) -> String {
        let rows: Vec<Value> = (self.rows().iter())
            .map(|r| row_json(r, self.several))
            .collect();
        let mut text = serde_json::to_string_pretty(&serde_json::json!({
            "rows": rows,
            "notes": self.notes,
        }))
        .unwrap_or_default();
        text.push('\n');
        text
    }

    /// As CSV (RFC 4180), one row per target and subject; `by` lists
    /// the deciding objects of every cell, space-separated.
    pub fn to_csv(&self) -> String {
        let mut out = Vec::new();
        // Writing to memory does not fail, and every field is UTF-8.
        let _ = self.write_csv(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// [`Self::to_csv`], row by row into `out`: at 10,000 profiles the
    /// text is 43 MB, not held whole beside the matrix (issue 31).
    pub fn write_csv(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        out.write_all(CSV_HEADER.as_bytes())?;
        self.write_csv_rows(out)
    }

    /// [`Self::write_csv`] without its header line.
    pub fn write_csv_rows(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        write_csv_rows_of(&self.rows(), self.several, out)
    }

    /// For a terminal: aligned columns, every control character of a
    /// name escaped (`escape_controls`).
    pub fn to_table(&self) -> String {
        let (rows, nobody) = self.table_lines();
        format_table(rows, &nobody)
    }

    /// The rows of [`Self::to_table`] before their columns are aligned,
    /// and its lines of targets nobody reaches: a matrix computed in parts
    /// ([`compute_in_parts`]) gives its parts' in turn, and
    /// [`format_table`] aligns them all (issue 31: the text of the rows,
    /// not the matrix, is held).
    pub fn table_lines(&self) -> TableLines {
        use crate::diagnostic::escape_controls;
        let rows = self.rows();
        let mut lines: Vec<TableRow> = Vec::with_capacity(rows.len());
        for r in &rows {
            fn level(c: Option<&Grant>) -> Cow<'_, str> {
                c.map_or("no".into(), |g| {
                    crate::diagnostic::escape_controls(&g.level)
                })
            }
            lines.push(TableRow::new([
                &format!("{} {}", r.target.kind, escape_controls(&r.target.name)),
                &format!(
                    "{} {}",
                    r.subject.kind,
                    escape_controls(&self.label(r.subject))
                ),
                &r.cells[2].map_or("-".into(), |g| escape_controls(&g.level)),
                &if r.target.kind == "app" {
                    "-".into()
                } else {
                    level(r.cells[1])
                },
                &level(r.cells[0]),
            ]));
        }
        let reached: BTreeSet<&Target> = rows.iter().map(|r| r.target).collect();
        let nobody = (self.targets.iter())
            .filter(|t| !reached.contains(t))
            .map(|t| format!("{} {}: nobody\n", t.kind, escape_controls(&t.name)))
            .collect();
        (lines, nobody)
    }
}

/// [`Matrix::to_table`] of the rows and unreached targets
/// [`Matrix::table_lines`] gives: a header, aligned columns, then the
/// targets nobody reaches.
pub fn format_table(rows: Vec<TableRow>, nobody: &[String]) -> String {
    let mut out = Vec::new();
    // Writing to memory does not fail, and every line is UTF-8.
    let _ = write_table(rows, nobody, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// [`format_table`], line by line into `out` (issue 31: at 10,000
/// profiles the table is 36 MB, not held whole beside its rows).
pub fn write_table(
    rows: Vec<TableRow>,
    nobody: &[String],
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let header = TableRow::new(["TARGET", "SUBJECT", "ROLE", "NOTEBOOKS", "API"]);
    let lines: Vec<TableRow> = std::iter::once(header).chain(rows).collect();
    let mut widths = [0usize; 4];
    for l in &lines {
        for (w, f) in widths.iter_mut().zip(l.fields()) {
            *w = (*w).max(f.chars().count());
        }
    }
    let mut line = String::new();
    for l in &lines {
        line.clear();
        for (i, f) in l.fields().enumerate() {
            line.push_str(f);
            if let Some(w) = widths.get(i) {
                line.extend(std::iter::repeat_n(' ', w - f.chars().count() + 2));
            }
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    for line in nobody {
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// The first line of [`Matrix::to_csv`].
pub const CSV_HEADER: &str = "target_kind,target,subject_kind,subject,api,notebooks,role,by\n";

/// One row of [`Matrix::to_json`]: the subject's `via` only when the
/// tree has `several` gateways.
fn row_json(r: &Row, several: bool) -> Value {
    let mut subject = serde_json::json!({"kind": r.subject.kind, "name": r.subject.name});
    if several && !r.subject.via.is_empty() {
        subject["via"] = r.subject.via.clone().into();
    }
    let mut o = serde_json::json!({"target": r.target, "subject": subject});
    for (cap, cell) in CAPABILITIES.iter().zip(r.cells) {
        o[*cap] = serde_json::to_value(cell).unwrap_or(Value::Null);
    }
    o
}

/// One row as [`Matrix::to_json`] writes it in its list (`serde_json`'s
/// pretty form of [`row_json`], indented by four), written directly
/// (issue 31: at 10,000 profiles the JSON is 144 MB; building each row's
/// value to print it took a third of the time). `tests/access_parse.rs`
/// compares the two on every case.
fn write_json_row(r: &Row, several: bool, out: &mut impl std::io::Write) -> std::io::Result<()> {
    fn string(out: &mut impl std::io::Write, s: &str) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, s).map_err(std::io::Error::other)
    }
    out.write_all(b"    {\n      \"target\": {\n        \"kind\": ")?;
    string(out, r.target.kind)?;
    out.write_all(b",\n        \"name\": ")?;
    string(out, &r.target.name)?;
    out.write_all(b"\n      },\n      \"subject\": {\n        \"kind\": ")?;
    string(out, r.subject.kind)?;
    out.write_all(b",\n        \"name\": ")?;
    string(out, &r.subject.name)?;
    if several && !r.subject.via.is_empty() {
        out.write_all(b",\n        \"via\": ")?;
        string(out, &r.subject.via)?;
    }
    out.write_all(b"\n      }")?;
    for (cap, cell) in CAPABILITIES.iter().zip(r.cells) {
        out.write_all(b",\n      ")?;
        string(out, cap)?;
        match cell {
            None => out.write_all(b": null")?,
            Some(g) => {
                out.write_all(b": {\n        \"level\": ")?;
                string(out, &g.level)?;
                out.write_all(b",\n        \"by\": [")?;
                for (i, by) in g.by.iter().enumerate() {
                    out.write_all(if i == 0 {
                        b"\n          "
                    } else {
                        b",\n          "
                    })?;
                    string(out, by)?;
                }
                if !g.by.is_empty() {
                    out.write_all(b"\n        ")?;
                }
                out.write_all(b"]\n      }")?;
            }
        }
    }
    out.write_all(b"\n    }")
}

/// [`Matrix::to_json`] written part by part, for [`compute_in_parts`]:
/// the same text.
pub struct JsonRows {
    rows: usize,
}

impl JsonRows {
    /// Before the first part.
    pub fn start(out: &mut impl std::io::Write) -> std::io::Result<JsonRows> {
        out.write_all(b"{\n  \"rows\": [")?;
        Ok(JsonRows { rows: 0 })
    }

    /// The rows of `part`, after those written.
    pub fn part(&mut self, part: &Matrix, out: &mut impl std::io::Write) -> std::io::Result<()> {
        for r in part.rows() {
            out.write_all(if self.rows == 0 { b"\n" } else { b",\n" })?;
            self.rows += 1;
            write_json_row(&r, part.several, out)?;
        }
        Ok(())
    }

    /// Rows made as text ([`Part::Json`]: each after `,\n`), after those
    /// written.
    pub fn text(&mut self, text: &[u8], out: &mut impl std::io::Write) -> std::io::Result<()> {
        match text.strip_prefix(b",") {
            Some(first) if self.rows == 0 => out.write_all(first)?,
            _ => out.write_all(text)?,
        }
        self.rows += usize::from(!text.is_empty());
        Ok(())
    }

    /// After the last part: the notes.
    pub fn finish(self, notes: &[String], out: &mut impl std::io::Write) -> std::io::Result<()> {
        out.write_all(if self.rows == 0 { b"],\n" } else { b"\n  ],\n" })?;
        out.write_all(b"  \"notes\": ")?;
        let text = serde_json::to_string_pretty(notes).unwrap_or_default();
        indented(out, &text, "  ", false)?;
        out.write_all(b"\n}\n")
    }
}

/// `text`, each line after `prefix` (the first too when `first`).
fn indented(
    out: &mut impl std::io::Write,
    text: &str,
    prefix: &str,
    first: bool,
) -> std::io::Result<()> {
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.write_all(b"\n")?;
        }
        if i > 0 || first {
            out.write_all(prefix.as_bytes())?;
        }
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

fn write_csv_field(out: &mut impl std::io::Write, f: &str) -> std::io::Result<()> {
    if f.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", f.replace('"', "\"\""))
    } else {
        out.write_all(f.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table row keeps each field apart, however its text was typed: a
    /// control character (a NUL, which separates the fields held) is
    /// escaped before it is held.
    #[test]
    fn a_table_row_holds_five_fields_whatever_was_typed() {
        let grant = Grant {
            level: "yes".into(),
            by: vec![],
        };
        let cells = vec![(Subject::new("user", "a\0b\tc"), "api", grant)];
        let m = profiles_matrix(&["team\0x"], vec![cells], false);
        let (rows, nobody) = m.table_lines();
        assert!(nobody.is_empty());
        let fields: Vec<&str> = rows[0].fields().collect();
        assert_eq!(
            fields,
            ["profile team\\0x", "user a\\0b\\tc", "-", "no", "yes"]
        );
        let table = format_table(rows, &nobody);
        assert_eq!(table.lines().count(), 2, "{table}");
        assert!(table.lines().nth(1).unwrap().ends_with("  yes"), "{table}");
    }

    /// A profile's CSV lines made from its cells are its matrix's: of two
    /// cells of one key the later holds, as in the matrix's map.
    #[test]
    fn a_profiles_lines_are_its_matrixs() {
        let cell = |s: &str, cap: Capability, level: &str, by: &str| {
            let grant = Grant {
                level: level.into(),
                by: vec![by.into()],
            };
            let subject = Subject {
                via: "deploykf-gateway".into(),
                ..Subject::new("user", s)
            };
            (subject, cap, grant)
        };
        let cells = vec![
            cell("a@x", "api", "yes", "AuthorizationPolicy/team-a/p"),
            cell("a@x", "api", "only GET", "AuthorizationPolicy/team-a/q"),
            cell("a@x", "role", "edit", "RoleBinding/team-a/r"),
            cell(
                "b,\"c\"",
                "notebooks",
                "yes",
                "AuthorizationPolicy/team-a/n",
            ),
        ];
        for several in [false, true] {
            let m = profiles_matrix(&["team-a"], vec![cells.clone()], several);
            let mut want = Vec::new();
            m.write_csv_rows(&mut want).unwrap();
            let made = profile_text(Text::Csv, "team-a", &cells, several);
            assert_eq!(
                String::from_utf8(made).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }
}

//! The request model: who can reach what through a rendered tree. It reads
//! a tree of objects (meshgen's render, or files on disk, with other
//! manifests merged in) and replays a request the way Istio and
//! Kubernetes would decide it: the gateway's listeners, filters and routes
//! (`gateway.rs`, `routing.rs`), then the destination's sidecar, waypoint
//! or ztunnel (`sidecar.rs`, `ambient.rs`) and NetworkPolicies
//! (`netpol.rs`, named for a trace by `network.rs`); a pod's connection
//! to a host outside the cluster through its sidecar's outbound policy
//! (`egress.rs`). Each step cites the upstream source it follows.
//!
//! It is a consumer of rendered trees, after the write stage: no stage of
//! the pipeline calls it, and it never renders. It never panics on a tree:
//! what it can not read is a value (`Err`, `None`), and what it does not
//! model is listed by [`coverage::unmodelled`], never silently ignored.
//!
//! Beside the request model, computed from the same objects: `matrix`,
//! for every profile and app, who is admitted and with what (`meshgen
//! access matrix`), per profile rather than by enumerating requests; and
//! `delta`, the changes of access between two trees (`meshgen diff
//! --access`).

pub mod admission;
pub mod ambient;
pub mod coverage;
pub mod delta;
pub mod egress;
pub mod expect;
pub mod explain;
pub mod gateway;
pub mod istio;
pub mod m2m;
pub mod matrix;
pub mod netpol;
pub mod network;
pub mod routing;
pub mod rule;
pub mod sidecar;
pub mod tree;

/// The directory of meshgen's gateway component in a tree: the model
/// finds the gateway's objects (its Deployment, Service, main Gateway,
/// RequestAuthentication and ServiceEntry) by their file names there.
pub const GATEWAY_DIR: &str = "manifests/deploykf-core/deploykf-istio-gateway";

/// The directories of the gateways a tree holds, the primary's
/// ([`GATEWAY_DIR`]) first, then each of `additionalGateways`
/// (`<GATEWAY_DIR>-<gateway.name>`): those with a `Gateway.yaml`.
pub fn gateway_dirs(t: &tree::Tree) -> Vec<String> {
    let mut out: Vec<String> = t
        .keys()
        .filter_map(|p| p.strip_suffix("/Gateway.yaml"))
        .filter(|d| {
            *d == GATEWAY_DIR
                || d.strip_prefix(GATEWAY_DIR)
                    .is_some_and(|rest| rest.starts_with('-') && !rest.contains('/'))
        })
        .map(str::to_string)
        .collect();
    out.sort_by_key(|d| (d != GATEWAY_DIR, d.clone()));
    out
}

/// The tree as the request model sees it at the gateway whose objects are
/// in `dir` (one of [`gateway_dirs`]): that gateway's files where the model
/// finds "the gateway" ([`GATEWAY_DIR`]: its Deployment, Service, Gateway,
/// RequestAuthentication), and the primary's files under `dir` instead.
/// Every object stays in the tree, and the model attaches policies by
/// namespace and pod labels (or `targetRefs`) and routes by Gateway
/// reference, never by file: only which gateway a request arrives at
/// changes.
pub fn at_gateway(t: &tree::Tree, dir: &str) -> tree::Tree {
    if dir == GATEWAY_DIR {
        return t.clone();
    }
    t.iter()
        .map(|(p, docs)| (swap_gateway_path(p, dir), docs.clone()))
        .collect()
}

/// The path `p` of a tree has in the view [`at_gateway`] makes at the
/// gateway of `dir`, and back (the swap is its own inverse): a file of
/// the primary's directory moves under `dir`, one of `dir` under the
/// primary's.
pub fn swap_gateway_path(p: &str, dir: &str) -> String {
    let (primary, other) = (format!("{GATEWAY_DIR}/"), format!("{dir}/"));
    if let Some(rest) = p.strip_prefix(&primary) {
        format!("{other}{rest}")
    } else if let Some(rest) = p.strip_prefix(&other) {
        format!("{primary}{rest}")
    } else {
        p.to_string()
    }
}

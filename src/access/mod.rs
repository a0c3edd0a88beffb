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
pub mod sidecar;
pub mod tree;

/// The directory of meshgen's gateway component in a tree: the model
/// finds the gateway's objects (its Deployment, Service, main Gateway,
/// RequestAuthentication and ServiceEntry) by their file names there.
pub const GATEWAY_DIR: &str = "manifests/deploykf-core/deploykf-istio-gateway";

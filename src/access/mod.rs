//! Who can reach what: the access a rendered tree grants, read from its
//! objects (AuthorizationPolicies, RequestAuthentications, RoleBindings,
//! the gateway's policies), never from the values.
//!
//! - `tree`: a rendered tree as parsed documents, from a render or a
//!   directory (plus other manifests, `--with`).
//! - `matrix`: for every profile and app, who is admitted and with what
//!   (`meshgen access matrix`).
//! - `delta`: the changes of access between two trees (`meshgen diff
//!   --access`).

pub mod delta;
pub mod matrix;
pub mod tree;

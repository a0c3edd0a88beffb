//! Rules for the delivery objects (`argocd`, `gitops`): deployKF's Argo CD
//! checks, and a notice when the chosen engine has nothing to render.

use super::{Ctx, Findings};
use crate::code::Code;
use crate::config::GitopsEngine;
use crate::diagnostic::Diagnostic;
use crate::values::path::ValuePath;

const IN_CLUSTER: &str = "https://kubernetes.default.svc";

pub fn check(ctx: &Ctx, f: &mut Findings) {
    let config = ctx.config;
    let argo = &config.argocd;
    let mut fail = |path: ValuePath, message: String| f.errors.push(ctx.error(path, message));
    let at = ValuePath::keys("argocd");
    // deployKF: one cluster holds one platform, so a name prefix (for
    // several clusters in one Argo CD) needs a remote destination.
    if !argo.app_name_prefix.is_empty() {
        if !argo.destination.name.is_empty() {
            if argo.destination.name == "in-cluster" {
                fail(
                    at.key("destination").key("name"),
                    "can not be 'in-cluster' if `argocd.appNamePrefix` is set, a single cluster can only have one instance of deployKF".into(),
                );
            }
        } else if argo.destination.server == IN_CLUSTER {
            fail(
                at.key("destination").key("server"),
                format!("can not be '{IN_CLUSTER}' if `argocd.appNamePrefix` is set, a single cluster can only have one instance of deployKF (TIP: set `argocd.destination.name` or a remote server)"),
            );
        }
    }
    if (argo.sync_policy.prune || argo.sync_policy.self_heal) && !argo.sync_policy.automated {
        fail(
            at.key("syncPolicy").key("automated"),
            "must be true when `argocd.syncPolicy.prune` or `selfHeal` is set (they apply to automated sync)".into(),
        );
    }

    // A repository without a revision or a path would render Applications
    // following HEAD at the repository's root, which is not where a tree
    // generated into a folder lives: name what is missing.
    let repo = &argo.source.repo;
    if config.gitops.engine == GitopsEngine::Argocd && !repo.url.is_empty() {
        let missing: Vec<&str> = [("revision", &repo.revision), ("path", &repo.path)]
            .into_iter()
            .filter(|(_, v)| v.is_empty())
            .map(|(k, _)| k)
            .collect();
        if !missing.is_empty() {
            let keys: Vec<String> = missing
                .iter()
                .map(|k| format!("`argocd.source.repo.{k}`"))
                .collect();
            fail(
                at.key("source").key("repo").key("url"),
                format!(
                    "is set, but {} {} empty: set the branch, tag or commit Argo CD follows (e.g. main) and the tree's folder in the repository (e.g. ./GENERATOR_OUTPUT/, or ./ for its root)",
                    keys.join(" and "),
                    if keys.len() == 1 { "is" } else { "are" }
                ),
            );
        }
    }
    if config.gitops.engine == GitopsEngine::Argocd && argo.source.repo.url.is_empty() {
        f.warnings.push(Diagnostic::notice(Code::ArgocdRepoUnset,
            "no Argo CD objects rendered: set `argocd.source.repo.url`, `argocd.source.repo.revision` and `argocd.source.repo.path` to where you commit this tree (or set `gitops.engine` to flux or none)",
        ));
    }
}

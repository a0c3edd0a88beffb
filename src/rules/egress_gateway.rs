//! Rules for `deploykf_dependencies.istio.egress.gateway` (issue 32 point
//! 5, `model::egress_gateway`): the gateway routes the ServiceEntries of
//! `mode: registry-only` (in `open` there is nothing to route, every host
//! leaves directly); its namespace is its own; and the profiles'
//! NetworkPolicy needs the API server's addresses for the pods that call it.

use super::{Ctx, Findings};
use crate::code::Code;
use crate::config::EgressMode;
use crate::values::path::ValuePath;

const GATEWAY: &str = "deploykf_dependencies.istio.egress.gateway";

pub fn check(ctx: &Ctx, f: &mut Findings) {
    let istio = &ctx.config.deploykf_dependencies.istio;
    let eg = &istio.egress.gateway;
    if !eg.enabled {
        return;
    }
    let base = ValuePath::keys(GATEWAY);
    if istio.egress.mode != EgressMode::RegistryOnly {
        f.errors.push(ctx.error(
            base.key("enabled"),
            format!(
                "needs {} to be \"registry-only\": in \"open\" mode every pod reaches any host directly, so nothing would go through the egress gateway",
                ctx.located(&ValuePath::keys("deploykf_dependencies.istio").key("egress").key("mode"))
            ),
        ));
        return;
    }
    let own = ctx.own.map(|d| d.id);
    for d in crate::registry::ALL {
        if Some(d.id) == own || !(d.enabled)(ctx.config) {
            continue;
        }
        if (d.namespace)(ctx.config).as_deref() == Some(eg.namespace.as_str()) {
            f.errors.push(ctx.error(
                base.key("namespace"),
                format!(
                    "{:?} is the namespace of `{}`: the egress gateway needs a namespace of its own (its Pod Security level and NetworkPolicies are its own)",
                    eg.namespace, d.id
                ),
            ));
        }
    }
    let pg = &ctx.config.deploykf_core.deploykf_profiles_generator;
    let cidrs = base.key("apiServerCIDRs");
    if pg.network_policy.enabled && eg.api_server_cidrs.is_empty() {
        // At the user's line: `enabled` unless they emptied the list.
        let at = if ctx.set_by_user(&cidrs) {
            cidrs.clone()
        } else {
            base.key("enabled")
        };
        f.warnings.push(ctx.warning(
            Code::ApiServerUnset,
            at,
            format!("`{cidrs}` is empty: each profile's NetworkPolicy lets its pods reach only pods of the cluster, so a pod calling the Kubernetes API is refused (Kubeflow's pipeline steps do: Argo's executor, the `kfp-launcher` ConfigMap); set the API server's addresses (`kubectl get endpoints kubernetes -n default`)"),
        ));
    }
}

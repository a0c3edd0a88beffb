//! Rules for `deploykf_dependencies.istio`: chart versions that match when
//! meshgen installs Istio, the gateway's Istio version when it does not,
//! and a warning for every user value that a setting deployKF requires
//! overrides.

use super::{Ctx, Findings};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::values::path::ValuePath;
use crate::values::Values;

const GW: &str = "deploykf_core.deploykf_istio_gateway";
const ISTIO: &str = "deploykf_dependencies.istio";

pub fn check(ctx: &Ctx, f: &mut Findings) {
    let config = ctx.config;
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let istio = &config.deploykf_dependencies.istio;
    {
        let mut fail = |path: String, message: String| f.errors.push(ctx.error(&path, message));
        if istio.enabled {
            let base = &istio.charts.istio_base.version;
            let daemon = &istio.charts.istio_daemon.version;
            if base != daemon {
                fail(
                format!("{ISTIO}.charts.istioBase.version"),
                format!("must equal `{ISTIO}.charts.istioDaemon.version` when meshgen installs Istio ({base} vs {daemon})"),
            );
            }
            let gateway = &gw.charts.istio_gateway;
            if gw.enabled && gateway.enabled && &gateway.version != daemon {
                fail(
                format!("{GW}.charts.istioGateway.version"),
                format!(
                    "must equal `{ISTIO}.charts.istioDaemon.version` when meshgen installs Istio and the gateway ({} vs {daemon}); a gateway must run the same Istio version as istiod",
                    gateway.version
                ),
            );
            }
        }
    }
    warn_required_overrides(ctx.values, &mut f.warnings);
    if !istio.enabled && gw.enabled && gw.charts.istio_gateway.enabled {
        f.warnings.push(ctx.warning(
            &format!("{ISTIO}.enabled"),
            format!(
                "meshgen does not install Istio: your istiod must run Istio {}, the version of the gateway meshgen deploys (`{GW}.charts.istioGateway.version`); see REQUIRED-MESH-CONFIG.md in the output",
                gw.charts.istio_gateway.version
            ),
        ));
    }
}

/// A user value that conflicts with a setting deployKF requires is
/// overridden; say so, naming the key and where it was set.
fn warn_required_overrides(values: &Values, warnings: &mut Diagnostics) {
    use crate::facts::{required_istio_settings, DAEMON_ALIAS};
    for (path, required) in required_istio_settings() {
        let mut places = Vec::new();
        if path[0] == "meshConfig" {
            places.push(ValuePath::keys(&format!("{ISTIO}.{}", path.join("."))));
        }
        let mut over = ValuePath::keys(&format!("{ISTIO}.valuesOverrides")).key(DAEMON_ALIAS);
        for p in &path {
            over = over.key(p);
        }
        places.push(over);
        for place in places {
            let Some(node) = values.get(&place) else {
                continue;
            };
            if node.to_json() != required {
                warnings.push(
                    Diagnostic::warning(format!(
                        "deployKF requires {}; meshgen keeps that value and ignores this one",
                        crate::yaml::emit::inline(&required)
                    ))
                    .at(Some(node.origin))
                    .at_path(place),
                );
            }
        }
    }
}

//! Rules for `deploykf_dependencies.istio`: chart versions that match, and
//! lie in the window meshgen installs (`SUPPORTED_ISTIO_MINORS`), when
//! meshgen installs Istio; the gateway's Istio version, and what an older
//! one lacks, when it does not;
//! and a warning for every user value that a setting deployKF requires
//! overrides.

use super::{Ctx, Findings};
use crate::config::{
    istio_minor, minimum_own_istio, supported_istio_window, ISTIO_FEATURES, SUPPORTED_ISTIO_MINORS,
};
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
            check_window(istio, &mut fail);
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
        warn_old_own_istio(ctx, &gw.charts.istio_gateway.version, &mut f.warnings);
    }
}

/// A managed install pins Istio inside the window meshgen installs: the
/// chart versions, and image tags that name a version.
fn check_window(istio: &crate::config::Istio, fail: &mut impl FnMut(String, String)) {
    let pins = [
        (
            "charts.istioBase.version",
            Some(&istio.charts.istio_base.version),
        ),
        (
            "charts.istioDaemon.version",
            Some(&istio.charts.istio_daemon.version),
        ),
        (
            "images.istioPilot.tag",
            istio.images.istio_pilot.tag.as_ref(),
        ),
        (
            "images.istioProxy.tag",
            istio.images.istio_proxy.tag.as_ref(),
        ),
    ];
    for (key, value) in pins {
        let Some(value) = value else { continue };
        let Some(minor) = istio_minor(value) else {
            continue;
        };
        if !SUPPORTED_ISTIO_MINORS.contains(&minor) {
            let what = if key.ends_with(".tag") {
                format!(
                    "the image tag {value} is Istio {}.{}, which",
                    minor.0, minor.1
                )
            } else {
                format!("Istio {value}")
            };
            fail(
                format!("{ISTIO}.{key}"),
                format!(
                    "{what} is outside the versions meshgen installs ({}); pin one of them, or set `{ISTIO}.enabled: false` to bring your own Istio",
                    supported_istio_window()
                ),
            );
        }
    }
}

/// Your own Istio runs the gateway's version: warn when that version lacks
/// what meshgen's objects rely on.
fn warn_old_own_istio(ctx: &Ctx, version: &str, warnings: &mut Diagnostics) {
    let Some(minor) = istio_minor(version) else {
        return;
    };
    let missing: Vec<String> = ISTIO_FEATURES
        .iter()
        .filter(|(_, since)| minor < *since)
        .map(|(what, since)| format!("{what} (since Istio {}.{})", since.0, since.1))
        .collect();
    if missing.is_empty() {
        return;
    }
    let min = minimum_own_istio();
    warnings.push(ctx.warning(
        &format!("{GW}.charts.istioGateway.version"),
        format!(
            "Istio {version} is older than meshgen needs in an Istio it does not install (Istio {}.{} or later): it lacks {}",
            min.0,
            min.1,
            missing.join("; ")
        ),
    ));
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

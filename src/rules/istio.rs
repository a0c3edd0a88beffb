//! Rules for `deploykf_dependencies.istio`: chart versions that match, and
//! lie in the window meshgen installs (`SUPPORTED_ISTIO_MINORS`), when
//! meshgen installs Istio; the gateway's Istio version, and what an older
//! one lacks, when it does not (a warning, or an error for what
//! `dataplaneMode: ambient` and `api: gateway-api` rely on:
//! `config::ISTIO_FEATURES`); what ambient needs (istio-cni, the default
//! revision, and from your own Istio what meshgen cannot see);
//! and a warning for every user value that a setting deployKF requires
//! overrides.

use super::{Ctx, Findings};
use crate::code::Code;
use crate::config::{
    istio_features, istio_minor, minimum_own_istio, supported_istio_window, Needed,
    SUPPORTED_ISTIO_MINORS,
};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::values::path::ValuePath;
use crate::values::Values;

const GW: &str = "deploykf_core.deploykf_istio_gateway";
const ISTIO: &str = "deploykf_dependencies.istio";

/// `{GW}.charts.istioGateway.version`: the gateway's Istio version, which
/// your own istiod must match.
fn gateway_version() -> ValuePath {
    ValuePath::keys(GW)
        .key("charts")
        .key("istioGateway")
        .key("version")
}

pub fn check(ctx: &Ctx, f: &mut Findings) {
    let config = ctx.config;
    let gw = &config.deploykf_core.deploykf_istio_gateway;
    let istio = &config.deploykf_dependencies.istio;
    {
        let mut fail = |path: ValuePath, message: String| f.errors.push(ctx.error(path, message));
        if istio.common.enabled {
            check_window(istio, &mut fail);
            let base = &istio.charts.istio_base.version;
            let daemon = &istio.charts.istio_daemon.version;
            if base != daemon {
                fail(
                ValuePath::keys(ISTIO).key("charts").key("istioBase").key("version"),
                format!("must equal `{ISTIO}.charts.istioDaemon.version` when meshgen installs Istio ({base} vs {daemon})"),
            );
            }
            let gateway = &gw.charts.istio_gateway;
            if gw.common.enabled && gateway.enabled && &gateway.chart.version != daemon {
                fail(
                gateway_version(),
                format!(
                    "must equal `{ISTIO}.charts.istioDaemon.version` when meshgen installs Istio and the gateway ({} vs {daemon}); a gateway must run the same Istio version as istiod",
                    gateway.chart.version
                ),
            );
            }
        }
    }
    warn_required_overrides(ctx.values, &mut f.warnings);
    check_egress(ctx, f);
    if ctx.facts.istio.ambient {
        check_ambient(ctx, f);
    }
    check_init_container(ctx, f);
    // The Istio you run is known only as the version of the gateway meshgen
    // deploys, which your istiod must match.
    let own_version =
        (!istio.common.enabled && gw.common.enabled && gw.charts.istio_gateway.enabled)
            .then_some(gw.charts.istio_gateway.chart.version.as_str());
    if let Some(version) = own_version {
        f.warnings.push(ctx.warning(Code::OwnIstioUnverified,
            ValuePath::keys(ISTIO).key("enabled"),
            format!(
                "meshgen does not install Istio: your istiod must run Istio {version}, the version of the gateway meshgen deploys (`{GW}.charts.istioGateway.version`); see REQUIRED-MESH-CONFIG.md in the output"
            ),
        ));
        warn_old_own_istio(ctx, version, &mut f.warnings);
    }
    if !istio.common.enabled {
        let refused = refuse_old_own_istio(ctx, own_version, &mut f.errors);
        if ctx.facts.istio.ambient && !refused {
            warn_own_istio_ambient(ctx, &mut f.warnings);
        }
    }
}

/// `dataplaneMode: ambient`: istio-cni (ambient turns it on, so only an
/// explicit `false` contradicts it) and the default revision.
fn check_ambient(ctx: &Ctx, f: &mut Findings) {
    let istio = &ctx.config.deploykf_dependencies.istio;
    let mode = ctx.located(&ValuePath::keys(ISTIO).key("dataplaneMode"));
    let cni = ValuePath::keys(ISTIO).key("cni").key("enabled");
    if istio.common.enabled && !istio.cni.enabled && ctx.set_by_user(&cni) {
        f.errors.push(ctx.error(
            cni,
            format!(
                "must not be false with {mode} set to \"ambient\": ambient needs the istio-cni node agent, which redirects pod traffic to ztunnel; remove the key (ambient installs istio-cni) or use \"sidecar\""
            ),
        ));
    }
    if !istio.revision.is_empty() {
        f.errors.push(ctx.error(
            ValuePath::keys(ISTIO).key("revision"),
            format!(
                "must be \"\" with {mode} set to \"ambient\", got {:?}: ztunnel is a DaemonSet, one per node, serving one control plane, so a revisioned (canary) install is not the per-namespace switch it is with sidecars, and meshgen does not render one; set `{ISTIO}.revision: \"\"`",
                istio.revision
            ),
        ));
    }
}

/// Sidecars without istio-cni: the injector adds `istio-init` to every
/// pod (`facts::IstioFacts::istio_init`), which Pod Security "baseline"
/// and "restricted" refuse, so no pod of a profile namespace labelled with
/// either could start (issue 28, point 2).
fn check_init_container(ctx: &Ctx, f: &mut Findings) {
    let profiles = &ctx.config.deploykf_core.deploykf_profiles_generator;
    let level = profiles
        .namespace_pod_security
        .filter(|l| *l != crate::config::PodSecurityLevel::Privileged);
    let (Some(level), true, true) = (level, profiles.enabled, ctx.facts.istio.istio_init) else {
        return;
    };
    let key = ctx.located(
        &ValuePath::keys("deploykf_core.deploykf_profiles_generator").key("namespacePodSecurity"),
    );
    let mode = ctx.located(&ValuePath::keys(ISTIO).key("dataplaneMode"));
    f.errors.push(ctx.error(
        ValuePath::keys(ISTIO).key("cni").key("enabled"),
        format!(
            "must be true with {key} set to \"{}\" and {mode} \"sidecar\": without istio-cni Istio injects istio-init into every pod, which runs as root with NET_ADMIN and NET_RAW, and Pod Security \"{}\" refuses it, so no pod with a sidecar could start in a profile namespace; remove the key (istio-cni is on by default; with your own Istio, install it there), or set the profiles' level to \"privileged\" or null",
            level.as_str(),
            level.as_str(),
        ),
    ));
}

/// With your own Istio, a mode whose objects rely on a feature your Istio's
/// version lacks (`Needed::Ambient`, `Needed::GatewayApi` in
/// `ISTIO_FEATURES`) is an error at the key that chose the mode; `true` if
/// any was refused.
fn refuse_old_own_istio(ctx: &Ctx, version: Option<&str>, errors: &mut Diagnostics) -> bool {
    let Some(version) = version else {
        return false;
    };
    let Some(minor) = istio_minor(version) else {
        return false;
    };
    let (ambient, gateway_api) = (ctx.facts.istio.ambient, ctx.facts.gateway.gateway_api);
    let mut refused = false;
    for (what, since, needed) in istio_features(ambient, gateway_api) {
        let (key, chosen, instead) = match needed {
            Needed::Always => continue,
            Needed::Ambient => (
                ValuePath::keys(ISTIO).key("dataplaneMode"),
                "ambient",
                "sidecar",
            ),
            Needed::GatewayApi => (ValuePath::keys(GW).key("api"), "gateway-api", "istio"),
        };
        if minor >= *since {
            continue;
        }
        refused = true;
        errors.push(ctx.error(
            key,
            format!(
                "\"{chosen}\" needs Istio {}.{} or later when meshgen does not install Istio, and your Istio runs {version} ({}, which your istiod must match): it lacks {what}; upgrade your Istio or use \"{instead}\"",
                since.0,
                since.1,
                ctx.located(&gateway_version()),
            ),
        ));
    }
    refused
}

/// Ambient with your own Istio: what meshgen relies on and cannot see.
fn warn_own_istio_ambient(ctx: &Ctx, warnings: &mut Diagnostics) {
    warnings.push(ctx.warning(Code::OwnIstioUnverified,
        ValuePath::keys(ISTIO).key("dataplaneMode"),
        format!(
            "\"ambient\" with your own Istio (`{ISTIO}.enabled: false`): meshgen cannot verify that it runs the ztunnel DaemonSet on every node, istio-cni with ambient enabled, istiod with `PILOT_ENABLE_AMBIENT=true` and `ISTIO_META_ENABLE_HBONE: \"true\"` in the mesh's proxyMetadata (the upstream `ambient` profile sets these), and the Gateway API CRDs, standard channel v1.4 or later (waypoints are Gateway API Gateways); see REQUIRED-MESH-CONFIG.md in the output"
        ),
    ));
}

/// A managed install pins Istio inside the window meshgen installs: the
/// chart versions, and image tags that name a version.
fn check_window(istio: &crate::config::Istio, fail: &mut impl FnMut(ValuePath, String)) {
    // ztunnel's image only with ambient, the only mode that installs it.
    let ztunnel_tag = istio
        .images
        .ztunnel
        .tag
        .as_ref()
        .filter(|_| istio.dataplane_mode == crate::config::DataplaneMode::Ambient);
    let base = ValuePath::keys(ISTIO);
    let chart = |name: &str| base.key("charts").key(name).key("version");
    let image = |name: &str| base.key("images").key(name).key("tag");
    let pins = [
        (chart("istioBase"), Some(&istio.charts.istio_base.version)),
        (
            chart("istioDaemon"),
            Some(&istio.charts.istio_daemon.version),
        ),
        (image("istioPilot"), istio.images.istio_pilot.tag.as_ref()),
        (image("istioProxy"), istio.images.istio_proxy.tag.as_ref()),
        (image("ztunnel"), ztunnel_tag),
    ];
    for (key, value) in pins {
        let Some(value) = value else { continue };
        let Some(minor) = istio_minor(value) else {
            continue;
        };
        if !SUPPORTED_ISTIO_MINORS.contains(&minor) {
            let what = if key.last_key() == Some("tag") {
                format!(
                    "the image tag {value} is Istio {}.{}, which",
                    minor.0, minor.1
                )
            } else {
                format!("Istio {value}")
            };
            fail(
                key,
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
    let (ambient, gateway_api) = (ctx.facts.istio.ambient, ctx.facts.gateway.gateway_api);
    // What the modes need is an error (`refuse_old_own_istio`).
    let missing: Vec<String> = istio_features(ambient, gateway_api)
        .filter(|(_, since, needed)| *needed == Needed::Always && minor < *since)
        .map(|(what, since, _)| format!("{what} (since Istio {}.{})", since.0, since.1))
        .collect();
    if missing.is_empty() {
        return;
    }
    let min = minimum_own_istio(ambient, gateway_api);
    warnings.push(ctx.warning(Code::OwnIstioTooOld,
        gateway_version(),
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
            places.push(path.iter().fold(ValuePath::keys(ISTIO), |p, k| p.key(k)));
        }
        let over = ValuePath::keys(ISTIO)
            .key("valuesOverrides")
            .key(DAEMON_ALIAS);
        places.push(path.iter().fold(over, |p, k| p.key(k)));
        for place in places {
            let Some(node) = values.get(&place) else {
                continue;
            };
            if node.to_json() != required {
                warnings.push(
                    Diagnostic::warning(
                        Code::RequiredMeshSetting,
                        format!(
                            "deployKF requires {}; meshgen keeps that value and ignores this one",
                            crate::yaml::emit::inline(&required)
                        ),
                    )
                    .at(Some(node.origin))
                    .at_path(place),
                );
            }
        }
    }
}

/// `istio.egress` (issue 32 point 5): `registry-only` only where Istio
/// enforces it (the egress gateway's own rules: `rules/egress_gateway.rs`).
fn check_egress(ctx: &Ctx, f: &mut Findings) {
    let istio = &ctx.config.deploykf_dependencies.istio;
    let egress = &istio.egress;
    if egress.mode != crate::config::EgressMode::RegistryOnly {
        return;
    }
    let egress_mode = ValuePath::keys(ISTIO).key("egress").key("mode");
    if ctx.facts.istio.ambient {
        // ztunnel ignores `outboundTrafficPolicy` (istio/istio#54281) and a
        // ServiceEntry's `exportTo` (#55163): in ambient the bound is the
        // egress waypoint (the gateway, `model::egress_gateway`) with each
        // profile's NetworkPolicy, which refuses every address outside the
        // cluster that does not go through the waypoint.
        let pg = &ctx.config.deploykf_core.deploykf_profiles_generator;
        if !egress.gateway.enabled {
            f.errors.push(ctx.error(
                egress_mode.clone(),
                format!("\"registry-only\" in ambient needs `{ISTIO}.egress.gateway.enabled: true`: ztunnel enforces neither the mesh's REGISTRY_ONLY nor a ServiceEntry's `exportTo` (istio/istio#54281, #55163), so only the egress waypoint with each profile's NetworkPolicy bounds what a profile reaches"),
            ));
        } else if pg.enabled && !pg.network_policy.enabled {
            f.errors.push(ctx.error(
                ValuePath::keys("deploykf_core.deploykf_profiles_generator")
                    .key("networkPolicy")
                    .key("enabled"),
                format!("is false, but {} is \"registry-only\" in ambient: ztunnel passes a connection to any address through, so each profile's NetworkPolicy is what keeps its pods from reaching hosts past the egress waypoint", ctx.located(&egress_mode)),
            ));
        }
    } else if !istio.common.enabled {
        f.warnings.push(ctx.warning(Code::OwnIstioUnverified,
            egress_mode,
            "\"registry-only\" with your own Istio: meshgen renders each profile's ServiceEntries, and your mesh config must set `outboundTrafficPolicy: {mode: REGISTRY_ONLY}`, which meshgen can not see".to_string(),
        ));
    }
}

//! The Gateway API CRDs (standard channel), as the component
//! `manifests/deploykf-dependencies/gateway-api/`: the upstream files of
//! the bundle pinned to the Istio minor meshgen installs
//! (`config::GATEWAY_API_BUNDLES`), copied byte for byte.
//!
//! The istio `base` chart ships no Gateway API CRDs (0 matches of
//! `gateway.networking.k8s.io` in its `files/crd-all.gen.yaml`, 1.30.3), so
//! whoever runs Istio installs them; meshgen does when it installs Istio and
//! renders Gateway API objects (`api: gateway-api`) or needs them (ambient:
//! waypoints are Gateway API Gateways). With your own Istio they are a
//! prerequisite (README, "The routing API").
//!
//! The files live in `vendor/gateway-api/<tag>/` (see its `SOURCES.md`:
//! tag, commit, sha256) and are embedded with `include_str!`, never
//! through `templates/`: the render does not evaluate them as minijinja
//! templates, it writes them as they are ([`crate::component::Verbatim`]).
//! The check stage parses them back like any other file.
//!
//! Applied server-side (Argo CD `ServerSideApply=true`): the HTTPRoute CRD
//! alone (344,583 bytes in v1.4.1) exceeds the 262,144-byte
//! `kubectl.kubernetes.io/last-applied-configuration` annotation that
//! client-side apply writes. One wave before Istio, whose istiod watches
//! these kinds.

use crate::component::{
    no_extra_manifests, no_overrides, Delivery, Descriptor, Input, Overrides, Packaging, Part,
    Verbatim,
};
use crate::config::{gateway_api_bundle, istio_minor, Config, GatewayApi};
use serde::Serialize;

/// One vendored release of the Gateway API standard channel.
#[derive(Debug)]
pub struct Bundle {
    /// The release tag, e.g. `v1.4.1`; also every CRD's
    /// `gateway.networking.k8s.io/bundle-version` annotation.
    pub version: &'static str,
    /// The commit of that tag in kubernetes-sigs/gateway-api.
    pub commit: &'static str,
    /// Its files (`config/crd/standard/<name>`), by name, sorted: what
    /// the release's `standard-install.yaml` concatenates
    /// (`hack/build-install-yaml.sh:53-60`).
    pub files: &'static [(&'static str, &'static str)],
}

macro_rules! vendored {
    ($tag:literal, $($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"), "/vendor/gateway-api/", $tag, "/", $name
        )))),+]
    };
}

pub static V1_4_1: Bundle = Bundle {
    version: "v1.4.1",
    commit: "477d172e6ac5eccb82b65781ddb8f924afec4170",
    files: vendored!(
        "v1.4.1",
        "gateway.networking.k8s.io_backendtlspolicies.yaml",
        "gateway.networking.k8s.io_gatewayclasses.yaml",
        "gateway.networking.k8s.io_gateways.yaml",
        "gateway.networking.k8s.io_grpcroutes.yaml",
        "gateway.networking.k8s.io_httproutes.yaml",
        "gateway.networking.k8s.io_referencegrants.yaml",
    ),
};

pub static V1_5_1: Bundle = Bundle {
    version: "v1.5.1",
    commit: "e7677b70ae75d14a4448fba94870e7deea6cf0ad",
    files: vendored!(
        "v1.5.1",
        "gateway.networking.k8s.io_backendtlspolicies.yaml",
        "gateway.networking.k8s.io_gatewayclasses.yaml",
        "gateway.networking.k8s.io_gateways.yaml",
        "gateway.networking.k8s.io_grpcroutes.yaml",
        "gateway.networking.k8s.io_httproutes.yaml",
        "gateway.networking.k8s.io_listenersets.yaml",
        "gateway.networking.k8s.io_referencegrants.yaml",
        "gateway.networking.k8s.io_tlsroutes.yaml",
        // The safe-upgrades ValidatingAdmissionPolicy and its binding.
        "gateway.networking.k8s.io_vap_safeupgrades.yaml",
    ),
};

/// Every vendored bundle, oldest first.
pub static BUNDLES: &[&Bundle] = &[&V1_4_1, &V1_5_1];

/// The vendored bundle of a release tag.
pub fn bundle(version: &str) -> Option<&'static Bundle> {
    BUNDLES.iter().copied().find(|b| b.version == version)
}

/// The Istio minor the tree is for: the istiod chart meshgen installs, or,
/// with your own Istio, the gateway's version (which must be your istiod's,
/// see `rules::istio`).
pub fn istio_minor_of(config: &Config) -> Option<(u64, u64)> {
    let istio = &config.deploykf_dependencies.istio;
    if istio.common.enabled {
        istio_minor(&istio.charts.istio_daemon.version)
    } else {
        istio_minor(
            &config
                .deploykf_core
                .deploykf_istio_gateway
                .charts
                .istio_gateway
                .chart
                .version,
        )
    }
}

/// The bundle the tree's Gateway API objects must fit: the one meshgen
/// installs, or the one of your Istio's minor.
pub fn pinned(config: &Config) -> &'static str {
    gateway_api_bundle(istio_minor_of(config))
}

/// Whether the tree needs the Gateway API CRDs: it renders Gateway API
/// objects, or ambient's waypoints.
pub fn needed(config: &Config) -> bool {
    config.deploykf_core.deploykf_istio_gateway.api == GatewayApi::GatewayApi
        || config.deploykf_dependencies.istio.dataplane_mode
            == crate::config::DataplaneMode::Ambient
}

pub static COMPONENT: Descriptor = Descriptor {
    id: "gateway-api",
    summary: "the Gateway API CRDs (standard channel) of the pinned Istio's bundle, as upstream ships them",
    key: "gateway_api",
    section: "deploykf_dependencies.istio",
    templates: "manifests/deploykf-dependencies/gateway-api",
    // Before Istio (-10): istiod watches these kinds.
    wave: -11,
    packaging: Packaging::Kustomize,
    delivery: Delivery::CRDS,
    overrides: Overrides::Absent,
    fan_out: &[],
    // With the Istio meshgen installs; with yours, a prerequisite.
    enabled: |c| c.deploykf_dependencies.istio.common.enabled && needed(c),
    // Cluster-scoped objects only.
    namespace: |_| Some(String::new()),
    extra_manifests: no_extra_manifests,
    values_overrides: no_overrides,
    patches: crate::component::no_patches,
    rules: crate::rules::none,
    derive,
    more: crate::component::single,
    shards: crate::component::no_shards,
    contribute: crate::component::contributes_nothing,
};

#[derive(Debug, Clone, Serialize)]
pub struct GatewayApiModel {
    /// The bundle's release tag.
    pub version: &'static str,
    /// The Istio minor it is pinned to, e.g. `1.30` ("" when unknown).
    pub istio_minor: String,
    /// The tree needs the CRDs ([`needed`]), whoever installs them.
    pub needed: bool,
    /// The release's standard-channel install file, the upstream
    /// instruction (kubernetes-sigs/gateway-api v1.5.1
    /// `site-src/guides/getting-started/index.md:64`, `kubectl apply
    /// --server-side -f` this URL).
    pub install_url: String,
}

fn derive(input: &Input) -> Part {
    let version = pinned(input.config);
    let model = GatewayApiModel {
        version,
        istio_minor: istio_minor_of(input.config)
            .map(|(major, minor)| format!("{major}.{minor}"))
            .unwrap_or_default(),
        needed: needed(input.config),
        install_url: format!(
            "https://github.com/kubernetes-sigs/gateway-api/releases/download/{version}/standard-install.yaml"
        ),
    };
    let files = bundle(version)
        .map(|b| {
            b.files
                .iter()
                .map(|(name, text)| Verbatim { name, text })
                .collect()
        })
        .unwrap_or_default();
    let mut part = Part::of(&model);
    part.files = files;
    part
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// The typed config of the defaults with `sets` (no rules: ambient is
    /// still refused by them).
    fn config(sets: &[&str]) -> Config {
        let inputs = crate::values::ValueInputs {
            preset: None,
            files: Vec::new(),
            sets: sets
                .iter()
                .map(|s| crate::values::SetArg {
                    text: s.to_string(),
                    force_string: false,
                })
                .collect(),
        };
        let values =
            crate::values::build(&inputs, &mut crate::source::SourceMap::default()).unwrap();
        serde_json::from_value(values.to_json()).unwrap()
    }

    /// On with meshgen's Istio when Gateway API objects (`api:
    /// gateway-api`) or waypoints (ambient: `gatewayClassName:
    /// istio-waypoint` Gateways) need the CRDs; never with your own Istio.
    #[test]
    fn enabled_with_meshgen_s_istio_for_the_gateway_api_or_ambient() {
        let on = |sets: &[&str]| (COMPONENT.enabled)(&config(sets));
        let api = "deploykf_core.deploykf_istio_gateway.api=gateway-api";
        let ambient = "deploykf_dependencies.istio.dataplaneMode=ambient";
        let own = "deploykf_dependencies.istio.enabled=false";
        assert!(!on(&[]));
        assert!(on(&[api]));
        assert!(on(&[ambient]));
        assert!(on(&[api, ambient]));
        assert!(!on(&[api, own]));
        assert!(!on(&[ambient, own]));
        // The bundle follows the Istio minor: meshgen's istiod, or your
        // gateway's version.
        let pin = |key: &str, v: &str| format!("{key}={v}");
        let daemon = pin(
            "deploykf_dependencies.istio.charts.istioDaemon.version",
            "1.29.6",
        );
        assert_eq!(pinned(&config(&[])), "v1.5.1");
        assert_eq!(pinned(&config(&[&daemon])), "v1.4.1");
        let gw = pin(
            "deploykf_core.deploykf_istio_gateway.charts.istioGateway.version",
            "1.28.1",
        );
        assert_eq!(pinned(&config(&[own, &gw])), "v1.4.1");
        assert_eq!(pinned(&config(&[&gw])), "v1.5.1");
    }

    /// Each vendored file is the upstream one: its sha256 is the one
    /// `vendor/gateway-api/SOURCES.md` records (taken from
    /// `git show <tag>:config/crd/standard/<file>`), and every file of
    /// that list is embedded.
    #[test]
    fn vendored_files_match_their_recorded_sha256() {
        let sources = include_str!("../../vendor/gateway-api/SOURCES.md");
        let mut recorded = Vec::new();
        let mut tag = "";
        for line in sources.lines() {
            if let Some(rest) = line.strip_prefix("## ") {
                tag = rest.split_whitespace().next().unwrap_or("");
                let b = bundle(tag).unwrap_or_else(|| panic!("SOURCES.md names {tag}"));
                assert!(rest.contains(b.commit), "{tag}: commit {}", b.commit);
            }
            let cells: Vec<&str> = line
                .split('|')
                .map(|c| c.trim().trim_matches('`'))
                .collect();
            if cells.len() == 5 && cells[1].ends_with(".yaml") {
                recorded.push((tag, cells[1], cells[3].to_string()));
            }
        }
        let mut embedded = Vec::new();
        for b in BUNDLES {
            for (name, text) in b.files {
                let sum: String = Sha256::digest(text.as_bytes())
                    .iter()
                    .map(|x| format!("{x:02x}"))
                    .collect();
                embedded.push((b.version, *name, sum));
            }
        }
        assert_eq!(embedded, recorded);
    }

    /// Every bundle the pins name is vendored, and every CRD carries its
    /// bundle's version (what `meshgen diff` reads from a tree on disk).
    #[test]
    fn every_pinned_bundle_is_vendored_and_annotated() {
        for (_, tag) in crate::config::GATEWAY_API_BUNDLES {
            let b = bundle(tag).unwrap_or_else(|| panic!("{tag} is not vendored"));
            for (name, text) in b.files {
                if name.contains("_vap_") {
                    continue;
                }
                let docs = crate::yaml::load::load_json_documents(text).unwrap();
                for d in docs {
                    assert_eq!(d["kind"], "CustomResourceDefinition", "{name}");
                    assert_eq!(
                        d["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"],
                        *tag,
                        "{name}"
                    );
                    assert_eq!(
                        d["metadata"]["annotations"]["gateway.networking.k8s.io/channel"],
                        "standard",
                        "{name}"
                    );
                }
            }
        }
    }
}

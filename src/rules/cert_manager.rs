//! Rules for `deploykf_dependencies.cert_manager`: the self-signed
//! default issuer is named as not for production whenever it signs the
//! gateway certificate, and keys that have no effect are named when the
//! user sets them, so nobody relies on an effect that never happens.

use super::{Ctx, Findings};
use crate::code::Code;
use crate::values::path::ValuePath;

const CM: &str = "deploykf_dependencies.cert_manager";

pub fn check(ctx: &Ctx, f: &mut Findings) {
    let config = ctx.config;
    let cm = &config.deploykf_dependencies.cert_manager;
    let base = ValuePath::keys(CM);
    let issuer_enabled = base.key("clusterIssuer").key("enabled");

    let signs_gateway = config.deploykf_core.deploykf_istio_gateway.common.enabled
        && ctx.facts.gateway.certificate_managed;
    if signs_gateway && config.deploykf_dependencies.cert_manager.issuer_rendered() {
        f.warnings.push(ctx.warning(Code::SelfSignedCa,
            issuer_enabled.clone(),
            format!(
                "the gateway certificate is signed by meshgen's self-signed CA (ClusterIssuer `{}`): not for production, clients trust it only once they trust its root CA (see README.md in the output); set `{CM}.clusterIssuer.enabled` to false and `{CM}.clusterIssuer.issuerName` to a ClusterIssuer of your own (e.g. ACME)",
                cm.cluster_issuer.issuer_name
            ),
        ));
    }

    // deployKF renders nothing of the cert-manager directory, issuer
    // included, when cert-manager is the user's.
    if !cm.common.enabled && cm.cluster_issuer.enabled && ctx.set_by_user(&issuer_enabled) {
        f.warnings.push(ctx.warning(Code::NoEffect,
            issuer_enabled,
            format!(
                "has no effect while `{CM}.enabled` is false: like deployKF, meshgen then renders no ClusterIssuer; your cert-manager must have the ClusterIssuer `{}` (`{CM}.clusterIssuer.issuerName`)",
                cm.cluster_issuer.issuer_name
            ),
        ));
    }

    // deployKF copies the self-signed root CA into this ConfigMap in every
    // namespace with trust-manager; meshgen renders no trust-manager Bundle.
    let key = base
        .key("clusterIssuer")
        .key("selfSigned")
        .key("injectedConfigMapName");
    if ctx.set_by_user(&key) {
        f.warnings.push(ctx.warning(Code::NoEffect,
            key,
            "has no effect: meshgen renders no trust-manager Bundle, so no ConfigMap with the root CA is injected; distribute the CA from the Secret `clusterIssuer.selfSigned.caSecretName` yourself".into(),
        ));
    }
}

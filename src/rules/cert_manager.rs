//! Rules for `deploykf_dependencies.cert_manager`: keys deployKF acts on
//! that meshgen does not render yet are named when the user sets them, so
//! nobody relies on an effect that never happens.

use super::{Ctx, Findings};
use crate::source::SourceKind;
use crate::values::path::ValuePath;

const CM: &str = "deploykf_dependencies.cert_manager";

pub fn check(ctx: &Ctx, f: &mut Findings) {
    // deployKF copies the self-signed root CA into this ConfigMap in every
    // namespace with trust-manager; meshgen renders no trust-manager Bundle.
    let key = format!("{CM}.clusterIssuer.selfSigned.injectedConfigMapName");
    let set_by_user = ctx
        .values
        .origin_of(&ValuePath::keys(&key))
        .is_some_and(|o| ctx.sources.get(o.source).kind != SourceKind::Defaults);
    if set_by_user {
        f.warnings.push(ctx.warning(
            &key,
            "has no effect: meshgen renders no trust-manager Bundle, so no ConfigMap with the root CA is injected; distribute the CA from the Secret `clusterIssuer.selfSigned.caSecretName` yourself".into(),
        ));
    }
}

//! Presets: embedded values layers, each a whole values file, applied
//! between `default_values.yaml` and the user's `--values`/`--set` (so the
//! user's files still win). A preset's origin is `presets/<name>.yaml`,
//! printed like a file in every location.

use crate::code::Code;
use crate::diagnostic::Diagnostic;

/// One embedded preset.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    /// One line for `meshgen presets`.
    pub summary: &'static str,
    /// The values file, as embedded.
    pub text: &'static str,
}

impl Preset {
    /// How its origin is named: the file in the repository it is embedded from.
    pub fn source_name(&self) -> String {
        format!("presets/{}.yaml", self.name)
    }
}

/// Every preset, in the order `meshgen presets` lists them.
pub const ALL: &[Preset] = &[Preset {
    name: "kubeflow",
    summary: "the applications of kubeflow/manifests 26.03, unmodified, behind meshgen's edge (kubeflow/kubeflow-gateway, istio-system identity, profile controller)",
    text: include_str!("../../presets/kubeflow.yaml"),
}];

/// The preset called `name`, or an error naming the closest one.
pub fn find(name: &str) -> Result<&'static Preset, Diagnostic> {
    if let Some(p) = ALL.iter().find(|p| p.name == name) {
        return Ok(p);
    }
    let names: Vec<&str> = ALL.iter().map(|p| p.name).collect();
    let hint = match crate::schema::suggest(name, names.iter().copied()) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    };
    Err(Diagnostic::error(
        Code::Input,
        format!(
            "unknown preset `{}`{hint} (presets: {}; `meshgen presets` lists them)",
            crate::diagnostic::escape_controls(name),
            names.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_preset_suggests_the_closest() {
        let e = find("kubeflwo").unwrap_err();
        assert!(
            e.message.contains("did you mean `kubeflow`"),
            "{}",
            e.message
        );
        let e = find("banana").unwrap_err();
        assert!(!e.message.contains("did you mean"), "{}", e.message);
        assert!(find("kubeflow").is_ok());
    }
}

//! The fleet file: which clusters, and each one's values layers. Loaded
//! with positions like a values file, so every error points at its
//! line; paths are relative to the fleet file.
//!
//! ```yaml
//! preset: kubeflow                     # optional: every cluster's preset
//! base: [values/base.yaml]             # every cluster's first files
//! clusters:
//!   - name: dev
//!     values: [values/dev.yaml]
//!     set: ["deploykf_core.deploykf_istio_gateway.gateway.hostname=dev.ml.example.net"]
//!     destination: {server: https://dev.k8s.example.net}
//! ```

use crate::code::Code;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::source::{Origin, SourceKind, SourceMap};
use crate::values::path::ValuePath;
use crate::values::{SetArg, ValueInputs};
use crate::yaml::{Node, NodeKind};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};

/// The most a fleet file may hold (a fleet of a thousand clusters is
/// under 1 MiB).
const MAX_FLEET_BYTES: u64 = 4 << 20;

/// The keys of the fleet file and of one cluster (the schema printed by
/// `meshgen schema --fleet` has the same; a unit test holds them equal).
pub const FLEET_KEYS: &[&str] = &["preset", "base", "clusters"];
pub const CLUSTER_KEYS: &[&str] = &["name", "preset", "values", "set", "destination"];
const DESTINATION_KEYS: &[&str] = &["server", "name"];

/// Where a cluster's Argo CD Applications deploy to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An API server URL (`argocd.destination.server`).
    Server(String),
    /// A cluster registered in Argo CD (`argocd.destination.name`).
    Name(String),
}

impl Destination {
    pub fn text(&self) -> &str {
        match self {
            Destination::Server(s) | Destination::Name(s) => s,
        }
    }
}

/// One cluster of the fleet.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    /// Where its entry starts in the fleet file (fleet-wide findings
    /// point here).
    pub origin: Origin,
    pub preset: Option<String>,
    /// The fleet's `base` files, then its own `values`, resolved against
    /// the fleet file's directory.
    pub files: Vec<PathBuf>,
    /// How many of `files` are the fleet's `base`.
    pub base_files: usize,
    pub set: Vec<String>,
    pub destination: Option<(Destination, Origin)>,
}

impl Cluster {
    /// The cluster's layers, as a single `meshgen generate` takes them:
    /// its preset, the base and its values files, its `set`, and last
    /// the destination (`--set-string argocd.destination.name=...`, and
    /// the other key emptied or put back to the in-cluster default).
    pub fn inputs(&self) -> ValueInputs {
        let mut sets: Vec<SetArg> = self
            .set
            .iter()
            .map(|text| SetArg {
                text: text.clone(),
                force_string: false,
            })
            .collect();
        sets.extend(self.destination_sets());
        ValueInputs {
            preset: self.preset.clone(),
            files: self.files.clone(),
            sets,
        }
    }

    /// The layers the cluster shares with the fleet's base: its preset
    /// and the `base` files (the fleet compares its security settings
    /// with theirs).
    pub fn base_inputs(&self) -> ValueInputs {
        ValueInputs {
            preset: self.preset.clone(),
            files: self.files.iter().take(self.base_files).cloned().collect(),
            sets: Vec::new(),
        }
    }

    /// The `--set-string` arguments that apply the destination: Argo CD
    /// reads `name` before `server` (default_values.yaml, `argocd.destination`).
    pub fn destination_sets(&self) -> Vec<SetArg> {
        let Some((d, _)) = &self.destination else {
            return Vec::new();
        };
        let (server, name) = match d {
            Destination::Server(s) => (escape_set(s), String::new()),
            Destination::Name(n) => ("https://kubernetes.default.svc".to_string(), escape_set(n)),
        };
        [
            format!("argocd.destination.server={server}"),
            format!("argocd.destination.name={name}"),
        ]
        .into_iter()
        .map(|text| SetArg {
            text,
            force_string: true,
        })
        .collect()
    }
}

/// A value written into a `--set` argument: `\`, `,` escaped
/// (values/setarg.rs).
fn escape_set(v: &str) -> String {
    v.replace('\\', "\\\\").replace(',', "\\,")
}

/// A loaded fleet file.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The fleet file as the user named it.
    pub path: PathBuf,
    pub clusters: Vec<Cluster>,
}

/// A cluster name is a directory (`clusters/<name>/`), an Argo CD list
/// element and a Flux directory: a DNS label.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Read and check the fleet file at `path`; its source is added to
/// `sources` (so diagnostics print `fleet.yaml:3:5`).
pub fn load(path: &Path, sources: &mut SourceMap) -> Result<Fleet, Diagnostics> {
    let shown = path.display().to_string();
    let id = sources.add(shown.clone(), SourceKind::File);
    let fail = |m: String| Diagnostics(vec![Diagnostic::error(Code::Fleet, m)]);
    let meta = std::fs::metadata(path)
        .map_err(|e| fail(format!("cannot read the fleet file `{shown}`: {e}")))?;
    if !meta.is_file() {
        return Err(fail(format!(
            "the fleet file `{shown}` is not a regular file"
        )));
    }
    if meta.len() > MAX_FLEET_BYTES {
        return Err(fail(format!(
            "the fleet file `{shown}` is larger than {} MiB",
            MAX_FLEET_BYTES >> 20
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(format!("cannot read the fleet file `{shown}`: {e}")))?;
    let docs = crate::yaml::load_documents(&text, id).map_err(|e| {
        Diagnostics(vec![
            Diagnostic::error(Code::Fleet, e.message).at(Some(e.origin))
        ])
    })?;
    let root = match docs.as_slice() {
        [Some(root)] => root,
        _ => {
            return Err(fail(format!(
                "the fleet file `{shown}` must hold one YAML document, a map with `clusters`"
            )))
        }
    };
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut diags = Diagnostics::default();
    let fleet = Walker {
        dir: &dir,
        diags: &mut diags,
    }
    .fleet(root, path);
    if diags.has_errors() {
        diags.sort();
        return Err(diags);
    }
    fleet.ok_or_else(|| fail(format!("the fleet file `{shown}` lists no cluster")))
}

struct Walker<'a> {
    dir: &'a Path,
    diags: &'a mut Diagnostics,
}

impl Walker<'_> {
    fn error(&mut self, path: &ValuePath, node: &Node, message: String) {
        self.diags.push(
            Diagnostic::error(Code::Fleet, message)
                .at_path(path.clone())
                .at(Some(node.origin)),
        );
    }

    /// The entries of a map, each unknown key an error (with the closest
    /// known key as a suggestion).
    fn map<'n>(
        &mut self,
        node: &'n Node,
        path: &ValuePath,
        known: &[&str],
    ) -> Option<&'n IndexMap<String, crate::yaml::load::Entry>> {
        let NodeKind::Map(map) = &node.kind else {
            self.error(
                path,
                node,
                format!("must be a map, not a {}", node.type_name()),
            );
            return None;
        };
        for (key, entry) in map {
            if !known.contains(&key.as_str()) {
                let hint = crate::schema::suggest(key, known.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_else(|| format!("; expected one of: {}", known.join(", ")));
                self.diags.push(
                    Diagnostic::error(Code::Fleet, format!("unknown key{hint}"))
                        .at_path(path.key(key))
                        .at(Some(entry.key_origin)),
                );
            }
        }
        Some(map)
    }

    fn string(&mut self, node: &Node, path: &ValuePath) -> Option<String> {
        match &node.kind {
            NodeKind::Str(s) if !s.is_empty() => Some(s.clone()),
            _ => {
                self.error(
                    path,
                    node,
                    format!("must be a non-empty string, not {}", describe(node)),
                );
                None
            }
        }
    }

    fn strings(&mut self, node: &Node, path: &ValuePath) -> Vec<String> {
        let NodeKind::Seq(items) = &node.kind else {
            self.error(
                path,
                node,
                format!("must be a list of strings, not a {}", node.type_name()),
            );
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.string(item, &path.index(i)))
            .collect()
    }

    fn files(&mut self, node: &Node, path: &ValuePath) -> Vec<PathBuf> {
        self.strings(node, path)
            .into_iter()
            .map(|f| self.dir.join(f))
            .collect()
    }

    fn preset(&mut self, node: &Node, path: &ValuePath) -> Option<String> {
        let name = self.string(node, path)?;
        if let Err(d) = crate::values::preset::find(&name) {
            self.error(path, node, d.message);
            return None;
        }
        Some(name)
    }

    fn fleet(&mut self, root: &Node, file: &Path) -> Option<Fleet> {
        let top = ValuePath::root();
        let map = self.map(root, &top, FLEET_KEYS)?;
        let preset = map
            .get("preset")
            .and_then(|e| self.preset(&e.value, &top.key("preset")));
        let base = map
            .get("base")
            .map(|e| self.files(&e.value, &top.key("base")))
            .unwrap_or_default();
        let Some(clusters) = map.get("clusters") else {
            self.error(
                &top,
                root,
                "the fleet file needs `clusters`, a list of clusters (each a `name`, `values` and `set`)".into(),
            );
            return None;
        };
        let path = top.key("clusters");
        let NodeKind::Seq(items) = &clusters.value.kind else {
            self.error(
                &path,
                &clusters.value,
                format!(
                    "must be a list of clusters, not a {}",
                    clusters.value.type_name()
                ),
            );
            return None;
        };
        if items.is_empty() {
            self.error(&path, &clusters.value, "lists no cluster".into());
            return None;
        }
        let mut out: Vec<Cluster> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Some(mut cluster) = self.cluster(item, &path.index(i), &base) else {
                continue;
            };
            cluster.preset = cluster.preset.or_else(|| preset.clone());
            out.push(cluster);
        }
        Some(Fleet {
            path: file.to_path_buf(),
            clusters: out,
        })
    }

    fn cluster(&mut self, node: &Node, path: &ValuePath, base: &[PathBuf]) -> Option<Cluster> {
        let map = self.map(node, path, CLUSTER_KEYS)?;
        let name = match map.get("name") {
            Some(e) => {
                let name = self.string(&e.value, &path.key("name"))?;
                if !valid_name(&name) {
                    self.error(
                        &path.key("name"),
                        &e.value,
                        format!("`{name}` is not a cluster name: lower-case letters, digits and `-`, at most 63, not starting or ending with `-` (it names a directory and Argo CD / Flux objects)"),
                    );
                    return None;
                }
                name
            }
            None => {
                self.error(path, node, "a cluster needs a `name`".into());
                return None;
            }
        };
        let preset = map
            .get("preset")
            .and_then(|e| self.preset(&e.value, &path.key("preset")));
        let mut files = base.to_vec();
        if let Some(e) = map.get("values") {
            files.extend(self.files(&e.value, &path.key("values")));
        }
        let set = map
            .get("set")
            .map(|e| self.strings(&e.value, &path.key("set")))
            .unwrap_or_default();
        let destination = map
            .get("destination")
            .and_then(|e| self.destination(&e.value, &path.key("destination")));
        Some(Cluster {
            name,
            origin: node.origin,
            preset,
            files,
            base_files: base.len(),
            set,
            destination,
        })
    }

    fn destination(&mut self, node: &Node, path: &ValuePath) -> Option<(Destination, Origin)> {
        let map = self.map(node, path, DESTINATION_KEYS)?;
        match (map.get("server"), map.get("name")) {
            (Some(s), None) => self
                .string(&s.value, &path.key("server"))
                .map(|v| (Destination::Server(v), s.value.origin)),
            (None, Some(n)) => self
                .string(&n.value, &path.key("name"))
                .map(|v| (Destination::Name(v), n.value.origin)),
            _ => {
                self.error(
                    path,
                    node,
                    "needs exactly one of `server` (an API server URL) and `name` (a cluster registered in Argo CD)".into(),
                );
                None
            }
        }
    }
}

fn describe(node: &Node) -> String {
    match &node.kind {
        NodeKind::Str(_) => "an empty string".into(),
        _ => format!("a {}", node.type_name()),
    }
}

/// The JSON Schema of a fleet file (`meshgen schema --fleet`), for
/// editors; the loader above is what decides.
pub fn schema() -> serde_json::Value {
    let files = serde_json::json!({
        "type": "array",
        "items": {"type": "string", "minLength": 1},
    });
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "meshgen fleet file",
        "description": "One repository, many clusters: `meshgen generate --fleet FILE -o DIR` renders each cluster's tree into DIR/clusters/<name>/. Paths are relative to this file.",
        "type": "object",
        "additionalProperties": false,
        "required": ["clusters"],
        "properties": {
            "preset": {"type": "string", "description": "The preset of every cluster that names none (`meshgen presets`)"},
            "base": {"description": "Values files every cluster starts with, in order", "allOf": [files]},
            "clusters": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", "description": "The cluster's directory, clusters/<name>/, and its Argo CD list element / Flux entry"},
                        "preset": {"type": "string", "description": "This cluster's preset (instead of the fleet's)"},
                        "values": {"description": "This cluster's values files, after `base`", "allOf": [files]},
                        "set": {"type": "array", "items": {"type": "string"}, "description": "`--set` arguments, after the files"},
                        "destination": {
                            "description": "Where its Argo CD Applications deploy: sets `argocd.destination` after everything else",
                            "type": "object",
                            "additionalProperties": false,
                            "minProperties": 1,
                            "maxProperties": 1,
                            "properties": {
                                "server": {"type": "string", "minLength": 1, "description": "An API server URL"},
                                "name": {"type": "string", "minLength": 1, "description": "A cluster registered in Argo CD"}
                            }
                        }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_has_the_loaders_keys() {
        let s = schema();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v["properties"]
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        assert_eq!(keys(&s), FLEET_KEYS);
        assert_eq!(keys(&s["properties"]["clusters"]["items"]), CLUSTER_KEYS);
        assert_eq!(
            keys(&s["properties"]["clusters"]["items"]["properties"]["destination"]),
            DESTINATION_KEYS
        );
    }

    #[test]
    fn names_are_dns_labels() {
        assert!(valid_name("prod-eu-1"));
        assert!(!valid_name("Prod"));
        assert!(!valid_name("-a"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(".."));
        assert!(!valid_name(""));
    }

    #[test]
    fn a_destination_is_escaped_for_set() {
        assert_eq!(escape_set("a,b\\c"), "a\\,b\\\\c");
    }
}

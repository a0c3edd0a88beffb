//! Read each values input exactly once: the embedded defaults, then every
//! `--values` file in order, then the `--set` arguments. Each becomes a
//! [`Layer`] with its origin registered in the [`SourceMap`].
//!
//! Every way a file can be unusable (missing, a directory, binary, not
//! UTF-8, malformed YAML, several documents, a top-level list or scalar)
//! becomes one diagnostic naming the file. An empty file means "no
//! overrides".

use super::setarg::{self, Assignment};
use super::{ValueInputs, DEFAULT_VALUES, DEFAULT_VALUES_NAME};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::source::{Origin, Pos, SourceId, SourceKind, SourceMap};
use crate::yaml::{load_documents, Node, NodeKind};
use std::path::Path;

/// One input, parsed.
#[derive(Debug, Clone)]
pub enum Layer {
    /// A whole values tree (defaults or a file); `None` for an empty file.
    Tree(Option<Node>),
    /// The assignments of one `--set` argument.
    Set(Vec<Assignment>),
}

pub fn load_all(inputs: &ValueInputs, sources: &mut SourceMap) -> Result<Vec<Layer>, Diagnostics> {
    let mut layers = Vec::new();
    let mut diags = Diagnostics::default();
    let id = sources.add(DEFAULT_VALUES_NAME, SourceKind::Defaults);
    match parse_tree(DEFAULT_VALUES, id) {
        Ok(tree) => layers.push(Layer::Tree(tree)),
        Err(d) => diags.push(d),
    }
    for file in &inputs.files {
        let name = file.display().to_string();
        let id = sources.add(name.clone(), SourceKind::File);
        match read_text(file, &name, id).and_then(|text| parse_tree(&text, id)) {
            Ok(tree) => layers.push(Layer::Tree(tree)),
            Err(d) => diags.push(d),
        }
    }
    for set in &inputs.sets {
        let flag = if set.force_string {
            "--set-string"
        } else {
            "--set"
        };
        let id = sources.add(
            format!("{flag} {}", shell_quote(&set.text)),
            SourceKind::SetArg,
        );
        match setarg::parse(&set.text, set.force_string, id) {
            Ok(assignments) => layers.push(Layer::Set(assignments)),
            Err(d) => diags.push(d),
        }
    }
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(layers)
    }
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-/=,:[]".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn file_origin(id: SourceId, line: u32, col: u32) -> Option<Origin> {
    Some(Origin {
        source: id,
        pos: Pos { line, col },
    })
}

/// Read a values file as UTF-8 text, refusing what is not a text file.
fn read_text(path: &Path, name: &str, id: SourceId) -> Result<String, Diagnostic> {
    if path.is_dir() {
        return Err(Diagnostic::error(format!(
            "values file `{name}` is a directory; expected a YAML file"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostic::error(format!(
            "cannot read values file `{name}`: {}",
            io_reason(&e)
        ))
    })?;
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        let (line, col) = line_col(&bytes[..at]);
        return Err(Diagnostic::error(format!(
            "values file `{name}` holds binary data (a NUL byte); expected YAML text"
        ))
        .at(file_origin(id, line, col)));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let (line, col) = line_col(&bytes[..at]);
        Diagnostic::error(format!(
            "values file `{name}` is not UTF-8 text (invalid byte 0x{:02x}); save it as UTF-8",
            bytes[at]
        ))
        .at(file_origin(id, line, col))
    })
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn line_col(prefix: &[u8]) -> (u32, u32) {
    let line = prefix.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
    let line_start = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&prefix[line_start..])
        .chars()
        .count() as u32
        + 1;
    (line, col)
}

/// Parse one values document: a map at the top, or nothing.
pub fn parse_tree(text: &str, id: SourceId) -> Result<Option<Node>, Diagnostic> {
    let docs =
        load_documents(text, id).map_err(|e| Diagnostic::error(e.message).at(Some(e.origin)))?;
    let mut docs: Vec<Node> = docs.into_iter().flatten().collect();
    if docs.len() > 1 {
        return Err(Diagnostic::error(format!(
            "a values file holds one YAML document, found {}; merge them or pass several files with -f",
            docs.len()
        ))
        .at(Some(docs[1].origin)));
    }
    let Some(doc) = docs.pop() else {
        return Ok(None);
    };
    match doc.kind {
        NodeKind::Map(_) => Ok(Some(doc)),
        NodeKind::Null => Ok(None),
        _ => Err(Diagnostic::error(format!(
            "the top level of a values file must be a map of keys, got a {}",
            doc.type_name()
        ))
        .at(Some(doc.origin))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse_to_a_map() {
        let tree = parse_tree(DEFAULT_VALUES, SourceId(0)).unwrap().unwrap();
        assert!(matches!(tree.kind, NodeKind::Map(_)));
    }

    #[test]
    fn top_level_list_is_refused() {
        let e = parse_tree("- a\n- b\n", SourceId(0)).unwrap_err();
        assert!(e.message.contains("got a list"), "{}", e.message);
        assert_eq!(parse_tree("", SourceId(0)).unwrap(), None);
        assert_eq!(parse_tree("~\n", SourceId(0)).unwrap(), None);
        assert!(parse_tree("a: 1\n---\nb: 2\n", SourceId(0)).is_err());
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col(b"ab\ncd"), (2, 3));
        assert_eq!(line_col("é".as_bytes()), (1, 2));
    }
}

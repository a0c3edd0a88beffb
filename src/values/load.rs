//! Read each values input exactly once: the embedded defaults, then the
//! `--preset` layer if one is named, then every
//! `--values` file in order, then the `--set` arguments. Each becomes a
//! [`Layer`] with its origin registered in the [`SourceMap`].
//!
//! Every way a file can be unusable (missing, a directory, a FIFO or
//! device, larger than [`MAX_VALUES_BYTES`], binary, not UTF-8, malformed
//! YAML, several documents, a top-level list or scalar) becomes one
//! diagnostic naming the file. An empty file means "no overrides". `-f -`
//! reads standard input (once), with the same bound, named `<stdin>`.

use super::setarg::{self, Assignment};
use super::{ValueInputs, DEFAULT_VALUES, DEFAULT_VALUES_NAME};
use crate::code::Code;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::source::{Origin, Pos, SourceId, SourceKind, SourceMap};
use crate::values::path::{Segment, ValuePath};
use crate::yaml::load::PathSeg;
use crate::yaml::{load_documents, Node, NodeKind};
use std::io::Read;
use std::path::Path;

/// One input, parsed.
#[derive(Debug, Clone)]
pub enum Layer {
    /// A whole values tree (defaults or a file); `None` for an empty file.
    Tree(Option<Node>),
    /// The assignments of one `--set` argument.
    Set(Vec<Assignment>),
}

/// The embedded defaults, parsed once per process (a fleet merges them
/// into every cluster's values) and cloned for each run whose defaults
/// source has the same id (always the first source of a run).
fn defaults_tree(id: SourceId) -> Result<Option<Node>, Diagnostic> {
    static PARSED: std::sync::OnceLock<(SourceId, Result<Option<Node>, Diagnostic>)> =
        std::sync::OnceLock::new();
    let (cached, tree) = PARSED.get_or_init(|| (id, parse_tree(DEFAULT_VALUES, id)));
    if *cached == id {
        tree.clone()
    } else {
        parse_tree(DEFAULT_VALUES, id)
    }
}

pub fn load_all(inputs: &ValueInputs, sources: &mut SourceMap) -> Result<Vec<Layer>, Diagnostics> {
    let mut layers = Vec::new();
    let mut diags = Diagnostics::default();
    let id = sources.add(DEFAULT_VALUES_NAME, SourceKind::Defaults);
    match defaults_tree(id) {
        Ok(tree) => layers.push(Layer::Tree(tree)),
        Err(d) => diags.push(d),
    }
    if let Some(name) = &inputs.preset {
        match super::preset::find(name) {
            Ok(preset) => {
                let id = sources.add(preset.source_name(), SourceKind::Preset);
                match parse_tree(preset.text, id) {
                    Ok(tree) => layers.push(Layer::Tree(tree)),
                    Err(d) => diags.push(d),
                }
            }
            Err(d) => diags.push(d),
        }
    }
    let mut stdin_read = false;
    for file in &inputs.files {
        let name = if file.as_os_str() == STDIN_ARG {
            STDIN_NAME.to_string()
        } else {
            file.display().to_string()
        };
        let id = sources.add(name.clone(), SourceKind::File);
        match read_input(file, &name, id, &mut stdin_read).and_then(|text| parse_tree(&text, id)) {
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
        let id = sources.add(set_arg_name(flag, &set.text), SourceKind::SetArg);
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

/// The most characters of a `--set` argument its name in messages
/// shows; a longer one (a 40 KB path) is named by its start and length.
const MAX_SHOWN_SET_CHARS: usize = 120;

/// How a `--set` argument is named in messages: `--set a.b=1`.
fn set_arg_name(flag: &str, text: &str) -> String {
    let len = text.chars().count();
    if len <= MAX_SHOWN_SET_CHARS {
        return format!("{flag} {}", shell_quote(text));
    }
    let start: String = text.chars().take(MAX_SHOWN_SET_CHARS).collect();
    format!("{flag} {}… ({len} characters)", shell_quote(&start))
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

/// The most bytes one values input may hold: 64 MiB. Real values files
/// are kilobytes and a 10,000-profile file a few MB; anything larger is
/// the wrong file (or `/dev/zero`), and is refused before it is parsed.
pub const MAX_VALUES_BYTES: u64 = 64 << 20;

/// The `-f` argument that reads the values from standard input.
pub const STDIN_ARG: &str = "-";

/// How standard input is named in messages (`<stdin>:3:5`).
pub const STDIN_NAME: &str = "<stdin>";

fn cannot_read(name: &str, e: &std::io::Error) -> Diagnostic {
    Diagnostic::error(
        Code::Input,
        format!("cannot read values file `{name}`: {}", io_reason(e)),
    )
}

fn too_large(name: &str) -> Diagnostic {
    Diagnostic::error(Code::Input, format!(
        "values file `{name}` is larger than {} MiB, the limit for one values input (values files are kilobytes); is it the right file?",
        MAX_VALUES_BYTES >> 20
    ))
}

/// Read one values input: a file, or standard input for [`STDIN_ARG`]
/// (once per run), as UTF-8 text.
fn read_input(
    path: &Path,
    name: &str,
    id: SourceId,
    stdin_read: &mut bool,
) -> Result<String, Diagnostic> {
    let bytes = if path.as_os_str() == STDIN_ARG {
        if std::mem::replace(stdin_read, true) {
            return Err(Diagnostic::error(
                Code::Input,
                "`-f -` is given more than once; standard input can be read only once",
            ));
        }
        read_bounded(std::io::stdin().lock(), name, 0)?
    } else {
        read_file(path, name)?
    };
    decode_text(bytes, name, id)
}

/// Read a values file, refusing what is not a regular file (a directory,
/// a FIFO, a device, a socket) or holds more than [`MAX_VALUES_BYTES`].
fn read_file(path: &Path, name: &str) -> Result<Vec<u8>, Diagnostic> {
    // Look before opening: opening a FIFO blocks until a writer comes,
    // and a device such as /dev/zero never ends.
    let meta = std::fs::metadata(path).map_err(|e| cannot_read(name, &e))?;
    check_regular(&meta, name)?;
    let file = open_without_blocking(path).map_err(|e| cannot_read(name, &e))?;
    // The path may have been replaced since: judge what was opened.
    let meta = file.metadata().map_err(|e| cannot_read(name, &e))?;
    check_regular(&meta, name)?;
    if meta.len() > MAX_VALUES_BYTES {
        return Err(too_large(name));
    }
    read_bounded(file, name, meta.len())
}

/// Read at most [`MAX_VALUES_BYTES`] from `input` (one byte more tells
/// that there was more); `expected` is the size to reserve.
fn read_bounded(input: impl Read, name: &str, expected: u64) -> Result<Vec<u8>, Diagnostic> {
    let mut bytes = Vec::with_capacity(expected.min(MAX_VALUES_BYTES) as usize);
    input
        .take(MAX_VALUES_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot_read(name, &e))?;
    if bytes.len() as u64 > MAX_VALUES_BYTES {
        return Err(too_large(name));
    }
    Ok(bytes)
}

/// Open for reading without waiting: should the path have become a FIFO
/// since it was inspected, `open` returns at once instead of blocking
/// until a writer comes (and the kind check that follows refuses it).
/// For a regular file the flag changes nothing.
#[cfg(unix)]
fn open_without_blocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_without_blocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// Refuse anything but a regular file (symlinks are followed).
fn check_regular(meta: &std::fs::Metadata, name: &str) -> Result<(), Diagnostic> {
    let ty = meta.file_type();
    if ty.is_file() {
        return Ok(());
    }
    if ty.is_dir() {
        return Err(Diagnostic::error(
            Code::Input,
            format!("values file `{name}` is a directory; expected a YAML file"),
        ));
    }
    Err(Diagnostic::error(Code::Input, format!(
        "values file `{name}` is {}, not a regular file; pass a YAML file, or `-f -` to read the values from standard input",
        special_kind(&ty)
    )))
}

#[cfg(unix)]
fn special_kind(ty: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ty.is_fifo() {
        "a named pipe (FIFO)"
    } else if ty.is_char_device() {
        "a character device"
    } else if ty.is_block_device() {
        "a block device"
    } else if ty.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// A values input's bytes as UTF-8 text, refusing what is not text.
fn decode_text(bytes: Vec<u8>, name: &str, id: SourceId) -> Result<String, Diagnostic> {
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        let (line, col) = line_col(&bytes[..at]);
        return Err(Diagnostic::error(
            Code::Input,
            format!("values file `{name}` holds binary data (a NUL byte); expected YAML text"),
        )
        .at(file_origin(id, line, col)));
    }
    let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let (line, col) = line_col(&bytes[..at]);
        Diagnostic::error(
            Code::Input,
            format!(
                "values file `{name}` is not UTF-8 text (invalid byte 0x{:02x}); save it as UTF-8",
                bytes[at]
            ),
        )
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

/// The most path segments a loader error names.
const MAX_SHOWN_DEPTH: usize = 12;

/// Parse one values document: a map at the top, or nothing.
pub fn parse_tree(text: &str, id: SourceId) -> Result<Option<Node>, Diagnostic> {
    let docs = load_documents(text, id).map_err(|e| {
        let d = Diagnostic::error(Code::Input, e.message).at(Some(e.origin));
        if e.path.is_empty() {
            return d;
        }
        // A path deeper than any real value (a nesting attack) is named by
        // its start: the message says what went wrong below it.
        d.at_path(ValuePath(
            e.path
                .into_iter()
                .take(MAX_SHOWN_DEPTH)
                .map(|s| match s {
                    PathSeg::Key(k) => Segment::Key(k),
                    PathSeg::Index(i) => Segment::Index(i),
                })
                .collect(),
        ))
    })?;
    let mut docs: Vec<Node> = docs.into_iter().flatten().collect();
    if docs.len() > 1 {
        return Err(Diagnostic::error(Code::Input, format!(
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
        _ => Err(Diagnostic::error(
            Code::Input,
            format!(
                "the top level of a values file must be a map of keys, got a {}",
                doc.type_name()
            ),
        )
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

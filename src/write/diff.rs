//! `meshgen diff`: compare the new tree with a directory on disk, file by
//! file, as a unified diff or a `--stat` summary.
//!
//! The directory compared may be anything a pull request put there, so
//! it is read within meshgen's own bounds (issue 30): every file's size
//! is looked at before any is read, a file larger than any meshgen writes
//! ([`MAX_COMPARED_BYTES`]) is refused as not meshgen's output, a file of
//! the same size is compared byte for byte and one of another size is
//! changed, and the files are read one at a time and written out before
//! the next, so memory is bounded by the largest file, not the tree.
//! A path is written C-quoted as git does (`"a/evil-\033[31m.yaml"`)
//! when it holds a control character, a quote or a backslash, so the
//! diff stays a patch `git apply` reads; on a terminal, every control
//! character of the contents is escaped too ([`Escape::Terminal`]).
//!
//! This module only reads the directory; it never writes, renders or
//! deletes.

use super::{io_err, list_files, refuse_special_directory, Files, MARKER};
use crate::code::Code;
use crate::diagnostic::{escape_controls, Diagnostic};
use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;

/// The largest file `diff` reads from the compared directory: 64 MiB,
/// as much as one values input may hold, and more than any file meshgen
/// writes (an object is at most 1 MiB, the largest file, a vendored CRD,
/// under 0.5 MB; the marker of 10,000 profiles under 1 MB).
pub const MAX_COMPARED_BYTES: u64 = 64 << 20;

/// How the diff is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As a patch: contents byte for byte (paths quoted as git does).
    Patch,
    /// For a terminal: every control character escaped (`\u{1b}`), so
    /// a compared tree cannot send the terminal escape sequences.
    Terminal,
}

/// One file that differs between `dir` and the new tree: its text on
/// disk and in the new tree (`None`: absent there).
struct Change<'a> {
    rel: &'a str,
    old: Option<String>,
    new: Option<&'a String>,
}

/// Call `each` with every file of `dir` (marker excluded) and `files`
/// that differs, in path order, one at a time.
fn for_each_change(
    dir: &Path,
    files: &Files,
    only: &[String],
    mut each: impl FnMut(Change<'_>) -> Result<(), Diagnostic>,
) -> Result<(), Diagnostic> {
    let present = if dir.is_dir() {
        refuse_special_directory(dir, dir, "compare with")?;
        list_files(dir)?
    } else {
        Vec::new()
    };
    // Sizes first: nothing is read before every file is known to be
    // within meshgen's bounds.
    let mut sizes: HashMap<&str, u64> = HashMap::new();
    for rel in present.iter().filter(|p| *p != MARKER && within(p, only)) {
        let path = dir.join(rel);
        let meta = path
            .symlink_metadata()
            .map_err(|e| io_err("inspect", &path, e))?;
        // Never open what is not a regular file: a FIFO would block.
        if !meta.is_file() {
            return Err(Diagnostic::error(Code::Output, format!(
                "cannot compare `{}`: it is not a regular file (a symlink, FIFO, device or socket); meshgen writes only regular files",
                path.display()
            )));
        }
        if meta.len() > MAX_COMPARED_BYTES {
            return Err(too_large(&path, meta.len()));
        }
        sizes.insert(rel, meta.len());
    }
    let mut paths: Vec<&str> = sizes
        .keys()
        .copied()
        .chain(
            files
                .keys()
                .map(String::as_str)
                .filter(|p| *p != MARKER && within(p, only)),
        )
        .collect();
    paths.sort_unstable();
    paths.dedup();
    for rel in paths {
        let new = files.get(rel);
        let old = match sizes.get(rel) {
            None => None,
            Some(&len) => {
                let path = dir.join(rel);
                let bytes = read_bounded(&path)?;
                if bytes.len() as u64 > MAX_COMPARED_BYTES.max(len) {
                    return Err(too_large(&path, bytes.len() as u64));
                }
                if new.is_some_and(|n| n.as_bytes() == bytes) {
                    continue;
                }
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
        };
        each(Change { rel, old, new })?;
    }
    Ok(())
}

fn too_large(path: &Path, len: u64) -> Diagnostic {
    Diagnostic::error(Code::Output, format!(
        "cannot compare `{}`: it is {len} bytes, larger than any file meshgen writes ({} MiB at most): not meshgen's output; remove it or compare it yourself",
        path.display(),
        MAX_COMPARED_BYTES >> 20
    ))
}

/// A file's bytes, at most one more than [`MAX_COMPARED_BYTES`] (a file
/// that grew since its size was read is then refused).
fn read_bounded(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    let file = fs::File::open(path).map_err(|e| io_err("read", path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_COMPARED_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err("read", path, e))?;
    Ok(bytes)
}

/// `rel` is one of the paths `only` names (a file, or a directory and
/// everything under it, as git's pathspecs), or `only` is empty.
fn within(rel: &str, only: &[String]) -> bool {
    only.is_empty()
        || only.iter().any(|o| {
            let o = o.trim_end_matches('/');
            o.is_empty()
                || o == "."
                || rel == o
                || rel.strip_prefix(o).is_some_and(|r| r.starts_with('/'))
        })
}

/// `prefix` + `rel` as a patch names it: C-quoted, as git quotes a path,
/// when it holds a control character, a double quote or a backslash.
fn patch_path(prefix: &str, rel: &str) -> String {
    let name = format!("{prefix}{rel}");
    if !name
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return name;
    }
    let mut out = String::from("\"");
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:03o}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Write `text` to `out`, each line escaped for a terminal if asked.
fn emit(out: &mut dyn Write, text: &str, escape: Escape) -> Result<(), Diagnostic> {
    let failed =
        |e: std::io::Error| Diagnostic::error(Code::Output, format!("cannot write the diff: {e}"));
    if escape == Escape::Patch {
        return out.write_all(text.as_bytes()).map_err(failed);
    }
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        out.write_all(escape_controls(body).as_bytes())
            .and_then(|()| out.write_all(end.as_bytes()))
            .map_err(failed)?;
    }
    Ok(())
}

/// The unified diff of one change.
fn unified(c: &Change) -> String {
    let a = match c.old {
        Some(_) => patch_path("a/", c.rel),
        None => "/dev/null".into(),
    };
    let b = match c.new {
        Some(_) => patch_path("b/", c.rel),
        None => "/dev/null".into(),
    };
    let old_text = c.old.as_deref().unwrap_or_default();
    let new_text = c.new.map(String::as_str).unwrap_or_default();
    let d = similar::TextDiff::from_lines(old_text, new_text);
    let mut out = format!("diff --meshgen {a} {b}\n");
    out.push_str(
        &d.unified_diff()
            .context_radius(3)
            .header(&a, &b)
            .to_string(),
    );
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Write the diff (or, with `stat`, its summary) between `dir` and
/// `files` to `out`, of the paths `only` names (all when empty);
/// whether anything differs.
pub fn diff_to(
    dir: &Path,
    files: &Files,
    only: &[String],
    stat: bool,
    escape: Escape,
    out: &mut dyn Write,
) -> Result<bool, Diagnostic> {
    if stat {
        let text = diff_stat(dir, files, only)?;
        emit(out, &text, escape)?;
        return Ok(!text.is_empty());
    }
    let mut any = false;
    for_each_change(dir, files, only, |c| {
        any = true;
        emit(out, &unified(&c), escape)
    })?;
    Ok(any)
}

/// A unified diff between the files in `dir` (marker excluded) and
/// `files`, of the paths `only` names (all when empty); empty when
/// identical. Added and removed files diff against `/dev/null`.
pub fn diff(dir: &Path, files: &Files, only: &[String]) -> Result<String, Diagnostic> {
    let mut out = String::new();
    for_each_change(dir, files, only, |c| {
        out.push_str(&unified(&c));
        Ok(())
    })?;
    Ok(out)
}

/// What `diff` would show, one line per changed file (lines added and
/// removed, and whether the file is new or gone) and a total, as
/// `git diff --stat` summarises: for reviewing a mode change whose diff is
/// long (a CRD bundle alone is thousands of lines). Empty when identical.
pub fn diff_stat(dir: &Path, files: &Files, only: &[String]) -> Result<String, Diagnostic> {
    // One summary per change; the texts are dropped as they are counted.
    let mut rows: Vec<(String, usize, usize, &str)> = Vec::new();
    for_each_change(dir, files, only, |c| {
        let old_text = c.old.as_deref().unwrap_or_default();
        let new_text = c.new.map(String::as_str).unwrap_or_default();
        let d = similar::TextDiff::from_lines(old_text, new_text);
        let (mut plus, mut minus) = (0usize, 0usize);
        for op in d.iter_all_changes() {
            match op.tag() {
                similar::ChangeTag::Insert => plus += 1,
                similar::ChangeTag::Delete => minus += 1,
                similar::ChangeTag::Equal => {}
            }
        }
        let state = match (&c.old, &c.new) {
            (None, _) => " (new)",
            (_, None) => " (gone)",
            _ => "",
        };
        rows.push((patch_path("", c.rel), plus, minus, state));
        Ok(())
    })?;
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let (mut added, mut removed) = (0usize, 0usize);
    let mut out = String::new();
    for (rel, plus, minus, state) in &rows {
        added += plus;
        removed += minus;
        out.push_str(&format!(" {rel:<width$} | +{plus} -{minus}{state}\n"));
    }
    if !rows.is_empty() {
        out.push_str(&format!(
            " {} file{} changed, {added} insertion{}(+), {removed} deletion{}(-)\n",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" },
            if added == 1 { "" } else { "s" },
            if removed == 1 { "" } else { "s" },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_as_git_quotes_them() {
        assert_eq!(patch_path("a/", "x/y.yaml"), "a/x/y.yaml");
        assert_eq!(
            patch_path("a/", "evil-\u{1b}[31mred\".yaml"),
            "\"a/evil-\\033[31mred\\\".yaml\""
        );
        assert_eq!(patch_path("b/", "a\nb"), "\"b/a\\nb\"");
    }

    #[test]
    fn a_terminal_gets_escapes_a_patch_gets_bytes() {
        let mut t = Vec::new();
        emit(&mut t, "+x\u{1b}]0;t\u{7}\n-\u{1b}[2J\n", Escape::Terminal).unwrap();
        assert_eq!(
            String::from_utf8(t).unwrap(),
            "+x\\u{1b}]0;t\\u{7}\n-\\u{1b}[2J\n"
        );
        let mut p = Vec::new();
        emit(&mut p, "+\u{1b}[2J\n", Escape::Patch).unwrap();
        assert_eq!(p, "+\u{1b}[2J\n".as_bytes());
    }
}

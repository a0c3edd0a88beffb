//! Stage 6: put a checked tree on disk, or compare it with what is there.
//!
//! Writing is all-or-nothing: the whole tree goes into a temporary sibling
//! directory (a `tempfile` holder, removed on any error), which then
//! replaces the output directory by rename; the previous tree is moved
//! aside into a second holder and deleted once the new one is in. The
//! output directory is replaced only if it does not exist, is empty, or
//! holds meshgen's marker *and* nothing but files that marker lists:
//! anything else there belongs to the user, so meshgen refuses and touches
//! nothing. Nothing outside the output directory (and its temporary
//! siblings) is ever written or deleted: siblings a killed run left are
//! deleted only when provably meshgen's (the marker, written first, lists
//! every file in them), and reported otherwise.
//!
//! This stage never renders; it receives finished bytes.

use crate::diagnostic::Diagnostic;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Name of the marker file at the root of every output directory.
pub const MARKER: &str = ".meshgen-output";

/// The bytes to write, by relative path (sorted).
pub type Files = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteReport {
    pub dir: PathBuf,
    pub files: usize,
    /// The directory held an earlier meshgen output.
    pub replaced: bool,
    /// What the user should know although the tree is in place.
    pub warnings: Vec<Diagnostic>,
}

/// The marker's text: tool version, values digest and the files written.
/// The sha256 of the effective values (canonical JSON), for the marker.
pub fn values_digest(json: &serde_json::Value) -> String {
    // Hashed as it is serialized, so the JSON text is never held whole.
    // Neither call can fail: the writer only hashes.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, <sha2::Sha256 as sha2::Digest>::new());
    let _ = serde_json::to_writer(&mut out, json);
    let _ = std::io::Write::flush(&mut out);
    format!("sha256:{:x}", sha2::Digest::finalize(out.into_parts().0))
}

pub fn marker_text(version: &str, digest: &str, files: &Files) -> String {
    let list: Vec<serde_json::Value> = files.keys().map(|k| k.as_str().into()).collect();
    let doc = serde_json::json!({
        "generator": format!("meshgen {version}"),
        "valuesDigest": digest,
        "files": list,
    });
    format!(
        "# Written by meshgen. meshgen replaces this directory only while this file is\n# here and the directory holds no file missing from the list below.\n{}",
        crate::yaml::emit::document(&doc)
    )
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Diagnostic {
    Diagnostic::error(format!("cannot {what} `{}`: {e}", path.display()))
}

/// Every regular file under `dir`, relative, sorted; symlinks are
/// reported as files (never followed).
pub fn list_files(dir: &Path) -> Result<Vec<String>, Diagnostic> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(|e| io_err("read directory", &d, e))? {
            let entry = entry.map_err(|e| io_err("read directory", &d, e))?;
            let path = entry.path();
            let ty = entry.file_type().map_err(|e| io_err("inspect", &path, e))?;
            if ty.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).map_err(|_| {
                    Diagnostic::error("internal: path outside the output directory")
                })?;
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Files the marker in `dir` says meshgen wrote, if there is a marker.
fn marked_files(dir: &Path) -> Result<Option<Vec<String>>, Diagnostic> {
    let marker = dir.join(MARKER);
    if !marker.is_file() {
        return Ok(None);
    }
    let text = fs::read_to_string(&marker).map_err(|e| io_err("read", &marker, e))?;
    let id = crate::source::SourceId(0);
    let doc = crate::yaml::load_documents(&text, id)
        .ok()
        .and_then(|mut d| d.pop().flatten())
        .map(|n| n.to_json());
    let files = doc
        .as_ref()
        .and_then(|d| d.get("files"))
        .and_then(|f| f.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        });
    match files {
        Some(f) => Ok(Some(f)),
        None => Err(Diagnostic::error(format!(
            "`{}` is damaged (no file list); remove the output directory yourself if it is meshgen's",
            marker.display()
        ))),
    }
}

/// The files of `present` (all files under `dir`) that the marker in
/// `dir` does not list, the marker itself excepted; `None` without a
/// marker.
fn unlisted_files<'a>(
    dir: &Path,
    present: &'a [String],
) -> Result<Option<Vec<&'a String>>, Diagnostic> {
    let Some(ours) = marked_files(dir)? else {
        return Ok(None);
    };
    let ours: HashSet<&str> = ours.iter().map(String::as_str).collect();
    Ok(Some(
        present
            .iter()
            .filter(|p| p.as_str() != MARKER && !ours.contains(p.as_str()))
            .collect(),
    ))
}

/// Decide whether `dir` may be replaced. Ok(true) when it holds an earlier
/// output, Ok(false) when it is absent or empty.
fn may_replace(dir: &Path) -> Result<bool, Diagnostic> {
    if !dir.exists() && dir.symlink_metadata().is_err() {
        return Ok(false);
    }
    let meta = dir
        .symlink_metadata()
        .map_err(|e| io_err("inspect", dir, e))?;
    if !meta.is_dir() {
        return Err(Diagnostic::error(format!(
            "output path `{}` exists and is not a directory; choose another -o",
            dir.display()
        )));
    }
    let present = list_files(dir)?;
    let has_dirs = fs::read_dir(dir)
        .map_err(|e| io_err("read directory", dir, e))?
        .next()
        .is_some();
    if present.is_empty() && !has_dirs {
        return Ok(false);
    }
    let Some(foreign) = unlisted_files(dir, &present)? else {
        return Err(Diagnostic::error(format!(
            "refusing to write into `{}`: it is not empty and was not written by meshgen (no {MARKER}); choose an empty or new directory",
            dir.display()
        )));
    };
    if let Some(first) = foreign.first() {
        return Err(Diagnostic::error(format!(
            "refusing to replace `{}`: it holds {} file(s) meshgen did not write, e.g. `{first}`; move them out first",
            dir.display(),
            foreign.len()
        )));
    }
    Ok(true)
}

/// The output directory's parent (`.` for a bare name) and its name.
fn parent_and_name(dir: &Path) -> Result<(PathBuf, String), Diagnostic> {
    let name = dir.file_name().ok_or_else(|| {
        Diagnostic::error(format!(
            "output path `{}` has no directory name",
            dir.display()
        ))
    })?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name.to_string_lossy().into_owned()))
}

/// Prefixes of the temporary siblings of output `name`: the new tree
/// while it is written, and the previous tree while it is deleted. Runs
/// before tempfile named them `<prefix><pid>` (the tree itself, no
/// holder); now tempfile adds a random suffix and the tree sits inside,
/// under `name`.
fn sibling_prefixes(name: &str) -> [String; 2] {
    [
        format!(".{name}.meshgen-tmp-"),
        format!(".{name}.meshgen-old-"),
    ]
}

/// A directory meshgen can prove it wrote: it holds no file at all, or
/// its marker lists every file in it.
fn is_our_tree(dir: &Path) -> bool {
    let Ok(present) = list_files(dir) else {
        return false;
    };
    present.is_empty() || matches!(unlisted_files(dir, &present), Ok(Some(u)) if u.is_empty())
}

/// Is `path`, a leftover sibling of output `name`, provably meshgen's: an
/// old-style temporary tree, or a holder with nothing in it but a tree
/// called `name`?
fn is_our_leftover(path: &Path, name: &str) -> bool {
    let Ok(entries) = fs::read_dir(path) else {
        return false;
    };
    let entries: Vec<_> = entries.collect();
    let holds_only_our_tree = match entries.as_slice() {
        [] => true,
        [Ok(entry)] => {
            entry.file_name().to_string_lossy() == name
                && entry.file_type().is_ok_and(|t| t.is_dir())
                && is_our_tree(&entry.path())
        }
        _ => false,
    };
    holds_only_our_tree || is_our_tree(path)
}

/// Remove what interrupted runs left beside output `name` in `parent`
/// (a killed process deletes no temporary directory): siblings with
/// meshgen's prefixes that are provably meshgen's. Anything else under
/// such a name is left alone and reported.
fn clean_leftovers(parent: &Path, name: &str) -> Vec<Diagnostic> {
    let prefixes = sibling_prefixes(name);
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut leftovers: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let file_name = e.file_name();
            let file_name = file_name.to_string_lossy();
            prefixes.iter().any(|p| file_name.starts_with(p.as_str()))
        })
        .map(|e| e.path())
        .collect();
    leftovers.sort();
    let mut warnings = Vec::new();
    for path in leftovers {
        let is_dir = path.symlink_metadata().is_ok_and(|m| m.is_dir());
        if !is_dir || !is_our_leftover(&path, name) {
            warnings.push(Diagnostic::warning(format!(
                "`{}` is named like what an interrupted meshgen run leaves, but holds files meshgen did not write; left as it is: check it and remove it yourself",
                path.display()
            )));
        } else if let Err(e) = fs::remove_dir_all(&path) {
            warnings.push(Diagnostic::warning(format!(
                "cannot remove `{}`, left by an interrupted meshgen run: {e}; remove it yourself",
                path.display()
            )));
        }
    }
    warnings
}

fn write_tree(root: &Path, files: &Files) -> Result<(), Diagnostic> {
    fs::create_dir(root).map_err(|e| io_err("create", root, e))?;
    // Directories first (each once), then the files.
    let dirs: BTreeSet<&str> = files
        .keys()
        .filter_map(|rel| rel.rsplit_once('/').map(|(d, _)| d))
        .collect();
    for dir in dirs {
        let path = root.join(dir);
        fs::create_dir_all(&path).map_err(|e| io_err("create", &path, e))?;
    }
    // The marker first: a tree cut short by a crash lists every file it
    // holds, so the next run can prove the leftover is meshgen's.
    let marker_first = files
        .get_key_value(MARKER)
        .into_iter()
        .chain(files.iter().filter(|(rel, _)| rel.as_str() != MARKER));
    // One thread: most files sit in one directory (a profile each), and
    // creating entries in a directory is serialized by the kernel anyway;
    // measured, parallel writers only added system time spinning on it.
    for (rel, text) in marker_first {
        let path = root.join(rel);
        fs::write(&path, text).map_err(|e| io_err("write", &path, e))?;
    }
    Ok(())
}

/// Why a write failed, and what that left in place of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The output directory is as it was (anything temporary is removed,
    /// or is removed by the next run).
    Unchanged(Diagnostic),
    /// The previous output was moved aside, the new tree could not be
    /// moved in, and the previous one could not be moved back: the output
    /// directory is missing and the previous tree is at `previous`.
    PreviousMovedAside {
        diagnostic: Diagnostic,
        previous: PathBuf,
    },
}

impl WriteError {
    pub fn diagnostic(&self) -> &Diagnostic {
        match self {
            WriteError::Unchanged(d) | WriteError::PreviousMovedAside { diagnostic: d, .. } => d,
        }
    }

    /// What is true of output directory `dir` after the failure, for the
    /// last line a user reads.
    pub fn outcome(&self, dir: &Path) -> String {
        match self {
            WriteError::Unchanged(_) => format!("`{}` was not changed", dir.display()),
            WriteError::PreviousMovedAside { previous, .. } => format!(
                "`{}` is missing: its previous content is at `{}`",
                dir.display(),
                previous.display()
            ),
        }
    }
}

impl From<Diagnostic> for WriteError {
    fn from(d: Diagnostic) -> Self {
        WriteError::Unchanged(d)
    }
}

/// Write `files` (the marker included) as the whole content of `dir`.
///
/// Returns `Ok` once the new tree is in place; what went wrong after that
/// (the previous output could not be deleted) and leftovers of
/// interrupted runs that are not provably meshgen's are in the report's
/// warnings.
pub fn write(dir: &Path, files: &Files) -> Result<WriteReport, WriteError> {
    write_with(dir, files, tempfile::TempDir::close)
}

/// [`write`], deleting the moved-aside previous output with
/// `remove_previous` (tests make it fail).
fn write_with(
    dir: &Path,
    files: &Files,
    remove_previous: impl FnOnce(tempfile::TempDir) -> std::io::Result<()>,
) -> Result<WriteReport, WriteError> {
    let replaced = may_replace(dir)?;
    let (parent, name) = parent_and_name(dir)?;
    fs::create_dir_all(&parent).map_err(|e| io_err("create", &parent, e))?;
    let mut warnings = clean_leftovers(&parent, &name);
    let [tmp_prefix, old_prefix] = sibling_prefixes(&name);
    let holder = |prefix: &str| {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&parent)
            .map_err(|e| io_err("create a temporary directory in", &parent, e))
    };
    // The new tree is written inside a holder (removed with it on any
    // error), as `name`: tempfile makes its directories private, the
    // tree gets the usual permissions.
    let new_holder = holder(&tmp_prefix)?;
    let new_tree = new_holder.path().join(&name);
    write_tree(&new_tree, files)?;
    if dir.symlink_metadata().is_ok() {
        // Swap: move the old tree aside, move the new one in, then delete
        // the old one. If the second rename fails, put the old tree back.
        let old_holder = holder(&old_prefix)?;
        let previous = old_holder.path().join(&name);
        fs::rename(dir, &previous).map_err(|e| io_err("move aside", dir, e))?;
        if let Err(e) = fs::rename(&new_tree, dir) {
            let diagnostic = io_err("replace", dir, e);
            if let Err(back) = fs::rename(&previous, dir) {
                // Never delete the only copy of the previous output.
                let previous = old_holder.keep().join(&name);
                return Err(WriteError::PreviousMovedAside {
                    diagnostic: Diagnostic::error(format!(
                        "{}; moving the previous output back from `{}` failed too: {back}",
                        diagnostic.message,
                        previous.display()
                    )),
                    previous,
                });
            }
            return Err(WriteError::Unchanged(diagnostic));
        }
        let aside = old_holder.path().to_path_buf();
        if let Err(e) = remove_previous(old_holder) {
            warnings.push(Diagnostic::warning(format!(
                "the new tree is in `{}`, but the previous output, moved aside to `{}`, could not be deleted: {e}; the next run into `{}` deletes it, or remove it yourself",
                dir.display(),
                aside.display(),
                dir.display()
            )));
        }
    } else {
        fs::rename(&new_tree, dir).map_err(|e| io_err("create", dir, e))?;
    }
    // Only the empty holder is left to delete.
    let _ = new_holder.close();
    Ok(WriteReport {
        dir: dir.to_path_buf(),
        files: files.len(),
        replaced,
        warnings,
    })
}

/// A unified diff between the files in `dir` (marker excluded) and
/// `files`; empty when identical. Added and removed files diff against
/// `/dev/null`.
pub fn diff(dir: &Path, files: &Files) -> Result<String, Diagnostic> {
    let present = if dir.is_dir() {
        list_files(dir)?
    } else {
        Vec::new()
    };
    let mut paths: Vec<&str> = present
        .iter()
        .map(String::as_str)
        .chain(files.keys().map(String::as_str))
        .filter(|p| *p != MARKER)
        .collect();
    paths.sort();
    paths.dedup();
    let present_set: HashSet<&str> = present.iter().map(String::as_str).collect();
    let mut out = String::new();
    for rel in paths {
        let old = if present_set.contains(rel) {
            let path = dir.join(rel);
            let bytes = fs::read(&path).map_err(|e| io_err("read", &path, e))?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            None
        };
        let new = files.get(rel);
        if old.as_deref() == new.map(String::as_str) {
            continue;
        }
        let a = if old.is_some() {
            format!("a/{rel}")
        } else {
            "/dev/null".into()
        };
        let b = if new.is_some() {
            format!("b/{rel}")
        } else {
            "/dev/null".into()
        };
        let old_text = old.unwrap_or_default();
        let new_text = new.cloned().unwrap_or_default();
        let d = similar::TextDiff::from_lines(&old_text, &new_text);
        out.push_str(&format!("diff --meshgen {a} {b}\n"));
        out.push_str(
            &d.unified_diff()
                .context_radius(3)
                .header(&a, &b)
                .to_string(),
        );
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> Files {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// The diagnostic of a write that must have left the output as it was.
    fn unchanged(result: Result<WriteReport, WriteError>) -> Diagnostic {
        match result {
            Err(WriteError::Unchanged(d)) => d,
            other => panic!("expected a refusal that changed nothing, got {other:?}"),
        }
    }

    fn with_marker(mut f: Files) -> Files {
        let text = marker_text("0", "d", &f);
        f.insert(MARKER.into(), text);
        f
    }

    #[test]
    fn writes_replaces_and_refuses_foreign_files() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let first = with_marker(files(&[("a/x.yaml", "x\n"), ("b.md", "b\n")]));
        assert!(!write(&out, &first).unwrap().replaced);
        let second = with_marker(files(&[("a/y.yaml", "y\n")]));
        assert!(write(&out, &second).unwrap().replaced);
        assert_eq!(
            list_files(&out).unwrap(),
            vec![MARKER.to_string(), "a/y.yaml".into()]
        );
        // A file the user added is never deleted.
        fs::write(out.join("notes.txt"), "mine").unwrap();
        let e = unchanged(write(&out, &first));
        assert!(e.message.contains("`notes.txt`"), "{}", e.message);
        assert_eq!(fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
        assert!(out.join("a/y.yaml").exists());
        // No temporary siblings are left behind.
        let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    /// Names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_previous_output_that_cannot_be_deleted_is_a_warning_once_the_new_tree_is_in() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write(&out, &with_marker(files(&[("a/old.yaml", "old\n")]))).unwrap();
        let new = with_marker(files(&[("a/new.yaml", "new\n")]));
        let report = write_with(&out, &new, |held| {
            // Keep it, as a failed delete would.
            let _ = held.keep();
            Err(std::io::Error::other("device busy"))
        })
        .unwrap();
        assert!(report.replaced);
        assert_eq!(
            list_files(&out).unwrap(),
            vec![MARKER.to_string(), "a/new.yaml".into()]
        );
        let [warning] = report.warnings.as_slice() else {
            panic!("one warning expected: {:?}", report.warnings)
        };
        let left = names(tmp.path());
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left[0].starts_with(".out.meshgen-old-"), "{left:?}");
        let aside = tmp.path().join(&left[0]);
        assert_eq!(
            warning.message,
            format!(
                "the new tree is in `{}`, but the previous output, moved aside to `{}`, could not be deleted: device busy; the next run into `{}` deletes it, or remove it yourself",
                out.display(),
                aside.display(),
                out.display()
            )
        );
        assert_eq!(
            fs::read_to_string(aside.join("out/a/old.yaml")).unwrap(),
            "old\n"
        );
        // The next run proves the leftover is meshgen's and deletes it.
        let report = write(&out, &new).unwrap();
        assert_eq!(report.warnings, vec![]);
        assert_eq!(names(tmp.path()), vec!["out".to_string()]);
    }

    #[test]
    fn leftovers_of_interrupted_runs_are_deleted_only_when_provably_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let full = with_marker(files(&[("a/x.yaml", "x\n"), ("b.md", "b\n")]));
        let put = |dir: &Path, rels: &[&str]| {
            for rel in rels {
                let path = dir.join(rel);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, &full[*rel]).unwrap();
            }
        };
        // Before tempfile: the trees themselves, named by pid; one cut
        // short (the marker is written first), one whole previous output.
        put(
            &tmp.path().join(".out.meshgen-tmp-41"),
            &[MARKER, "a/x.yaml"],
        );
        put(
            &tmp.path().join(".out.meshgen-old-42"),
            &[MARKER, "a/x.yaml", "b.md"],
        );
        // With tempfile: a holder with the tree inside; one holding only
        // the directories created before the first file.
        put(&tmp.path().join(".out.meshgen-tmp-Ab12Cd/out"), &[MARKER]);
        fs::create_dir_all(tmp.path().join(".out.meshgen-tmp-Zz99Yy/out/a")).unwrap();
        // Not provably ours: kept, and reported.
        let foreign = tmp.path().join(".out.meshgen-old-7");
        put(&foreign, &[MARKER, "b.md"]);
        fs::write(foreign.join("mine.txt"), "mine").unwrap();
        fs::write(tmp.path().join(".out.meshgen-tmp-43"), "a file").unwrap();
        // Another output's leftovers are not this run's business.
        put(&tmp.path().join(".other.meshgen-tmp-44"), &[MARKER]);

        let report = write(&out, &full).unwrap();
        let messages: Vec<&str> = report.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        for (message, name) in messages
            .iter()
            .zip([".out.meshgen-old-7", ".out.meshgen-tmp-43"])
        {
            assert_eq!(
                *message,
                format!(
                    "`{}` is named like what an interrupted meshgen run leaves, but holds files meshgen did not write; left as it is: check it and remove it yourself",
                    tmp.path().join(name).display()
                )
            );
        }
        assert_eq!(
            names(tmp.path()),
            vec![
                ".other.meshgen-tmp-44".to_string(),
                ".out.meshgen-old-7".into(),
                ".out.meshgen-tmp-43".into(),
                "out".into(),
            ]
        );
        assert_eq!(
            fs::read_to_string(foreign.join("mine.txt")).unwrap(),
            "mine"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_output_directory_gets_the_usual_permissions_not_tempfiles() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write(&out, &with_marker(files(&[("a/x.yaml", "x\n")]))).unwrap();
        let usual = tmp.path().join("usual");
        fs::create_dir(&usual).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&out), mode(&usual));
    }

    #[test]
    fn refuses_unmarked_non_empty_directories_and_files() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("keep.txt"), "k").unwrap();
        let e = unchanged(write(tmp.path(), &with_marker(files(&[("x", "1")]))));
        assert!(
            e.message.contains("not written by meshgen"),
            "{}",
            e.message
        );
        assert_eq!(
            list_files(tmp.path()).unwrap(),
            vec!["keep.txt".to_string()]
        );
        let e = unchanged(write(&tmp.path().join("keep.txt"), &files(&[])));
        assert!(e.message.contains("not a directory"));
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(write(&empty, &with_marker(files(&[("x", "1")]))).is_ok());
    }

    #[test]
    fn diff_shows_changed_added_and_removed_files() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write(
            &out,
            &with_marker(files(&[("a", "1\n2\n"), ("gone", "x\n")])),
        )
        .unwrap();
        let d = diff(&out, &files(&[("a", "1\n3\n"), ("new", "n\n")])).unwrap();
        assert!(d.contains("--- a/a\n+++ b/a\n"), "{d}");
        assert!(d.contains("-2\n+3\n"), "{d}");
        assert!(d.contains("--- /dev/null\n+++ b/new\n"), "{d}");
        assert!(d.contains("--- a/gone\n+++ /dev/null\n"), "{d}");
        assert_eq!(
            diff(&out, &files(&[("a", "1\n2\n"), ("gone", "x\n")])).unwrap(),
            ""
        );
    }
}

//! Stage 6: put a checked tree on disk, or compare it with what is there.
//!
//! Writing is all-or-nothing: the whole tree goes into a temporary sibling
//! directory (a `tempfile` holder, removed on any error), which then
//! replaces the output directory by rename; the previous tree is moved
//! aside into a second holder and deleted once the new one is in. The
//! output directory is replaced only if it does not exist, is empty, or
//! holds meshgen's marker *and* nothing but files that marker lists and
//! the directories holding them: anything else there (a file, or an empty
//! directory a user made) belongs to the user, so meshgen refuses and
//! touches nothing. A directory without a marker at its top is refused
//! before it is walked, and the filesystem root and the home directory
//! are refused outright. Nothing outside the output directory (and its
//! temporary siblings) is ever written or deleted: siblings a killed run
//! left are deleted only when provably meshgen's (the marker, written
//! first, lists every file in them), and reported otherwise.
//!
//! When the output directory holds an earlier tree, a file whose bytes are
//! unchanged is not written again but hard-linked into the new tree from
//! the earlier one (a regular file linked nowhere else, compared byte for
//! byte): the earlier tree itself is never modified before the swap, so
//! the guarantees above hold, and re-rendering 10,000 profiles after a
//! one-profile change writes that profile's file and the marker. When
//! every file, the marker included, is unchanged, nothing is written.
//!
//! Deleting a previous tree removes its marker last, so a tree that could
//! be deleted only in part stays provably meshgen's: the run succeeds
//! (the new tree is in) with a warning naming what is left, and the next
//! run deletes the rest.
//!
//! This stage never renders; it receives finished bytes.

pub mod diff;
pub mod place;

pub use diff::{diff, diff_stat, diff_to, Escape};

use crate::code::Code;
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
    /// Of those, the files written; the others were unchanged and are
    /// hard links to the previous tree's files (see [`write`]). 0 when the
    /// directory already held exactly this tree (then nothing changed).
    pub written: usize,
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
    Diagnostic::error(
        Code::Output,
        format!("cannot {what} `{}`: {e}", path.display()),
    )
}

/// Every regular file under `dir`, relative, sorted; symlinks are
/// reported as files (never followed).
pub fn list_files(dir: &Path) -> Result<Vec<String>, Diagnostic> {
    Ok(list_entries(dir)?.0)
}

/// Every file (as [`list_files`]) and every directory under `dir`,
/// relative, each list sorted.
fn list_entries(dir: &Path) -> Result<(Vec<String>, Vec<String>), Diagnostic> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(|e| io_err("read directory", &d, e))? {
            let entry = entry.map_err(|e| io_err("read directory", &d, e))?;
            let path = entry.path();
            let ty = entry.file_type().map_err(|e| io_err("inspect", &path, e))?;
            let rel = path
                .strip_prefix(dir)
                .map_err(|_| {
                    Diagnostic::error(Code::Output, "internal: path outside the output directory")
                })?
                .to_string_lossy()
                .replace('\\', "/");
            if ty.is_dir() {
                stack.push(path);
                dirs.push(rel);
            } else {
                files.push(rel);
            }
        }
    }
    files.sort();
    dirs.sort();
    Ok((files, dirs))
}

/// The most a marker may hold; one listing 10,000 profiles is under 1 MB.
const MAX_MARKER_BYTES: u64 = 64 << 20;

/// Files the marker in `dir` says meshgen wrote, if there is a marker.
fn marked_files(dir: &Path) -> Result<Option<Vec<String>>, Diagnostic> {
    let marker = dir.join(MARKER);
    // Only a regular file, never what a symlink points to (a FIFO would
    // block the read, a device never end it).
    let Ok(meta) = marker.symlink_metadata() else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    let damaged = || {
        Diagnostic::error(Code::Output, format!(
            "`{}` is damaged (no file list); remove the output directory yourself if it is meshgen's",
            marker.display()
        ))
    };
    if meta.len() > MAX_MARKER_BYTES {
        return Err(damaged());
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
    files.map(Some).ok_or_else(damaged)
}

/// What under a directory its marker does not account for.
#[derive(Debug, Default)]
struct Foreign {
    /// Files the marker does not list (the marker itself excepted).
    files: Vec<String>,
    /// Directories that hold no file the marker lists, nor did: no
    /// listed file is under them (an empty directory a user made).
    dirs: Vec<String>,
}

impl Foreign {
    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty()
    }
}

/// What under `dir` meshgen did not write, by the marker in `dir`;
/// `None` without a marker (then nothing is walked).
fn foreign_entries(dir: &Path) -> Result<Option<Foreign>, Diagnostic> {
    let Some(ours) = marked_files(dir)? else {
        return Ok(None);
    };
    let (files, dirs) = list_entries(dir)?;
    let our_files: HashSet<&str> = ours.iter().map(String::as_str).collect();
    // Every directory meshgen made holds a file it wrote.
    let our_dirs: HashSet<&str> = ours
        .iter()
        .flat_map(|f| f.match_indices('/').map(move |(i, _)| &f[..i]))
        .collect();
    Ok(Some(Foreign {
        files: files
            .into_iter()
            .filter(|p| p != MARKER && !our_files.contains(p.as_str()))
            .collect(),
        dirs: dirs
            .into_iter()
            .filter(|d| !our_dirs.contains(d.as_str()))
            .collect(),
    }))
}

/// Directories no output may replace, with why: the filesystem root and
/// the user's home directory (checked before anything is walked: a tree
/// that large is never meshgen's).
/// `doing` is what was asked ("write into", "compare with").
fn refuse_special_directory(dir: &Path, shown: &Path, doing: &str) -> Result<(), Diagnostic> {
    let Ok(canonical) = fs::canonicalize(dir) else {
        return Ok(());
    };
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .and_then(|h| fs::canonicalize(h).ok());
    let what = if canonical.parent().is_none() {
        "the root of the filesystem"
    } else if home.as_deref() == Some(canonical.as_path()) {
        "your home directory"
    } else {
        return Ok(());
    };
    Err(Diagnostic::error(
        Code::Output,
        format!(
            "refusing to {doing} `{}`: it is {what}; give -o a directory of its own, e.g. `-o out`",
            shown.display()
        ),
    ))
}

/// Decide whether `dir` may be replaced. Ok(true) when it holds an earlier
/// output, Ok(false) when it is absent or empty. `dir` is the resolved
/// path, `shown` what the user gave.
fn may_replace(dir: &Path, shown: &Path) -> Result<bool, Diagnostic> {
    if !dir.exists() && dir.symlink_metadata().is_err() {
        return Ok(false);
    }
    let meta = dir
        .symlink_metadata()
        .map_err(|e| io_err("inspect", dir, e))?;
    if !meta.is_dir() {
        return Err(Diagnostic::error(
            Code::Output,
            format!(
                "output path `{}` exists and is not a directory; choose another -o",
                shown.display()
            ),
        ));
    }
    refuse_special_directory(dir, shown, "write into")?;
    let is_empty = fs::read_dir(dir)
        .map_err(|e| io_err("read directory", dir, e))?
        .next()
        .is_none();
    if is_empty {
        return Ok(false);
    }
    // Without a marker at its top, the directory is refused before it is
    // walked (`-o /` must not read the whole filesystem first).
    let Some(foreign) = foreign_entries(dir)? else {
        return Err(Diagnostic::error(Code::Output, format!(
            "refusing to write into `{}`: it is not empty and was not written by meshgen (no {MARKER}); choose an empty or new directory",
            shown.display()
        )));
    };
    if let Some(first) = foreign.files.first() {
        return Err(Diagnostic::error(Code::Output, format!(
            "refusing to replace `{}`: it holds {} file(s) meshgen did not write, e.g. `{first}`; move them out first",
            shown.display(),
            foreign.files.len()
        )));
    }
    if let Some(first) = foreign.dirs.first() {
        return Err(Diagnostic::error(Code::Output, format!(
            "refusing to replace `{}`: it holds {} directory(ies) meshgen did not make, e.g. `{first}/` (empty, or holding only other such directories); move them out or remove them first",
            shown.display(),
            foreign.dirs.len()
        )));
    }
    Ok(true)
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
/// its marker accounts for everything in it.
fn is_our_tree(dir: &Path) -> bool {
    let Ok(present) = list_files(dir) else {
        return false;
    };
    present.is_empty() || matches!(foreign_entries(dir), Ok(Some(f)) if f.is_empty())
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
            warnings.push(Diagnostic::warning(Code::Leftover, format!(
                "`{}` is named like what an interrupted meshgen run leaves, but holds files meshgen did not write; left as it is: check it and remove it yourself",
                path.display()
            )));
        } else if let Err(remains) = remove_marker_last(&path) {
            warnings.push(Diagnostic::warning(Code::Leftover, format!(
                "cannot remove `{}`, left by an interrupted meshgen run ({}): {}; the next run tries again, or remove it yourself",
                path.display(),
                remains.error,
                remains.describe()
            )));
        }
    }
    warnings
}

/// What a deletion left.
#[derive(Debug)]
pub struct Remains {
    /// Files still there, relative to the directory being deleted, sorted;
    /// empty when only directories are left.
    pub files: Vec<String>,
    /// Why (the first failure).
    pub error: std::io::Error,
}

impl Remains {
    /// What is left, for a message: every file, up to a few.
    fn describe(&self) -> String {
        const SHOWN: usize = 5;
        let quoted: Vec<String> = self
            .files
            .iter()
            .take(SHOWN)
            .map(|f| format!("`{f}`"))
            .collect();
        match self.files.len() {
            0 => "only empty directories are left".into(),
            1 => format!("left there is {}", quoted[0]),
            n if n <= SHOWN => format!("left there are {n} files: {}", quoted.join(", ")),
            n => format!(
                "left there are {n} files: {} and {} more",
                quoted.join(", "),
                n - SHOWN
            ),
        }
    }
}

/// Delete `dir` and everything in it, meshgen's markers last. When a file
/// resists, nothing more is deleted: every marker is still there, listing
/// a superset of what is left, so the next run can still prove the
/// leftover is meshgen's and delete it (`remove_dir_all` took the marker
/// among the first, and the leftover became a stranger's).
fn remove_marker_last(dir: &Path) -> Result<(), Remains> {
    remove_marker_last_with(dir, |path| fs::remove_file(path))
}

/// [`remove_marker_last`], deleting each file with `remove_file` (tests
/// make it fail).
fn remove_marker_last_with(
    dir: &Path,
    remove_file: impl Fn(&Path) -> std::io::Result<()>,
) -> Result<(), Remains> {
    let files = list_files(dir).map_err(|d| Remains {
        files: Vec::new(),
        error: std::io::Error::other(d.message),
    })?;
    let is_marker = |rel: &&String| rel.rsplit('/').next() == Some(MARKER);
    let mut left = Vec::new();
    let mut first_error = None;
    for rel in files.iter().filter(|r| !is_marker(r)) {
        if let Err(e) = remove_file(&dir.join(rel)) {
            left.push(rel.clone());
            first_error.get_or_insert(e);
        }
    }
    if let Some(error) = first_error {
        return Err(Remains { files: left, error });
    }
    for rel in files.iter().filter(is_marker) {
        if let Err(error) = remove_file(&dir.join(rel)) {
            return Err(Remains {
                files: vec![rel.clone()],
                error,
            });
        }
    }
    // Only directories are left.
    fs::remove_dir_all(dir).map_err(|error| Remains {
        files: Vec::new(),
        error,
    })
}

/// How [`write_tree`] puts a file in the new tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Put {
    /// Written from its bytes.
    Written,
    /// Hard-linked from the previous tree, whose file holds the same bytes.
    Linked,
}

/// Whether `old`, the previous tree's file at the same path, may stand in
/// for `text` in the new tree: a regular file (never a symlink), linked
/// nowhere else (on Unix: one link, so the new tree shares its inode with
/// nothing but the previous tree, which is deleted once the new one is
/// in), holding exactly `text`. Anything unreadable is simply written.
fn reusable(old: &Path, text: &str) -> bool {
    let Ok(meta) = old.symlink_metadata() else {
        return false;
    };
    if !meta.is_file() || meta.len() != text.len() as u64 {
        return false;
    }
    if linked_elsewhere(&meta) {
        return false;
    }
    fs::read(old).is_ok_and(|bytes| bytes == text.as_bytes())
}

#[cfg(unix)]
fn linked_elsewhere(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.nlink() != 1
}

/// Without a link count to read, no file is reused.
#[cfg(not(unix))]
fn linked_elsewhere(_: &fs::Metadata) -> bool {
    true
}

/// The files of `files` that the earlier tree at `previous` already holds
/// byte for byte ([`reusable`]), the marker included. Compared on all
/// cores: reading, unlike creating entries, is not serialized per
/// directory.
fn unchanged_files<'a>(previous: &Path, files: &'a Files) -> HashSet<&'a str> {
    use rayon::prelude::*;
    let all: Vec<(&String, &String)> = files.iter().collect();
    all.par_iter()
        .with_min_len(64)
        .filter(|(rel, text)| reusable(&previous.join(rel), text))
        .map(|(rel, _)| rel.as_str())
        .collect()
}

/// Write `files` as a new tree at `root`. A file in `unchanged` (the
/// earlier tree at `previous` holds the same bytes) is hard-linked from
/// it instead of written: the previous tree is not modified (a link adds
/// a name, and the swap then removes the old one), so every guarantee of
/// the swap holds, and a re-render that changes one profile writes one
/// file. The marker is always written; a link that fails falls back to
/// writing.
fn write_tree(
    root: &Path,
    files: &Files,
    previous: &Path,
    unchanged: &HashSet<&str>,
) -> Result<Vec<Put>, Diagnostic> {
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
    let mut puts = Vec::with_capacity(files.len());
    if let Some(marker) = files.get(MARKER) {
        let path = root.join(MARKER);
        fs::write(&path, marker).map_err(|e| io_err("write", &path, e))?;
        puts.push(Put::Written);
    }
    // Then each directory by one thread, directories on all cores:
    // creating entries in one directory is serialized by the kernel (its
    // inode lock), so writers in the same directory only spin on it, while
    // writers in different directories (the profiles' shards) do not
    // contend.
    let mut by_dir: BTreeMap<&str, Vec<(&String, &String)>> = BTreeMap::new();
    for (rel, text) in files.iter().filter(|(rel, _)| rel.as_str() != MARKER) {
        let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
        by_dir.entry(dir).or_default().push((rel, text));
    }
    let groups: Vec<Vec<(&String, &String)>> = by_dir.into_values().collect();
    let put_one = |(rel, text): &(&String, &String)| -> Result<Put, Diagnostic> {
        let path = root.join(rel);
        if unchanged.contains(rel.as_str()) && fs::hard_link(previous.join(rel), &path).is_ok() {
            return Ok(Put::Linked);
        }
        fs::write(&path, text).map_err(|e| io_err("write", &path, e))?;
        Ok(Put::Written)
    };
    use rayon::prelude::*;
    let written: Vec<Vec<Put>> = groups
        .par_iter()
        .map(|group| group.iter().map(put_one).collect::<Result<Vec<Put>, _>>())
        .collect::<Result<_, _>>()?;
    puts.extend(written.into_iter().flatten());
    Ok(puts)
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
    write_waiting(dir, files, &mut |_| {})
}

/// [`write`], calling `on_wait` with a sentence naming the other run
/// before waiting for it (see [`place::lock`]).
pub fn write_waiting(
    dir: &Path,
    files: &Files,
    on_wait: &mut dyn FnMut(String),
) -> Result<WriteReport, WriteError> {
    write_with(dir, files, on_wait, remove_marker_last)
}

/// [`write`], deleting the moved-aside previous output (its holder) with
/// `remove_previous` (tests make it fail).
fn write_with(
    dir: &Path,
    files: &Files,
    on_wait: &mut dyn FnMut(String),
    remove_previous: impl FnOnce(&Path) -> Result<(), Remains>,
) -> Result<WriteReport, WriteError> {
    // Resolved once: every step below names the same directory, whatever
    // the renames do to a relative path (`-o out/../out`).
    refuse_special_directory(dir, dir, "write into")?;
    let target = place::Target::resolve(dir)?;
    let longest = files.keys().map(String::len).max().unwrap_or(0);
    target.check_length(dir, longest)?;
    let created = target.create_parent()?;
    let (parent, name, out) = (target.parent(), target.name.clone(), target.path());
    let _lock = place::lock(&parent, on_wait)?;
    // Before the leftovers are cleaned: a tree a killed swap left aside
    // is the output.
    let mut warnings = restore_aside(&parent, &name, &out, dir);
    let replaced = may_replace(&out, dir)?;
    warnings.extend(clean_leftovers(&parent, &name));
    let unchanged = if replaced {
        unchanged_files(&out, files)
    } else {
        HashSet::new()
    };
    if replaced && unchanged.len() == files.len() {
        // Every file, the marker included, is there byte for byte, and the
        // marker proved there is nothing else: the tree is already this one.
        created.keep();
        return Ok(WriteReport {
            dir: dir.to_path_buf(),
            files: files.len(),
            written: 0,
            replaced,
            warnings,
        });
    }
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
    let puts = write_tree(&new_tree, files, &out, &unchanged)?;
    let written = puts.iter().filter(|p| **p == Put::Written).count();
    if out.symlink_metadata().is_ok() {
        // Swap in one step where the kernel can: the previous tree takes
        // the new one's place in its holder, and no moment is without a
        // tree. Otherwise move the old tree aside, move the new one in,
        // and put the old one back if the second rename fails; a run
        // killed between the two leaves the old tree aside, and the next
        // run puts it back (`restore_aside`).
        let old_holder = holder(&old_prefix)?;
        let exchanged = place::exchange(&new_tree, &out).map_err(|e| io_err("replace", dir, e))?;
        let old_holder = if exchanged {
            // The previous tree is in the new tree's holder: name that as
            // every moved-aside tree is named (a directory renamed over an
            // empty one replaces it). Killed before, the holder is a
            // leftover like any other.
            match fs::rename(new_holder.path(), old_holder.path()) {
                Ok(()) => {
                    let _ = new_holder.keep();
                    old_holder
                }
                Err(_) => new_holder,
            }
        } else {
            let previous = old_holder.path().join(&name);
            fs::rename(&out, &previous).map_err(|e| io_err("move aside", dir, e))?;
            if let Err(e) = fs::rename(&new_tree, &out) {
                let diagnostic = io_err("replace", dir, e);
                if let Err(back) = fs::rename(&previous, &out) {
                    // Never delete the only copy of the previous output.
                    let previous = old_holder.keep().join(&name);
                    return Err(WriteError::PreviousMovedAside {
                        diagnostic: Diagnostic::error(
                            Code::Output,
                            format!(
                                "{}; moving the previous output back from `{}` failed too: {back}",
                                diagnostic.message,
                                previous.display()
                            ),
                        ),
                        previous,
                    });
                }
                return Err(WriteError::Unchanged(diagnostic));
            }
            let _ = new_holder.close();
            old_holder
        };
        // The new tree is in place: from here on the run succeeds. The
        // previous tree is deleted marker last (not by tempfile, whose
        // order is the directory's), so that whatever resists stays
        // provably meshgen's; the warning names exactly what is left.
        // Named beside `dir` as the user named it.
        let aside = match (old_holder.path().file_name(), dir.parent()) {
            (Some(holder), Some(p)) if !p.as_os_str().is_empty() => p.join(holder),
            (Some(holder), _) => Path::new(".").join(holder),
            (None, _) => old_holder.path().to_path_buf(),
        };
        let held = old_holder.keep();
        if let Err(remains) = remove_previous(&held) {
            warnings.push(Diagnostic::warning(Code::Leftover, format!(
                "the new tree is in `{}`, but the previous output, moved aside to `{}`, could not be deleted completely ({}): {}; the next run into `{}` deletes what is left once it can be removed, or remove `{}` yourself",
                dir.display(),
                aside.display(),
                remains.error,
                remains.describe(),
                dir.display(),
                aside.display()
            )));
        }
    } else {
        fs::rename(&new_tree, &out).map_err(|e| io_err("create", dir, e))?;
        // Only the empty holder is left to delete.
        let _ = new_holder.close();
    }
    created.keep();
    Ok(WriteReport {
        dir: dir.to_path_buf(),
        files: files.len(),
        written,
        replaced,
        warnings,
    })
}

/// When the output directory `out` is missing and a run killed between
/// the two renames of a swap (where the kernel cannot exchange) left the
/// previous tree aside in a holder beside it, move that tree back: the
/// output is as it was before that run. The newest such tree, when
/// several are provably meshgen's; the others are cleaned as leftovers.
fn restore_aside(parent: &Path, name: &str, out: &Path, shown: &Path) -> Vec<Diagnostic> {
    if out.symlink_metadata().is_ok() {
        return Vec::new();
    }
    let [_, old_prefix] = sibling_prefixes(name);
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let newest = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&old_prefix))
        .map(|e| e.path())
        .filter(|holder| {
            let tree = holder.join(name);
            tree.symlink_metadata().is_ok_and(|m| m.is_dir())
                && is_our_leftover(holder, name)
                && marked_files(&tree).is_ok_and(|m| m.is_some())
        })
        .max_by_key(|holder| holder.metadata().and_then(|m| m.modified()).ok());
    let Some(holder) = newest else {
        return Vec::new();
    };
    match fs::rename(holder.join(name), out) {
        Ok(()) => {
            let _ = fs::remove_dir(&holder);
            vec![Diagnostic::warning(Code::InterruptedSwap, format!(
                "`{}` was missing: a meshgen run was stopped between the two renames of its swap; its previous content, left at `{}`, is back in place",
                shown.display(),
                holder.join(name).display()
            ))]
        }
        Err(e) => vec![Diagnostic::warning(Code::InterruptedSwap, format!(
            "`{}` is missing and its previous content is at `{}` (a meshgen run was stopped mid-swap), but it cannot be moved back: {e}",
            shown.display(),
            holder.join(name).display()
        ))],
    }
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

    /// Issue 17: re-rendering into an earlier tree writes only what
    /// changed; unchanged files are the earlier tree's, hard-linked, and
    /// the earlier tree is still swapped out whole.
    #[cfg(unix)]
    #[test]
    fn unchanged_files_are_linked_from_the_previous_tree_not_written() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let first = with_marker(files(&[
            ("a/same.yaml", "same\n"),
            ("a/changed.yaml", "old1\n"),
            ("b/shared.yaml", "shared\n"),
            ("gone.yaml", "gone\n"),
        ]));
        let report = write(&out, &first).unwrap();
        assert_eq!((report.files, report.written), (5, 5));
        let inode = |rel: &str| fs::metadata(out.join(rel)).unwrap().ino();
        let (same, changed, shared) = (
            inode("a/same.yaml"),
            inode("a/changed.yaml"),
            inode("b/shared.yaml"),
        );
        // A file the user linked elsewhere is never shared with the new tree.
        let elsewhere = tmp.path().join("elsewhere.yaml");
        fs::hard_link(out.join("b/shared.yaml"), &elsewhere).unwrap();
        let second = with_marker(files(&[
            ("a/same.yaml", "same\n"),
            // Same length, other bytes: compared, not trusted by size.
            ("a/changed.yaml", "new1\n"),
            ("b/shared.yaml", "shared\n"),
            ("c/new.yaml", "new\n"),
        ]));
        let report = write(&out, &second).unwrap();
        assert!(report.replaced);
        // The marker, the changed, the new and the shared file.
        assert_eq!((report.files, report.written), (5, 4));
        assert_eq!(inode("a/same.yaml"), same);
        assert_ne!(inode("a/changed.yaml"), changed);
        assert_ne!(inode("b/shared.yaml"), shared);
        assert_eq!(fs::metadata(out.join("a/same.yaml")).unwrap().nlink(), 1);
        assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "shared\n");
        assert_eq!(
            list_files(&out).unwrap(),
            vec![
                MARKER.to_string(),
                "a/changed.yaml".into(),
                "a/same.yaml".into(),
                "b/shared.yaml".into(),
                "c/new.yaml".into()
            ]
        );
        for (rel, text) in &second {
            assert_eq!(&fs::read_to_string(out.join(rel)).unwrap(), text, "{rel}");
        }
        assert_eq!(
            names(tmp.path()),
            vec!["elsewhere.yaml".to_string(), "out".into()]
        );
        // The same tree again: nothing to write, nothing touched.
        let marker = inode(MARKER);
        let report = write(&out, &second).unwrap();
        assert_eq!((report.files, report.written), (5, 0));
        assert!(report.replaced);
        assert_eq!((inode(MARKER), inode("a/same.yaml")), (marker, same));
        // A file the user removed from it is written again.
        fs::remove_file(out.join("c/new.yaml")).unwrap();
        let report = write(&out, &second).unwrap();
        assert_eq!((report.files, report.written), (5, 2));
        assert_eq!(fs::read_to_string(out.join("c/new.yaml")).unwrap(), "new\n");
        // A refused write still changes nothing, links or not.
        fs::write(out.join("mine.txt"), "mine").unwrap();
        unchanged(write(&out, &first));
        assert_eq!(inode("a/same.yaml"), same);
        assert_eq!(
            fs::read_to_string(out.join("a/changed.yaml")).unwrap(),
            "new1\n"
        );
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
        write(
            &out,
            &with_marker(files(&[("a/old.yaml", "old\n"), ("b/old.yaml", "b\n")])),
        )
        .unwrap();
        let new = with_marker(files(&[("a/new.yaml", "new\n")]));
        let report = write_with(&out, &new, &mut |_| {}, |held| {
            // As if `out/a/old.yaml` resisted: the rest goes, the marker stays.
            fs::remove_file(held.join("out/b/old.yaml")).unwrap();
            Err(Remains {
                files: vec!["out/a/old.yaml".into()],
                error: std::io::Error::other("device busy"),
            })
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
                "the new tree is in `{}`, but the previous output, moved aside to `{}`, could not be deleted completely (device busy): left there is `out/a/old.yaml`; the next run into `{}` deletes what is left once it can be removed, or remove `{}` yourself",
                out.display(),
                aside.display(),
                out.display(),
                aside.display()
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
    fn deleting_keeps_the_marker_until_everything_else_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("t");
        let all = with_marker(files(&[
            ("a/x.yaml", "x\n"),
            ("b/y.md", "y\n"),
            ("z", "z\n"),
        ]));
        write(&tree, &all).unwrap();
        let resisting = tree.join("b/y.md");
        let remains = remove_marker_last_with(&tree, |path| {
            if path == resisting {
                Err(std::io::Error::other("busy"))
            } else {
                fs::remove_file(path)
            }
        })
        .unwrap_err();
        assert_eq!(remains.files, vec!["b/y.md".to_string()]);
        assert_eq!(remains.describe(), "left there is `b/y.md`");
        // Everything else went, except the marker: what is left is still
        // provably meshgen's.
        assert_eq!(
            list_files(&tree).unwrap(),
            vec![MARKER.to_string(), "b/y.md".into()]
        );
        assert!(is_our_tree(&tree));
        remove_marker_last(&tree).unwrap();
        assert!(!tree.exists());
        let many = Remains {
            files: (0..7).map(|i| format!("f{i}")).collect(),
            error: std::io::Error::other("x"),
        };
        assert_eq!(
            many.describe(),
            "left there are 7 files: `f0`, `f1`, `f2`, `f3`, `f4` and 2 more"
        );
    }

    #[test]
    fn empty_directories_the_user_made_are_refused_like_files() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let tree = with_marker(files(&[("a/x.yaml", "x\n")]));
        write(&out, &tree).unwrap();
        fs::create_dir_all(out.join("mine/deeper")).unwrap();
        let e = unchanged(write(&out, &tree));
        assert_eq!(
            e.message,
            format!(
                "refusing to replace `{}`: it holds 2 directory(ies) meshgen did not make, e.g. `mine/` (empty, or holding only other such directories); move them out or remove them first",
                out.display()
            )
        );
        assert!(out.join("mine/deeper").is_dir());
        // A directory of meshgen's whose files the user deleted is still its.
        fs::remove_dir_all(out.join("mine")).unwrap();
        fs::remove_file(out.join("a/x.yaml")).unwrap();
        assert!(write(&out, &tree).unwrap().replaced);
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
        let d = diff(&out, &files(&[("a", "1\n3\n"), ("new", "n\n")]), &[]).unwrap();
        assert!(d.contains("--- a/a\n+++ b/a\n"), "{d}");
        assert!(d.contains("-2\n+3\n"), "{d}");
        assert!(d.contains("--- /dev/null\n+++ b/new\n"), "{d}");
        assert!(d.contains("--- a/gone\n+++ /dev/null\n"), "{d}");
        assert_eq!(
            diff(&out, &files(&[("a", "1\n2\n"), ("gone", "x\n")]), &[]).unwrap(),
            ""
        );
    }
}

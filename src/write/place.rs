//! Where the output goes, fixed once before anything moves (issue 30),
//! and the two operations that move it.
//!
//! - [`Target::resolve`] turns `-o` into an absolute parent and a name:
//!   each existing component is resolved by the filesystem (symlinks and
//!   `..` as the kernel reads them), and a `..` after a component that
//!   does not exist yet cancels it, so `-o x/../out` never creates `x`.
//!   Every later step names the parent by that absolute path: after the
//!   first rename, `-o out/../out` (or `-o ../out` run inside `out`)
//!   would otherwise name another directory.
//! - [`Target::create_parent`] makes the missing directories, removed
//!   again when the write fails; [`Target::check_length`] refuses, before
//!   that, an output whose files' paths the system would refuse.
//! - [`lock`] holds an advisory lock (`flock`) on the parent for the whole
//!   write: a second run into the same parent waits, naming the holder.
//! - [`exchange`] swaps two directories atomically (Linux's
//!   `renameat2(RENAME_EXCHANGE)`); where the kernel or filesystem lacks
//!   it the caller falls back to two renames, and a run killed between
//!   them leaves the previous tree aside, which the next run puts back.
//!
//! This module never reads or writes a file's content.

use crate::code::Code;
use crate::diagnostic::Diagnostic;
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The output directory: an absolute, resolved parent and a name.
#[derive(Debug, Clone)]
pub struct Target {
    /// The deepest existing directory of the parent, resolved.
    base: PathBuf,
    /// The parent's components below `base` that do not exist yet.
    missing: Vec<OsString>,
    /// The output directory's own name.
    pub name: String,
}

/// The longest path the kernel takes (`PATH_MAX`, the terminating NUL
/// included).
const PATH_MAX: usize = 4096;

/// What a temporary holder adds to a file's path beside the output:
/// `/.<name>.meshgen-tmp-XXXXXX/<name>/` around the relative path.
const HOLDER_EXTRA: usize = ".meshgen-tmp-".len() + 6 + 4;

impl Target {
    pub fn resolve(dir: &Path) -> Result<Target, Diagnostic> {
        let no_name = || {
            Diagnostic::error(
                Code::Output,
                format!("output path `{}` has no directory name", dir.display()),
            )
        };
        let mut components: Vec<Component> = dir.components().collect();
        let Some(Component::Normal(name)) = components.pop() else {
            return Err(no_name());
        };
        let cannot = |e: std::io::Error| {
            Diagnostic::error(
                Code::Output,
                format!("cannot resolve output path `{}`: {e}", dir.display()),
            )
        };
        let mut base = if dir.is_absolute() {
            PathBuf::new()
        } else {
            std::env::current_dir().map_err(cannot)?
        };
        let mut missing: Vec<OsString> = Vec::new();
        for c in components {
            match c {
                Component::Prefix(_) | Component::RootDir => {
                    base.push(c.as_os_str());
                    missing.clear();
                }
                Component::CurDir => {}
                Component::ParentDir => {
                    // A name that does not exist is no symlink: its `..`
                    // is where it would be made.
                    if missing.pop().is_none() {
                        base.pop();
                    }
                }
                Component::Normal(n) if missing.is_empty() => {
                    match fs::canonicalize(base.join(n)) {
                        Ok(resolved) => base = resolved,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            missing.push(n.to_os_string())
                        }
                        Err(e) => return Err(cannot(e)),
                    }
                }
                Component::Normal(n) => missing.push(n.to_os_string()),
            }
        }
        Ok(Target {
            base,
            missing,
            name: name.to_string_lossy().into_owned(),
        })
    }

    /// The parent directory, absolute.
    pub fn parent(&self) -> PathBuf {
        let mut p = self.base.clone();
        p.extend(&self.missing);
        p
    }

    /// The output directory, absolute.
    pub fn path(&self) -> PathBuf {
        self.parent().join(&self.name)
    }

    /// Refuse an output whose files (the longest is `longest` bytes,
    /// relative) would have paths longer than the kernel takes, before
    /// anything is made.
    pub fn check_length(&self, shown: &Path, longest: usize) -> Result<(), Diagnostic> {
        let parent = self.parent().as_os_str().len();
        let total = parent + 2 * self.name.len() + HOLDER_EXTRA + longest;
        if total < PATH_MAX {
            return Ok(());
        }
        Err(Diagnostic::error(Code::Output, format!(
            "output path `{}` is too long: its files' paths would reach {total} bytes while being written, and the system takes at most {}; choose a shorter -o",
            shown.display(),
            PATH_MAX - 1
        )))
    }

    /// Make the parent's missing directories; they are removed again when
    /// the returned guard is dropped before [`Created::keep`].
    pub fn create_parent(&self) -> Result<Created, Diagnostic> {
        let mut created = Created(Vec::new());
        let mut path = self.base.clone();
        for n in &self.missing {
            path.push(n);
            match fs::create_dir(&path) {
                Ok(()) => created.0.push(path.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => {}
                Err(e) => {
                    return Err(Diagnostic::error(
                        Code::Output,
                        format!("cannot create `{}`: {e}", path.display()),
                    ))
                }
            }
        }
        Ok(created)
    }
}

/// Directories a run made for its output's parent, deepest last.
#[derive(Debug)]
pub struct Created(Vec<PathBuf>);

impl Created {
    /// The output is in place: keep them.
    pub fn keep(mut self) {
        self.0.clear();
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        // Only empty directories go: what another process put there stays.
        for dir in self.0.iter().rev() {
            if fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// An advisory lock on a directory, held until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: Option<fs::File>,
}

/// Lock `dir` (the output's parent) for a whole write: a second meshgen
/// run into it (into any output there: their temporary siblings share
/// the parent) calls `on_wait` with a sentence naming the holder, then
/// waits for it. On a filesystem without `flock`, or a parent this user
/// cannot read, the write goes on unlocked, as before.
pub fn lock(dir: &Path, on_wait: &mut dyn FnMut(String)) -> Result<Lock, Diagnostic> {
    // A parent that cannot be opened (no read permission) or locked
    // (a filesystem without flock) is written into as before: unlocked.
    let Ok(file) = fs::File::open(dir) else {
        return Ok(Lock { _file: None });
    };
    match file.try_lock() {
        Ok(()) => return Ok(Lock { _file: Some(file) }),
        Err(fs::TryLockError::WouldBlock) => {}
        Err(fs::TryLockError::Error(_)) => return Ok(Lock { _file: None }),
    }
    on_wait(format!(
        "another meshgen run{} is writing into `{}`; waiting for it to finish",
        holder(dir).map(|h| format!(" ({h})")).unwrap_or_default(),
        dir.display()
    ));
    file.lock().map_err(|e| {
        Diagnostic::error(
            Code::Output,
            format!("cannot lock `{}`: {e}", dir.display()),
        )
    })?;
    Ok(Lock { _file: Some(file) })
}

/// Who holds the `flock` on `dir`, from `/proc/locks` (Linux): "process
/// 1234, meshgen".
#[cfg(target_os = "linux")]
fn holder(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(dir).ok()?;
    // `MAJOR:MINOR:INODE`, the device in hex (fs/locks.c lock_get_status).
    let id = format!(
        "{:02x}:{:02x}:{}",
        libc::major(meta.dev()),
        libc::minor(meta.dev()),
        meta.ino()
    );
    let locks = fs::read_to_string("/proc/locks").ok()?;
    // `1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF`; waiters are `->`.
    let pid = locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (kind, pid, at) = (f.get(1)?, f.get(4)?, f.get(5)?);
        (*kind == "FLOCK" && *at == id).then(|| pid.to_string())
    })?;
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    Some(match comm.trim() {
        "" => format!("process {pid}"),
        c => format!("process {pid}, {}", crate::diagnostic::escape_controls(c)),
    })
}

#[cfg(not(target_os = "linux"))]
fn holder(_: &Path) -> Option<String> {
    None
}

/// Swap directories `a` and `b` in one step. `Ok(false)` when the kernel
/// or the filesystem cannot (`ENOSYS` before Linux 3.15, `EINVAL` where
/// the filesystem lacks it; always off Linux): the caller then renames
/// twice.
#[cfg(target_os = "linux")]
pub fn exchange(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c =
        |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are NUL-terminated strings that outlive the call; the
    // syscall reads them and nothing else (renameat2(2)).
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn exchange(_: &Path, _: &Path) -> std::io::Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_dot_dot_by_the_filesystem_and_creates_nothing_on_the_way() {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        fs::create_dir(root.join("out")).unwrap();
        let t = Target::resolve(&root.join("out/../out")).unwrap();
        assert_eq!(t.path(), root.join("out"));
        let t = Target::resolve(&root.join("x/../y/z/../out")).unwrap();
        assert_eq!(t.path(), root.join("y/out"));
        let created = t.create_parent().unwrap();
        assert!(root.join("y").is_dir() && !root.join("x").exists());
        drop(created);
        assert!(!root.join("y").exists(), "removed again when not kept");
        assert!(Target::resolve(Path::new("out/..")).is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn exchanges_two_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        fs::write(a.join("from-a"), "").unwrap();
        if exchange(&a, &b).unwrap() {
            assert!(b.join("from-a").exists() && !a.join("from-a").exists());
        }
    }
}

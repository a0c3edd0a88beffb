//! Embed every file under `templates/` into the binary, in sorted path
//! order, so meshgen runs offline from any directory. This script only
//! lists the files; it never reads or checks a template.
//!
//! Why not `minijinja-embed`: its `embed_templates!` writes a closure that
//! adds each template to an `Environment` and panics on an invalid one,
//! walking directories in `read_dir` order. meshgen needs the templates as
//! data: `render::templates()` is every (path, source), sorted, which the
//! render stage walks in that order (deterministic output) and
//! `render::env` adds to its environment with template errors turned
//! into diagnostics. minijinja-embed also copies each
//! source into the generated file as a literal, so a build reused from
//! another checkout keeps that checkout's sources; here the sources are
//! `include_str!`ed relative to the crate being compiled, and rustc
//! tracks every one of them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("templates/ is readable")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=templates");
    // Read at run time: a build script binary reused from another checkout
    // of the crate must still list this checkout's templates.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("templates");
    let mut files = Vec::new();
    walk(&root, &mut files);
    // Sorted by the relative path as a string (what `render::templates`
    // promises): `a-b/x` before `a/x`, unlike a walk sorted per directory.
    let mut rels: Vec<String> = files
        .iter()
        .map(|file| {
            file.strip_prefix(&root)
                .expect("under templates/")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    rels.sort();
    let mut code = String::from("pub static TEMPLATES: &[(&str, &str)] = &[\n");
    for rel in rels {
        // The path is resolved when the crate is compiled, in whichever
        // checkout that is, never the one this script last ran in.
        writeln!(
            code,
            "    ({rel:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/templates/\", {rel:?}))),"
        )
        .expect("writing to a String cannot fail");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("templates.rs");
    std::fs::write(out, code).expect("write templates.rs");
    git_revision(Path::new(&manifest_dir));
}

/// `MESHGEN_VERSION`: the crate version with, as semver build metadata,
/// the commit the crate is built from (12 hex
/// digits, `-dirty` when tracked files differ from it), or empty outside a
/// git checkout (a source tarball) or without git. `--version` and the
/// marker's `generator:` carry it, so a CI job can see that a tree was
/// written by another build of the same version. Re-run when HEAD, the
/// branch it names or the index moves (a commit, a checkout, `git add`).
fn git_revision(dir: &Path) {
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let mut rev = String::new();
    if let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) {
        for file in ["HEAD", "index"] {
            if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", file]) {
                println!("cargo:rerun-if-changed={p}");
            }
        }
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", &r]) {
                println!("cargo:rerun-if-changed={p}");
            }
        }
        let dirty =
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        rev = if dirty { format!("{head}-dirty") } else { head };
    }
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    // Semver build metadata: `0.1.0+1a2b3c4d5e6f`, or `0.1.0` alone.
    let long = if rev.is_empty() {
        version
    } else {
        format!("{version}+{rev}")
    };
    println!("cargo:rustc-env=MESHGEN_VERSION={long}");
}

//! Helpers shared by the integration tests: one file walker, one way to
//! run the real binary, one way to load a case of `tests/cases/`, and the
//! pipeline run on value files and `--set` arguments.
#![allow(dead_code)] // each test crate uses its own subset

pub mod helm;

use meshgen::values::{SetArg, ValueInputs};
use meshgen::Session;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The deployKF sample values the `deploykf-sample` case renders (a copy
/// of deployKF's own file: `tests/fixtures/upstream/SOURCES.md`).
pub const DEPLOYKF_SAMPLE: &str = "tests/fixtures/upstream/deploykf-0.1.5/sample-values.yaml";

/// A file copied from upstream into `tests/fixtures/upstream/` (its
/// source, licence and sha256 in `SOURCES.md` there), by its path there.
pub fn upstream(rel: &str) -> PathBuf {
    root().join("tests/fixtures/upstream").join(rel)
}

/// `../shared/<rel>` beside the repository, for the tests that need more
/// than the copies in `tests/fixtures/upstream`. `None` (the test then
/// returns early, having printed why) when it is missing, unless
/// `MESHGEN_REQUIRE_TOOLS` is set (as `.ci/run` sets it): then the test
/// fails naming the path.
pub fn shared(rel: &str, test: &str) -> Option<PathBuf> {
    let path = root().join("../shared").join(rel);
    if path.exists() {
        return Some(path);
    }
    let why = format!(
        "{test}: skipped: {} not found (../shared beside the repository)",
        path.display()
    );
    if helm::tools_required() {
        panic!("{why}; MESHGEN_REQUIRE_TOOLS is set, so it must be there");
    }
    eprintln!("{why}");
    None
}

/// The crate's directory.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------
// Files

/// Every file under `dir` (directories descended, not listed), as paths
/// relative to `dir`, in sorted order.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    fn go(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for e in entries {
            let e = e.unwrap();
            let rel = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                go(&e.path(), &rel, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    go(dir, Path::new(""), &mut out);
    out.sort();
    out
}

/// Every file under `dir` with its bytes, by path relative to `dir`.
pub fn read_tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walk(dir)
        .into_iter()
        .map(|rel| {
            let bytes = std::fs::read(dir.join(&rel)).unwrap();
            (rel, bytes)
        })
        .collect()
}

/// Copy every file under `from` to the same place under `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    for rel in walk(from) {
        let target = to.join(&rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&rel), target).unwrap();
    }
}

// ---------------------------------------------------------------------
// The binary

/// The real `meshgen` binary, to be run in `dir`.
pub fn meshgen_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshgen"));
    cmd.current_dir(dir);
    cmd
}

/// Run the real binary in `dir` with `args`.
pub fn run_meshgen(dir: &Path, args: &[&str]) -> Output {
    meshgen_command(dir)
        .args(args)
        .output()
        .expect("run meshgen")
}

/// Run the real binary in `dir` with `args`, `stdin` on its standard
/// input, killing it after `timeout`: a run that blocks fails the test
/// instead of hanging it (the output then has no exit code).
pub fn run_meshgen_bounded(
    dir: &Path,
    args: &[&str],
    stdin: Option<Vec<u8>>,
    timeout: std::time::Duration,
) -> Output {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let mut child = meshgen_command(dir)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run meshgen");
    let feeder = child.stdin.take().map(|mut pipe| {
        let bytes = stdin.unwrap_or_default();
        // meshgen may stop reading early (that is what a bound does).
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = pipe.read_to_end(&mut out);
            out
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for meshgen") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait for meshgen");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

// ---------------------------------------------------------------------
// Cases

/// The names of the cases under `tests/cases/`, sorted.
pub fn cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(root().join("tests/cases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    cases
}

/// The inputs of `tests/cases/<case>/`: its `values.yaml` (after the
/// deployKF sample for `deploykf-sample`), and one `--set` per line of its
/// `set-args`; both optional.
pub fn case_inputs(case: &str) -> ValueInputs {
    cases_inputs(&[case], &[])
}

/// The inputs of several cases, applied in order (a later one wins), then
/// `sets`.
pub fn cases_inputs(cases: &[&str], sets: &[&str]) -> ValueInputs {
    let mut all = ValueInputs::default();
    for case in cases {
        let dir = root().join("tests/cases").join(case);
        assert!(dir.is_dir(), "no case tests/cases/{case}");
        // A case may build on another: `base` names it, and its inputs
        // come first (the four routing × data-plane combinations share
        // one values file this way).
        if let Ok(base) = std::fs::read_to_string(dir.join("base")) {
            let base = cases_inputs(&[base.trim()], &[]);
            all.files.extend(base.files);
            all.sets.extend(base.sets);
        }
        // A case may render with a preset (`--preset`): its `preset` file names it.
        if let Ok(preset) = std::fs::read_to_string(dir.join("preset")) {
            all.preset = Some(preset.trim().to_string());
        }
        if *case == "deploykf-sample" {
            all.files.push(root().join(DEPLOYKF_SAMPLE));
        }
        let values = dir.join("values.yaml");
        if values.exists() {
            all.files.push(values);
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("set-args")) {
            all.sets.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| SetArg {
                        text: l.to_string(),
                        force_string: false,
                    }),
            );
        }
    }
    all.sets.extend(inputs(vec![], sets).sets);
    all
}

// ---------------------------------------------------------------------
// The pipeline

pub fn inputs(files: Vec<PathBuf>, sets: &[&str]) -> ValueInputs {
    ValueInputs {
        preset: None,
        files,
        sets: sets
            .iter()
            .map(|s| SetArg {
                text: s.to_string(),
                force_string: false,
            })
            .collect(),
    }
}

/// The documents `kubectl kustomize dir` builds (failing the test when
/// the build fails). `None` when kubectl is missing, after saying so;
/// with `MESHGEN_REQUIRE_TOOLS` set, a missing kubectl fails the test.
pub fn kustomize_build(dir: &Path) -> Option<Vec<Value>> {
    let Ok(built) = Command::new("kubectl").arg("kustomize").arg(dir).output() else {
        assert!(
            !helm::tools_required(),
            "kubectl not found; MESHGEN_REQUIRE_TOOLS is set, so it is a failure"
        );
        eprintln!(
            "skipped the kustomize build of {}: kubectl not found",
            dir.display()
        );
        return None;
    };
    assert!(
        built.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    Some(docs(&String::from_utf8_lossy(&built.stdout)))
}

/// Generate, or fail the test printing every diagnostic.
pub fn generate(inputs: &ValueInputs) -> meshgen::Generated {
    let mut session = Session::default();
    match meshgen::generate(inputs, &mut session) {
        Ok(g) => g,
        Err(e) => {
            let text: Vec<String> =
                e.0.iter()
                    .map(|d| d.display(&session.sources).to_string())
                    .collect();
            panic!("generate failed:\n{}", text.join("\n"));
        }
    }
}

/// Every document of a YAML text, as JSON.
pub fn docs(text: &str) -> Vec<Value> {
    meshgen::yaml::load_json_documents(text).expect("valid YAML")
}

/// Manifest documents by (kind, namespace, name).
pub type Objects = BTreeMap<(String, String, String), Value>;

/// Every manifest document of a generated tree (not charts or
/// kustomizations), by (kind, namespace, name); a key twice fails.
pub fn objects(g: &meshgen::Generated) -> Objects {
    let mut out = BTreeMap::new();
    for m in &g.manifests {
        for d in docs(&g.files[&m.path]) {
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            let key = (
                s(&d["kind"]),
                s(&d["metadata"]["namespace"]),
                s(&d["metadata"]["name"]),
            );
            assert!(out.insert(key.clone(), d).is_none(), "{key:?} twice");
        }
    }
    out
}

// ---------------------------------------------------------------------
// Tools

/// Whether a missing tool fails the tests instead of skipping them
/// (`MESHGEN_REQUIRE_TOOLS=1`, as `.ci/run` sets).
pub fn tools_required() -> bool {
    std::env::var_os("MESHGEN_REQUIRE_TOOLS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// `strace` (for fault injection: `-e inject=`), or `None` after saying
/// why the caller skips; a failure when tools are required.
pub fn strace() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("strace"))
            .find(|p| p.is_file())
    });
    // strace traces nothing where ptrace is not allowed (some containers).
    let works = found.as_ref().is_some_and(|s| {
        Command::new(s)
            .args(["-qq", "-o", "/dev/null", "true"])
            .status()
            .is_ok_and(|st| st.success())
    });
    match (found, works) {
        (Some(s), true) => Some(s),
        (found, _) => {
            let why = match found {
                None => "no strace on PATH (apt-get install strace)",
                Some(_) => "strace cannot trace here (ptrace not permitted)",
            };
            assert!(
                !tools_required(),
                "{why}; MESHGEN_REQUIRE_TOOLS is set, so this is a failure"
            );
            eprintln!("skipped: {why}");
            None
        }
    }
}

// ---------------------------------------------------------------------
// Output trees

/// The values digest in the marker of the tree at `out`, if that tree is
/// whole: its files are exactly those its marker lists.
pub fn whole_tree_digest(out: &Path) -> Option<String> {
    let text = std::fs::read_to_string(out.join(".meshgen-output")).ok()?;
    let marker = &docs(&text)[0];
    let mut listed: Vec<String> = marker["files"]
        .as_array()?
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut present: Vec<String> = walk(out)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| p != ".meshgen-output")
        .collect();
    present.sort();
    (listed == present).then(|| marker["valuesDigest"].as_str().unwrap().to_string())
}

/// The names in `dir`, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A seeded generator (splitmix64): the same seed, the same cases
/// (`tests/fuzz.rs`, the fast reader's mutants in `tests/access_parse.rs`).
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next() % den < num
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub fn pick_ref<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

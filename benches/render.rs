//! `cargo bench --bench render`: wall time and peak memory of rendering
//! the embedded defaults, deployKF's sample values and synthetic
//! organisations of 1,000 and 10,000 profiles through every stage before
//! the disk write, then of the write on its own; then the whole process,
//! `meshgen generate -f <org>.yaml -o DIR` (the binary this bench was
//! built with), into a new directory, into its own earlier tree unchanged
//! and with one profile changed, each with its peak RSS as `/usr/bin/time`
//! reports it (the child's `ru_maxrss`); and `helm template` of the chart
//! in `benches/helm-profiles/` rendering the same objects, side by side.
//! Helm is `$MESHGEN_BENCH_HELM`, else `target/tools/bin/helm` (fetch it
//! with `/work/shared/tools/get-helm target/tools/bin` or install Helm),
//! else `helm` on PATH; without one, that comparison is skipped and says
//! so. `cargo bench --bench render` measures the `bench` profile (Cargo's
//! default release settings, what the README's first command builds);
//! `cargo bench --profile dist --bench render` the fat-LTO build of
//! published binaries (README: "Build profiles"). Prints figures; asserts
//! nothing.

use meshgen::values::ValueInputs;
use meshgen::Session;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The allocator of the `meshgen` binary, so the figures are the binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn measure(name: &str, inputs: &ValueInputs) {
    // Warm up (page in the binary, compile nothing lazily).
    for _ in 0..3 {
        meshgen::generate(inputs, &mut Session::default()).expect("render");
    }
    let mut samples: Vec<Duration> = (0..50)
        .map(|_| {
            let start = Instant::now();
            let g = meshgen::generate(inputs, &mut Session::default()).expect("render");
            let elapsed = start.elapsed();
            std::hint::black_box(g);
            elapsed
        })
        .collect();
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<16} median {:>7.2} ms   p90 {:>7.2} ms   min {:>7.2} ms   (50 runs)",
        ms(samples[25]),
        ms(samples[45]),
        ms(samples[0])
    );
}

/// Synthetic organisation: `profiles` profiles, each with 3 user members
/// and 2 group members; 2,000 users; 200 groups of 10.
fn synthetic_values(profiles: usize) -> String {
    use std::fmt::Write;
    let mut s = String::from("deploykf_core:\n  deploykf_profiles_generator:\n    users:\n");
    for u in 0..2000 {
        writeln!(s, "      - {{id: u{u}, email: user{u}@example.com}}").unwrap();
    }
    s.push_str("    groups:\n");
    for g in 0..200 {
        let users: Vec<String> = (0..10)
            .map(|k| format!("u{}", (g * 10 + k) % 2000))
            .collect();
        writeln!(s, "      - {{id: g{g}, users: [{}]}}", users.join(", ")).unwrap();
    }
    s.push_str("    profiles:\n");
    for p in 0..profiles {
        writeln!(
            s,
            "      - name: team-{p}\n        members:\n          - {{user: u{}, access: {{role: edit, notebooksAccess: true}}}}\n          - {{user: u{}}}\n          - {{user: u{}}}\n          - {{group: g{}}}\n          - {{group: g{}, access: {{role: edit}}}}",
            p % 2000,
            (p + 7) % 2000,
            (p + 13) % 2000,
            p % 200,
            (p + 1) % 200
        )
        .unwrap();
    }
    s
}

/// At scale: the pipeline in memory (best of 5), then meshgen's write and,
/// for comparison, a bare `fs::write` loop over the same bytes, each into
/// a fresh directory. The bare loop is what the filesystem alone costs:
/// on a busy or recently emptied ext4 both swing together, by seconds.
fn measure_profiles(n: usize) {
    let dir = std::env::temp_dir().join(format!("meshgen-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("values.yaml");
    std::fs::write(&file, synthetic_values(n)).unwrap();
    let inputs = ValueInputs {
        preset: None,
        files: vec![file],
        sets: Vec::new(),
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut generate = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        drop(last.take());
        let start = Instant::now();
        let g = meshgen::generate(&inputs, &mut Session::default()).expect("render");
        generate.push(start.elapsed());
        last = Some(g);
    }
    let g = last.expect("five runs");
    generate.sort();
    let (mut write, mut bare) = (Duration::MAX, Duration::MAX);
    for run in 0..3 {
        let start = Instant::now();
        meshgen::write::write(&dir.join(format!("out{run}")), &g.files).expect("write");
        write = write.min(start.elapsed());
        let root = dir.join(format!("bare{run}"));
        let start = Instant::now();
        for (rel, text) in &g.files {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        bare = bare.min(start.elapsed());
    }
    println!(
        "profiles {n:>6}: generate in memory best {:>7.1} ms, median {:>7.1} ms; \
         write best {:>7.1} ms (bare fs::write loop {:>7.1} ms); {} files, peak RSS {:.1} MiB",
        ms(generate[0]),
        ms(generate[2]),
        ms(write),
        ms(bare),
        g.files.len(),
        meshgen::timing::peak_rss_kib().unwrap_or(0) as f64 / 1024.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// What one child process took.
#[derive(Debug, Clone, Copy)]
struct Run {
    wall: Duration,
    /// User plus system CPU time: on a machine shared with other work,
    /// steadier than the wall time.
    cpu: Duration,
    /// Peak RSS in KiB (`ru_maxrss`, what `/usr/bin/time` reports).
    rss_kib: u64,
}

/// Wall time, CPU time and peak RSS of one child process, its output
/// discarded; panics when it fails. Run by the launcher (below), never
/// by the bench process itself once it has grown.
// The child is reaped by `wait4` (for its rusage), not `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_child(cmd: &mut Command) -> Result<Run, String> {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is valid; wait4 fills it for `pid`,
    // our own child, which nothing else waits for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    if !(waited == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(stderr);
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Run {
        wall: elapsed,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        rss_kib: usage.ru_maxrss as u64,
    })
}

/// Starts every measured child, from a copy of this bench binary started
/// first thing in `main`, while it is a few MiB. Measured from the bench
/// itself, a child would report the bench's peak RSS as its own once the
/// bench has grown (the in-memory runs reach ~390 MiB): `Command` starts
/// a child with `posix_spawn`, which glibc does with `CLONE_VM|CLONE_VFORK`,
/// so the child runs in the parent's memory until its `exec`; Linux then
/// keeps the old memory's high-water mark as the process's `maxrss`
/// (fs/exec.c `exec_mmap`, `setmax_mm_hiwater_rss`), and `wait4` reports
/// it (kernel/sys.c `getrusage`). `/usr/bin/time` reports the child's own
/// peak because it is itself small when it starts the child; so is the
/// launcher. One request per line on the launcher's stdin (program, args,
/// environment as JSON), one answer per line on its stdout.
struct Launcher {
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

const LAUNCHER_ENV: &str = "MESHGEN_BENCH_LAUNCHER";

static LAUNCHER: std::sync::OnceLock<std::sync::Mutex<Launcher>> = std::sync::OnceLock::new();

impl Launcher {
    // Never waited for: it exits when its stdin closes, as the bench ends.
    #[allow(clippy::zombie_processes)]
    fn start() {
        let mut child = Command::new(std::env::current_exe().expect("bench binary"))
            .env(LAUNCHER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the launcher");
        let launcher = Launcher {
            stdin: child.stdin.take().expect("piped"),
            stdout: std::io::BufReader::new(child.stdout.take().expect("piped")),
        };
        assert!(LAUNCHER.set(std::sync::Mutex::new(launcher)).is_ok());
    }

    /// The launcher's loop: until its stdin closes.
    fn serve() {
        use std::io::{BufRead, Write};
        let stdin = std::io::stdin();
        let mut out = std::io::stdout().lock();
        for line in stdin.lock().lines() {
            let req: serde_json::Value =
                serde_json::from_str(&line.expect("request")).expect("json");
            let text = |v: &serde_json::Value| v.as_str().expect("string").to_owned();
            let mut cmd = Command::new(text(&req["program"]));
            for a in req["args"].as_array().expect("args") {
                cmd.arg(text(a));
            }
            for kv in req["env"].as_array().expect("env") {
                match &kv[1] {
                    serde_json::Value::Null => cmd.env_remove(text(&kv[0])),
                    v => cmd.env(text(&kv[0]), text(v)),
                };
            }
            let answer = match run_child(&mut cmd) {
                Ok(r) => serde_json::json!({
                    "wall_ns": r.wall.as_nanos() as u64,
                    "cpu_ns": r.cpu.as_nanos() as u64,
                    "rss_kib": r.rss_kib,
                }),
                Err(stderr) => serde_json::json!({ "failed": stderr }),
            };
            writeln!(out, "{answer}").expect("answer");
            out.flush().expect("answer");
        }
    }

    /// `cmd` run by the launcher; panics when it fails.
    fn run(cmd: &Command) -> Run {
        use std::io::{BufRead, Write};
        let s = |o: &std::ffi::OsStr| o.to_str().expect("UTF-8 argument").to_owned();
        let req = serde_json::json!({
            "program": s(cmd.get_program()),
            "args": cmd.get_args().map(s).collect::<Vec<_>>(),
            "env": cmd.get_envs().map(|(k, v)| serde_json::json!([s(k), v.map(s)])).collect::<Vec<_>>(),
        });
        let mut l = LAUNCHER.get().expect("launcher started").lock().unwrap();
        writeln!(l.stdin, "{req}").expect("request");
        l.stdin.flush().expect("request");
        let mut line = String::new();
        l.stdout.read_line(&mut line).expect("answer");
        let a: serde_json::Value = serde_json::from_str(&line).expect("json answer");
        if let Some(stderr) = a["failed"].as_str() {
            panic!("{cmd:?} failed: {stderr}");
        }
        let n = |k: &str| a[k].as_u64().expect("number");
        Run {
            wall: Duration::from_nanos(n("wall_ns")),
            cpu: Duration::from_nanos(n("cpu_ns")),
            rss_kib: n("rss_kib"),
        }
    }
}

/// The run with the best wall time of `runs` runs of `cmd`.
fn best_of(runs: usize, mut cmd: impl FnMut(usize) -> Command) -> Run {
    (0..runs)
        .map(|i| Launcher::run(&cmd(i)))
        .min_by_key(|r| r.wall)
        .expect("at least one run")
}

/// A run for the report: wall time, CPU time, peak RSS.
fn show(r: Run) -> String {
    format!(
        "{:>7.1} ms (cpu {:>7.1} ms), {:>5.1} MiB",
        r.wall.as_secs_f64() * 1000.0,
        r.cpu.as_secs_f64() * 1000.0,
        r.rss_kib as f64 / 1024.0
    )
}

fn helm_binary() -> Option<PathBuf> {
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin/helm");
    let candidates = std::env::var_os("MESHGEN_BENCH_HELM")
        .map(PathBuf::from)
        .into_iter()
        .chain([local, PathBuf::from("helm")]);
    candidates.into_iter().find(|h| {
        Command::new(h)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The values of `benches/helm-profiles` for the same organisation: the
/// profiles as meshgen resolved them (Helm resolves no groups; handing it
/// the resolved lists only favours Helm).
fn helm_values(inputs: &ValueInputs) -> serde_json::Value {
    let valid = meshgen::validate(inputs, &mut Session::default()).expect("valid");
    let model = meshgen::model::derive(&valid.checked);
    let pm = serde_json::to_value(&model.parts["profiles"]).expect("profiles model");
    // One shard: `profiles`; several: each shard's `profiles`.
    let shards = pm["shards"].as_array().expect("shards");
    let profiles: Vec<serde_json::Value> = pm["profiles"]
        .as_array()
        .expect("profiles")
        .iter()
        .chain(
            shards
                .iter()
                .flat_map(|s| s["profiles"].as_array().expect("shard profiles")),
        )
        .map(|p| {
            serde_json::json!({
                "name": p["name"], "owner": p["owner"],
                "editors": p["editors"], "viewers": p["viewers"],
                "allowedUsers": p["allowed_users"], "notebookUsers": p["notebook_users"],
            })
        })
        .collect();
    let expected = valid
        .checked
        .config
        .deploykf_core
        .deploykf_profiles_generator
        .profiles
        .len();
    assert_eq!(profiles.len(), expected, "Helm would render other profiles");
    serde_json::json!({
        "gatewayPrincipal": pm["gateway_principal"],
        "userIdHeader": pm["user_id_header"],
        "profiles": profiles,
    })
}

/// The whole process at `n` profiles, as a user runs it, and Helm
/// rendering the same profile objects. Directories are never reused
/// within a run, and nothing is deleted until every run is done: right
/// after many files were deleted, ext4 makes every create slower, in any
/// program (see the README).
/// The values files of one end-to-end size: the organisation, and the
/// same with one profile changed (team-0 gets another member).
struct Org {
    n: usize,
    dir: PathBuf,
    values: PathBuf,
    changed: PathBuf,
}

impl Org {
    fn new(n: usize, root: &std::path::Path) -> Org {
        let dir = root.join(format!("e2e-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let values = dir.join("org.yaml");
        let text = synthetic_values(n);
        std::fs::write(&values, &text).unwrap();
        let changed = dir.join("org-changed.yaml");
        let one_more = "          - {user: u1999}\n      - name: team-1\n";
        std::fs::write(
            &changed,
            text.replacen("      - name: team-1\n", one_more, 1),
        )
        .unwrap();
        Org {
            n,
            dir,
            values,
            changed,
        }
    }

    fn meshgen(&self, values: &std::path::Path, out: &std::path::Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_meshgen"));
        c.arg("generate").arg("-f").arg(values).arg("-o").arg(out);
        c
    }
}

const RUNS: usize = 5;

/// Into new directories: what CI on a fresh clone runs. Nothing is
/// deleted before these runs (see `main`). Then one more run with
/// `MESHGEN_TIMINGS`, whose stage times are printed.
fn fresh(org: &Org) -> Run {
    let n = org.n;
    let fresh = best_of(RUNS, |i| {
        org.meshgen(&org.values, &org.dir.join(format!("new{i}")))
    });
    println!("end to end {n:>6} profiles, `meshgen generate -f org.yaml -o DIR`, best of {RUNS}:");
    println!("  into a new directory         {}", show(fresh));
    let out = org
        .meshgen(&org.values, &org.dir.join("timed"))
        .env("MESHGEN_TIMINGS", "1")
        .output()
        .expect("spawn");
    let stages: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("timing: "))
        .map(|l| {
            let l = l.split("   peak RSS").next().unwrap_or(l);
            l.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect();
    println!("  stages of one more such run: {}", stages.join(", "));
    fresh
}

/// Into its own earlier tree: unchanged, and with one profile changed
/// (alternating values, so every run changes one profile's file). These
/// delete the trees they replace.
fn rerender(org: &Org) {
    let existing = org.dir.join("new0");
    let same = best_of(RUNS, |_| org.meshgen(&org.values, &existing));
    let one = best_of(RUNS, |i| {
        org.meshgen(
            if i % 2 == 0 {
                &org.changed
            } else {
                &org.values
            },
            &existing,
        )
    });
    println!(
        "end to end {:>6} profiles, re-rendering its own tree, best of {RUNS}:",
        org.n
    );
    println!("  nothing changed              {}", show(same));
    println!("  one profile changed          {}", show(one));
}

/// `meshgen access matrix` (issue 31) of the tree on disk and of the
/// values, and `meshgen diff --access` of the tree against the values
/// with one member more (`org-changed.yaml`; one line of output).
fn access(org: &Org) {
    let tree = org.dir.join("access-tree");
    Launcher::run(&org.meshgen(&org.values, &tree));
    let bin = env!("CARGO_BIN_EXE_meshgen");
    let matrix_tree = best_of(RUNS, |_| {
        let mut c = Command::new(bin);
        c.args(["access", "matrix", "--format", "csv", "--tree"])
            .arg(&tree);
        c
    });
    let matrix_values = best_of(RUNS, |_| {
        let mut c = Command::new(bin);
        c.args(["access", "matrix", "--format", "csv", "-f"])
            .arg(&org.values);
        c
    });
    let delta = best_of(RUNS, |_| {
        let mut c = Command::new(bin);
        c.args(["diff", "--access", "-f"])
            .arg(&org.changed)
            .arg("-o")
            .arg(&tree);
        c
    });
    println!("access {:>6} profiles, best of {RUNS}:", org.n);
    println!("  access matrix --tree DIR     {}", show(matrix_tree));
    println!("  access matrix -f org.yaml    {}", show(matrix_values));
    println!("  diff --access, one member    {}", show(delta));
}

/// `helm template` of the same objects, beside meshgen's run into a new
/// directory.
fn helm_side_by_side(org: &Org, fresh: Run, helm: Option<&std::path::Path>) {
    let n = org.n;
    let Some(helm) = helm else {
        println!(
            "helm template {n:>6} profiles: skipped (no helm; see the top of benches/render.rs)"
        );
        return;
    };
    let helm_values_file = org.dir.join("helm-values.json");
    let inputs = ValueInputs {
        preset: None,
        files: vec![org.values.clone()],
        sets: Vec::new(),
    };
    std::fs::write(&helm_values_file, helm_values(&inputs).to_string()).unwrap();
    let chart = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/helm-profiles");
    let helm_runs = if n > 5_000 { 2 } else { 3 };
    let h = best_of(helm_runs, |i| {
        let mut c = Command::new(helm);
        c.arg("template")
            .arg("profiles")
            .arg(&chart)
            .arg("-f")
            .arg(&helm_values_file)
            .arg("--output-dir")
            .arg(org.dir.join(format!("helm{i}")));
        c
    });
    println!(
        "helm template {n:>6} profiles, same objects (benches/helm-profiles, --output-dir, best of {helm_runs}): {}; \
         meshgen into a new directory is {:.1}x faster (cpu: {:.1}x)",
        show(h),
        h.wall.as_secs_f64() / fresh.wall.as_secs_f64(),
        h.cpu.as_secs_f64() / fresh.cpu.as_secs_f64()
    );
}

fn main() {
    if std::env::var_os(LAUNCHER_ENV).is_some() {
        return Launcher::serve();
    }
    Launcher::start();
    // The whole process first (the in-memory runs below write and delete
    // trees of their own), and every run into a new directory before any
    // run that deletes a tree: ext4 without a journal (this machine's
    // root) does not reuse an inode within 60 s of its deletion (300 s
    // more while its inode table block is unwritten) and looks past every
    // such inode on each create (fs/ext4/ialloc.c, `recently_deleted`,
    // `find_inode_bit`), so creating 10,000 files right after deleting a
    // tree costs seconds in any program.
    let root = std::env::temp_dir().join(format!("meshgen-bench-e2e-{}", std::process::id()));
    let helm = helm_binary();
    let orgs: Vec<Org> = [1_000, 10_000]
        .iter()
        .map(|&n| Org::new(n, &root))
        .collect();
    let fresh_runs: Vec<Run> = orgs.iter().map(fresh).collect();
    for (org, run) in orgs.iter().zip(&fresh_runs) {
        helm_side_by_side(org, *run, helm.as_deref());
    }
    for org in &orgs {
        rerender(org);
    }
    for org in &orgs {
        access(org);
    }
    measure("defaults", &ValueInputs::default());
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/deploykf-0.1.5/sample-values.yaml");
    if sample.exists() {
        let inputs = ValueInputs {
            preset: None,
            files: vec![sample],
            sets: Vec::new(),
        };
        measure("deploykf-sample", &inputs);
    }
    let rss_small = meshgen::timing::peak_rss_kib();
    for n in [1_000, 10_000] {
        measure_profiles(n);
    }
    if let Some(kib) = rss_small {
        println!(
            "(peak RSS before the profile runs: {:.1} MiB)",
            kib as f64 / 1024.0
        );
    }
    match meshgen::timing::peak_rss_kib() {
        Some(kib) => println!(
            "peak RSS of the bench process: {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
    let _ = std::fs::remove_dir_all(&root);
}

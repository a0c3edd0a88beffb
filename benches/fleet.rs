//! `cargo bench --bench fleet` (issue 34): a fleet rendered by one
//! `meshgen generate --fleet` against the same clusters rendered by
//! separate `meshgen generate` processes, one after the other (what a CI
//! loop over the clusters does), side by side in one run: 100 clusters on
//! the defaults (each its own host name), 10 and 20 clusters of 1,000
//! profiles each. Each figure is the best of a few runs into new
//! directories: wall time, and peak RSS as `/usr/bin/time` reports it
//! (for the separate runs, the largest of them), each after `sync` and
//! in turn first; the fleet's output size
//! beside it, as the fleet holds its text until the one atomic write.
//! Uses the `meshgen` binary this bench was built with (`--profile
//! dist` for the published build's figures). Prints figures; asserts
//! nothing.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 3;

/// Wall time and peak RSS (KiB) of one process.
fn timed(args: &[String], dir: &Path) -> (Duration, u64) {
    let start = Instant::now();
    let o = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_meshgen"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("/usr/bin/time");
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "meshgen {args:?} failed: {stderr}");
    let rss = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (elapsed, rss)
}

/// 1,000 profiles, each with two members (users of a 500-user list).
fn org(profiles: usize) -> String {
    let mut s = String::from("deploykf_core:\n  deploykf_profiles_generator:\n    users:\n");
    for u in 0..500 {
        writeln!(s, "      - {{id: u{u}, email: user{u}@example.com}}").unwrap();
    }
    // The defaults' groups name the defaults' users.
    s.push_str("    groups: []\n    profiles:\n");
    for p in 0..profiles {
        writeln!(
            s,
            "      - name: team-{p}\n        members:\n          - {{user: u{}, access: {{role: edit}}}}\n          - {{user: u{}}}",
            p % 500,
            (p + 7) % 500
        )
        .unwrap();
    }
    s
}

/// A fleet of `n` clusters in `dir` (each `-f` of `values`, if any, and
/// its own host name); returns each cluster's single-run arguments.
fn fleet(dir: &Path, n: usize, values: Option<&str>) -> Vec<Vec<String>> {
    let mut fleet = String::from("clusters:\n");
    let mut singles = Vec::new();
    for i in 0..n {
        let host =
            format!("deploykf_core.deploykf_istio_gateway.gateway.hostname=c{i}.example.com");
        writeln!(fleet, "  - name: c{i}\n    set: [\"{host}\"]").unwrap();
        let mut args: Vec<String> = vec!["generate".into()];
        if let Some(v) = values {
            args.extend(["-f".into(), v.into()]);
        }
        args.extend(["--set".into(), host, "-o".into(), format!("single/c{i}")]);
        singles.push(args);
        if let Some(v) = values {
            writeln!(fleet, "    values: [{v}]").unwrap();
        }
    }
    std::fs::write(dir.join("fleet.yaml"), fleet).unwrap();
    singles
}

fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

/// Flush what earlier runs wrote and deleted (ext4 delays the work of a
/// deleted tree: the next writer would pay for it).
fn settle() {
    let _ = Command::new("sync").status();
}

fn compare(name: &str, n: usize, values: Option<&str>) {
    let mut best_fleet = (Duration::MAX, 0u64);
    let mut best_single = (Duration::MAX, 0u64);
    let mut bytes = 0;
    for run in 0..RUNS {
        let tmp = tempfile::tempdir().unwrap();
        if let Some(v) = values {
            std::fs::write(tmp.path().join(v), org(1000)).unwrap();
        }
        let singles = fleet(tmp.path(), n, values);
        std::fs::create_dir(tmp.path().join("single")).unwrap();
        // Either goes first in turn, each after the disk settled.
        for first in [run % 2 == 0, run % 2 == 1] {
            settle();
            if first {
                let (t, rss) = timed(
                    &["generate", "--fleet", "fleet.yaml", "-o", "out"].map(String::from),
                    tmp.path(),
                );
                bytes = size_of(&tmp.path().join("out"));
                if t < best_fleet.0 {
                    best_fleet = (t, rss);
                }
            } else {
                let start = Instant::now();
                let mut peak = 0;
                for args in &singles {
                    peak = peak.max(timed(args, tmp.path()).1);
                }
                let t = start.elapsed();
                if t < best_single.0 {
                    best_single = (t, peak);
                }
            }
        }
        drop(tmp);
        settle();
    }
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "{name:<28} fleet {:>7.2} s {:>7.1} MiB peak   separate {:>7.2} s {:>6.1} MiB peak (largest)   {:.2}x   output {:.1} MiB",
        best_fleet.0.as_secs_f64(),
        mib(best_fleet.1),
        best_single.0.as_secs_f64(),
        mib(best_single.1),
        best_single.0.as_secs_f64() / best_fleet.0.as_secs_f64(),
        bytes as f64 / (1024.0 * 1024.0)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to filter.
    println!(
        "meshgen generate --fleet vs separate `meshgen generate` runs (best of {RUNS}; {} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    compare("100 clusters, defaults", 100, None);
    compare("10 clusters x 1,000 profiles", 10, Some("org.yaml"));
    compare("20 clusters x 1,000 profiles", 20, Some("org.yaml"));
}

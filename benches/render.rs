//! `cargo bench --bench render`: wall time and peak memory of rendering
//! the embedded defaults (and deployKF's sample values) through every
//! stage except the disk write. Prints figures; asserts nothing.

use meshgen::values::ValueInputs;
use meshgen::Session;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The allocator of the `meshgen` binary, so the figures are the binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

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

/// One end-to-end run (parse, validate, render, check, write) at scale.
fn measure_profiles(n: usize) {
    let dir = std::env::temp_dir().join(format!("meshgen-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("values.yaml");
    std::fs::write(&file, synthetic_values(n)).unwrap();
    let inputs = ValueInputs {
        files: vec![file],
        sets: Vec::new(),
    };
    let mut best = Duration::MAX;
    let mut files = 0;
    for run in 0..3 {
        let out = dir.join(format!("out{run}"));
        let start = Instant::now();
        let g = meshgen::generate(&inputs, &mut Session::default()).expect("render");
        let generated = start.elapsed();
        meshgen::write::write(&out, &g.files).expect("write");
        let total = start.elapsed();
        files = g.files.len();
        best = best.min(total);
        if run == 0 {
            println!(
                "profiles {n:>6}: generate {:>7.1} ms, + write {:>7.1} ms",
                generated.as_secs_f64() * 1000.0,
                (total - generated).as_secs_f64() * 1000.0
            );
        }
    }
    println!(
        "profiles {n:>6}: best of 3 end to end {:>7.1} ms ({files} files), peak RSS so far {:.1} MiB",
        best.as_secs_f64() * 1000.0,
        peak_rss_kib().unwrap_or(0) as f64 / 1024.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    measure("defaults", &ValueInputs::default());
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/deploykf-0.1.5/sample-values.yaml");
    if sample.exists() {
        let inputs = ValueInputs {
            files: vec![sample],
            sets: Vec::new(),
        };
        measure("deploykf-sample", &inputs);
    }
    let rss_small = peak_rss_kib();
    for n in [1_000, 10_000] {
        measure_profiles(n);
    }
    if let Some(kib) = rss_small {
        println!(
            "(peak RSS before the profile runs: {:.1} MiB)",
            kib as f64 / 1024.0
        );
    }
    match peak_rss_kib() {
        Some(kib) => println!(
            "peak RSS of the bench process: {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
}

//! `cargo bench --bench render`: wall time and peak memory of rendering
//! the embedded defaults, deployKF's sample values and synthetic
//! organisations of 1,000 and 10,000 profiles through every stage before
//! the disk write, then of the write on its own. Prints figures; asserts
//! nothing.

use meshgen::values::ValueInputs;
use meshgen::Session;
use std::path::PathBuf;
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
}

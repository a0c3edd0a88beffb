//! `cargo bench --bench render`: wall time and peak memory of rendering
//! the embedded defaults (and deployKF's sample values) through every
//! stage except the disk write. Prints figures; asserts nothing.

use meshgen::values::ValueInputs;
use meshgen::Session;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
    match peak_rss_kib() {
        Some(kib) => println!(
            "peak RSS of the bench process: {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
}

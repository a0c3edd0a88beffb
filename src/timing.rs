//! Stage timings for profiling: with `MESHGEN_TIMINGS` set, each stage's
//! wall time and the process's peak RSS (Linux `/proc/self/status`) go to
//! stderr. This module only measures and prints; it never changes what a
//! run produces, and without the variable it prints nothing.

use std::time::Instant;

/// Peak resident set size of this process in KiB (`VmHWM`), where the
/// platform reports it.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Lap times of the stages of one run, printed as they are taken.
pub struct StageClock {
    on: bool,
    last: Instant,
}

impl Default for StageClock {
    fn default() -> Self {
        Self::new()
    }
}

impl StageClock {
    pub fn new() -> Self {
        StageClock {
            on: std::env::var_os("MESHGEN_TIMINGS").is_some(),
            last: Instant::now(),
        }
    }

    /// Print the time since the previous lap (or since `new`).
    pub fn lap(&mut self, stage: &str) {
        if self.on {
            let peak = peak_rss_kib()
                .map(|kib| format!("{kib} kB"))
                .unwrap_or_default();
            eprintln!(
                "timing: {stage:<22} {:>8.1} ms   peak RSS {peak}",
                self.last.elapsed().as_secs_f64() * 1000.0
            );
        }
        self.last = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_peak_rss_line() {
        let status = "Name:\tmeshgen\nVmPeak:\t  300 kB\nVmHWM:\t  182044 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(super::parse_vm_hwm(status), Some(182_044));
        assert_eq!(super::parse_vm_hwm("Name:\tx\n"), None);
    }
}

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

/// The CPU time this process has used so far, user and system, in
/// milliseconds, where the platform reports it (`/proc/self/stat`, in
/// clock ticks of 10 ms).
pub fn cpu_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat).map(|t| t * 10)
}

/// utime + stime of a `/proc/PID/stat` line: fields 14 and 15, counted
/// after the command name's closing parenthesis (the name may hold spaces).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (the state).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Lap times of the stages of one run, printed as they are taken.
pub struct StageClock {
    on: bool,
    last: Instant,
    last_cpu: u64,
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
            last_cpu: cpu_ms().unwrap_or(0),
        }
    }

    /// Print the time since the previous lap (or since `new`).
    pub fn lap(&mut self, stage: &str) {
        if self.on {
            let peak = peak_rss_kib()
                .map(|kib| format!("{kib} kB"))
                .unwrap_or_default();
            let cpu = cpu_ms().unwrap_or(0);
            eprintln!(
                "timing: {stage:<22} {:>8.1} ms   CPU {:>6} ms   peak RSS {peak}",
                self.last.elapsed().as_secs_f64() * 1000.0,
                cpu.saturating_sub(self.last_cpu),
            );
            self.last_cpu = cpu;
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

    #[test]
    fn reads_the_cpu_ticks_after_the_name() {
        let stat = "42 (mesh gen) R 1 42 42 0 -1 4194304 100 0 0 0 250 31 0 0 20 0 3 0";
        assert_eq!(super::parse_cpu_ticks(stat), Some(281));
        assert_eq!(super::parse_cpu_ticks("42 (x) R 1"), None);
    }
}

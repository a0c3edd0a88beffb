//! `meshgen generate --fleet` and `meshgen diff --fleet`: the fleet file
//! loaded, every cluster rendered (`meshgen::fleet`), the fleet written as
//! one tree or compared per cluster. A cluster's diagnostics are printed
//! with its own sources and say which clusters they concern.

use super::{timed_write, NOTHING_COMPARED, NOTHING_WRITTEN};
use meshgen::code::Code;
use meshgen::diagnostic::{escape_controls, Diagnostic, Diagnostics, Severity};
use meshgen::fleet::{self, ClusterRun, Fleet};
use meshgen::source::SourceMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// `--deny-warnings` and `--allow-warning CODE`, for a fleet's clusters
/// and its fleet-wide checks alike.
pub(super) struct Warnings {
    pub deny: bool,
    pub allowed: Vec<Code>,
}

/// Each cluster's diagnostics (its errors, or its warnings), then the
/// fleet's; one cluster's diagnostic that every cluster shares is printed
/// once, naming them all.
fn print(runs: &[ClusterRun], fleet_sources: &SourceMap, fleet_findings: &Diagnostics) {
    print_allowing(runs, fleet_sources, fleet_findings, &[]);
}

/// The warnings `--allow-warning` leaves to show: a cluster's or the
/// fleet's, counted once per line printed.
fn shown_warnings(runs: &[ClusterRun], fleet_findings: &Diagnostics, allowed: &[Code]) -> usize {
    let mut lines: Vec<String> = Vec::new();
    for run in runs {
        for d in run.session.warnings.0.iter().filter(|d| shown(d, allowed)) {
            let line = d.display(&run.session.sources).to_string();
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    lines.len()
        + fleet_findings
            .0
            .iter()
            .filter(|d| shown(d, allowed))
            .count()
}

/// A warning (not a notice) whose code is not allowed.
fn shown(d: &Diagnostic, allowed: &[Code]) -> bool {
    d.severity == Severity::Warning && !allowed.contains(&d.code)
}

fn print_allowing(
    runs: &[ClusterRun],
    fleet_sources: &SourceMap,
    fleet_findings: &Diagnostics,
    allowed: &[Code],
) {
    let mut lines: Vec<(String, Vec<&str>, &Diagnostic, &SourceMap)> = Vec::new();
    for run in runs {
        let diags = run
            .session
            .warnings
            .0
            .iter()
            .filter(|d| !allowed.contains(&d.code))
            .chain(run.errors.iter().flat_map(|e| e.0.iter()));
        for d in diags {
            let shown = d.display(&run.session.sources).to_string();
            match lines.iter_mut().find(|l| l.0 == shown) {
                Some(l) => l.1.push(&run.name),
                None => lines.push((shown, vec![&run.name], d, &run.session.sources)),
            }
        }
    }
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for (_, names, d, sources) in lines {
        let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        let mut d = d.clone();
        d.message = format!(
            "in cluster{} {}: {}",
            if names.len() == 1 { "" } else { "s" },
            quoted.join(", "),
            d.message
        );
        let _ = writeln!(err, "{}", d.display(sources));
    }
    for d in fleet_findings
        .0
        .iter()
        .filter(|d| d.severity == Severity::Error || !allowed.contains(&d.code))
    {
        let _ = writeln!(err, "{}", d.display(fleet_sources));
    }
}

/// The last line of a failed fleet run.
fn failed(runs: &[ClusterRun], sources: &SourceMap, fleet_errors: &Diagnostics, outcome: &str) {
    print(runs, sources, fleet_errors);
    let n = runs
        .iter()
        .filter_map(|r| r.errors.as_ref())
        .map(|e| e.0.len())
        .sum::<usize>()
        + fleet_errors
            .0
            .iter()
            .filter(|d| d.severity == meshgen::diagnostic::Severity::Error)
            .count();
    eprintln!(
        "meshgen: {n} error{}; {}",
        if n == 1 { "" } else { "s" },
        escape_controls(outcome)
    );
}

/// Load and render the fleet; `None` when it failed (already reported).
fn render(path: &Path, outcome: &str) -> (SourceMap, Option<(Fleet, fleet::Rendered)>) {
    let mut sources = SourceMap::default();
    let loaded = match fleet::load(path, &mut sources) {
        Ok(f) => f,
        Err(errors) => {
            failed(&[], &sources, &errors, outcome);
            return (sources, None);
        }
    };
    match fleet::render(&loaded) {
        Ok(r) => (sources, Some((loaded, r))),
        Err((runs, errors)) => {
            failed(&runs, &sources, &errors, outcome);
            (sources, None)
        }
    }
}

/// `meshgen generate --fleet FILE -o DIR`.
pub(super) fn generate(path: &Path, dir: &Path, warnings: &Warnings) -> anyhow::Result<ExitCode> {
    if dir.as_os_str() == "-" {
        let e = Diagnostic::error(
            meshgen::code::Code::Fleet,
            "a fleet is written to a directory (`-o DIR`: one tree per cluster under DIR/clusters/), not to standard output",
        );
        failed(&[], &SourceMap::default(), &e.into(), NOTHING_WRITTEN);
        return Ok(ExitCode::from(1));
    }
    let (sources, rendered) = render(path, NOTHING_WRITTEN);
    let Some((fleet, rendered)) = rendered else {
        return Ok(ExitCode::from(1));
    };
    // --deny-warnings: nothing is written when a cluster's or the fleet's
    // warning is shown, as for one tree.
    let denied = shown_warnings(&rendered.clusters, &rendered.findings, &warnings.allowed);
    if warnings.deny && denied > 0 {
        print_allowing(
            &rendered.clusters,
            &sources,
            &rendered.findings,
            &warnings.allowed,
        );
        eprintln!("{}", super::denied_line(denied, NOTHING_WRITTEN));
        return Ok(ExitCode::from(1));
    }
    let generated = meshgen::Generated {
        files: rendered.files,
        manifests: Vec::new(),
        templates: Default::default(),
    };
    let report = match timed_write(dir, &generated) {
        Ok(r) => r,
        Err(e) => {
            let outcome = e.outcome(dir);
            failed(
                &rendered.clusters,
                &sources,
                &e.diagnostic().clone().into(),
                &outcome,
            );
            return Ok(ExitCode::from(1));
        }
    };
    let mut findings = rendered.findings;
    findings.0.extend(report.warnings);
    print_allowing(&rendered.clusters, &sources, &findings, &warnings.allowed);
    let shown = escape_controls(&report.dir.display().to_string()).into_owned();
    let n = fleet.clusters.len();
    if report.written == 0 {
        eprintln!(
            "{shown} is up to date: its {} files are what this fleet of {n} clusters renders; nothing written",
            report.files
        );
    } else {
        eprintln!(
            "wrote {} files of {n} cluster{} to {shown}{}",
            report.files,
            if n == 1 { "" } else { "s" },
            match (report.replaced, report.files - report.written) {
                (false, _) => String::new(),
                (true, 0) => " (replacing the previous output)".into(),
                (true, k) =>
                    format!(" (replacing the previous output; {k} unchanged, kept as they were)"),
            }
        );
    }
    std::mem::forget(generated);
    Ok(ExitCode::SUCCESS)
}

/// The paths of `only` (relative to the fleet output) that concern
/// `prefix` (a cluster's directory, or an entry file): all of it when
/// `only` is empty or names a folder above it.
fn within(only: &[String], prefix: &str) -> Vec<String> {
    if only.is_empty() {
        return vec![prefix.to_string()];
    }
    let mut out = Vec::new();
    for p in only {
        let p = p.trim_start_matches("./").trim_end_matches('/');
        if p.is_empty() || prefix.starts_with(&format!("{p}/")) || p == prefix {
            out.push(prefix.to_string());
        } else if p.starts_with(&format!("{prefix}/")) {
            out.push(p.to_string());
        }
    }
    out
}

/// `meshgen diff --fleet FILE -o DIR [--stat] [--exit-code] [-- PATH...]`:
/// each cluster's changes, then the entry points'; a summary line per
/// cluster on stderr.
pub(super) fn diff(
    path: &Path,
    dir: &Path,
    stat: bool,
    exit_code: bool,
    only: &[String],
    warnings: &Warnings,
    stdout: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let (sources, rendered) = render(path, NOTHING_COMPARED);
    let Some((fleet, rendered)) = rendered else {
        return Ok(ExitCode::from(2));
    };
    let escape = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        meshgen::write::Escape::Terminal
    } else {
        meshgen::write::Escape::Patch
    };
    // The groups: each cluster's directory, then the entry points.
    let mut groups: Vec<(String, Vec<String>)> = fleet
        .clusters
        .iter()
        .map(|c| {
            let d = fleet::cluster_dir(&c.name);
            (format!("cluster `{}`", c.name), within(only, &d))
        })
        .collect();
    let entry: Vec<String> = ["argocd", "flux"]
        .iter()
        .flat_map(|p| within(only, p))
        .collect();
    groups.push(("the entry points".into(), entry));
    let mut summary = Vec::new();
    let mut any = false;
    let mut out = std::io::BufWriter::new(stdout);
    for (name, paths) in &groups {
        if paths.is_empty() {
            continue;
        }
        let mut text = Vec::new();
        let changed =
            match meshgen::write::diff_to(dir, &rendered.files, paths, stat, escape, &mut text) {
                Ok(c) => c,
                Err(e) => {
                    drop(out);
                    failed(&rendered.clusters, &sources, &e.into(), NOTHING_COMPARED);
                    return Ok(ExitCode::from(2));
                }
            };
        if changed {
            any = true;
            if stat {
                writeln!(out, "{name}:")?;
            }
            out.write_all(&text)?;
        }
        summary.push(format!(
            "{name}: {}",
            if changed { "changed" } else { "unchanged" }
        ));
    }
    out.flush()?;
    drop(out);
    print_allowing(
        &rendered.clusters,
        &sources,
        &rendered.findings,
        &warnings.allowed,
    );
    for line in summary {
        eprintln!("{}", escape_controls(&line));
    }
    let denied = shown_warnings(&rendered.clusters, &rendered.findings, &warnings.allowed);
    if warnings.deny && denied > 0 {
        eprintln!("{}", super::denied_line(denied, "the diff is printed"));
        return Ok(ExitCode::from(1));
    }
    Ok(if exit_code && any {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::within;

    #[test]
    fn paths_are_split_by_cluster() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(within(&[], "clusters/dev"), s(&["clusters/dev"]));
        assert_eq!(
            within(&s(&["clusters"]), "clusters/dev"),
            s(&["clusters/dev"])
        );
        assert_eq!(
            within(
                &s(&["clusters/dev/manifests", "clusters/prod"]),
                "clusters/dev"
            ),
            s(&["clusters/dev/manifests"])
        );
        assert!(within(&s(&["clusters/prod"]), "clusters/dev").is_empty());
        assert!(within(&s(&["clusters/dev-2"]), "clusters/dev").is_empty());
    }
}

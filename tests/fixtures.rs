//! The upstream files copied into `tests/fixtures/upstream/` (issue 29: the
//! tests pass on a bare clone) are upstream's bytes: each matches the size
//! and sha256 its `SOURCES.md` row gives, every file there has a row, and
//! where `../shared/reference` sits beside the repository its copy is the
//! same.

mod common;

use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::Path;

/// `(file, bytes, sha256)` of every row of `SOURCES.md`'s table.
fn rows(sources: &str) -> Vec<(String, usize, String)> {
    sources
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let tick = |s: &str| s.trim_matches('`').to_string();
            (tick(cells[1]), cells[3].parse().unwrap(), tick(cells[4]))
        })
        .collect()
}

#[test]
fn fixtures_are_upstream_bytes() {
    let dir = common::upstream("");
    let sources = std::fs::read_to_string(dir.join("SOURCES.md")).unwrap();
    let rows = rows(&sources);
    assert_eq!(rows.len(), 4, "{rows:?}");
    for (file, bytes, sha) in &rows {
        let data = std::fs::read(dir.join(file)).unwrap();
        assert_eq!(data.len(), *bytes, "{file}");
        assert_eq!(format!("{:x}", Sha256::digest(&data)), *sha, "{file}");
    }
    let listed: BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let present: BTreeSet<String> = common::walk(&dir)
        .into_iter()
        .map(|p| p.display().to_string())
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    assert_eq!(
        present.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        listed,
        "every copied file has its row in SOURCES.md"
    );
}

#[test]
fn fixtures_match_the_shared_reference() {
    let Some(reference) = common::shared("reference", "fixtures_match_the_shared_reference") else {
        return;
    };
    for (copy, original) in [
        (
            "deploykf-0.1.5/sample-values.yaml",
            "deploykf-0.1.5/sample-values.yaml",
        ),
        (
            "deploykf-0.1.5/sample-values-overrides.yaml",
            "deploykf-0.1.5/sample-values-overrides.yaml",
        ),
        ("istio-1.30.3/gateway.yaml", "istio-1.30.3/gateway.yaml"),
        (
            "istio-1.30.3/waypoint.yaml",
            "istio-1.30.3/charts/istio-control/istio-discovery/files/waypoint.yaml",
        ),
    ] {
        let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            read(&common::upstream(copy)) == read(&reference.join(original)),
            "{copy} differs from ../shared/reference/{original}"
        );
    }
}

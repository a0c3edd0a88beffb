//! Golden output: every case under `tests/cases/<case>/` is rendered and
//! compared with what was accepted for it (the marker file excluded, so a
//! version bump does not churn every fixture).
//!
//! A few reference cases ([`REFERENCES`]) keep their whole tree under
//! `tests/golden/<case>/`, compared byte for byte; every other case is an
//! insta snapshot `tests/snapshots/golden__delta@<case>.snap` of what it
//! renders differently from its reference (the `reference` file of the
//! case, or `defaults`): a patch, in `meshgen diff`'s format, that
//! `git apply` turns the reference's tree into the case's. The cases are
//! found by `insta::glob!`, so adding a case is adding a directory under
//! `tests/cases/` (and accepting its snapshot).
//!
//! To accept a change, run `MESHGEN_UPDATE_GOLDEN=1 cargo test --test
//! golden` (it rewrites the reference trees and the delta snapshots) and
//! review `git diff tests/golden tests/snapshots` before committing it
//! (CI refuses the variable); `INSTA_UPDATE=always` or `cargo insta
//! review` accept the deltas alone. With `MESHGEN_CASES_OUT=DIR` every
//! case's whole tree is also written to `DIR/<case>/`, for `.ci/run` to
//! validate and build.
//!
//! What is wrong with the layout fails, saying what to do: a golden tree
//! of no reference, a delta snapshot of no case, a `reference` naming no
//! reference, a file of a reference tree that its case does not render.
//! Every template under `templates/` (partials aside) must be rendered by
//! at least one case.

mod common;

use common::{case_inputs, root};
use meshgen::values::ValueInputs;
use meshgen::write::{diff, Files, MARKER};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The cases whose whole tree is kept: `defaults` (the default install:
/// most cases are a few keys on top of it), `kubeflow` (`--preset
/// kubeflow`, the other starting point: the Kubeflow layout in
/// `istio-system`, `Profile` objects) and `gateway-api-ambient` (the
/// Gateway API routing and the ambient data plane at once: the one tree
/// holding the vendored Gateway API CRDs, the waypoints and the L4/L7
/// split, which the other Gateway API and ambient cases differ from by
/// one key each). Everything else is small against one of them.
const REFERENCES: [&str; 3] = ["defaults", "kubeflow", "gateway-api-ambient"];

fn render(inputs: ValueInputs) -> Files {
    let mut files = common::generate(&inputs).files;
    files.remove(MARKER);
    files
}

fn write_plain(dir: &Path, files: &Files) {
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    for (rel, text) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn updating() -> bool {
    let update = std::env::var_os("MESHGEN_UPDATE_GOLDEN").is_some();
    assert!(
        !update || std::env::var_os("CI").is_none(),
        "MESHGEN_UPDATE_GOLDEN is for accepting a change on a developer machine, not in CI"
    );
    update
}

/// Files of a golden tree that the case does not render (the marker
/// included: golden trees never hold it), with what to do about them.
fn stray_files(case: &str, golden: &Path, files: &Files) -> Vec<String> {
    common::walk(golden)
        .into_iter()
        .map(|rel| rel.to_string_lossy().replace('\\', "/"))
        .filter(|rel| !files.contains_key(rel))
        .map(|rel| {
            format!(
                "tests/golden/{case}/{rel} is not rendered by tests/cases/{case}: delete it, or rewrite the whole tree with MESHGEN_UPDATE_GOLDEN=1 cargo test --test golden, and review git diff"
            )
        })
        .collect()
}

/// A reference case: its render against its whole tree.
fn check_reference(case: &str, files: &Files) {
    let golden = root().join("tests/golden").join(case);
    if updating() {
        write_plain(&golden, files);
        return;
    }
    assert!(
        golden.is_dir(),
        "reference case {case} has no golden tree tests/golden/{case}: write it with MESHGEN_UPDATE_GOLDEN=1 cargo test --test golden, review it, and commit it"
    );
    let stray = stray_files(case, &golden, files);
    assert!(stray.is_empty(), "{}", stray.join("\n"));
    let d = diff(&golden, files, &[]).unwrap();
    assert!(
        d.is_empty(),
        "rendered tree differs from tests/golden/{case} (set MESHGEN_UPDATE_GOLDEN=1 to accept, then review git diff):\n{d}"
    );
}

/// The reference `case` is compared with: its `reference` file, or
/// `defaults`.
fn reference_of(case: &str) -> String {
    let file = root().join("tests/cases").join(case).join("reference");
    match std::fs::read_to_string(&file) {
        Ok(text) => text.trim().to_string(),
        Err(_) => REFERENCES[0].to_string(),
    }
}

/// The path of the delta snapshot of `case`.
fn delta_snapshot(case: &str) -> std::path::PathBuf {
    root()
        .join("tests/snapshots")
        .join(format!("golden__delta@{case}.snap"))
}

/// Accept `delta` as the snapshot of `case`, in the file insta writes
/// (so that `INSTA_UPDATE=always` and this agree byte for byte: insta
/// trims the contents' end).
fn write_delta_snapshot(case: &str, description: &str, delta: &str) {
    let text = format!(
        "---\nsource: tests/golden.rs\ndescription: \"{description}\"\ninput_file: tests/cases/{case}\n---\n{}\n",
        delta.trim_end()
    );
    std::fs::write(delta_snapshot(case), text).unwrap();
}

/// Every case: a reference against its whole tree, any other as its
/// difference from its reference's render.
#[test]
fn every_case_against_its_golden_tree_or_its_reference() {
    let scratch = tempfile::tempdir().unwrap();
    let out = std::env::var_os("MESHGEN_CASES_OUT").map(std::path::PathBuf::from);
    // Each reference rendered once, into the scratch directory (compared
    // with the render, not with tests/golden, which may be being updated).
    let mut rendered: BTreeSet<String> = BTreeSet::new();
    insta::glob!("cases/*", |dir| {
        let case = dir.file_name().unwrap().to_string_lossy().into_owned();
        let files = render(case_inputs(&case));
        if let Some(out) = &out {
            write_plain(&out.join(&case), &files);
        }
        if REFERENCES.contains(&case.as_str()) {
            check_reference(&case, &files);
            return;
        }
        let reference = reference_of(&case);
        assert!(
            REFERENCES.contains(&reference.as_str()),
            "tests/cases/{case}/reference names `{reference}`, which is none of the reference cases {REFERENCES:?}"
        );
        let base = scratch.path().join(&reference);
        if rendered.insert(reference.clone()) {
            write_plain(&base, &render(case_inputs(&reference)));
        }
        let delta = diff(&base, &files, &[]).unwrap();
        let description = format!(
            "what tests/cases/{case} renders differently from the reference case {reference} (tests/golden/{reference}): a patch git apply reads"
        );
        if updating() {
            write_delta_snapshot(&case, &description, &delta);
            return;
        }
        insta::with_settings!({
            description => description,
            omit_expression => true,
        }, {
            insta::assert_snapshot!("delta", delta);
        });
    });
}

/// What is wrong with the layout under `tests`: golden trees, delta
/// snapshots and `reference` files against the cases, with what to do.
fn orphans(tests: &Path) -> Vec<String> {
    let names = |dir: &str| -> BTreeSet<String> {
        std::fs::read_dir(tests.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let (cases, goldens) = (names("cases"), names("golden"));
    let mut out = Vec::new();
    for reference in REFERENCES {
        if !cases.contains(reference) {
            out.push(format!("reference case {reference} has no tests/cases/{reference}: restore it, or take it out of REFERENCES in tests/golden.rs"));
        }
    }
    for golden in &goldens {
        if !REFERENCES.contains(&golden.as_str()) {
            out.push(format!("tests/golden/{golden} is the tree of no reference case: delete it (git rm -r tests/golden/{golden}); only {REFERENCES:?} keep whole trees"));
        }
    }
    for snap in names("snapshots") {
        let Some(case) = snap
            .strip_prefix("golden__delta@")
            .and_then(|s| s.strip_suffix(".snap"))
        else {
            continue;
        };
        if !cases.contains(case) || REFERENCES.contains(&case) {
            out.push(format!("tests/snapshots/{snap} is the delta of no case: delete it (a reference case has its whole tree instead)"));
        }
    }
    for case in &cases {
        if let Ok(text) = std::fs::read_to_string(tests.join("cases").join(case).join("reference"))
        {
            if !REFERENCES.contains(&text.trim()) {
                out.push(format!("tests/cases/{case}/reference names `{}`, which is none of the reference cases {REFERENCES:?}", text.trim()));
            }
        }
    }
    out
}

#[test]
fn every_golden_tree_and_delta_snapshot_belongs_to_a_case() {
    let problems = orphans(&root().join("tests"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The layout checks fire: on a made-up layout with one of each defect.
#[test]
fn orphans_and_stray_files_are_reported_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in [
        "cases/defaults",
        "cases/kubeflow",
        "cases/gateway-api-ambient",
        "cases/small",
        "cases/wrong-reference",
        "golden/defaults",
        "golden/small",
        "snapshots",
    ] {
        std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
    }
    for (file, text) in [
        ("cases/wrong-reference/reference", "small\n"),
        ("snapshots/golden__delta@small.snap", ""),
        ("snapshots/golden__delta@gone.snap", ""),
        ("snapshots/golden__delta@defaults.snap", ""),
        ("snapshots/cli__other.snap", ""),
    ] {
        std::fs::write(tmp.path().join(file), text).unwrap();
    }
    std::fs::remove_dir(tmp.path().join("cases/kubeflow")).unwrap();
    assert_eq!(
        orphans(tmp.path()),
        [
            "reference case kubeflow has no tests/cases/kubeflow: restore it, or take it out of REFERENCES in tests/golden.rs",
            "tests/golden/small is the tree of no reference case: delete it (git rm -r tests/golden/small); only [\"defaults\", \"kubeflow\", \"gateway-api-ambient\"] keep whole trees",
            "tests/snapshots/golden__delta@defaults.snap is the delta of no case: delete it (a reference case has its whole tree instead)",
            "tests/snapshots/golden__delta@gone.snap is the delta of no case: delete it (a reference case has its whole tree instead)",
            "tests/cases/wrong-reference/reference names `small`, which is none of the reference cases [\"defaults\", \"kubeflow\", \"gateway-api-ambient\"]",
        ]
    );
    let golden = tmp.path().join("golden/defaults");
    std::fs::create_dir_all(golden.join("a")).unwrap();
    for f in ["a/kept.yaml", "a/stray.yaml", MARKER] {
        std::fs::write(golden.join(f), "x\n").unwrap();
    }
    let files: Files = [("a/kept.yaml".to_string(), "x\n".to_string())].into();
    let stray = stray_files("defaults", &golden, &files);
    assert_eq!(stray.len(), 2, "{stray:?}");
    assert!(stray[0].starts_with(&format!(
        "tests/golden/defaults/{MARKER} is not rendered by tests/cases/defaults: delete it"
    )));
    assert!(stray[1].starts_with("tests/golden/defaults/a/stray.yaml is not rendered"));
}

#[test]
fn rendering_twice_is_byte_identical() {
    for case in ["defaults", "own-istio-and-gateway"] {
        assert_eq!(render(case_inputs(case)), render(case_inputs(case)));
    }
}

/// A partial (`_name`) is included by other templates, never rendered on
/// its own.
fn is_partial(template: &str) -> bool {
    template
        .rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with('_'))
}

/// Templates (partials aside) that no case's render came from.
fn unexercised<'a>(templates: &[&'a str], used: &BTreeSet<&str>) -> Vec<&'a str> {
    templates
        .iter()
        .copied()
        .filter(|t| !is_partial(t) && !used.contains(t))
        .collect()
}

#[test]
fn every_template_is_rendered_by_some_golden_case() {
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut per_case: BTreeMap<String, usize> = BTreeMap::new();
    for case in common::cases() {
        let g = common::generate(&case_inputs(&case));
        per_case.insert(case, g.templates.len());
        used.extend(g.templates.into_values());
    }
    let all: Vec<&str> = meshgen::render::templates()
        .iter()
        .map(|(p, _)| *p)
        .collect();
    assert!(
        all.len() > 50 && per_case.values().all(|n| *n > 0),
        "{all:?} {per_case:?}"
    );
    let missing = unexercised(&all, &used);
    assert!(
        missing.is_empty(),
        "no case under tests/cases renders these templates; add or extend a case so one does, and write its golden tree:\n{}",
        missing.join("\n")
    );
}

#[test]
fn unexercised_templates_are_found_and_partials_skipped() {
    let all = [
        "a/X.yaml.j2",
        "a/_pod.yaml.j2",
        "_top.yaml.j2",
        "b/Y.yaml.j2",
    ];
    let used = BTreeSet::from(["a/X.yaml.j2"]);
    assert_eq!(unexercised(&all, &used), ["b/Y.yaml.j2"]);
}

/// Every file under this checkout's `templates/`, relative, sorted.
fn template_files(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            template_files(&path, root, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// The binary embeds exactly this checkout's templates, sorted by path
/// (a build reused from another checkout must not bring that one's).
#[test]
fn embeds_this_checkouts_templates_in_path_order() {
    let dir = root().join("templates");
    let mut on_disk = Vec::new();
    template_files(&dir, &dir, &mut on_disk);
    on_disk.sort();
    let embedded: Vec<(String, String)> = meshgen::render::templates()
        .iter()
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect();
    assert_eq!(embedded, on_disk);
}

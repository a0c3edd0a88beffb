//! The fast reader of plain block YAML (`yaml::block`, issue 31) against
//! the full loader: on every manifest of every golden tree, whatever the
//! fast reader takes it builds exactly as the loader does, in full and
//! with the access model's selection; and the access matrix of a golden
//! tree read the fast way is the matrix of the tree read by the loader
//! alone.

use meshgen::access::{matrix, tree};
use meshgen::yaml::block;
use meshgen::yaml::load::{load_json_documents, load_selected_documents};
use std::path::{Path, PathBuf};

fn golden(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case)
}

fn cases() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(golden(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

#[test]
fn the_fast_reader_builds_what_the_loader_builds() {
    let (mut fast, mut all) = (0, 0);
    for case in cases() {
        let files = tree::read_dir(&golden(&case), None).unwrap();
        for (path, text) in files.iter().filter(|(p, _)| tree::is_manifest(p)) {
            all += 1;
            let Some(docs) = block::load(text, None) else {
                // The profiles' files are most of a tree at scale: every
                // one is read fast.
                assert!(
                    !path.contains("/deploykf-profiles-generator/"),
                    "{case}/{path} is not read fast"
                );
                continue;
            };
            fast += 1;
            assert_eq!(docs, load_json_documents(text).unwrap(), "{case}/{path}");
            let selected = block::load(text, Some(tree::SELECT)).expect("as in full");
            assert_eq!(
                selected,
                load_selected_documents(text, tree::SELECT).unwrap(),
                "{case}/{path} (selected)"
            );
            let identity = block::load(text, Some(tree::IDENTITY)).expect("as in full");
            assert_eq!(
                identity,
                load_selected_documents(text, tree::IDENTITY).unwrap(),
                "{case}/{path} (identity)"
            );
        }
    }
    // Most of meshgen's own files are the fast reader's: else this test
    // would compare little.
    assert!(fast * 10 > all * 8, "only {fast} of {all} files read fast");
}

/// The tree under `dir` parsed by the loader alone, as `tree::load_as`
/// parsed it before the fast reader.
fn loaded_slowly(dir: &Path) -> tree::Tree {
    tree::read_dir(dir, None)
        .unwrap()
        .iter()
        .filter(|(p, _)| tree::is_manifest(p))
        .map(|(p, text)| {
            let docs = load_selected_documents(text, tree::SELECT).unwrap();
            (
                p.clone(),
                docs.into_iter().filter(|d| d.is_object()).collect(),
            )
        })
        .collect()
}

#[test]
fn the_matrix_is_the_same_read_fast_or_in_full() {
    for case in [
        "kubeflow",
        "istio-sidecar",
        "istio-ambient",
        "gateway-api-sidecar",
        "gateway-api-ambient",
        "multi-team",
        "idp-groups",
    ] {
        let dir = golden(case);
        let fast = tree::load_as(&dir, &[], Some(tree::SELECT)).unwrap();
        let slow = loaded_slowly(&dir);
        assert_eq!(fast, slow, "{case}: trees");
        let (fast, slow) = (matrix::compute(&fast), matrix::compute(&slow));
        assert!(!fast.cells.is_empty(), "{case}: an empty matrix");
        assert_eq!(fast.to_json(), slow.to_json(), "{case}");
    }
}

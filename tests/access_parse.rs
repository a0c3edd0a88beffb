//! The fast reader of plain block YAML (`yaml::block`, issue 31) against
//! the full loader: on every manifest of every golden tree, whatever the
//! fast reader takes it builds exactly as the loader does, in full and
//! with the access model's selection; and the access matrix of a golden
//! tree read the fast way is the matrix of the tree read by the loader
//! alone. Each case is rendered afresh (tests/cases), not read from git.

mod common;

use common::{case_inputs, cases, Rng};
use meshgen::access::{matrix, tree};
use meshgen::yaml::block;
use meshgen::yaml::load::{load_json_documents, load_selected_documents};
use std::path::Path;

/// The tree `tests/cases/<case>` renders, written into a scratch
/// directory (git keeps most cases only as deltas: tests/golden.rs).
fn rendered(case: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in common::generate(&case_inputs(case)).files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn the_fast_reader_builds_what_the_loader_builds() {
    let (mut fast, mut all) = (0, 0);
    for case in cases() {
        let dir = rendered(&case);
        let files = tree::read_dir(dir.path(), None).unwrap();
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
            // In one pass, light and written (the matrix's first read of
            // a tree on disk): the light objects, and the selected ones
            // as JSON.
            let split = block::load_split(text, tree::LIGHT, tree::SELECT).expect("as in full");
            let light = load_selected_documents(text, tree::LIGHT).unwrap();
            assert_eq!(split.docs.len(), light.len(), "{case}/{path} (split)");
            for (((doc, range), light), selected) in split.docs.iter().zip(&light).zip(&selected) {
                assert_eq!(doc, light, "{case}/{path} (split, light)");
                let written: serde_json::Value =
                    serde_json::from_slice(&split.json[range.clone()]).unwrap();
                assert_eq!(&written, selected, "{case}/{path} (split, written)");
            }
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
        "two-gateways",
        "egress-gateway",
    ] {
        let dir = rendered(case);
        let fast = tree::load_as(dir.path(), &[], Some(tree::SELECT)).unwrap();
        let slow = loaded_slowly(dir.path());
        // Besides the manifests, the model reads the Helm charts' values
        // (the mesh config); they are no objects, and change no cell.
        let mut manifests = fast.clone();
        manifests.retain(|p, _| tree::is_manifest(p));
        assert!(
            fast.keys().any(|p| p.ends_with("/istio/values.yaml")),
            "{case}"
        );
        assert_eq!(manifests, slow, "{case}: trees");
        let (fast, slow) = (matrix::compute(&fast), matrix::compute(&slow));
        assert!(!fast.cells.is_empty(), "{case}: an empty matrix");
        assert_eq!(fast.to_json(), slow.to_json(), "{case}");
    }
}

/// Text that means something to a YAML reader, spliced into a file.
const TOKENS: &[&str] = &[
    ":",
    ": ",
    " #",
    "#",
    "'",
    "\"",
    "- ",
    "-",
    "? ",
    "&a ",
    "*a",
    "!!str ",
    "!t ",
    "|",
    "|-",
    "|+",
    ">",
    ">-",
    "|2",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\t",
    "\n",
    "\n  ",
    "\n- ",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "  ",
    "\\",
    "\\n",
    "~",
    "null",
    "true",
    "0x1F",
    "0o17",
    "1e3",
    ".inf",
    "<<: ",
    "{{ x }}",
    "@",
    "`",
    "%",
    "= ",
];

/// A mutant of `text`: a YAML token put in, a character or a line
/// removed, a line repeated or indented once more or less.
fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut s = text.to_owned();
    for _ in 0..1 + rng.below(3) {
        if s.is_empty() {
            break;
        }
        let at = rng.below(s.len());
        let at = (0..=at).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        let line_start = s[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = s[at..].find('\n').map_or(s.len(), |i| at + i);
        match rng.below(6) {
            0 | 1 => s.insert_str(at, TOKENS[rng.below(TOKENS.len())]),
            2 => {
                let end = s[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                s.replace_range(at..end, "");
            }
            3 => {
                let line = s[line_start..line_end].to_owned();
                s.insert_str(line_start, &format!("{line}\n"));
            }
            4 => s.insert_str(line_start, "  "),
            _ => {
                if s[line_start..].starts_with("  ") {
                    s.replace_range(line_start..line_start + 2, "");
                } else {
                    s.replace_range(line_start..line_end, "");
                }
            }
        }
    }
    s
}

/// Issue 31: the fast reader is tried first on every file of a tree a user
/// hands `meshgen access` (`--tree`, `--with`), so on any text, not only
/// meshgen's own, what it accepts must be what the loader builds: a file it
/// misread would change a verdict silently. Mutants of the reference trees'
/// manifests (YAML syntax spliced in, lines dropped, repeated, re-indented):
/// whenever the fast reader returns documents, the loader succeeds with the
/// same documents, in full and with both selections.
#[test]
fn on_mutated_text_the_fast_reader_accepts_only_what_the_loader_builds_alike() {
    let rounds: usize = std::env::var("MESHGEN_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let mut texts = Vec::new();
    for case in [
        "defaults",
        "kubeflow",
        "gateway-api-ambient",
        "two-gateways",
        "egress-gateway",
    ] {
        let dir = rendered(case);
        let files = tree::read_dir(dir.path(), None).unwrap();
        for (path, text) in files.iter().filter(|(p, _)| tree::is_manifest(p)) {
            if block::load(text, None).is_some() && text.len() < 64 * 1024 {
                texts.push((format!("{case}/{path}"), text.clone()));
            }
        }
    }
    assert!(!texts.is_empty());
    let seed = std::env::var("MESHGEN_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(31);
    let mut rng = Rng(seed);
    let mut accepted = 0;
    for i in 0..rounds {
        let (name, text) = &texts[rng.below(texts.len())];
        let mutant = mutate(&mut rng, text);
        for select in [None, Some(tree::SELECT), Some(tree::IDENTITY)] {
            let Some(fast) = block::load(&mutant, select) else {
                continue;
            };
            accepted += 1;
            let slow = match select {
                None => load_json_documents(&mutant),
                Some(s) => load_selected_documents(&mutant, s),
            };
            match slow {
                Ok(slow) => assert_eq!(fast, slow, "mutant {i} of {name} read differently:\n{mutant}"),
                Err(e) => panic!(
                    "mutant {i} of {name}: the fast reader took it, the loader refused it ({}):\n{mutant}",
                    e.message
                ),
            }
        }
        // Read light and written in one pass: what it takes, as above.
        let split = block::load_split(&mutant, tree::LIGHT, tree::SELECT);
        let selected = block::load(&mutant, Some(tree::SELECT));
        assert_eq!(split.is_some(), selected.is_some(), "mutant {i} of {name}");
        if let (Some(split), Some(selected)) = (split, selected) {
            let light = block::load(&mutant, Some(tree::LIGHT)).unwrap();
            for (((doc, range), light), selected) in split.docs.iter().zip(&light).zip(&selected) {
                assert_eq!(doc, light, "mutant {i} of {name}");
                let written: serde_json::Value =
                    serde_json::from_slice(&split.json[range.clone()]).unwrap();
                assert_eq!(&written, selected, "mutant {i} of {name}");
            }
        }
    }
    // Most mutants stay inside the subset (a token in a comment, a
    // repeated list item): else this would test only refusals.
    assert!(
        accepted * 5 > rounds,
        "only {accepted} of {rounds} mutants read fast"
    );
}

/// `matrix::compute_in_parts` (issue 31: what `access matrix` runs in
/// every format) against `matrix::compute` of the whole tree: the same
/// CSV, JSON, notes and table. The CSV also as `access matrix --format
/// csv` asks for it: the profiles' lines made with their cells.
fn in_parts(lazy: &tree::Lazy, with: tree::Tree) -> (String, String, Vec<String>, String) {
    use matrix::{JsonRows, Part, Text};
    let all = in_parts_as_matrices(lazy, with.clone());
    // The CSV and the JSON as `access matrix` asks for them: the
    // profiles' text made with their cells.
    let mut csv = matrix::CSV_HEADER.as_bytes().to_vec();
    let mut made = 0;
    matrix::compute_in_parts(lazy, with.clone(), Some(Text::Csv), &mut |p| {
        match p {
            Part::Notes(_) => {}
            Part::Cells(m) => m.write_csv_rows(&mut csv)?,
            Part::Csv(text) => {
                made += 1;
                csv.extend_from_slice(text);
            }
            Part::Json(_) | Part::Table(_) => panic!("CSV was asked for"),
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        String::from_utf8(csv).unwrap(),
        all.0,
        "the CSV made with the cells"
    );
    assert!(made >= 1);
    let mut json = Vec::new();
    let mut rows = None;
    let mut notes = Vec::new();
    matrix::compute_in_parts(lazy, with.clone(), Some(Text::Json), &mut |p| {
        match p {
            Part::Notes(n) => {
                notes = n.to_vec();
                rows = Some(JsonRows::start(&mut json)?);
            }
            Part::Cells(m) => rows.as_mut().expect("notes first").part(m, &mut json)?,
            Part::Json(text) => rows.as_mut().expect("notes first").text(text, &mut json)?,
            Part::Csv(_) | Part::Table(_) => panic!("JSON was asked for"),
        }
        Ok(())
    })
    .unwrap();
    rows.unwrap().finish(&notes, &mut json).unwrap();
    assert_eq!(
        String::from_utf8(json).unwrap(),
        all.1,
        "the JSON made with the cells"
    );
    let (mut table, mut nobody) = (Vec::new(), Vec::new());
    matrix::compute_in_parts(lazy, with, Some(Text::Table), &mut |p| {
        match p {
            Part::Notes(_) => {}
            Part::Cells(m) => {
                let (r, n) = m.table_lines();
                table.extend(r);
                nobody.extend(n);
            }
            Part::Table((r, n)) => {
                table.extend(r);
                nobody.extend(n);
            }
            Part::Csv(_) | Part::Json(_) => panic!("a table was asked for"),
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        matrix::format_table(table, &nobody),
        all.3,
        "the table made with the cells"
    );
    all
}

fn in_parts_as_matrices(
    lazy: &tree::Lazy,
    with: tree::Tree,
) -> (String, String, Vec<String>, String) {
    use matrix::{JsonRows, Part};
    let mut csv = matrix::CSV_HEADER.as_bytes().to_vec();
    let mut json = Vec::new();
    let mut rows = None;
    let mut notes = Vec::new();
    let mut parts = 0;
    let (mut table, mut nobody) = (Vec::new(), Vec::new());
    matrix::compute_in_parts(lazy, with, None, &mut |p| {
        match p {
            Part::Notes(n) => {
                assert!(rows.is_none(), "the notes come once, first");
                notes = n.to_vec();
                rows = Some(JsonRows::start(&mut json)?);
            }
            Part::Cells(m) => {
                parts += 1;
                m.write_csv_rows(&mut csv)?;
                rows.as_mut().expect("notes first").part(m, &mut json)?;
                let (r, n) = m.table_lines();
                table.extend(r);
                nobody.extend(n);
            }
            Part::Csv(_) | Part::Json(_) | Part::Table(_) => panic!("no text was asked for"),
        }
        Ok(())
    })
    .unwrap();
    assert!(parts >= 1);
    rows.unwrap().finish(&notes, &mut json).unwrap();
    (
        String::from_utf8(csv).unwrap(),
        String::from_utf8(json).unwrap(),
        notes,
        matrix::format_table(table, &nobody),
    )
}

fn whole(m: &matrix::Matrix) -> (String, String, Vec<String>, String) {
    (m.to_csv(), m.to_json(), m.notes.clone(), m.to_table())
}

#[test]
fn the_matrix_in_parts_is_the_whole_matrix() {
    for case in common::cases() {
        let dir = rendered(&case);
        let t = tree::load_as(dir.path(), &[], Some(tree::SELECT)).unwrap();
        let expected = whole(&matrix::compute(&t));
        let lazy = tree::Lazy::dir(dir.path()).unwrap();
        assert_eq!(
            in_parts(&lazy, tree::Tree::new()),
            expected,
            "{case}: a tree on disk"
        );
        // The same, when no profile's file is the fast reader's (a YAML
        // directive before it): each is read by the loader and written.
        for path in walk(dir.path()) {
            if path
                .to_string_lossy()
                .contains("/deploykf-profiles-generator/")
            {
                let text = std::fs::read_to_string(&path).unwrap();
                std::fs::write(&path, format!("%YAML 1.2\n---\n{text}")).unwrap();
                assert!(block::load(&std::fs::read_to_string(&path).unwrap(), None).is_none());
            }
        }
        assert_eq!(
            in_parts(&lazy, tree::Tree::new()),
            expected,
            "{case}: a tree on disk, read by the loader"
        );
        let generated = common::generate(&case_inputs(&case));
        let lazy = tree::Lazy::files(&generated.files);
        assert_eq!(
            in_parts(&lazy, tree::Tree::new()),
            expected,
            "{case}: a render"
        );
    }
}

/// With other manifests (`--with`), and where a profile's files must be
/// read before the cells: an app routed into a profile's namespace, a
/// profile's objects split over files with another's file between them,
/// a `--with` file of a profile's file's name.
#[test]
fn the_matrix_in_parts_reads_what_the_cells_read_of_other_files() {
    let dir = rendered("multi-team");
    let kubeflow =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/kubeflow-26.03/built");
    let with: Vec<std::path::PathBuf> = [kubeflow].into_iter().filter(|p| p.exists()).collect();
    let profiles = dir
        .path()
        .join("manifests/deploykf-core/deploykf-profiles-generator");
    let team = std::fs::read_dir(&profiles)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            text.contains("kind: AuthorizationPolicy") && text.contains("kind: Namespace")
        })
        .min()
        .expect("a profile's file");
    let text = std::fs::read_to_string(&team).unwrap();
    let ns = text
        .lines()
        .find_map(|l| l.strip_prefix("  namespace: "))
        .unwrap()
        .to_string();
    // Its last object moved to a file of its own, after another file.
    let (head, last) = text.rsplit_once("\n---\n").unwrap();
    std::fs::write(&team, format!("{head}\n")).unwrap();
    std::fs::write(profiles.join("zz-last.yaml"), last).unwrap();
    std::fs::write(
        profiles.join("m-global.yaml"),
        format!(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: from-elsewhere\n  namespace: {ns}\nspec:\n  action: DENY\n  rules:\n    - to:\n        - operation:\n            paths:\n              - /notebook/{ns}/*\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: {ns}\n"
        ),
    )
    .unwrap();
    let check = |with: &[std::path::PathBuf], what: &str| {
        let t = tree::load_as(dir.path(), with, Some(tree::SELECT)).unwrap();
        let expected = whole(&matrix::compute(&t));
        let lazy = tree::Lazy::dir(dir.path()).unwrap();
        let mut w = tree::Tree::new();
        tree::merge_with_as(&mut w, with, Some(tree::SELECT)).unwrap();
        assert_eq!(in_parts(&lazy, w), expected, "{what}");
        expected
    };
    let split = check(&with, "split, with other manifests");
    assert!(split.0.contains("AuthorizationPolicy/") && split.0.contains(&ns));
    // An app of the gateway routed into the profile's namespace.
    let gateway = walk(dir.path())
        .into_iter()
        .find_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let i = text.find("kind: VirtualService")?;
            let rest = &text[i..];
            let gw = rest
                .lines()
                .skip_while(|l| l.trim() != "gateways:")
                .nth(1)?;
            let ns = rest.lines().find_map(|l| l.strip_prefix("  namespace: "))?;
            Some((
                gw.trim().trim_start_matches("- ").to_string(),
                ns.to_string(),
            ))
        })
        .expect("a VirtualService");
    std::fs::write(
        profiles.join("n-app.yaml"),
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: into-profile\n  namespace: {}\nspec:\n  gateways:\n    - {}\n  hosts:\n    - \"*\"\n  http:\n    - name: into-profile\n      match:\n        - uri:\n            prefix: /into-profile/\n      route:\n        - destination:\n            host: svc.{ns}.svc.cluster.local\n            port:\n              number: 80\n",
            gateway.1, gateway.0
        ),
    )
    .unwrap();
    // Its namespace's policies refuse the gateway's users: read without
    // the profile's own files, the app would be open to all.
    let routed = check(&[], "an app into a profile");
    assert!(!routed.0.contains("app,into-profile,"), "{}", routed.0);
    // A `--with` file named as the profile's own file.
    let own = team
        .strip_prefix(dir.path())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let t = tree::load_as(dir.path(), &[], Some(tree::SELECT)).unwrap();
    let mut w = tree::Tree::new();
    w.insert(own.clone(), Vec::new());
    let mut expected_tree = t.clone();
    expected_tree.insert(own, Vec::new());
    let expected = whole(&matrix::compute(&expected_tree));
    let lazy = tree::Lazy::dir(dir.path()).unwrap();
    assert_eq!(
        in_parts(&lazy, w),
        expected,
        "a --with file over a profile's"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

//! A bounded, deterministic fuzzer of the loader, the merge and `--set`
//! parsing (issue 16), run through the library pipeline
//! (`meshgen::generate`) and, for a sample of the cases, the real binary.
//!
//! Inputs: the embedded `default_values.yaml`, every
//! `tests/cases/*/values.yaml` and deployKF's sample values, mutated
//! structurally (entries deleted, duplicated, swapped; a value replaced by
//! null, a map, a list, an integral float, a huge integer, a hostile
//! string; retyped; unknown keys inserted), sometimes edited as raw text
//! (control characters, BOM, anchors, tags, template syntax), plus random
//! `--set` / `--set-string` arguments, some with paths hundreds or
//! thousands of levels deep (issue 30).
//!
//! Invariants: no panic; every diagnostic line names a key path (in
//! backticks) or a location (` --> `), holds no raw control character,
//! U+2028 or U+2029, and is no `internal:` error; every YAML file of a
//! successful run holds only YAML's printable characters (and no U+2028,
//! U+2029 or BOM), parses with meshgen's own loader and has no key
//! `injected` (what a hostile string like `"x\ninjected: true"` would add
//! if it escaped its quotes). The binary exits with 0, 1 or 2.
//!
//! A second fuzzer (issue 30) drives the write: runs killed at each
//! rename of the swap (strace fault injection, skipped with a reason
//! without strace; the exchange also forced off, for the two-rename
//! fallback) and several writers into one directory at once. After each
//! round the output is one whole tree (its files exactly its marker's
//! list), and after a plain run it is that run's, with nothing beside it.
//!
//! The default run is small (a fixed seed, [`DEFAULT_CASES`] cases);
//! `MESHGEN_FUZZ_CASES=100000 MESHGEN_FUZZ_SEED=7 cargo test --test fuzz`
//! runs longer. A failure is shrunk (arguments dropped, keys deleted,
//! lines removed) and printed with its seed, case number and minimal input.

mod common;
use common::Rng;

use meshgen::source::SourceId;
use meshgen::values::{SetArg, ValueInputs};
use meshgen::Session;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEFAULT_CASES: u64 = 80;
const DEFAULT_SEED: u64 = 0x6d65_7368_6765_6e16;
/// One case in this many also runs the real binary.
const BINARY_EVERY: u64 = 30;

// ---------------------------------------------------------------------
// Hostile material

/// Strings a value may become. Those naming `injected` must never add a
/// key `injected` to the output.
const HOSTILE: &[&str] = &[
    "x\ninjected: true",
    "x\n  injected: true",
    "x\r\ninjected: true",
    "x\rinjected: true",
    "x\u{85}injected: true",
    "x\u{2028}injected: true",
    "x\u{2029}injected: true",
    "\"\ninjected: true",
    "'\ninjected: true",
    "x\"\ninjected: \"true",
    "---\ninjected: true",
    "x\n---\ninjected: true\n",
    "{injected: true}",
    "[injected]",
    "injected: true",
    "- injected",
    "\x1b]0;pwned\x07",
    "\x1b[31mred\x1b[0m",
    "a\x7fb",
    "a\u{85}b",
    "a\u{9b}31mb",
    "a\u{2028}b",
    "a\u{2029}b",
    "\u{feff}bom",
    "a\u{fffe}b",
    "a\u{ffff}b",
    "a\u{0}b",
    "a\u{8}b",
    "tab\there",
    "{{ 7*7 }}",
    "{% if true %}x{% endif %}",
    "{# c #}",
    "${HOME}",
    "$(id)",
    "a: b\n- c",
    "*alias",
    "&anchor x",
    "!!binary aGVsbG8=",
    "!tag x",
    "%YAML 1.2",
    "? x",
    "# comment",
    "x # not a comment",
    ": ",
    "-",
    "'",
    "\"",
    "\\",
    "\\u0041",
    "",
    " ",
    " leading",
    "trailing ",
    "null",
    "~",
    "true",
    "no",
    "0777",
    "0x1F",
    "1e3",
    ".inf",
    ".nan",
    "80.0",
    "1.30",
    "../../etc/passwd",
    "/abs/path",
    "a/b",
    "ml.example.com",
    "ML.EXAMPLE.COM",
    "xn--caf-dma.example",
    "café.example",
    "*.example.com",
    "a b",
    "a,b",
    "a=b",
    "a.b",
    "a[0]",
    "\u{202e}evil",
    "日本語",
];

/// Keys an unknown entry may get (never `injected` itself).
const KEYS: &[&str] = &[
    "unknownKey",
    "enabled",
    "name",
    "x\ninjected: true",
    "a: b",
    "\x1b]0;pwned\x07",
    "a\x7fb",
    "a\u{85}b",
    "a\u{2028}b",
    "\u{feff}",
    "{{ 7*7 }}",
    "*alias",
    "<<",
    "",
    " ",
    "-",
    "?",
    "true",
    "null",
    "1",
    "a.b",
    "app.kubernetes.io/name",
    "日本語",
];

const FLOATS: &[f64] = &[80.0, 2.0, 443.0, 0.0, -1.0, 0.5, 1e300, -1e300, 65536.0];

fn huge_int(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => Value::from(u64::MAX),
        1 => Value::from(i64::MIN),
        2 => Value::from(i64::MAX),
        3 => Value::from(9_007_199_254_740_993_u64),
        4 => Value::from(-1),
        5 => Value::from(0),
        6 => Value::from(65536),
        7 => Value::from(70000),
        _ => Value::from(4_294_967_296_u64),
    }
}

/// Fragments spliced into the raw text of a values file.
const RAW: &[&str] = &[
    "\x1b]0;pwned\x07",
    "\x7f",
    "\u{85}",
    "\u{9b}",
    "\u{2028}",
    "\u{2029}",
    "\u{feff}",
    "\u{fffe}",
    "\u{0}",
    "\t",
    "\r",
    "\n",
    "\n- ",
    ": ",
    "- ",
    "'",
    "\"",
    "#",
    "&a ",
    "*a",
    "*alias",
    "<<: *a\n",
    "!!binary ",
    "!!str ",
    "!custom ",
    "? ",
    "{{ 7*7 }}",
    "{% %}",
    "{",
    "[",
    "]",
    "}",
    "---\n",
    "...\n",
    "%YAML 1.2\n---\n",
    " 99999999999999999999999",
    " 1e400",
    " 80.0",
    " null",
];

fn scalar(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(1, 2)),
        2 => huge_int(rng),
        3 => Value::from(rng.pick(FLOATS)),
        _ => Value::from(rng.pick(HOSTILE)),
    }
}

// ---------------------------------------------------------------------
// Structural mutation of a JSON tree

#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Idx(usize),
}

fn paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                prefix.push(Seg::Key(k.clone()));
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                prefix.push(Seg::Idx(i));
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn all_paths(v: &Value) -> Vec<Vec<Seg>> {
    let mut out = Vec::new();
    paths(v, &mut Vec::new(), &mut out);
    out
}

fn get_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in path {
        cur = match (s, cur) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Seg::Idx(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn retype(v: &Value) -> Value {
    match v {
        Value::Number(n) => Value::from(n.to_string()),
        Value::String(s) => match s.parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => Value::from(s == "true"),
        },
        Value::Bool(b) => Value::from(b.to_string()),
        Value::Object(m) => Value::Array(m.values().cloned().collect()),
        Value::Array(a) => Value::Object(
            a.iter()
                .enumerate()
                .map(|(i, x)| (i.to_string(), x.clone()))
                .collect(),
        ),
        Value::Null => Value::Object(Map::new()),
    }
}

/// One structural mutation at a random place of `tree`.
fn mutate(tree: &mut Value, rng: &mut Rng) {
    let mut all = all_paths(tree);
    // Sections and groups are few among thousands of leaves.
    if rng.chance(1, 4) {
        all.retain(|p| p.len() <= 2);
    }
    let kind = rng.below(13);
    // Integral floats and huge integers matter most where a number goes.
    if matches!(kind, 6 | 7) && rng.chance(2, 3) {
        let numbers: Vec<Vec<Seg>> = all
            .iter()
            .filter(|p| matches!(get(tree, p), Some(Value::Number(_))))
            .cloned()
            .collect();
        if !numbers.is_empty() {
            all = numbers;
        }
    }
    let path = rng.pick_ref(&all).clone();
    // Mutations of the entry itself need its parent.
    if matches!(kind, 0..=2) {
        let Some((last, parent_path)) = path.split_last() else {
            return;
        };
        let Some(parent) = get_mut(tree, parent_path) else {
            return;
        };
        match (kind, last, parent) {
            (0, Seg::Key(k), Value::Object(m)) => {
                m.shift_remove(k);
            }
            (0, Seg::Idx(i), Value::Array(a)) => {
                a.remove(*i);
            }
            (1, Seg::Key(k), Value::Object(m)) => {
                let v = m[k].clone();
                let new = if rng.chance(1, 2) {
                    format!("{k}s")
                } else {
                    rng.pick(KEYS).to_string()
                };
                m.insert(new, v);
            }
            (1, Seg::Idx(i), Value::Array(a)) => {
                let v = a[*i].clone();
                a.insert(*i, v);
            }
            (2, Seg::Key(k), Value::Object(m)) => {
                let j = rng.below(m.len());
                let other = m.keys().nth(j).unwrap().clone();
                if *k != other {
                    let a = m[k].clone();
                    let b = std::mem::replace(&mut m[&other], a);
                    m[k] = b;
                }
            }
            (2, Seg::Idx(i), Value::Array(a)) => {
                let j = rng.below(a.len());
                a.swap(*i, j);
            }
            _ => {}
        }
        return;
    }
    let Some(node) = get_mut(tree, &path) else {
        return;
    };
    *node = match kind {
        3 => Value::Null,
        4 => {
            let mut m = Map::new();
            if rng.chance(1, 2) {
                m.insert(rng.pick(KEYS).to_string(), scalar(rng));
            }
            Value::Object(m)
        }
        5 => match rng.below(3) {
            0 => Value::Array(vec![]),
            1 => Value::Array(vec![node.clone()]),
            _ => Value::Array(vec![scalar(rng), scalar(rng)]),
        },
        6 => Value::from(rng.pick(FLOATS)),
        7 => huge_int(rng),
        8 | 9 => Value::from(rng.pick(HOSTILE)),
        10 => retype(node),
        11 => {
            // An unknown key in a map (or the node made one).
            let mut m = match node.take() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            m.insert(rng.pick(KEYS).to_string(), scalar(rng));
            Value::Object(m)
        }
        _ => Value::Bool(rng.chance(1, 2)),
    };
}

/// A mutation most runs survive: a hostile string where any string goes
/// (a string leaf, a free-form map such as labels or annotations, a
/// ConfigMap in `extraManifests`), so that hostile text reaches the output.
fn mild_mutate(tree: &mut Value, rng: &mut Rng) {
    let all = all_paths(tree);
    let free_form = |p: &Vec<Seg>| {
        matches!(p.last(), Some(Seg::Key(k)) if {
            let k = k.to_ascii_lowercase();
            k.contains("labels") || k.contains("annotations") || k.contains("extramanifests")
        })
    };
    // A number written as an integral float (`80.0`, `2.0`): YAML's
    // number, JSON Schema's integer.
    let numbers: Vec<&Vec<Seg>> = all
        .iter()
        .filter(|p| matches!(get(tree, p), Some(Value::Number(n)) if n.is_u64()))
        .collect();
    if !numbers.is_empty() && rng.chance(1, 6) {
        let path = (*rng.pick_ref(&numbers)).clone();
        let node = get_mut(tree, &path).unwrap();
        *node = Value::from(node.as_u64().unwrap() as f64);
        return;
    }
    let maps: Vec<&Vec<Seg>> = all.iter().filter(|p| free_form(p)).collect();
    let strings: Vec<&Vec<Seg>> = all
        .iter()
        .filter(|p| matches!(get(tree, p), Some(Value::String(_))))
        .collect();
    let path = if !maps.is_empty() && (strings.is_empty() || rng.chance(2, 3)) {
        (*rng.pick_ref(&maps)).clone()
    } else if !strings.is_empty() {
        (*rng.pick_ref(&strings)).clone()
    } else {
        return;
    };
    let hostile_map = |rng: &mut Rng| {
        let mut m = Map::new();
        m.insert(rng.pick(KEYS).to_string(), Value::from(rng.pick(HOSTILE)));
        m.insert(
            rng.pick(HOSTILE).to_string(),
            Value::from(rng.pick(HOSTILE)),
        );
        m
    };
    let node = get_mut(tree, &path).unwrap();
    match node {
        Value::Array(items) => {
            let mut meta = Map::new();
            meta.insert("name".into(), Value::from("fuzz"));
            meta.insert("labels".into(), Value::Object(hostile_map(rng)));
            meta.insert("annotations".into(), Value::Object(hostile_map(rng)));
            let mut cm = Map::new();
            cm.insert("apiVersion".into(), Value::from("v1"));
            cm.insert("kind".into(), Value::from("ConfigMap"));
            cm.insert("metadata".into(), Value::Object(meta));
            cm.insert("data".into(), Value::Object(hostile_map(rng)));
            items.push(Value::Object(cm));
        }
        Value::Object(m) => m.extend(hostile_map(rng)),
        Value::Null => *node = Value::Object(hostile_map(rng)),
        _ => *node = Value::from(rng.pick(HOSTILE)),
    }
}

fn get<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let mut cur = v;
    for s in path {
        cur = match (s, cur) {
            (Seg::Key(k), Value::Object(m)) => m.get(k)?,
            (Seg::Idx(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Strings under `extraManifests` are YAML by design (a manifest may be
/// given as text): there, `injected` is allowed to become a key, so the
/// fuzzer spells it otherwise. With raw text edits anything may become a
/// key, so then it is respelled everywhere.
fn defuse(v: &mut Value, everywhere: bool) {
    match v {
        Value::String(s) if everywhere => *s = s.replace("injected", "injekted"),
        Value::Object(m) => {
            let old = std::mem::take(m);
            for (k, mut c) in old {
                if everywhere || k == "extraManifests" {
                    defuse(&mut c, true);
                } else {
                    defuse(&mut c, false);
                }
                let k = if everywhere {
                    k.replace("injected", "injekted")
                } else {
                    k
                };
                m.insert(k, c);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| defuse(c, everywhere)),
        _ => {}
    }
}

// ---------------------------------------------------------------------
// `--set` arguments

fn set_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=' | '.') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn set_path(rng: &mut Rng, defaults: &[Vec<Seg>]) -> String {
    let base = rng.pick_ref(defaults);
    let mut text = String::new();
    for (i, s) in base.iter().enumerate() {
        match s {
            Seg::Key(k) => {
                if i > 0 {
                    text.push('.');
                }
                text.push_str(&set_escape(k));
            }
            Seg::Idx(n) => text.push_str(&format!("[{n}]")),
        }
    }
    match rng.below(10) {
        0 => text.push_str(&format!(".{}", set_escape(rng.pick(KEYS)))),
        1 => text.push_str(rng.pick(&[
            "[0]",
            "[3]",
            "[99999999999999999999]",
            "[-1]",
            "[x]",
            "[",
            "]",
            "[]",
        ])),
        2 => text.push_str(rng.pick(&[".", "..", "\\", ".a..b", "=", "{", "}"])),
        3 => text = format!("{}{text}", rng.pick(&[".", "[0]", " ", "\\."])),
        _ => {}
    }
    if text.is_empty() {
        text.push('x');
    }
    text
}

fn set_value(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => rng
            .pick(&[
                "80.0",
                "2.0",
                "null",
                "true",
                "false",
                "{a,b}",
                "{}",
                "{",
                "}",
                "{,}",
                "{{a}}",
                "-0",
                "0777",
                "1e3",
                "",
                "9223372036854775808",
                "-9223372036854775809",
                "80",
                "443",
            ])
            .to_string(),
        1 => rng
            .pick(&["=", "a=b", "\\", "a\\", ",", "a,", ",b"])
            .to_string(),
        _ => set_escape(rng.pick(HOSTILE)),
    }
}

/// Issue 30: an argument alone with a deep path, around the 200-level
/// limit and far past it (20,000 segments overflowed the stack), keyed
/// or indexed (each index pads its list with nulls: the node limit),
/// below a map that takes any key or below a default's path.
fn deep_set_arg(rng: &mut Rng, defaults: &[Vec<Seg>]) -> SetArg {
    let n: usize = rng.pick(&[150, 196, 197, 199, 200, 201, 5_000, 20_000]);
    let seg = rng.pick(&[".a", "[0]", "[9999]", ".a[3]"]);
    let under = [
        "kubernetes.x",
        "deploykf_dependencies.istio.meshConfig.x",
        "deploykf_core.deploykf_istio_gateway.gatewayService.annotations.x",
    ];
    let prefix = if rng.chance(3, 4) {
        rng.pick(&under).to_string()
    } else {
        set_path(rng, defaults)
    };
    let value = rng.pick(&["1", "{1,2}", "null", "x"]);
    SetArg {
        text: format!("{prefix}{}={value}", seg.repeat(n)),
        force_string: rng.chance(1, 3),
    }
}

fn set_arg(rng: &mut Rng, defaults: &[Vec<Seg>], mild: bool) -> SetArg {
    if !mild && rng.chance(1, 6) {
        return deep_set_arg(rng, defaults);
    }
    if mild {
        // A hostile annotation of the gateway Service: accepted, rendered.
        let key = set_escape(rng.pick(KEYS)).replace("injected", "injekted");
        return SetArg {
            text: format!(
                "deploykf_core.deploykf_istio_gateway.gatewayService.annotations.{key}={}",
                set_escape(rng.pick(HOSTILE))
            ),
            force_string: true,
        };
    }
    let n = 1 + rng.below(3);
    let parts: Vec<String> = (0..n)
        .map(|_| {
            let path = set_path(rng, defaults);
            let mut value = set_value(rng);
            if path.contains("extraManifests") {
                value = value.replace("injected", "injekted");
            }
            if rng.chance(1, 20) {
                path // no `=` at all
            } else {
                format!("{path}={value}")
            }
        })
        .collect();
    SetArg {
        text: parts.join(","),
        force_string: rng.chance(1, 3),
    }
}

// ---------------------------------------------------------------------
// A case, concrete

#[derive(Clone, Debug)]
struct Input {
    /// The values file as a tree (absent once edited as raw text).
    tree: Option<Value>,
    /// The values file as text.
    text: String,
    sets: Vec<SetArg>,
}

impl Input {
    fn from_tree(tree: Value, sets: Vec<SetArg>) -> Input {
        let text = meshgen::yaml::emit::document(&tree);
        Input {
            tree: Some(tree),
            text,
            sets,
        }
    }
}

fn seeds() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = common::cases()
        .iter()
        .map(|c| {
            common::root()
                .join("tests/cases")
                .join(c)
                .join("values.yaml")
        })
        .filter(|p| p.exists())
        .collect();
    for f in [
        common::DEPLOYKF_SAMPLE,
        "tests/fixtures/upstream/deploykf-0.1.5/sample-values-overrides.yaml",
    ] {
        files.push(common::root().join(f));
    }
    let mut out = vec![(
        "default_values.yaml".to_string(),
        first_doc(meshgen::values::DEFAULT_VALUES),
    )];
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        out.push((f.display().to_string(), first_doc(&text)));
    }
    out
}

fn first_doc(text: &str) -> Value {
    meshgen::yaml::load_json_documents(text)
        .expect("seed parses")
        .into_iter()
        .next()
        .unwrap_or(Value::Object(Map::new()))
}

fn make_case(rng: &mut Rng, seeds: &[(String, Value)], defaults: &[Vec<Seg>]) -> Input {
    let mut tree = if rng.chance(1, 10) {
        Value::Object(Map::new())
    } else {
        rng.pick_ref(seeds).1.clone()
    };
    // Half the cases are mild: hostile strings where strings go, so that
    // they reach a rendered tree; the others break the structure.
    let mild = rng.chance(1, 2);
    for _ in 0..rng.below(6) {
        if mild {
            mild_mutate(&mut tree, rng);
        } else {
            mutate(&mut tree, rng);
        }
    }
    let raw = !mild && rng.chance(1, 3);
    defuse(&mut tree, raw);
    let n = if mild { rng.below(3) / 2 } else { rng.below(4) };
    let sets = (0..n).map(|_| set_arg(rng, defaults, mild)).collect();
    let mut input = Input::from_tree(tree, sets);
    if raw {
        let mut text = std::mem::take(&mut input.text);
        for _ in 0..1 + rng.below(3) {
            let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            let at = if cuts.is_empty() { 0 } else { rng.pick(&cuts) };
            text.insert_str(at, rng.pick(RAW));
        }
        input.text = text;
        input.tree = None;
    }
    input
}

// ---------------------------------------------------------------------
// Invariants

#[derive(Debug, Clone, PartialEq)]
struct Failure {
    /// What kind of failure, compared while shrinking.
    kind: &'static str,
    detail: String,
}

fn fail(kind: &'static str, detail: impl Into<String>) -> Result<(), Failure> {
    Err(Failure {
        kind,
        detail: detail.into(),
    })
}

/// A character a diagnostic line must not hold raw.
fn bad_in_message(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Outside YAML 1.2's c-printable set, or a character (line separators,
/// the BOM) no meshgen output may hold raw.
fn bad_in_yaml(c: char) -> bool {
    let printable = matches!(c,
        '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}'
        | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
    !printable || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

fn check_line(line: &str, is_error: bool) -> Result<(), Failure> {
    if let Some(c) = line.chars().find(|&c| bad_in_message(c)) {
        return fail(
            "raw control character in a message",
            format!("{c:?} in {line:?}"),
        );
    }
    if line.contains("internal:") {
        return fail("internal error", line);
    }
    if is_error && !line.contains('`') && !line.contains(" --> ") {
        return fail("error without a key path or location", line);
    }
    Ok(())
}

fn has_key(node: &meshgen::yaml::Node, key: &str) -> bool {
    use meshgen::yaml::NodeKind;
    match &node.kind {
        NodeKind::Map(m) => m.iter().any(|(k, e)| k == key || has_key(&e.value, key)),
        NodeKind::Seq(items) => items.iter().any(|n| has_key(n, key)),
        _ => false,
    }
}

fn check_yaml(name: &str, text: &str) -> Result<(), Failure> {
    if let Some((i, c)) = text.char_indices().find(|&(_, c)| bad_in_yaml(c)) {
        let line = text[..i].matches('\n').count() + 1;
        return fail(
            "non-printable character in output",
            format!("{c:?} at {name}:{line}"),
        );
    }
    match meshgen::yaml::load_documents(text, SourceId(0)) {
        Err(e) => fail(
            "output does not parse",
            format!("{name}: {} at {:?}", e.message, e.origin.pos),
        ),
        Ok(docs) => {
            if docs.iter().flatten().any(|d| has_key(d, "injected")) {
                return fail("injected key in output", name);
            }
            Ok(())
        }
    }
}

fn write_values(dir: &Path, input: &Input) -> PathBuf {
    let file = dir.join("values.yaml");
    std::fs::write(&file, &input.text).unwrap();
    file
}

/// How many checked runs rendered a tree (the others failed validation).
static RENDERED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Run `input` through the library and check every invariant.
fn check_library(dir: &Path, input: &Input) -> Result<(), Failure> {
    let inputs = ValueInputs {
        preset: None,
        files: vec![write_values(dir, input)],
        sets: input.sets.clone(),
    };
    let mut session = Session::default();
    // A panic is caught and reported below, shrunk; its default message
    // (hundreds while shrinking) would drown the report.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        meshgen::generate(&inputs, &mut session)
    }));
    std::panic::set_hook(hook);
    let result = match result {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return fail("panic", msg);
        }
    };
    for d in &session.warnings.0 {
        check_line(&d.display(&session.sources).to_string(), false)?;
    }
    match result {
        Err(errors) => {
            for d in &errors.0 {
                let is_error = d.severity == meshgen::diagnostic::Severity::Error;
                check_line(&d.display(&session.sources).to_string(), is_error)?;
            }
            Ok(())
        }
        Ok(generated) => {
            RENDERED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for (name, text) in &generated.files {
                if name.ends_with(".yaml") || name.ends_with(".yml") {
                    check_yaml(name, text)?;
                }
            }
            Ok(())
        }
    }
}

/// Run `input` through the real binary (`generate` to stdout).
fn check_binary(dir: &Path, input: &Input) -> Result<(), Failure> {
    // No process takes a NUL in an argument.
    if input.sets.iter().any(|s| s.text.contains('\0')) {
        return Ok(());
    }
    let file = write_values(dir, input);
    let mut args: Vec<String> = vec!["generate".into(), "-f".into(), file.display().to_string()];
    for s in &input.sets {
        args.push(
            if s.force_string {
                "--set-string"
            } else {
                "--set"
            }
            .into(),
        );
        args.push(s.text.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::run_meshgen_bounded(dir, &args, None, Duration::from_secs(60));
    let code = out.status.code();
    if !matches!(code, Some(0..=2)) {
        return fail("binary exit code", format!("{:?}", out.status));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines() {
        let is_error = line.starts_with("error");
        check_line(line, is_error)?;
    }
    if code == Some(0) {
        check_yaml("<stdout>", &String::from_utf8_lossy(&out.stdout))?;
    }
    Ok(())
}

fn check(dir: &Path, input: &Input, binary: bool) -> Result<(), Failure> {
    check_library(dir, input)?;
    if binary {
        check_binary(dir, input)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------
// Shrinking

/// Remove one node of `tree` (in preorder), if there is an `n`th.
fn without_nth(tree: &Value, n: usize) -> Option<Value> {
    let all = all_paths(tree);
    let path = all.get(n + 1)?; // never the root
    let mut t = tree.clone();
    let (last, parent) = path.split_last()?;
    match (last, get_mut(&mut t, parent)?) {
        (Seg::Key(k), Value::Object(m)) => {
            m.shift_remove(k);
        }
        (Seg::Idx(i), Value::Array(a)) => {
            a.remove(*i);
        }
        _ => return None,
    }
    Some(t)
}

/// The smallest input found that fails the same way as `input`.
fn shrink(dir: &Path, input: Input, failure: &Failure, binary: bool) -> (Input, Failure) {
    let mut best = input;
    let mut best_failure = failure.clone();
    let budget = std::cell::Cell::new(2000usize);
    let try_it = |candidate: &Input, best_failure: &mut Failure| -> bool {
        if budget.get() == 0 {
            return false;
        }
        budget.set(budget.get() - 1);
        match check(dir, candidate, binary) {
            Err(f) if f.kind == failure.kind => {
                *best_failure = f;
                true
            }
            _ => false,
        }
    };
    loop {
        let mut progress = false;
        // Drop `--set` arguments, then their comma-separated parts.
        let mut i = 0;
        while i < best.sets.len() {
            let mut c = best.clone();
            c.sets.remove(i);
            if try_it(&c, &mut best_failure) {
                best = c;
                progress = true;
                continue;
            }
            let parts: Vec<&str> = best.sets[i].text.split(',').collect();
            if parts.len() > 1 {
                for j in 0..parts.len() {
                    let mut c = best.clone();
                    let mut p = parts.clone();
                    p.remove(j);
                    c.sets[i].text = p.join(",");
                    if try_it(&c, &mut best_failure) {
                        best = c;
                        progress = true;
                        break;
                    }
                }
            }
            i += 1;
        }
        // Delete nodes of the tree, or lines of a raw text.
        if let Some(tree) = best.tree.clone() {
            let mut n = 0;
            let mut tree = tree;
            while let Some(t) = without_nth(&tree, n) {
                let c = Input::from_tree(t.clone(), best.sets.clone());
                if try_it(&c, &mut best_failure) {
                    tree = t;
                    best = c;
                    progress = true;
                } else {
                    n += 1;
                }
            }
        } else {
            let mut n = 0;
            loop {
                let lines: Vec<&str> = best.text.split_inclusive('\n').collect();
                if n >= lines.len() {
                    break;
                }
                let mut c = best.clone();
                c.text = lines
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != n)
                    .map(|(_, l)| *l)
                    .collect();
                if try_it(&c, &mut best_failure) {
                    best = c;
                    progress = true;
                } else {
                    n += 1;
                }
            }
        }
        if !progress || budget.get() == 0 {
            return (best, best_failure);
        }
    }
}

// ---------------------------------------------------------------------

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        }
        Err(_) => default,
    }
}

#[test]
fn fuzz_loader_merge_and_set() {
    let cases = env_u64("MESHGEN_FUZZ_CASES", DEFAULT_CASES);
    let seed = env_u64("MESHGEN_FUZZ_SEED", DEFAULT_SEED);
    let seeds = seeds();
    let defaults = all_paths(&first_doc(meshgen::values::DEFAULT_VALUES));
    let dir = tempfile::tempdir().unwrap();
    let mut failures: Vec<String> = Vec::new();
    let mut kinds_seen: Vec<&'static str> = Vec::new();
    let started = std::time::Instant::now();
    for case in 0..cases {
        // Each case has a seed of its own: one case can be rerun alone
        // with MESHGEN_FUZZ_SEED=<case seed> MESHGEN_FUZZ_CASES=1.
        let case_seed = if case == 0 {
            seed
        } else {
            Rng(seed ^ case.wrapping_mul(0xa076_1d64_78bd_642f)).next()
        };
        let mut rng = Rng(case_seed);
        let input = make_case(&mut rng, &seeds, &defaults);
        // A deep `--set` path also runs the binary: its stack is where
        // one overflowed (issue 30).
        let deep = input.sets.iter().any(|s| s.text.len() > 1000);
        let binary = case % BINARY_EVERY == 0 || deep;
        if let Err(f) = check(dir.path(), &input, binary) {
            // One report per kind of failure; the rest only counted.
            if kinds_seen.contains(&f.kind) {
                let detail: String = f.detail.chars().take(300).collect();
                failures.push(format!(
                    "case {case} (MESHGEN_FUZZ_SEED={case_seed:#x}): {}: {detail}",
                    f.kind
                ));
                continue;
            }
            kinds_seen.push(f.kind);
            let (min, mf) = shrink(dir.path(), input, &f, binary);
            let sets: Vec<String> = min
                .sets
                .iter()
                .map(|s| {
                    format!(
                        "{} {:?}",
                        if s.force_string {
                            "--set-string"
                        } else {
                            "--set"
                        },
                        s.text
                    )
                })
                .collect();
            failures.push(format!(
                "case {case}, MESHGEN_FUZZ_SEED={case_seed:#x} MESHGEN_FUZZ_CASES=1: {}\n  \
                 {}\n  minimal values file (as a Rust string): {:?}\n  \
                 minimal values file:\n{}\n  arguments: {}",
                mf.kind,
                mf.detail,
                min.text,
                min.text
                    .lines()
                    .map(|l| format!("    | {}", l.escape_debug()))
                    .collect::<Vec<_>>()
                    .join("\n"),
                if sets.is_empty() {
                    "(none)".to_string()
                } else {
                    sets.join(" ")
                },
            ));
        }
    }
    eprintln!(
        "fuzz: {cases} cases from seed {seed:#x} in {:.1?}; {} runs rendered a tree",
        started.elapsed(),
        RENDERED.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(
        failures.is_empty(),
        "{} failing case(s) (seed {seed:#x}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------
// Issue 30: kills at each rename, concurrent writers

/// Rounds of the writer fuzzer by default (`MESHGEN_FUZZ_WRITES`).
const DEFAULT_WRITE_ROUNDS: u64 = 8;

fn host_set(rng: &mut Rng) -> String {
    let host = rng.pick(&["a.example.com", "b.example.com", "c.example.com"]);
    format!("deploykf_core.deploykf_istio_gateway.gateway.hostname={host}")
}

/// One killed run: SIGKILL at the `n`th rename, the exchange refused
/// with ENOSYS when `no_exchange` (then the kill lands between the two
/// renames of the fallback).
fn killed_run(strace: &Path, dir: &Path, n: usize, no_exchange: bool, set: &str) -> String {
    let renames = if cfg!(target_arch = "x86_64") {
        "rename,renameat"
    } else {
        "renameat"
    };
    let mut cmd = std::process::Command::new(strace);
    cmd.current_dir(dir).args(["-f", "-qq", "-o", "/dev/null"]);
    let kill = if no_exchange {
        cmd.args(["-e", "inject=renameat2:error=ENOSYS"]);
        renames.to_string()
    } else {
        format!("{renames},renameat2")
    };
    let out = cmd
        .arg("-e")
        .arg(format!("inject={kill}:signal=SIGKILL:when={n}"))
        .args([
            env!("CARGO_BIN_EXE_meshgen"),
            "generate",
            "-o",
            "out",
            "--set",
            set,
        ])
        .output()
        .unwrap();
    format!(
        "kill at rename {n} (exchange {}): {:?}",
        if no_exchange { "off" } else { "on" },
        out.status
    )
}

#[test]
fn fuzz_kills_and_concurrent_writers() {
    let rounds = env_u64("MESHGEN_FUZZ_WRITES", DEFAULT_WRITE_ROUNDS);
    let mut rng = Rng(env_u64("MESHGEN_FUZZ_SEED", DEFAULT_SEED));
    let strace = common::strace();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plain = |set: &str| {
        let o = common::run_meshgen(dir, &["generate", "-o", "out", "--set", set]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    plain(&host_set(&mut rng));
    for round in 0..rounds {
        let what = match (&strace, rng.below(3)) {
            (Some(strace), 0 | 1) => {
                let no_exchange = rng.chance(1, 3);
                let n = 1 + rng.below(3);
                let what = killed_run(strace, dir, n, no_exchange, &host_set(&mut rng));
                // With the exchange, no moment is without a whole tree.
                if !no_exchange {
                    assert!(
                        common::whole_tree_digest(&dir.join("out")).is_some(),
                        "round {round}, {what}: no whole tree"
                    );
                }
                what
            }
            _ => {
                let k = 2 + rng.below(2);
                let sets: Vec<String> = (0..k).map(|_| host_set(&mut rng)).collect();
                let runs: Vec<_> = sets
                    .iter()
                    .map(|set| {
                        common::meshgen_command(dir)
                            .args(["generate", "-o", "out", "--set", set])
                            .stderr(std::process::Stdio::null())
                            .spawn()
                            .unwrap()
                    })
                    .collect();
                for mut r in runs {
                    assert!(r.wait().unwrap().success(), "round {round}: {k} writers");
                }
                assert!(
                    common::whole_tree_digest(&dir.join("out")).is_some(),
                    "round {round}: {k} writers left no whole tree"
                );
                assert_eq!(common::names_in(dir), ["out"], "round {round}: {k} writers");
                format!("{k} writers")
            }
        };
        // A plain run recovers whatever was left: its tree, nothing beside.
        let set = host_set(&mut rng);
        plain(&set);
        let want = {
            let o = common::run_meshgen(dir, &["diff", "-o", "out", "--exit-code", "--set", &set]);
            o.status.code()
        };
        assert_eq!(
            want,
            Some(0),
            "round {round}, after {what}: the tree is not the last run's"
        );
        assert_eq!(
            common::names_in(dir),
            ["out"],
            "round {round}, after {what}"
        );
    }
}

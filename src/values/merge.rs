//! Merge the values layers, lowest precedence first:
//! `default_values.yaml`, then the `--preset` layer, then each `-f` file in
//! order, then each `--set`.
//!
//! Rules (helm's `coalesce`, made strict):
//! 1. Maps merge recursively, key by key; a key keeps the position it had
//!    in the lower layer, new keys are appended.
//! 2. Scalars and lists replace what was there (lists are not merged).
//! 3. An explicit `null` deletes the key, default included; every such
//!    `null` is recorded, deleting or not, so a misspelt key is refused.
//! 4. Later files win; `--set` applies after all files, whatever the
//!    order on the command line.
//! 5. A map meeting a non-map (or a non-map meeting a map) is an error
//!    naming the dotted path and both places; helm only logs a warning.
//!    A `null` in the lower layer is not a clash: it is replaced.
//!
//! Every node keeps the origin of the layer that set it.

use super::load::Layer;
use super::path::{Segment, ValuePath};
use super::setarg::Assignment;
use super::Values;
use crate::code::Code;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::source::Origin;
use crate::yaml::load::Entry;
use crate::yaml::{Node, NodeKind};
use indexmap::IndexMap;

pub fn merge_layers(layers: Vec<Layer>) -> Result<Values, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut deleted = Vec::new();
    let mut tree: Option<Node> = None;
    for layer in layers {
        match layer {
            Layer::Tree(None) => {}
            Layer::Tree(Some(over)) => match &mut tree {
                // The first layer is taken as it is: its nulls are values
                // (`tag: ~` means "derive it"), not deletions.
                None => tree = Some(over),
                Some(base) => merge(
                    base,
                    over,
                    &mut ValuePath::root(),
                    &mut Sink {
                        diags: &mut diags,
                        deleted: &mut deleted,
                    },
                ),
            },
            Layer::Set(assignments) => {
                let base = tree.get_or_insert_with(|| empty_map(assignments.first()));
                for a in assignments {
                    if let Err(d) = apply(base, a, &mut deleted) {
                        diags.push(d);
                    }
                }
            }
        }
    }
    if diags.has_errors() {
        diags.sort();
        return Err(diags);
    }
    let tree = tree.unwrap_or_else(|| empty_map(None));
    Ok(Values { tree, deleted })
}

/// Where a merge reports clashes and records deletions.
struct Sink<'a> {
    diags: &'a mut Diagnostics,
    deleted: &'a mut Vec<(ValuePath, Origin)>,
}

fn empty_map(first: Option<&Assignment>) -> Node {
    let origin = first.map(|a| a.value.origin).unwrap_or(Origin {
        source: crate::source::SourceId(0),
        pos: Default::default(),
    });
    Node::new(NodeKind::Map(IndexMap::new()), origin)
}

/// Merge `over` into `base` (rules above).
fn merge(base: &mut Node, over: Node, path: &mut ValuePath, sink: &mut Sink) {
    match (&mut base.kind, over.kind) {
        (NodeKind::Map(base_map), NodeKind::Map(over_map)) => {
            for (key, entry) in over_map {
                path.0.push(Segment::Key(key.clone()));
                if entry.value.is_null() {
                    // Recorded even when there was nothing to delete: a
                    // null-valued key is still a key, and the schema
                    // refuses one it does not know (issue 30).
                    base_map.shift_remove(&key);
                    sink.deleted.push((path.clone(), entry.value.origin));
                } else if let Some(existing) = base_map.get_mut(&key) {
                    if existing.value.is_null() {
                        existing.value = entry.value;
                    } else {
                        merge(&mut existing.value, entry.value, path, sink);
                    }
                } else {
                    base_map.insert(key, entry);
                }
                path.0.pop();
            }
        }
        (base_kind, over_kind) => {
            let base_is_map = matches!(base_kind, NodeKind::Map(_));
            let over_is_map = matches!(over_kind, NodeKind::Map(_));
            if base_is_map != over_is_map {
                sink.diags.push(clash(path, base, over.origin, &over_kind));
                return;
            }
            *base = Node {
                kind: over_kind,
                origin: over.origin,
                plain: over.plain,
            };
        }
    }
}

fn clash(path: &ValuePath, base: &Node, at: Origin, over: &NodeKind) -> Diagnostic {
    let got = Node::new(over.clone(), at).type_name();
    let hint = if matches!(base.kind, NodeKind::Map(_)) {
        "maps merge key by key, so set the keys inside it"
    } else {
        "the defaults or an earlier values file hold a single value here, which a map cannot merge into"
    };
    Diagnostic::error(
        Code::Input,
        format!(
            "expected {}, got a {got} ({hint})",
            article(base.type_name())
        ),
    )
    .at_path(path.clone())
    .at(Some(at))
}

fn article(type_name: &str) -> String {
    match type_name {
        "integer" => "an integer".into(),
        t => format!("a {t}"),
    }
}

/// Apply one `--set` assignment to the tree.
fn apply(
    root: &mut Node,
    a: Assignment,
    deleted: &mut Vec<(ValuePath, Origin)>,
) -> Result<(), Diagnostic> {
    let origin = a.value.origin;
    let mut node = root;
    let mut walked = ValuePath::root();
    let n = a.path.0.len();
    for (i, seg) in a.path.0.iter().enumerate() {
        let last = i + 1 == n;
        walked.0.push(seg.clone());
        if node.is_null() {
            node.kind = match seg {
                Segment::Key(_) => NodeKind::Map(IndexMap::new()),
                Segment::Index(_) => NodeKind::Seq(Vec::new()),
            };
            node.origin = origin;
        }
        match (&mut node.kind, seg) {
            (NodeKind::Map(map), Segment::Key(k)) => {
                if last {
                    if a.value.is_null() {
                        map.shift_remove(k);
                        deleted.push((walked, origin));
                    } else {
                        let entry = map.entry(k.clone()).or_insert_with(|| Entry {
                            key_origin: origin,
                            value: Node::new(NodeKind::Null, origin),
                        });
                        if matches!(entry.value.kind, NodeKind::Map(_))
                            && !matches!(a.value.kind, NodeKind::Map(_))
                        {
                            return Err(Diagnostic::error(
                                Code::Input,
                                "cannot set a scalar over a map; set the keys inside it instead",
                            )
                            .at_path(walked)
                            .at(Some(origin)));
                        }
                        entry.value = a.value;
                    }
                    return Ok(());
                }
                node = &mut map
                    .entry(k.clone())
                    .or_insert_with(|| Entry {
                        key_origin: origin,
                        value: Node::new(NodeKind::Null, origin),
                    })
                    .value;
            }
            (NodeKind::Seq(items), Segment::Index(idx)) => {
                while items.len() <= *idx {
                    items.push(Node::new(NodeKind::Null, origin));
                }
                if last {
                    items[*idx] = a.value;
                    return Ok(());
                }
                node = &mut items[*idx];
            }
            (kind, _) => {
                let what = match seg {
                    Segment::Key(_) => "a key",
                    Segment::Index(_) => "a list index",
                };
                let ty = Node::new(kind.clone(), origin).type_name();
                walked.0.pop();
                return Err(Diagnostic::error(
                    Code::Input,
                    format!("cannot set {what} inside a {ty}"),
                )
                .at_path(walked)
                .at(Some(origin)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceId;
    use crate::values::load::parse_tree;
    use crate::values::setarg;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn tree(text: &str, id: u32) -> Layer {
        Layer::Tree(parse_tree(text, SourceId(id)).unwrap())
    }

    fn merged(layers: Vec<Layer>) -> Value {
        merge_layers(layers).unwrap().to_json()
    }

    #[test]
    fn maps_merge_lists_replace_null_deletes() {
        let v = merged(vec![
            tree("a: {x: 1, y: [1, 2], z: 3}\nb: keep\n", 0),
            tree("a: {y: [9], z: ~, w: new}\n", 1),
        ]);
        assert_eq!(v, json!({"a": {"x": 1, "y": [9], "w": "new"}, "b": "keep"}));
    }

    #[test]
    fn set_applies_after_files_and_can_delete() {
        let sets = setarg::parse("a.x=5,a.y[1]=q,b=null", false, SourceId(3)).unwrap();
        let v = merged(vec![tree("a: {x: 1}\nb: 2\n", 0), Layer::Set(sets)]);
        assert_eq!(v, json!({"a": {"x": 5, "y": [null, "q"]}}));
    }

    #[test]
    fn map_scalar_clash_names_the_path() {
        let e =
            merge_layers(vec![tree("a: {b: {c: 1}}\n", 0), tree("a: {b: 3}\n", 1)]).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].path.as_ref().unwrap().to_string(), "a.b");
        assert_eq!(e.0[0].origin.unwrap().source, SourceId(1));
        let sets = setarg::parse("a.b.c.d=1", false, SourceId(2)).unwrap();
        let e = merge_layers(vec![tree("a: {b: {c: 1}}\n", 0), Layer::Set(sets)]).unwrap_err();
        assert_eq!(e.0[0].path.as_ref().unwrap().to_string(), "a.b.c");
    }

    #[test]
    fn null_in_lower_layer_is_replaced_not_a_clash() {
        let v = merged(vec![
            tree("a: {tag: ~}\n", 0),
            tree("a: {tag: {x: 1}}\n", 1),
        ]);
        assert_eq!(v, json!({"a": {"tag": {"x": 1}}}));
    }

    // --- property tests -------------------------------------------------

    fn arb_scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i32>().prop_map(|i| json!(i)),
            any::<bool>().prop_map(|b| json!(b)),
            "[a-z]{0,6}".prop_map(|s| json!(s)),
        ]
    }

    /// Trees with keys from a small alphabet so that layers overlap; leaf
    /// shapes are fixed per key name so that no map/scalar clash occurs.
    fn arb_tree(depth: u32) -> BoxedStrategy<Value> {
        let leaf = prop::collection::btree_map("[a-c]", arb_scalar(), 0..4).prop_map(|m| {
            Value::Object(m.into_iter().map(|(k, v)| (format!("s{k}"), v)).collect())
        });
        if depth == 0 {
            return leaf.boxed();
        }
        (
            leaf,
            prop::collection::btree_map("[a-c]", arb_tree(depth - 1), 0..3),
        )
            .prop_map(|(mut l, m)| {
                if let Value::Object(o) = &mut l {
                    for (k, v) in m {
                        o.insert(format!("m{k}"), v);
                    }
                }
                l
            })
            .boxed()
    }

    fn layer_of(v: &Value, id: u32) -> Layer {
        let text = crate::yaml::emit::document(v);
        tree(&text, id)
    }

    /// The reference model: what the rules say, written plainly.
    fn model(base: &Value, over: &Value) -> Value {
        match (base, over) {
            (Value::Object(b), Value::Object(o)) => {
                let mut out = b.clone();
                for (k, v) in o {
                    if v.is_null() {
                        out.remove(k);
                    } else if let Some(existing) = b.get(k) {
                        out.insert(k.clone(), model(existing, v));
                    } else {
                        out.insert(k.clone(), v.clone());
                    }
                }
                Value::Object(out)
            }
            (_, o) => o.clone(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn merge_matches_the_stated_rules(a in arb_tree(2), b in arb_tree(2), c in arb_tree(2)) {
            let got = merged(vec![layer_of(&a, 0), layer_of(&b, 1), layer_of(&c, 2)]);
            prop_assert_eq!(got, model(&model(&a, &b), &c));
        }

        #[test]
        fn merging_a_tree_over_itself_changes_nothing(a in arb_tree(2)) {
            prop_assert_eq!(merged(vec![layer_of(&a, 0), layer_of(&a, 1)]), a);
        }

        #[test]
        fn every_value_of_the_last_layer_wins(a in arb_tree(2), b in arb_tree(2)) {
            let got = merged(vec![layer_of(&a, 0), layer_of(&b, 1)]);
            fn check(got: &Value, over: &Value) -> bool {
                match over {
                    Value::Object(o) => o.iter().all(|(k, v)| got.get(k).is_some_and(|g| check(g, v))),
                    v => got == v,
                }
            }
            prop_assert!(check(&got, &b));
        }

        #[test]
        fn origins_name_the_layer_that_set_a_leaf(a in arb_tree(1), b in arb_tree(1)) {
            let values = merge_layers(vec![layer_of(&a, 0), layer_of(&b, 1)]).unwrap();
            if let Value::Object(o) = &b {
                for (k, v) in o {
                    if !v.is_object() {
                        let p = ValuePath::root().key(k);
                        prop_assert_eq!(values.get(&p).unwrap().origin.source, SourceId(1));
                    }
                }
            }
        }
    }
}

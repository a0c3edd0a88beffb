//! The schema of one values *file*, for editors (`meshgen schema`).
//!
//! The embedded schema (`schemas/values.schema.json`) describes the merged
//! values, in which every key of the defaults is present, so it requires
//! them all. A values file sets only what it changes: an editor given
//! that schema reports every key the file leaves out (issue 29:
//! yaml-language-server 1.25 gave 43 false errors on a file meshgen renders
//! cleanly). This module derives the file's schema from the embedded one
//! and changes nothing else: types, enums, patterns, descriptions and
//! `additionalProperties` stay as they are.
//!
//! What it drops: `required` on every object a file may set in part, that
//! is every object reached through `properties` or `additionalProperties`
//! (a map entry of the defaults is merged into too); and, in the deployKF
//! sections meshgen does not render (`x-meshgen-ignored`, and groups of
//! them), `additionalProperties: false`, since meshgen only warns about an
//! unknown key there (`schema::Schema::validate`). What it adds: in each
//! `images` map, the image names other sections know, which meshgen
//! accepts there with a warning (deployKF forks pin them), each with the
//! shape of that map's first image. What it keeps:
//! `required` inside list items (`items`), since a list in a file replaces
//! the default list whole, so each item must be complete on its own.
//!
//! This module must not add a rule the merged schema does not have.

use serde_json::Value;

/// The text `meshgen schema` prints: the values-file schema, as pretty
/// JSON with a final newline.
pub fn values_file_schema_text(merged: &str) -> Result<String, serde_json::Error> {
    let mut json: Value = serde_json::from_str(merged)?;
    relax(&mut json, false, false);
    let mut names = std::collections::BTreeSet::new();
    image_names(&json, false, &mut names);
    add_image_names(&mut json, false, &names);
    if let Some(root) = json.as_object_mut() {
        root.insert("title".into(), "meshgen values file".into());
        root.insert(
            "description".into(),
            "One values file of meshgen (deployKF-compatible keys): every key is optional, since the embedded defaults fill in the rest; a list replaces the default list whole, so list items keep their required keys. `meshgen schema --merged` prints the schema of the merged values.".into(),
        );
    }
    let mut text = serde_json::to_string_pretty(&json)?;
    text.push('\n');
    Ok(text)
}

/// Drop `required` from `node` and below, except within list items
/// (`in_items`), and `additionalProperties: false` within an unrendered
/// section (`in_ignored`).
fn relax(node: &mut Value, in_items: bool, in_ignored: bool) {
    match node {
        Value::Object(map) => {
            let marked = |k: &str| map.get(k).and_then(Value::as_bool) == Some(true);
            let in_ignored = in_ignored || marked(super::IGNORED) || marked(super::IGNORED_GROUP);
            if !in_items {
                map.remove("required");
            }
            if in_ignored && map.get("additionalProperties") == Some(&Value::Bool(false)) {
                map.remove("additionalProperties");
            }
            for (key, child) in map.iter_mut() {
                let items = in_items || key == "items" || key == "prefixItems";
                relax(child, items, in_ignored);
            }
        }
        Value::Array(list) => list
            .iter_mut()
            .for_each(|child| relax(child, in_items, in_ignored)),
        _ => {}
    }
}

/// The keys of every `images` map's `properties`.
fn image_names(node: &Value, is_images: bool, out: &mut std::collections::BTreeSet<String>) {
    let Some(map) = node.as_object() else { return };
    let props = map.get("properties").and_then(Value::as_object);
    if is_images {
        out.extend(props.into_iter().flat_map(|p| p.keys().cloned()));
    }
    for (k, child) in props.into_iter().flatten() {
        image_names(child, k == "images", out);
    }
}

/// Give every closed `images` map the names of `names` it lacks.
fn add_image_names(node: &mut Value, is_images: bool, names: &std::collections::BTreeSet<String>) {
    let Some(map) = node.as_object_mut() else {
        return;
    };
    let closed = map.get("additionalProperties") == Some(&Value::Bool(false));
    let Some(Value::Object(props)) = map.get_mut("properties") else {
        return;
    };
    if is_images && closed {
        if let Some(shape) = props.values().next().cloned() {
            for name in names {
                if !props.contains_key(name) {
                    let mut entry = shape.clone();
                    if let Some(e) = entry.as_object_mut() {
                        e.insert(
                            "description".into(),
                            format!("This section runs no `{name}` image (other deployKF sections do): accepted, with a warning, and it has no effect.").into(),
                        );
                    }
                    props.insert(name.clone(), entry);
                }
            }
        }
    }
    for (k, child) in props.iter_mut() {
        add_image_names(child, k == "images", names);
    }
}

/// Every `required` list left in `schema`, by JSON pointer (for tests).
pub fn required_pointers(schema: &Value) -> Vec<String> {
    fn go(node: &Value, at: &str, out: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                if map.get("required").is_some_and(Value::is_array) {
                    out.push(at.to_string());
                }
                for (k, v) in map {
                    go(
                        v,
                        &format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            Value::Array(list) => {
                for (i, v) in list.iter().enumerate() {
                    go(v, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    go(schema, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_stays_only_within_list_items() {
        let merged = crate::schema::SCHEMA_TEXT;
        let before: Value = serde_json::from_str(merged).unwrap();
        let file: Value = serde_json::from_str(&values_file_schema_text(merged).unwrap()).unwrap();
        let kept = required_pointers(&file);
        assert!(!kept.is_empty());
        assert!(kept.iter().all(|p| p.contains("/items")), "{kept:?}");
        // Exactly the items' `required` lists of the merged schema remain,
        // unchanged.
        let items: Vec<String> = required_pointers(&before)
            .into_iter()
            .filter(|p| p.contains("/items"))
            .collect();
        assert_eq!(kept, items);
        for p in &kept {
            assert_eq!(file.pointer(p), before.pointer(p), "{p}");
        }
        // The root required every section; a file need not.
        assert!(before.get("required").is_some());
        assert!(file.get("required").is_none());
        // Nothing else moves: only `required`, title and description
        // differ, and `additionalProperties: false` within the sections
        // meshgen does not render (none elsewhere).
        let ignored = crate::schema::Schema::embedded().unwrap();
        for section in ignored.ignored_sections() {
            let pointer: String = section
                .0
                .iter()
                .map(|s| match s {
                    crate::values::path::Segment::Key(k) => format!("/properties/{k}"),
                    crate::values::path::Segment::Index(_) => unreachable!("sections are keys"),
                })
                .collect();
            let node = file.pointer(&pointer).unwrap();
            assert!(node.get("additionalProperties").is_none(), "{pointer}");
        }
        let rendered = file
            .pointer("/properties/deploykf_core/properties/deploykf_istio_gateway")
            .unwrap();
        assert_eq!(rendered["additionalProperties"], false);
        let strip = |mut v: Value| {
            fn go(v: &mut Value) {
                match v {
                    Value::Object(m) => {
                        m.remove("required");
                        if m.get("additionalProperties") == Some(&Value::Bool(false)) {
                            m.remove("additionalProperties");
                        }
                        if let Some(Value::Object(p)) = m.get_mut("properties") {
                            p.retain(|_, v| {
                                !v["description"]
                                    .as_str()
                                    .is_some_and(|d| d.starts_with("This section runs no `"))
                            });
                        }
                        m.values_mut().for_each(go);
                    }
                    Value::Array(l) => l.iter_mut().for_each(go),
                    _ => {}
                }
            }
            go(&mut v);
            for k in ["title", "description"] {
                v.as_object_mut().unwrap().remove(k);
            }
            v
        };
        let kubectl = "/properties/deploykf_dependencies/properties/cert_manager/properties/images/properties/kubectl";
        assert!(before.pointer(kubectl).is_none());
        assert_eq!(file.pointer(kubectl).unwrap()["type"], "object");
        assert!(
            strip(file) == strip(before),
            "the file schema differs in more"
        );
    }
}

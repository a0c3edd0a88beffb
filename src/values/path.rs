//! [`ValuePath`]: the address of a value in the values tree, printed the way
//! users write it (`deploykf_core.deploykf_istio_gateway.gateway.ports.https`,
//! `selectorLabels["app.kubernetes.io/name"]`, `extraManifests[0]`).
//!
//! JSON pointers from the schema validator are converted here and nowhere
//! else; a bare pointer is never shown to a user.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ValuePath(pub Vec<Segment>);

impl ValuePath {
    pub fn root() -> Self {
        ValuePath(Vec::new())
    }

    /// Build from dotted keys (`"a.b.c"`); for code, not for user input.
    pub fn keys(dotted: &str) -> Self {
        ValuePath(
            dotted
                .split('.')
                .filter(|s| !s.is_empty())
                .map(|s| Segment::Key(s.to_string()))
                .collect(),
        )
    }

    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Key(k.to_string()));
        p
    }

    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Index(i));
        p
    }

    pub fn parent(&self) -> Option<ValuePath> {
        let mut p = self.clone();
        p.0.pop().map(|_| p)
    }

    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    pub fn starts_with(&self, other: &ValuePath) -> bool {
        self.0.starts_with(&other.0)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

/// A key that can be printed bare after a dot.
fn is_plain_key(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for ValuePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if is_plain_key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Key(k) => {
                    let quoted = serde_json::to_string(k).map_err(|_| fmt::Error)?;
                    write!(f, "[{quoted}]")?;
                }
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The node at `path` in a JSON form of the values, if there is one.
pub fn lookup<'a>(v: &'a serde_json::Value, path: &ValuePath) -> Option<&'a serde_json::Value> {
    path.0.iter().try_fold(v, |v, seg| match seg {
        Segment::Key(k) => v.get(k.as_str()),
        Segment::Index(i) => v.get(*i),
    })
}

/// [`lookup`], for changing the node.
pub fn lookup_mut<'a>(
    v: &'a mut serde_json::Value,
    path: &ValuePath,
) -> Option<&'a mut serde_json::Value> {
    path.0.iter().try_fold(v, |v, seg| match seg {
        Segment::Key(k) => v.get_mut(k.as_str()),
        Segment::Index(i) => v.get_mut(*i),
    })
}

/// Set the node at `path` to `to`, or remove it when `to` is `None`.
/// Nothing happens when its parent is missing or of another kind.
pub fn put(v: &mut serde_json::Value, path: &ValuePath, to: Option<serde_json::Value>) {
    let (Some(last), Some(parent)) = (path.0.last(), path.parent()) else {
        return;
    };
    match (lookup_mut(v, &parent), last, to) {
        (Some(serde_json::Value::Object(m)), Segment::Key(k), Some(to)) => {
            m.insert(k.clone(), to);
        }
        (Some(serde_json::Value::Object(m)), Segment::Key(k), None) => {
            m.remove(k);
        }
        (Some(serde_json::Value::Array(a)), Segment::Index(i), to) if *i < a.len() => match to {
            Some(to) => a[*i] = to,
            None => {
                a.remove(*i);
            }
        },
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_dotted_and_bracketed_keys() {
        let p = ValuePath::keys("a.selectorLabels")
            .key("app.kubernetes.io/name")
            .index(2)
            .key("x");
        assert_eq!(
            p.to_string(),
            r#"a.selectorLabels["app.kubernetes.io/name"][2].x"#
        );
        assert_eq!(ValuePath::root().to_string(), "(root)");
        assert_eq!(ValuePath::keys("a").key("b\nc").to_string(), r#"a["b\nc"]"#);
    }

    #[test]
    fn put_sets_inserts_and_removes() {
        let mut v = serde_json::json!({"a": {"b": 1, "l": [1, 2, 3]}});
        put(&mut v, &ValuePath::keys("a.b"), Some(2.into()));
        put(&mut v, &ValuePath::keys("a.c"), Some(3.into()));
        put(&mut v, &ValuePath::keys("a.l").index(1), None);
        put(&mut v, &ValuePath::keys("a.l").index(9), None);
        put(&mut v, &ValuePath::keys("x.y"), Some(1.into()));
        assert_eq!(v, serde_json::json!({"a": {"b": 2, "c": 3, "l": [1, 3]}}));
        assert_eq!(
            lookup(&v, &ValuePath::keys("a.l").index(1)),
            Some(&3.into())
        );
    }
}

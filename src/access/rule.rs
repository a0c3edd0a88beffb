//! An AuthorizationPolicy rule read once into the form the matrix asks
//! (issue 31): a profile's rules are asked for each of its subjects and
//! both capabilities, and a `when` may list every member. Read from the
//! JSON each time, every request looked each field up again and compared
//! each listed value in turn; here each list is split once into exact
//! values (sorted, found by binary search) and patterns.
//!
//! What a rule means is unchanged: the fields and their matching are
//! Istio's (istio/istio `pilot/pkg/security/authz/model/model.go`,
//! `generator.go`: a `*` alone matches any non-empty value, a leading or
//! trailing `*` a suffix or prefix, anything else itself), and a field
//! the model does not know holds (as before: `coverage.rs` reports it).

use super::istio::istio_match;
use serde_json::Value;

/// A list of values or patterns (a rule field's, or a condition's).
/// Anything but a list of strings holds no string: it matches nothing.
#[derive(Debug, Default)]
pub struct Pats {
    /// Values matched only by themselves, sorted.
    exact: Vec<Box<str>>,
    /// Patterns with a `*` at an end.
    wild: Vec<Box<str>>,
}

impl Pats {
    pub fn new(list: &Value) -> Pats {
        let mut out = Pats::default();
        for p in list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if p.starts_with('*') || p.ends_with('*') {
                out.wild.push(p.into());
            } else {
                out.exact.push(p.into());
            }
        }
        out.exact.sort_unstable();
        out
    }

    /// Whether a pattern matches one of `values`.
    pub fn any<S: AsRef<str>>(&self, values: &[S]) -> bool {
        values.iter().any(|v| {
            let v = v.as_ref();
            self.exact.binary_search_by(|e| (**e).cmp(v)).is_ok()
                || self.wild.iter().any(|p| istio_match(p, Some(v)))
        })
    }
}

/// A `from.source` field the model reads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    Principals,
    NotPrincipals,
    Namespaces,
    NotNamespaces,
    RequestPrincipals,
    NotRequestPrincipals,
}

/// A `to.operation` field the model reads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Operation {
    Hosts,
    NotHosts,
    Paths,
    NotPaths,
    Methods,
    NotMethods,
    Ports,
    NotPorts,
}

/// A `when` condition.
#[derive(Debug)]
pub struct Cond {
    pub key: Box<str>,
    values: Option<Pats>,
    not_values: Option<Pats>,
}

impl Cond {
    /// Whether the condition holds for a request whose values of the key
    /// are `values`.
    pub fn holds<S: AsRef<str>>(&self, values: &[S]) -> bool {
        self.values.as_ref().is_none_or(|l| l.any(values))
            && self.not_values.as_ref().is_none_or(|l| !l.any(values))
    }
}

/// One rule of an AuthorizationPolicy.
#[derive(Debug)]
pub struct Rule {
    /// `None`: no `from` (any source); each entry a `source`'s fields.
    from: Option<Vec<Vec<(Source, Pats)>>>,
    /// `None`: no `to`; each entry an `operation`'s fields.
    to: Option<Vec<Vec<(Operation, Pats)>>>,
    pub when: Vec<Cond>,
}

/// The fields of each item of list `key` of `rule`, by item field
/// `inner`, kept when `known` names them (`None`: no such list; a value
/// that is no list: no item, which no request matches).
fn items_of<K>(
    rule: &Value,
    key: &str,
    inner: &str,
    known: impl Fn(&str) -> Option<K>,
) -> Option<Vec<Vec<(K, Pats)>>> {
    let list = rule.get(key)?;
    Some(
        list.as_array()
            .into_iter()
            .flatten()
            .map(|item| {
                item[inner]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, l)| Some((known(k)?, Pats::new(l))))
                    .collect()
            })
            .collect(),
    )
}

impl Rule {
    pub fn new(rule: &Value) -> Rule {
        let from = items_of(rule, "from", "source", |k| {
            Some(match k {
                "principals" => Source::Principals,
                "notPrincipals" => Source::NotPrincipals,
                "namespaces" => Source::Namespaces,
                "notNamespaces" => Source::NotNamespaces,
                "requestPrincipals" => Source::RequestPrincipals,
                "notRequestPrincipals" => Source::NotRequestPrincipals,
                _ => return None,
            })
        });
        let to = items_of(rule, "to", "operation", |k| {
            Some(match k {
                "hosts" => Operation::Hosts,
                "notHosts" => Operation::NotHosts,
                "paths" => Operation::Paths,
                "notPaths" => Operation::NotPaths,
                "methods" => Operation::Methods,
                "notMethods" => Operation::NotMethods,
                "ports" => Operation::Ports,
                "notPorts" => Operation::NotPorts,
                _ => return None,
            })
        });
        let when = rule["when"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| Cond {
                key: w["key"].as_str().unwrap_or_default().into(),
                values: w.get("values").map(Pats::new),
                not_values: w.get("notValues").map(Pats::new),
            })
            .collect();
        Rule { from, to, when }
    }

    /// Whether the rule's `from` admits a caller of mTLS identity
    /// `principal` (`None`: outside the mesh, a client of the gateway)
    /// with the token `verified` (issuer, claims), if any.
    pub fn from_ok(&self, principal: Option<&str>, verified: Option<(&str, &Value)>) -> bool {
        let principals = principal.as_slice();
        // Made only when a rule asks.
        let ns = || principal.and_then(super::matrix::source_ns);
        let request_principal =
            || verified.map(|(iss, c)| format!("{iss}/{}", c["sub"].as_str().unwrap_or_default()));
        self.from.as_ref().is_none_or(|from| {
            from.iter().any(|source| {
                source.iter().all(|(k, l)| match k {
                    Source::Principals => l.any(principals),
                    Source::NotPrincipals => !l.any(principals),
                    Source::Namespaces => l.any(ns().as_slice()),
                    Source::NotNamespaces => !l.any(ns().as_slice()),
                    Source::RequestPrincipals => l.any(request_principal().as_slice()),
                    Source::NotRequestPrincipals => !l.any(request_principal().as_slice()),
                })
            })
        })
    }

    /// Whether the rule's `to` admits a GET of `path` on pod port `port`
    /// to `host` (`None`: at a workload, where no `hosts` condition
    /// holds). An unknown port (a profile's pods, an app whose Service is
    /// not in the tree) is taken to be the one a rule names.
    pub fn to_ok(&self, host: Option<&str>, path: &str, port: Option<&str>) -> bool {
        let (host, path, port, get): (&[&str], &[&str], &[&str], &[&str]) =
            (host.as_slice(), &[path], port.as_slice(), &["GET"]);
        self.to.as_ref().is_none_or(|to| {
            to.iter().any(|operation| {
                operation.iter().all(|(k, l)| match k {
                    Operation::Hosts => l.any(host),
                    Operation::NotHosts => !l.any(host),
                    Operation::Paths => l.any(path),
                    Operation::NotPaths => !l.any(path),
                    Operation::Methods => l.any(get),
                    Operation::NotMethods => !l.any(get),
                    Operation::Ports => port.is_empty() || l.any(port),
                    Operation::NotPorts => port.is_empty() || !l.any(port),
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each list split into values and patterns matches as Istio's
    /// patterns do, value by value.
    #[test]
    fn a_list_matches_as_its_patterns() {
        let l = Pats::new(&json!(["b", "*", "a", "pre*", "*suf", "mid*dle", 3]));
        assert!(l.any(&["a"]) && l.any(&["b"]) && l.any(&["x"]));
        let l = Pats::new(&json!(["b", "a", "pre*", "*suf", "mid*dle", 3]));
        assert!(l.any(&["prefix"]) && l.any(&["the-suf"]) && l.any(&["mid*dle"]));
        assert!(!l.any(&["middle"]) && !l.any(&["3"]) && !l.any(&["c"]) && !l.any::<&str>(&[]));
        assert!(!Pats::new(&json!("a")).any(&["a"]), "no list: nothing");
        assert!(
            !Pats::new(&json!(["*"])).any(&[""]),
            "`*` is a non-empty value"
        );
    }

    /// A present `from`/`to` that is no list admits nothing; a field the
    /// model does not know holds.
    #[test]
    fn fields_as_before() {
        let r = Rule::new(&json!({"from": "x"}));
        assert!(!r.from_ok(Some("p"), None));
        let r = Rule::new(&json!({"from": [{"source": {"ipBlocks": ["1.2.3.4"]}}]}));
        assert!(r.from_ok(Some("p"), None));
        let r = Rule::new(&json!({"to": [{"operation": {"methods": ["POST"]}}]}));
        assert!(!r.to_ok(None, "/", None));
        let r = Rule::new(&json!({"to": [{"operation": {"hosts": ["h"], "ports": ["8080"]}}]}));
        assert!(!r.to_ok(None, "/", None) && r.to_ok(Some("h"), "/", None));
        assert!(!r.to_ok(Some("h"), "/", Some("80")));
        let r = Rule::new(&json!({"when": [{"key": "k", "notValues": ["a"]}]}));
        assert!(r.when[0].holds(&["b"]) && !r.when[0].holds(&["a"]));
    }
}

//! The file `meshgen access check` reads: a list of requests, who sends
//! each, and the verdict expected. Loaded with the project's YAML loader,
//! so that every error names the entry's key path and its position, with
//! a suggestion for a misspelt key or verdict.
//!
//! ```yaml
//! - as: {user: alice@example.net}          # idpGroups: [..] optional
//!   request: GET https://ml.example.net/notebook/team-a/nb/
//!   expect: allow     # allow | redirect | login | unauthenticated | deny | not-routed | error
//! - as: {idpGroup: ml-research-readers}    # a user no profile names, in this group
//!   request: POST https://ml.example.net/notebook/research/nb/api/kernels
//!   expect: deny
//! - as: {serviceAccount: team-a/pipeline-runner}
//! - as: {fromPod: kubeflow/notebook-controller}
//! - as: anonymous
//! ```

use super::explain::{Caller, Verdict};
use crate::code::Code;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::schema::suggest;
use crate::source::{Origin, SourceId};
use crate::values::path::ValuePath;
use crate::yaml::{load_documents, Node, NodeKind};

/// The user an `as: {idpGroup: G}` entry stands for: an address no
/// profile names, so only the group can admit it.
pub const GROUP_MEMBER: &str = "member@idp-group.invalid";

/// One assertion of a check file.
#[derive(Clone, Debug)]
pub struct Expectation {
    pub caller: Caller,
    pub method: String,
    pub url: String,
    pub expect: Verdict,
    /// Where the entry starts.
    pub origin: Origin,
    /// Its index in the file's list.
    pub index: usize,
}

const ENTRY_KEYS: [&str; 3] = ["as", "request", "expect"];
const AS_KEYS: [&str; 6] = [
    "user",
    "idpGroup",
    "idpGroups",
    "serviceAccount",
    "fromPod",
    "anonymous",
];

fn error(path: &ValuePath, node_origin: Origin, message: impl Into<String>) -> Diagnostic {
    Diagnostic::error(Code::Access, message)
        .at_path(path.clone())
        .at(Some(node_origin))
}

fn did_you_mean<'a>(word: &str, known: impl Iterator<Item = &'a str> + Clone) -> String {
    match suggest(word, known.clone()) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => format!(
            "; expected one of: {}",
            known.collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The expectations of `text` (the file `source`), or every error found.
pub fn parse(text: &str, source: SourceId) -> Result<Vec<Expectation>, Diagnostics> {
    let docs = load_documents(text, source).map_err(|e| {
        Diagnostics(vec![
            Diagnostic::error(Code::Access, e.message).at(Some(e.origin))
        ])
    })?;
    let root = ValuePath::root();
    let whole = Origin {
        source,
        pos: crate::source::Pos { line: 1, col: 1 },
    };
    let mut docs = docs.into_iter().flatten();
    let (Some(doc), None) = (docs.next(), docs.next()) else {
        return Err(Diagnostics(vec![Diagnostic::error(
            Code::Access,
            "expected one YAML document: a list of expectations (as, request, expect)",
        )
        .at(Some(whole))]));
    };
    let NodeKind::Seq(entries) = &doc.kind else {
        return Err(Diagnostics(vec![error(
            &root,
            doc.origin,
            format!(
                "expected a list of expectations (as, request, expect), got a {}",
                doc.type_name()
            ),
        )]));
    };
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match parse_entry(entry, &root.index(i), i) {
            Ok(e) => out.push(e),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(errors))
    }
}

fn string<'a>(node: &'a Node, path: &ValuePath, what: &str) -> Result<&'a str, Diagnostic> {
    match &node.kind {
        NodeKind::Str(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(error(
            path,
            node.origin,
            format!("expected {what}, got {}", describe(node)),
        )),
    }
}

fn describe(node: &Node) -> String {
    match &node.kind {
        NodeKind::Str(s) if s.trim().is_empty() => "an empty string".into(),
        _ => format!("a {}", node.type_name()),
    }
}

fn parse_entry(
    entry: &Node,
    path: &ValuePath,
    index: usize,
) -> Result<Expectation, Vec<Diagnostic>> {
    let NodeKind::Map(map) = &entry.kind else {
        return Err(vec![error(
            path,
            entry.origin,
            format!(
                "expected a map with as, request and expect, got {}",
                describe(entry)
            ),
        )]);
    };
    let mut errors = Vec::new();
    for (k, e) in map {
        if !ENTRY_KEYS.contains(&k.as_str()) {
            errors.push(error(
                &path.key(k),
                e.key_origin,
                format!(
                    "unknown key `{k}`{}",
                    did_you_mean(k, ENTRY_KEYS.into_iter())
                ),
            ));
        }
    }
    for k in ENTRY_KEYS {
        if !map.contains_key(k) {
            errors.push(error(path, entry.origin, format!("missing `{k}`")));
        }
    }
    let caller = map.get("as").map(|e| parse_as(&e.value, &path.key("as")));
    let request = map.get("request").map(|e| {
        let p = path.key("request");
        let s = string(&e.value, &p, "`METHOD URL`, as `GET https://host/path`")?;
        let mut words = s.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(m), Some(u), None)
                if m.chars().all(|c| c.is_ascii_uppercase())
                    && (u.starts_with("https://") || u.starts_with("http://")) =>
            {
                Ok((m.to_string(), u.to_string()))
            }
            _ => Err(error(
                &p,
                e.value.origin,
                format!("expected `METHOD URL` (as `GET https://host/path`), got {s:?}"),
            )),
        }
    });
    let expect = map.get("expect").map(|e| {
        let p = path.key("expect");
        let s = string(&e.value, &p, "a verdict")?;
        Verdict::parse(s).ok_or_else(|| {
            error(
                &p,
                e.value.origin,
                format!(
                    "unknown verdict `{s}`{}",
                    did_you_mean(s, Verdict::ALL.iter().map(|(n, _)| *n))
                ),
            )
        })
    });
    let (caller, request, expect) = (
        take(caller, &mut errors),
        take(request, &mut errors),
        take(expect, &mut errors),
    );
    match (caller, request, expect) {
        (Some(caller), Some((method, url)), Some(expect)) if errors.is_empty() => Ok(Expectation {
            caller,
            method,
            url,
            expect,
            origin: entry.origin,
            index,
        }),
        _ => Err(errors),
    }
}

/// The value of a parsed part, its error moved to `errors`.
fn take<T>(r: Option<Result<T, Diagnostic>>, errors: &mut Vec<Diagnostic>) -> Option<T> {
    match r {
        Some(Ok(v)) => Some(v),
        Some(Err(d)) => {
            errors.push(d);
            None
        }
        None => None,
    }
}

/// `NS/NAME`, both parts non-empty.
fn namespaced(s: &str) -> Option<(String, String)> {
    let (ns, name) = s.split_once('/')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains('/'))
        .then(|| (ns.to_string(), name.to_string()))
}

fn parse_as(node: &Node, path: &ValuePath) -> Result<Caller, Diagnostic> {
    if let NodeKind::Str(s) = &node.kind {
        if s == "anonymous" {
            return Ok(Caller::Anonymous);
        }
    }
    let NodeKind::Map(map) = &node.kind else {
        return Err(error(
            path,
            node.origin,
            format!(
                "expected `anonymous` or a map of one of user (with idpGroups), idpGroup, serviceAccount, fromPod, got {}",
                describe(node)
            ),
        ));
    };
    for (k, e) in map {
        if !AS_KEYS.contains(&k.as_str()) {
            return Err(error(
                &path.key(k),
                e.key_origin,
                format!("unknown key `{k}`{}", did_you_mean(k, AS_KEYS.into_iter())),
            ));
        }
    }
    let get = |k: &str| map.get(k).map(|e| &e.value);
    let mut groups = Vec::new();
    if let Some(g) = get("idpGroup") {
        groups.push(string(g, &path.key("idpGroup"), "a group name")?.to_string());
    }
    if let Some(g) = get("idpGroups") {
        let p = path.key("idpGroups");
        let NodeKind::Seq(items) = &g.kind else {
            return Err(error(
                &p,
                g.origin,
                format!("expected a list of group names, got {}", describe(g)),
            ));
        };
        for (i, item) in items.iter().enumerate() {
            groups.push(string(item, &p.index(i), "a group name")?.to_string());
        }
    }
    let machine: Vec<&str> = ["serviceAccount", "fromPod", "anonymous"]
        .into_iter()
        .filter(|k| map.contains_key(*k))
        .collect();
    let human = map.contains_key("user") || !groups.is_empty();
    if machine.len() + usize::from(human) != 1 {
        return Err(error(
            path,
            node.origin,
            "name exactly one caller: user (with idpGroups), idpGroup(s), serviceAccount, fromPod or anonymous",
        ));
    }
    if let Some(u) = get("user") {
        let email = string(u, &path.key("user"), "a user's email")?.to_string();
        return Ok(Caller::User { email, groups });
    }
    if human {
        return Ok(Caller::User {
            email: GROUP_MEMBER.into(),
            groups,
        });
    }
    for (key, pod) in [("serviceAccount", false), ("fromPod", true)] {
        if let Some(v) = get(key) {
            let p = path.key(key);
            let s = string(v, &p, "NAMESPACE/NAME")?;
            let (namespace, name) = namespaced(s).ok_or_else(|| {
                error(&p, v.origin, format!("expected NAMESPACE/NAME, got {s:?}"))
            })?;
            return Ok(if pod {
                Caller::Pod {
                    namespace,
                    account: name,
                }
            } else {
                Caller::ServiceAccount { namespace, name }
            });
        }
    }
    match get("anonymous").map(|v| &v.kind) {
        Some(NodeKind::Bool(true)) => Ok(Caller::Anonymous),
        _ => Err(error(
            &path.key("anonymous"),
            node.origin,
            "expected `anonymous: true`",
        )),
    }
}

/// `NS/NAME` of a command-line argument.
pub fn namespaced_arg(s: &str) -> Result<(String, String), String> {
    namespaced(s).ok_or_else(|| format!("expected NAMESPACE/NAME, got {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse(text, SourceId(0)) {
            Ok(_) => Vec::new(),
            Err(d) => {
                d.0.iter()
                    .map(|d| {
                        format!(
                            "{} {} {}:{}",
                            d.path.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                            d.message,
                            d.origin.map(|o| o.pos.line).unwrap_or(0),
                            d.origin.map(|o| o.pos.col).unwrap_or(0)
                        )
                    })
                    .collect()
            }
        }
    }

    #[test]
    fn every_caller_and_verdict_parses() {
        let text = "\
- as: {user: a@example.net, idpGroups: [g]}
  request: GET https://h/x
  expect: allow
- as: {idpGroup: g}
  request: POST https://h/y
  expect: not-routed
- as: {serviceAccount: ns/sa}
  request: GET https://h/
  expect: unauthenticated
- as: {fromPod: ns/sa}
  request: GET http://svc.ns/
  expect: deny
- as: anonymous
  request: GET http://h/
  expect: redirect
";
        let e = parse(text, SourceId(0)).expect("valid");
        assert_eq!(e.len(), 5);
        assert_eq!(
            e[0].caller,
            Caller::User {
                email: "a@example.net".into(),
                groups: vec!["g".into()]
            }
        );
        assert_eq!(
            e[1].caller,
            Caller::User {
                email: GROUP_MEMBER.into(),
                groups: vec!["g".into()]
            }
        );
        assert_eq!(
            (e[1].method.as_str(), e[1].expect),
            ("POST", Verdict::NotRouted)
        );
        assert_eq!(
            e[3].caller,
            Caller::Pod {
                namespace: "ns".into(),
                account: "sa".into()
            }
        );
        assert_eq!(e[4].caller, Caller::Anonymous);
        assert_eq!(e[4].origin.pos.line, 13);
    }

    #[test]
    fn errors_name_the_key_and_place_and_suggest() {
        assert_eq!(
            errors("- as: {usr: a}\n  request: GET https://h/\n  expect: alow\n"),
            [
                "[0].as.usr unknown key `usr`; did you mean `user`? 1:8",
                "[0].expect unknown verdict `alow`; did you mean `allow`? 3:11",
            ]
        );
        assert_eq!(
            errors("- as: anonymous\n  requets: GET https://h/\n  expect: deny\n"),
            [
                "[0].requets unknown key `requets`; did you mean `request`? 2:3",
                "[0] missing `request` 1:3",
            ]
        );
        assert_eq!(
            errors("- as: {serviceAccount: sa}\n  request: https://h/\n  expect: deny\n"),
            [
                "[0].as.serviceAccount expected NAMESPACE/NAME, got \"sa\" 1:24",
                "[0].request expected `METHOD URL` (as `GET https://host/path`), got \"https://h/\" 2:12",
            ]
        );
        assert_eq!(
            errors("as: x\n"),
            ["(root) expected a list of expectations (as, request, expect), got a map 1:1"]
        );
    }
}

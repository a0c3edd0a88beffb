//! The one error type of the library: a [`Diagnostic`] names what is wrong,
//! the dotted key path (when a value is at fault) and where the value was
//! set. Stages collect diagnostics instead of stopping at the first one, so
//! a user sees every problem of a run at once.
//!
//! This module formats diagnostics; it never decides whether something is
//! wrong.
//!
//! The format, one line per diagnostic (README.md, "Errors"):
//!
//! ```text
//! error[schema]: `deploykf_core.deploykf_istio_gateway.gateway.ports.https`: must be at most 65535, got the number 70000 --> my.yaml:5:16
//! ```
//!
//! severity and its [`Code`] (`crate::code`), the value's path in backticks (dotted keys quoted by
//! [`ValuePath`]'s Display: `` `a.labels["app.kubernetes.io/name"]` ``),
//! the message, and ` --> ` with where the value was set. Path and origin
//! are left out when there is none. One line, not STYLE.md's two, so that
//! every diagnostic survives `grep`, `sort` and a CI log line by line.

pub use crate::code::Code;
use crate::source::{Origin, SourceMap};
use crate::values::path::ValuePath;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    Notice,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Its stable code (of the severity's kind).
    pub code: Code,
    /// The value at fault, if any (`deploykf_core.x.y`).
    pub path: Option<ValuePath>,
    /// What is wrong and what was expected, one line.
    pub message: String,
    /// Where the value was set (or the input that failed).
    pub origin: Option<Origin>,
}

impl Diagnostic {
    /// A diagnostic of `code`, of that code's severity.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: code.severity(),
            code,
            path: None,
            message: message.into(),
            origin: None,
        }
    }

    /// An error; `code` is an error's (checked in debug builds).
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        debug_assert_eq!(code.severity(), Severity::Error, "{code}");
        Diagnostic::new(code, message)
    }

    /// A notice; `code` is a notice's (checked in debug builds).
    pub fn notice(code: Code, message: impl Into<String>) -> Self {
        debug_assert_eq!(code.severity(), Severity::Notice, "{code}");
        Diagnostic::new(code, message)
    }

    /// A warning; `code` is a warning's (checked in debug builds).
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        debug_assert_eq!(code.severity(), Severity::Warning, "{code}");
        Diagnostic::new(code, message)
    }

    pub fn at_path(mut self, path: ValuePath) -> Self {
        self.path = Some(path);
        self
    }

    pub fn at(mut self, origin: Option<Origin>) -> Self {
        self.origin = origin;
        self
    }

    /// One line: ``error[code]: `a.b.c`: message --> file:line:col``.
    pub fn display<'a>(&'a self, sources: &'a SourceMap) -> DiagnosticDisplay<'a> {
        DiagnosticDisplay {
            diag: self,
            sources,
        }
    }
}

pub struct DiagnosticDisplay<'a> {
    diag: &'a Diagnostic,
    sources: &'a SourceMap,
}

impl fmt::Display for DiagnosticDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.diag;
        let label = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Notice => "notice",
        };
        let mut line = format!("{label}[{}]: ", d.code);
        // The root is no value a user can look for; the message says what
        // is wrong with the whole input.
        if let Some(path) = d.path.as_ref().filter(|p| !p.is_root()) {
            line.push_str(&format!("`{path}`: "));
        }
        line.push_str(&d.message);
        if let Some(origin) = d.origin {
            line.push_str(&format!(" --> {}", self.sources.display(origin)));
        }
        // A message is one line by contract, and quotes what users typed
        // (values, file names): neither may break the line or talk to the
        // terminal.
        f.write_str(&escape_controls(&line))
    }
}

/// `text` fit for one line of a terminal: line breaks become spaces and
/// every other control character (ESC, BEL, backspace, tab, ...) its
/// escape (`\u{1b}`), so a file name or value quoted in a message can
/// neither span lines nor send the terminal escape sequences. Line and
/// paragraph separators, the BOM, non-characters and the bidirectional
/// and zero-width format characters (which reorder or hide what a reader
/// sees) are escaped too.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(unsafe_on_terminal) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_debug()),
            c if unsafe_on_terminal(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn unsafe_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fffe}'
                | '\u{ffff}'
        )
}

/// Every diagnostic of a failed stage.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// Sort by source (defaults first, then files in the order given), line,
    /// column; diagnostics with no position go last, in the order raised.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            let key = |d: &Diagnostic| (d.origin.is_none(), d.origin, d.severity);
            key(a).cmp(&key(b))
        });
        self.0.dedup();
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_the_path_in_backticks() {
        let mut sources = SourceMap::default();
        let file = sources.add("my.yaml", crate::source::SourceKind::File);
        let d = Diagnostic::error(Code::Schema, "expected a string,\ngot a map")
            .at_path(ValuePath::keys("a.labels").key("app.kubernetes.io/name"))
            .at(Some(Origin {
                source: file,
                pos: crate::source::Pos { line: 4, col: 9 },
            }));
        assert_eq!(
            d.display(&sources).to_string(),
            r#"error[schema]: `a.labels["app.kubernetes.io/name"]`: expected a string, got a map --> my.yaml:4:9"#
        );
        let root = Diagnostic::warning(Code::SectionIgnored, "ignored").at_path(ValuePath::root());
        assert_eq!(
            root.display(&sources).to_string(),
            "warning[section-ignored]: ignored"
        );
        let bare = Diagnostic::notice(Code::ArgocdRepoUnset, "set `x`");
        assert_eq!(
            bare.display(&sources).to_string(),
            "notice[argocd-repo-unset]: set `x`"
        );
    }

    #[test]
    fn control_characters_of_names_and_values_are_escaped() {
        let mut sources = SourceMap::default();
        let file = sources.add("a\x1b[31mred\x07.yaml", crate::source::SourceKind::File);
        let d = Diagnostic::error(Code::Input, "cannot read `x\ty\u{9b}z`").at(Some(Origin {
            source: file,
            pos: crate::source::Pos { line: 1, col: 2 },
        }));
        assert_eq!(
            d.display(&sources).to_string(),
            r"error[input]: cannot read `x\ty\u{9b}z` --> a\u{1b}[31mred\u{7}.yaml:1:2"
        );
        assert_eq!(escape_controls("plain é"), "plain é");
        // Line and paragraph separators break a line too (found by
        // tests/fuzz.rs in a `--set` value).
        assert_eq!(
            escape_controls("a\u{2028}b\u{2029}c"),
            r"a\u{2028}b\u{2029}c"
        );
    }
}

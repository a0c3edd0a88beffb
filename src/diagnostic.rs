//! The one error type of the library: a [`Diagnostic`] names what is wrong,
//! the dotted key path (when a value is at fault) and where the value was
//! set. Stages collect diagnostics instead of stopping at the first one, so
//! a user sees every problem of a run at once.
//!
//! This module formats diagnostics; it never decides whether something is
//! wrong.

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
    /// The value at fault, if any (`deploykf_core.x.y`).
    pub path: Option<ValuePath>,
    /// What is wrong and what was expected, one line.
    pub message: String,
    /// Where the value was set (or the input that failed).
    pub origin: Option<Origin>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            path: None,
            message: message.into(),
            origin: None,
        }
    }

    pub fn notice(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Notice,
            ..Diagnostic::error(message)
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn at_path(mut self, path: ValuePath) -> Self {
        self.path = Some(path);
        self
    }

    pub fn at(mut self, origin: Option<Origin>) -> Self {
        self.origin = origin;
        self
    }

    /// One line: `error: a.b.c: message --> file:line:col`.
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
        write!(f, "{label}: ")?;
        if let Some(path) = &d.path {
            write!(f, "{path}: ")?;
        }
        // A message is one line by contract; make sure a value quoted in it
        // cannot break that.
        let message = d.message.replace(['\n', '\r'], " ");
        f.write_str(&message)?;
        if let Some(origin) = d.origin {
            write!(f, " --> {}", self.sources.display(origin))?;
        }
        Ok(())
    }
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

//! YAML in and out. `load` turns text into position-carrying [`Node`]s
//! (every value and key keeps its line and column, and plain scalars keep
//! their source text for YAML-1.1 hints); `emit` turns JSON values into
//! block YAML whose scalars cannot be misread by a YAML 1.1 or 1.2 reader.
//!
//! Both directions live here so that meshgen has exactly one idea of what
//! a YAML scalar means.

pub mod block;
pub mod emit;
pub mod load;
mod measure;

pub use load::{load_documents, load_json_documents, LoadError, Node, NodeKind};

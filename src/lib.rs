pub mod diagnostic;
pub mod source;
pub mod values;
pub mod yaml;

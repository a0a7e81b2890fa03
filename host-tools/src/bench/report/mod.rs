//! The bench's results: the figure model ([`model`]: what was measured,
//! serialized as the `--json` result) and its rendering for people
//! ([`text`]: header, table, Markdown), and the comparison of a run with a
//! reference run ([`compare`]). The chart is [`crate::bench::svg`].

pub mod compare;
pub mod model;
pub mod text;

#[cfg(test)]
pub(crate) mod fixture;

pub use model::{Aggregate, Better, Figure, Report, TargetReport, Value};
pub use text::{format_bytes, format_value, markdown_from_json};

//! `socklab report FILE.json`: the Markdown table of a committed file of
//! figures (`socklab bench --json`, `scripts/image-sizes`, `scripts/page-cost`),
//! the table the docs show between `<!-- socklab report FILE.json -->` and
//! `<!-- end -->`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use socklab_host::figures::markdown_from_json;

/// `socklab report`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A JSON file of figures: a `socklab bench --json` result, or what
    /// `scripts/image-sizes` or `scripts/page-cost` printed.
    #[arg(value_name = "FILE.json")]
    pub file: PathBuf,
}

/// Prints the table of `args.file`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let path = &args.file;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let table = markdown_from_json(&json)
        .map_err(anyhow::Error::msg)
        .with_context(|| path.display().to_string())?;
    print!("{table}");
    super::ok()
}

//! The bare-metal images as files: where the full and the minimal image of a
//! board are built, and their text, data and bss as `size` gives them.

use std::path::PathBuf;
use std::process::Command;

use socklab_host::launch::artifacts::source_root;
use socklab_host::launch::Machine;

/// The cargo profile (and folder under `target/<target>/`) of the minimal image,
/// built by `scripts/fw-cargo --board <board> build --profile minimal
/// --no-default-features --features minimal`.
pub const MINIMAL_PROFILE: &str = "minimal";

/// Which image of a board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Every service: `scripts/fw-cargo --board <board> build --release`.
    Full,
    /// The lab, the management port and TCP echo, with the small pool.
    Minimal,
}

impl Variant {
    /// The command that builds this image of `machine`, as a user types it.
    pub fn build_command(self, machine: Machine) -> String {
        let board = &machine.spec().board;
        match self {
            Variant::Full => format!("scripts/fw-cargo --board {board} build --release"),
            Variant::Minimal => format!(
                "scripts/fw-cargo --board {board} build --profile {MINIMAL_PROFILE} \
                 --no-default-features --features minimal"
            ),
        }
    }
}

/// Where this image of `machine` is built (an absolute path).
pub fn image_path(machine: Machine, variant: Variant) -> PathBuf {
    let spec = machine.spec();
    let profile = match variant {
        Variant::Full => "release",
        Variant::Minimal => MINIMAL_PROFILE,
    };
    source_root()
        .join(spec.crate_dir())
        .join("target")
        .join(&spec.target)
        .join(profile)
        .join(&spec.elf)
}

/// An image's sections as `size` (Berkeley format) sums them, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSize {
    /// Code and read-only data: what the image takes in flash, less `data`'s
    /// initial values.
    pub text: u64,
    /// Initialised statics: in flash and in RAM.
    pub data: u64,
    /// Zeroed statics: in RAM.
    pub bss: u64,
}

/// Reads this image's sizes with `size`; an error says how to build a missing
/// image or to install binutils.
pub fn image_size(machine: Machine, variant: Variant) -> Result<ImageSize, String> {
    let path = image_path(machine, variant);
    if !path.is_file() {
        return Err(format!(
            "{} is missing: build it with `{}` (scripts/test does)",
            path.display(),
            variant.build_command(machine)
        ));
    }
    let out = Command::new("size")
        .arg(&path)
        .output()
        .map_err(|e| format!("cannot run `size` (apt install binutils): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "size {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse_size(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `size`'s Berkeley output: a header line, then `text data bss dec hex
/// filename`.
pub fn parse_size(output: &str) -> Result<ImageSize, String> {
    let line = output
        .lines()
        .nth(1)
        .ok_or_else(|| format!("no figures in size's output: {output:?}"))?;
    let mut numbers = line.split_whitespace().map(str::parse::<u64>);
    let mut next = |what| match numbers.next() {
        Some(Ok(n)) => Ok(n),
        _ => Err(format!("no {what} in size's line {line:?}")),
    };
    Ok(ImageSize {
        text: next("text")?,
        data: next("data")?,
        bss: next("bss")?,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn berkeley_output_parses() {
        let out = "   text\t   data\t    bss\t    dec\t    hex\tfilename\n 184084\t  31904\t 469096\t 685084\t  a741c\tsocklab-mps2\n";
        assert_eq!(
            parse_size(out),
            Ok(ImageSize {
                text: 184_084,
                data: 31_904,
                bss: 469_096
            })
        );
        assert!(parse_size("text data bss\n").is_err());
        assert!(parse_size("text\nx y z\n").is_err());
    }
}

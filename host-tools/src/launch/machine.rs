//! The QEMU machines socklab boots, each described by its board's table,
//! `firmware/boards/<board>/board.toml`: the one place for a bare-metal
//! board's target triple, QEMU program and package, machine and NIC options
//! and image name, read here (compiled in) and by the scripts
//! (`scripts/board`).

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Deserialize;

/// A QEMU machine with a socklab board crate. Adding a machine: a variant
/// here and its table in [`Machine::table`], the board crate with its
/// `board.toml`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Machine {
    /// Cortex-M3 with a LAN9118 (`firmware/boards/mps2-an385`).
    #[default]
    #[value(name = "mps2-an385")]
    Mps2An385,
    /// riscv32imac with virtio-net (`firmware/boards/riscv-virt`).
    #[value(name = "riscv-virt")]
    RiscvVirt,
}

impl Machine {
    /// Every machine, for help texts and tests.
    pub const ALL: &'static [Machine] = &[Machine::Mps2An385, Machine::RiscvVirt];

    /// The text of the board's table, compiled in.
    pub fn table(self) -> &'static str {
        match self {
            Machine::Mps2An385 => include_str!("../../../firmware/boards/mps2-an385/board.toml"),
            Machine::RiscvVirt => include_str!("../../../firmware/boards/riscv-virt/board.toml"),
        }
    }

    /// What QEMU needs to know about it: its table, read once.
    pub fn spec(self) -> &'static MachineSpec {
        static SPECS: [OnceLock<MachineSpec>; Machine::ALL.len()] =
            [const { OnceLock::new() }; Machine::ALL.len()];
        SPECS[self as usize].get_or_init(|| {
            toml::from_str(self.table()).unwrap_or_else(|error| {
                // Compiled in and checked by this module's tests: a broken
                // table is a bug of this build, not an input error.
                panic!("firmware/boards/*/board.toml of {self:?} does not parse: {error}")
            })
        })
    }
}

/// A machine's facts, as its `board.toml` gives them: how QEMU runs it and
/// where its image comes from. A list is words split at spaces.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineSpec {
    /// The board's name, as `INFO` gives it, and its folder under
    /// `firmware/boards`.
    pub board: String,
    /// Rust's target triple.
    pub target: String,
    /// The linkers `scripts/fw-cargo` tries with Debian's rustc.
    pub linkers: String,
    /// The QEMU program.
    pub qemu: String,
    /// The Debian package that has it (for the error message).
    pub qemu_package: String,
    /// `-machine ... -cpu ...` and whatever else the machine needs.
    pub machine: String,
    /// The NIC; `{netdev}` stands for its QEMU netdev, `{mac}` for the device's MAC.
    pub nic: String,
    /// The most network interfaces the image serves, one NIC each.
    pub networks: String,
    /// The image's file name: its `argv[0]` through semihosting.
    pub elf: String,
    /// Environment variable naming a prebuilt image to boot instead.
    pub image_env: String,
    /// The source folders the image is built from (staleness check).
    pub sources: String,
    /// The board in two sentences, for a newcomer (`socklab demo`).
    pub about: String,
}

impl MachineSpec {
    /// QEMU's arguments for the machine.
    pub fn machine_args(&self) -> impl Iterator<Item = &str> {
        self.machine.split_whitespace()
    }

    /// QEMU's arguments for the NIC on `netdev`, with address `mac`.
    pub fn nic_args(&self, netdev: &str, mac: &str) -> Vec<String> {
        self.nic
            .split_whitespace()
            .map(|word| word.replace("{netdev}", netdev).replace("{mac}", mac))
            .collect()
    }

    /// The most network interfaces the image serves.
    pub fn max_networks(&self) -> usize {
        self.networks.parse().unwrap_or(1)
    }

    /// The board crate's folder, from the source root.
    pub fn crate_dir(&self) -> PathBuf {
        PathBuf::from("firmware/boards").join(&self.board)
    }

    /// Where the build puts the image, from the source root.
    pub fn image_path(&self) -> PathBuf {
        self.crate_dir()
            .join("target")
            .join(&self.target)
            .join("release")
            .join(&self.elf)
    }

    /// The command that builds the image, from the source root.
    pub fn build(&self) -> [&str; 5] {
        [
            "scripts/fw-cargo",
            "--board",
            &self.board,
            "build",
            "--release",
        ]
    }

    /// The source folders the image is built from, from the source root.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.sources.split_whitespace()
    }
}

#[cfg(test)]
mod test {
    use std::collections::BTreeSet;
    use std::fs;
    use std::process::Command;

    use super::*;
    use crate::launch::artifacts::source_root;

    #[test]
    fn every_table_parses_and_names_its_folder() {
        for &machine in Machine::ALL {
            let spec = machine.spec();
            let value = clap::ValueEnum::to_possible_value(&machine).expect("a value");
            assert_eq!(spec.board, value.get_name());
            assert!(source_root()
                .join(spec.crate_dir())
                .join("Cargo.toml")
                .is_file());
            for source in spec.sources() {
                assert!(source_root().join(source).is_dir(), "{source}");
            }
        }
    }

    #[test]
    fn every_board_with_a_table_is_a_machine() {
        let tables: BTreeSet<String> = fs::read_dir(source_root().join("firmware/boards"))
            .expect("firmware/boards")
            .filter_map(Result::ok)
            .filter(|entry| entry.path().join("board.toml").is_file())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        let machines: BTreeSet<String> = Machine::ALL
            .iter()
            .map(|m| m.spec().board.clone())
            .collect();
        assert_eq!(tables, machines);
    }

    /// The scripts read the tables with `scripts/board` (sed): it must read
    /// every key as the `toml` crate does.
    #[test]
    fn the_scripts_read_the_tables_as_socklab_does() {
        let script = source_root().join("scripts/board");
        let listed = Command::new(&script).output().expect("scripts/board runs");
        assert!(listed.status.success());
        let listed = String::from_utf8(listed.stdout).expect("UTF-8");
        for &machine in Machine::ALL {
            let board = &machine.spec().board;
            assert!(listed.lines().any(|line| line == board), "{listed}");
            let table: toml::Table = toml::from_str(machine.table()).expect("a table");
            for (key, value) in &table {
                let value = value.as_str().expect("every value is a string");
                let read = Command::new(&script)
                    .args([board, key])
                    .output()
                    .expect("scripts/board runs");
                assert!(read.status.success(), "{board} {key}");
                assert_eq!(String::from_utf8_lossy(&read.stdout), format!("{value}\n"));
            }
        }
    }

    /// Cargo reads the target triple from the board's `.cargo/config.toml`
    /// only: its copy must be the table's, and its runner boots the board
    /// with `scripts/qemu-run`.
    #[test]
    fn cargo_builds_for_the_tables_target() {
        for &machine in Machine::ALL {
            let spec = machine.spec();
            let path = source_root()
                .join(spec.crate_dir())
                .join(".cargo/config.toml");
            let text = fs::read_to_string(&path).expect("the board's cargo config");
            let config: toml::Table = toml::from_str(&text).expect("TOML");
            assert_eq!(
                config["build"]["target"].as_str(),
                Some(spec.target.as_str()),
                "{}",
                path.display()
            );
            let runners: Vec<&str> = config["target"]
                .as_table()
                .expect("[target.…] sections")
                .values()
                .filter_map(|section| section.get("runner")?.as_str())
                .collect();
            let runner = format!("../../../scripts/qemu-run {}", spec.board);
            assert_eq!(runners, [runner.as_str()], "{}", path.display());
        }
    }
}

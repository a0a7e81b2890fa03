//! What the launchers run: the `socklab-tap` binary, the QEMU programs and
//! the firmware images, found next to this program or in its source tree,
//! or built there when missing (or when asked).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::launch::machine::Machine;
use crate::launch::LaunchError;

/// Name of the linux-tap board's binary.
pub const TAP_BIN: &str = "socklab-tap";
/// Environment variable naming the `socklab-tap` binary to run.
pub const TAP_BIN_ENV: &str = "SOCKLAB_TAP_BIN";

/// Where a firmware image comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Image {
    /// The machine's environment variable if set, else the image built in
    /// this source tree, built first only when it is missing (the CLI's
    /// choice: starting a device never rewrites the source tree's build).
    Built,
    /// The machine's environment variable if set, else run the build (cargo
    /// does nothing if the image is up to date), once per process: the
    /// tests' choice, so they never boot yesterday's firmware.
    #[default]
    Rebuilt,
    /// This file.
    Path(PathBuf),
}

/// The source tree this crate was built from (the workspace root).
pub fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Finds `socklab-tap`: `$SOCKLAB_TAP_BIN`, else next to the running
/// executable or in its parent directory (test binaries live in
/// `target/<profile>/deps`), else builds it with
/// `cargo build --release -p socklab-tap` in this source tree (progress on
/// stderr).
pub fn find_tap_binary() -> Result<PathBuf, LaunchError> {
    if let Some(path) = std::env::var_os(TAP_BIN_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(LaunchError::Binary(format!(
                "{TAP_BIN_ENV}={} is not a file",
                path.display()
            )))
        };
    }
    if let Some(found) = built_tap_binary() {
        warn_if_stale(
            &found,
            ["firmware/app/src", "firmware/boards/linux-tap/src"],
        );
        return Ok(found);
    }
    build_tap_binary()
}

/// `socklab-tap` next to the running executable or in its parent directory.
pub fn built_tap_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut candidates = exe.ancestors().skip(1).take(2).map(|dir| dir.join(TAP_BIN));
    candidates.find(|candidate| candidate.is_file())
}

/// Warns on stderr when `built` is older than the `sources` (folders from
/// the source root) it is made from: it would run yesterday's firmware.
fn warn_if_stale<'a>(built: &Path, sources: impl IntoIterator<Item = &'a str>) {
    let Ok(built_at) = fs::metadata(built).and_then(|m| m.modified()) else {
        return;
    };
    let root = source_root();
    let newest = sources
        .into_iter()
        .filter_map(|dir| newest_modification(&root.join(dir), 4))
        .max();
    if newest.is_some_and(|newest| newest > built_at) {
        eprintln!(
            "socklab: warning: {} is older than its sources; rebuild it",
            built.display()
        );
    }
}

/// The latest modification time of the files under `path`, `depth` levels deep.
fn newest_modification(path: &Path, depth: usize) -> Option<std::time::SystemTime> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    if depth == 0 {
        return None;
    }
    fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| newest_modification(&entry.path(), depth - 1))
        .max()
}

/// Builds `socklab-tap` (release) from this source tree; returns its path.
pub fn build_tap_binary() -> Result<PathBuf, LaunchError> {
    let root = source_root();
    if !root.join("Cargo.toml").is_file() {
        return Err(LaunchError::Binary(format!(
            "not next to this program, and the source tree {} is gone; set {TAP_BIN_ENV}",
            root.display()
        )));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("socklab: building {TAP_BIN} (cargo build --release -p {TAP_BIN}) ...");
    let output = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            TAP_BIN,
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| {
            LaunchError::Binary(format!(
                "running cargo failed ({e}); is cargo on PATH? or set {TAP_BIN_ENV}"
            ))
        })?;
    if !output.status.success() {
        return Err(LaunchError::Binary(format!(
            "`cargo build --release -p {TAP_BIN}` failed ({}); see the errors above",
            output.status
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == TAP_BIN)
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| LaunchError::Binary(format!("cargo built no {TAP_BIN} executable")))
}

/// Fails early, with the fix, when the machine's QEMU is not installed.
pub fn find_qemu(machine: Machine) -> Result<PathBuf, LaunchError> {
    let spec = machine.spec();
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(&spec.qemu))
        .find(|candidate| candidate.is_file())
        .ok_or(LaunchError::NoQemu {
            program: &spec.qemu,
            package: &spec.qemu_package,
        })
}

/// The machine's image, from where `image` says.
pub fn find_image(machine: Machine, image: &Image) -> Result<PathBuf, LaunchError> {
    let spec = machine.spec();
    let path = match image {
        Image::Path(path) => path.clone(),
        _ => match std::env::var_os(&spec.image_env) {
            Some(path) => {
                let path = PathBuf::from(path);
                if !path.is_file() {
                    return Err(LaunchError::Image(format!(
                        "{}={} is not a file",
                        spec.image_env,
                        path.display()
                    )));
                }
                path
            }
            None => {
                let built = source_root().join(spec.image_path());
                if *image == Image::Built && built.is_file() {
                    warn_if_stale(&built, spec.sources());
                    built
                } else {
                    build_image_once(machine)?
                }
            }
        },
    };
    if !path.is_file() {
        return Err(LaunchError::Image(format!(
            "{} is not a file",
            path.display()
        )));
    }
    Ok(path)
}

/// [`build_image`], at most once per machine and process.
fn build_image_once(machine: Machine) -> Result<PathBuf, LaunchError> {
    static BUILT: OnceLock<Mutex<HashMap<Machine, Result<PathBuf, String>>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    built
        .entry(machine)
        .or_insert_with(|| build_image(machine))
        .clone()
        .map_err(LaunchError::Image)
}

/// Runs the machine's build (`scripts/fw-cargo --board mps2-an385 build
/// --release`) in this source tree; returns the image's path.
pub fn build_image(machine: Machine) -> Result<PathBuf, String> {
    let spec = machine.spec();
    let root = source_root();
    let build = spec.build();
    let (program, args) = build.split_first().expect("a build command");
    let script = root.join(program);
    let elf = root.join(spec.image_path());
    let shown = build.join(" ");
    if !script.is_file() {
        return Err(format!(
            "the source tree {} is gone, so it cannot be built; set {}",
            root.display(),
            spec.image_env
        ));
    }
    eprintln!("socklab: building the {} image ({shown}) ...", spec.board);
    let status = Command::new(&script)
        .args(args)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !status.success() {
        return Err(format!(
            "`{shown}` failed ({status}); see the errors above (scripts/setup installs the \
             toolchain), or set {} to a prebuilt image",
            spec.image_env
        ));
    }
    if !elf.is_file() {
        return Err(format!("the build made no {}", elf.display()));
    }
    Ok(elf)
}

//! The `ip` runner (iproute2), a leaf that namespaces, TAPs and the clean-up
//! safety net all use, and the error it reports.

use std::ffi::OsStr;
use std::io;
use std::process::Command;

/// Why a namespace or TAP operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// `ip` could not be started.
    #[error("cannot run `ip` ({0}): install iproute2 (`apt-get install iproute2`)")]
    NoIp(io::Error),
    /// An `ip` command failed.
    #[error("`{command}` failed: {stderr}{hint}")]
    Command {
        /// The command line.
        command: String,
        /// What `ip` said.
        stderr: String,
        /// What to try.
        hint: &'static str,
    },
    /// The namespace does not exist.
    #[error("network namespace {0:?} does not exist (see `ip netns list`)")]
    NotFound(String),
    /// The TAP does not exist.
    #[error("there is no TAP {name}{place}: create it with `sudo socklab tap up --name {name}`, or leave out the TAP name to get a fresh one")]
    NoTap {
        /// The TAP's name.
        name: String,
        /// ` in namespace NS`, or empty.
        place: String,
    },
    /// Entering the namespace failed.
    #[error("cannot enter network namespace {name:?}: {error}{}", if error.kind() == io::ErrorKind::PermissionDenied { " (this needs root)" } else { "" })]
    Enter {
        /// The namespace.
        name: String,
        /// The kernel's error.
        error: io::Error,
    },
}

impl From<NetnsError> for io::Error {
    fn from(error: NetnsError) -> Self {
        match error {
            NetnsError::Enter { error, .. } => error,
            other => io::Error::other(other),
        }
    }
}

/// Runs `ip ARGS...`, returning its stdout.
pub fn ip<I, S>(args: I) -> Result<String, NetnsError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new("ip");
    command.args(args);
    let shown = format!("{command:?}").replace('"', "");
    let output = command.output().map_err(NetnsError::NoIp)?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    let hint = if stderr.contains("Operation not permitted") || stderr.contains("Permission denied")
    {
        " — this needs root: run it with sudo"
    } else if stderr.contains("File exists") || stderr.contains("Device or resource busy") {
        " — it already exists; pick another name or delete it first"
    } else {
        ""
    };
    Err(NetnsError::Command {
        command: shown,
        stderr,
        hint,
    })
}

/// True when this process runs as root (needed for namespaces and TAPs).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

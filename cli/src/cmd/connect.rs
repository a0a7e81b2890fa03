//! `socklab connect ADDR`: an interactive line client, like `nc`. Lines typed
//! on stdin go to the device; every line the device sends (`FROM` lines
//! included) is printed as it arrives.
//!
//! In a terminal the typed line is edited with rustyline, and device lines
//! are printed above it (rustyline's external printer), so a `FROM` line
//! arriving mid-word never splices into what is being typed. From a pipe or
//! a file, stdin is copied line by line, as `nc` would.

use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use rustyline::error::ReadlineError;
use rustyline::ExternalPrinter;

use socklab_app::protocol;
use socklab_host::client::ClientError;

use super::Global;

/// Arguments of `socklab connect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The device's address (the lab, port 6666, unless a port is given).
    #[arg(value_parser = super::parse_addr, help = super::ADDR_HELP)]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub wait: super::Wait,
}

/// Runs `socklab connect`: ends when the device closes, after `BYE`, or
/// shortly after stdin ends.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let addr = args.addr;
    let timeout = global.timeout();
    let stream = global
        .host_net()
        .run(|| TcpStream::connect_timeout(&addr, timeout))?
        .map_err(|e| {
            super::explain(
                addr,
                ClientError::from_io(addr, e, timeout, "connecting"),
                "cannot connect to the device",
            )
        })?;
    let _ = stream.set_nodelay(true);
    if io::stdin().is_terminal() && io::stdout().is_terminal() {
        return interactive(stream, addr, timeout);
    }
    eprintln!(
        "socklab: connected to {addr} from {}; type lines, Ctrl-D to end",
        stream.local_addr()?
    );

    // stdin → device, on a thread of its own so device lines print at once.
    let mut writer = stream.try_clone()?;
    thread::spawn(move || {
        let stdin = io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if writer.write_all(format!("{line}\n").as_bytes()).is_err() {
                return;
            }
        }
        // End of input: say so, and give the device `timeout` to finish.
        let _ = writer.shutdown(Shutdown::Write);
        thread::sleep(timeout);
        let _ = writer.shutdown(Shutdown::Both);
    });

    read_device(&stream, addr, timeout)
}

/// In a terminal: the line being typed is rustyline's; device lines are
/// printed above it as they arrive. Ends on Ctrl-D or Ctrl-C, or on the
/// next Enter after the device closed.
fn interactive(
    stream: TcpStream,
    addr: SocketAddr,
    timeout: std::time::Duration,
) -> anyhow::Result<ExitCode> {
    let mut editor = rustyline::DefaultEditor::new()?;
    let mut printer = editor.create_external_printer()?;
    eprintln!(
        "socklab: connected to {addr} from {}; type lines, Ctrl-D to end",
        stream.local_addr()?
    );
    let closed = Arc::new(AtomicBool::new(false));
    let reader_closed = Arc::clone(&closed);
    let reader = stream.try_clone()?;
    thread::spawn(move || {
        let mut lines = BufReader::new(&reader);
        let mut line = Vec::new();
        let mut said_bye = false;
        loop {
            line.clear();
            match lines.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    said_bye = protocol::is_bye(text.trim_end());
                    if printer.print(text).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let error = ClientError::from_io(addr, e, timeout, "reading");
                    let _ = printer.print(format!("socklab: {error}\n"));
                    break;
                }
            }
        }
        reader_closed.store(true, Ordering::SeqCst);
        let why = if said_bye {
            ""
        } else {
            "the device closed it; "
        };
        let _ = printer.print(format!(
            "socklab: the connection to {addr} is closed ({why}Enter to leave)\n"
        ));
    });
    let mut writer = &stream;
    loop {
        let line = match editor.readline("") {
            Ok(line) => line,
            Err(ReadlineError::Eof | ReadlineError::Interrupted) => break,
            Err(e) => return Err(e.into()),
        };
        if closed.load(Ordering::SeqCst) {
            break;
        }
        let _ = editor.add_history_entry(line.as_str());
        if let Err(e) = writer.write_all(format!("{line}\n").as_bytes()) {
            let error = ClientError::from_io(addr, e, timeout, "sending");
            eprintln!("socklab: {error}");
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    super::ok()
}

/// Prints the device's lines until it closes.
fn read_device(
    stream: &TcpStream,
    addr: SocketAddr,
    timeout: std::time::Duration,
) -> anyhow::Result<ExitCode> {
    let mut reader = BufReader::new(stream);
    let mut stdout = io::stdout();
    let mut line = Vec::new();
    let mut said_bye = false;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                if stdout
                    .write_all(&line)
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    // Nobody reads our output any more (`socklab connect ... | head -1`):
                    // the conversation is over.
                    return super::ok();
                }
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end();
                said_bye = protocol::is_bye(text);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ClientError::from_io(addr, e, timeout, "reading").into()),
        }
    }
    if !said_bye {
        eprintln!("socklab: the connection to {addr} is closed");
    }
    super::ok()
}

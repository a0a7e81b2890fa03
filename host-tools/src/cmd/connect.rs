//! `socklab connect ADDR`: an interactive line client, like `nc`. Lines typed
//! on stdin go to the device; every line the device sends (`FROM` lines
//! included) is printed as it arrives.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::thread;

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

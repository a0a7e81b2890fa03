//! A real headless Chromium for the page tests: Debian's `chromium`, started
//! by Debian's `chromedriver` (which the test starts on a free port of
//! 127.0.0.1 in the network the browser must see) and driven over WebDriver
//! with fantoccini.
//!
//! Chromium reaches the device only from the device's side of the network:
//! on a TAP that is the device's private namespace, where chromedriver (and
//! so Chromium, which chromedriver talks to over 127.0.0.1) must run too. The
//! WebDriver client's sockets must be opened there as well, so a [`Browser`]
//! runs its client on a thread of its own inside that namespace and the test
//! sends it commands; the test's own thread never changes namespace.
//!
//! Dropping a [`Browser`] ends the WebDriver session (Chromium quits), then
//! kills chromedriver's process group (chromedriver and any Chromium process
//! still in it) by its ID and removes the fresh profile directory.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use socklab_host::netns::HostNet;

/// The browser Debian installs (its launcher script).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's WebDriver server for it.
pub const CHROMEDRIVER: &str = "chromedriver";
/// Chromium's flags: headless, as root, no GPU, and nothing fetched from
/// anywhere but the device (no background or component updates, no first-run
/// pages). A fresh `--user-data-dir` is added per browser.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
];
/// How long chromedriver may take to listen.
const DRIVER_START: Duration = Duration::from_secs(15);
/// How long one WebDriver command may take (starting Chromium included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// One command for the browser's thread.
enum Order {
    Goto(String),
    Execute(String),
    Screenshot,
    WindowSize(u32, u32),
}

/// What the browser's thread answers.
type Answer = Result<Value, String>;

/// A headless Chromium under WebDriver, in one network namespace.
pub struct Browser {
    commands: Option<mpsc::Sender<(Order, mpsc::Sender<Answer>)>>,
    thread: Option<JoinHandle<()>>,
}

impl Browser {
    /// Starts chromedriver and a Chromium session in `net` (the caller's own
    /// namespace, or a device's private one).
    pub fn start(net: &HostNet) -> Browser {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (commands, inbox) = mpsc::channel();
        let net = net.clone();
        let shown = net.to_string();
        let thread = std::thread::Builder::new()
            .name("browser".into())
            .spawn(move || {
                let entered = net.run(|| serve(&net, ready_tx.clone(), inbox));
                if let Err(e) = entered {
                    let _ = ready_tx.send(Err(format!("enter {net}: {e}")));
                }
            })
            .expect("spawn the browser thread");
        match ready_rx.recv_timeout(COMMAND_TIMEOUT + DRIVER_START) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("start Chromium in {shown}: {e}"),
            Err(_) => panic!("start Chromium in {shown}: no answer within {COMMAND_TIMEOUT:?}"),
        }
        Browser {
            commands: Some(commands),
            thread: Some(thread),
        }
    }

    fn ask(&self, command: Order) -> Value {
        let what = match &command {
            Order::Goto(url) => format!("open {url}"),
            Order::Execute(script) => format!("run {script}"),
            Order::Screenshot => "take a screenshot".into(),
            Order::WindowSize(w, h) => format!("resize the window to {w}x{h}"),
        };
        let (answer_tx, answer_rx) = mpsc::channel();
        self.commands
            .as_ref()
            .expect("a running browser")
            .send((command, answer_tx))
            .expect("the browser thread is running");
        match answer_rx.recv_timeout(COMMAND_TIMEOUT) {
            Ok(Ok(value)) => value,
            Ok(Err(e)) => panic!("browser: {what}: {e}"),
            Err(_) => panic!("browser: {what}: no answer within {COMMAND_TIMEOUT:?}"),
        }
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.ask(Order::Goto(url.to_owned()));
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub fn eval(&self, script: &str) -> Value {
        self.ask(Order::Execute(script.to_owned()))
    }

    /// Sets the window (the page's viewport in headless mode) to `width` x `height`.
    pub fn window_size(&self, width: u32, height: u32) {
        self.ask(Order::WindowSize(width, height));
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let value = self.ask(Order::Screenshot);
        serde_json::from_value(value).expect("PNG bytes")
    }

    /// Re-runs `script` every 50 ms until `check` accepts its value (and
    /// returns what `check` returned) or `limit` passes; then panics with the
    /// last value and `what`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        script: &str,
        mut check: impl FnMut(&Value) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.eval(script);
            if let Some(found) = check(&value) {
                return found;
            }
            if Instant::now() >= deadline {
                panic!("the page did not show {what} within {limit:?}; last seen: {value:#}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing the channel ends the session and the thread.
        drop(self.commands.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// chromedriver, in its own process group: killed with everything it started.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts chromedriver on a free port of 127.0.0.1 in `net`; the calling
    /// thread must be in `net`.
    fn start(net: &HostNet) -> Result<Driver, String> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("find a free port on 127.0.0.1: {e}"))?
            .port();
        let mut command = match net.netns_name() {
            Some(name) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", name, CHROMEDRIVER]);
                c
            }
            None => Command::new(CHROMEDRIVER),
        };
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = command.spawn().map_err(|e| {
            format!("run {CHROMEDRIVER} (apt packages chromium and chromium-driver): {e}")
        })?;
        // Its stdout says when it listens; read it on a thread so a silent
        // driver cannot hang the test.
        let stdout = child.stdout.take().expect("piped stdout");
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut driver = Driver { child, port };
        let deadline = Instant::now() + DRIVER_START;
        let mut said = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match line_rx.recv_timeout(left) {
                Ok(line) if line.contains("started successfully") => break,
                Ok(line) => said.push(line),
                Err(_) => {
                    let status = driver.child.try_wait().ok().flatten();
                    return Err(format!(
                        "{CHROMEDRIVER} did not start within {DRIVER_START:?} (exit: {status:?}); it said: {}",
                        said.join(" | ")
                    ));
                }
            }
        }
        // Bounded probe: it listens now.
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, driver.port));
        TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map_err(|e| format!("{CHROMEDRIVER} on {addr}: {e}"))?;
        Ok(driver)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group chromedriver leads (`process_group(0)`): it and every
        // Chromium process it started, nothing else.
        let group = self.child.id() as libc::pid_t;
        // SAFETY: killpg takes plain integers and touches no memory of ours.
        unsafe { libc::killpg(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// The browser thread: starts chromedriver and a session, answers commands
/// until the channel closes, then ends the session.
fn serve(
    net: &HostNet,
    ready: mpsc::Sender<Result<(), String>>,
    inbox: mpsc::Receiver<(Order, mpsc::Sender<Answer>)>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(format!("a tokio runtime: {e}")));
            return;
        }
    };
    let profile = match tempfile::Builder::new()
        .prefix("socklab-chromium-")
        .tempdir()
    {
        Ok(dir) => dir,
        Err(e) => {
            let _ = ready.send(Err(format!("a profile directory: {e}")));
            return;
        }
    };
    let driver = match Driver::start(net) {
        Ok(driver) => driver,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let client = runtime.block_on(connect(driver.port, profile.path().into()));
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    while let Ok((command, answer)) = inbox.recv() {
        let result = runtime.block_on(run(&client, command));
        let _ = answer.send(result);
    }
    let _ = runtime.block_on(async { tokio::time::timeout(COMMAND_TIMEOUT, client.close()).await });
    drop(driver);
    drop(profile);
}

async fn connect(port: u16, profile: PathBuf) -> Result<Client, String> {
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let capabilities = json!({
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("an object")
    };
    let connecting = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await;
    connecting.map_err(|e| format!("start a Chromium session: {e}"))
}

async fn run(client: &Client, command: Order) -> Answer {
    let done = tokio::time::timeout(COMMAND_TIMEOUT, async {
        match command {
            Order::Goto(url) => client.goto(&url).await.map(|()| Value::Null),
            Order::Execute(script) => client.execute(&script, Vec::new()).await,
            Order::Screenshot => client.screenshot().await.map(|png| json!(png)),
            Order::WindowSize(w, h) => client.set_window_size(w, h).await.map(|()| Value::Null),
        }
    })
    .await;
    match done {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {COMMAND_TIMEOUT:?}")),
    }
}

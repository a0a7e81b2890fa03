//! A real headless Chromium for the page tests: Debian's `chromium`, started
//! by Debian's `chromedriver` (which the test starts on a free port of
//! 127.0.0.1 in the network the browser must see) and driven over W3C
//! WebDriver: JSON over HTTP/1.1, with the host library's small HTTP client
//! ([`socklab_host::http`]).
//!
//! Chromium reaches the device only from the device's side of the network:
//! on a TAP that is the device's private namespace, where chromedriver (and
//! so Chromium, which chromedriver talks to over 127.0.0.1) must run too.
//! The WebDriver requests go to chromedriver from inside that namespace
//! ([`HostNet::connect`]); the test's own thread never changes namespace.
//!
//! Dropping a [`Browser`] ends the WebDriver session (Chromium quits), then
//! kills chromedriver's process group (chromedriver and any Chromium process
//! still in it) by its ID and removes the fresh profile directory.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use socklab_host::http::Connection;
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

/// A headless Chromium under WebDriver, in one network namespace.
pub struct Browser {
    /// The session's path on chromedriver: `/session/ID`.
    session: String,
    driver: Driver,
    /// Chromium's fresh profile, removed on drop (after the driver).
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a Chromium session in `net` (the caller's own
    /// namespace, or a device's private one).
    pub fn start(net: &HostNet) -> Browser {
        Self::try_start(net).unwrap_or_else(|e| panic!("start Chromium in {net}: {e}"))
    }

    fn try_start(net: &HostNet) -> Result<Browser, String> {
        let profile = tempfile::Builder::new()
            .prefix("socklab-chromium-")
            .tempdir()
            .map_err(|e| format!("a profile directory: {e}"))?;
        let driver = Driver::start(net)?;
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            } },
        });
        let value = driver
            .command("POST", "/session", Some(&capabilities))
            .map_err(|e| format!("start a Chromium session: {e}"))?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| format!("start a Chromium session: no session ID in {value}"))?;
        Ok(Browser {
            session: format!("/session/{id}"),
            driver,
            _profile: profile,
        })
    }

    /// Sends one command of the session (`path` under `/session/ID`);
    /// panics with `what` and chromedriver's error.
    fn ask(&self, what: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
        let path = format!("{}{path}", self.session);
        self.driver
            .command(method, &path, body)
            .unwrap_or_else(|e| panic!("browser: {what}: {e}"))
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        let what = format!("open {url}");
        self.ask(&what, "POST", "/url", Some(&json!({ "url": url })));
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub fn eval(&self, script: &str) -> Value {
        let what = format!("run {script}");
        let body = json!({ "script": script, "args": [] });
        self.ask(&what, "POST", "/execute/sync", Some(&body))
    }

    /// Sets the window (the page's viewport in headless mode) to `width` x `height`.
    pub fn window_size(&self, width: u32, height: u32) {
        let what = format!("resize the window to {width}x{height}");
        let body = json!({ "width": width, "height": height });
        self.ask(&what, "POST", "/window/rect", Some(&body));
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let value = self.ask("take a screenshot", "GET", "/screenshot", None);
        let encoded = value.as_str().expect("a screenshot as base64 text");
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("a screenshot in base64")
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
        // Ends the session: Chromium quits. The driver's group is killed
        // next (when `driver` drops) whatever this answered.
        let _ = self.driver.command("DELETE", &self.session, None);
    }
}

/// chromedriver, in its own process group: killed with everything it started.
struct Driver {
    child: Child,
    /// Where chromedriver listens, on 127.0.0.1 of `net`.
    addr: SocketAddr,
    net: HostNet,
}

impl Driver {
    /// Starts chromedriver on a free port of 127.0.0.1 in `net`.
    fn start(net: &HostNet) -> Result<Driver, String> {
        let port = net
            .run(|| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()))
            .map_err(|e| format!("enter {net}: {e}"))?
            .map_err(|e| format!("find a free port on 127.0.0.1 in {net}: {e}"))?
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
        let mut driver = Driver {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            net: net.clone(),
        };
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
        driver
            .net
            .connect(driver.addr, Duration::from_secs(2))
            .map_err(|e| format!("{CHROMEDRIVER} on {} in {net}: {e}", driver.addr))?;
        Ok(driver)
    }

    /// Sends one WebDriver command on a fresh connection from the driver's
    /// network, every read and write bounded by [`COMMAND_TIMEOUT`]; returns
    /// the answer's `value`, or the WebDriver error as text.
    fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let body = body.map(Value::to_string);
        let mut connection = Connection::open(&self.net, self.addr, COMMAND_TIMEOUT)
            .map_err(|e| format!("connect to {CHROMEDRIVER} on {}: {e}", self.addr))?;
        let response = connection
            .request(method, path, body.as_deref().map(str::as_bytes))
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let answer: Value = serde_json::from_slice(&response.body).map_err(|e| {
            format!(
                "{method} {path}: {} {}, not JSON ({e}): {}",
                response.status,
                response.reason,
                String::from_utf8_lossy(&response.body)
            )
        })?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if response.status == 200 {
            Ok(value)
        } else {
            Err(format!(
                "{method} {path}: {} {}: {}: {}",
                response.status, response.reason, value["error"], value["message"]
            ))
        }
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

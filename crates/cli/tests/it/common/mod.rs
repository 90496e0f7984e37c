//! A `tessera` server process for tests: started with `--listen 127.0.0.1:0`,
//! ready once it prints `listening on ADDR`, killed on every path.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};

/// A running server; killed on drop.
pub(crate) struct Server {
    child: Child,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Where its metrics are, when it printed `metrics on http://ADDR/metrics`.
    pub(crate) metrics: Option<SocketAddr>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Sends SIGHUP: the server reloads its configuration.
    pub(crate) fn hang_up(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// The server's resident memory now and at its peak, in KiB (VmRSS, VmHWM).
    pub(crate) fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server is running");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
                .expect("a memory field of /proc/PID/status")
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

/// Runs `tessera <command...> --listen 127.0.0.1:0 <args...>` and waits for its address.
pub(crate) fn start(command: &[&str], args: &[&str]) -> Server {
    start_with_stderr(command, args, Stdio::null())
}

/// [`start`], with the server's log lines (stderr) sent to the receiver.
pub(crate) fn start_logged(
    command: &[&str],
    args: &[&str],
) -> (Server, std::sync::mpsc::Receiver<String>) {
    let mut server = start_with_stderr(command, args, Stdio::piped());
    let stderr = server.child.stderr.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (server, received)
}

fn start_with_stderr(command: &[&str], args: &[&str], stderr: Stdio) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(command)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Kill it even if it never becomes ready.
    let mut server = Server {
        child,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        metrics: None,
    };
    // EOF before the line means the server failed to start.
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(address) = line
            .strip_prefix("metrics on http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
        {
            server.metrics = address.parse().ok();
        }
        if let Some(address) = line.strip_prefix("listening on ") {
            server.addr = address.parse().expect("an address after `listening on`");
            return server;
        }
    }
    panic!("the server did not start");
}

/// Scrapes `metrics` with curl (a real HTTP client) until `done` holds for
/// the text, for at most 20 s: a server counts a request just after its
/// client has the answer. Returns the last text.
pub(crate) fn scrape_until(metrics: SocketAddr, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let output = Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--max-time", "10"])
            .arg(format!("http://{metrics}/metrics"))
            .output()
            .expect("curl runs");
        assert!(output.status.success(), "curl: {}", stderr(&output));
        let text = String::from_utf8(output.stdout).expect("UTF-8 metrics");
        if done(&text) || std::time::Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Runs `tessera <args...>` to completion.
pub(crate) fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .output()
        .unwrap()
}

/// Its standard output, trimmed.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Its standard error, trimmed.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

/// Waits (at most 20 s) for a log line containing `needle`; returns it.
pub(crate) fn wait_for_line(log: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(error) => panic!("no log line with {needle:?}: {error}"),
        }
    }
}

/// A development CA made with `tessera certs dev` in `DIR/ca`, client
/// certificates issued from it (`DIR/NAME`, a `--pki` directory each) and
/// its CRL at `DIR/crl.pem`, all through the real commands.
pub(crate) struct TestCa<'a>(&'a std::path::Path);

impl<'a> TestCa<'a> {
    pub(crate) fn new(dir: &'a std::path::Path) -> Self {
        let ca = Self(dir);
        ca.run(&["certs", "dev", "--out", &ca.path("ca")]);
        ca
    }

    /// `DIR/name` as a string, for flags.
    pub(crate) fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().expect("a UTF-8 path").to_owned()
    }

    /// Issues a client certificate for `name` into `DIR/name`.
    pub(crate) fn issue_client(&self, name: &str) {
        let (ca, out) = (self.path("ca"), self.path(name));
        self.run(&[
            "certs", "issue", "--ca-dir", &ca, "--client", name, "--out", &out,
        ]);
    }

    /// Adds `name`'s certificate to `DIR/crl.pem` (created if missing).
    pub(crate) fn revoke(&self, name: &str) {
        let (ca, crl) = (self.path("ca"), self.path("crl.pem"));
        let cert = format!("{}/client_cert.pem", self.path(name));
        self.run(&["certs", "revoke", "--ca-dir", &ca, "--crl", &crl, &cert]);
    }

    fn run(&self, args: &[&str]) {
        let output = tessera(args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    }
}

/// A loopback port that refuses connections and that no other test can take
/// meanwhile: a socket bound to it but not listening (a port bound and
/// closed again could be handed to another test's listener). Keep the
/// socket while the port is used.
pub(crate) fn refusing_port() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = socket.local_addr().unwrap();
    (socket, address)
}

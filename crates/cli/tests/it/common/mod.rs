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
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
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
    };
    // EOF before the line means the server failed to start.
    server.addr = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("listening on ")?.parse().ok())
        .expect("the server did not start");
    server
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

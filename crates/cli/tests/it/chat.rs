//! `tessera chat` end to end: two processes on loopback (seeded, so no
//! multicast is needed) see each other join, chat, and leave.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A chat process; killed on drop. Its output lines arrive on a channel so
/// every wait has a timeout.
struct Chatter {
    child: Child,
    input: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Drop for Chatter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Chatter {
    fn start(name: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args([
                "chat",
                "--name",
                name,
                "--listen",
                "127.0.0.1:0",
                "--no-multicast",
            ])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let input = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            input,
            lines,
        }
    }

    /// The first line that `pick` accepts (earlier lines are skipped).
    fn wait_for<T>(&self, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .expect("the expected line in time");
            if let Some(found) = pick(&line) {
                return found;
            }
        }
    }

    fn wait_line(&self, wanted: impl Fn(&str) -> bool) -> String {
        self.wait_for(|line| wanted(line).then(|| line.to_owned()))
    }

    fn say(&mut self, text: &str) {
        let input = self.input.as_mut().unwrap();
        writeln!(input, "{text}").unwrap();
        input.flush().unwrap();
    }
}

#[test]
fn two_chatters_meet_talk_and_part() {
    let alice = Chatter::start("alice", &[]);
    let address = alice.wait_for(|line| line.strip_prefix("listening on ").map(str::to_owned));
    let mut bob = Chatter::start("bob", &["--seed", &address]);
    alice.wait_line(|l| l.starts_with("* bob (") && l.contains("joined"));
    bob.wait_line(|l| l.starts_with("* alice (") && l.contains("joined"));

    bob.say("hello from bob");
    alice.wait_line(|l| l == "<bob> hello from bob");
    // A peer cannot drive the other's terminal.
    bob.say("look \x1b[2J here");
    let shown = alice.wait_line(|l| l.starts_with("<bob> look"));
    assert_eq!(shown, "<bob> look \u{fffd}[2J here");

    bob.say("/peers");
    bob.wait_line(|l| l.starts_with("* alice (") && l.contains(" at 127.0.0.1:"));

    // End of input: bob says goodbye and exits.
    drop(bob.input.take());
    alice.wait_line(|l| l.starts_with("* bob (") && l.ends_with(") left"));
}

/// Ctrl-C while chat waited for input used to leave it hanging until Enter
/// (the pending read of standard input kept the runtime from shutting down).
#[test]
fn regression_interrupt_while_waiting_for_input_exits_at_once() {
    let mut alice = Chatter::start("alice", &[]);
    alice.wait_line(|line| line.starts_with("* you are alice"));
    // Standard input stays open and unread: chat is waiting for a line.
    let status = Command::new("kill")
        .args(["-INT", &alice.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = alice.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "chat did not exit on SIGINT while waiting for input"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
}

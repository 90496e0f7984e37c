//! The client side of a session as a sans-IO state machine: it reads server
//! lines the way the reference client does and answers them; WORK is handed to
//! the driver to solve (`../shared/spec/tlslp.md` §4).
//!
//! Unlike the reference it refuses a body command before WORK and a bad WORK
//! line at once (no 10 s stall, defect D11) and reports every failure, so the
//! program can exit non-zero (defect D1).

use std::sync::Arc;

use crate::command::{checksum, token_half, Command};
use crate::event::{Event, Level};
use crate::profile::Profile;
use crate::repr::py_repr;
use crate::Error;

/// What the client does with a server line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this reply.
    Reply(String),
    /// Solve this puzzle, then call [`ClientSession::handle_solution`].
    Solve(tessera_pow::TlslpPuzzle),
    /// The session is over: the server said FAIL (nothing is sent).
    Failed(String),
    /// The session is over: this reply (to DONE) is the last line.
    Finish(String),
}

/// One client session.
#[derive(Debug)]
pub struct ClientSession {
    profile: Arc<Profile>,
    token: Option<String>,
    events: Vec<Event>,
}

impl ClientSession {
    /// A session answering body commands from `profile`.
    pub fn new(profile: Arc<Profile>) -> Self {
        Self {
            profile,
            token: None,
            events: Vec::new(),
        }
    }

    /// Log events since the last call.
    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Handles one server line.
    ///
    /// # Errors
    /// An unknown command, a body command before WORK, or an invalid WORK line.
    pub fn handle_line(&mut self, line: &str) -> Result<Action, Error> {
        self.log(Level::Info, format!("Received {}", py_repr(line)));
        let command = Command::parse(line).ok_or_else(|| Error::UnexpectedLine(line.to_owned()))?;
        match command {
            Command::Hello => Ok(self.reply("HELLOBACK")),
            Command::Work { token, bits } => {
                let bits: u32 = bits.parse().map_err(|_| {
                    Error::BadWork(format!("n_bits {bits:?} is not an integer in 0..64"))
                })?;
                let puzzle = tessera_pow::TlslpPuzzle::new(&token, bits)
                    .map_err(|e| Error::BadWork(e.to_string()))?;
                self.log(
                    Level::Debug,
                    format!(
                        "Authentication data: {}..., n_bits: {}",
                        token_half(&token),
                        py_repr(&bits.to_string())
                    ),
                );
                self.token = Some(token);
                Ok(Action::Solve(puzzle))
            }
            Command::Body { body, random } => {
                let token = self
                    .token
                    .as_deref()
                    .ok_or_else(|| Error::UnexpectedLine(format!("{body} before WORK")))?;
                let line = format!("{} {}", checksum(token, &random), self.profile.value(body));
                Ok(self.reply(&line))
            }
            Command::Done => match self.reply("OK") {
                Action::Reply(line) => Ok(Action::Finish(line)),
                other => Ok(other),
            },
            Command::Fail(text) => Ok(Action::Failed(text)),
        }
    }

    /// The reply to WORK once the driver solved it.
    pub fn handle_solution(&mut self, suffix: &str) -> Action {
        let token = self.token.clone().unwrap_or_default();
        self.log(
            Level::Debug,
            format!("Valid suffix: {}", py_repr(&format!("{suffix}\n"))),
        );
        self.log(
            Level::Debug,
            format!(
                "Hash: {}",
                py_repr(&hex::encode(tessera_pow::digest(&token, suffix)))
            ),
        );
        self.reply(suffix)
    }

    /// Logs a reply the way the reference does (its own line split at the
    /// first space, LF included, §8.3) and returns it.
    fn reply(&mut self, line: &str) -> Action {
        let with_lf = format!("{line}\n");
        let (before, after) = with_lf.split_once(' ').unwrap_or((&with_lf, ""));
        let (before, after) = (before.to_owned(), after.to_owned());
        self.log(
            Level::Info,
            format!("Sending to server: {}", py_repr(&after)),
        );
        self.log(Level::Debug, format!("Checksum sent: {}", py_repr(&before)));
        Action::Reply(line.to_owned())
    }

    fn log(&mut self, level: Level, message: String) {
        self.events.push(Event::new(level, message));
    }
}

//! The client side of a session as a sans-IO state machine: it reads server
//! lines the way the reference client does and answers them; WORK is handed to
//! the driver to solve (`../shared/spec/tlslp.md` §4).
//!
//! Unlike the reference it refuses a body command before WORK and a bad WORK
//! line at once (no 10 s stall, defect D11) and reports every failure, so the
//! program can exit non-zero (defect D1).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::command::{checksum, token_half, Command};
use crate::event::{Event, Level};
use crate::profile::Profile;
use crate::repr::py_repr;
use crate::Error;

/// How a client session ended.
#[derive(Debug)]
pub enum ClientOutcome {
    /// DONE was answered with OK (queued for sending).
    Done,
    /// The server sent `FAIL <text>`; nothing is sent.
    ServerFail(String),
    /// The client gave up: an unknown or out-of-order line, a WORK it refuses,
    /// a failed proof of work, or a server that went silent.
    Failed(Error),
}

/// One client session: server lines in through `handle_*`, replies, log
/// events, the puzzle to solve and the read deadline out through `poll_*`.
#[derive(Debug)]
pub struct ClientSession {
    profile: Arc<Profile>,
    /// How long the server has for each line.
    read_timeout: Duration,
    /// When the next server line is due; `None` while WORK is being solved.
    deadline: Option<Instant>,
    token: Option<String>,
    /// A puzzle not yet handed to the driver.
    work: Option<tessera_pow::TlslpPuzzle>,
    transmit: VecDeque<String>,
    events: VecDeque<Event>,
    outcome: Option<ClientOutcome>,
}

impl ClientSession {
    /// A session answering body commands from `profile`, started at `now`;
    /// the server has `read_timeout` for each line.
    pub fn new(profile: Arc<Profile>, read_timeout: Duration, now: Instant) -> Self {
        Self {
            profile,
            read_timeout,
            deadline: Some(now + read_timeout),
            token: None,
            work: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            outcome: None,
        }
    }

    /// The next line to send, if any.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.transmit.pop_front()
    }

    /// The next log event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The WORK puzzle to solve, once: answer with [`Self::handle_solution`]
    /// or [`Self::handle_work_error`].
    pub fn poll_work(&mut self) -> Option<tessera_pow::TlslpPuzzle> {
        self.work.take()
    }

    /// When the next server line is due: call [`Self::handle_timeout`] then.
    /// `None` while WORK is out for solving and once the session has ended.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline.filter(|_| self.outcome.is_none())
    }

    /// How the session ended, once it has (send what is queued first).
    pub fn outcome(&self) -> Option<&ClientOutcome> {
        self.outcome.as_ref()
    }

    /// Handles one server line received at `now`. An unknown command, a body
    /// command before WORK, or an invalid WORK line ends the session with
    /// [`ClientOutcome::Failed`].
    pub fn handle_line(&mut self, line: &str, now: Instant) {
        if self.outcome.is_some() {
            return;
        }
        self.log(Level::Info, format!("Received {}", py_repr(line)));
        self.deadline = Some(now + self.read_timeout);
        if let Err(error) = self.answer(line) {
            self.outcome = Some(ClientOutcome::Failed(error));
        }
    }

    /// The reply to WORK once the driver solved it, at `now`.
    pub fn handle_solution(&mut self, suffix: &str, now: Instant) {
        if self.outcome.is_some() {
            return;
        }
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
        self.reply(suffix);
        self.deadline = Some(now + self.read_timeout);
    }

    /// The proof of work could not be computed: the session ends.
    pub fn handle_work_error(&mut self, error: Error) {
        if self.outcome.is_none() {
            self.outcome = Some(ClientOutcome::Failed(error));
        }
    }

    /// The server line is overdue if `now` is past its deadline: the session
    /// ends with [`Error::Timeout`]. Earlier calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|deadline| now >= deadline) {
            self.outcome = Some(ClientOutcome::Failed(Error::Timeout("the server")));
        }
    }

    fn answer(&mut self, line: &str) -> Result<(), Error> {
        let command = Command::parse(line).ok_or_else(|| Error::UnexpectedLine(line.to_owned()))?;
        match command {
            Command::Hello => self.reply("HELLOBACK"),
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
                self.work = Some(puzzle);
                // The solver has its own budget; the server is not read meanwhile.
                self.deadline = None;
            }
            Command::Body { body, random } => {
                let token = self
                    .token
                    .as_deref()
                    .ok_or_else(|| Error::UnexpectedLine(format!("{body} before WORK")))?;
                let line = format!("{} {}", checksum(token, &random), self.profile.value(body));
                self.reply(&line);
            }
            Command::Done => {
                self.reply("OK");
                self.outcome = Some(ClientOutcome::Done);
            }
            Command::Fail(text) => self.outcome = Some(ClientOutcome::ServerFail(text)),
        }
        Ok(())
    }

    /// Logs a reply the way the reference does (its own line split at the
    /// first space, LF included, §8.3) and queues it.
    fn reply(&mut self, line: &str) {
        let with_lf = format!("{line}\n");
        let (before, after) = with_lf.split_once(' ').unwrap_or((&with_lf, ""));
        let (before, after) = (before.to_owned(), after.to_owned());
        self.log(
            Level::Info,
            format!("Sending to server: {}", py_repr(&after)),
        );
        self.log(Level::Debug, format!("Checksum sent: {}", py_repr(&before)));
        self.transmit.push_back(line.to_owned());
    }

    fn log(&mut self, level: Level, message: String) {
        self.events.push_back(Event::new(level, message));
    }
}

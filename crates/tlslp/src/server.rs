//! The server side of a session as a sans-IO state machine
//! (`../shared/spec/tlslp.md` §4–§5). It queues lines to send and log events,
//! takes reply lines, owns the deadline of each reply, and ends with an
//! [`Outcome`]. No sockets, clock or global RNG: time comes in as `now`, and
//! the random picks of normal mode come from a seed the driver passes in.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::command::{checksum, token_half, Body, BODY};
use crate::event::{Event, Level};
use crate::repr::py_repr;
use crate::Error;

/// Picks per session in normal mode.
pub const PICKS: usize = 20;

/// Which commands follow WORK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sequence {
    /// The eight body commands once each in order, then DONE (`--tutorial`).
    Tutorial,
    /// 20 uniform picks among the eight bodies and FAIL (normal mode).
    Random,
}

/// What every session of a server shares.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The WORK token.
    pub token: String,
    /// The argument of body commands and of the random FAIL.
    pub random_string: String,
    /// WORK difficulty; any integer, as the reference accepts (≤ 0: all pass).
    pub n_bits: i64,
    /// Tutorial or random sequence.
    pub sequence: Sequence,
    /// How long the client has for each reply.
    pub timeouts: Timeouts,
}

/// How long a client may take to answer (the reference's `--work-timeout`
/// and `--other-timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// For the WORK reply, which needs the proof of work. Default 1800 s.
    pub work: Duration,
    /// For every other reply. Default 10 s.
    pub reply: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            work: Duration::from_secs(1800),
            reply: Duration::from_secs(10),
        }
    }
}

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The client answered DONE.
    Done,
    /// The server ended it with a FAIL line; the text after `FAIL `.
    Fail(FailReason),
    /// The client did not answer in time; nothing more is sent (as the
    /// reference, whose socket timeout ends the session).
    TimedOut(Awaiting),
}

/// Why the server sent FAIL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// Normal mode picked FAIL.
    Random,
    /// The WORK reply failed the check.
    InvalidSuffix,
    /// A body reply's checksum was wrong.
    InvalidChecksum,
    /// A reply broke framing (too long, not UTF-8).
    Receiving,
}

impl FailReason {
    /// The FAIL line, verbatim (§4.6).
    pub fn line(&self, random_string: &str) -> String {
        match self {
            Self::Random => format!("FAIL {random_string}"),
            Self::InvalidSuffix => "FAIL Invalid suffix returned from client.".to_owned(),
            Self::InvalidChecksum => "FAIL Invalid checksum received.".to_owned(),
            Self::Receiving => "FAIL receiving.".to_owned(),
        }
    }
}

/// Which reply the session waits for; the driver picks the timeout from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awaiting {
    /// The HELLO reply.
    Hello,
    /// The WORK reply (the long timeout).
    Work,
    /// A body reply.
    Body(Body),
    /// The DONE reply.
    Done,
}

impl Awaiting {
    /// What is awaited, as the timeout message names it.
    pub fn description(self) -> &'static str {
        match self {
            Self::Work => "the WORK reply",
            _ => "a reply",
        }
    }
}

/// One server session.
#[derive(Debug)]
pub struct ServerSession {
    config: Arc<SessionConfig>,
    rng: SmallRng,
    awaiting: Option<Awaiting>,
    /// When the awaited reply is due.
    deadline: Instant,
    /// When WORK was sent, then how long the client took to solve it.
    work_sent: Option<Instant>,
    work_time: Option<Duration>,
    next_body: usize,
    outcome: Option<Outcome>,
    transmit: VecDeque<String>,
    events: VecDeque<Event>,
    hello_reply: Option<String>,
    suffix: Option<String>,
    values: Vec<(Body, String)>,
}

impl ServerSession {
    /// Starts a session at `now`: queues `HELLO`. `seed` drives normal mode's picks.
    pub fn new(config: Arc<SessionConfig>, seed: u64, now: Instant) -> Self {
        let mut session = Self {
            rng: SmallRng::seed_from_u64(seed),
            awaiting: Some(Awaiting::Hello),
            deadline: now + config.timeouts.reply,
            config,
            work_sent: None,
            work_time: None,
            next_body: 0,
            outcome: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            hello_reply: None,
            suffix: None,
            values: Vec::new(),
        };
        session.log(Level::Info, "Step: handshake");
        session.log(Level::Debug, "Sending HELLO");
        session.transmit.push_back("HELLO".to_owned());
        session
    }

    /// The next line to send, if any.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.transmit.pop_front()
    }

    /// The next log event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When the awaited reply is due: call [`Self::handle_timeout`] then.
    /// `None` once the session has ended.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.awaiting().map(|_| self.deadline)
    }

    /// The reply the session waits for, or `None` once it has ended.
    pub fn awaiting(&self) -> Option<Awaiting> {
        if self.outcome.is_some() {
            None
        } else {
            self.awaiting
        }
    }

    /// How the session ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Whether WORK was sent.
    pub fn work_issued(&self) -> bool {
        self.work_sent.is_some()
    }

    /// How long the client took from WORK to a valid suffix, once it sent one.
    pub fn work_time(&self) -> Option<Duration> {
        self.work_time
    }

    /// The suffix the client solved WORK with, once checked.
    pub fn suffix(&self) -> Option<&str> {
        self.suffix.as_deref()
    }

    /// The body values the client sent, in order.
    pub fn values(&self) -> &[(Body, String)] {
        &self.values
    }

    /// The HELLO reply as received (any line is accepted, as the reference).
    pub fn hello_reply(&self) -> Option<&str> {
        self.hello_reply.as_deref()
    }

    /// Feeds one reply line (without its LF), received at `now`.
    pub fn handle_line(&mut self, line: &str, now: Instant) {
        let Some(awaiting) = self.awaiting() else {
            return;
        };
        match awaiting {
            Awaiting::Hello => {
                self.log(Level::Debug, format!("Received {}", py_repr(line)));
                self.hello_reply = Some(line.to_owned());
                self.log(
                    Level::Debug,
                    format!(
                        "Authentication data: {}..., n_bits: {}",
                        token_half(&self.config.token),
                        self.config.n_bits
                    ),
                );
                self.transmit
                    .push_back(format!("WORK {} {}", self.config.token, self.config.n_bits));
                self.work_sent = Some(now);
                self.expect(Awaiting::Work, now);
            }
            Awaiting::Work => {
                let digest = tessera_pow::digest(&self.config.token, line);
                if !suffix_passes(&digest, self.config.n_bits) {
                    self.fail(FailReason::InvalidSuffix);
                    return;
                }
                self.log(
                    Level::Debug,
                    format!("Valid suffix returned from client: {}", py_repr(line)),
                );
                self.log(
                    Level::Debug,
                    format!("Hash: {}", py_repr(&hex::encode(digest))),
                );
                self.suffix = Some(line.to_owned());
                self.work_time = self
                    .work_sent
                    .map(|sent| now.saturating_duration_since(sent));
                self.next_command(now);
            }
            Awaiting::Body(body) => {
                let (sent, value) = line.split_once(' ').unwrap_or((line, ""));
                if sent != checksum(&self.config.token, &self.config.random_string) {
                    self.fail(FailReason::InvalidChecksum);
                    return;
                }
                self.log(Level::Info, format!("Received {}", py_repr(value)));
                self.log(
                    Level::Debug,
                    format!("Checksum received: {}", py_repr(sent)),
                );
                self.values.push((body, value.to_owned()));
                self.next_command(now);
            }
            Awaiting::Done => {
                self.log(Level::Info, format!("Received {}", py_repr(line)));
                self.outcome = Some(Outcome::Done);
            }
        }
    }

    /// A reply broke framing: send `FAIL receiving.` and end (§3).
    pub fn handle_framing_error(&mut self, error: &Error) {
        if self.awaiting().is_some() {
            self.log(Level::Debug, format!("framing error: {error}"));
            self.fail(FailReason::Receiving);
        }
    }

    /// The awaited reply is overdue if `now` is past its deadline: the
    /// session ends with [`Outcome::TimedOut`]. Earlier calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(awaiting) = self.awaiting() {
            if now >= self.deadline {
                self.outcome = Some(Outcome::TimedOut(awaiting));
            }
        }
    }

    fn expect(&mut self, awaiting: Awaiting, now: Instant) {
        let timeout = match awaiting {
            Awaiting::Work => self.config.timeouts.work,
            _ => self.config.timeouts.reply,
        };
        self.awaiting = Some(awaiting);
        self.deadline = now + timeout;
    }

    fn next_command(&mut self, now: Instant) {
        let pick = match self.config.sequence {
            Sequence::Tutorial => BODY.get(self.next_body).copied(),
            Sequence::Random if self.next_body < PICKS => {
                let choice = self.rng.random_range(0..=BODY.len());
                if choice == BODY.len() {
                    self.log(Level::Info, "Step: 'fail'");
                    self.log(
                        Level::Debug,
                        format!("Sending 'FAIL' {}", py_repr(&self.config.random_string)),
                    );
                    self.fail(FailReason::Random);
                    return;
                }
                Some(BODY[choice])
            }
            Sequence::Random => None,
        };
        self.next_body += 1;
        match pick {
            Some(body) => {
                self.log(
                    Level::Info,
                    format!("Step: {}", py_repr(&body.name().to_lowercase())),
                );
                self.log(
                    Level::Debug,
                    format!(
                        "Sending {} {}",
                        py_repr(body.name()),
                        py_repr(&self.config.random_string)
                    ),
                );
                self.transmit
                    .push_back(format!("{body} {}", self.config.random_string));
                self.expect(Awaiting::Body(body), now);
            }
            None => {
                self.log(Level::Info, "Step: done");
                self.log(Level::Debug, "Sending DONE");
                self.transmit.push_back("DONE".to_owned());
                self.expect(Awaiting::Done, now);
            }
        }
    }

    fn fail(&mut self, reason: FailReason) {
        self.transmit
            .push_back(reason.line(&self.config.random_string));
        self.outcome = Some(Outcome::Fail(reason));
    }

    fn log(&mut self, level: Level, message: impl Into<String>) {
        self.events.push_back(Event::new(level, message));
    }
}

/// The WORK rule: the low `n_bits` bits of the digest are zero; `n_bits ≤ 0`
/// always passes and more than 256 never does (§4.3).
pub fn suffix_passes(digest: &[u8; 32], n_bits: i64) -> bool {
    match u32::try_from(n_bits) {
        Err(_) => n_bits < 0,
        Ok(bits) => bits <= 256 && tessera_pow::trailing_zero_bits(digest) >= bits,
    }
}

#[cfg(test)]
mod tests;

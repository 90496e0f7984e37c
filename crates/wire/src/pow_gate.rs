//! The proof-of-work gate: admission bound to the connection (tessera-pow's SHA-256
//! challenge): before a connection may send anything else, its client asks
//! for a challenge, solves it for this connection's random context, and
//! sends the solution. Each challenge is good once and only on the connection
//! that asked for it, so work cannot be done ahead or shared.
//!
//! ```text
//! client: REQUEST_URI tessera/pow/challenge
//! server: RESPOND_URI tessera/pow/challenge  "<challenge> <context>"
//! client: CREATE_URI  tessera/pow/solution   "<nonce>"
//! server: OK (admitted) | AUTH_ERROR pow_failed
//! anything else before admission: AUTH_ERROR pow_required
//! ```

use std::time::Duration;

use bytes::Bytes;
use tessera_pow::Challenge;
use time::OffsetDateTime;

use crate::{Frame, MessageType, Rejection, Response};

/// URI on which a client asks for its challenge.
pub const POW_CHALLENGE_URI: &str = "tessera/pow/challenge";
/// URI on which a client sends its solution.
pub const POW_SOLUTION_URI: &str = "tessera/pow/solution";

/// What a server asks of each new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowAdmission {
    /// Leading zero bits of SHA-256 required (each bit doubles the work).
    pub bits: u32,
    /// How long a challenge stays good.
    pub ttl: Duration,
}

/// One connection's admission state (sans-IO: frames in, replies out).
#[derive(Debug)]
pub(crate) struct PowGate {
    policy: Option<PowAdmission>,
    context: String,
    pending: Option<Challenge>,
    admitted: bool,
}

impl PowGate {
    pub(crate) fn new(policy: Option<PowAdmission>) -> Self {
        let context: String = rand::random::<[u8; 16]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            admitted: policy.is_none(),
            policy,
            context,
            pending: None,
        }
    }

    /// `None`: the frame may go on; `Some(answer)`: the gate answered it
    /// (a challenge, the admission, or a refusal).
    pub(crate) fn filter(
        &mut self,
        frame: &Frame,
        now: OffsetDateTime,
    ) -> Option<Result<Response, Rejection>> {
        if self.admitted {
            return None;
        }
        let policy = self.policy?;
        Some(match (frame.kind, frame.uri.as_str()) {
            (MessageType::REQUEST_URI, POW_CHALLENGE_URI) => {
                let ttl = time::Duration::try_from(policy.ttl).unwrap_or(time::Duration::MINUTE);
                match Challenge::issue(policy.bits, ttl, now) {
                    Ok(challenge) => {
                        let body = format!("{} {}", challenge.to_text(), self.context);
                        self.pending = Some(challenge);
                        Ok(Response::new(MessageType::RESPOND_URI, body))
                    }
                    Err(_) => Err(Rejection::PowUnavailable),
                }
            }
            (MessageType::CREATE_URI, POW_SOLUTION_URI) => {
                // One attempt per challenge.
                let nonce = std::str::from_utf8(&frame.body).unwrap_or_default();
                match self.pending.take() {
                    Some(challenge) if challenge.verify(&self.context, nonce, now).is_ok() => {
                        self.admitted = true;
                        Ok(Response::new(MessageType::OK, Bytes::new()))
                    }
                    _ => Err(Rejection::PowFailed),
                }
            }
            _ => Err(Rejection::PowRequired),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IntoReply;

    impl PowGate {
        fn filter_reply(&mut self, frame: &Frame, now: OffsetDateTime) -> Option<Response> {
            self.filter(frame, now).map(IntoReply::into_reply)
        }
    }

    fn frame(kind: MessageType, uri: &str, body: &str) -> Frame {
        Frame::new(kind, 1, uri, Bytes::from(body.to_owned()))
    }

    #[test]
    fn nothing_passes_before_the_work_and_everything_after() {
        let now = OffsetDateTime::now_utc();
        let mut gate = PowGate::new(Some(PowAdmission {
            bits: 8,
            ttl: Duration::from_secs(60),
        }));
        let echo = frame(MessageType::REQUEST_URI, "echo", "");
        assert_eq!(
            &gate.filter_reply(&echo, now).unwrap().body[..],
            b"pow_required"
        );
        // No challenge yet: a solution is refused.
        assert_eq!(
            &gate
                .filter_reply(&frame(MessageType::CREATE_URI, POW_SOLUTION_URI, "x"), now)
                .unwrap()
                .body[..],
            b"pow_failed"
        );
        let reply = gate
            .filter_reply(&frame(MessageType::REQUEST_URI, POW_CHALLENGE_URI, ""), now)
            .unwrap();
        let text = String::from_utf8(reply.body.to_vec()).unwrap();
        let (challenge, context) = text.split_once(' ').unwrap();
        let challenge = Challenge::parse(challenge).unwrap();
        // A solution for another connection's context fails, and uses up the challenge.
        let elsewhere = challenge
            .solve("another connection", &tessera_pow::SearchOptions::default())
            .unwrap();
        if challenge.verify(context, &elsewhere, now).is_err() {
            let refused = gate
                .filter_reply(
                    &frame(MessageType::CREATE_URI, POW_SOLUTION_URI, &elsewhere),
                    now,
                )
                .unwrap();
            assert_eq!(&refused.body[..], b"pow_failed");
            let reply = gate
                .filter_reply(&frame(MessageType::REQUEST_URI, POW_CHALLENGE_URI, ""), now)
                .unwrap();
            let text = String::from_utf8(reply.body.to_vec()).unwrap();
            let (fresh, _) = text.split_once(' ').unwrap();
            let fresh = Challenge::parse(fresh).unwrap();
            let nonce = fresh
                .solve(context, &tessera_pow::SearchOptions::default())
                .unwrap();
            let ok = gate
                .filter_reply(
                    &frame(MessageType::CREATE_URI, POW_SOLUTION_URI, &nonce),
                    now,
                )
                .unwrap();
            assert_eq!(ok.kind, MessageType::OK);
        } else {
            // 1 in 256: the other context's nonce happens to pass this one too.
            let ok = gate
                .filter_reply(
                    &frame(MessageType::CREATE_URI, POW_SOLUTION_URI, &elsewhere),
                    now,
                )
                .unwrap();
            assert_eq!(ok.kind, MessageType::OK);
        }
        assert_eq!(gate.filter_reply(&echo, now), None);
    }

    #[test]
    fn without_a_policy_the_gate_is_open() {
        let mut gate = PowGate::new(None);
        assert_eq!(
            gate.filter_reply(
                &frame(MessageType::REQUEST_URI, "echo", ""),
                OffsetDateTime::now_utc()
            ),
            None
        );
    }
}

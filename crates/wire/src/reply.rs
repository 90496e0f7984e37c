//! Every answer tessera-wire gives on its own, in one place. Handlers answer
//! in the shape of axum's `IntoResponse`: anything [`IntoReply`], usually
//! `Result<Response, E>` with an error type of the application's that says
//! how it is told to the peer. What the frame server, the tunnel exit, the
//! netaio-compat server, the router and its layers refuse is a
//! [`Rejection`], and [`Rejection::into_reply`] is the one table of their
//! reply types and bodies.

use bytes::Bytes;

use crate::{AuthFailure, Frame, MessageType};

/// A handler's answer: the server adds the request id and URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Reply type.
    pub kind: MessageType,
    /// Reply body.
    pub body: Bytes,
}

impl Response {
    /// A reply of `kind` with `body`.
    pub fn new(kind: MessageType, body: impl Into<Bytes>) -> Self {
        Self {
            kind,
            body: body.into(),
        }
    }
}

/// A value that can be sent back as the answer to a request.
pub trait IntoReply {
    /// The reply.
    fn into_reply(self) -> Response;
}

impl IntoReply for Response {
    fn into_reply(self) -> Response {
        self
    }
}

impl<T: IntoReply, E: IntoReply> IntoReply for Result<T, E> {
    fn into_reply(self) -> Response {
        match self {
            Ok(answer) => answer.into_reply(),
            Err(error) => error.into_reply(),
        }
    }
}

/// `(kind, body)`, as axum's `(StatusCode, body)`.
impl<B: Into<Bytes>> IntoReply for (MessageType, B) {
    fn into_reply(self) -> Response {
        Response::new(self.0, self.1)
    }
}

impl IntoReply for std::convert::Infallible {
    fn into_reply(self) -> Response {
        match self {}
    }
}

impl Frame {
    /// The reply to this frame carrying `answer`: same request id and URI.
    pub(crate) fn answer(&self, answer: impl IntoReply) -> Self {
        let Response { kind, body } = answer.into_reply();
        self.reply(kind, body)
    }

    /// An answer to a frame that could not be read whole, so it has no
    /// request id to carry (id 0, the URI when one was read).
    pub(crate) fn unprompted(uri: &str, answer: impl IntoReply) -> Self {
        let Response { kind, body } = answer.into_reply();
        Self::new(kind, 0, uri, body)
    }
}

/// Why tessera-wire answered a frame itself instead of a handler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The bytes were not a valid frame; the connection closes after this.
    #[error("{0}")]
    Malformed(crate::Error),
    /// The server-wide auth layer refused the frame.
    #[error("authentication failed: {}", .0.name())]
    Auth(AuthFailure),
    /// The connection has not shown its proof of work yet.
    #[error("proof of work required")]
    PowRequired,
    /// A proof-of-work solution without a pending challenge, or a wrong one.
    #[error("proof of work failed")]
    PowFailed,
    /// No challenge could be issued (a difficulty out of range).
    #[error("proof of work unavailable")]
    PowUnavailable,
    /// The URI is not a canonical path, so the guard's rules cannot read it
    /// the way the router matches it.
    #[error("invalid uri: not a canonical path")]
    NotCanonical,
    /// The guard's client-certificate rules deny the URI.
    #[error("not permitted: {}", .0.name())]
    NotPermitted(tessera_guard::DenialReason),
    /// A route's policy needs a capability token the frame did not carry.
    #[error("a capability token is required")]
    CapabilityRequired,
    /// The caller's capability does not satisfy the route's policy.
    #[error("policy")]
    Policy,
    /// The route's policy could not be run (it is logged where it failed).
    #[error("policy error")]
    PolicyError,
    /// No route for the frame's type and URI.
    #[error("not found")]
    NotFound,
    /// A tunnel open for a service the exit does not offer.
    #[error("no such service")]
    NoSuchService,
    /// The tunnel exit could not reach the service.
    #[error("service unreachable")]
    ServiceUnreachable,
    /// The handler did not answer within its deadline.
    #[error("handler timed out")]
    HandlerTimedOut,
    /// The server is stopping and runs no more handlers.
    #[error("server stopping")]
    Stopping,
    /// The connection holds as many subscriptions as it may.
    #[error("too many subscriptions")]
    TooManySubscriptions,
    /// A netaio frame whose URI is not UTF-8.
    #[error("uri is not UTF-8")]
    UriNotUtf8,
    /// A netaio frame whose checksum does not match (netaio's wording).
    #[error("invalid message")]
    BadChecksum,
    /// A netaio frame whose HMAC does not verify (netaio's wording).
    #[error("HMAC auth failed")]
    NetaioAuth,
}

impl Rejection {
    /// The reply type the peer gets.
    pub fn kind(&self) -> MessageType {
        match self {
            Self::Auth(_)
            | Self::PowRequired
            | Self::PowFailed
            | Self::PowUnavailable
            | Self::NetaioAuth => MessageType::AUTH_ERROR,
            Self::NotPermitted(_) | Self::CapabilityRequired | Self::Policy | Self::PolicyError => {
                MessageType::NOT_PERMITTED
            }
            Self::NotFound | Self::NoSuchService => MessageType::NOT_FOUND,
            Self::Malformed(_)
            | Self::NotCanonical
            | Self::ServiceUnreachable
            | Self::HandlerTimedOut
            | Self::Stopping
            | Self::TooManySubscriptions
            | Self::UriNotUtf8
            | Self::BadChecksum => MessageType::ERROR,
        }
    }

    /// The reply body: a stable snake-case name where peers match on it
    /// (auth and proof-of-work refusals, the guard's denial reasons), a short
    /// text elsewhere.
    pub fn body(&self) -> Bytes {
        match self {
            Self::Auth(failure) => Bytes::from_static(failure.name().as_bytes()),
            Self::PowRequired => Bytes::from_static(b"pow_required"),
            Self::PowFailed => Bytes::from_static(b"pow_failed"),
            Self::PowUnavailable => Bytes::from_static(b"pow_unavailable"),
            Self::NotPermitted(reason) => Bytes::from_static(reason.name().as_bytes()),
            Self::Malformed(error) => Bytes::from(error.to_string()),
            other => Bytes::from(other.to_string()),
        }
    }

    /// Whether the peer's own bytes are at fault (a malformed frame or one
    /// the auth layer refused), as opposed to a refusal by policy or state.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            Self::Malformed(_) | Self::Auth(_) | Self::BadChecksum | Self::UriNotUtf8
        )
    }
}

impl IntoReply for Rejection {
    fn into_reply(self) -> Response {
        Response::new(self.kind(), self.body())
    }
}

impl From<AuthFailure> for Rejection {
    fn from(failure: AuthFailure) -> Self {
        Self::Auth(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_match_on_stable_names_and_get_one_reply_type_each() {
        let auth = Rejection::Auth(AuthFailure::Replayed).into_reply();
        assert_eq!(
            (auth.kind, &auth.body[..]),
            (MessageType::AUTH_ERROR, &b"replayed"[..])
        );
        let denied =
            Rejection::NotPermitted(tessera_guard::DenialReason::CertRequired).into_reply();
        assert_eq!(denied.kind, MessageType::NOT_PERMITTED);
        assert_eq!(
            &denied.body[..],
            tessera_guard::DenialReason::CertRequired.name().as_bytes()
        );
        assert_eq!(
            Rejection::HandlerTimedOut.into_reply(),
            Response::new(MessageType::ERROR, "handler timed out")
        );
        assert_eq!(
            Rejection::Malformed(crate::Error::Malformed("unknown flags")).into_reply(),
            Response::new(MessageType::ERROR, "malformed frame: unknown flags")
        );
    }

    #[test]
    fn results_answer_with_either_side() {
        let ok: Result<Response, Rejection> = Ok(Response::new(MessageType::OK, "done"));
        assert_eq!(ok.into_reply().kind, MessageType::OK);
        let err: Result<Response, Rejection> = Err(Rejection::NotFound);
        assert_eq!(
            err.into_reply(),
            Response::new(MessageType::NOT_FOUND, "not found")
        );
        assert_eq!(
            (MessageType::ERROR, "busy").into_reply(),
            Response::new(MessageType::ERROR, "busy")
        );
    }
}

//! Message types: netaio's numbering (so logs and tools read the same), with
//! 31–255 left to applications.

use std::fmt;

/// A message type (one byte on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageType(pub u8);

impl MessageType {
    /// Read request for a URI.
    pub const REQUEST_URI: Self = Self(0);
    /// Reply to [`Self::REQUEST_URI`].
    pub const RESPOND_URI: Self = Self(1);
    /// Create request.
    pub const CREATE_URI: Self = Self(2);
    /// Update request.
    pub const UPDATE_URI: Self = Self(3);
    /// Delete request.
    pub const DELETE_URI: Self = Self(4);
    /// Subscribe to a URI.
    pub const SUBSCRIBE_URI: Self = Self(5);
    /// Unsubscribe from a URI.
    pub const UNSUBSCRIBE_URI: Self = Self(6);
    /// Publish to the subscribers of a URI.
    pub const PUBLISH_URI: Self = Self(7);
    /// Server push to a subscriber.
    pub const NOTIFY_URI: Self = Self(8);
    /// Peer announcement.
    pub const ADVERTISE_PEER: Self = Self(9);
    /// Generic success.
    pub const OK: Self = Self(10);
    /// Reply to [`Self::SUBSCRIBE_URI`].
    pub const CONFIRM_SUBSCRIBE: Self = Self(11);
    /// Reply to [`Self::UNSUBSCRIBE_URI`].
    pub const CONFIRM_UNSUBSCRIBE: Self = Self(12);
    /// Reply to [`Self::ADVERTISE_PEER`].
    pub const PEER_DISCOVERED: Self = Self(13);
    /// Generic error.
    pub const ERROR: Self = Self(20);
    /// Authentication failed.
    pub const AUTH_ERROR: Self = Self(23);
    /// No route or resource.
    pub const NOT_FOUND: Self = Self(24);
    /// Authorisation refused.
    pub const NOT_PERMITTED: Self = Self(25);
    /// Peer leaving.
    pub const DISCONNECT: Self = Self(30);
    /// The first value applications may define.
    pub const FIRST_APPLICATION: u8 = 31;

    /// The name of a base type, `None` for application and unassigned values.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "REQUEST_URI",
            1 => "RESPOND_URI",
            2 => "CREATE_URI",
            3 => "UPDATE_URI",
            4 => "DELETE_URI",
            5 => "SUBSCRIBE_URI",
            6 => "UNSUBSCRIBE_URI",
            7 => "PUBLISH_URI",
            8 => "NOTIFY_URI",
            9 => "ADVERTISE_PEER",
            10 => "OK",
            11 => "CONFIRM_SUBSCRIBE",
            12 => "CONFIRM_UNSUBSCRIBE",
            13 => "PEER_DISCOVERED",
            20 => "ERROR",
            23 => "AUTH_ERROR",
            24 => "NOT_FOUND",
            25 => "NOT_PERMITTED",
            30 => "DISCONNECT",
            _ => return None,
        })
    }

    /// Whether this type answers a request (a client matches it to its request id).
    pub fn is_reply(self) -> bool {
        matches!(self.0, 1 | 10..=13 | 20..=29)
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "type {}", self.0),
        }
    }
}

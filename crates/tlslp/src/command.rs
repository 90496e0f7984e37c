//! The commands of the protocol (`../shared/spec/tlslp.md` §4): what the server
//! sends, and how the client reads it (split on any whitespace, as the reference).

use std::fmt;

/// The eight body commands, in the tutorial order.
pub const BODY: [Body; 8] = [
    Body::FullName,
    Body::Email1,
    Body::Email2,
    Body::Social,
    Body::Birthdate,
    Body::Country,
    Body::AddrLine1,
    Body::AddrLine2,
];

/// A body command: the server asks for one value, checksummed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Body {
    /// `FULL_NAME`
    FullName,
    /// `EMAIL1`
    Email1,
    /// `EMAIL2`
    Email2,
    /// `SOCIAL`
    Social,
    /// `BIRTHDATE`
    Birthdate,
    /// `COUNTRY`
    Country,
    /// `ADDR_LINE1`
    AddrLine1,
    /// `ADDR_LINE2`
    AddrLine2,
}

impl Body {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::FullName => "FULL_NAME",
            Self::Email1 => "EMAIL1",
            Self::Email2 => "EMAIL2",
            Self::Social => "SOCIAL",
            Self::Birthdate => "BIRTHDATE",
            Self::Country => "COUNTRY",
            Self::AddrLine1 => "ADDR_LINE1",
            Self::AddrLine2 => "ADDR_LINE2",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        BODY.into_iter().find(|body| body.name() == name)
    }
}

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A server line as the client reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `HELLO`
    Hello,
    /// `WORK <token> <n_bits>`; arguments as text (the client validates them).
    Work {
        /// The token.
        token: String,
        /// The difficulty, as sent.
        bits: String,
    },
    /// `<BODY> <random_string>`
    Body {
        /// Which value.
        body: Body,
        /// The argument to checksum.
        random: String,
    },
    /// `DONE`
    Done,
    /// `FAIL <text>`
    Fail(String),
}

impl Command {
    /// Parses a server line the way the reference client does: split on any
    /// whitespace, first word is the command, missing arguments are empty,
    /// extra words ignored. `None` for anything else.
    pub fn parse(line: &str) -> Option<Self> {
        let mut words = line.split_whitespace();
        let name = words.next()?;
        let first = words.next().unwrap_or_default().to_owned();
        Some(match name {
            "HELLO" => Self::Hello,
            "DONE" => Self::Done,
            "FAIL" => Self::Fail(
                line.trim_start()
                    .strip_prefix("FAIL")
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            ),
            "WORK" => Self::Work {
                token: first,
                bits: words.next().unwrap_or_default().to_owned(),
            },
            other => Self::Body {
                body: Body::from_name(other)?,
                random: first,
            },
        })
    }
}

/// The start of the token both sides log at DEBUG (the reference's first
/// `ceil(len / 2)` characters), quoted: `Authentication data: '<half>'..., n_bits: …`.
pub(crate) fn token_half(token: &str) -> String {
    let half: String = token
        .chars()
        .take(token.chars().count().div_ceil(2))
        .collect();
    crate::repr::py_repr(&half)
}

/// SHA-256 of token ‖ random_string as 64 lower-case hex digits (§4.4).
pub fn checksum(token: &str, random: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(token.as_bytes());
    hasher.update(random.as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_client_parsing() {
        assert_eq!(Command::parse("HELLO"), Some(Command::Hello));
        assert_eq!(Command::parse("  DONE  "), Some(Command::Done));
        assert_eq!(
            Command::parse("WORK abc 28"),
            Some(Command::Work {
                token: "abc".into(),
                bits: "28".into()
            })
        );
        assert_eq!(
            Command::parse("EMAIL1 a b"),
            Some(Command::Body {
                body: Body::Email1,
                random: "a".into()
            })
        );
        assert_eq!(
            Command::parse("FULL_NAME"),
            Some(Command::Body {
                body: Body::FullName,
                random: String::new()
            })
        );
        assert_eq!(
            Command::parse("FAIL Invalid checksum received."),
            Some(Command::Fail("Invalid checksum received.".into()))
        );
        for bad in ["", "hello", "WHAT", "full_name x"] {
            assert_eq!(Command::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_spec_checksum_example() {
        assert_eq!(
            checksum(
                "gkcjcibIFynKssuJnJpSrgvawiVjLjEbdFuYQzuWROTeTaSmqFCAzuwkwLCRgIIq",
                "LGTk"
            ),
            "28295607f05351eb24707046f3fa046e8a7afdabb32e6f0fba3de596cbf7c27b"
        );
    }
}

//! Trust on first use: a SQLite store of pinned server certificates and a
//! rustls verifier that applies it inside the handshake
//! (`../shared/spec/guard.md` §11).

mod host;
mod store;
mod transfer;
mod verifier;

use std::fmt;

use time::OffsetDateTime;

pub(crate) use host::strip_brackets;
pub use host::{normalize_host, HostKey, DEFAULT_PORT};
pub use store::{RotationPolicy, TofuStore};
pub use transfer::{ImportConflict, ImportMode, ImportReport};
pub use verifier::{mismatch_in, TofuVerifier};

use crate::certificate::rfc3339;
use crate::Fingerprint;

/// How a pin came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrustedBy {
    /// Stored on first contact.
    FirstUse,
    /// Set by the user (`tessera tofu trust`).
    Manual,
    /// Read from an export.
    Import,
    /// Replaced after the stored certificate expired, under [`RotationPolicy::AfterExpiry`].
    Rotation,
}

/// One pinned server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownHost {
    /// The normalised key.
    pub key: HostKey,
    /// The pinned certificate.
    pub fingerprint: Fingerprint,
    /// When this fingerprint was first stored.
    pub first_seen: OffsetDateTime,
    /// Last match (written at most once an hour).
    pub last_seen: OffsetDateTime,
    /// The pinned certificate's not-after, when known.
    pub not_after: Option<OffsetDateTime>,
    /// How the pin was made.
    pub trusted_by: TrustedBy,
}

/// The result of [`TofuStore::verify_or_trust`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// No pin existed; the certificate is now pinned.
    FirstUse,
    /// The certificate matches the pin. `expired` when its not-after has passed
    /// (accepted with a warning: Gemini servers keep self-signed certificates long).
    Match {
        /// The matching certificate has expired.
        expired: bool,
    },
    /// The pinned certificate had expired and the policy allowed the new one.
    Rotated {
        /// The fingerprint that was replaced.
        previous: Fingerprint,
    },
    /// A different certificate than the pinned one. Nothing was written.
    Mismatch(TofuMismatch),
}

impl Verdict {
    /// Turns a mismatch into [`crate::Error::TofuMismatch`].
    ///
    /// # Errors
    /// For [`Verdict::Mismatch`].
    pub fn accepted(self) -> Result<Self, crate::Error> {
        match self {
            Self::Mismatch(mismatch) => Err(mismatch.into()),
            other => Ok(other),
        }
    }
}

/// A server presented a certificate other than the pinned one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TofuMismatch {
    /// The server.
    pub key: HostKey,
    /// What the store holds.
    pub stored: Fingerprint,
    /// What the server presented.
    pub presented: Fingerprint,
    /// When the stored certificate was first seen.
    pub first_seen: OffsetDateTime,
    /// The stored certificate's not-after, when known.
    pub stored_not_after: Option<OffsetDateTime>,
    /// The store that holds the pin, named in the hint so that the command
    /// it suggests edits the same file.
    pub store: std::path::PathBuf,
}

impl fmt::Display for TofuMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "certificate of {} has changed: pinned {} (first seen {}{}), presented {}; \
             if the change is expected, run `tessera tofu trust --db {} {}`",
            self.key,
            self.stored,
            rfc3339(self.first_seen),
            match self.stored_not_after {
                Some(at) => format!(", valid until {}", rfc3339(at)),
                None => String::new(),
            },
            self.presented,
            shell_word(&self.store.to_string_lossy()),
            self.key,
        )
    }
}

impl std::error::Error for TofuMismatch {}

/// `text` as one shell word: as is when it holds nothing a shell treats
/// specially, single-quoted otherwise.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn store_paths_in_the_hint_are_one_shell_word() {
        assert_eq!(
            shell_word("/home/a/.local/tofu.sqlite3"),
            "/home/a/.local/tofu.sqlite3"
        );
        assert_eq!(shell_word("/tmp/my pins.db"), "'/tmp/my pins.db'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }
}

//! The one error type of `tessera-tls`.
//!
//! Variants keep "the peer or the file is wrong" apart from "we were asked to do
//! something unsafe", and every variant that concerns a file names it.

use std::io;
use std::path::PathBuf;

use crate::tofu::TofuMismatch;

/// Everything that can go wrong in `tessera-tls`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    ///
    /// The message already ends with the cause, so it is a field and not a
    /// `source()`: error chains (`{:#}`) print it once.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        error: io::Error,
    },

    /// A PEM file holds no item of the kind that was asked for.
    #[error("{}: no {expected} found in the PEM file{}", path.display(), found_suffix(found))]
    MissingPemItem {
        /// The file.
        path: PathBuf,
        /// What we looked for, e.g. "CERTIFICATE".
        expected: &'static str,
        /// The PEM labels that were there instead.
        found: Vec<String>,
    },

    /// A PEM file is malformed (bad base64, a missing END line, not PEM at all).
    #[error("{}: not a valid PEM file: {detail}", path.display())]
    InvalidPem {
        /// The file.
        path: PathBuf,
        /// The parser's description.
        detail: String,
    },

    /// A private key is encrypted; Tessera reads only unencrypted keys.
    #[error("{}: the private key is encrypted; decrypt it first (e.g. `openssl pkey -in {} -out key.pem`)", path.display(), path.display())]
    EncryptedKey {
        /// The file.
        path: PathBuf,
    },

    /// A certificate's DER could not be parsed as X.509.
    #[error("{context}: not a valid X.509 certificate: {detail}")]
    InvalidCertificate {
        /// Which certificate (file name or "peer").
        context: String,
        /// The parser's description.
        detail: String,
    },

    /// The private key does not belong to the certificate.
    #[error("{} does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },

    /// A certificate of ours is outside its validity period.
    #[error("{context}: certificate is {state} (valid {not_before} to {not_after})")]
    CertificateNotValidNow {
        /// Which certificate.
        context: String,
        /// "expired" or "not yet valid".
        state: &'static str,
        /// Start of validity (RFC 3339).
        not_before: String,
        /// End of validity (RFC 3339).
        not_after: String,
    },

    /// Verification was to be skipped toward a host that is not loopback.
    #[error("refusing insecure TLS to {host}: verification may only be skipped for localhost, 127.0.0.0/8 or ::1")]
    InsecureNotLoopback {
        /// The host or address that was refused.
        host: String,
    },

    /// A fingerprint string is not in any accepted spelling.
    #[error("invalid SHA-256 fingerprint {text:?}: expected sha256:<64 hex>, 64 hex digits or 32 colon-separated pairs")]
    InvalidFingerprint {
        /// The text that was given (truncated).
        text: String,
    },

    /// A host name or `host:port` could not be used as a TOFU key or TLS server name.
    #[error("invalid host {text:?}: {reason}")]
    InvalidHost {
        /// The text that was given.
        text: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// Key or certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),

    /// rustls refused a configuration or a handshake failed.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),

    /// A generated file would overwrite an existing one.
    #[error("{} already exists; pass --force to overwrite", path.display())]
    WouldOverwrite {
        /// The file that exists.
        path: PathBuf,
    },

    /// The server presented a certificate other than the one pinned for it.
    #[error(transparent)]
    TofuMismatch(Box<TofuMismatch>),

    /// The TOFU store could not be read or written (the cause is a field, as for [`Error::Io`]).
    #[error("TOFU store {}: {error}", path.display())]
    Store {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        error: rusqlite::Error,
    },

    /// The TOFU store is not a Tessera store, is damaged, or is from a newer release.
    #[error("TOFU store {}: {detail}; the file was left untouched", path.display())]
    CorruptStore {
        /// The database file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },

    /// An import file is malformed.
    #[error("import: {0}")]
    Import(String),

    /// An existing CA (its directory, certificate, key or CRL) cannot be used.
    #[error("{}: {detail}", path.display())]
    Ca {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
}

fn found_suffix(found: &[String]) -> String {
    if found.is_empty() {
        String::new()
    } else {
        format!(" (found: {})", found.join(", "))
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |error| Self::Io { path, error }
    }
}

impl From<TofuMismatch> for Error {
    fn from(mismatch: TofuMismatch) -> Self {
        Self::TofuMismatch(Box::new(mismatch))
    }
}

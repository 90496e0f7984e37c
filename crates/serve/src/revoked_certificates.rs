//! Client certificates revoked beyond the CRLs: a fleet revokes a
//! certificate by its fingerprint in a shared store, and every server of the
//! fleet refuses it at once, without a CRL to reissue and reload. The stage
//! asks at admission and, on each announcement, checks its open connections
//! again and refuses those that presented a certificate revoked now.

use std::sync::Arc;

use tessera_tls::Fingerprint;
use tokio::sync::broadcast;

/// A source of certificate revocations kept current by someone else.
pub trait RevokedCertificates: Send + Sync + std::fmt::Debug {
    /// Whether a connection that presented the certificate with
    /// `fingerprint` is refused: it is revoked, or the source cannot say now
    /// and its policy refuses then.
    fn refuses(&self, fingerprint: &Fingerprint) -> bool;

    /// Revocations from now on, of any kind: the stage checks its open
    /// connections again on each (and on a lag, which may have hidden one).
    fn announcements(&self) -> broadcast::Receiver<Arc<str>>;
}

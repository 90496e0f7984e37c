//! Client certificates revoked across a fleet: a certificate's revocation id
//! is its fingerprint (`sha256:` and 64 hex digits, as `tessera fingerprint`
//! prints it), kept in the same set and announced on the same feed as token
//! revocations, so `tessera trust revoke sha256:…` reaches every server.

use std::sync::Arc;

use tessera_tls::Fingerprint;
use tessera_trust::WhenUnknown;
use tokio::sync::broadcast;

use crate::Revocations;

/// The revocation id of the certificate with `fingerprint`.
pub fn certificate_revocation_id(fingerprint: &Fingerprint) -> String {
    fingerprint.to_string()
}

/// The fleet's revoked client certificates, as a connection stage asks for
/// them (`tessera_serve::FleetAdmission::revoked_certificates`).
#[derive(Debug)]
pub struct RevokedCertificates {
    revocations: Arc<Revocations>,
    when_unknown: WhenUnknown,
}

impl RevokedCertificates {
    /// Certificates `revocations` lists; while its feed is down, `when_unknown` decides.
    pub fn new(revocations: Arc<Revocations>, when_unknown: WhenUnknown) -> Self {
        Self {
            revocations,
            when_unknown,
        }
    }
}

impl tessera_serve::RevokedCertificates for RevokedCertificates {
    fn refuses(&self, fingerprint: &Fingerprint) -> bool {
        match self
            .revocations
            .check(&certificate_revocation_id(fingerprint))
        {
            Ok(revoked) => revoked,
            Err(_unknown) => self.when_unknown == WhenUnknown::Refuse,
        }
    }

    fn announcements(&self) -> broadcast::Receiver<Arc<str>> {
        self.revocations.subscribe()
    }
}

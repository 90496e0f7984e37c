//! The guard's client-certificate rules per frame (the connection stage
//! itself is tessera-serve's): they decide by `"/" + URI`, which must
//! already be a canonical path (`tessera_guard::CanonicalPath`): a URI the
//! rules would read differently from the router's exact match (`%70`,
//! `a/../b`, `a//b`, a bare `%`) is refused, so the rules check exactly the
//! route that runs.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tessera_guard::{CanonicalPath, Chain, PeerCert};
use tessera_tls::CertificateInfo;

use crate::Rejection;

/// The certificate rules of one server (none without a guard); a reload
/// swaps them for the frames that follow.
pub(crate) struct FrameRules {
    guard: ArcSwapOption<Chain>,
}

impl FrameRules {
    pub(crate) fn new(guard: Option<Arc<Chain>>) -> Self {
        Self {
            guard: ArcSwapOption::new(guard),
        }
    }

    /// The rules of `guard` from now on.
    pub(crate) fn set(&self, guard: Option<Arc<Chain>>) {
        self.guard.store(guard);
    }

    /// The guard's certificate rules for a frame on `uri`: a URI not in
    /// canonical form, or a rule's denial, is refused.
    pub(crate) fn permitted(
        &self,
        uri: &str,
        certificate: Option<&PeerCert>,
    ) -> Result<(), Rejection> {
        let guard = self.guard.load();
        let Some(guard) = guard.as_deref() else {
            return Ok(());
        };
        let path = CanonicalPath::parse(&format!("/{uri}"))
            .ok()
            .filter(|path| path.as_str().get(1..) == Some(uri))
            .ok_or(Rejection::NotCanonical)?;
        match guard.check_certs(&path, certificate, time::OffsetDateTime::now_utc()) {
            tessera_guard::Decision::Allow => Ok(()),
            tessera_guard::Decision::Deny(denial) => Err(Rejection::NotPermitted(denial.reason)),
        }
    }
}

/// The certificate facts the guard's rules look at.
pub(crate) fn peer_cert(certificate: &CertificateInfo) -> PeerCert {
    PeerCert {
        fingerprint: tessera_guard::CertFingerprint(*certificate.fingerprint().as_bytes()),
        not_before: certificate.not_before(),
        not_after: certificate.not_after(),
    }
}

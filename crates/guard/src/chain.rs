//! Guards and the chain that runs them in the spec's order
//! (`../shared/spec/guard.md` §4): ACL → rate limit → certificate rules, the
//! first denial wins, with a counter per reason a server can expose.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;

use crate::{
    Acl, CanonicalPath, CertRules, Decision, Denial, DenialReason, GlobalLimiter, Limiter, PeerCert,
};

/// What a guard looks at.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The normalised client address (`None`: no address, e.g. a Unix socket).
    pub address: Option<IpAddr>,
    /// The request's path, or `None` at the connection stage.
    pub path: Option<&'a CanonicalPath>,
    /// The peer certificate, if one was presented.
    pub cert: Option<&'a PeerCert>,
}

/// The clocks a decision uses: monotonic nanoseconds for limits, wall time for certificate dates.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Monotonic nanoseconds (any fixed origin).
    pub monotonic_ns: u64,
    /// Wall-clock time.
    pub wall: OffsetDateTime,
}

/// An admission check. Nothing in a guard waits, so it is synchronous.
pub trait Guard: Send + Sync {
    /// Decides one request.
    fn check(&self, request: &Request<'_>, clock: Clock) -> Decision;
}

/// ACL, rate limits and certificate rules in order, with counters.
#[derive(Debug, Default)]
pub struct Chain {
    acl: Option<Acl>,
    limiter: Option<Limiter>,
    global: Option<GlobalLimiter>,
    certs: Option<CertRules>,
    denials: [AtomicU64; 5],
    allowed: AtomicU64,
}

impl Chain {
    /// An empty chain (allows everything).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the ACL.
    pub fn acl(mut self, acl: Acl) -> Self {
        self.acl = Some(acl);
        self
    }

    /// Adds the per-client limiter.
    pub fn limiter(mut self, limiter: Limiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Adds a global budget, checked after the per-client one.
    pub fn global(mut self, global: GlobalLimiter) -> Self {
        self.global = Some(global);
        self
    }

    /// Adds certificate rules (request stage only).
    pub fn certs(mut self, certs: CertRules) -> Self {
        self.certs = Some(certs);
        self
    }

    /// The limiter, for its counters.
    pub fn rate_limiter(&self) -> Option<&Limiter> {
        self.limiter.as_ref()
    }

    /// Denials so far for `reason`.
    pub fn denials(&self, reason: DenialReason) -> u64 {
        self.denials[index(reason)].load(Ordering::Relaxed)
    }

    /// Requests allowed so far.
    pub fn allowed(&self) -> u64 {
        self.allowed.load(Ordering::Relaxed)
    }

    /// The request stage split in two, for protocols that must charge the rate
    /// limit before they parse (`../shared/spec/guard.md` §4): call
    /// [`Guard::check`] with `path: None` on the raw request (ACL, limits), then
    /// this with the canonical path (certificate rules only, never charged twice).
    pub fn check_certs(
        &self,
        path: &CanonicalPath,
        cert: Option<&PeerCert>,
        wall: OffsetDateTime,
    ) -> Decision {
        let Some(certs) = &self.certs else {
            return Decision::Allow;
        };
        match certs.check(path, cert, wall) {
            Ok(()) => Decision::Allow,
            Err(denial) => {
                self.denials[index(denial.reason)].fetch_add(1, Ordering::Relaxed);
                Decision::Deny(denial)
            }
        }
    }

    fn decide(&self, request: &Request<'_>, clock: Clock) -> Result<(), Denial> {
        if let Some(acl) = &self.acl {
            if !acl.allows(request.address) {
                return Err(Denial::new(DenialReason::AccessDenied));
            }
        }
        if let Some(limiter) = &self.limiter {
            // "No address" shares one key: the unspecified IPv6 address.
            let address = request
                .address
                .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
            limiter
                .check(address, clock.monotonic_ns)
                .map_err(rate_limited)?;
        }
        if let Some(global) = &self.global {
            global.check(clock.monotonic_ns).map_err(rate_limited)?;
        }
        if let (Some(certs), Some(path)) = (&self.certs, request.path) {
            certs.check(path, request.cert, clock.wall)?;
        }
        Ok(())
    }
}

impl Guard for Chain {
    fn check(&self, request: &Request<'_>, clock: Clock) -> Decision {
        match self.decide(request, clock) {
            Ok(()) => {
                self.allowed.fetch_add(1, Ordering::Relaxed);
                Decision::Allow
            }
            Err(denial) => {
                self.denials[index(denial.reason)].fetch_add(1, Ordering::Relaxed);
                Decision::Deny(denial)
            }
        }
    }
}

fn rate_limited(wait: std::time::Duration) -> Denial {
    Denial {
        reason: DenialReason::RateLimited,
        retry_after: Some(wait),
    }
}

fn index(reason: DenialReason) -> usize {
    DenialReason::ALL
        .iter()
        .position(|r| *r == reason)
        .unwrap_or(0)
}

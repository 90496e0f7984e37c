//! Guards and the chain that runs them in the spec's order
//! (`../shared/spec/guard.md` §4): ACL → rate limit → certificate rules, the
//! first denial wins, with a counter per reason a server can expose.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;

use crate::{
    Acl, CanonicalPath, CertRules, Decision, Denial, DenialReason, Fallback, GlobalLimiter,
    Limiter, PeerCert, SharedLimit,
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
    shared: Option<SharedLimit>,
    denials: [AtomicU64; 5],
    allowed: AtomicU64,
    fallbacks: AtomicU64,
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

    /// Charges the per-client limit in a store several servers share
    /// instead of in memory, through [`Chain::admit`]; while the store is
    /// unavailable, its fallback decides. Needs [`Chain::limiter`] for the
    /// limit's settings (and for the local fallback).
    pub fn shared(mut self, limit: SharedLimit) -> Self {
        self.shared = Some(limit);
        self
    }

    /// Decisions the shared store could not make in time, so the fallback made them.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Adds certificate rules (request stage only).
    pub fn certs(mut self, certs: CertRules) -> Self {
        self.certs = Some(certs);
        self
    }

    /// Whether the access list lets `address` in, without charging any
    /// limit: for checking open connections again after a reload.
    pub fn allows_address(&self, address: Option<IpAddr>) -> bool {
        self.acl.as_ref().is_none_or(|acl| acl.allows(address))
    }

    /// The limiter, for its counters.
    pub fn rate_limiter(&self) -> Option<&Limiter> {
        self.limiter.as_ref()
    }

    /// Clients the rate limiter holds state for now (0 without one).
    pub fn tracked_clients(&self) -> usize {
        self.limiter.as_ref().map_or(0, Limiter::tracked)
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

    /// [`Guard::check`] with the per-client limit charged in the shared
    /// store when one is set (see [`Chain::shared`]); without one, the same
    /// decision as `check`. Servers call this; `check` stays for callers that
    /// cannot wait (and then charges the local limiter).
    pub async fn admit(&self, request: &Request<'_>, clock: Clock) -> Decision {
        let outcome = match (&self.shared, &self.limiter) {
            (Some(SharedLimit { store, fallback }), Some(limiter)) => {
                let shared = async {
                    self.check_acl(request)?;
                    let key = limiter.key(client_address(request));
                    let (interval, tolerance) = limiter.gcra();
                    match store.check(key, interval, tolerance).await {
                        Ok(verdict) => verdict.map_err(rate_limited),
                        Err(crate::Unavailable) => {
                            self.fallbacks.fetch_add(1, Ordering::Relaxed);
                            match fallback {
                                Fallback::Local => limiter
                                    .check(client_address(request), clock.monotonic_ns)
                                    .map_err(rate_limited),
                                Fallback::Open => Ok(()),
                                Fallback::Closed => Err(rate_limited(Fallback::CLOSED_RETRY)),
                            }
                        }
                    }
                };
                match shared.await {
                    Ok(()) => self.decide_after_limit(request, clock),
                    Err(denial) => Err(denial),
                }
            }
            _ => self.decide(request, clock),
        };
        self.count(outcome)
    }

    fn check_acl(&self, request: &Request<'_>) -> Result<(), Denial> {
        match &self.acl {
            Some(acl) if !acl.allows(request.address) => {
                Err(Denial::new(DenialReason::AccessDenied))
            }
            _ => Ok(()),
        }
    }

    fn decide(&self, request: &Request<'_>, clock: Clock) -> Result<(), Denial> {
        self.check_acl(request)?;
        if let Some(limiter) = &self.limiter {
            limiter
                .check(client_address(request), clock.monotonic_ns)
                .map_err(rate_limited)?;
        }
        self.decide_after_limit(request, clock)
    }

    /// Counts an outcome as allowed or denied by its reason.
    fn count(&self, outcome: Result<(), Denial>) -> Decision {
        match outcome {
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

    /// The steps after the per-client limit: the global budget, then certificate rules.
    fn decide_after_limit(&self, request: &Request<'_>, clock: Clock) -> Result<(), Denial> {
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
        self.count(self.decide(request, clock))
    }
}

/// The address a request is limited under. "No address" shares one key: the
/// unspecified IPv6 address.
fn client_address(request: &Request<'_>) -> IpAddr {
    request
        .address
        .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))
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

//! Rate limits shared by a fleet: several servers charge one budget per
//! client, so the state lives in a store another process owns and a decision
//! waits on it. The guard never waits itself; it states what it asks of such
//! a store ([`SharedRate`]) and what it does when the store cannot answer in
//! time ([`Fallback`]). tessera-fleet implements the store over Redis.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::RateKey;

/// A shared store's answer: allowed, or the wait until the request would be.
pub type SharedVerdict = Result<(), Duration>;

/// The future of one shared decision.
pub type SharedCheck<'a> =
    Pin<Box<dyn Future<Output = Result<SharedVerdict, Unavailable>> + Send + 'a>>;

/// A GCRA rate store several servers share.
pub trait SharedRate: Send + Sync + std::fmt::Debug {
    /// Charges one request under `key` with the GCRA `interval` and
    /// `tolerance` (nanoseconds), atomically and on the store's clock, so
    /// every server sees one budget. A denied request costs nothing. Resolves
    /// to [`Unavailable`] instead of waiting longer than the store's budget.
    fn check(&self, key: RateKey, interval: u64, tolerance: u64) -> SharedCheck<'_>;
}

/// A shared per-client limit: the store, and what to do while it is unavailable.
#[derive(Clone, Debug)]
pub struct SharedLimit {
    /// Where the budgets live.
    pub store: Arc<dyn SharedRate>,
    /// What decides while the store cannot answer.
    pub fallback: Fallback,
}

impl SharedLimit {
    /// A limit in `store` with the `fallback` policy.
    pub fn new(store: Arc<dyn SharedRate>, fallback: Fallback) -> Self {
        Self { store, fallback }
    }
}

/// The shared store did not answer within its budget (down, slow, refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unavailable;

/// What a rate limit does while its shared store is unavailable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fallback {
    /// Each server applies the same limit on its own (default): a client may
    /// get one budget per server until the store is back.
    #[default]
    Local,
    /// Allow every request.
    Open,
    /// Refuse every request (rate limited, retry after [`Fallback::CLOSED_RETRY`]).
    Closed,
}

impl Fallback {
    /// The `retry_after` a closed fallback tells clients.
    pub const CLOSED_RETRY: Duration = Duration::from_secs(1);

    /// Reads `local`, `fail-open` or `fail-closed`.
    ///
    /// # Errors
    /// A message naming the three values.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "local" => Ok(Self::Local),
            "fail-open" | "open" => Ok(Self::Open),
            "fail-closed" | "closed" => Ok(Self::Closed),
            other => Err(format!(
                "{other:?}: expected local, fail-open or fail-closed"
            )),
        }
    }

    /// The name [`Fallback::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Open => "fail-open",
            Self::Closed => "fail-closed",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::{
        Chain, Clock, Decision, DenialReason, Limiter, LimiterConfig, MemoryStore, RateStore,
        Request,
    };

    /// A store in this process, answering at once: what a fleet store does
    /// when every server shares one table.
    struct InProcess(MemoryStore, u64);

    impl std::fmt::Debug for InProcess {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("InProcess")
        }
    }

    impl SharedRate for InProcess {
        fn check(&self, key: RateKey, interval: u64, tolerance: u64) -> SharedCheck<'_> {
            let verdict = RateStore::check(&self.0, key, self.1, interval, tolerance)
                .map_err(Duration::from_nanos);
            Box::pin(std::future::ready(Ok(verdict)))
        }
    }

    /// A store that never answers in time.
    #[derive(Debug)]
    struct Down;

    impl SharedRate for Down {
        fn check(&self, _: RateKey, _: u64, _: u64) -> SharedCheck<'_> {
            Box::pin(std::future::ready(Err(Unavailable)))
        }
    }

    fn ready<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("these stores answer at once"),
        }
    }

    fn limiter(burst: u32) -> Limiter {
        Limiter::new(&LimiterConfig {
            rate: 1.0,
            burst,
            ..LimiterConfig::default()
        })
        .unwrap()
    }

    fn admitted(chain: &Chain, times: usize) -> usize {
        let request = Request {
            address: Some(IpAddr::from([192, 0, 2, 1])),
            path: None,
            cert: None,
        };
        let clock = Clock {
            monotonic_ns: 0,
            wall: time::OffsetDateTime::UNIX_EPOCH,
        };
        (0..times)
            .filter(|_| ready(chain.admit(&request, clock)) == Decision::Allow)
            .count()
    }

    #[test]
    fn two_chains_on_one_store_share_one_budget() {
        let store = Arc::new(InProcess(MemoryStore::new(64).unwrap(), 0));
        let node = || {
            Chain::new()
                .limiter(limiter(3))
                .shared(SharedLimit::new(store.clone(), Fallback::Local))
        };
        let (a, b) = (node(), node());
        assert_eq!(admitted(&a, 2) + admitted(&b, 5), 3);
        // Without the shared store each has its own burst.
        let (a, b) = (
            Chain::new().limiter(limiter(3)),
            Chain::new().limiter(limiter(3)),
        );
        assert_eq!(admitted(&a, 5) + admitted(&b, 5), 6);
    }

    #[test]
    fn an_unavailable_store_falls_back_as_configured() {
        let down: Arc<dyn SharedRate> = Arc::new(Down);
        let local = Chain::new()
            .limiter(limiter(2))
            .shared(SharedLimit::new(down.clone(), Fallback::Local));
        assert_eq!(admitted(&local, 5), 2);
        assert_eq!(local.fallbacks(), 5);
        let open = Chain::new()
            .limiter(limiter(2))
            .shared(SharedLimit::new(down.clone(), Fallback::Open));
        assert_eq!(admitted(&open, 5), 5);
        let closed = Chain::new()
            .limiter(limiter(2))
            .shared(SharedLimit::new(down, Fallback::Closed));
        assert_eq!(admitted(&closed, 5), 0);
        assert_eq!(closed.denials(DenialReason::RateLimited), 5);
    }

    #[test]
    fn fallbacks_parse_by_name() {
        for fallback in [Fallback::Local, Fallback::Open, Fallback::Closed] {
            assert_eq!(Fallback::parse(fallback.name()), Ok(fallback));
        }
        assert!(Fallback::parse("maybe").is_err());
    }
}

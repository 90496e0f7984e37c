//! Limiter tests with a fake clock (nanoseconds).

use std::net::IpAddr;
use std::sync::Arc;

use super::*;

const SECOND: u64 = 1_000_000_000;

fn limiter(rate: f64, burst: u32) -> Limiter {
    Limiter::new(&LimiterConfig {
        rate,
        burst,
        ..LimiterConfig::default()
    })
    .unwrap()
}

fn ip(text: &str) -> IpAddr {
    crate::address::parse_client(text).unwrap()
}

#[test]
fn exactly_burst_at_one_instant_then_the_advertised_wait_is_exact() {
    let limiter = limiter(2.0, 3);
    let now = 10 * SECOND;
    for _ in 0..3 {
        assert!(limiter.check(ip("192.0.2.1"), now).is_ok());
    }
    let wait = limiter.check(ip("192.0.2.1"), now).unwrap_err();
    assert_eq!(wait, Duration::from_millis(500));
    // One nanosecond early is still denied; exactly on time is allowed.
    let wait_ns = wait.as_nanos() as u64;
    assert!(limiter.check(ip("192.0.2.1"), now + wait_ns - 1).is_err());
    assert!(limiter.check(ip("192.0.2.1"), now + wait_ns).is_ok());
}

#[test]
fn a_client_that_waits_the_rounded_up_seconds_succeeds() {
    let limiter = limiter(0.25, 1);
    assert!(limiter.check(ip("203.0.113.1"), 0).is_ok());
    let wait = limiter.check(ip("203.0.113.1"), SECOND / 8).unwrap_err();
    let denial = crate::Denial {
        reason: crate::DenialReason::RateLimited,
        retry_after: Some(wait),
    };
    let secs = denial.retry_after_secs();
    assert!(limiter
        .check(ip("203.0.113.1"), SECOND / 8 + secs * SECOND)
        .is_ok());
}

#[test]
fn ipv6_is_keyed_per_64_and_mapped_ipv4_shares_the_ipv4_key() {
    let limiter = limiter(1.0, 2);
    assert!(limiter.check(ip("2001:db8:1:2::1"), 0).is_ok());
    assert!(limiter.check(ip("2001:db8:1:2::2"), 0).is_ok());
    assert!(limiter.check(ip("2001:db8:1:2::3"), 0).is_err());
    assert!(limiter.check(ip("2001:db8:1:3::1"), 0).is_ok());
    assert_eq!(
        limiter.key(ip("2001:db8:1:2::9")).to_string(),
        "2001:db8:1:2::/64"
    );
    let limiter = self::limiter(1.0, 1);
    assert!(limiter.check(ip("192.0.2.9"), 0).is_ok());
    assert!(limiter.check(ip("::ffff:192.0.2.9"), 0).is_err());
    assert_eq!(
        limiter.key(ip("::ffff:192.0.2.9")).to_string(),
        "192.0.2.9/32"
    );
}

/// A client whose bucket had refilled took a second slot (the lookup only
/// matched entries still in debt), so one client was tracked several times:
/// `tessera_guard_tracked_clients` read 3 for a server with one client, in a
/// CI run where its connections came more than a second apart.
#[test]
fn regression_a_client_that_comes_back_after_a_refill_keeps_its_one_slot() {
    let limiter = limiter(1.0, 1);
    for visit in 0..5 {
        assert!(limiter.check(ip("192.0.2.7"), visit * 10 * SECOND).is_ok());
        assert_eq!(limiter.tracked(), 1, "after visit {visit}");
    }
    // It is limited as before: the bucket it came back to is full, no fuller.
    assert!(limiter.check(ip("192.0.2.7"), 40 * SECOND).is_err());
}

#[test]
fn the_table_never_exceeds_its_cap_under_a_million_distinct_clients() {
    let limiter = Limiter::new(&LimiterConfig {
        max_clients: 10_000,
        ..LimiterConfig::default()
    })
    .unwrap();
    for i in 0..1_000_000u32 {
        let address = IpAddr::from(std::net::Ipv4Addr::from(0x0A00_0000 + i));
        assert!(limiter.check(address, u64::from(i)).is_ok());
        if i % 50_000 == 0 {
            assert!(limiter.tracked() <= 10_000);
        }
    }
    assert_eq!(limiter.tracked(), 10_000);
    assert!(limiter.evictions() > 0);
}

#[test]
fn threads_on_one_key_with_a_frozen_clock_admit_exactly_burst() {
    let limiter = Arc::new(limiter(1.0, 50));
    let admitted = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (limiter, admitted) = (limiter.clone(), admitted.clone());
            std::thread::spawn(move || {
                for _ in 0..1_000 {
                    if limiter.check(ip("198.51.100.7"), 5 * SECOND).is_ok() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(admitted.load(Ordering::Relaxed), 50);
}

#[test]
fn the_global_budget_admits_exactly_burst_across_threads() {
    let global = Arc::new(GlobalLimiter::new(1.0, 20).unwrap());
    let admitted = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (global, admitted) = (global.clone(), admitted.clone());
            std::thread::spawn(move || {
                for _ in 0..500 {
                    if global.check(SECOND).is_ok() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(admitted.load(Ordering::Relaxed), 20);
}

#[test]
fn invalid_settings_are_errors() {
    for (rate, burst) in [(0.0, 1), (-1.0, 1), (f64::NAN, 1), (1.0, 0)] {
        assert!(Limiter::new(&LimiterConfig {
            rate,
            burst,
            ..LimiterConfig::default()
        })
        .is_err());
    }
    assert!(Limiter::new(&LimiterConfig {
        max_clients: 0,
        ..LimiterConfig::default()
    })
    .is_err());
}

//! Parsing and checking Hashcash v1 stamps with the CLI's default rules:
//! claimed bits at least the required bits and really present in the SHA-1,
//! date within 28 days of expiry plus 2 days of grace either way, resource equal
//! ignoring case. Input is bounded before anything is hashed.

use sha1::{Digest, Sha1};
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::Error;

/// Longest stamp we look at.
pub const MAX_STAMP_LEN: usize = 1024;

/// What a verifier requires of a stamp.
#[derive(Clone, Debug)]
pub struct HashcashPolicy {
    bits: u32,
    resource: String,
    expiry: Duration,
    grace: Duration,
}

impl HashcashPolicy {
    /// Requires `bits` zero bits for `resource`, with the CLI's defaults:
    /// 28-day expiry, 2-day grace.
    pub fn new(bits: u32, resource: &str) -> Self {
        Self {
            bits,
            resource: resource.to_owned(),
            expiry: Duration::days(28),
            grace: Duration::days(2),
        }
    }

    /// Stamp validity period (`-e`). Zero means never expires.
    pub fn expiry(&mut self, expiry: Duration) -> &mut Self {
        self.expiry = expiry;
        self
    }

    /// Clock-skew tolerance in both directions (`-g`).
    pub fn grace(&mut self, grace: Duration) -> &mut Self {
        self.grace = grace;
        self
    }
}

/// A verified stamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The stamp text.
    pub text: String,
    /// Claimed (and present) zero bits.
    pub bits: u32,
    /// The stamp's date.
    pub date: OffsetDateTime,
    /// The resource as written in the stamp.
    pub resource: String,
    /// When a spent-stamp set may forget it (date + expiry + grace), if it expires.
    pub expires_at: Option<OffsetDateTime>,
}

/// Checks `stamp` against `policy` at `now`.
///
/// # Errors
/// [`Error::InvalidStamp`] naming the failed rule.
pub fn verify(stamp: &str, policy: &HashcashPolicy, now: OffsetDateTime) -> Result<Stamp, Error> {
    let bad = |why: &str| Error::InvalidStamp(why.to_owned());
    if stamp.len() > MAX_STAMP_LEN {
        return Err(bad("longer than 1024 bytes"));
    }
    let fields: Vec<&str> = stamp.split(':').collect();
    let [version, bits, date, resource, _extension, rand, counter] = fields[..] else {
        return Err(bad("expected 7 colon-separated fields"));
    };
    if version != "1" {
        return Err(bad("version is not 1"));
    }
    if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("bits is not a number"));
    }
    let claimed: u32 = bits.parse().map_err(|_| bad("bits is not a number"))?;
    if claimed > 160 {
        return Err(bad("claims more than 160 bits"));
    }
    if claimed < policy.bits {
        return Err(Error::InvalidStamp(format!(
            "claims {claimed} bits, {} required",
            policy.bits
        )));
    }
    let is_base64 = |field: &str| {
        field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
    };
    if !is_base64(rand) || !is_base64(counter) {
        return Err(bad("rand or counter outside the base64 alphabet"));
    }
    if !resource.eq_ignore_ascii_case(&policy.resource) {
        return Err(Error::InvalidStamp(format!(
            "resource {resource:?} is not {:?}",
            policy.resource
        )));
    }
    let date_time = parse_date(date).ok_or_else(|| bad("date is not YYMMDD[hhmm[ss]]"))?;
    if date_time > now + policy.grace {
        return Err(bad("dated in the future"));
    }
    let expires_at = (!policy.expiry.is_zero()).then(|| date_time + policy.expiry + policy.grace);
    if expires_at.is_some_and(|at| at < now) {
        return Err(bad("expired"));
    }
    let present = leading_zero_bits(&Sha1::digest(stamp.as_bytes()));
    if present < claimed {
        return Err(Error::InvalidStamp(format!(
            "claims {claimed} bits but has {present}"
        )));
    }
    Ok(Stamp {
        text: stamp.to_owned(),
        bits: claimed,
        date: date_time,
        resource: resource.to_owned(),
        expires_at,
    })
}

/// Leading zero bits of a digest.
pub fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in digest {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

/// `YYMMDD`, `YYMMDDhhmm` or `YYMMDDhhmmss`, UTC.
pub(crate) fn parse_date(text: &str) -> Option<OffsetDateTime> {
    if !matches!(text.len(), 6 | 10 | 12) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |i: usize| text.get(i..i + 2).and_then(|f| f.parse::<u8>().ok());
    let yy = i32::from(field(0)?);
    let year = if yy < 70 { 2000 + yy } else { 1900 + yy };
    let date = Date::from_calendar_date(year, Month::try_from(field(2)?).ok()?, field(4)?).ok()?;
    let (hour, minute, second) = match text.len() {
        6 => (0, 0, 0),
        10 => (field(6)?, field(8)?, 0),
        _ => (field(6)?, field(8)?, field(10)?),
    };
    let time = Time::from_hms(hour, minute, second).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// `YYMMDD` of `at` in UTC, as the CLI writes by default.
pub(crate) fn format_date(at: OffsetDateTime) -> String {
    format!(
        "{:02}{:02}{:02}",
        at.year() % 100,
        u8::from(at.month()),
        at.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> OffsetDateTime {
        parse_date("261123120000").unwrap()
    }

    /// Brute-forces a stamp with at least `bits` bits (small bits only).
    fn stamp_with(bits: u32, date: &str, resource: &str) -> String {
        (0u64..)
            .map(|i| format!("1:{bits}:{date}:{resource}::abcdefgh:{i}"))
            .find(|s| leading_zero_bits(&Sha1::digest(s.as_bytes())) >= bits)
            .unwrap()
    }

    #[test]
    fn valid_stamps_pass_and_each_rule_is_enforced() {
        let stamp = stamp_with(8, "261120", "Alice@Example.org");
        let policy = HashcashPolicy::new(8, "alice@example.org");
        let ok = verify(&stamp, &policy, now()).unwrap();
        assert_eq!(ok.bits, 8);
        assert!(verify(&stamp, &HashcashPolicy::new(9, "alice@example.org"), now()).is_err());
        assert!(verify(&stamp, &HashcashPolicy::new(8, "bob@example.org"), now()).is_err());
        // Expired after 28 + 2 days; future beyond 2 days.
        let old = stamp_with(4, "261020", "x");
        assert!(verify(&old, &HashcashPolicy::new(4, "x"), now())
            .unwrap_err()
            .to_string()
            .contains("expired"));
        let future = stamp_with(4, "261126", "x");
        assert!(verify(&future, &HashcashPolicy::new(4, "x"), now())
            .unwrap_err()
            .to_string()
            .contains("future"));
        let near_future = stamp_with(4, "261124", "x");
        assert!(verify(&near_future, &HashcashPolicy::new(4, "x"), now()).is_ok());
        // Claiming more than present.
        let weak = format!("1:20:261120:x::abc:{}", 0);
        assert!(verify(&weak, &HashcashPolicy::new(1, "x"), now()).is_err());
    }

    #[test]
    fn malformed_stamps_are_rejected() {
        let policy = HashcashPolicy::new(0, "x");
        for bad in [
            "",
            "1:0:261120:x::a",
            "0:0:261120:x::a:b",
            "1:x:261120:x::a:b",
            "1:0:2611:x::a:b",
            "1:0:261120:x::a!:b",
            "1:999:261120:x::a:b",
            "1:0:261120:x::a:b:c",
        ] {
            assert!(verify(bad, &policy, now()).is_err(), "{bad}");
        }
        assert!(verify(&"1".repeat(2000), &policy, now()).is_err());
    }

    #[test]
    fn dates_in_all_three_widths() {
        assert_eq!(parse_date("261123").unwrap().day(), 23);
        assert_eq!(parse_date("2611231205").unwrap().minute(), 5);
        assert_eq!(parse_date("261123120509").unwrap().second(), 9);
        assert!(parse_date("261323").is_none());
        assert_eq!(format_date(now()), "261123");
    }

    proptest! {
        #[test]
        fn arbitrary_stamps_never_panic(text in ".{0,300}", bits in 0u32..200) {
            let _ = verify(&text, &HashcashPolicy::new(bits, "x"), now());
        }
    }
}

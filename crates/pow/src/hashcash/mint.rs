//! Minting Hashcash v1 stamps as the CLI does (lower-cased resource, YYMMDD
//! date, 16 base64 characters of randomness), with the counter placed in whole
//! words of the last SHA-1 block and searched by the SIMD kernels.

use rand::Rng;
use sha1::{Digest, Sha1};
use time::OffsetDateTime;

use super::stamp::{format_date, leading_zero_bits};
use super::BASE64;
use crate::search::{search, SearchOptions, Target};
use crate::Error;

/// Most bits we mint (2^60 candidates is beyond any CPU).
pub const MAX_MINT_BITS: u32 = 60;
/// Longest counter we append.
const MAX_COUNTER_LEN: usize = 64;

/// Mints a stamp worth `bits` for `resource`, dated `now`.
///
/// # Errors
/// [`Error::InvalidResource`], [`Error::InvalidBits`], [`Error::Cancelled`],
/// [`Error::DeadlineExceeded`].
pub fn mint(
    resource: &str,
    bits: u32,
    now: OffsetDateTime,
    options: &SearchOptions,
) -> Result<String, Error> {
    if resource.is_empty() {
        return Err(Error::InvalidResource("empty"));
    }
    if resource.contains(':') || resource.chars().any(char::is_control) || resource.len() > 512 {
        return Err(Error::InvalidResource(
            "contains a colon or control character, or is over 512 bytes",
        ));
    }
    if bits > MAX_MINT_BITS {
        return Err(Error::InvalidBits {
            bits,
            max: MAX_MINT_BITS,
        });
    }
    let mut rng = rand::rng();
    let rand: String = (0..16)
        .map(|_| char::from(BASE64[rng.random_range(0..64)]))
        .collect();
    let prefix = format!(
        "1:{bits}:{}:{}::{rand}:",
        format_date(now),
        resource.to_lowercase()
    );
    let verify = |counter: &str| {
        let mut hasher = Sha1::new();
        hasher.update(prefix.as_bytes());
        hasher.update(counter.as_bytes());
        leading_zero_bits(&hasher.finalize()) >= bits
    };
    let found = search(
        prefix.as_bytes(),
        BASE64,
        Target::Sha1Leading,
        bits,
        MAX_COUNTER_LEN,
        options,
        &verify,
    )?;
    Ok(format!("{prefix}{}", found.nonce))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashcash::{verify, HashcashPolicy};
    use crate::Kernel;

    #[test]
    fn minted_stamps_verify_on_every_kernel() {
        let now = OffsetDateTime::now_utc();
        for kernel in Kernel::available() {
            let mut options = SearchOptions::default();
            options.kernel(kernel).unwrap().threads(2);
            let stamp = mint("User@Example.org", 14, now, &options).unwrap();
            assert!(stamp.starts_with("1:14:"), "{stamp}");
            assert!(stamp.contains(":user@example.org::"), "{stamp}");
            verify(&stamp, &HashcashPolicy::new(14, "user@example.org"), now).unwrap();
        }
    }

    #[test]
    fn bad_resources_are_refused() {
        let options = SearchOptions::default();
        let now = OffsetDateTime::now_utc();
        assert!(mint("", 1, now, &options).is_err());
        assert!(mint("a:b", 1, now, &options).is_err());
        assert!(mint("a", 61, now, &options).is_err());
    }
}

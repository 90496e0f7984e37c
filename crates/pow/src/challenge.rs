//! A SHA-256 leading-zero challenge for Tessera's own protocols
//! (`../shared/spec/pow.md` §3, §8): 128 random bits from the OS CSPRNG, an
//! expiry and a difficulty, bound to a caller-chosen context (connection,
//! session) so a solution cannot be reused elsewhere. Single use is the
//! server's job: remember issued challenges until they expire.

use rand::RngCore;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::hashcash::leading_zero_bits;
use crate::search::{search, SearchOptions, Target};
use crate::Error;

/// Most bits a challenge may ask for.
pub const MAX_CHALLENGE_BITS: u32 = 48;
/// Longest nonce accepted.
pub const MAX_NONCE_LEN: usize = 64;
/// Longest challenge text accepted.
const MAX_TEXT_LEN: usize = 128;
/// Longest context accepted.
const MAX_CONTEXT_LEN: usize = 1024;

/// An issued challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    random: [u8; 16],
    expires_at: i64,
    bits: u32,
}

impl Challenge {
    /// A fresh challenge of `bits` that expires `ttl` after `now`.
    ///
    /// # Errors
    /// [`Error::InvalidBits`] above [`MAX_CHALLENGE_BITS`].
    pub fn issue(bits: u32, ttl: Duration, now: OffsetDateTime) -> Result<Self, Error> {
        if bits > MAX_CHALLENGE_BITS {
            return Err(Error::InvalidBits {
                bits,
                max: MAX_CHALLENGE_BITS,
            });
        }
        let mut random = [0u8; 16];
        // ThreadRng is a CSPRNG (ChaCha) seeded from the OS.
        rand::rng().fill_bytes(&mut random);
        Ok(Self {
            random,
            expires_at: (now + ttl).unix_timestamp(),
            bits,
        })
    }

    /// Parses `v1.<32 hex>.<expiry unix seconds>.<bits>`.
    ///
    /// # Errors
    /// [`Error::InvalidChallenge`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = Error::InvalidChallenge("expected v1.<32 hex>.<expiry>.<bits>");
        if text.len() > MAX_TEXT_LEN {
            return Err(bad);
        }
        let mut parts = text.split('.');
        let (Some("v1"), Some(random), Some(expiry), Some(bits), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad);
        };
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(random, &mut bytes)
            .map_err(|_| Error::InvalidChallenge("random is not 32 hex digits"))?;
        let bits: u32 = bits
            .parse()
            .map_err(|_| Error::InvalidChallenge("bits is not a number"))?;
        if bits > MAX_CHALLENGE_BITS {
            return Err(Error::InvalidBits {
                bits,
                max: MAX_CHALLENGE_BITS,
            });
        }
        Ok(Self {
            random: bytes,
            expires_at: expiry
                .parse()
                .map_err(|_| Error::InvalidChallenge("expiry is not a number"))?,
            bits,
        })
    }

    /// Difficulty in leading zero bits.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The text form sent to clients.
    pub fn to_text(&self) -> String {
        format!(
            "v1.{}.{}.{}",
            hex::encode(self.random),
            self.expires_at,
            self.bits
        )
    }

    /// Finds a nonce for this challenge in `context`.
    ///
    /// # Errors
    /// [`Error::InvalidChallenge`] for an over-long context; [`Error::Cancelled`],
    /// [`Error::DeadlineExceeded`].
    pub fn solve(&self, context: &str, options: &SearchOptions) -> Result<String, Error> {
        let message = self.message(context)?;
        let bits = self.bits;
        let verify = |nonce: &str| leading_zero_bits(&digest(&message, nonce)) >= bits;
        let found = search(
            &message,
            crate::simd::ALPHABET,
            Target::Sha256Leading,
            bits,
            MAX_NONCE_LEN,
            options,
            &verify,
        )?;
        Ok(found.nonce)
    }

    /// Checks `nonce` for this challenge in `context` at `now`.
    ///
    /// # Errors
    /// [`Error::InvalidChallenge`]: expired, over-long nonce or context, or too few bits.
    pub fn verify(&self, context: &str, nonce: &str, now: OffsetDateTime) -> Result<(), Error> {
        if now.unix_timestamp() > self.expires_at {
            return Err(Error::InvalidChallenge("expired"));
        }
        if nonce.len() > MAX_NONCE_LEN {
            return Err(Error::InvalidChallenge("nonce longer than 64 bytes"));
        }
        let message = self.message(context)?;
        if leading_zero_bits(&digest(&message, nonce)) < self.bits {
            return Err(Error::InvalidChallenge("not enough leading zero bits"));
        }
        Ok(())
    }

    fn message(&self, context: &str) -> Result<Vec<u8>, Error> {
        if context.len() > MAX_CONTEXT_LEN {
            return Err(Error::InvalidChallenge("context longer than 1024 bytes"));
        }
        Ok(format!("tessera-pow-v1:{}:{context}:", self.to_text()).into_bytes())
    }
}

fn digest(message: &[u8], nonce: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(message);
    hasher.update(nonce.as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_challenges_and_nonces_never_panic(text in ".{0,200}", nonce in ".{0,100}", context in ".{0,50}") {
            if let Ok(challenge) = Challenge::parse(&text) {
                let _ = challenge.verify(&context, &nonce, OffsetDateTime::now_utc());
            }
        }
    }

    #[test]
    fn solutions_verify_only_in_their_context_and_before_expiry() {
        let now = OffsetDateTime::now_utc();
        let challenge = Challenge::issue(12, Duration::minutes(5), now).unwrap();
        let parsed = Challenge::parse(&challenge.to_text()).unwrap();
        assert_eq!(parsed, challenge);
        let nonce = parsed.solve("conn-1", &SearchOptions::default()).unwrap();
        challenge.verify("conn-1", &nonce, now).unwrap();
        assert!(challenge.verify("conn-2", &nonce, now).is_err() || challenge.bits() == 0);
        assert!(challenge
            .verify("conn-1", &nonce, now + Duration::minutes(6))
            .is_err());
        assert!(challenge.verify("conn-1", &"A".repeat(65), now).is_err());
    }

    #[test]
    fn malformed_challenges_are_rejected() {
        for bad in [
            "",
            "v2.00.1.1",
            "v1.zz.1.1",
            "v1.00000000000000000000000000000000.x.1",
            "v1.00000000000000000000000000000000.1.49",
            "v1.00000000000000000000000000000000.1.1.1",
        ] {
            assert!(Challenge::parse(bad).is_err(), "{bad}");
        }
        assert!(Challenge::issue(49, Duration::minutes(1), OffsetDateTime::now_utc()).is_err());
    }
}

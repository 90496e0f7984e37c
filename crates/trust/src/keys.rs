//! Ed25519 keys as 32-byte seeds in hex (`../shared/spec/trust.md` §1): the
//! issuer key is the Biscuit root key (and, for compatibility, may sign jobs);
//! the holder key signs each request.

use std::sync::LazyLock;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use zeroize::Zeroizing;

use crate::Error;

/// A private Ed25519 key (the 32-byte seed). `Debug` prints only the public key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

/// A public Ed25519 key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl SecretKey {
    /// From 64 hex digits (either case).
    ///
    /// # Errors
    /// [`Error::Invalid`] when the text is not 32 bytes of hex.
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        // Seed copies are wiped on drop; the SigningKey wipes its own.
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), &mut *seed)
            .map_err(|_| Error::Invalid("a key seed must be 64 hex digits".into()))?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        Self(SigningKey::from_bytes(&rand::random()))
    }

    /// The seed as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message` (RFC 8032, deterministic) and returns 128 lower-case hex digits.
    pub fn sign_hex(&self, message: &[u8]) -> String {
        hex::encode(self.0.sign(message).to_bytes())
    }

    /// The Biscuit root public key of this seed (to parse tokens it issued).
    pub fn public_biscuit(&self) -> biscuit_auth::PublicKey {
        self.biscuit().public()
    }

    /// The Biscuit root key pair for this seed.
    pub(crate) fn biscuit(&self) -> biscuit_auth::KeyPair {
        // A 32-byte seed is always a valid Ed25519 private key.
        biscuit_auth::KeyPair::from(
            &biscuit_auth::PrivateKey::from_bytes(
                &*Zeroizing::new(self.0.to_bytes()),
                biscuit_auth::Algorithm::Ed25519,
            )
            .unwrap_or_else(|_| unreachable!("32-byte Ed25519 seed")),
        )
    }
}

/// Accepts exactly what ed25519-dalek's `verify_strict` accepts (and
/// libsodium: canonical `s`, no small-order key or `R`), for one field
/// exponentiation where `verify_strict` spends two (it decompresses `R`, then
/// compresses the computed point to compare). `verify` compares the canonical
/// encoding of the computed point with `R`'s bytes, so once it passes, `R` is
/// that point, and it is of small order exactly when its bytes are one of
/// the eight torsion points' encodings.
fn verify_strictly(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
    !key.is_weak()
        && key.verify(message, signature).is_ok()
        && !SMALL_ORDER_ENCODINGS.contains(signature.r_bytes())
}

/// The canonical encodings of the points of small order.
static SMALL_ORDER_ENCODINGS: LazyLock<[[u8; 32]; 8]> = LazyLock::new(|| {
    curve25519_dalek::constants::EIGHT_TORSION.map(|point| point.compress().to_bytes())
});

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(public {})", self.public().to_hex())
    }
}

impl PublicKey {
    /// From 64 hex digits (either case).
    ///
    /// # Errors
    /// [`Error::Malformed`] when it is not a valid Ed25519 public key.
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| Error::Malformed("public key is not 64 hex digits".into()))?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| Error::Malformed("not an Ed25519 public key".into()))
    }

    /// 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// Verifies a hex signature (either case, exactly 128 digits) over `message`.
    ///
    /// # Errors
    /// [`Error::Malformed`] for bad hex or length; `Ok(false)` for a wrong signature.
    pub fn verify_hex(&self, message: &[u8], signature_hex: &str) -> Result<bool, Error> {
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(signature_hex, &mut bytes)
            .map_err(|_| Error::Malformed("signature is not 128 hex digits".into()))?;
        Ok(verify_strictly(
            &self.0,
            message,
            &Signature::from_bytes(&bytes),
        ))
    }

    pub(crate) fn biscuit(&self) -> Result<biscuit_auth::PublicKey, Error> {
        biscuit_auth::PublicKey::from_bytes(&self.0.to_bytes(), biscuit_auth::Algorithm::Ed25519)
            .map_err(|e| Error::Token(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::Scalar;
    use proptest::prelude::*;
    use sha2::{Digest, Sha512};

    fn strict(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
        key.verify_strict(message, signature).is_ok()
    }

    fn signature(r: [u8; 32], s: [u8; 32]) -> Signature {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&r);
        bytes[32..].copy_from_slice(&s);
        Signature::from_bytes(&bytes)
    }

    #[test]
    fn small_order_keys_and_r_are_refused_as_verify_strict_refuses_them() {
        let message = b"lease";
        let identity = EIGHT_TORSION[0].compress().to_bytes();
        // A small-order key: R = identity, s = 0 passes plain `verify` for any message.
        let weak = VerifyingKey::from_bytes(&identity).unwrap();
        let forged = signature(identity, [0; 32]);
        assert!(weak.verify(message, &forged).is_ok());
        assert!(!strict(&weak, message, &forged));
        assert!(!verify_strictly(&weak, message, &forged));
        // An honest key and R of small order: s = k·a makes s·B − k·A the identity.
        let signing = SigningKey::from_bytes(&[7; 32]);
        let key = signing.verifying_key();
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(identity)
                .chain_update(key.as_bytes())
                .chain_update(message),
        );
        let forged = signature(identity, (k * signing.to_scalar()).to_bytes());
        assert!(key.verify(message, &forged).is_ok());
        assert!(!strict(&key, message, &forged));
        assert!(!verify_strictly(&key, message, &forged));
        // A key of order 8 and an R that is not of small order: find s such
        // that R = s·B − k·A holds, where k·A depends only on k mod 8.
        let order_eight = EIGHT_TORSION[1];
        let weak = VerifyingKey::from_bytes(&order_eight.compress().to_bytes()).unwrap();
        let forged = (1u64..)
            .flat_map(|s| (0u64..8).map(move |j| (Scalar::from(s), j)))
            .find_map(|(s, j)| {
                let r = (curve25519_dalek::EdwardsPoint::mul_base(&s)
                    - Scalar::from(j) * order_eight)
                    .compress()
                    .to_bytes();
                let k = Scalar::from_hash(
                    Sha512::new()
                        .chain_update(r)
                        .chain_update(weak.as_bytes())
                        .chain_update(message),
                );
                (k * order_eight == Scalar::from(j) * order_eight)
                    .then(|| signature(r, s.to_bytes()))
            })
            .unwrap();
        assert!(!SMALL_ORDER_ENCODINGS.contains(forged.r_bytes()));
        assert!(weak.verify(message, &forged).is_ok());
        assert!(!strict(&weak, message, &forged));
        assert!(!verify_strictly(&weak, message, &forged));
        // And an honest signature passes.
        assert!(verify_strictly(&key, message, &signing.sign(message)));
    }

    proptest! {
        #[test]
        fn accepts_exactly_what_verify_strict_accepts(
            seed in any::<[u8; 32]>(),
            message in proptest::collection::vec(any::<u8>(), 0..64),
            flip in 0usize..600,
            torsion_r in 0usize..12,
        ) {
            let signing = SigningKey::from_bytes(&seed);
            let key = signing.verifying_key();
            let mut bytes = signing.sign(&message).to_bytes();
            if flip < 512 {
                bytes[flip / 8] ^= 1 << (flip % 8);
            }
            if let Some(point) = EIGHT_TORSION.get(torsion_r) {
                bytes[..32].copy_from_slice(&point.compress().to_bytes());
            }
            let signature = Signature::from_bytes(&bytes);
            prop_assert_eq!(
                verify_strictly(&key, &message, &signature),
                strict(&key, &message, &signature)
            );
        }
    }
}

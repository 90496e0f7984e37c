//! Ed25519 keys as 32-byte seeds in hex (`../shared/spec/trust.md` §1): the
//! issuer key is the Biscuit root key (and, for compatibility, may sign jobs);
//! the holder key signs each request.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
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
        Ok(self
            .0
            .verify_strict(message, &Signature::from_bytes(&bytes))
            .is_ok())
    }

    pub(crate) fn biscuit(&self) -> Result<biscuit_auth::PublicKey, Error> {
        biscuit_auth::PublicKey::from_bytes(&self.0.to_bytes(), biscuit_auth::Algorithm::Ed25519)
            .map_err(|e| Error::Token(e.to_string()))
    }
}

//! Capability auth with tessera-trust: a client presents a Biscuit token and
//! proves possession of its holder key for every frame (an Ed25519 signature
//! over the frame: type, flags, request id, URI and body, with a timestamp and
//! nonce); the server checks the token against the issuer key, the proof, the
//! time window and the nonce. Replies are not signed by this layer: they
//! travel inside the TLS session the client verified.
//!
//! The auth section holds the proof's fields as `name: value` lines (the
//! trust-core header names), so tools that know those headers can read it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tessera_trust::{
    prove, Authenticated, Identity, MemoryReplayCache, Proof, Request as TrustRequest, SecretKey,
    Verifier,
};

use crate::{AuthFailure, Frame, FrameAuth, Principal};

/// Which side a [`CapabilityAuth`] is on, with what it needs.
enum Side {
    Client {
        holder: Box<SecretKey>,
        token: String,
    },
    Server {
        verifier: Arc<Verifier>,
    },
}

/// Biscuit capability tokens with proof of possession per frame.
pub struct CapabilityAuth {
    side: Side,
}

impl std::fmt::Debug for CapabilityAuth {
    /// Never prints keys or tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = match self.side {
            Side::Client { .. } => "client",
            Side::Server { .. } => "server",
        };
        f.debug_struct("CapabilityAuth")
            .field("side", &side)
            .finish_non_exhaustive()
    }
}

impl CapabilityAuth {
    /// The client side: presents `token` and proves with `holder`, the key the token names.
    pub fn client(holder: SecretKey, token: impl Into<String>) -> Self {
        Self {
            side: Side::Client {
                holder: Box::new(holder),
                token: token.into(),
            },
        }
    }

    /// The server side: accepts tokens `verifier` accepts, with a replay
    /// cache of [`MemoryReplayCache::DEFAULT_CAP`] nonces.
    pub fn server(mut verifier: Verifier) -> Self {
        verifier.replay_cache(Arc::new(MemoryReplayCache::new(
            MemoryReplayCache::DEFAULT_CAP,
        )));
        Self {
            side: Side::Server {
                verifier: Arc::new(verifier),
            },
        }
    }

    /// The server side for tokens of a new `issuer` (a reload), sharing this
    /// layer's replay cache and revocations ([`Verifier::for_issuer`]), so a
    /// frame this one accepted stays refused. `None` on the client side.
    ///
    /// # Errors
    /// [`tessera_trust::Error::Token`] when the key is unusable.
    pub fn rekeyed(
        &self,
        issuer: &tessera_trust::PublicKey,
    ) -> Result<Option<Self>, tessera_trust::Error> {
        let Side::Server { verifier } = &self.side else {
            return Ok(None);
        };
        Ok(Some(Self {
            side: Side::Server {
                verifier: Arc::new(verifier.for_issuer(issuer)?),
            },
        }))
    }
}

/// The request a proof covers: the frame's type as the method, its URI as the
/// path, and as the body the encoded header (with the auth length left 0, as
/// the section is not written yet), URI and body.
fn covered(frame: &Frame) -> (String, String, Vec<u8>) {
    let mut body = frame.signed_prefix(0);
    body.extend_from_slice(&frame.body);
    (
        format!("WIRE-{}", frame.kind.0),
        format!("/{}", frame.uri),
        body,
    )
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl FrameAuth for CapabilityAuth {
    fn sign(&self, frame: &mut Frame) {
        let Side::Client { holder, token } = &self.side else {
            return;
        };
        let (method, path, body) = covered(frame);
        let request = TrustRequest {
            method: &method,
            path: &path,
            body: &body,
        };
        let timestamp = format!("{}", now().floor() as u64);
        let nonce: String = rand::random::<[u8; 16]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let proof = prove(holder, token, &request, &timestamp, &nonce);
        let section: String = proof
            .headers()
            .into_iter()
            .map(|(name, value)| format!("{name}: {value}\n"))
            .collect();
        frame.auth = section.into_bytes().into();
    }

    fn verify(&self, frame: &Frame) -> Result<(), AuthFailure> {
        self.authenticate(frame).map(drop)
    }

    fn authenticate(&self, frame: &Frame) -> Result<Option<Principal>, AuthFailure> {
        let Side::Server { verifier } = &self.side else {
            return Ok(None);
        };
        let section = std::str::from_utf8(&frame.auth).map_err(|_| AuthFailure::Missing)?;
        let headers = section.lines().filter_map(|line| line.split_once(": "));
        let proof = Proof::from_headers(headers).map_err(|_| AuthFailure::Missing)?;
        let (method, path, body) = covered(frame);
        let request = TrustRequest {
            method: &method,
            path: &path,
            body: &body,
        };
        let token =
            verifier
                .authenticate(&proof, &request, now())
                .map_err(|error| match error {
                    tessera_trust::Error::Stale => AuthFailure::Stale,
                    tessera_trust::Error::Replay => AuthFailure::Replayed,
                    tessera_trust::Error::Pop => AuthFailure::BadMac,
                    tessera_trust::Error::Expired => AuthFailure::Expired,
                    tessera_trust::Error::Revoked => AuthFailure::Revoked,
                    tessera_trust::Error::Unavailable(_) => AuthFailure::Unavailable,
                    _ => AuthFailure::InvalidToken,
                })?;
        Ok(Some(Principal::Capability(Capability {
            verifier: verifier.clone(),
            token,
        })))
    }
}

/// A sender proven by a capability token: who it is, and its token, against
/// which a route can run a Datalog policy.
#[derive(Clone)]
pub struct Capability {
    verifier: Arc<Verifier>,
    token: Authenticated,
}

impl std::fmt::Debug for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capability")
            .field("identity", self.identity())
            .finish_non_exhaustive()
    }
}

impl Capability {
    /// The holder as the token names it.
    pub fn identity(&self) -> &Identity {
        self.token.identity()
    }

    /// Runs the Datalog policy `allow` (e.g. `allow if right("jobs", "write")`)
    /// against the token with `facts` about the request added: every check
    /// in the token must pass and `allow` must match.
    ///
    /// # Errors
    /// [`tessera_trust::Error::Policy`] when refused; configuration errors for
    /// a policy that does not parse or facts that shadow the token's.
    pub fn check(
        &self,
        allow: &str,
        facts: &[(String, String)],
    ) -> Result<(), tessera_trust::Error> {
        self.verifier.check_policy(&self.token, facts, allow, now())
    }
}

#[cfg(test)]
mod tests {
    use tessera_trust::{mint, MintRequest};

    use super::*;
    use crate::MessageType;

    fn setup(expires_at: f64) -> (CapabilityAuth, CapabilityAuth) {
        setup_for(&SecretKey::generate(), expires_at)
    }

    fn setup_for(issuer: &SecretKey, expires_at: f64) -> (CapabilityAuth, CapabilityAuth) {
        let holder = SecretKey::generate();
        let token = mint(
            issuer,
            &MintRequest {
                worker_public: holder.public().to_hex(),
                holder_id: "worker-1".into(),
                facts: vec![("right".into(), vec!["echo".into()])],
                revocation_id: "rev-1".into(),
                expires_at,
            },
        )
        .unwrap();
        let server = CapabilityAuth::server(Verifier::new(&issuer.public()).unwrap());
        (CapabilityAuth::client(holder, token), server)
    }

    #[test]
    fn a_rekeyed_server_trusts_the_new_issuer_and_remembers_replays() {
        let (client, server) = setup(now() + 3600.0);
        let mut frame = Frame::new(MessageType::REQUEST_URI, 5, "echo", &b"payload"[..]);
        client.sign(&mut frame);
        assert_eq!(server.verify(&frame), Ok(()));
        // A new issuer: the old issuer's tokens are no longer accepted, even
        // one the old layer had verified (and cached) before.
        let issuer = SecretKey::generate();
        let rotated = server.rekeyed(&issuer.public()).unwrap().unwrap();
        let mut later = Frame::new(MessageType::REQUEST_URI, 6, "echo", &b"payload"[..]);
        client.sign(&mut later);
        assert_eq!(rotated.verify(&later), Err(AuthFailure::InvalidToken));
        // Rekeyed to the same issuer: a frame accepted before stays a replay.
        let issuer = SecretKey::generate();
        let (client, server) = setup_for(&issuer, now() + 3600.0);
        let mut frame = Frame::new(MessageType::REQUEST_URI, 7, "echo", &b"payload"[..]);
        client.sign(&mut frame);
        assert_eq!(server.verify(&frame), Ok(()));
        let same = server.rekeyed(&issuer.public()).unwrap().unwrap();
        assert_eq!(same.verify(&frame), Err(AuthFailure::Replayed));
        let mut next = Frame::new(MessageType::REQUEST_URI, 8, "echo", &b"payload"[..]);
        client.sign(&mut next);
        assert_eq!(same.verify(&next), Ok(()));
        // A client layer has nothing to rekey.
        assert!(client.rekeyed(&issuer.public()).unwrap().is_none());
    }

    #[test]
    fn a_proof_admits_its_frame_once_and_only_that_frame() {
        let (client, server) = setup(now() + 3600.0);
        let mut frame = Frame::new(MessageType::REQUEST_URI, 5, "echo", &b"payload"[..]);
        client.sign(&mut frame);
        assert_eq!(server.verify(&frame), Ok(()));
        assert_eq!(server.verify(&frame), Err(AuthFailure::Replayed));
        let mut swapped = frame.clone();
        swapped.kind = MessageType::DELETE_URI;
        assert_eq!(server.verify(&swapped), Err(AuthFailure::BadMac));
        let mut moved = Frame::new(MessageType::REQUEST_URI, 6, "echo", &b"payload"[..]);
        client.sign(&mut moved);
        moved.body = bytes::Bytes::from_static(b"other");
        assert_eq!(server.verify(&moved), Err(AuthFailure::BadMac));
        assert_eq!(
            server.verify(&Frame::new(MessageType::OK, 7, "x", &b""[..])),
            Err(AuthFailure::Missing)
        );
    }

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        let (client, server) = setup(now() - 60.0);
        let mut frame = Frame::new(MessageType::REQUEST_URI, 1, "echo", &b""[..]);
        client.sign(&mut frame);
        assert_eq!(server.verify(&frame), Err(AuthFailure::Expired));
        let (other_client, _) = setup(now() + 3600.0);
        let (_, server) = setup(now() + 3600.0);
        let mut foreign = Frame::new(MessageType::REQUEST_URI, 2, "echo", &b""[..]);
        other_client.sign(&mut foreign);
        assert_eq!(server.verify(&foreign), Err(AuthFailure::InvalidToken));
    }
}

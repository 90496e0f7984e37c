//! `authenticate` and `check_policy` (`../shared/spec/trust.md` §6–§7) with the
//! weaknesses fixed: cheap syntax and freshness checks before the token is
//! parsed, size and block caps, explicit Datalog limits reported as `limits`,
//! duplicate identity facts refused, expiry enforced in `authenticate`,
//! request facts that shadow token predicates refused, and replay protection.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use biscuit_auth::builder::{Fact, Policy, Term};
use biscuit_auth::error::Token as BiscuitError;
use biscuit_auth::{AuthorizerBuilder, AuthorizerLimits, Biscuit};

use crate::mint::{is_identifier, RESERVED};
use crate::proof::{
    canonical_v1, canonical_v2, parse_timestamp, Proof, Request, V2Context, MAX_NONCE,
};
use crate::{Error, PublicKey, ReplayCache};
use crate::{RevocationList, WhenUnknown};

/// Who a verified request comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The holder id (empty if the token has none).
    pub holder_id: String,
    /// The holder public key as bound in the token.
    pub worker_key: String,
    /// The application revocation id.
    pub revocation_id: String,
}

/// A token that passed `authenticate`, with what `check_policy` needs.
#[derive(Clone, Debug)]
pub struct Authenticated {
    parsed: Arc<Parsed>,
    identity: Identity,
}

impl Authenticated {
    /// Who sent the request.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
}

/// Verifies requests for one issuer.
#[derive(Clone)]
pub struct Verifier {
    issuer: biscuit_auth::PublicKey,
    max_skew: f64,
    limits: AuthorizerLimits,
    max_token_len: usize,
    max_blocks: usize,
    revoked: HashSet<String>,
    revocation_list: Option<(Arc<dyn RevocationList>, WhenUnknown)>,
    replay: Option<Arc<dyn ReplayCache>>,
    tokens: Option<Arc<TokenCache>>,
    require_v2: bool,
}

/// Tokens that parsed, verified and yielded an identity, keyed by SHA-256 of the
/// token text: a request with a known token costs one Ed25519 verification (the
/// proof). Revocation, expiry, freshness and the proof are still checked on every
/// request, so the cache never changes an outcome. Bounded: the oldest entry
/// makes room for a new one.
#[derive(Debug)]
pub struct TokenCache {
    cap: usize,
    entries: std::sync::Mutex<CacheEntries>,
}

/// Cached tokens by hash, and their insertion order for eviction.
type CacheEntries = (
    std::collections::HashMap<[u8; 32], Arc<Parsed>>,
    std::collections::VecDeque<[u8; 32]>,
);

#[derive(Debug)]
struct Parsed {
    token: Biscuit,
    identity: Identity,
    /// The holder key, decoded once (point decompression is a third of a
    /// verify); `None` when the token binds a malformed one.
    holder: Option<PublicKey>,
    /// The token carries `pop_version(2)`: v1 proofs are refused for it.
    pop_v2: bool,
    expiry: i64,
    predicates: HashSet<String>,
}

impl TokenCache {
    /// A cache of at most `cap` tokens.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            entries: std::sync::Mutex::default(),
        }
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        self.lock().0.len()
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheEntries> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, key: &[u8; 32]) -> Option<Arc<Parsed>> {
        self.lock().0.get(key).cloned()
    }

    fn insert(&self, key: [u8; 32], parsed: Arc<Parsed>) {
        let mut entries = self.lock();
        let (map, order) = &mut *entries;
        if map.contains_key(&key) {
            return;
        }
        while map.len() >= self.cap {
            match order.pop_front() {
                Some(old) => {
                    map.remove(&old);
                }
                None => break,
            }
        }
        map.insert(key, parsed);
        order.push_back(key);
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("max_skew", &self.max_skew)
            .field("max_blocks", &self.max_blocks)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for tokens of `issuer` with trust-core's README skew (300 s),
    /// Datalog limits 1000 facts / 100 iterations / 50 ms, tokens up to 16 KiB
    /// and 4 blocks, no deny-list and no replay cache.
    ///
    /// # Errors
    /// [`Error::Token`] when the key is unusable.
    pub fn new(issuer: &PublicKey) -> Result<Self, Error> {
        Ok(Self {
            issuer: issuer.biscuit()?,
            max_skew: 300.0,
            limits: AuthorizerLimits {
                max_facts: 1000,
                max_iterations: 100,
                max_time: Duration::from_millis(50),
            },
            max_token_len: 16 * 1024,
            max_blocks: 4,
            revoked: HashSet::new(),
            revocation_list: None,
            replay: None,
            tokens: Some(Arc::new(TokenCache::new(10_000))),
            require_v2: false,
        })
    }

    /// A verifier for tokens of a new `issuer` (a reload) with this one's
    /// settings, deny-lists and replay cache, so a request this one accepted
    /// stays a replay. Its verified-token cache starts empty: a token this
    /// one verified says nothing about the new key.
    ///
    /// # Errors
    /// [`Error::Token`] when the key is unusable.
    pub fn for_issuer(&self, issuer: &PublicKey) -> Result<Self, Error> {
        Ok(Self {
            issuer: issuer.biscuit()?,
            max_skew: self.max_skew,
            limits: self.limits.clone(),
            max_token_len: self.max_token_len,
            max_blocks: self.max_blocks,
            revoked: self.revoked.clone(),
            revocation_list: self.revocation_list.clone(),
            replay: self.replay.clone(),
            tokens: self
                .tokens
                .as_ref()
                .map(|cache| Arc::new(TokenCache::new(cache.cap))),
            require_v2: self.require_v2,
        })
    }

    /// Allowed clock difference, seconds. Default 300.
    pub fn max_skew(&mut self, seconds: f64) -> &mut Self {
        self.max_skew = if seconds.is_finite() && seconds >= 0.0 {
            seconds
        } else {
            0.0
        };
        self
    }

    /// Revoked application ids.
    pub fn revoked(&mut self, ids: impl IntoIterator<Item = String>) -> &mut Self {
        self.revoked.extend(ids);
        self
    }

    /// Also refuses ids on `list`, which may change while this verifier runs
    /// (a fleet's shared list); `when_unknown` decides while it cannot say.
    pub fn revocation_list(
        &mut self,
        list: Arc<dyn RevocationList>,
        when_unknown: WhenUnknown,
    ) -> &mut Self {
        self.revocation_list = Some((list, when_unknown));
        self
    }

    /// Remembers nonces to refuse replays.
    pub fn replay_cache(&mut self, cache: Arc<dyn ReplayCache>) -> &mut Self {
        self.replay = Some(cache);
        self
    }

    /// Refuse v1 proofs (default: accept v1 and v2, for interop with trust-core).
    pub fn require_v2(&mut self, require: bool) -> &mut Self {
        self.require_v2 = require;
        self
    }

    /// The verified-token cache (default: 10,000 tokens); `None` turns it off.
    pub fn token_cache(&mut self, cache: Option<Arc<TokenCache>>) -> &mut Self {
        self.tokens = cache;
        self
    }

    /// Datalog limits.
    pub fn limits(&mut self, limits: AuthorizerLimits) -> &mut Self {
        self.limits = limits;
        self
    }

    /// Authenticates a request at `now` (UNIX seconds).
    ///
    /// # Errors
    /// The first failed check, as its kind.
    pub fn authenticate(
        &self,
        proof: &Proof,
        request: &Request<'_>,
        now: f64,
    ) -> Result<Authenticated, Error> {
        self.authenticate_with(proof, request, &V2Context::default(), now)
    }

    /// [`Verifier::authenticate`] with what a v2 proof also binds (service and query).
    ///
    /// # Errors
    /// The first failed check, as its kind.
    pub fn authenticate_with(
        &self,
        proof: &Proof,
        request: &Request<'_>,
        context: &V2Context<'_>,
        now: f64,
    ) -> Result<Authenticated, Error> {
        if !now.is_finite() {
            return Err(Error::Config("now must be finite".into()));
        }
        // Cheap, key-free checks first (W2).
        let timestamp = parse_timestamp(&proof.timestamp)?;
        if proof.signature.len() != 128 || !proof.signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Malformed("malformed worker key or signature".into()));
        }
        if proof.nonce.len() > MAX_NONCE {
            return Err(Error::Malformed("nonce longer than 128 bytes".into()));
        }
        if (now - timestamp).abs() > self.max_skew {
            return Err(Error::Stale);
        }
        let parsed = self.parse(&proof.token)?;
        let identity = parsed.identity.clone();
        if self.revoked.contains(&identity.revocation_id) {
            return Err(Error::Revoked);
        }
        if let Some((list, when_unknown)) = &self.revocation_list {
            match (list.check(&identity.revocation_id), when_unknown) {
                (Some(true), _) => return Err(Error::Revoked),
                (None, WhenUnknown::Refuse) => {
                    return Err(Error::Unavailable(
                        "the revocation list cannot say now".into(),
                    ))
                }
                (Some(false), _) | (None, WhenUnknown::Accept) => {}
            }
        }
        if now.floor() > parsed.expiry as f64 {
            return Err(Error::Expired);
        }
        let holder = parsed
            .holder
            .ok_or_else(|| Error::Malformed("malformed worker key or signature".into()))?;
        if proof.version == 1 && (self.require_v2 || parsed.pop_v2) {
            return Err(Error::Pop);
        }
        let message = match proof.version {
            2 => canonical_v2(
                request,
                context,
                &proof.token,
                &proof.timestamp,
                &proof.nonce,
            )?,
            _ => canonical_v1(request, &proof.timestamp, &proof.nonce),
        };
        if !holder.verify_hex(message.as_bytes(), &proof.signature)? {
            return Err(Error::Pop);
        }
        if let Some(cache) = &self.replay {
            cache.check_and_insert(
                &identity.worker_key,
                &proof.nonce,
                timestamp + self.max_skew,
                now,
            )?;
        }
        Ok(Authenticated { parsed, identity })
    }

    /// Runs the policy `allow` with request facts at `now` (§7): every token
    /// check must pass and `allow` must match.
    ///
    /// # Errors
    /// [`Error::Config`] for a policy that does not parse or a request fact that is
    /// reserved or shadows a token predicate; [`Error::Limits`]; [`Error::Policy`].
    pub fn check_policy(
        &self,
        token: &Authenticated,
        request_facts: &[(String, String)],
        allow: &str,
        now: f64,
    ) -> Result<(), Error> {
        if !(now.is_finite() && now >= 0.0) {
            return Err(Error::Config("now must be a finite time ≥ 0".into()));
        }
        let config = |e: BiscuitError| Error::Config(e.to_string());
        let mut builder = AuthorizerBuilder::new()
            .set_limits(self.limits.clone())
            .fact(Fact::new(
                "time".to_owned(),
                vec![Term::Date(now.floor() as u64)],
            ))
            .map_err(config)?;
        for (name, value) in request_facts {
            if !is_identifier(name) || RESERVED.contains(&name.as_str()) {
                return Err(Error::Config(format!(
                    "request fact name {name:?} is invalid or reserved"
                )));
            }
            if token.parsed.predicates.contains(name) {
                return Err(Error::Config(format!(
                    "request fact {name:?} names a predicate of the token"
                )));
            }
            builder = builder
                .fact(Fact::new(name.clone(), vec![Term::Str(value.clone())]))
                .map_err(config)?;
        }
        let allow = Policy::try_from(allow).map_err(|error| policy_error(allow, &error))?;
        builder = builder
            .policy(allow)
            .map_err(config)?
            .policy("deny if true")
            .map_err(config)?;
        let mut authorizer = builder.build(&token.parsed.token).map_err(classify)?;
        authorizer.authorize().map(drop).map_err(classify)
    }

    /// Parses and verifies a token and reads its identity and expiry, or takes them from the cache.
    fn parse(&self, text: &str) -> Result<Arc<Parsed>, Error> {
        use sha2::Digest;
        if text.len() > self.max_token_len {
            return Err(Error::Token(format!(
                "token longer than {} bytes",
                self.max_token_len
            )));
        }
        let key: [u8; 32] = sha2::Sha256::digest(text.as_bytes()).into();
        if let Some(parsed) = self.tokens.as_ref().and_then(|cache| cache.get(&key)) {
            return Ok(parsed);
        }
        let token = Biscuit::from_base64(text, self.issuer)
            .map_err(|_| Error::Token("biscuit failed verification".into()))?;
        if token.block_count() > self.max_blocks {
            return Err(Error::Token(format!(
                "more than {} blocks",
                self.max_blocks
            )));
        }
        let authority = token
            .print_block_source(0)
            .map_err(|e| Error::Token(e.to_string()))?;
        let identity = self.identity(&token)?;
        let expiry = expiry_of(&authority)
            .ok_or_else(|| Error::Identity("token has no expiry check".into()))?;
        let holder = PublicKey::from_hex(&identity.worker_key).ok();
        let pop_v2 = authority
            .lines()
            .any(|line| line.trim() == "pop_version(2);");
        let parsed = Arc::new(Parsed {
            token,
            identity,
            holder,
            pop_v2,
            expiry,
            predicates: predicates_of(&authority),
        });
        if let Some(cache) = &self.tokens {
            cache.insert(key, parsed.clone());
        }
        Ok(parsed)
    }

    fn identity(&self, token: &Biscuit) -> Result<Identity, Error> {
        let mut authorizer = AuthorizerBuilder::new()
            .set_limits(self.limits.clone())
            .build(token)
            .map_err(classify)?;
        let mut one = |predicate: &str, required: bool| -> Result<String, Error> {
            let rule = format!("data($v) <- {predicate}($v)");
            let values: Vec<(String,)> = authorizer
                .query_with_limits(rule.as_str(), self.limits.clone())
                .map_err(classify)?;
            match values.len() {
                0 if required => Err(Error::Identity(match predicate {
                    "worker_key" => "token binds no worker key".into(),
                    _ => "token carries no revocation id".into(),
                })),
                0 => Ok(String::new()),
                1 => Ok(values.into_iter().next().map(|(v,)| v).unwrap_or_default()),
                _ => Err(Error::Identity(format!("more than one {predicate} fact"))),
            }
        };
        let worker_key = one("worker_key", true)?;
        let revocation_id = one("revocation", true)?;
        let holder_id = one("worker_id", false)?;
        Ok(Identity {
            holder_id,
            worker_key,
            revocation_id,
        })
    }
}

fn classify(error: BiscuitError) -> Error {
    match error {
        BiscuitError::RunLimit(limit) => Error::Limits(limit.to_string()),
        BiscuitError::FailedLogic(_) => Error::Policy,
        BiscuitError::Execution(_) => Error::Policy,
        other => Error::Token(other.to_string()),
    }
}

/// `E` of the authority block's `check if time($t), $t <= E` (UNIX seconds).
fn expiry_of(authority: &str) -> Option<i64> {
    authority.lines().find_map(|line| {
        let date = line
            .trim()
            .strip_prefix("check if time($t), $t <= ")?
            .strip_suffix(';')?;
        parse_rfc3339_utc(date)
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ` as biscuit prints dates, as UNIX seconds.
fn parse_rfc3339_utc(text: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

/// Predicate names of the facts in a printed authority block.
fn predicates_of(authority: &str) -> HashSet<String> {
    authority
        .lines()
        .filter(|line| !line.starts_with("check") && !line.contains("<-"))
        .filter_map(|line| line.split_once('(').map(|(name, _)| name.trim().to_owned()))
        .filter(|name| is_identifier(name))
        .collect()
}

/// A policy that does not parse, as one sentence: the column where parsing
/// stopped and the text from there, not the parser's debug dump.
fn policy_error(policy: &str, error: &BiscuitError) -> Error {
    use biscuit_parser::error::LanguageError;
    if let BiscuitError::Language(LanguageError::ParseError(errors)) = error {
        if let Some(first) = errors.errors.first() {
            let consumed = policy.len().saturating_sub(first.input.len());
            let column = policy
                .get(..consumed)
                .map_or(1, |before| before.chars().count() + 1);
            let near: String = first.input.chars().take(24).collect();
            let what = first.message.as_deref().unwrap_or("unexpected text");
            return Error::Config(if near.is_empty() {
                format!("the policy ends too early (column {column}): {what}")
            } else {
                format!("the policy does not parse at column {column} (at {near:?}): {what}")
            });
        }
    }
    Error::Config(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_as_biscuit_prints_them() {
        assert_eq!(
            parse_rfc3339_utc("2023-11-14T23:13:20Z"),
            Some(1_700_003_600)
        );
        assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_utc("2023-11-14 23:13:20"), None);
    }
}

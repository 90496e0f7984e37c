//! Proof of possession (`../shared/spec/trust.md` §4–§5): the holder signs
//! `method LF path LF hex(sha256(body)) LF timestamp LF nonce` (v1, trust-core)
//! or the opt-in v2 string that also binds the service, the query and the token
//! (weakness W5); the proof travels as headers or query parameters.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::{Error, SecretKey};

/// Longest nonce accepted (W4).
pub const MAX_NONCE: usize = 128;

/// A request as the verifier sees it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Method, exactly as given (not normalised).
    pub method: &'a str,
    /// Path, exactly as given.
    pub path: &'a str,
    /// Body bytes.
    pub body: &'a [u8],
}

/// What canonical string v2 binds beyond v1: the service and the query.
#[derive(Clone, Copy, Debug, Default)]
pub struct V2Context<'a> {
    /// `host[:port]` or service name the verifier is configured with (lower-cased when signed).
    pub authority: &'a str,
    /// Query parameters (the proof's own `token`, `sig`, `ts`, `nonce`, `v` are left out).
    pub query: &'a [(&'a str, &'a str)],
}

/// A proof as carried by a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// Canonical string version: 1 (trust-core) or 2 (opt-in, `X-EP-Version: 2`).
    pub version: u8,
    /// The token string.
    pub token: String,
    /// Signature hex.
    pub signature: String,
    /// Timestamp text (signed verbatim).
    pub timestamp: String,
    /// Nonce text.
    pub nonce: String,
}

/// The canonical string v1 (§4).
pub fn canonical_v1(request: &Request<'_>, timestamp: &str, nonce: &str) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}",
        request.method,
        request.path,
        hex::encode(Sha256::digest(request.body)),
        timestamp,
        nonce
    )
}

/// The canonical string v2 (W5): a version tag, the upper-cased method, the
/// service, path and query, the body and token hashes, an integer timestamp
/// and the nonce. A field with CR or LF is refused, so the string is injective.
///
/// # Errors
/// [`Error::Malformed`] for CR/LF in a field or a non-integer timestamp.
pub fn canonical_v2(
    request: &Request<'_>,
    context: &V2Context<'_>,
    token: &str,
    timestamp: &str,
    nonce: &str,
) -> Result<String, Error> {
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Malformed(
            "a v2 timestamp is decimal integer seconds".into(),
        ));
    }
    let mut query: Vec<(String, String)> = context
        .query
        .iter()
        .filter(|(key, _)| !["token", "sig", "ts", "nonce", "v"].contains(key))
        .map(|(key, value)| (percent_encode(key), percent_encode(value)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let fields = [
        request.method.to_ascii_uppercase(),
        context.authority.to_ascii_lowercase(),
        request.path.to_owned(),
        query,
        hex::encode(Sha256::digest(request.body)),
        hex::encode(Sha256::digest(token.as_bytes())),
        timestamp.to_owned(),
        nonce.to_owned(),
    ];
    if fields.iter().any(|field| field.contains(['\r', '\n'])) {
        return Err(Error::Malformed("a v2 field contains CR or LF".into()));
    }
    Ok(format!("tessera-pop/2\n{}", fields.join("\n")))
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Signs a request (v1): the proof for `token` by the holder key.
pub fn prove(
    holder: &SecretKey,
    token: &str,
    request: &Request<'_>,
    timestamp: &str,
    nonce: &str,
) -> Proof {
    Proof {
        version: 1,
        token: token.to_owned(),
        signature: holder.sign_hex(canonical_v1(request, timestamp, nonce).as_bytes()),
        timestamp: timestamp.to_owned(),
        nonce: nonce.to_owned(),
    }
}

/// Signs a request with canonical string v2.
///
/// # Errors
/// As [`canonical_v2`].
pub fn prove_v2(
    holder: &SecretKey,
    token: &str,
    request: &Request<'_>,
    context: &V2Context<'_>,
    timestamp: &str,
    nonce: &str,
) -> Result<Proof, Error> {
    Ok(Proof {
        version: 2,
        token: token.to_owned(),
        signature: holder
            .sign_hex(canonical_v2(request, context, token, timestamp, nonce)?.as_bytes()),
        timestamp: timestamp.to_owned(),
        nonce: nonce.to_owned(),
    })
}

impl Proof {
    /// The headers: trust-core's four, plus `X-EP-Version: 2` for v2.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("Authorization", format!("Biscuit {}", self.token)),
            ("X-EP-Signature", self.signature.clone()),
            ("X-EP-Timestamp", self.timestamp.clone()),
            ("X-EP-Nonce", self.nonce.clone()),
        ];
        if self.version == 2 {
            headers.push(("X-EP-Version", "2".to_owned()));
        }
        headers
    }

    /// Parses the header form (§5.1): names case-insensitive, values stripped,
    /// `Authorization: Biscuit <token>`; `X-EP-Version: 2` selects v2.
    ///
    /// # Errors
    /// [`Error::Malformed`] naming the missing or bad header.
    pub fn from_headers<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Error> {
        let map: HashMap<String, &str> = headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim()))
            .collect();
        let get = |name: &str| -> Result<String, Error> {
            map.get(&name.to_ascii_lowercase())
                .filter(|v| !v.is_empty())
                .map(|v| (*v).to_owned())
                .ok_or_else(|| Error::Malformed(format!("missing {name}")))
        };
        let authorization = get("Authorization")?;
        let token = match authorization.split_once(' ') {
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("biscuit") && !rest.trim().is_empty() =>
            {
                rest.trim().to_owned()
            }
            _ => {
                return Err(Error::Malformed(
                    "Authorization must be 'Biscuit <token>'".into(),
                ))
            }
        };
        Ok(Self {
            token,
            signature: get("X-EP-Signature")?,
            timestamp: get("X-EP-Timestamp")?,
            nonce: get("X-EP-Nonce")?,
            version: version(map.get("x-ep-version").copied())?,
        })
    }

    /// Parses the query form (§5.2): keys `token`, `sig`, `ts`, `nonce`
    /// (case-sensitive), optional `v=2`.
    ///
    /// # Errors
    /// [`Error::Malformed`] naming the missing key.
    pub fn from_query<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Error> {
        let map: HashMap<&str, &str> = params.into_iter().map(|(k, v)| (k, v.trim())).collect();
        let get = |name: &str| -> Result<String, Error> {
            map.get(name)
                .filter(|v| !v.is_empty())
                .map(|v| (*v).to_owned())
                .ok_or_else(|| Error::Malformed(format!("missing {name}")))
        };
        Ok(Self {
            token: get("token")?,
            signature: get("sig")?,
            timestamp: get("ts")?,
            nonce: get("nonce")?,
            version: version(map.get("v").copied())?,
        })
    }
}

/// The proof version: absent means 1.
fn version(value: Option<&str>) -> Result<u8, Error> {
    match value {
        None | Some("" | "1") => Ok(1),
        Some("2") => Ok(2),
        Some(other) => Err(Error::Malformed(format!("unknown proof version {other:?}"))),
    }
}

/// Parses a timestamp with the strict grammar `[+-]?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?`
/// (W6 d), finite.
///
/// # Errors
/// [`Error::Malformed`] for anything else.
pub fn parse_timestamp(text: &str) -> Result<f64, Error> {
    let bad = || Error::Malformed("malformed timestamp".into());
    let bytes = text.as_bytes();
    let mut i = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if digits(&mut i) == 0 {
        return Err(bad());
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        digits(&mut i);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return Err(bad());
        }
    }
    if i != bytes.len() {
        return Err(bad());
    }
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(bad)
}

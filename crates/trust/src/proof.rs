//! Proof of possession (`../shared/spec/trust.md` §4–§5): the holder signs
//! `method LF path LF hex(sha256(body)) LF timestamp LF nonce` with its key; the
//! proof travels as four headers or four query parameters.

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

/// A proof as carried by a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
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

/// Signs a request: the proof for `token` by the holder key.
pub fn prove(
    holder: &SecretKey,
    token: &str,
    request: &Request<'_>,
    timestamp: &str,
    nonce: &str,
) -> Proof {
    Proof {
        token: token.to_owned(),
        signature: holder.sign_hex(canonical_v1(request, timestamp, nonce).as_bytes()),
        timestamp: timestamp.to_owned(),
        nonce: nonce.to_owned(),
    }
}

impl Proof {
    /// The four headers trust-core emits.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Authorization", format!("Biscuit {}", self.token)),
            ("X-EP-Signature", self.signature.clone()),
            ("X-EP-Timestamp", self.timestamp.clone()),
            ("X-EP-Nonce", self.nonce.clone()),
        ]
    }

    /// Parses the header form (§5.1): names case-insensitive, values stripped,
    /// `Authorization: Biscuit <token>`.
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
        })
    }

    /// Parses the query form (§5.2): keys `token`, `sig`, `ts`, `nonce` (case-sensitive).
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
        })
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

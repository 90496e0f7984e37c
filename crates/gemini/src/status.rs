//! Response headers: `<two-digit status> <meta>\r\n`, built by the server and
//! parsed by the client, with the META length bound of the Gemini
//! specification (1024 bytes).

use std::fmt;

use crate::Error;

/// Longest META accepted or sent, in bytes.
pub const MAX_META: usize = 1024;

/// A response header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The two-digit status (10–69).
    pub status: u8,
    /// The META text: a MIME type for 2x, a URL for 3x, a prompt or reason otherwise.
    pub meta: String,
}

/// The first digit of a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    /// 1x: the server asks for input.
    Input,
    /// 2x: a body follows.
    Success,
    /// 3x: go elsewhere.
    Redirect,
    /// 4x: try again later.
    TemporaryFailure,
    /// 5x: do not retry.
    PermanentFailure,
    /// 6x: a client certificate is needed or was refused.
    CertificateRequired,
}

impl Header {
    /// A header with `status` and `meta` (control characters in `meta` are
    /// replaced by spaces and it is cut to [`MAX_META`] bytes, so no caller can
    /// break the header line).
    pub fn new(status: u8, meta: impl Into<String>) -> Self {
        let mut meta: String = meta
            .into()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if meta.len() > MAX_META {
            let mut end = MAX_META;
            while !meta.is_char_boundary(end) {
                end -= 1;
            }
            meta.truncate(end);
        }
        Self { status, meta }
    }

    /// `20 <mime>`.
    pub fn success(mime: impl Into<String>) -> Self {
        Self::new(20, mime)
    }

    /// `31 <target>`: a permanent redirect.
    pub fn redirect(target: impl Into<String>) -> Self {
        Self::new(31, target)
    }

    /// `51 Not found`.
    pub fn not_found() -> Self {
        Self::new(51, "Not found")
    }

    /// `59 <reason>`: the request was malformed.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(59, reason)
    }

    /// `53 Proxy request refused`: the URL names a host or port we do not serve.
    pub fn proxy_refused() -> Self {
        Self::new(53, "Proxy request refused")
    }

    /// `40 Request timeout`.
    pub fn request_timeout() -> Self {
        Self::new(40, "Request timeout")
    }

    /// The answer to a guard denial (`../shared/spec/guard.md` §3): `44
    /// <seconds>` (the real wait, rounded up), `53 Access denied`, or 60–62 for
    /// the certificate rules. The guard decides; Gemini words it, here only.
    pub fn denied(denial: &tessera_guard::Denial) -> Self {
        use tessera_guard::DenialReason;
        match denial.reason {
            DenialReason::RateLimited => Self::new(44, denial.retry_after_secs().to_string()),
            DenialReason::AccessDenied => Self::new(53, "Access denied"),
            DenialReason::CertRequired => Self::new(60, "Client certificate required"),
            DenialReason::CertNotAuthorized => Self::new(61, "Certificate not authorized"),
            DenialReason::CertNotValid => Self::new(62, "Certificate not valid"),
            // A reason the guard adds later still refuses.
            _ => Self::new(53, "Access denied"),
        }
    }

    /// `40 Internal error`: never details, which go to the log.
    pub fn internal_error() -> Self {
        Self::new(40, "Internal error")
    }

    /// The class of the status, `None` outside 10–69.
    pub fn class(&self) -> Option<StatusClass> {
        Some(match self.status / 10 {
            1 => StatusClass::Input,
            2 => StatusClass::Success,
            3 => StatusClass::Redirect,
            4 => StatusClass::TemporaryFailure,
            5 => StatusClass::PermanentFailure,
            6 => StatusClass::CertificateRequired,
            _ => return None,
        })
    }

    /// The header line including CRLF.
    pub fn to_line(&self) -> String {
        format!("{self}\r\n")
    }

    /// Parses a header line (CRLF already removed). A missing META (`51`) is
    /// accepted as empty, as servers in the wild send it.
    ///
    /// # Errors
    /// [`Error::BadResponse`] for anything but two digits in 10–69, an optional
    /// space and META of at most [`MAX_META`] UTF-8 bytes.
    pub fn parse(line: &[u8]) -> Result<Self, Error> {
        let bad = |why: &str| Error::BadResponse(why.to_owned());
        let text = std::str::from_utf8(line).map_err(|_| bad("header is not UTF-8"))?;
        let digits = text
            .get(..2)
            .ok_or_else(|| bad("header shorter than a status"))?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("header does not start with two digits"));
        }
        let status: u8 = digits.parse().map_err(|_| bad("bad status"))?;
        let meta = match &text[2..] {
            "" => "",
            rest => rest
                .strip_prefix(' ')
                .ok_or_else(|| bad("no space after the status"))?,
        };
        if meta.len() > MAX_META {
            return Err(bad("META longer than 1024 bytes"));
        }
        let header = Self {
            status,
            meta: meta.to_owned(),
        };
        header.class().ok_or_else(|| bad("status outside 10-69"))?;
        Ok(header)
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02} {}", self.status, self.meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for header in [
            Header::success("text/gemini; charset=utf-8"),
            Header::redirect("/dir/"),
            Header::not_found(),
            Header::new(44, "3"),
        ] {
            let line = header.to_line();
            let parsed = Header::parse(line.trim_end_matches("\r\n").as_bytes()).unwrap();
            assert_eq!(parsed, header);
        }
    }

    #[test]
    fn meta_cannot_break_the_line() {
        let header = Header::bad_request("a\r\n20 text/gemini");
        assert_eq!(header.to_line(), "59 a  20 text/gemini\r\n");
        assert!(Header::new(20, "x".repeat(5000)).meta.len() <= MAX_META);
    }

    #[test]
    fn rejects_malformed_headers() {
        for line in [&b""[..], b"2", b"xx ok", b"20text", b"99 nope", b"\xff\xfe"] {
            assert!(Header::parse(line).is_err(), "{line:?}");
        }
        assert_eq!(Header::parse(b"51").unwrap().meta, "");
    }

    /// Every denial answers the line of the shared guard vectors (`gemini_status`).
    #[test]
    fn denials_match_the_guard_vectors() {
        use tessera_guard::{Denial, DenialReason};
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../guard/tests/data/vectors.json"
        );
        let vectors: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let status = &vectors["gemini_status"];
        for reason in [
            DenialReason::RateLimited,
            DenialReason::AccessDenied,
            DenialReason::CertRequired,
            DenialReason::CertNotAuthorized,
            DenialReason::CertNotValid,
        ] {
            let denial = Denial {
                reason,
                retry_after: Some(std::time::Duration::from_millis(6_200)),
            };
            let expected = status[reason.name()]["tessera"]
                .as_str()
                .unwrap()
                .replace("{retry_after}", "7");
            let line = Header::denied(&denial).to_line();
            assert_eq!(line.trim_end(), expected, "{reason}");
        }
        assert_eq!(
            Header::proxy_refused().to_line().trim_end(),
            status["foreign_host"]["tessera"].as_str().unwrap()
        );
    }
}

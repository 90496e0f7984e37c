//! The request line, sans-IO: an absolute `gemini://` URL of at most 1024
//! bytes followed by CRLF. Everything the server later decides on (host, port,
//! the canonical path the guard and the file handler share) is derived here
//! once.

use tessera_guard::CanonicalPath;
use tessera_tls::tofu::normalize_host;
use url::Url;

/// Longest URL accepted, in bytes, CRLF excluded (the Gemini specification).
pub const MAX_URL: usize = 1024;

/// Bytes a reader needs to hold to find the end of any valid request line.
pub const MAX_REQUEST_LINE: usize = MAX_URL + 2;

/// A parsed, validated request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The URL as sent (after parsing).
    pub url: Url,
    /// The host, lower-case A-label without a trailing dot; IP literals canonical.
    pub host: String,
    /// The port if the URL names one.
    pub port: Option<u16>,
    /// The canonical path (`../shared/spec/guard.md` §8): what rules and handlers see.
    pub path: CanonicalPath,
}

/// Why a request line is refused with `59`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// More than [`MAX_URL`] bytes before CRLF.
    #[error("Request longer than 1024 bytes")]
    TooLong,
    /// The connection ended (or the line ended) without CRLF.
    #[error("Request must end with CRLF")]
    NoCrlf,
    /// Not UTF-8.
    #[error("Request is not UTF-8")]
    NotUtf8,
    /// Spaces, control characters or an empty line.
    #[error("Request contains spaces or control characters")]
    BadCharacters,
    /// Not an absolute URL.
    #[error("Not an absolute URL")]
    NotUrl,
    /// A scheme other than `gemini`.
    #[error("Unsupported scheme")]
    WrongScheme,
    /// No host, or one that is not a valid name or address.
    #[error("Invalid or missing host")]
    BadHost,
    /// `user@host`.
    #[error("URL must not contain userinfo")]
    Userinfo,
    /// `#fragment`.
    #[error("URL must not contain a fragment")]
    Fragment,
    /// A `%` in the path not followed by two hex digits.
    #[error("Invalid percent-escape in path")]
    BadEscape,
    /// A `.` or `..` segment, escaped or not: clients resolve them before
    /// sending, so one on the wire is a probe, refused rather than normalised.
    #[error("Path must not contain dot segments")]
    DotSegment,
    /// `//` inside the path (a trailing `/` is a directory, not an empty segment).
    #[error("Path must not contain empty segments")]
    EmptySegment,
}

/// Finds the end of the request line in `buffer`: `Some(Ok(n))` when the URL
/// is `buffer[..n]` (CRLF at `n`), `Some(Err)` when no valid line can follow,
/// `None` when more bytes are needed.
pub fn find_line_end(buffer: &[u8]) -> Option<Result<usize, RequestError>> {
    let window = &buffer[..buffer.len().min(MAX_REQUEST_LINE)];
    if let Some(lf) = window.iter().position(|&b| b == b'\n') {
        return Some(match lf.checked_sub(1) {
            Some(cr) if window[cr] == b'\r' => Ok(cr),
            _ => Err(RequestError::NoCrlf),
        });
    }
    (buffer.len() >= MAX_REQUEST_LINE).then_some(Err(RequestError::TooLong))
}

/// Parses the URL of a request line (without its CRLF).
///
/// # Errors
/// A [`RequestError`] naming the first problem found.
pub fn parse_request(line: &[u8]) -> Result<Request, RequestError> {
    if line.len() > MAX_URL {
        return Err(RequestError::TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| RequestError::NotUtf8)?;
    // The URL parser would silently strip or escape these; a request with them is malformed.
    if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(RequestError::BadCharacters);
    }
    let url = Url::parse(text).map_err(|_| RequestError::NotUrl)?;
    if url.scheme() != "gemini" {
        return Err(RequestError::WrongScheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RequestError::Userinfo);
    }
    if url.fragment().is_some() {
        return Err(RequestError::Fragment);
    }
    let host = match url.host_str() {
        Some(host) if !host.is_empty() => {
            // Non-special schemes keep the host as written (case, escapes): normalise here.
            normalize_host(host).map_err(|_| RequestError::BadHost)?
        }
        _ => return Err(RequestError::BadHost),
    };
    // The URL parser resolves dot segments; only the line as sent shows them.
    check_segments(raw_path(text))?;
    let path = CanonicalPath::parse(url.path()).map_err(|_| RequestError::BadEscape)?;
    Ok(Request {
        host,
        port: url.port(),
        path,
        url,
    })
}

/// The path of an absolute URL as written: from the `/` after the authority
/// to the query or fragment.
fn raw_path(text: &str) -> &str {
    let after_scheme = text.split_once("://").map_or("", |(_, rest)| rest);
    let from_path = after_scheme
        .find(['/', '?', '#'])
        .map_or("", |start| &after_scheme[start..]);
    let end = from_path.find(['?', '#']).unwrap_or(from_path.len());
    &from_path[..end]
}

/// Refuses dot segments and empty segments, so that the path a client sent is
/// the path served, never a rewritten one.
fn check_segments(path: &str) -> Result<(), RequestError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Ok(());
    };
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        if is_dot_segment(segment) {
            return Err(RequestError::DotSegment);
        }
        if segment.is_empty() && segments.peek().is_some() {
            return Err(RequestError::EmptySegment);
        }
    }
    Ok(())
}

/// `.` or `..`, with any of its dots written `%2e` (RFC 3986 §2.3: the same segment).
fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2e") {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    matches!(dots, 1 | 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Request, RequestError> {
        parse_request(text.as_bytes())
    }

    #[test]
    fn accepts_a_plain_request() {
        let request = parse("gemini://Example.ORG:1965/a/c?q=/../x//").unwrap();
        assert_eq!(request.host, "example.org");
        assert_eq!(request.port, Some(1965));
        assert_eq!(request.path, "/a/c");
        assert_eq!(request.url.query(), Some("q=/../x//"));
        assert_eq!(parse("gemini://h/%70rivate/").unwrap().path, "/private/");
        assert_eq!(parse("gemini://h/a/...").unwrap().path, "/a/...");
        assert_eq!(parse("gemini://h/a/.b/").unwrap().path, "/a/.b/");
        assert_eq!(parse("gemini://h?q").unwrap().path, "/");
        let request = parse("gemini://h/c?q=1").unwrap();
        assert_eq!(request.url.query(), Some("q=1"));
        assert_eq!(parse("gemini://example.org").unwrap().path, "/");
        assert_eq!(
            parse("gemini://h/%%37%30rivate/").unwrap_err(),
            RequestError::BadEscape
        );
        assert_eq!(parse("gemini://[::1]/").unwrap().host, "::1");
    }

    #[test]
    fn refuses_malformed_requests() {
        let cases = [
            ("", RequestError::BadCharacters),
            ("gemini://example.org/a b", RequestError::BadCharacters),
            ("/relative", RequestError::NotUrl),
            ("https://example.org/", RequestError::WrongScheme),
            ("gemini://user@example.org/", RequestError::Userinfo),
            ("gemini://u:p@example.org/", RequestError::Userinfo),
            ("gemini://example.org/#frag", RequestError::Fragment),
            ("gemini:///path", RequestError::BadHost),
            ("gemini:relative", RequestError::BadHost),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).unwrap_err(), expected, "{text:?}");
        }
        assert_eq!(
            parse_request(b"gemini://example.org/\xff").unwrap_err(),
            RequestError::NotUtf8
        );
    }

    #[test]
    fn dot_and_empty_segments_are_refused_not_normalised() {
        for (raw, expected) in [
            ("gemini://h/public/../private/", RequestError::DotSegment),
            ("gemini://h/./private/", RequestError::DotSegment),
            ("gemini://h/%2e%2e/private/", RequestError::DotSegment),
            ("gemini://h/x/.%2E/private/", RequestError::DotSegment),
            ("gemini://h/x/%2E./private/", RequestError::DotSegment),
            ("gemini://h/../../private/", RequestError::DotSegment),
            ("gemini://h/private/..", RequestError::DotSegment),
            ("gemini://h/private/.?q", RequestError::DotSegment),
            ("gemini://h:1965/a/%2e", RequestError::DotSegment),
            ("gemini://h//private/", RequestError::EmptySegment),
            ("gemini://h/private//deep/", RequestError::EmptySegment),
            ("gemini://h/private///", RequestError::EmptySegment),
        ] {
            assert_eq!(parse(raw).unwrap_err(), expected, "{raw}");
        }
    }

    #[test]
    fn the_line_is_bounded() {
        let url = format!("gemini://h/{}", "a".repeat(MAX_URL - 11));
        assert_eq!(url.len(), MAX_URL);
        let line = format!("{url}\r\n");
        assert_eq!(find_line_end(line.as_bytes()), Some(Ok(MAX_URL)));
        assert!(parse_request(url.as_bytes()).is_ok());
        let long = format!("{url}a\r\n");
        assert_eq!(
            find_line_end(long.as_bytes()),
            Some(Err(RequestError::TooLong))
        );
        assert_eq!(find_line_end(b"gemini://h/"), None);
        assert_eq!(
            find_line_end(b"gemini://h/\n"),
            Some(Err(RequestError::NoCrlf))
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1100)) {
            let _ = find_line_end(&bytes);
            if let Ok(request) = parse_request(&bytes) {
                let path = request.path.as_str();
                proptest::prop_assert!(path.starts_with('/'));
                proptest::prop_assert!(!path.split('/').any(|s| s == ".."));
                proptest::prop_assert_eq!(CanonicalPath::parse(path), Ok(request.path.clone()));
            }
        }

        #[test]
        fn an_accepted_path_is_served_as_sent(
            segments in proptest::collection::vec(
                proptest::sample::select(vec!["a", "", ".", "..", "%2e", ".%2E", "%2e%2e%2e", "b."]),
                0..6,
            ),
        ) {
            let raw = format!("/{}", segments.join("/"));
            let refused = segments.iter().enumerate().any(|(i, segment)| {
                matches!(*segment, "." | ".." | "%2e" | ".%2E")
                    || (segment.is_empty() && i + 1 < segments.len())
            });
            match parse(&format!("gemini://h{raw}")) {
                Ok(request) => {
                    proptest::prop_assert!(!refused, "{raw} was accepted");
                    let sent = segments.iter().filter(|segment| !segment.is_empty()).count();
                    proptest::prop_assert_eq!(request.path.segments().count(), sent);
                }
                Err(error) => proptest::prop_assert!(refused, "{raw}: {error}"),
            }
        }
    }
}

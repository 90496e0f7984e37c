//! The canonical form of a request path (`../shared/spec/guard.md` §8), the
//! one value that certificate rules, routers and file handlers all look at.
//!
//! A [`CanonicalPath`] can only be built here, so a rule can never be handed a
//! raw path. The form is a fixed point: parsing it again changes nothing.
//!
//! - Query and fragment are cut off; the result starts with `/`.
//! - Every escape is decoded exactly once, to bytes. A `%` not followed by two
//!   hex digits is refused: passed on, it is how a second decoder elsewhere
//!   turns `%%37%30` into `%70` and then into `p` (the double-decoding defect).
//! - Segments that decode to `.` or `..` are removed (RFC 3986 §5.2.4), empty
//!   segments collapse, a trailing `/` is kept.
//! - Each segment is encoded again one way: RFC 3986 `pchar`s (unreserved,
//!   sub-delims, `:`, `@`) stay literal, every other byte is `%XX` in upper
//!   case. So `/%70rivate/`, `/priv%61te/` and `/private/` are one path, and
//!   so are `/a!` and `/a%21` (the spec's step 2 keeps `%21` apart, while a
//!   file handler decodes both to the same name), and a rule prefix written
//!   as `/privé/` matches requests for `/priv%C3%A9/`.
//!
//! An escaped separator (`%2F`, `%5C`) or NUL (`%00`) stays escaped inside
//! its segment, and file handlers refuse it ([`CanonicalPath::has_encoded_separator`]).

use std::borrow::Cow;
use std::fmt;

use crate::Error;

/// A request path in canonical form: what rules check is what handlers resolve.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CanonicalPath(String);

impl CanonicalPath {
    /// Parses and normalises a URL path (anything from the first `?` or `#` on is dropped).
    ///
    /// # Errors
    /// [`Error::PathEscape`] for a `%` not followed by two hex digits.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        match canonical_prefix(raw) {
            Ok(path) => Ok(Self(path.to_owned())),
            Err(end) => Self::normalise(&raw[..end]),
        }
    }

    /// [`parse`](Self::parse) for a path (without query or fragment) that
    /// needs rebuilding: segment by segment, decoded and encoded again.
    fn normalise(path: &str) -> Result<Self, Error> {
        let mut builder = Builder::with_capacity(path.len());
        let mut scratch = Vec::new();
        let mut offset = 0;
        let mut segments = path.split('/').peekable();
        while let Some(segment) = segments.next() {
            decode(segment, offset, &mut scratch)?;
            builder.push(&scratch, segments.peek().is_none());
            offset += segment.len() + 1;
        }
        Ok(builder.finish())
    }

    /// The canonical path of decoded segments, as a file handler found them on
    /// disk (`directory`: with a trailing `/`). Dot and empty segments are
    /// dropped as [`parse`](Self::parse) does.
    pub fn from_segments<I>(segments: I, directory: bool) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut builder = Builder::with_capacity(64);
        for segment in segments {
            builder.push(segment.as_ref(), false);
        }
        builder.trailing = directory;
        builder.finish()
    }

    /// The path as text (ASCII only).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The decoded bytes of each segment, in order (no empty, `.` or `..` ones).
    pub fn segments(&self) -> impl Iterator<Item = Cow<'_, [u8]>> {
        self.0
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(|segment| {
                if !segment.contains('%') {
                    return Cow::Borrowed(segment.as_bytes());
                }
                let mut bytes = Vec::with_capacity(segment.len());
                // Canonical text holds only valid escapes, so this cannot fail.
                let _ = decode(segment, 0, &mut bytes);
                Cow::Owned(bytes)
            })
    }

    /// Whether the path ends in `/` (names a directory).
    pub fn is_directory(&self) -> bool {
        self.0.ends_with('/')
    }

    /// Whether a segment holds an escaped `/` or `\` or a NUL, which file handlers refuse.
    pub fn has_encoded_separator(&self) -> bool {
        self.0.contains("%2F") || self.0.contains("%5C") || self.0.contains("%00")
    }
}

impl fmt::Display for CanonicalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CanonicalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for CanonicalPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for CanonicalPath {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for CanonicalPath {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Builds the canonical text from decoded segments, removing dot segments on the way.
struct Builder {
    out: String,
    /// Where each kept segment's `/` starts in `out`, so `..` can drop it.
    starts: Vec<usize>,
    trailing: bool,
}

impl Builder {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            out: String::with_capacity(capacity + 1),
            starts: Vec::new(),
            trailing: false,
        }
    }

    fn push(&mut self, segment: &[u8], last: bool) {
        match segment {
            b"" | b"." => {}
            b".." => {
                if let Some(start) = self.starts.pop() {
                    self.out.truncate(start);
                }
            }
            _ => {
                self.starts.push(self.out.len());
                self.out.push('/');
                encode(segment, &mut self.out);
            }
        }
        // RFC 3986 §5.2.4: `/a/`, `/a/.` and `/b/..` all end in a directory.
        if last {
            self.trailing = matches!(segment, b"" | b"." | b"..");
        }
    }

    fn finish(mut self) -> CanonicalPath {
        if self.out.is_empty() || self.trailing {
            self.out.push('/');
        }
        CanonicalPath(self.out)
    }
}

/// The path of `raw` (up to a `?` or `#`) when it is already canonical, as
/// most requests are, so [`CanonicalPath::parse`] can take it as it is: it
/// starts with `/`, holds only `pchar`s (no escapes) and separators, and no
/// segment is `.` or `..` or empty, except that the last may be empty (a
/// trailing `/`). Otherwise `Err` with where the path ends.
fn canonical_prefix(raw: &str) -> Result<&str, usize> {
    let bytes = raw.as_bytes();
    let end = |from: usize| {
        bytes[from..]
            .iter()
            .position(|byte| matches!(byte, b'?' | b'#'))
            .map_or(bytes.len(), |at| from + at)
    };
    if bytes.first() != Some(&b'/') {
        return Err(end(0));
    }
    let mut segment_start = 1;
    for (index, &byte) in bytes.iter().enumerate().skip(1) {
        match BYTE_CLASS[usize::from(byte)] {
            PCHAR => {}
            SEPARATOR => {
                if matches!(&bytes[segment_start..index], b"" | b"." | b"..") {
                    return Err(end(index));
                }
                segment_start = index + 1;
            }
            END => return whole_if_last_segment_fits(&raw[..index], segment_start),
            _ => return Err(end(index)),
        }
    }
    whole_if_last_segment_fits(raw, segment_start)
}

/// `path` unless its last segment (from `segment_start`) is `.` or `..`.
fn whole_if_last_segment_fits(path: &str, segment_start: usize) -> Result<&str, usize> {
    match &path[segment_start..] {
        "." | ".." => Err(path.len()),
        _ => Ok(path),
    }
}

const OTHER: u8 = 0;
const PCHAR: u8 = 1;
const SEPARATOR: u8 = 2;
const END: u8 = 3;

/// What each byte is to [`canonical_prefix`]: a literal `pchar`, the `/`
/// separator, the `?` or `#` that ends the path, or anything else.
const BYTE_CLASS: [u8; 256] = {
    let mut classes = [OTHER; 256];
    let mut byte = 0;
    while byte < 256 {
        if is_pchar(byte as u8) {
            classes[byte] = PCHAR;
        }
        byte += 1;
    }
    classes[b'/' as usize] = SEPARATOR;
    classes[b'?' as usize] = END;
    classes[b'#' as usize] = END;
    classes
};

/// Decodes one raw segment into `out` (cleared first); `offset` is where the
/// segment starts in the whole path, for the error.
fn decode(segment: &str, offset: usize, out: &mut Vec<u8>) -> Result<(), Error> {
    out.clear();
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let high = bytes.get(i + 1).copied().and_then(hex_value);
            let low = bytes.get(i + 2).copied().and_then(hex_value);
            let (Some(high), Some(low)) = (high, low) else {
                return Err(Error::PathEscape { offset: offset + i });
            };
            out.push((high << 4) | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(())
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// Appends `segment` with every byte outside RFC 3986's `pchar` as `%XX`.
fn encode(segment: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in segment {
        if is_pchar(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// RFC 3986 `pchar` without `pct-encoded`: unreserved, sub-delims, `:` and `@`.
const fn is_pchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

#[cfg(test)]
mod tests;

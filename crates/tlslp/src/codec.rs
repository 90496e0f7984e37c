//! Line framing (`../shared/spec/tlslp.md` §3): UTF-8, one LF per line, at
//! most 1000 bytes including the LF. The limit is checked before anything is
//! kept, so a peer can never make us buffer more than one line.
//!
//! Unlike the reference (which tests "buffer ends with LF" and so merges two
//! lines that arrive together), a line ends at the first LF and the rest stays
//! for the next one; a well-behaved peer cannot tell the difference.

use crate::Error;

/// Longest line including its LF.
pub const MAX_LINE: usize = 1000;

/// What the decoder found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A complete line, without its LF, and the bytes it used (LF included).
    Line(String, usize),
    /// No LF yet and the buffer is within the limit: read more.
    Incomplete,
}

/// Looks for one line at the start of `buffer`.
///
/// # Errors
/// [`Error::LineTooLong`] when no LF appears within [`MAX_LINE`] bytes;
/// [`Error::InvalidUtf8`] when the line is not UTF-8.
pub fn decode(buffer: &[u8]) -> Result<Decoded, Error> {
    let window = &buffer[..buffer.len().min(MAX_LINE)];
    match window.iter().position(|&b| b == b'\n') {
        Some(end) => {
            let text = std::str::from_utf8(&buffer[..end]).map_err(|_| Error::InvalidUtf8)?;
            Ok(Decoded::Line(text.to_owned(), end + 1))
        }
        None if buffer.len() >= MAX_LINE => Err(Error::LineTooLong),
        None => Ok(Decoded::Incomplete),
    }
}

/// `text` as a line on the wire: one LF appended unless it already ends in one.
///
/// # Errors
/// [`Error::LineTooLong`] when the result would exceed [`MAX_LINE`].
pub fn encode(text: &str) -> Result<Vec<u8>, Error> {
    let mut bytes = text.as_bytes().to_vec();
    if !text.ends_with('\n') {
        bytes.push(b'\n');
    }
    if bytes.len() > MAX_LINE {
        return Err(Error::LineTooLong);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_limit_includes_the_lf() {
        let ok = format!("{}\n", "a".repeat(999));
        assert_eq!(
            decode(ok.as_bytes()).unwrap(),
            Decoded::Line("a".repeat(999), 1000)
        );
        let too_long = format!("{}\n", "a".repeat(1000));
        assert!(matches!(
            decode(too_long.as_bytes()),
            Err(Error::LineTooLong)
        ));
        assert_eq!(
            decode("a".repeat(999).as_bytes()).unwrap(),
            Decoded::Incomplete
        );
        assert!(encode(&"a".repeat(999)).is_ok());
        assert!(encode(&"a".repeat(1000)).is_err());
    }

    #[test]
    fn lines_split_at_the_first_lf_and_keep_cr() {
        assert_eq!(
            decode(b"HELLOBACK\nJUNK\n").unwrap(),
            Decoded::Line("HELLOBACK".into(), 10)
        );
        assert_eq!(
            decode(b"HELLOBACK\r\n").unwrap(),
            Decoded::Line("HELLOBACK\r".into(), 11)
        );
        assert_eq!(decode(b"\n").unwrap(), Decoded::Line(String::new(), 1));
        assert!(matches!(decode(b"\xff\xfe\n"), Err(Error::InvalidUtf8)));
        assert_eq!(encode("OK").unwrap(), b"OK\n");
        assert_eq!(encode("OK\n").unwrap(), b"OK\n");
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2100)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn every_strict_prefix_of_a_line_is_incomplete(text in "[^\n]{0,200}") {
            let wire = encode(&text).unwrap();
            for cut in 0..wire.len() {
                prop_assert_eq!(decode(&wire[..cut]).unwrap(), Decoded::Incomplete);
            }
            prop_assert_eq!(decode(&wire).unwrap(), Decoded::Line(text.clone(), wire.len()));
        }
    }
}

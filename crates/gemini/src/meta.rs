//! Per-directory overrides in agate's `.meta` format, for capsules moving
//! from agate (opt-in: `meta_files = true`, `--meta-files`). Each line of a
//! directory's `.meta` is `PATTERN: VALUE` for the files of that directory
//! (`*` and `?` globs; `#` starts a comment; the first match wins):
//!
//! - `;lang=en` adds parameters to the file's MIME type;
//! - `text/plain; charset=latin1` replaces its MIME type;
//! - `31 gemini://example.org/new.gmi`, `52 This page is gone`, or any other
//!   valid status and META answers with that instead of the file.

use std::path::Path;

use crate::Header;

/// The largest `.meta` file read; a larger one is ignored.
const MAX_META_FILE: u64 = 64 * 1024;

/// What a `.meta` line says about a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Override {
    /// Parameters appended to the MIME type (`;lang=en`).
    Parameters(String),
    /// A MIME type instead of the guessed one.
    Mime(String),
    /// Answer with this status and META instead of the file.
    Status(Header),
}

/// The override the `.meta` of `dir` gives the file `name`, if any.
pub(crate) fn lookup(dir: &Path, name: &str) -> Option<Override> {
    let path = dir.join(".meta");
    let file = std::fs::File::open(&path).ok()?;
    if file.metadata().ok()?.len() > MAX_META_FILE {
        tracing::warn!(file = %path.display(), "ignored: larger than 64 KiB");
        return None;
    }
    let text = std::io::read_to_string(file).ok()?;
    find(&text, name)
}

/// The first line of `text` whose pattern matches `name`.
fn find(text: &str, name: &str) -> Option<Override> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .find(|(pattern, _)| glob(pattern.trim().as_bytes(), name.as_bytes()))
        .and_then(|(_, value)| parse(value.trim()))
}

fn parse(value: &str) -> Option<Override> {
    if value.starts_with(';') {
        return Some(Override::Parameters(value.to_owned()));
    }
    let status = value.len() >= 2 && value.as_bytes()[..2].iter().all(u8::is_ascii_digit);
    if status {
        // A malformed line is ignored, never served half-understood.
        let header = Header::parse(value.as_bytes()).ok()?;
        return Some(if header.status / 10 == 2 {
            Override::Mime(header.meta)
        } else {
            Override::Status(header)
        });
    }
    (!value.is_empty() && value.contains('/')).then(|| Override::Mime(value.to_owned()))
}

/// `*` matches any run of characters, `?` one; the rest literally.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], name) || (!name.is_empty() && glob(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob(&pattern[1..], &name[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = "# overrides\n\
        index.gmi: ;lang=de\n\
        old.gmi: 31 gemini://example.org/new.gmi\n\
        gone-*.gmi: 52 This page is gone\n\
        *.txt: text/plain; charset=latin1\n\
        bad.gmi: 99 nonsense\n\
        *: ;lang=en\n";

    #[test]
    fn the_first_matching_line_decides() {
        assert_eq!(
            find(META, "index.gmi"),
            Some(Override::Parameters(";lang=de".into()))
        );
        assert_eq!(
            find(META, "notes.txt"),
            Some(Override::Mime("text/plain; charset=latin1".into()))
        );
        assert_eq!(
            find(META, "old.gmi"),
            Some(Override::Status(Header::new(
                31,
                "gemini://example.org/new.gmi"
            )))
        );
        assert_eq!(
            find(META, "gone-2024.gmi"),
            Some(Override::Status(Header::new(52, "This page is gone")))
        );
        // A malformed value is ignored (not the next line's).
        assert_eq!(find(META, "bad.gmi"), None);
        assert_eq!(
            find(META, "other.gmi"),
            Some(Override::Parameters(";lang=en".into()))
        );
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob(b"*.gmi", b"a.gmi"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"*.gmi", b"a.gmi.bak"));
        assert!(!glob(b"a", b"ab"));
    }
}

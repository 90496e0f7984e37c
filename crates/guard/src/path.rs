//! Path normalisation shared by certificate rules and handlers
//! (`../shared/spec/guard.md` §8): unreserved percent-escapes decoded, other
//! escapes upper-cased (`%2F`, `%5C`, `%00` stay encoded), dot segments removed
//! (RFC 3986 §5.2.4), runs of `/` collapsed, a trailing `/` kept.

/// Normalises a URL path (query and fragment already removed, or removed here).
pub fn normalize_path(raw: &str) -> String {
    let raw = raw.split(['?', '#']).next().unwrap_or_default();
    let decoded = decode_unreserved(raw);
    let collapsed = collapse_slashes(&decoded);
    let mut out = remove_dot_segments(&collapsed);
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    collapse_slashes(&out)
}

/// Whether a normalised path contains an encoded separator or NUL, which file
/// handlers must refuse.
pub fn has_encoded_separator(path: &str) -> bool {
    path.contains("%2F") || path.contains("%5C") || path.contains("%00")
}

fn decode_unreserved(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(value) = raw
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                let hex = &raw[i + 1..i + 3];
                if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(value));
                } else {
                    out.push('%');
                    out.push_str(&hex.to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        // Push the whole UTF-8 character starting here.
        let ch = raw[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn collapse_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut previous_slash = false;
    for ch in path.chars() {
        if ch == '/' {
            if !previous_slash {
                out.push('/');
            }
            previous_slash = true;
        } else {
            out.push(ch);
            previous_slash = false;
        }
    }
    out
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path.to_owned();
    let mut output = String::with_capacity(path.len());
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest.to_owned();
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest.to_owned();
        } else if input.starts_with("/./") {
            input = input[2..].to_owned();
        } else if input == "/." {
            input = "/".to_owned();
        } else if input.starts_with("/../") || input == "/.." {
            input = if input == "/.." {
                "/".to_owned()
            } else {
                input[3..].to_owned()
            };
            match output.rfind('/') {
                Some(index) => output.truncate(index),
                None => output.clear(),
            }
        } else if input == "." || input == ".." {
            input.clear();
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push_str(&input[..end]);
            input = input[end..].to_owned();
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_spec_examples() {
        for raw in [
            "//private/",
            "/public/../private/",
            "/./private/",
            "/%70rivate/",
            "/%2e%2e/private/",
            "/private/?q=1",
        ] {
            assert_eq!(normalize_path(raw), "/private/", "{raw}");
        }
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("/PRIVATE/"), "/PRIVATE/");
        assert_eq!(normalize_path("/a/%2f/b"), "/a/%2F/b");
        assert_eq!(normalize_path("/a/b/../../../c"), "/c");
        assert_eq!(normalize_path("/a/."), "/a/");
        assert!(has_encoded_separator(&normalize_path("/x%2fy")));
    }

    proptest! {
        #[test]
        fn idempotent_and_free_of_dot_segments_and_double_slashes(raw in "[/a-z.%0-9A-F~?]{0,60}") {
            let once = normalize_path(&raw);
            prop_assert_eq!(normalize_path(&once), once.clone());
            prop_assert!(!once.contains("//"));
            prop_assert!(!once.split('/').any(|segment| segment == ".." || segment == "."));
            prop_assert!(once.starts_with('/'));
        }

        #[test]
        fn anything_that_normalises_under_a_prefix_is_protected(tail in "[a-z./%0-9]{0,30}") {
            let raw = format!("/private/{tail}");
            let path = normalize_path(&raw);
            if path.starts_with("/private/") || path == "/private" {
                let rules = crate::CertRules::new(vec![crate::CertRule::any("/private/")]).unwrap();
                prop_assert!(rules.rule_for(&path).is_some());
            }
        }
    }
}

use proptest::prelude::*;

use super::*;

fn canonical(raw: &str) -> String {
    CanonicalPath::parse(raw)
        .unwrap_or_else(|e| panic!("{raw:?}: {e}"))
        .as_str()
        .to_owned()
}

#[test]
fn the_spec_examples() {
    for raw in [
        "//private/",
        "/public/../private/",
        "/./private/",
        "/%70rivate/",
        "/%2e%2e/private/",
        "/private/?q=1",
        "/private/#top",
        "/priv%61te/",
        "/%70%72%69%76%61%74%65/",
        "/.%2E/private/",
    ] {
        assert_eq!(canonical(raw), "/private/", "{raw}");
    }
    assert_eq!(canonical(""), "/");
    assert_eq!(canonical("?q"), "/");
    assert_eq!(canonical("/PRIVATE/"), "/PRIVATE/");
    assert_eq!(canonical("/a/%2f/b"), "/a/%2F/b");
    assert_eq!(canonical("/a/b/../../../c"), "/c");
    assert_eq!(canonical("/a/."), "/a/");
    assert_eq!(canonical("/a/.."), "/");
    assert_eq!(canonical("a/b"), "/a/b");
    assert!(CanonicalPath::parse("/x%2fy")
        .unwrap()
        .has_encoded_separator());
    assert!(CanonicalPath::parse("/x%5cy")
        .unwrap()
        .has_encoded_separator());
    assert!(CanonicalPath::parse("/x%00y")
        .unwrap()
        .has_encoded_separator());
}

#[test]
fn one_form_for_every_spelling_of_a_name() {
    // Sub-delims decode like unreserved characters: a file handler reads both as `!`.
    assert_eq!(canonical("/a%21"), "/a!");
    assert_eq!(canonical("/a!"), "/a!");
    // Non-ASCII, spaces and reserved characters inside a segment are escaped.
    assert_eq!(canonical("/privé/"), "/priv%C3%A9/");
    assert_eq!(canonical("/priv%c3%a9/"), "/priv%C3%A9/");
    assert_eq!(canonical("/a b"), "/a%20b");
    assert_eq!(canonical("/a%3Fb"), "/a%3Fb");
    assert_eq!(canonical("/a%23b"), "/a%23b");
    // A decoded `%` is a literal percent sign, escaped again; never decoded twice.
    assert_eq!(canonical("/%2570rivate/"), "/%2570rivate/");
    assert_eq!(canonical("/%252e%252e/private/"), "/%252e%252e/private/");
}

#[test]
fn regression_double_decoding_of_a_bare_percent() {
    // `%%37%30` used to become `%70`, which the capsule decoded again to `p`.
    for raw in [
        "/%%37%30rivate/",
        "/%%32%65%%32%65/private/",
        "/x/%%32%65%%32%65/private/",
        "%%610",
        "/%",
        "/%4",
        "/%4g",
        "/%g4",
        "/a%",
        "/%%",
        "/%é9",
    ] {
        assert!(
            matches!(CanonicalPath::parse(raw), Err(Error::PathEscape { .. })),
            "{raw:?} must be refused"
        );
    }
    assert_eq!(
        CanonicalPath::parse("/ab/c%zz"),
        Err(Error::PathEscape { offset: 5 })
    );
    // Only the path counts: a bare `%` in the query is the query's business.
    assert_eq!(canonical("/a?%%"), "/a");
}

#[test]
fn segments_are_the_decoded_bytes() {
    let path = CanonicalPath::parse("/a%20b/%C3%A9/c%2Fd/").unwrap();
    let segments: Vec<Vec<u8>> = path.segments().map(Cow::into_owned).collect();
    assert_eq!(
        segments,
        [b"a b".to_vec(), "é".as_bytes().to_vec(), b"c/d".to_vec()]
    );
    assert!(path.is_directory());
    assert_eq!(CanonicalPath::from_segments(segments, true), path);
    assert_eq!(
        CanonicalPath::from_segments(["x", ".", "..", "", "y"], false).as_str(),
        "/y"
    );
    assert_eq!(
        CanonicalPath::from_segments::<[&str; 0]>([], true).as_str(),
        "/"
    );
}

/// A reference model, written the slow and obvious way: decode every segment,
/// then apply dot segments to a stack of byte strings.
fn model_segments(raw: &str) -> Option<Vec<Vec<u8>>> {
    let path = raw.split(['?', '#']).next().unwrap_or_default();
    let mut stack: Vec<Vec<u8>> = Vec::new();
    for segment in path.split('/') {
        let mut bytes = Vec::new();
        let mut rest = segment.as_bytes();
        while let Some((&first, tail)) = rest.split_first() {
            if first == b'%' {
                let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                rest = &tail[2..];
            } else {
                bytes.push(first);
                rest = tail;
            }
        }
        match bytes.as_slice() {
            b"" | b"." => {}
            b".." => {
                stack.pop();
            }
            _ => stack.push(bytes),
        }
    }
    Some(stack)
}

/// Paths made of the characters that matter here, escapes of them included.
fn tricky_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just(".".to_owned()),
        Just("%".to_owned()),
        Just("%25".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E".to_owned()),
        Just("%2f".to_owned()),
        Just("%70".to_owned()),
        Just("p".to_owned()),
        Just("private".to_owned()),
        Just("?".to_owned()),
        Just("é".to_owned()),
        "[0-9a-fA-F]".prop_map(|s| s),
        "%[0-9a-fA-F]{2}".prop_map(|s| s),
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn idempotent_and_free_of_dot_segments_and_double_slashes(raw in "[/a-z.%0-9A-F~?]{0,60}") {
        check_canonical_form(&raw)?;
    }

    #[test]
    fn tricky_paths_have_one_canonical_form(raw in tricky_path()) {
        check_canonical_form(&raw)?;
    }

    #[test]
    fn any_text_has_one_canonical_form(raw in any::<String>()) {
        check_canonical_form(&raw)?;
    }

    #[test]
    fn a_path_taken_as_it_is_is_the_one_rebuilt(
        raw in prop_oneof![tricky_path(), "(/[a-z.~!]{0,3}){0,6}/?([?#][a-z/.]{0,3})?"]
    ) {
        let path = &raw[..raw.find(['?', '#']).unwrap_or(raw.len())];
        let rebuilt = CanonicalPath::normalise(path);
        prop_assert_eq!(CanonicalPath::parse(&raw), rebuilt.clone());
        match canonical_prefix(&raw) {
            Ok(taken) => prop_assert_eq!(rebuilt.map(|p| p.0), Ok(taken.to_owned())),
            Err(end) => prop_assert_eq!(end, path.len()),
        }
    }

    #[test]
    fn anything_whose_bytes_lie_under_a_prefix_is_protected(raw in tricky_path()) {
        let Ok(path) = CanonicalPath::parse(&raw) else {
            return Ok(());
        };
        let rules = crate::CertRules::new(vec![crate::CertRule::any("/private/")]).unwrap();
        let under_private = path.segments().next().is_some_and(|first| *first == *b"private");
        prop_assert_eq!(rules.rule_for(&path).is_some(), under_private, "{}", path);
    }
}

/// The properties every canonical path has, against the model.
fn check_canonical_form(raw: &str) -> Result<(), TestCaseError> {
    let Some(expected) = model_segments(raw) else {
        prop_assert!(
            CanonicalPath::parse(raw).is_err(),
            "{:?} must be refused",
            raw
        );
        return Ok(());
    };
    let once = CanonicalPath::parse(raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let text = once.as_str();
    prop_assert_eq!(CanonicalPath::parse(text), Ok(once.clone()));
    prop_assert!(text.starts_with('/'));
    prop_assert!(text.is_ascii());
    prop_assert!(!text.contains("//"));
    prop_assert!(!text.contains(['?', '#']));
    prop_assert!(!text
        .split('/')
        .any(|segment| segment == ".." || segment == "."));
    let segments: Vec<Vec<u8>> = once.segments().map(Cow::into_owned).collect();
    prop_assert_eq!(&segments, &expected);
    prop_assert_eq!(
        CanonicalPath::from_segments(segments, once.is_directory()),
        once.clone()
    );
    Ok(())
}

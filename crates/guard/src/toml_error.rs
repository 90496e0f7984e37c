//! Configuration errors as one sentence with the position, for every
//! program that reads TOML (the guard table, the Gemini capsule file, the
//! tlslp client profile) — not the toml crate's multi-line snippet.

/// `error` in `text` as `line L, column C: MESSAGE`, or `` `key.path`:
/// MESSAGE`` when the error has no position (a value of the wrong type found
/// after parsing).
pub fn toml_error_sentence(error: &toml::de::Error, text: &str) -> String {
    let message = error
        .message()
        .trim()
        .lines()
        .collect::<Vec<_>>()
        .join("; ");
    if let Some(span) = error.span() {
        let (line, column) = position(text, span.start);
        return format!("line {line}, column {column}: {message}");
    }
    // The key path is only in the Display form, as its `in `…`` line.
    let rendered = error.to_string();
    match rendered
        .lines()
        .find_map(|line| line.strip_prefix("in `")?.strip_suffix('`'))
    {
        Some(keys) => format!("`{keys}`: {message}"),
        None => message,
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let bytes = &text.as_bytes()[..offset.min(text.len())];
    let line_start = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    let line = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&bytes[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct File {
        rate: Option<f64>,
    }

    fn sentence(text: &str) -> String {
        let error = toml::from_str::<File>(text).unwrap_err();
        toml_error_sentence(&error, text)
    }

    #[test]
    fn parse_and_schema_errors_are_one_line_with_the_position() {
        assert_eq!(
            sentence("rate = [1,\n"),
            "line 1, column 11: unclosed array, expected `]`"
        );
        let unknown = sentence("\n\ncolour = \"é\"\n");
        assert!(
            unknown.starts_with("line 3, column 1: unknown field `colour`"),
            "{unknown}"
        );
        let wrong = sentence("rate = \"x\"");
        assert!(
            wrong.starts_with("line 1, column 8: invalid type"),
            "{wrong}"
        );
        for text in ["rate = [1,\n", "colour = 1", "rate = \"x\""] {
            assert!(!sentence(text).contains('\n'), "{text}");
        }
    }

    #[test]
    fn an_error_without_a_position_names_its_key() {
        let value: toml::Value = toml::from_str("[limits]\nrate = \"x\"\n").unwrap();
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Limits {
            limits: File,
        }
        let error = value.try_into::<Limits>().unwrap_err();
        let text = toml_error_sentence(&error, "");
        assert!(text.starts_with("`limits.rate`: invalid type"), "{text}");
    }
}

//! Text from peers made safe to show: node names and chat messages reach a
//! terminal, where control characters move the cursor or clear the screen and
//! Unicode format characters reorder or hide text (a right-to-left override,
//! U+202E, shows what follows it backwards; a zero-width space makes two
//! names look the same). Each such character becomes U+FFFD, so tampering
//! stays visible instead of silently disappearing.

/// `text` with every control character (C0, DEL, C1), Unicode format
/// character (general category Cf: bidirectional embeddings, overrides and
/// isolates, zero-width characters, the BOM, tags…) and line or paragraph
/// separator replaced by U+FFFD.
pub fn display_safe(text: &str) -> String {
    text.chars()
        .map(|c| if is_hidden_effect(c) { '\u{fffd}' } else { c })
        .collect()
}

/// Characters that act on the display instead of showing as themselves.
fn is_hidden_effect(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn regression_bidi_overrides_and_zero_width_characters_are_shown_replaced() {
        assert_eq!(display_safe("alice\u{202E}txt.exe"), "alice\u{FFFD}txt.exe");
        assert_eq!(display_safe("al\u{200B}ice"), "al\u{FFFD}ice");
        assert_eq!(display_safe("\u{2066}x\u{2069}"), "\u{FFFD}x\u{FFFD}");
        assert_eq!(
            display_safe("a\u{1b}[2Jb\r\n"),
            "a\u{FFFD}[2Jb\u{FFFD}\u{FFFD}"
        );
        assert_eq!(display_safe("\u{FEFF}tag\u{E0041}"), "\u{FFFD}tag\u{FFFD}");
        assert_eq!(display_safe("line\u{2028}break"), "line\u{FFFD}break");
    }

    #[test]
    fn ordinary_text_in_any_script_is_kept() {
        for text in [
            "élan",
            "Ünïcödé",
            "مرحبا",
            "שלום",
            "日本語",
            "🙂 ok",
            "tab-free text",
        ] {
            assert_eq!(display_safe(text), text);
        }
    }

    proptest! {
        #[test]
        fn the_result_holds_nothing_hidden_and_keeps_its_length_in_chars(text in any::<String>()) {
            let safe = display_safe(&text);
            prop_assert_eq!(safe.chars().count(), text.chars().count());
            prop_assert!(!safe.chars().any(is_hidden_effect));
        }
    }
}

//! Making sender-controlled text safe to put on one log line.

/// Longest summary, in characters; longer ones end in an ellipsis.
pub(crate) const MAX_SUMMARY: usize = 300;
/// Longest single sender-provided piece (a title, a name) inside a summary.
pub(crate) const MAX_FIELD: usize = 120;
/// Longest event type or delivery id accepted, in bytes (they become keys and metric labels).
pub(crate) const MAX_ID: usize = 256;

/// Characters that could break or disguise a log line: controls (including newlines and C1),
/// Unicode line and paragraph separators, and bidirectional overrides ("Trojan Source").
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        )
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Replaces unsafe characters with spaces, collapses runs of whitespace, trims, and caps the
/// result at `max` characters (the last one an ellipsis when it was cut).
pub(crate) fn clean(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max.saturating_mul(4)));
    let mut count = 0;
    let mut pending_space = false;
    for c in s.chars() {
        let c = if is_unsafe(c) { ' ' } else { c };
        if c.is_whitespace() {
            pending_space = count > 0;
            continue;
        }
        if pending_space {
            if count == max {
                return ellipsize(out, max);
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count == max {
            return ellipsize(out, max);
        }
        out.push(c);
        count += 1;
    }
    out
}

/// Cuts a string that holds exactly `max` characters, with more to come, down to `max`
/// including the ellipsis.
fn ellipsize(mut out: String, max: usize) -> String {
    out.pop();
    while out.ends_with(' ') {
        out.pop();
    }
    if max > 0 {
        out.push('…');
    }
    out
}

/// Whether an event type or delivery id can be used as a key, a label and a log field.
pub(crate) fn is_valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID && !s.chars().any(is_unsafe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, max: usize, expected: &str) {
        let got = clean(input, max);
        assert_eq!(got, expected, "clean({input:?}, {max})");
        assert!(got.chars().count() <= max, "{got:?} is longer than {max}");
    }

    #[test]
    fn cleans_and_caps() {
        check("plain title", 50, "plain title");
        check("  padded  ", 50, "padded");
        check(
            "line\nbreak\r\nforged: level=ERROR",
            50,
            "line break forged: level=ERROR",
        );
        check(
            "tab\tand\u{0}nul\u{7f}del\u{85}nel",
            50,
            "tab and nul del nel",
        );
        check("sep\u{2028}ara\u{2029}tor", 50, "sep ara tor");
        check("bidi\u{202E}evil\u{2066}x", 50, "bidi evil x");
        check("many     spaces", 50, "many spaces");
        check("abcdef", 6, "abcdef");
        check("abcdefg", 6, "abcde…");
        check("ab cdefg", 6, "ab cd…");
        check("ünïcødé ✓ works", 9, "ünïcødé…");
        check("abc", 0, "");
        check("", 10, "");
        check("\n\n\n", 10, "");
    }

    #[test]
    fn validates_ids() {
        for (input, ok) in [
            ("push", true),
            ("invoice.paid", true),
            ("72d3162e-cc78-11e3-81ab-4c9367dc0958", true),
            ("", false),
            ("a\nb", false),
            ("a\u{202E}b", false),
            (&"x".repeat(MAX_ID), true),
            (&"x".repeat(MAX_ID + 1), false),
        ] {
            assert_eq!(is_valid_id(input), ok, "{input:?}");
        }
    }
}

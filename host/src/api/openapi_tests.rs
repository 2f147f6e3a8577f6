//! The OpenAPI document's character-class patterns against the server's own rules.

use super::*;

/// The characters a `[^…]` class from [`not_only`] leaves out, read back from its text.
fn excluded(class: &str) -> Vec<(u32, u32)> {
    let inner = class
        .strip_prefix("[^")
        .and_then(|c| c.strip_suffix(']'))
        .unwrap_or_default();
    let mut chars = inner.chars().peekable();
    let next = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Option<u32> {
        let c = chars.next()?;
        if c != '\\' {
            return Some(u32::from(c));
        }
        assert_eq!(chars.next(), Some('u'), "{class}");
        let hex: String = chars.by_ref().take(4).collect();
        u32::from_str_radix(&hex, 16).ok()
    };
    let mut ranges = Vec::new();
    while let Some(first) = next(&mut chars) {
        let last = if chars.peek() == Some(&'-') {
            chars.next();
            next(&mut chars).unwrap_or(first)
        } else {
            first
        };
        ranges.push((first, last));
    }
    ranges
}

#[test]
fn the_patterns_refuse_exactly_what_the_server_refuses() {
    for (blank, class) in [
        (is_blank_char as fn(char) -> bool, not_only(is_blank_char)),
        (
            char::is_whitespace as fn(char) -> bool,
            not_only(char::is_whitespace),
        ),
    ] {
        let ranges = excluded(&class);
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            let code = u32::from(c);
            let left_out = ranges.iter().any(|(a, b)| (*a..=*b).contains(&code));
            assert_eq!(left_out, blank(c), "U+{code:04X} in {class}");
        }
    }
    // What the reply's text pattern says, on the server's own examples.
    let text = not_only(is_blank_char);
    assert!(text.starts_with("[^\\u0000-\\u0020"), "{text}");
    assert!(text.contains('\u{E0000}'), "{text}");
}

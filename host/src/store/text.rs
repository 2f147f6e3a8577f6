//! Text the databases cannot hold as it is, kept exactly.
//!
//! A customer's message may contain U+0000: it is valid in JSON (`\u0000`) and in a Rust
//! `String`, and platforms pass it on. PostgreSQL refuses it in any `TEXT` value (`invalid
//! byte sequence for encoding "UTF8": 0x00`), which failed the whole transaction: the
//! webhook answered 503 on every redelivery, and that delivery, with every other message of
//! its batch, was never stored. SQLite keeps it, but many of its string functions stop at
//! it.
//!
//! So the store never writes U+0000 into a text column, on either backend. Text that comes
//! from platforms, plugins or people is written through [`stored`] and read back through
//! [`read`]:
//!
//! - U+0000 is written as `ESC 0`;
//! - `ESC` itself is written as `ESC ESC`;
//!
//! where `ESC` is U+FDD0, a Unicode noncharacter (reserved, never used in interchanged
//! text). The mapping is one-to-one, so what is read back is byte-identical to what came
//! in, and text with neither character (all of it, in practice) is written unchanged, so
//! the indexes and look-ups on ids and thread keys work as before. Look-ups bind the
//! [`stored`] form of what they look for.
//!
//! JSON columns (`attachments`, `extra`, payloads) need nothing: serde_json writes U+0000
//! as the six characters `\u0000`. The store keeps JSON as `TEXT`, never as PostgreSQL's
//! `JSONB`, which would refuse `\u0000` even escaped.

/// The escape character: U+FDD0, a noncharacter.
const ESC: char = '\u{FDD0}';

/// `text` as the store writes it: U+0000 and the escape character escaped.
pub(crate) fn stored(text: &str) -> String {
    if !text.contains(['\0', ESC]) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\0' => {
                out.push(ESC);
                out.push('0');
            }
            ESC => {
                out.push(ESC);
                out.push(ESC);
            }
            c => out.push(c),
        }
    }
    out
}

/// [`stored`] for an optional value.
pub(crate) fn stored_opt(text: Option<&String>) -> Option<String> {
    text.map(|t| stored(t))
}

/// Text as the store wrote it, back as it came in (the inverse of [`stored`]).
///
/// An escape character followed by anything else (which [`stored`] never writes) is kept
/// as it is, so a value written before escaping existed reads back unchanged.
pub(crate) fn read(text: String) -> String {
    if !text.contains(ESC) {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != ESC {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('0') => {
                chars.next();
                out.push('\0');
            }
            Some(&ESC) => {
                chars.next();
                out.push(ESC);
            }
            _ => out.push(ESC),
        }
    }
    out
}

/// [`read`] for an optional value.
pub(crate) fn read_opt(text: Option<String>) -> Option<String> {
    text.map(read)
}

#[cfg(test)]
mod tests {
    use super::{ESC, read, stored};

    #[test]
    fn text_round_trips_exactly_and_never_holds_nul_when_stored() {
        let esc = ESC.to_string();
        for text in [
            String::new(),
            "il mio modem non va".to_string(),
            "\0".to_string(),
            "a\0b\0\0c".to_string(),
            format!("{esc}0"),
            format!("{esc}{esc}\0{esc}"),
            format!("\0{esc}0\0"),
            "ends with escape \u{FDD0}".to_string(),
        ] {
            let written = stored(&text);
            assert!(!written.contains('\0'), "{written:?}");
            assert_eq!(read(written), text);
        }
        // Text without either character is written unchanged.
        assert_eq!(stored("ciao 👋 \\u0000"), "ciao 👋 \\u0000");
    }
}

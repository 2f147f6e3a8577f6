//! Text and ids: what most connectors check before they send, and clean up when they
//! receive.

use crate::bindings::channel::exports::centralino::plugin::connector::Sent;
use crate::{OutboundMessage, PluginError, Result};

/// Whether `value` is a non-empty run of decimal digits: a platform id that is safe to put
/// in a URL path.
pub fn is_digits(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
}

/// Refuses `text` longer than `limit` Unicode scalar values (`rejected`: no retry makes it
/// shorter). `platform` names who imposes the limit.
pub fn ensure_fits(text: &str, limit: u32, platform: &str) -> Result<()> {
    let length = text.chars().count();
    if length > limit as usize {
        return Err(PluginError::rejected(format!(
            "text is {length} characters; {platform} accepts {limit}"
        )));
    }
    Ok(())
}

impl OutboundMessage {
    /// The text of a reply that must be plain text: attachments are `rejected` (this
    /// connector cannot send them), an empty text is `invalid-input`.
    pub fn plain_text(&self, channel: &str) -> Result<&str> {
        if !self.attachments.is_empty() {
            return Err(PluginError::rejected(format!(
                "the {channel} connector does not send attachments"
            )));
        }
        self.text_beside_files()
    }

    /// The reply's text, for a connector that also sends its `attachments`: refused only
    /// when it is blank.
    pub fn text_beside_files(&self) -> Result<&str> {
        if self.text.trim().is_empty() {
            return Err(PluginError::invalid_input("a reply needs text"));
        }
        Ok(&self.text)
    }
}

impl Sent {
    /// Sent now (by the host's clock) with the platform's id for it.
    pub fn now(external_id: impl Into<String>) -> Self {
        Sent {
            external_id: external_id.into(),
            sent_at: crate::time::now_ms(),
        }
    }
}

/// Undoes HTML escaping (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;` and numeric
/// references such as `&#39;` or `&#x27;`) in one left-to-right pass, so an escaped entity
/// (`&amp;lt;`) becomes literal text (`&lt;`) and not `<`.
pub fn unescape_html(text: &str) -> String {
    const NAMED: [(&str, char); 5] = [
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
        ("&apos;", '\''),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        let (before, tail) = rest.split_at(at);
        out.push_str(before);
        let decoded = NAMED
            .iter()
            .find(|(name, _)| tail.starts_with(name))
            .map(|(name, ch)| (*ch, name.len()))
            .or_else(|| numeric_reference(tail));
        match decoded {
            Some((ch, len)) => {
                out.push(ch);
                rest = tail.get(len..).unwrap_or_default();
            }
            None => {
                out.push('&');
                rest = tail.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

/// `&#39;` or `&#x27;` at the start of `text`: the character and the reference's length.
fn numeric_reference(text: &str) -> Option<(char, usize)> {
    let body = text.strip_prefix("&#")?;
    let end = body.find(';')?;
    let digits = body.get(..end)?;
    let code = match digits.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    Some((char::from_u32(code)?, end + 3))
}

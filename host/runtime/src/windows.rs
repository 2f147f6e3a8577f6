//! Reply windows: how long after the customer's last message a platform accepts a reply,
//! as a connector declares it (the `centralino-reply-window` section, read at
//! inspection). The host refuses a reply past the window before any call is made, with a
//! reason the CRM can show (`outside_messaging_window`), instead of letting the platform
//! refuse it.
//!
//! ```json
//! {"kinds": ["private-message"], "hours": 24, "extended_hours": 168,
//!  "extended_setting": "human_agent"}
//! ```
//!
//! Messenger: 24 hours; 7 days when the connector's `human_agent = true` setting lets a
//! person answer with the `HUMAN_AGENT` tag (which the plugin adds).

use serde::{Deserialize, Serialize};

use crate::types::MessageKind;

/// Name of the custom section that carries a connector's reply window.
pub const REPLY_WINDOW_SECTION: &str = "centralino-reply-window";

/// The reason a reply past its window is refused with.
pub const OUTSIDE_MESSAGING_WINDOW: &str = "outside_messaging_window";

/// A connector's declared reply window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyWindow {
    /// The kinds of reply it applies to.
    pub kinds: Vec<MessageKind>,
    /// Hours after the customer's last message a reply is accepted.
    pub hours: u64,
    /// Hours when the connector setting `extended_setting` is `true`.
    #[serde(default)]
    pub extended_hours: Option<u64>,
    /// The connector setting that enables `extended_hours`.
    #[serde(default)]
    pub extended_setting: Option<String>,
}

impl ReplyWindow {
    /// Parses the section's bytes.
    pub fn parse(bytes: &[u8]) -> Result<ReplyWindow, String> {
        serde_json::from_slice(bytes).map_err(|e| {
            format!("the `{REPLY_WINDOW_SECTION}` section is not a valid reply window: {e}")
        })
    }

    /// The window in hours for a connector whose settings are `settings`.
    #[doc(hidden)]
    pub fn hours_with(&self, settings: &[(String, String)]) -> u64 {
        let extended = self.extended_setting.as_ref().is_some_and(|name| {
            settings
                .iter()
                .any(|(key, value)| key == name && value == "true")
        });
        match (extended, self.extended_hours) {
            (true, Some(hours)) => hours,
            _ => self.hours,
        }
    }

    /// Why a reply of `kind` whose customer last wrote at `last_inbound_ms` may not go
    /// out at `now_ms`, if it may not.
    #[doc(hidden)]
    pub fn refusal(
        &self,
        kind: MessageKind,
        settings: &[(String, String)],
        last_inbound_ms: u64,
        now_ms: u64,
    ) -> Option<String> {
        if !self.kinds.contains(&kind) {
            return None;
        }
        let hours = self.hours_with(settings);
        let age = now_ms.saturating_sub(last_inbound_ms);
        if age <= hours.saturating_mul(3_600_000) {
            return None;
        }
        let hint = match (&self.extended_setting, self.extended_hours) {
            (Some(setting), Some(extended)) if hours < extended => format!(
                "; with the connector setting `{setting} = true` a person may answer for {extended} hours"
            ),
            _ => String::new(),
        };
        Some(format!(
            "{OUTSIDE_MESSAGING_WINDOW}: the customer last wrote {} hours ago, and this channel \
             accepts replies for {hours} hours after the customer's last message{hint}",
            age / 3_600_000
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messengers_window_is_a_day_or_a_week_with_the_human_agent_setting() {
        let window = ReplyWindow::parse(
            br#"{"kinds":["private-message"],"hours":24,"extended_hours":168,"extended_setting":"human_agent"}"#,
        )
        .unwrap();
        let hour = 3_600_000;
        let now = 1_000 * hour;
        let off: Vec<(String, String)> = Vec::new();
        let on = vec![("human_agent".to_string(), "true".to_string())];
        let pm = MessageKind::PrivateMessage;
        assert_eq!(window.refusal(pm, &off, now - 23 * hour, now), None);
        let refused = window.refusal(pm, &off, now - 30 * hour, now).unwrap();
        assert!(
            refused.starts_with("outside_messaging_window: the customer last wrote 30 hours ago"),
            "{refused}"
        );
        assert!(refused.contains("`human_agent = true`"), "{refused}");
        assert_eq!(window.refusal(pm, &on, now - 30 * hour, now), None);
        assert!(window.refusal(pm, &on, now - 8 * 24 * hour, now).is_some());
        assert_eq!(window.refusal(MessageKind::Comment, &off, 0, now), None);
    }
}

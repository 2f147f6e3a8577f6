//! Sending: a threaded public reply or a DM, its images uploaded first.

use centralino_sdk::prelude::*;
use centralino_sdk::text::{ensure_fits, is_digits};
use serde::Deserialize;
use serde_json::json;

use super::client::XApi;
use super::{DM_MAX_CHARS, POST_MAX_CHARS};
use crate::config::Settings;
use crate::normalise::{dm_thread_customer, post_thread_root};

/// Sends a threaded public reply or a DM from `message.account`.
pub fn send(settings: &Settings, message: &OutboundMessage) -> Result<Sent> {
    let account = settings.accounts.require(&message.account)?;
    let text = message.text_beside_files()?;
    let (path, mut body, limit) = match message.kind {
        MessageKind::PublicPost => {
            let target = message
                .in_reply_to
                .as_deref()
                .or_else(|| post_thread_root(&message.conversation_key))
                .filter(|id| is_digits(id))
                .ok_or_else(|| {
                    PluginError::invalid_input(
                        "a public reply needs the id of the post it answers (in-reply-to)",
                    )
                })?;
            let body = json!({ "text": text, "reply": { "in_reply_to_tweet_id": target } });
            ("/2/tweets".to_string(), body, POST_MAX_CHARS)
        }
        MessageKind::PrivateMessage => {
            let participant = message
                .recipient
                .as_deref()
                .or_else(|| dm_thread_customer(&message.conversation_key, &account.id))
                .filter(|id| is_digits(id))
                .ok_or_else(|| {
                    PluginError::invalid_input(
                        "a DM needs the customer's numeric X user id (recipient)",
                    )
                })?;
            let path = format!("/2/dm_conversations/with/{participant}/messages");
            (path, json!({ "text": text }), DM_MAX_CHARS)
        }
        MessageKind::Comment => {
            return Err(PluginError::invalid_input(
                "X has no comments: answer with a public reply or a DM",
            ));
        }
    };
    ensure_fits(text, limit, "X")?;
    let mut api = XApi::new(settings, account.credential()?);
    // Images first (X's media upload), then the post or DM naming them.
    if !message.attachments.is_empty() {
        let dm = message.kind == MessageKind::PrivateMessage;
        if dm && message.attachments.len() > 1 {
            return Err(PluginError::rejected(format!(
                "X takes one image per DM; this reply has {}",
                message.attachments.len()
            )));
        }
        let category = if dm { "dm_image" } else { "tweet_image" };
        let mut ids = Vec::with_capacity(message.attachments.len());
        for attachment in &message.attachments {
            ids.push(api.upload(attachment, category)?);
        }
        if dm {
            body["attachments"] = json!([{ "media_id": ids[0] }]);
        } else {
            body["media"] = json!({ "media_ids": ids });
        }
    }
    let response = api.post(&path, &body)?;
    // X acted on the request: a missing id must not make the host send it again.
    let external_id = sent_id(&response.body).ok_or_else(|| {
        PluginError::rejected(format!(
            "X accepted the reply but its answer names no id: {}",
            response.summary()
        ))
    })?;
    Ok(Sent::now(external_id))
}

/// The new post's `data.id`, or the new DM's `data.dm_event_id`.
fn sent_id(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Created {
        data: CreatedData,
    }
    #[derive(Deserialize)]
    struct CreatedData {
        id: Option<String>,
        dm_event_id: Option<String>,
    }
    let created: Created = serde_json::from_slice(body).ok()?;
    created.data.dm_event_id.or(created.data.id)
}

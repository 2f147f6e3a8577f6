//! Account Activity webhooks: the CRC challenge and signed event deliveries.
//!
//! X calls the webhook with `GET ?crc_token=…` when it is registered and about hourly
//! after; the answer, an HMAC-SHA256 of the token with the app's consumer secret, proves we
//! hold the secret. Every event delivery is a POST whose raw body is signed with the same
//! secret (`x-twitter-webhooks-signature: sha256=<base64>`). The signature is checked over
//! the bytes exactly as received, before the body is parsed: a forged or altered delivery
//! is answered 401/403 and never reaches the JSON parser.
//!
//! Deliveries carry v1.1 objects. `tweet_create_events` and `direct_message_events` become
//! customer messages (with X's detected language as `extra` `lang`);
//! `direct_message_mark_read_events` become read receipts for the company's DMs;
//! `tweet_delete_events` of customers become deletions (the SDK's
//! [`conventions::deletion`]), so the host empties its copy as X's terms require;
//! everything else X sends (typing indicators, likes, follows, `user_event` revocations)
//! is acknowledged with 200 and produces nothing.

use std::collections::HashMap;

use centralino_sdk::conventions;
use centralino_sdk::prelude::*;
use centralino_sdk::signing::{self, Encoding, SignatureHeader};
use centralino_sdk::text::unescape_html;
use centralino_sdk::{time, warn};
use serde::de::IgnoredAny;
use serde_json::json;

use crate::config::{Mention, Settings};
use crate::normalise::{
    as_edit, dm_thread_key, media_attachment, original_of, parse_time, post_thread_key,
    snowflake_ms,
};

mod payload;

use payload::{Delivery, DmEvent, DmUser, HANDLED, MarkRead, Media, Post, PostDeletion};

/// `sha256=` + base64 of the HMAC of the raw body.
const SIGNATURE: SignatureHeader = SignatureHeader {
    name: "x-twitter-webhooks-signature",
    prefix: "sha256=",
    encoding: Encoding::Base64,
};

/// Answers one request on the connector's webhook route.
pub fn handle(settings: &Settings, request: &WebhookRequest) -> Result<WebhookOutcome> {
    match request.method.as_str() {
        "GET" => answer_crc(settings, request),
        "POST" => receive(settings, request),
        _ => Ok(WebhookOutcome::refuse(
            405,
            "only GET (CRC) and POST (events) are served",
        )),
    }
}

/// The CRC challenge: `{"response_token": "sha256=<base64 HMAC of crc_token>"}`.
///
/// The token is HMAC'd as X meant it, after URL decoding (`test+token` is `test token`).
/// Only a token shaped like X's (short, token characters: see
/// [`signing::challenge_token`]) is answered; anything else is refused with 400 and nothing
/// is signed. The answer has the delivery signature's format, so signing any token would
/// hand out valid signatures for forged deliveries.
fn answer_crc(settings: &Settings, request: &WebhookRequest) -> Result<WebhookOutcome> {
    let Some(token) = request.query_param("crc_token").filter(|t| !t.is_empty()) else {
        return Ok(WebhookOutcome::refuse(400, "missing crc_token"));
    };
    let Some(answer) = signing::crc_response_token(&settings.consumer_secret, &token)? else {
        return Ok(WebhookOutcome::refuse(
            400,
            "crc_token is not a CRC token (at most 256 letters, digits and `+/=_.~-`)",
        ));
    };
    Ok(WebhookOutcome::json(
        200,
        &json!({ "response_token": answer }),
    ))
}

/// A POST delivery: verify, then parse, then normalise.
fn receive(settings: &Settings, request: &WebhookRequest) -> Result<WebhookOutcome> {
    if let Some(refusal) = SIGNATURE.refusal(request, &settings.consumer_secret)? {
        return Ok(refusal);
    }
    let mut delivery: Delivery = match request.json() {
        Ok(delivery) => delivery,
        Err(e) => {
            return Ok(WebhookOutcome::malformed(&format!(
                "not an Account Activity delivery: {e}"
            )));
        }
    };
    // Each value is skipped without being built, iteratively, as in the first pass.
    delivery.kinds = request
        .json::<std::collections::BTreeMap<String, IgnoredAny>>()
        .map(|keys| keys.into_keys().collect())
        .unwrap_or_default();
    Ok(match normalise(settings, delivery, time::now_ms()) {
        Ok((messages, receipts)) => WebhookOutcome::accept(messages, receipts),
        Err(reason) => WebhookOutcome::malformed(&reason),
    })
}

// ---- normalisation ----

/// Messages and receipts of a delivery, or why it is malformed.
fn normalise(
    settings: &Settings,
    delivery: Delivery,
    now: u64,
) -> Result<(Vec<Message>, Vec<Receipt>), String> {
    // X names the subscribed account; a connector serving one account knows it anyway.
    let only_account = match settings.accounts.iter().as_slice() {
        [only] => Some(only.id.as_str()),
        _ => None,
    };
    let delivered_for = delivery.for_user_id.as_deref().or(only_account);
    // Typing indicators, likes, follows, blocks, revocations (`user_event`)...
    for kind in &delivery.kinds {
        if (kind.ends_with("_events") || kind == "user_event") && !HANDLED.contains(&kind.as_str())
        {
            conventions::ignored(
                kind,
                delivered_for.unwrap_or("-"),
                "an Account Activity event kind this connector does not handle",
            );
        }
    }
    let users = delivery.users.unwrap_or_default();
    let mut messages = Vec::new();
    for post in delivery.tweet_create_events.unwrap_or_default() {
        messages.extend(post_message(settings, delivered_for, post, now)?);
    }
    for event in delivery.direct_message_events.unwrap_or_default() {
        messages.extend(dm_message(settings, &users, event, now)?);
    }
    for deleted in delivery.tweet_delete_events.unwrap_or_default() {
        messages.extend(post_deletion(settings, delivered_for, deleted, now));
    }
    let receipts = delivery
        .direct_message_mark_read_events
        .unwrap_or_default()
        .into_iter()
        .filter_map(|event| read_receipt(settings, event, now))
        .collect();
    Ok((messages, receipts))
}

/// A post addressed to the company: a mention, a reply, a quote.
fn post_message(
    settings: &Settings,
    delivered_for: Option<&str>,
    post: Post,
    now: u64,
) -> Result<Option<Message>, String> {
    // A retweet repeats someone else's post; the customer wrote nothing new.
    if post.retweeted_status.is_some() {
        conventions::ignored("retweet", &post.id_str, "repeats another post");
        return Ok(None);
    }
    let Some(author) = post.user else {
        return Err(format!("post {} has no author", post.id_str));
    };
    if settings.is_own(&author.id_str) {
        conventions::ignored("own-post", &post.id_str, "written by an account served");
        return Ok(None);
    }
    let extended = post.extended_tweet;
    let full_entities = extended.as_ref().and_then(|e| e.entities.as_ref());
    let mentioned: Vec<Mention<'_>> = full_entities
        .into_iter()
        .chain(post.entities.as_ref())
        .flat_map(|entities| &entities.user_mentions)
        .map(|mention| Mention {
            id: mention.id_str.as_deref(),
            handle: mention.screen_name.as_deref(),
        })
        .collect();
    let replies_to_user = post.in_reply_to_user_id_str.as_deref();
    let Some(account) = settings.addressee(replies_to_user, &mentioned, delivered_for) else {
        match delivered_for {
            // Delivered for an account of this app that another connector serves.
            Some(_) => conventions::ignored(
                "other-account",
                &post.id_str,
                "addresses no account this connector serves",
            ),
            None => warn!(
                "post {}: the delivery names no for_user_id and the post addresses no configured account; skipped",
                post.id_str
            ),
        }
        return Ok(None);
    };
    // A truncated post's text ends in `…` and a link; the full text is in `extended_tweet`.
    let text = extended
        .as_ref()
        .and_then(|e| e.full_text.clone())
        .or(post.full_text)
        .or(post.text)
        .ok_or_else(|| format!("post {} has no text", post.id_str))?;
    // `extended_entities` lists every media item; plain `entities` only the first photo.
    let media = extended
        .and_then(|e| e.extended_entities)
        .or(post.extended_entities)
        .or(post.entities)
        .unwrap_or_default()
        .media;
    let created_at = post
        .timestamp_ms
        .and_then(|ms| ms.parse().ok())
        .or_else(|| post.created_at.as_deref().and_then(parse_time))
        .or_else(|| snowflake_ms(&post.id_str))
        .unwrap_or(now);
    let replied_to = post.in_reply_to_status_id_str;
    let original = post.edit_history.and_then(|history| {
        original_of(
            &post.id_str,
            history.initial_tweet_id.as_deref(),
            history.edit_tweet_ids.as_deref(),
        )
    });
    let mut extra = Vec::new();
    if let Some(quoted) = post.quoted_status_id_str {
        extra.push(("quoted_post_id".to_string(), quoted));
    }
    // Contract 0.2's field; the `lang` extra stays for what reads extras.
    let language = post.lang.clone();
    if let Some(lang) = post.lang {
        extra.push((conventions::LANGUAGE.to_string(), lang));
    }
    let message = Message {
        conversation_key: post_thread_key(
            post.conversation_id_str
                .as_deref()
                .or(post.conversation_id.as_deref()),
            replied_to.as_deref(),
            &post.id_str,
        ),
        external_id: post.id_str,
        account: account.id.clone(),
        author: Person {
            id: author.id_str,
            handle: author.screen_name,
            display_name: author.name,
        },
        text: unescape_html(&text),
        kind: MessageKind::PublicPost,
        in_reply_to: replied_to,
        attachments: media.into_iter().map(post_media).collect(),
        created_at,
        language,
        extra,
    };
    Ok(Some(match original {
        Some(original) => as_edit(message, original),
        None => message,
    }))
}

/// A customer deleted a post: the deletion of the stored copy (the host empties it and
/// tells the CRM, as X's developer terms require). The company's own deleted posts are not
/// customer messages.
fn post_deletion(
    settings: &Settings,
    delivered_for: Option<&str>,
    deleted: PostDeletion,
    now: u64,
) -> Option<Message> {
    let author = deleted.status.user_id.unwrap_or_default();
    if settings.is_own(&author) {
        conventions::ignored(
            "own-deletion",
            &deleted.status.id,
            "an account served deleted its own post",
        );
        return None;
    }
    let Some(account) = delivered_for.and_then(|id| settings.account(id)) else {
        conventions::ignored(
            "other-account",
            &deleted.status.id,
            "a deletion for an account this connector does not serve",
        );
        return None;
    };
    let at = epoch_ms(deleted.timestamp_ms.as_deref()).unwrap_or(now);
    Some(conventions::deletion(
        &account.id,
        &deleted.status.id,
        &author,
        at,
    ))
}

/// A post's media item; a video's address is its best MP4, not its preview image.
fn post_media(media: Media) -> Attachment {
    let best_video = media
        .video_info
        .into_iter()
        .flat_map(|info| info.variants)
        .filter(|variant| variant.content_type.as_deref() == Some("video/mp4"))
        .max_by_key(|variant| variant.bitrate.unwrap_or(0));
    let (url, mime_type) = match best_video {
        Some(variant) => (variant.url, variant.content_type),
        None => (media.media_url_https, None),
    };
    media_attachment(media.kind.as_deref(), url, mime_type, media.ext_alt_text)
}

/// A DM written by a customer to one of the company's accounts.
fn dm_message(
    settings: &Settings,
    users: &HashMap<String, DmUser>,
    event: DmEvent,
    now: u64,
) -> Result<Option<Message>, String> {
    if event.kind != "message_create" {
        conventions::ignored("dm-event-type", &event.id, "a DM event that is no message");
        return Ok(None);
    }
    let Some(create) = event.message_create else {
        return Err(format!("DM event {} has no message_create", event.id));
    };
    // The company's own DMs come back as events too: an echo, not a customer message.
    if settings.is_own(&create.sender_id) {
        conventions::ignored("own-message", &event.id, "sent by an account served");
        return Ok(None);
    }
    let Some(account) = settings.account(&create.target.recipient_id) else {
        conventions::ignored(
            "other-account",
            &event.id,
            "a DM for an account this connector does not serve",
        );
        return Ok(None);
    };
    let sender = users.get(&create.sender_id);
    let created_at = epoch_ms(event.created_timestamp.as_deref())
        .or_else(|| snowflake_ms(&event.id))
        .unwrap_or(now);
    // The metadata the company gave the option the customer picked (its label is the text).
    let extra = create
        .message_data
        .quick_reply_response
        .and_then(|response| response.metadata)
        .map(|metadata| ("quick_reply_metadata".to_string(), metadata))
        .into_iter()
        .collect();
    let attachments = create
        .message_data
        .attachment
        .and_then(|attachment| attachment.media)
        .map(post_media)
        .into_iter()
        .collect();
    Ok(Some(Message {
        external_id: event.id,
        account: account.id.clone(),
        conversation_key: dm_thread_key(&account.id, &create.sender_id),
        author: Person {
            handle: sender.and_then(|user| user.screen_name.clone()),
            display_name: sender.and_then(|user| user.name.clone()),
            id: create.sender_id,
        },
        text: unescape_html(&create.message_data.text),
        kind: MessageKind::PrivateMessage,
        in_reply_to: None,
        attachments,
        created_at,
        language: None,
        extra,
    }))
}

/// A customer read the company's DMs up to `last_read_event_id`.
fn read_receipt(settings: &Settings, event: MarkRead, now: u64) -> Option<Receipt> {
    // The company's account reading a customer's DM says nothing about our replies.
    if settings.is_own(&event.sender_id) {
        conventions::ignored(
            "own-read",
            &event.last_read_event_id,
            "an account served read a customer's DM",
        );
        return None;
    }
    let Some(account) = settings.account(&event.target.recipient_id) else {
        conventions::ignored(
            "other-account",
            &event.last_read_event_id,
            "a read mark for an account this connector does not serve",
        );
        return None;
    };
    Some(Receipt {
        account: account.id.clone(),
        external_id: event.last_read_event_id,
        state: DeliveryState::Read,
        at: epoch_ms(event.created_timestamp.as_deref()).unwrap_or(now),
    })
}

/// X's millisecond timestamps arrive as strings (`"1517359429301"`).
fn epoch_ms(value: Option<&str>) -> Option<u64> {
    value?.parse().ok()
}

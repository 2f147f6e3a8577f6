//! Correctly signed webhook deliveries, as the platforms send them.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn hmac(secret: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this never fails.
    match HmacSha256::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// `x-twitter-webhooks-signature` for `body`: `sha256=` + base64 HMAC-SHA256.
pub fn twitter_signature(consumer_secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(hmac(consumer_secret.as_bytes(), body))
    )
}

/// The `response_token` X expects for a CRC check of `crc_token`.
pub fn twitter_crc_response(consumer_secret: &str, crc_token: &str) -> String {
    twitter_signature(consumer_secret, crc_token.as_bytes())
}

/// `X-Hub-Signature-256` for `body`: `sha256=` + hex HMAC-SHA256 with the app secret.
pub fn facebook_signature(app_secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac(app_secret.as_bytes(), body)))
}

/// Headers of an Account Activity delivery of `body`.
pub fn twitter_delivery_headers(consumer_secret: &str, body: &[u8]) -> Vec<(String, String)> {
    vec![
        (
            "content-type".to_string(),
            "application/json; charset=utf-8".to_string(),
        ),
        (
            "x-twitter-webhooks-signature".to_string(),
            twitter_signature(consumer_secret, body),
        ),
    ]
}

/// Headers of a Messenger/Graph webhook delivery of `body`.
pub fn facebook_delivery_headers(app_secret: &str, body: &[u8]) -> Vec<(String, String)> {
    vec![
        ("content-type".to_string(), "application/json".to_string()),
        (
            "x-hub-signature-256".to_string(),
            facebook_signature(app_secret, body),
        ),
    ]
}

/// A Messenger text message event from `psid` to `page_id`, in the platform's envelope.
pub fn messenger_text(
    page_id: &str,
    psid: &str,
    mid: &str,
    text: &str,
    timestamp_ms: u64,
) -> serde_json::Value {
    serde_json::json!({
        "object": "page",
        "entry": [{
            "id": page_id,
            "time": timestamp_ms,
            "messaging": [{
                "sender": { "id": psid },
                "recipient": { "id": page_id },
                "timestamp": timestamp_ms,
                "message": { "mid": mid, "text": text }
            }]
        }]
    })
}

/// A page-feed change: customer `from` commented `text` under post `post_id` of `page_id`.
pub fn page_comment(
    page_id: &str,
    post_id: &str,
    comment_id: &str,
    from: (&str, &str),
    text: &str,
    timestamp_ms: u64,
) -> serde_json::Value {
    serde_json::json!({
        "object": "page",
        "entry": [{
            "id": page_id,
            "time": timestamp_ms,
            "changes": [{
                "field": "feed",
                "value": {
                    "from": { "id": from.0, "name": from.1 },
                    "post": { "status_type": "added_photos", "is_published": true, "id": post_id },
                    "message": text,
                    "post_id": post_id,
                    "comment_id": comment_id,
                    "created_time": timestamp_ms / 1000,
                    "item": "comment",
                    "parent_id": post_id,
                    "verb": "add"
                }
            }]
        }]
    })
}

/// An Account Activity `tweet_create_events` delivery for `for_user_id`.
pub fn tweet_create(
    for_user_id: &str,
    tweet_id: &str,
    author: (&str, &str, &str),
    text: &str,
    in_reply_to: Option<&str>,
) -> serde_json::Value {
    let (author_id, screen_name, name) = author;
    serde_json::json!({
        "for_user_id": for_user_id,
        "tweet_create_events": [{
            "created_at": "Sat Nov 28 09:00:00 +0000 2026",
            "id": tweet_id.parse::<u64>().unwrap_or(0),
            "id_str": tweet_id,
            "text": text,
            "truncated": false,
            "in_reply_to_status_id_str": in_reply_to,
            "user": { "id": author_id.parse::<u64>().unwrap_or(0), "id_str": author_id, "name": name, "screen_name": screen_name },
            "entities": { "user_mentions": [] },
            "timestamp_ms": "1795856400000"
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_have_the_platform_formats() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let data = b"what do ya want for nothing?";
        assert_eq!(
            facebook_signature("Jefe", data),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            twitter_signature("Jefe", data),
            "sha256=W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
    }
}

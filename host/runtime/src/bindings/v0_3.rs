//! Contract 0.3 (`wit/since_v0.3.0`), the latest line: its generated bindings and the
//! conversions between them and the host's own types ([`crate::types`]). Older lines
//! convert to these types ([`super::v0_2`], and [`super::v0_1`] through 0.2's), never to
//! the host's directly.

pub(crate) mod channel {
    wasmtime::component::bindgen!({
        path: "wit/since_v0.3.0",
        world: "channel",
        imports: {
            "centralino:plugin/http.fetch": async,
            default: tracing,
        },
        exports: { default: async },
    });
}

pub(crate) mod routing_policy {
    wasmtime::component::bindgen!({
        path: "wit/since_v0.3.0",
        world: "routing-policy",
        imports: { default: tracing },
        exports: { default: async },
        with: {
            "centralino:plugin/types": super::channel::centralino::plugin::types,
            "centralino:plugin/log": super::channel::centralino::plugin::log,
            "centralino:plugin/clock": super::channel::centralino::plugin::clock,
        },
    });
}

pub(crate) use channel::centralino::plugin::{clock, http, log, signing, types};
pub(crate) use channel::exports::centralino::plugin::connector;
pub(crate) use routing_policy::centralino::plugin::current_conversation;
pub(crate) use routing_policy::exports::centralino::plugin::router;

use crate::error::PluginFailure;
use crate::types as own;

impl From<types::PluginError> for PluginFailure {
    fn from(e: types::PluginError) -> Self {
        match e {
            types::PluginError::InvalidCredentials(detail) => {
                PluginFailure::InvalidCredentials { detail }
            }
            types::PluginError::RateLimited(r) => PluginFailure::RateLimited {
                retry_after_ms: r.retry_after_ms,
                detail: r.detail,
            },
            types::PluginError::Rejected(reason) => PluginFailure::Rejected { reason },
            types::PluginError::Transient(detail) => PluginFailure::Transient { detail },
            types::PluginError::InvalidInput(detail) => PluginFailure::InvalidInput { detail },
        }
    }
}

impl From<types::MessageKind> for own::MessageKind {
    fn from(k: types::MessageKind) -> Self {
        match k {
            types::MessageKind::PublicPost => own::MessageKind::PublicPost,
            types::MessageKind::PrivateMessage => own::MessageKind::PrivateMessage,
            types::MessageKind::Comment => own::MessageKind::Comment,
        }
    }
}

impl From<own::MessageKind> for types::MessageKind {
    fn from(k: own::MessageKind) -> Self {
        match k {
            own::MessageKind::PublicPost => types::MessageKind::PublicPost,
            own::MessageKind::PrivateMessage => types::MessageKind::PrivateMessage,
            own::MessageKind::Comment => types::MessageKind::Comment,
        }
    }
}

impl From<types::Attachment> for own::Attachment {
    fn from(a: types::Attachment) -> Self {
        own::Attachment {
            kind: a.kind,
            url: a.url,
            mime_type: a.mime_type,
            description: a.description,
        }
    }
}

impl From<types::Message> for own::Message {
    fn from(m: types::Message) -> Self {
        own::Message {
            external_id: m.external_id,
            account: m.account,
            conversation_key: m.conversation_key,
            author: own::Person {
                id: m.author.id,
                handle: m.author.handle,
                display_name: m.author.display_name,
            },
            text: m.text,
            kind: m.kind.into(),
            in_reply_to: m.in_reply_to,
            attachments: m.attachments.into_iter().map(Into::into).collect(),
            created_at: m.created_at,
            extra: with_language(m.extra, m.language),
        }
    }
}

impl From<own::OutboundMessage> for types::OutboundMessage {
    fn from(m: own::OutboundMessage) -> Self {
        types::OutboundMessage {
            account: m.account,
            conversation_key: m.conversation_key,
            kind: m.kind.into(),
            recipient: m.recipient,
            in_reply_to: m.in_reply_to,
            text: m.text,
            attachments: m.attachments.into_iter().map(Into::into).collect(),
            idempotency_key: m.idempotency_key,
        }
    }
}

impl From<connector::Capability> for own::Capability {
    fn from(c: connector::Capability) -> Self {
        match c {
            connector::Capability::PublicReply => own::Capability::PublicReply,
            connector::Capability::PrivateMessage => own::Capability::PrivateMessage,
            connector::Capability::CommentReply => own::Capability::CommentReply,
            connector::Capability::Webhook => own::Capability::Webhook,
            connector::Capability::Polling => own::Capability::Polling,
            connector::Capability::Attachments => own::Capability::Attachments,
        }
    }
}

impl From<connector::Description> for own::ConnectorDescription {
    fn from(d: connector::Description) -> Self {
        own::ConnectorDescription {
            channel: d.channel,
            summary: d.summary,
            capabilities: d.capabilities.into_iter().map(Into::into).collect(),
            max_text_length: d.max_text_length,
        }
    }
}

impl From<own::ConnectorConfig> for connector::Config {
    fn from(c: own::ConnectorConfig) -> Self {
        connector::Config {
            settings: c.settings,
            accounts: c
                .accounts
                .into_iter()
                .map(|a| connector::Account {
                    id: a.id,
                    handle: a.handle,
                    credential: a.credential,
                    settings: a.settings,
                })
                .collect(),
        }
    }
}

impl From<connector::PollResult> for own::PollResult {
    fn from(p: connector::PollResult) -> Self {
        own::PollResult {
            messages: p.messages.into_iter().map(Into::into).collect(),
            cursor: p.cursor,
            next_poll_after_ms: p.next_poll_after_ms,
        }
    }
}

impl From<own::WebhookRequest> for connector::WebhookRequest {
    fn from(r: own::WebhookRequest) -> Self {
        connector::WebhookRequest {
            method: r.method,
            path: r.path,
            query: r.query,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<connector::WebhookOutcome> for own::WebhookOutcome {
    fn from(o: connector::WebhookOutcome) -> Self {
        own::WebhookOutcome {
            response: own::WebhookResponse {
                status: o.response.status,
                headers: o.response.headers,
                body: o.response.body,
            },
            messages: o.messages.into_iter().map(Into::into).collect(),
            receipts: o
                .receipts
                .into_iter()
                .map(|r| own::Receipt {
                    account: r.account,
                    external_id: r.external_id,
                    state: match r.state {
                        connector::DeliveryState::Delivered => own::DeliveryState::Delivered,
                        connector::DeliveryState::Read => own::DeliveryState::Read,
                        connector::DeliveryState::Failed => own::DeliveryState::Failed,
                    },
                    at: r.at,
                })
                .collect(),
        }
    }
}

impl From<connector::Sent> for own::Sent {
    fn from(s: connector::Sent) -> Self {
        own::Sent {
            external_id: s.external_id,
            sent_at: s.sent_at,
        }
    }
}

/// The message's `language`, kept as the `lang` extra the host reads (the 0.1
/// convention, [`crate::conventions`]), unless the connector wrote both.
fn with_language(mut extra: own::Pairs, language: Option<String>) -> own::Pairs {
    if let Some(language) = language
        && !extra
            .iter()
            .any(|(key, _)| key == crate::conventions::LANGUAGE)
    {
        extra.push((crate::conventions::LANGUAGE.to_string(), language));
    }
    extra
}

impl From<own::OutboundAttachment> for types::OutboundAttachment {
    fn from(a: own::OutboundAttachment) -> Self {
        types::OutboundAttachment {
            kind: match a.kind {
                own::MediaKind::Image => types::MediaKind::Image,
                own::MediaKind::Video => types::MediaKind::Video,
                own::MediaKind::Audio => types::MediaKind::Audio,
                own::MediaKind::File => types::MediaKind::File,
            },
            mime_type: a.mime_type,
            file_name: a.file_name,
            data: a.data,
        }
    }
}

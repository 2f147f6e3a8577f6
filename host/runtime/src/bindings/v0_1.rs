//! Contract 0.1 (`wit/since_v0.1.0`): its generated bindings and the adapter that keeps
//! 0.1 plugins running on a host written against the latest line. Everything a 0.1
//! plugin exchanges is converted here to or from the latest line's types
//! ([`super::latest`]), and the host functions 0.1 plugins import call the latest line's
//! implementations; only routing keeps its own path (the borrowed fast path in
//! [`crate::borrowed`] lowers the host's context straight into 0.1's `router.context`).
//!
//! What 0.1 cannot express: outbound attachments (a reply with files is refused before
//! the connector is called) and `message.language` (0.1 connectors write the `lang`
//! extra, which the host reads the same way).

pub(crate) mod channel {
    wasmtime::component::bindgen!({
        path: "wit/since_v0.1.0",
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
        path: "wit/since_v0.1.0",
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
pub(crate) use routing_policy::exports::centralino::plugin::router;

use super::latest;
use crate::state::PluginState;
use crate::types as own;

// What 0.1 plugins import: the latest line's implementations, types converted.

impl types::Host for PluginState {}

super::older::older_line_imports!();

// What 0.1 connectors exchange, to and from the latest line.

impl From<types::PluginError> for latest::types::PluginError {
    fn from(e: types::PluginError) -> Self {
        use latest::types::PluginError as E;
        match e {
            types::PluginError::InvalidCredentials(detail) => E::InvalidCredentials(detail),
            types::PluginError::RateLimited(r) => E::RateLimited(latest::types::RateLimit {
                retry_after_ms: r.retry_after_ms,
                detail: r.detail,
            }),
            types::PluginError::Rejected(reason) => E::Rejected(reason),
            types::PluginError::Transient(detail) => E::Transient(detail),
            types::PluginError::InvalidInput(detail) => E::InvalidInput(detail),
        }
    }
}

impl From<types::MessageKind> for latest::types::MessageKind {
    fn from(k: types::MessageKind) -> Self {
        match k {
            types::MessageKind::PublicPost => latest::types::MessageKind::PublicPost,
            types::MessageKind::PrivateMessage => latest::types::MessageKind::PrivateMessage,
            types::MessageKind::Comment => latest::types::MessageKind::Comment,
        }
    }
}

impl From<latest::types::MessageKind> for types::MessageKind {
    fn from(k: latest::types::MessageKind) -> Self {
        match k {
            latest::types::MessageKind::PublicPost => types::MessageKind::PublicPost,
            latest::types::MessageKind::PrivateMessage => types::MessageKind::PrivateMessage,
            latest::types::MessageKind::Comment => types::MessageKind::Comment,
        }
    }
}

impl From<own::MessageKind> for types::MessageKind {
    fn from(k: own::MessageKind) -> Self {
        latest::types::MessageKind::from(k).into()
    }
}

impl From<types::Message> for latest::types::Message {
    fn from(m: types::Message) -> Self {
        latest::types::Message {
            external_id: m.external_id,
            account: m.account,
            conversation_key: m.conversation_key,
            author: latest::types::Person {
                id: m.author.id,
                handle: m.author.handle,
                display_name: m.author.display_name,
            },
            text: m.text,
            kind: m.kind.into(),
            in_reply_to: m.in_reply_to,
            attachments: m
                .attachments
                .into_iter()
                .map(|a| latest::types::Attachment {
                    kind: a.kind,
                    url: a.url,
                    mime_type: a.mime_type,
                    description: a.description,
                })
                .collect(),
            created_at: m.created_at,
            // 0.1 connectors write the platform's language as the `lang` extra.
            language: None,
            extra: m.extra,
        }
    }
}

/// A reply for a 0.1 connector, or why it cannot take it (0.1 has no type for files).
pub(crate) fn outbound(
    m: latest::types::OutboundMessage,
) -> Result<types::OutboundMessage, latest::types::PluginError> {
    if !m.attachments.is_empty() {
        return Err(latest::types::PluginError::Rejected(format!(
            "this reply carries {} file(s), and the connector is built against contract 0.1, \
             which cannot carry files: a build against contract 0.2 or later sends them",
            m.attachments.len()
        )));
    }
    Ok(types::OutboundMessage {
        account: m.account,
        conversation_key: m.conversation_key,
        kind: m.kind.into(),
        recipient: m.recipient,
        in_reply_to: m.in_reply_to,
        text: m.text,
        attachments: Vec::new(),
        idempotency_key: m.idempotency_key,
    })
}

super::older::older_line_connector!(messages);

/// 0.1's messages in the latest line's types.
fn messages(messages: Vec<types::Message>) -> Vec<latest::types::Message> {
    messages.into_iter().map(Into::into).collect()
}

// Routing keeps 0.1's own path: the host's context straight into 0.1's types (the
// generated fallback; the fast path is `crate::borrowed`), the decision straight back.

impl From<&own::RoutingContext> for router::Context {
    fn from(c: &own::RoutingContext) -> Self {
        let conv = &c.conversation;
        router::Context {
            conversation: router::Conversation {
                id: conv.id.clone(),
                channel: conv.channel.clone(),
                account: conv.account.clone(),
                brand: conv.brand.clone(),
                language: conv.language.clone(),
                customer: conv.customer.clone(),
                kind: conv.kind.into(),
                text: conv.text.clone(),
                priority: conv.priority,
                previous_agent: conv.previous_agent.clone(),
                previous_agent_at: conv.previous_agent_at,
                waiting_since: conv.waiting_since,
            },
            agents: c
                .agents
                .iter()
                .map(|a| router::Agent {
                    id: a.id.clone(),
                    name: a.name.clone(),
                    skills: a.skills.clone(),
                    languages: a.languages.clone(),
                    accounts: a.accounts.clone(),
                    capacity: a.capacity,
                    load: a.load,
                    presence: match a.presence {
                        own::Presence::Online => router::Presence::Online,
                        own::Presence::Away => router::Presence::Away,
                        own::Presence::Offline => router::Presence::Offline,
                    },
                    last_assigned_at: a.last_assigned_at,
                })
                .collect(),
            queue: router::QueueStats {
                waiting: c.queue.waiting,
                oldest_wait_ms: c.queue.oldest_wait_ms,
                average_handle_ms: c.queue.average_handle_ms,
            },
            now: c.now,
        }
    }
}

impl From<router::Decision> for own::RoutingDecision {
    fn from(d: router::Decision) -> Self {
        own::RoutingDecision {
            action: match d.action {
                router::Action::Assign(id) => own::RoutingAction::Assign(id),
                router::Action::Narrow(ids) => own::RoutingAction::Narrow(ids),
                router::Action::Enqueue => own::RoutingAction::Enqueue,
                router::Action::Pass => own::RoutingAction::Pass,
            },
            priority: d.priority,
            reason: d.reason,
        }
    }
}

impl From<types::PluginError> for crate::error::PluginFailure {
    fn from(e: types::PluginError) -> Self {
        latest::types::PluginError::from(e).into()
    }
}

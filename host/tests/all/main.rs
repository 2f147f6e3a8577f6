#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

//! Integration tests: one binary, a module per topic. Every test loads real components
//! built from `plugins/` by `cargo xtask plugins` (the README's test command does it).

mod accounts;
mod admin;
mod answers;
mod api;
mod api_versions;
mod cache;
mod channel;
mod cli;
mod config;
mod console;
mod console_accounts;
mod crash;
mod crm;
mod customers;
mod demo;
mod embedder;
mod end_to_end;
mod facebook;
mod faults;
mod host_routing;
mod hostile;
mod hot_swap;
mod http;
mod ingress;
mod inspect;
mod layers;
mod leases;
mod limits;
mod mastodon_py;
mod media;
mod metrics;
mod outside;
mod plugin_cli;
mod rate_limits;
mod receipts;
mod restart;
mod round_robin;
mod routing;
mod routing_policies;
mod routing_replay;
mod scaffold;
mod search;
mod security;
mod several_hosts;
mod signing;
mod soak;
mod store;
mod store_delivery;
mod support;
mod telegram;
mod twitter;
mod twitter_edits;
mod versioning;
mod whatsapp_ts;

use std::path::PathBuf;

use centralino::types::{
    Agent, MessageKind, Presence, QueueStats, RoutingContext, RoutingConversation,
};

/// Path of a built component; fails with instructions when it has not been built.
pub fn component(name: &str) -> PathBuf {
    let dir = std::env::var_os("CENTRALINO_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask plugins` first (or `cargo xtask test`)",
        path.display()
    );
    path
}

pub fn agent(id: &str, capacity: u32) -> Agent {
    Agent {
        id: id.to_string(),
        name: id.to_string(),
        skills: vec!["tim".to_string()],
        languages: vec!["it".to_string()],
        accounts: vec![format!("TIM_{id}")],
        capacity,
        load: 0,
        presence: Presence::Online,
        last_assigned_at: None,
    }
}

pub fn context(text: &str, agents: Vec<Agent>, now: u64) -> RoutingContext {
    RoutingContext {
        conversation: RoutingConversation {
            id: format!("conv-{now}"),
            channel: "twitter".to_string(),
            account: "TIM_Official".to_string(),
            brand: Some("tim".to_string()),
            language: Some("it".to_string()),
            customer: "1234567890123456789".to_string(),
            kind: MessageKind::PublicPost,
            text: text.to_string(),
            priority: 0,
            previous_agent: None,
            previous_agent_at: None,
            waiting_since: now,
        },
        agents,
        queue: QueueStats::default(),
        now,
        roster_version: 0,
    }
}

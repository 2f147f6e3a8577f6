//! Inputs shared by the benchmarks: rosters of operators, signed Messenger deliveries, the
//! Facebook connector's configuration.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use centralino::capabilities::{Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::types::{
    AccountConfig, Agent, ConnectorConfig, MessageKind, Presence, QueueStats, RoutingContext,
    RoutingConversation, WebhookRequest,
};
use centralino_emulators::webhooks::facebook_delivery_headers;

/// The Facebook page every delivery is for.
pub const PAGE_ID: &str = "1234567890";
/// The app secret deliveries are signed with (held by the host, never by the plugin).
pub const APP_SECRET: &str = "bench-facebook-app-secret";

const BRANDS: [&str; 3] = ["tim", "telecom-italia", "impresa-semplice"];
const NOW: u64 = 1_795_856_400_000;
/// The roster version of every context the benches build (a fixed roster, as between
/// operator changes in the engine).
const ROSTER_VERSION: u64 = 1;

/// A roster of `agents` operators over the three brands, as the chain's first stage sees
/// it: mixed capacities and loads (some full), a few away, some never assigned; a third
/// serve `tim`, three quarters speak Italian. The conversation is a TIM customer writing in
/// Italian.
pub fn routing_context(agents: usize) -> RoutingContext {
    let agents = (0..agents)
        .map(|i| {
            let capacity = 2 + (i % 4) as u32;
            let mut languages = Vec::new();
            if i % 4 != 3 {
                languages.push("it".to_string());
            }
            if i % 3 == 0 {
                languages.push("en".to_string());
            }
            Agent {
                id: format!("op-{i:03}"),
                name: format!("Operator {i}"),
                skills: vec![BRANDS[i % 3].to_string(), "modem".to_string()],
                languages,
                accounts: vec![format!("{}", 2001 + i)],
                capacity,
                load: ((i * 7) % (capacity as usize + 1)) as u32,
                presence: if i % 10 == 9 {
                    Presence::Away
                } else {
                    Presence::Online
                },
                last_assigned_at: (i % 5 != 0).then(|| NOW - (i as u64 * 37_000) % 3_600_000),
            }
        })
        .collect();
    RoutingContext {
        conversation: RoutingConversation {
            id: "c-7f3a".to_string(),
            channel: "twitter".to_string(),
            account: "1443000001".to_string(),
            brand: Some("tim".to_string()),
            language: Some("it".to_string()),
            customer: "42".to_string(),
            kind: MessageKind::PublicPost,
            text: "@TIM_Official il mio modem non va".to_string(),
            priority: 0,
            previous_agent: None,
            previous_agent_at: None,
            waiting_since: NOW - 12_000,
        },
        agents,
        queue: QueueStats {
            waiting: 3,
            oldest_wait_ms: 45_000,
            average_handle_ms: 240_000,
        },
        now: NOW,
        // One roster for the whole run, as the engine's between operator changes.
        roster_version: ROSTER_VERSION,
    }
}

/// A Messenger delivery of `count` customer messages, batched the way Meta batches them:
/// one `entry` per event, each from its own customer (`psid_base + i`), so each opens a
/// conversation. Returns the body.
pub fn messenger_batch(first: u64, count: usize) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = (0..count as u64)
        .map(|i| {
            let n = first + i;
            let time = NOW + n;
            serde_json::json!({
                "id": PAGE_ID,
                "time": time,
                "messaging": [{
                    "sender": { "id": format!("{}", 7_000_000_000_000_000u64 + n) },
                    "recipient": { "id": PAGE_ID },
                    "timestamp": time,
                    "message": {
                        "mid": format!("m_bench_{n:012}"),
                        "text": format!("Buongiorno, la fibra non funziona da stamattina (cliente {n})")
                    }
                }]
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "object": "page", "entry": entries }))
        .unwrap_or_default()
}

/// A signed POST of `body` to the Facebook connector's webhook route.
pub fn signed_delivery(body: Vec<u8>) -> WebhookRequest {
    WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers: facebook_delivery_headers(APP_SECRET, &body),
        body,
    }
}

/// The connector's configuration: one page, the app secret granted.
pub fn facebook_config() -> (ConnectorConfig, Grants) {
    let mut secrets = BTreeMap::new();
    secrets.insert("app_secret".to_string(), Secret::new(APP_SECRET));
    secrets.insert(
        "verify_token".to_string(),
        Secret::new("bench-verify-token"),
    );
    let config = ConnectorConfig {
        settings: Vec::new(),
        accounts: vec![AccountConfig {
            id: PAGE_ID.to_string(),
            handle: Some("TIM".to_string()),
            credential: None,
            settings: Vec::new(),
        }],
    };
    let grants = Grants::default().secrets(secrets);
    (config, grants)
}

/// The Facebook connector as the host runs it, with the page's brand for routing.
pub fn facebook_spec(plugins: &Path) -> ConnectorSpec {
    let (config, grants) = facebook_config();
    let mut spec = ConnectorSpec::new("facebook", plugins.join("facebook.wasm"), config);
    spec.grants = grants;
    spec.limits.call_deadline = Duration::from_secs(5);
    spec.brands.insert(PAGE_ID.to_string(), "tim".to_string());
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_has_one_entry_per_message_with_distinct_ids() {
        let body: serde_json::Value = serde_json::from_slice(&messenger_batch(10, 3)).unwrap();
        let entries = body["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[2]["messaging"][0]["message"]["mid"],
            "m_bench_000000000012"
        );
        assert_ne!(
            entries[0]["messaging"][0]["sender"]["id"],
            entries[1]["messaging"][0]["sender"]["id"]
        );
    }

    #[test]
    fn rosters_mix_brands_loads_and_presence() {
        let context = routing_context(200);
        assert_eq!(context.agents.len(), 200);
        assert!(context.agents.iter().any(|a| a.load >= a.capacity));
        assert!(context.agents.iter().any(|a| a.presence == Presence::Away));
        assert!(context.agents.iter().any(|a| a.last_assigned_at.is_none()));
    }
}

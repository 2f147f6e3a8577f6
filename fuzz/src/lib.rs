//! Shared harness of the fuzz targets (see `scripts/fuzz.sh` and `RELIABILITY.md`).
//!
//! The webhook targets feed arbitrary bytes to a connector *through the host*, exactly as
//! the ingress would after reading a request: the body is signed with the connector's
//! secret (so it passes verification and reaches the plugin's parser), then
//! [`Host::deliver_webhook_stored`] runs the plugin, checks its output caps and stores what
//! it produced. One host per process, built on first use; the components are loaded once.
//!
//! An input is a crash when the plugin *faults* (traps, runs out of time or memory, or
//! returns more than its caps allow): a plugin must answer anything a platform can sign
//! with a response, never with a fault. The plugins are fuzzed as black boxes: libFuzzer's
//! coverage sees the host's native code, not the guest's wasm, so the seeds (the fixtures
//! in `tests/fixtures`) and the JSON dictionary do most of the work for the guest side.
//!
//! `CENTRALINO_FUZZ_VERBOSE=1` prints each input's status and stored count, to check that
//! seeds get past verification: `./target/x86_64-unknown-linux-gnu/release/webhook_twitter
//! -runs=0 corpus/webhook_twitter/seed-*`.

use std::path::PathBuf;
use std::sync::OnceLock;

use centralino::Host;
use centralino::capabilities::{Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::types::{AccountConfig, ConnectorConfig, WebhookRequest};

/// Secret the Twitter connector verifies signatures with.
pub const CONSUMER_SECRET: &str = "fuzz-consumer-secret";
/// Secret the Facebook connector verifies signatures with.
pub const APP_SECRET: &str = "fuzz-app-secret";

/// Accounts of the fixtures (`for_user_id`s and page ids), so seeds reach normalisation.
const TWITTER_ACCOUNTS: [&str; 4] = [
    "4337869213",
    "1603419180975409153",
    "930524282358325248",
    "1001",
];
const FACEBOOK_PAGES: [&str; 3] = ["1234567890", "311494332880244", "5001"];

struct Harness {
    runtime: tokio::runtime::Runtime,
    host: Host,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

fn plugin_dir() -> PathBuf {
    std::env::var_os("CENTRALINO_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
}

fn accounts(ids: &[&str]) -> Vec<AccountConfig> {
    ids.iter()
        .map(|id| AccountConfig {
            id: (*id).to_string(),
            handle: Some(format!("account{id}")),
            credential: None,
            settings: Vec::new(),
        })
        .collect()
}

fn spec(
    name: &str,
    settings: Vec<(String, String)>,
    accounts: Vec<AccountConfig>,
    secrets: &[(&str, &str)],
) -> ConnectorSpec {
    let mut spec = ConnectorSpec::new(
        name,
        plugin_dir().join(format!("{name}.wasm")),
        ConnectorConfig { settings, accounts },
    );
    // No hosts, no credentials: whatever the plugin asks for is refused, never sent.
    spec.grants = Grants::default();
    for (name, value) in secrets {
        spec.grants
            .secrets
            .insert((*name).to_string(), Secret::new(*value));
    }
    spec
}

#[allow(clippy::expect_used)]
fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let twitter = spec(
            "twitter",
            vec![("api_base".to_string(), "http://127.0.0.1:9".to_string())],
            accounts(&TWITTER_ACCOUNTS),
            &[("consumer_secret", CONSUMER_SECRET)],
        );
        let facebook = spec(
            "facebook",
            vec![("graph_base".to_string(), "http://127.0.0.1:9".to_string())],
            accounts(&FACEBOOK_PAGES),
            &[
                ("app_secret", APP_SECRET),
                ("verify_token", "fuzz-verify-token"),
            ],
        );
        let host = runtime
            .block_on(
                Host::builder()
                    .connector(twitter)
                    .connector(facebook)
                    .build(),
            )
            .expect("the fuzz host starts (run `cargo xtask plugins` first)");
        Harness { runtime, host }
    })
}

/// Delivers `body`, correctly signed, to `connector` (`twitter` or `facebook`) and panics
/// if the plugin faulted.
#[allow(clippy::panic)]
pub fn deliver_signed(connector: &str, body: &[u8]) {
    let harness = harness();
    let headers = match connector {
        "twitter" => {
            centralino_emulators::webhooks::twitter_delivery_headers(CONSUMER_SECRET, body)
        }
        _ => centralino_emulators::webhooks::facebook_delivery_headers(APP_SECRET, body),
    };
    let request = WebhookRequest {
        method: "POST".to_string(),
        path: "/".to_string(),
        query: String::new(),
        headers,
        body: body.to_vec(),
    };
    let (response, stored) = harness.runtime.block_on(
        harness
            .host
            .deliver_webhook_stored("default", connector, request),
    );
    if std::env::var_os("CENTRALINO_FUZZ_VERBOSE").is_some() {
        eprintln!("{connector}: {} ({} stored)", response.status, stored.len());
    }
    let health = harness.host.connector_health();
    if let Some(faulty) = health.iter().find(|h| h.faults > 0) {
        panic!(
            "{} faulted on a signed delivery: {:?}",
            faulty.connector, faulty.last_fault
        );
    }
    // Stored messages were acknowledged; anything else must not be.
    if !stored.is_empty() && !(200..300).contains(&response.status) {
        panic!(
            "{connector} stored messages but answered {}",
            response.status
        );
    }
}

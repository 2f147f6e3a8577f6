//! A tiny CRM that embeds centralino. Run with `cargo run -p embed-minimal` after
//! `cargo xtask plugins` (it loads `target/plugins/twitter.wasm`, or the `twitter.wasm` in
//! `CENTRALINO_PLUGIN_DIR`). It uses the crate's public API alone: a test
//! (host/tests/all/embedder.rs) builds a copy outside this workspace, as a CRM vendor's
//! project would, with the crate's default features off.
//!
//! The CRM keeps its own ticket table. It implements [`Crm`] to hear from the host (a
//! customer wrote, an operator was assigned, a reply went out) and calls back into the host
//! to answer as an operator. The X platform is the loopback emulator, so the example runs
//! anywhere: a customer mentions `@TIM_Official`, a ticket opens, Marco gets it, answers from
//! his own account, and the ticket closes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use centralino::capabilities::{Credential, Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::crm::{BoxFuture, Crm, CrmDelivery, CrmEvent};
use centralino::routing::{ChainSpec, Operator, PolicyChain, RoutingEngine};
use centralino::runtime::{PluginLimits, Runtime};
use centralino::types::{AccountConfig, ConnectorConfig, Presence, WebhookRequest};
use centralino::{ConversationId, Host};
use centralino_emulators::XApi;
use centralino_emulators::webhooks::{tweet_create, twitter_delivery_headers};
use centralino_emulators::x::NewTweet;

/// One row of the CRM's own ticket table.
#[derive(Debug, Default, Clone)]
struct Ticket {
    customer: String,
    first_message: String,
    operator: Option<String>,
    replies: u32,
}

/// The CRM: tickets by conversation id, deduplicating events by their id as the host asks.
#[derive(Default)]
struct TicketDesk {
    tickets: Mutex<BTreeMap<ConversationId, Ticket>>,
    seen: Mutex<Vec<String>>,
}

impl Crm for TicketDesk {
    fn deliver<'a>(&'a self, delivery: &'a CrmDelivery) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut seen = self.seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            if seen.contains(&delivery.id) {
                return Ok(()); // a redelivery: already applied
            }
            seen.push(delivery.id.clone());
            let mut tickets = self
                .tickets
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            match &delivery.event {
                CrmEvent::MessageReceived {
                    conversation_id,
                    new_conversation: true,
                    message,
                    ..
                } => {
                    let customer = message
                        .author
                        .handle
                        .clone()
                        .unwrap_or_else(|| message.author.id.clone());
                    let ticket = Ticket {
                        customer,
                        first_message: message.text.clone(),
                        ..Ticket::default()
                    };
                    tickets.insert(conversation_id.clone(), ticket);
                }
                CrmEvent::ConversationAssigned {
                    conversation_id,
                    operator,
                    ..
                } => {
                    tickets.entry(conversation_id.clone()).or_default().operator =
                        Some(operator.clone());
                }
                CrmEvent::ReplySent {
                    conversation_id, ..
                } => {
                    tickets.entry(conversation_id.clone()).or_default().replies += 1;
                }
                _ => {}
            }
            Ok(())
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let desk = run().await?;
    print_tickets(&desk)
}

fn print_tickets(desk: &TicketDesk) -> anyhow::Result<()> {
    println!(
        "{:<34} {:<12} {:<8} {:>7}  first message",
        "ticket", "customer", "operator", "replies"
    );
    for (id, t) in desk
        .tickets
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .iter()
    {
        let operator = t.operator.as_deref().unwrap_or("-");
        println!(
            "{id:<34} {:<12} {operator:<8} {:>7}  {}",
            t.customer, t.replies, t.first_message
        );
    }
    Ok(())
}

/// Runs the story and returns the CRM's desk.
async fn run() -> anyhow::Result<Arc<TicketDesk>> {
    // The built components: `CENTRALINO_PLUGIN_DIR`, else the repository's target/plugins.
    let plugins = std::env::var_os("CENTRALINO_PLUGIN_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins")
        });
    anyhow::ensure!(
        plugins.join("twitter.wasm").exists(),
        "build the plugins first: cargo xtask plugins"
    );

    // The platform: the X API emulator with the brand, Marco's own account and a customer.
    let x = XApi::start().await?;
    x.add_user("1001", "TIM_Official", "TIM", "token-tim");
    x.add_user("2001", "TIM_Marco", "Marco di TIM", "token-marco");
    x.add_user("42", "mario_rossi", "Mario Rossi", "token-mario");

    // The connector: accounts, the hosts it may reach, credentials and secrets by name.
    let account = |id: &str, handle: &str| AccountConfig {
        id: id.into(),
        handle: Some(handle.into()),
        credential: Some(format!("x-{id}")),
        settings: Vec::new(),
    };
    let mut twitter = ConnectorSpec::new(
        "twitter",
        plugins.join("twitter.wasm"),
        ConnectorConfig {
            settings: vec![("api_base".into(), x.base_url())],
            accounts: vec![
                account("1001", "TIM_Official"),
                account("2001", "TIM_Marco"),
            ],
        },
    );
    twitter.grants = Grants::default()
        .allow_host(x.authority())
        .credential("x-1001", Credential::Bearer(Secret::new("token-tim")))
        .credential("x-2001", Credential::Bearer(Secret::new("token-marco")))
        .secret("consumer_secret", Secret::new("consumer-secret"));
    twitter.brands.insert("1001".into(), "tim".into());

    // Routing: one operator, the brand's skill, a two-stage chain.
    let runtime = Runtime::new()?;
    let spec: ChainSpec = "skills > least-loaded".parse()?;
    let chain = PolicyChain::load(&runtime, &spec, &plugins, &PluginLimits::default()).await?;
    let marco = Operator::new("marco", 3)
        .skills(["tim"])
        .account("twitter", "2001");
    let engine = RoutingEngine::builder(chain)
        .operator(marco, Presence::Online)
        .build();

    let desk = Arc::new(TicketDesk::default());
    let host = Host::builder()
        .runtime(runtime)
        .connector(twitter)
        .routing(engine)
        .crm(desk.clone())
        .build()
        .await?;

    // A customer tweets; X delivers it to the host (here: straight into the library).
    let text = "@TIM_Official il mio modem non va";
    let tweet = x.post_tweet(NewTweet::new("42", text));
    let body = serde_json::to_vec(&tweet_create(
        "1001",
        &tweet.id,
        ("42", "mario_rossi", "Mario Rossi"),
        text,
        None,
    ))?;
    let delivery = WebhookRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: twitter_delivery_headers("consumer-secret", &body),
        body,
    };
    let (response, stored) = host
        .deliver_webhook_stored("default", "twitter", delivery)
        .await;
    anyhow::ensure!(
        response.status == 200,
        "the host refused the delivery: {}",
        response.status
    );
    let conversation = stored
        .first()
        .map(|s| s.conversation_id.clone())
        .unwrap_or_default();

    // Marco answers from the CRM; the host sends it from @TIM_Marco, threaded, once.
    host.reply(
        "default",
        &conversation,
        "marco",
        None,
        "Ciao Mario, sono Marco: ti aiuto io!",
        "ticket-1-reply-1",
    )
    .await?;
    for _ in 0..100 {
        if desk
            .tickets
            .lock()
            .map(|t| t.values().any(|t| t.replies > 0))
            .unwrap_or(false)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    host.resolve("default", &conversation).await?;

    let sent = x
        .tweets()
        .into_iter()
        .filter(|t| t.author_id == "2001")
        .count();
    anyhow::ensure!(sent == 1, "expected one tweet from @TIM_Marco, saw {sent}");
    Ok(desk)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_crm_opens_a_ticket_that_marco_answers_from_his_own_account() {
        let desk = super::run().await.unwrap();
        let tickets = desk.tickets.lock().unwrap();
        let ticket = tickets.values().next().unwrap();
        assert_eq!(tickets.len(), 1);
        assert_eq!(ticket.customer, "mario_rossi");
        assert_eq!(ticket.operator.as_deref(), Some("marco"));
        assert_eq!(ticket.replies, 1);
        assert_eq!(ticket.first_message, "@TIM_Official il mio modem non va");
    }
}

//! What the demo prints when the day is over: who answered whom, how fast, from which
//! account.

use super::*;

pub(super) async fn report(
    host: &Host,
    x: &XApi,
    graph: &GraphApi,
    inbox: &LocalInbox,
    started: Instant,
) -> anyhow::Result<()> {
    let conversations = host.store().conversations("default").await?;
    let mut handled: HashMap<String, u32> = HashMap::new();
    let mut first_response: Vec<i64> = Vec::new();
    let mut by_channel: BTreeMap<String, u32> = BTreeMap::new();
    for c in &conversations {
        *by_channel
            .entry(format!("{} {}", c.channel, kind_word(c.kind)))
            .or_default() += 1;
        if let Some(at) = c.first_response_at {
            first_response.push(at - c.created_at);
        }
    }
    for e in inbox.events() {
        if let CrmEvent::ConversationAssigned { operator, .. } = e.event {
            *handled.entry(operator).or_default() += 1;
        }
    }
    let stats = host.routing_stats("default").await?;
    let operator_ids: Vec<String> = (0..9).map(operator_account).collect();
    let operator_tweets = x
        .tweets()
        .iter()
        .filter(|t| operator_ids.contains(&t.author_id))
        .count();
    let brand_ids = ["1001", "1002", "1003"];
    let waiting_words = |text: &str| text.contains("coda");
    let auto_replies = x
        .tweets()
        .iter()
        .filter(|t| brand_ids.contains(&t.author_id.as_str()))
        .count()
        + x.dms()
            .iter()
            .filter(|d| brand_ids.contains(&d.sender_id.as_str()) && waiting_words(&d.text))
            .count()
        + graph
            .delivered()
            .iter()
            .filter(|d| waiting_words(&d.text))
            .count();
    let brand_dms = x
        .dms()
        .iter()
        .filter(|d| brand_ids.contains(&d.sender_id.as_str()) && !waiting_words(&d.text))
        .count();
    let facebook_replies = graph
        .delivered()
        .iter()
        .filter(|d| !waiting_words(&d.text))
        .count();

    println!();
    println!("conversations by channel");
    for (channel, n) in &by_channel {
        println!("  {channel:<26} {n:>4}");
    }
    println!();
    println!("{:<10} {:<18} {:>9}", "operator", "brand", "assigned");
    for brand in &BRANDS {
        for (id, _) in &brand.operators {
            println!(
                "{id:<10} {:<18} {:>9}",
                brand.key,
                handled.get(*id).copied().unwrap_or(0)
            );
        }
    }
    first_response.sort_unstable();
    let pick = |q: usize| {
        first_response
            .get((first_response.len() * q / 100).min(first_response.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let resolved = conversations
        .iter()
        .filter(|c| c.status == ConversationStatus::Resolved)
        .count();
    println!();
    println!(
        "conversations              {} ({resolved} resolved)",
        conversations.len()
    );
    println!(
        "first response p50/p95/max {:.1} s / {:.1} s / {:.1} s",
        pick(50) as f64 / 1000.0,
        pick(95) as f64 / 1000.0,
        first_response.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    println!("queue peak                 {}", stats.queue_peak);
    println!(
        "routing decisions          {} ({} offers timed out, {} stage failures)",
        stats.decisions, stats.offer_timeouts, stats.stage_failures
    );
    println!(
        "replies sent               {operator_tweets} tweets from operators' own accounts, {brand_dms} DMs from brand accounts, {} on Facebook",
        facebook_replies
    );
    println!("honest wait estimates      {auto_replies} sent to customers who had to wait");
    println!("CRM events delivered       {}", inbox.events().len());
    println!(
        "wall time                  {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(super) fn kind_word(kind: centralino::types::MessageKind) -> &'static str {
    match kind {
        centralino::types::MessageKind::PublicPost => "mention",
        centralino::types::MessageKind::PrivateMessage => "private message",
        centralino::types::MessageKind::Comment => "comment",
    }
}

//! Live changes: what a config reload applies without a restart.

use super::*;

/// What a roster update of the routing engine changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RosterChange {
    /// Operators added (offline until they say otherwise; a host gives them the presence
    /// it stored for them, if any).
    pub added: Vec<String>,
    /// Operators whose configuration changed (presence and load kept).
    pub updated: Vec<String>,
    /// Operators removed from the roster.
    pub removed: Vec<String>,
    /// Operators no longer configured who still hold answered conversations: kept on the
    /// roster, offline, so they can finish them (or an admin transfers them); the next
    /// reload removes them once they hold none.
    pub retained: Vec<String>,
}

/// Live changes: what a config reload applies without a restart. Conversations, the
/// queue, assignments, history and handling times are kept.
impl RoutingEngine {
    /// Replaces the active chain and the shadow chain. The next decision uses them.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn replace_chains(&mut self, chain: PolicyChain, shadow: Option<PolicyChain>) {
        self.stats.stage_failures += self.chain.total_failures();
        tracing::info!(from = %self.chain.spec(), to = %chain.spec(), "routing chain replaced");
        self.chain = chain;
        self.shadow = shadow.map(Shadow::new);
    }

    /// Sets the offer timeout; `None` never takes a conversation back.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn set_offer_timeout(&mut self, timeout: Option<Duration>) {
        self.offer_timeout_ms = timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
    }

    /// Sets the rules that pick the account a reply goes out from.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) fn set_reply_rules(&mut self, rules: ReplyRules) {
        self.reply_rules = rules;
    }

    /// Makes the roster `operators`: new ones join offline, known ones get their new
    /// configuration (keeping presence, load and last assignment), missing ones go offline
    /// (their unanswered conversations are re-routed) and leave the roster unless they
    /// still hold conversations. Then the queue drains to whoever can take it.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn apply_roster(&mut self, operators: Vec<Operator>) -> (RosterChange, Vec<Notice>) {
        let mut change = RosterChange::default();
        let mut notices = Vec::new();
        let keep: BTreeSet<String> = operators.iter().map(|o| o.id.clone()).collect();
        let gone: Vec<String> = self
            .roster
            .iter()
            .map(|(operator, _)| operator.id.clone())
            .filter(|id| !keep.contains(id))
            .collect();
        for id in gone {
            if let Ok(more) = self.set_presence(&id, Presence::Offline).await {
                notices.extend(more);
            }
            if self.roster.remove_idle(&id) {
                change.removed.push(id);
            } else {
                change.retained.push(id);
            }
        }
        for operator in operators {
            let id = operator.id.clone();
            match self.roster.operator(&id) {
                Some(known) if *known == operator => {}
                Some(_) => {
                    let presence = self
                        .roster
                        .state(&id)
                        .map_or(Presence::Offline, |s| s.presence);
                    self.roster.upsert(operator, presence);
                    change.updated.push(id);
                }
                None => {
                    self.roster.upsert(operator, Presence::Offline);
                    change.added.push(id);
                }
            }
        }
        notices.extend(self.drain().await);
        (change, notices)
    }
}

/// Switching the active chain alone (the console's routing page).
impl RoutingEngine {
    /// Makes `chain` the active chain, keeping the shadow chain and its counts; answers
    /// the spec of the chain it replaced. The next decision uses the new one.
    pub(crate) fn switch_active_chain(&mut self, chain: PolicyChain) -> String {
        self.stats.stage_failures += self.chain.total_failures();
        let previous = std::mem::replace(&mut self.chain, chain);
        previous.spec().to_string()
    }
}

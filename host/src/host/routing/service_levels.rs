//! Live service levels: every routing tick, each unanswered conversation of a brand with
//! a first-response target is measured (business hours only) against it; reaching the
//! at-risk share and then the target produces a CRM event each, once per conversation,
//! and the action the brand configured (raise the priority, re-route) through the engine.
//! The step reached is stored with the conversation, in the change: a restarted host, or
//! another host sharing the database, does not tell the CRM again.

use crate::answers::ServiceLevelAction;
use crate::crm::CrmEvent;
use crate::routing::{ConversationNumber, Notice, Status};
use crate::store::Store;

use super::{Change, TenantRouting};

/// A step a conversation reached, for the metrics.
pub(crate) struct ServiceLevelStep {
    /// The brand.
    pub(crate) brand: String,
    /// `at-risk` or `breached`.
    pub(crate) step: &'static str,
}

/// What the service-level check found and did.
#[derive(Default)]
pub(crate) struct ServiceLevelCheck {
    /// The engine's notices from the actions (assignments, queue places).
    pub(crate) notices: Vec<Notice>,
    /// The CRM events, in order.
    pub(crate) events: Vec<CrmEvent>,
    /// The steps reached.
    pub(crate) steps: Vec<ServiceLevelStep>,
}

const AT_RISK: u8 = 1;
const BREACHED: u8 = 2;

/// How far a conversation got toward missing its target.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Watched {
    /// 0, [`AT_RISK`] or [`BREACHED`].
    step: u8,
    /// Its priority before a service-level action raised it: the target stays the one it
    /// had (raising an ordinary conversation to an urgent level must not make it miss
    /// the urgent target at once).
    priority: Option<u8>,
}

struct Due {
    id: ConversationNumber,
    from: u8,
    to: u8,
    brand: String,
    target_ms: u64,
    waited_ms: u64,
    assignee: Option<String>,
    actions: (ServiceLevelAction, ServiceLevelAction),
    raise_to: u8,
}

impl TenantRouting {
    /// Whether any brand of the tenant has a service level to watch.
    pub(crate) fn watches_service_levels(&self) -> bool {
        self.brands.values().any(|b| b.service_levels.is_some())
    }

    /// Measures every unanswered conversation against its brand's target and acts on the
    /// steps newly reached (see the module docs).
    pub(crate) async fn check_service_levels(
        &mut self,
        store: &Store,
        tenant: &str,
        change: &mut Change,
    ) -> anyhow::Result<ServiceLevelCheck> {
        let mut check = ServiceLevelCheck::default();
        self.measured_at = Some(std::time::Instant::now());
        if !self.watches_service_levels() {
            return Ok(check);
        }
        let now = self.engine.now();
        let hours: std::collections::HashMap<&str, crate::answers::BusinessHours> = self
            .brands
            .values()
            .filter(|b| b.service_levels.is_some())
            .map(|b| (b.id.as_str(), b.business_hours()))
            .collect();
        let mut due = Vec::new();
        let mut open = std::collections::HashSet::new();
        for c in self.engine.conversations().iter() {
            if c.status == Status::Resolved || c.first_response_at.is_some() {
                continue;
            }
            open.insert(c.id);
            let Some(brand) = c.brand.as_deref().and_then(|b| self.brands.get(b)) else {
                continue;
            };
            let Some(levels) = &brand.service_levels else {
                continue;
            };
            let watched = self.service_steps.get(&c.id).copied().unwrap_or_default();
            let target_ms = levels.target_ms(watched.priority.unwrap_or(c.priority));
            let waited_ms = hours
                .get(brand.id.as_str())
                .map_or(0, |h| h.open_ms_between(c.created_at, now));
            let at_risk_ms = target_ms.saturating_mul(u64::from(levels.at_risk_percent)) / 100;
            let reached = if waited_ms >= target_ms {
                BREACHED
            } else if waited_ms >= at_risk_ms {
                AT_RISK
            } else {
                0
            };
            let from = watched.step;
            if reached > from {
                due.push(Due {
                    id: c.id,
                    from,
                    to: reached,
                    brand: brand.id.clone(),
                    target_ms,
                    waited_ms,
                    assignee: c.assignee.clone(),
                    actions: (levels.on_at_risk, levels.on_breach),
                    raise_to: levels.raise_priority_to,
                });
            }
        }
        // Answered or resolved conversations need no watching any more.
        self.service_steps.retain(|id, _| open.contains(id));
        for due in due {
            let Some(c) = self.engine.conversation(due.id) else {
                continue;
            };
            let (priority, assignee_now) = (c.priority, c.assignee.clone());
            let watched = self.service_steps.entry(due.id).or_default();
            watched.step = due.to;
            let Some(store_id) = self.to_store.get(&due.id).cloned() else {
                continue;
            };
            let Some(had) = change
                .raise_service_level(store, tenant, &store_id, due.to)
                .await?
            else {
                // Told before: by this host before a restart, or by another host.
                continue;
            };
            let mut action = ServiceLevelAction::None;
            for step in (due.from.max(had) + 1)..=due.to {
                action = if step == BREACHED {
                    due.actions.1
                } else {
                    due.actions.0
                };
                let name = if step == BREACHED {
                    "breached"
                } else {
                    "at-risk"
                };
                tracing::info!(
                    conversation = %store_id,
                    brand = %due.brand,
                    waited_ms = due.waited_ms,
                    target_ms = due.target_ms,
                    "service level {name}"
                );
                let action_name = action_name(action).to_string();
                let (conversation_id, brand, assignee) =
                    (store_id.clone(), due.brand.clone(), due.assignee.clone());
                check.events.push(if step == BREACHED {
                    CrmEvent::ServiceLevelBreached {
                        conversation_id: conversation_id.into(),
                        brand,
                        target_ms: due.target_ms,
                        waited_ms: due.waited_ms,
                        assignee,
                        action: action_name,
                    }
                } else {
                    CrmEvent::ServiceLevelAtRisk {
                        conversation_id: conversation_id.into(),
                        brand,
                        target_ms: due.target_ms,
                        waited_ms: due.waited_ms,
                        assignee,
                        action: action_name,
                    }
                });
                check.steps.push(ServiceLevelStep {
                    brand: due.brand.clone(),
                    step: name,
                });
            }
            // An earlier action of this pass may have placed it already (a seat freed by a
            // re-route): it is left where it is now.
            if assignee_now != due.assignee {
                continue;
            }
            let notices = match action {
                ServiceLevelAction::None => Vec::new(),
                ServiceLevelAction::RaisePriority => {
                    if let Some(watched) = self.service_steps.get_mut(&due.id) {
                        watched.priority.get_or_insert(priority);
                    }
                    self.engine
                        .escalate(due.id, Some(due.raise_to), false)
                        .await
                }
                ServiceLevelAction::Reroute => self.engine.escalate(due.id, None, true).await,
            };
            check.notices.extend(notices);
        }
        Ok(check)
    }
}

/// The action as the CRM event names it.
fn action_name(action: ServiceLevelAction) -> &'static str {
    match action {
        ServiceLevelAction::None => "none",
        ServiceLevelAction::RaisePriority => "raise-priority",
        ServiceLevelAction::Reroute => "reroute",
    }
}

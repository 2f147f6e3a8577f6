//! Who holds each assigned conversation of a tenant, across every host sharing the store
//! (PostgreSQL): the operators' loads follow the conversations each routing change reads
//! as changed, instead of being counted again over every assigned conversation.

use std::collections::HashMap;

use crate::store::{ConversationStatus, StoredAssignment};

/// The holder of each assigned conversation, and how many each operator holds.
#[derive(Debug, Default)]
pub(super) struct Held {
    holders: HashMap<String, String>,
    loads: HashMap<String, u32>,
}

impl Held {
    /// Starts again from the store's assigned conversations: (id, assignee).
    pub(super) fn reset(&mut self, assigned: Vec<(String, String)>) {
        self.holders.clear();
        self.loads.clear();
        for (id, assignee) in assigned {
            *self.loads.entry(assignee.clone()).or_default() += 1;
            self.holders.insert(id, assignee);
        }
    }

    /// A conversation as the store has it now: its seat moves with it.
    pub(super) fn apply(&mut self, stored: &StoredAssignment) {
        let holder = match (&stored.status, &stored.assignee) {
            (ConversationStatus::Assigned, Some(assignee)) => Some(assignee),
            _ => None,
        };
        if self.holders.get(&stored.id) == holder {
            return;
        }
        if let Some(before) = self.holders.remove(&stored.id)
            && let Some(load) = self.loads.get_mut(&before)
        {
            *load = load.saturating_sub(1);
        }
        if let Some(holder) = holder {
            *self.loads.entry(holder.clone()).or_default() += 1;
            self.holders.insert(stored.id.clone(), holder.clone());
        }
    }

    /// How many conversations each operator holds.
    pub(super) fn loads(&self) -> &HashMap<String, u32> {
        &self.loads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, status: ConversationStatus, assignee: Option<&str>) -> StoredAssignment {
        StoredAssignment {
            id: id.to_string(),
            status,
            assignee: assignee.map(str::to_string),
            assigned_at: None,
            transferred: false,
            first_response_at: None,
        }
    }

    #[test]
    fn loads_follow_each_conversation_from_holder_to_holder() {
        use ConversationStatus::{Assigned, Resolved, Waiting};
        let mut held = Held::default();
        held.reset(vec![
            ("c1".to_string(), "marco".to_string()),
            ("c2".to_string(), "marco".to_string()),
            ("c3".to_string(), "giulia".to_string()),
        ]);
        let load = |held: &Held, who: &str| held.loads().get(who).copied().unwrap_or(0);
        assert_eq!((load(&held, "marco"), load(&held, "giulia")), (2, 1));
        // Read twice (a change sees its own rows again): counted once.
        held.apply(&row("c1", Assigned, Some("marco")));
        assert_eq!(load(&held, "marco"), 2);
        // Handed over, resolved, back in the queue, new.
        held.apply(&row("c1", Assigned, Some("giulia")));
        held.apply(&row("c2", Resolved, Some("marco")));
        held.apply(&row("c3", Waiting, None));
        held.apply(&row("c4", Assigned, Some("marco")));
        assert_eq!((load(&held, "marco"), load(&held, "giulia")), (1, 1));
        // A conversation nobody held leaves nothing to free.
        held.apply(&row("c5", Resolved, None));
        assert_eq!((load(&held, "marco"), load(&held, "giulia")), (1, 1));
    }
}

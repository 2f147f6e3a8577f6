//! A stage's `narrow`: the candidates it names, in its order.

use std::collections::HashMap;

use crate::types::Agent;

/// Up to this many id comparisons (ids named × candidates) a narrow searches the
/// candidates for each id it names; above it, it indexes them by id first. Searching is
/// quadratic: a `skills` stage keeping 150 of 300 operators compared ids about 20,000
/// times per conversation.
const SEARCH_UP_TO: usize = 512;

/// The candidates `ids` names, in `ids`' order, each at most once: an id naming no
/// remaining candidate (unknown, or named twice) is skipped.
pub(crate) fn keep(agents: Vec<Agent>, ids: &[String]) -> Vec<Agent> {
    keep_with(agents, ids, SEARCH_UP_TO)
}

fn keep_with(mut agents: Vec<Agent>, ids: &[String], search_up_to: usize) -> Vec<Agent> {
    let mut kept = Vec::with_capacity(ids.len().min(agents.len()));
    if ids.len().saturating_mul(agents.len()) <= search_up_to {
        for id in ids {
            if let Some(position) = agents.iter().position(|a| &a.id == id) {
                kept.push(agents.swap_remove(position));
            }
        }
        return kept;
    }
    // Where each named id's candidates are, pushed from the last candidate back, so the
    // earliest is popped first.
    let mut at: HashMap<&str, Vec<usize>> = HashMap::with_capacity(ids.len());
    for id in ids {
        at.entry(id.as_str()).or_default();
    }
    for (position, agent) in agents.iter().enumerate().rev() {
        if let Some(positions) = at.get_mut(agent.id.as_str()) {
            positions.push(position);
        }
    }
    let mut slots: Vec<Option<Agent>> = agents.into_iter().map(Some).collect();
    for id in ids {
        let position = at.get_mut(id.as_str()).and_then(Vec::pop);
        if let Some(agent) = position
            .and_then(|p| slots.get_mut(p))
            .and_then(Option::take)
        {
            kept.push(agent);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Presence;

    fn agent(id: &str, load: u32) -> Agent {
        Agent {
            id: id.to_string(),
            name: id.to_uppercase(),
            skills: Vec::new(),
            languages: Vec::new(),
            accounts: Vec::new(),
            capacity: 3,
            load,
            presence: Presence::Online,
            last_assigned_at: None,
        }
    }

    fn ids(agents: &[Agent]) -> Vec<(String, u32)> {
        agents.iter().map(|a| (a.id.clone(), a.load)).collect()
    }

    /// A small deterministic generator (xorshift), so the test needs no dependency.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn searching_and_indexing_keep_the_same_candidates_in_the_named_order() {
        let mut state = 0x5eed_u64;
        for round in 0..500 {
            let count = (next(&mut state) % 40) as usize;
            let roster: Vec<Agent> = (0..count)
                .map(|i| agent(&format!("op-{i}"), (next(&mut state) % 3) as u32))
                .collect();
            // Named: some of the roster in any order, some twice, some unknown.
            let named: Vec<String> = (0..(next(&mut state) % 50))
                .map(|_| format!("op-{}", next(&mut state) % (count as u64 + 5)))
                .collect();
            let searched = keep_with(roster.clone(), &named, usize::MAX);
            let indexed = keep_with(roster.clone(), &named, 0);
            assert_eq!(ids(&searched), ids(&indexed), "round {round}: {named:?}");
            // Each kept once, in the order first named.
            let mut seen = Vec::new();
            for id in &named {
                if !seen.contains(id) && roster.iter().any(|a| &a.id == id) {
                    seen.push(id.clone());
                }
            }
            let kept: Vec<String> = searched.iter().map(|a| a.id.clone()).collect();
            assert_eq!(kept, seen, "round {round}");
        }
    }

    #[test]
    fn the_same_id_twice_in_the_roster_is_kept_as_often_as_it_is_named() {
        let roster = vec![agent("anna", 0), agent("bruno", 1), agent("anna", 2)];
        let named = ["anna", "anna", "bruno", "anna"].map(String::from);
        for search_up_to in [usize::MAX, 0] {
            let kept = keep_with(roster.clone(), &named, search_up_to);
            let mut loads: Vec<(String, u32)> = ids(&kept);
            assert_eq!(loads.len(), 3, "{search_up_to}");
            assert_eq!(loads[2], ("bruno".to_string(), 1));
            loads.truncate(2);
            loads.sort();
            assert_eq!(
                loads,
                [("anna".to_string(), 0), ("anna".to_string(), 2)],
                "{search_up_to}"
            );
        }
    }
}

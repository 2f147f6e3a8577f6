//! The waiting queue and what a waiting customer is told.
//!
//! [`WaitQueue`] orders conversations by priority (higher first), then by how long the
//! customer has waited (longer first), then by arrival, so an outage report written in
//! capitals goes ahead of a billing question but two billing questions keep their order.
//!
//! [`WaitEstimate`] turns the queue position, the capacity at work and the recent handling
//! times ([`HandlingTimes`]) into an honest figure; the brand's templates
//! ([`crate::answers`]) turn it into words. When there is no basis for a number (nobody at
//! work, no history yet) it says so instead of inventing one.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::conversations::ConversationNumber;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    priority: Reverse<u8>,
    waiting_since: u64,
    id: ConversationNumber,
}

/// Conversations nobody could take yet, best first.
#[derive(Clone, Debug, Default)]
pub struct WaitQueue {
    order: BTreeSet<Place>,
    places: HashMap<ConversationNumber, Place>,
}

impl WaitQueue {
    /// Puts a conversation in the queue, or moves it if its priority changed.
    pub fn push(&mut self, id: ConversationNumber, priority: u8, waiting_since: u64) {
        self.remove(id);
        let place = Place {
            priority: Reverse(priority),
            waiting_since,
            id,
        };
        self.order.insert(place);
        self.places.insert(id, place);
    }

    /// Takes a conversation out; returns whether it was queued.
    pub fn remove(&mut self, id: ConversationNumber) -> bool {
        match self.places.remove(&id) {
            Some(place) => self.order.remove(&place),
            None => false,
        }
    }

    /// Whether the conversation is queued.
    pub fn contains(&self, id: ConversationNumber) -> bool {
        self.places.contains_key(&id)
    }

    /// 1-based position (1 = next to be served) in the whole queue; estimates count per
    /// brand instead (the engine's `wait_estimate`).
    #[cfg(any(test, feature = "test-support"))]
    pub fn position(&self, id: ConversationNumber) -> Option<usize> {
        let place = self.places.get(&id)?;
        Some(self.order.range(..place).count() + 1)
    }

    /// Queued conversations, best first.
    pub fn iter(&self) -> impl Iterator<Item = ConversationNumber> + '_ {
        self.order.iter().map(|place| place.id)
    }

    /// Number of waiting conversations.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// When the longest-waiting customer started waiting.
    pub fn oldest_waiting_since(&self) -> Option<u64> {
        self.order.iter().map(|place| place.waiting_since).min()
    }
}

/// How long recent conversations kept an operator busy (assignment to resolution).
///
/// Only the last `window` count: handling times change with the day's problems (an outage
/// brings many short "is it down?" conversations), and an estimate should follow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HandlingTimes {
    recent: VecDeque<u64>,
    window: usize,
}

impl Default for HandlingTimes {
    fn default() -> Self {
        HandlingTimes::new(50)
    }
}

impl HandlingTimes {
    /// Keeps the last `window` handling times (at least one).
    pub fn new(window: usize) -> Self {
        HandlingTimes {
            recent: VecDeque::new(),
            window: window.max(1),
        }
    }

    /// Records one conversation's handling time.
    pub fn record(&mut self, ms: u64) {
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(ms);
    }

    /// The mean of the recent handling times; none before the first resolution.
    pub fn average_ms(&self) -> Option<u64> {
        let count = u64::try_from(self.recent.len()).ok().filter(|n| *n > 0)?;
        Some(self.recent.iter().sum::<u64>() / count)
    }
}

/// What a waiting customer can honestly be told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WaitEstimate {
    /// A number backed by recent handling times.
    About {
        /// Position in the queue (1 = next).
        position: usize,
        /// Expected wait, rounded up to whole minutes.
        minutes: u64,
    },
    /// Operators are at work but no conversation was resolved recently, so there is no
    /// basis for a number yet.
    NoHistory {
        /// Position in the queue.
        position: usize,
    },
    /// Nobody is at work now.
    NobodyAtWork {
        /// Position in the queue.
        position: usize,
    },
}

impl WaitEstimate {
    /// Estimates the wait of the conversation at `position`.
    ///
    /// With `seats` conversations handled in parallel and an average handling time `H`, a
    /// seat frees every `H / seats` on average, and the customer at position `p` needs `p`
    /// of them: `p · H / seats`. It ignores which operators may serve whom, so it is a
    /// fair figure for a brand with a share of the seats, not a promise.
    pub fn new(position: usize, seats: u32, handling: &HandlingTimes) -> Self {
        if seats == 0 {
            return WaitEstimate::NobodyAtWork { position };
        }
        let Some(average) = handling.average_ms() else {
            return WaitEstimate::NoHistory { position };
        };
        let position_u64 = u64::try_from(position).unwrap_or(u64::MAX);
        let wait_ms = position_u64.saturating_mul(average) / u64::from(seats);
        WaitEstimate::About {
            position,
            minutes: wait_ms.div_ceil(60_000).max(1),
        }
    }

    /// The customer's position in the queue.
    pub fn position(&self) -> usize {
        match self {
            WaitEstimate::About { position, .. }
            | WaitEstimate::NoHistory { position }
            | WaitEstimate::NobodyAtWork { position } => *position,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_priority_goes_first_then_the_longest_wait() {
        let mut queue = WaitQueue::default();
        queue.push(ConversationNumber(1), 0, 100);
        queue.push(ConversationNumber(2), 0, 50);
        queue.push(ConversationNumber(3), 5, 300);
        queue.push(ConversationNumber(4), 0, 50);
        let order: Vec<u64> = queue.iter().map(|id| id.0).collect();
        // 3 is urgent; 2 and 4 waited equally long and keep arrival order; 1 came last.
        assert_eq!(order, vec![3, 2, 4, 1]);
        assert_eq!(queue.position(ConversationNumber(1)), Some(4));
        assert_eq!(queue.oldest_waiting_since(), Some(50));
    }

    #[test]
    fn a_priority_change_moves_a_conversation_without_duplicating_it() {
        let mut queue = WaitQueue::default();
        queue.push(ConversationNumber(1), 0, 10);
        queue.push(ConversationNumber(2), 0, 20);
        queue.push(ConversationNumber(2), 9, 20);
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.position(ConversationNumber(2)), Some(1));
        assert!(queue.remove(ConversationNumber(2)));
        assert!(!queue.remove(ConversationNumber(2)));
        assert_eq!(queue.iter().collect::<Vec<_>>(), vec![ConversationNumber(1)]);
    }

    #[test]
    fn handling_times_keep_only_a_recent_window() {
        let mut handling = HandlingTimes::new(3);
        assert_eq!(handling.average_ms(), None);
        for ms in [1_000, 100_000, 200_000, 300_000] {
            handling.record(ms);
        }
        assert_eq!(handling.average_ms(), Some(200_000));
    }

    #[test]
    fn the_wait_estimate_follows_position_seats_and_handling_time() {
        let mut handling = HandlingTimes::default();
        handling.record(6 * 60_000);
        handling.record(10 * 60_000);
        // Average 8 minutes; 27 seats; 40th in line: 40 · 8 / 27 = 11.85 → 12 minutes.
        let estimate = WaitEstimate::new(40, 27, &handling);
        assert_eq!(
            estimate,
            WaitEstimate::About {
                position: 40,
                minutes: 12
            }
        );
        // First in line with many seats: never "0 minutes".
        assert_eq!(
            WaitEstimate::new(1, 27, &handling),
            WaitEstimate::About {
                position: 1,
                minutes: 1
            }
        );
    }

    #[test]
    fn without_a_basis_the_estimate_gives_no_number() {
        let empty = HandlingTimes::default();
        let estimate = WaitEstimate::new(2, 9, &empty);
        assert_eq!(estimate, WaitEstimate::NoHistory { position: 2 });
        let mut handling = HandlingTimes::default();
        handling.record(60_000);
        let nobody = WaitEstimate::new(1, 0, &handling);
        assert_eq!(nobody, WaitEstimate::NobodyAtWork { position: 1 });
    }
}

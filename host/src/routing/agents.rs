//! Operators (agents): who they are, when they work, and what they hold right now.
//!
//! An [`Operator`] is configuration an admin writes: brands and skills, languages, the
//! personal accounts they reply from, a capacity, optional working hours. The
//! [`Roster`] adds the live part per operator ([`OperatorState`]: presence, load, last
//! assignment) and answers the two questions routing asks: *what does a policy see*
//! ([`Roster::agents`]) and *can this operator take one more conversation now*
//! ([`Roster::is_available`]).
//!
//! Presence is what the operator set; working hours narrow it: an operator who is
//! `online` outside their hours counts as `away`, so a forgotten status at the end of a
//! shift does not pull conversations to an empty desk.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::calendar::{DAY_MS, parse_clock_time, weekday};
use crate::error::RoutingError;
use crate::types::{Agent, Presence};

/// An account on a channel, written `channel:id` (`twitter:TIM_Marco`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelAccount {
    /// Channel name (`twitter`, `facebook`).
    pub channel: String,
    /// The account id as the channel's connector knows it.
    pub id: String,
}

impl fmt::Display for ChannelAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.channel, self.id)
    }
}

impl FromStr for ChannelAccount {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            Some((channel, id)) if !channel.is_empty() && !id.is_empty() => Ok(ChannelAccount {
                channel: channel.to_string(),
                id: id.to_string(),
            }),
            _ => Err(format!(
                "`{text}` is not an account: write `channel:id`, e.g. `twitter:TIM_Marco`"
            )),
        }
    }
}

impl TryFrom<String> for ChannelAccount {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<ChannelAccount> for String {
    fn from(account: ChannelAccount) -> String {
        account.to_string()
    }
}

/// A span of a day in local time, written `HH:MM-HH:MM` (`09:00-13:00`; `24:00` ends the
/// day). A shift across midnight is written as two spans on two days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeSpan {
    /// Minutes after local midnight when the span starts.
    pub from: u32,
    /// Minutes after local midnight when it ends (exclusive).
    pub to: u32,
}

impl TryFrom<String> for TimeSpan {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let (from, to) = text
            .split_once('-')
            .ok_or_else(|| format!("`{text}` is not a span of hours: write `09:00-13:00`"))?;
        let span = TimeSpan {
            from: parse_clock_time(from.trim())?,
            to: parse_clock_time(to.trim())?,
        };
        if span.from >= span.to {
            return Err(format!(
                "`{text}` ends before it starts; split a night shift over two days"
            ));
        }
        Ok(span)
    }
}

impl From<TimeSpan> for String {
    fn from(span: TimeSpan) -> String {
        format!(
            "{:02}:{:02}-{:02}:{:02}",
            span.from / 60,
            span.from % 60,
            span.to / 60,
            span.to % 60
        )
    }
}

/// Weekly working hours in the operator's local time.
///
/// The offset is fixed: an Italian team writes `60` in winter and `120` in summer (the
/// host has no time-zone database). A weekday with no spans is a day off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// Local time minus UTC, in minutes.
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// Monday's spans.
    #[serde(default)]
    pub mon: Vec<TimeSpan>,
    /// Tuesday's spans.
    #[serde(default)]
    pub tue: Vec<TimeSpan>,
    /// Wednesday's spans.
    #[serde(default)]
    pub wed: Vec<TimeSpan>,
    /// Thursday's spans.
    #[serde(default)]
    pub thu: Vec<TimeSpan>,
    /// Friday's spans.
    #[serde(default)]
    pub fri: Vec<TimeSpan>,
    /// Saturday's spans.
    #[serde(default)]
    pub sat: Vec<TimeSpan>,
    /// Sunday's spans.
    #[serde(default)]
    pub sun: Vec<TimeSpan>,
}

impl WorkingHours {
    fn day(&self, weekday: usize) -> &[TimeSpan] {
        match weekday {
            0 => &self.mon,
            1 => &self.tue,
            2 => &self.wed,
            3 => &self.thu,
            4 => &self.fri,
            5 => &self.sat,
            _ => &self.sun,
        }
    }

    /// Local day number and minute of the day at `now_ms`.
    fn local(&self, now_ms: u64) -> (i64, i64) {
        let local =
            i64::try_from(now_ms).unwrap_or(i64::MAX) + i64::from(self.utc_offset_minutes) * 60_000;
        (local.div_euclid(DAY_MS), local.rem_euclid(DAY_MS) / 60_000)
    }

    /// Whether `now_ms` falls inside a span.
    pub fn contains(&self, now_ms: u64) -> bool {
        let (day, minute) = self.local(now_ms);
        self.day(weekday(day))
            .iter()
            .any(|span| (i64::from(span.from)..i64::from(span.to)).contains(&minute))
    }

    /// The first start of a span strictly after `now_ms`, within the next eight days.
    /// The engine wakes up then to give the new shift its queue.
    pub fn next_start_after(&self, now_ms: u64) -> Option<u64> {
        let (today, _) = self.local(now_ms);
        let offset_ms = i64::from(self.utc_offset_minutes) * 60_000;
        (today..today + 8)
            .flat_map(|day| {
                self.day(weekday(day))
                    .iter()
                    .map(move |span| day * DAY_MS + i64::from(span.from) * 60_000 - offset_ms)
            })
            .filter_map(|start| u64::try_from(start).ok())
            .filter(|start| *start > now_ms)
            .min()
    }
}

/// An operator as an admin configures them. Built with [`Operator::new`] and the methods
/// after it (new settings arrive as methods, with defaults).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Operator {
    /// Stable id (`marco`).
    pub id: String,
    /// Display name; the id when not given.
    #[serde(default)]
    pub name: String,
    /// Brands and skills (`tim`, `fibra`, `billing`).
    #[serde(default)]
    pub skills: Vec<String>,
    /// Languages spoken (`it`, `en`).
    #[serde(default)]
    pub languages: Vec<String>,
    /// The operator's personal accounts (`twitter:TIM_Marco`). Brand accounts are not
    /// listed: the assignee of a conversation may always answer from the account it came in
    /// on.
    #[serde(default)]
    pub accounts: Vec<ChannelAccount>,
    /// Conversations the operator may hold at once.
    pub capacity: u32,
    /// Working hours; none means presence alone decides.
    #[serde(default)]
    pub hours: Option<WorkingHours>,
}

impl Operator {
    /// An operator with just an id and a capacity: named by the id, no skills, languages
    /// or own accounts, no working hours (presence alone decides).
    pub fn new(id: impl Into<String>, capacity: u32) -> Self {
        let id = id.into();
        Operator {
            name: id.clone(),
            id,
            skills: Vec::new(),
            languages: Vec::new(),
            accounts: Vec::new(),
            capacity,
            hours: None,
        }
    }

    /// The name people see.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Adds brands and skills (`tim`, `fibra`, `billing`).
    pub fn skills<S: Into<String>>(mut self, skills: impl IntoIterator<Item = S>) -> Self {
        self.skills.extend(skills.into_iter().map(Into::into));
        self
    }

    /// Adds languages spoken (`it`, `en`).
    pub fn languages<S: Into<String>>(mut self, languages: impl IntoIterator<Item = S>) -> Self {
        self.languages.extend(languages.into_iter().map(Into::into));
        self
    }

    /// Adds the operator's own account on `channel` (its id there, as the connector's
    /// account ids are written).
    pub fn account(mut self, channel: impl Into<String>, id: impl Into<String>) -> Self {
        self.accounts.push(ChannelAccount {
            channel: channel.into(),
            id: id.into(),
        });
        self
    }

    /// Working hours; outside them the operator takes no new conversations.
    pub fn hours(mut self, hours: WorkingHours) -> Self {
        self.hours = Some(hours);
        self
    }

    /// The operator's own account on `channel`, if they have one.
    pub fn account_on(&self, channel: &str) -> Option<&ChannelAccount> {
        self.accounts.iter().find(|a| a.channel == channel)
    }
}

/// What changes about an operator while they work. Small and serialisable so a durable
/// store can keep it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorState {
    /// What the operator set.
    pub presence: Presence,
    /// Conversations held now.
    pub load: u32,
    /// When the operator was last given a conversation.
    pub last_assigned_at: Option<u64>,
}

#[derive(Clone, Debug)]
struct Seat {
    operator: Operator,
    state: OperatorState,
}

/// Every operator with their live state, in the order they were added (the order
/// policies see them in, so it breaks ties).
#[derive(Clone, Debug, Default)]
pub struct Roster {
    seats: Vec<Seat>,
    /// Names the operators' profiles as they are now; see [`Roster::version`].
    version: u64,
}

/// Roster versions are unique in the process, so two rosters (or a roster and its clone,
/// once either changes) never share one for different profiles.
static NEXT_VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Roster {
    /// Identifies the operators' profiles (everything but their live state): it changes
    /// whenever an operator is added, reconfigured or removed. The routing context carries
    /// it, so a routing policy that keeps the roster (contract 0.2) hears only of changes.
    pub fn version(&self) -> u64 {
        self.version
    }

    fn profiles_changed(&mut self) {
        self.version = NEXT_VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn seat(&self, id: &str) -> Option<&Seat> {
        self.seats.iter().find(|seat| seat.operator.id == id)
    }

    fn seat_mut(&mut self, id: &str) -> Result<&mut Seat, RoutingError> {
        self.seats
            .iter_mut()
            .find(|seat| seat.operator.id == id)
            .ok_or_else(|| RoutingError::UnknownOperator(id.to_string()))
    }

    /// Adds an operator, or replaces the configuration of one with the same id while
    /// keeping their live state (load, last assignment). Returns whether they were new.
    pub fn upsert(&mut self, mut operator: Operator, presence: Presence) -> bool {
        if operator.name.is_empty() {
            operator.name = operator.id.clone();
        }
        self.profiles_changed();
        match self.seats.iter_mut().find(|s| s.operator.id == operator.id) {
            Some(seat) => {
                seat.operator = operator;
                seat.state.presence = presence;
                false
            }
            None => {
                self.seats.push(Seat {
                    operator,
                    state: OperatorState {
                        presence,
                        load: 0,
                        last_assigned_at: None,
                    },
                });
                true
            }
        }
    }

    /// Removes an operator who holds no conversation; false (and nothing changes) when
    /// they still hold some, or are not on the roster.
    pub fn remove_idle(&mut self, id: &str) -> bool {
        let before = self.seats.len();
        self.seats
            .retain(|seat| seat.operator.id != id || seat.state.load > 0);
        let removed = self.seats.len() != before;
        if removed {
            self.profiles_changed();
        }
        removed
    }

    /// An operator's configuration.
    pub fn operator(&self, id: &str) -> Option<&Operator> {
        self.seat(id).map(|seat| &seat.operator)
    }

    /// An operator's live state.
    pub fn state(&self, id: &str) -> Option<&OperatorState> {
        self.seat(id).map(|seat| &seat.state)
    }

    /// Every operator with their state, in roster order.
    pub fn iter(&self) -> impl Iterator<Item = (&Operator, &OperatorState)> {
        self.seats.iter().map(|seat| (&seat.operator, &seat.state))
    }

    /// Number of operators.
    pub fn len(&self) -> usize {
        self.seats.len()
    }

    /// Whether there are no operators.
    pub fn is_empty(&self) -> bool {
        self.seats.is_empty()
    }

    /// Sets what the operator says about themselves; returns the previous presence.
    pub fn set_presence(&mut self, id: &str, presence: Presence) -> Result<Presence, RoutingError> {
        let seat = self.seat_mut(id)?;
        Ok(std::mem::replace(&mut seat.state.presence, presence))
    }

    /// Presence as routing sees it: `online` outside working hours counts as `away`.
    pub fn effective_presence(&self, id: &str, now: u64) -> Option<Presence> {
        self.seat(id).map(|seat| effective_presence(seat, now))
    }

    /// Whether the operator can take one more conversation now.
    pub fn is_available(&self, id: &str, now: u64) -> bool {
        self.seat(id).is_some_and(|seat| has_room(seat, now))
    }

    /// Ids of the operators who could take a conversation now.
    pub fn available(&self, now: u64) -> Vec<String> {
        self.seats
            .iter()
            .filter(|seat| has_room(seat, now))
            .map(|seat| seat.operator.id.clone())
            .collect()
    }

    /// Total capacity of the operators at work now (online within their hours), busy or
    /// not: the number of conversations served in parallel, for wait estimates.
    pub fn working_capacity(&self, now: u64) -> u32 {
        self.seats
            .iter()
            .filter(|seat| effective_presence(seat, now) == Presence::Online)
            .map(|seat| seat.operator.capacity)
            .sum()
    }

    /// Conversations handled in parallel for `brand` now: the seats of operators at work
    /// whose skills name it (in any case), or every seat at work when no operator on the
    /// roster names it (or there is no brand).
    pub fn brand_capacity(&self, brand: Option<&str>, now: u64) -> u32 {
        let serves = |seat: &Seat, brand: &str| {
            seat.operator
                .skills
                .iter()
                .any(|skill| skill.eq_ignore_ascii_case(brand))
        };
        let Some(brand) = brand.filter(|b| self.seats.iter().any(|seat| serves(seat, b))) else {
            return self.working_capacity(now);
        };
        self.seats
            .iter()
            .filter(|seat| serves(seat, brand))
            .filter(|seat| effective_presence(seat, now) == Presence::Online)
            .map(|seat| seat.operator.capacity)
            .sum()
    }

    /// What policies see: every operator except `excluded`, in roster order.
    pub fn agents(&self, now: u64, excluded: &[String]) -> Vec<Agent> {
        let mut agents = Vec::new();
        self.agents_into(now, excluded, &mut agents);
        agents
    }

    /// [`Roster::agents`], written over `into`: the strings and lists of the operators
    /// already there are overwritten in place, so a steady roster allocates nothing.
    pub(crate) fn agents_into(&self, now: u64, excluded: &[String], into: &mut Vec<Agent>) {
        let mut n = 0;
        for seat in self
            .seats
            .iter()
            .filter(|seat| !excluded.contains(&seat.operator.id))
        {
            let operator = &seat.operator;
            let presence = effective_presence(seat, now);
            match into.get_mut(n) {
                Some(agent) => {
                    agent.id.clone_from(&operator.id);
                    agent.name.clone_from(&operator.name);
                    agent.skills.clone_from(&operator.skills);
                    agent.languages.clone_from(&operator.languages);
                    agent.accounts.truncate(operator.accounts.len());
                    for (i, account) in operator.accounts.iter().enumerate() {
                        match agent.accounts.get_mut(i) {
                            Some(slot) => slot.clone_from(&account.id),
                            None => agent.accounts.push(account.id.clone()),
                        }
                    }
                    agent.capacity = operator.capacity;
                    agent.load = seat.state.load;
                    agent.presence = presence;
                    agent.last_assigned_at = seat.state.last_assigned_at;
                }
                None => into.push(Agent {
                    id: operator.id.clone(),
                    name: operator.name.clone(),
                    skills: operator.skills.clone(),
                    languages: operator.languages.clone(),
                    accounts: operator.accounts.iter().map(|a| a.id.clone()).collect(),
                    capacity: operator.capacity,
                    load: seat.state.load,
                    presence,
                    last_assigned_at: seat.state.last_assigned_at,
                }),
            }
            n += 1;
        }
        into.truncate(n);
    }

    /// The next time a working-hours span starts for anyone, after `now`.
    pub fn next_shift_start(&self, now: u64) -> Option<u64> {
        self.seats
            .iter()
            .filter_map(|seat| seat.operator.hours.as_ref()?.next_start_after(now))
            .min()
    }

    /// Counts a new conversation for the operator. Refuses when they are not available, so
    /// nothing the engine does can exceed a capacity.
    pub(crate) fn take_seat(&mut self, id: &str, now: u64) -> Result<(), RoutingError> {
        let seat = self.seat_mut(id)?;
        if !has_room(seat, now) {
            return Err(RoutingError::Unavailable(id.to_string()));
        }
        seat.state.load += 1;
        seat.state.last_assigned_at = Some(now);
        Ok(())
    }

    /// Counts a conversation the operator already holds (taken up from a durable store),
    /// whatever their presence or capacity now: it is theirs, not a new assignment.
    pub(crate) fn restore_seat(&mut self, id: &str, at: u64) -> Result<(), RoutingError> {
        let seat = self.seat_mut(id)?;
        seat.state.load += 1;
        seat.state.last_assigned_at = Some(seat.state.last_assigned_at.map_or(at, |t| t.max(at)));
        Ok(())
    }

    /// Sets every operator's load to what `loads` says they hold (none when absent): the
    /// count a durable store shared by several hosts keeps, which this roster's own count
    /// may lag behind.
    pub(crate) fn set_loads(&mut self, loads: &std::collections::HashMap<String, u32>) {
        for seat in &mut self.seats {
            seat.state.load = loads.get(&seat.operator.id).copied().unwrap_or(0);
        }
    }

    /// Gives a seat back when a conversation is resolved, moved or taken away.
    pub(crate) fn free_seat(&mut self, id: &str) {
        if let Ok(seat) = self.seat_mut(id) {
            seat.state.load = seat.state.load.saturating_sub(1);
        }
    }

    /// Moves a conversation's seat to `to` (a transfer; `from` is the previous holder, if
    /// any), refusing if the receiver is unknown or full. Presence is not checked: a
    /// supervisor may hand a conversation to a colleague who is away for a moment.
    pub(crate) fn move_seat(
        &mut self,
        from: Option<&str>,
        to: &str,
        now: u64,
    ) -> Result<(), RoutingError> {
        let seat = self.seat_mut(to)?;
        if seat.state.load >= seat.operator.capacity {
            return Err(RoutingError::AtCapacity {
                operator: to.to_string(),
                capacity: seat.operator.capacity,
            });
        }
        seat.state.load += 1;
        seat.state.last_assigned_at = Some(now);
        if let Some(from) = from {
            self.free_seat(from);
        }
        Ok(())
    }
}

fn effective_presence(seat: &Seat, now: u64) -> Presence {
    match (&seat.state.presence, &seat.operator.hours) {
        (Presence::Online, Some(hours)) if !hours.contains(now) => Presence::Away,
        (presence, _) => *presence,
    }
}

fn has_room(seat: &Seat, now: u64) -> bool {
    effective_presence(seat, now) == Presence::Online && seat.state.load < seat.operator.capacity
}

/// Milliseconds since the epoch of a local date and time, for tests and examples.
#[cfg(test)]
fn at(year: i64, month: u32, day: u32, hour: i64, minute: i64) -> u64 {
    let ms =
        crate::calendar::days_from_civil(year, month, day) * DAY_MS + (hour * 60 + minute) * 60_000;
    u64::try_from(ms).unwrap_or(0)
}

#[cfg(test)]
mod tests;

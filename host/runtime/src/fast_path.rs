//! The fast paths against the generated bindings: every routing decision taken through
//! the fast path (0.1: [`super::borrowed`], the context lowered from borrowed host types by
//! `unsafe` code on wasmtime's internals; 0.2: [`super::roster`], the candidates lowered
//! the same way, the roster kept in the instance; 0.3: [`super::flat_route`], flat values
//! and the same candidates) equals the one taken through the generated bindings' ordinary
//! typed call, over thousands of random contexts, for every routing policy in the tree
//! (0.3 builds), the released 0.1 build of `least-loaded`, and the echo guests
//! (`hostile-router` for 0.1, `roster-echo-v0-2-0` for 0.2, `roster-echo` for 0.3), which
//! write out every agent and the conversation as they arrived (checked field by field
//! against what the host sent). Then the roster through a day of changes, and the
//! generated path as the fallback.
//!
//! Each policy gets two instances with the same settings, one per path, fed the same
//! contexts in the same order, so policies with state (`round-robin`'s rotation) stay in
//! step as long as the two paths agree. The generator is seeded: a failure prints the seed,
//! and `CENTRALINO_FAST_PATH_SEED=<seed>` replays the run. Needs the plugins built
//! (`cargo xtask plugins`).

use std::path::PathBuf;

use super::{PluginLimits, RouteCall, RouterInstance, Runtime};
use crate::error::{Error, Fault};
use crate::types::{
    Agent, MessageKind, Presence, QueueStats, RoutingAction, RoutingContext, RoutingConversation,
    RoutingDecision,
};

/// Path of a built component; fails with instructions when it has not been built.
pub(crate) fn component(name: &str) -> PathBuf {
    let dir = std::env::var_os("CENTRALINO_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask plugins` first (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// An instance of `policy` in a runtime that calls `route` the way given.
fn instance(policy: &str, settings: &[(&str, &str)], call: RouteCall) -> RouterInstance {
    let runtime = Runtime::builder().route_call(call).build().unwrap();
    assert_eq!(runtime.route_call(), call);
    let settings = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let limits = PluginLimits {
        // The echo of 200 agents with long strings is large; both paths get the same caps.
        max_text_chars: 1 << 20,
        ..PluginLimits::default()
    };
    runtime
        .load_router(component(policy))
        .unwrap()
        .instance(settings, limits)
}

/// SplitMix64: small, seedable, good enough to spread test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// Small, zero, huge or anything.
    fn u64(&mut self) -> u64 {
        match self.below(4) {
            0 => self.below(10),
            1 => u64::MAX - self.below(3),
            2 => self.below(1 << 40),
            _ => self.next(),
        }
    }

    fn u32(&mut self) -> u32 {
        match self.below(4) {
            0 => self.below(5) as u32,
            1 => u32::MAX - self.below(3) as u32,
            _ => self.next() as u32,
        }
    }

    /// A string: often one the policies look for (brands, languages, keywords), sometimes
    /// empty, unicode, with the echo's separators, long, or random code points.
    fn string(&mut self) -> String {
        const WORDS: &[&str] = &[
            "",
            "tim",
            "TIM",
            "it",
            "en",
            "IT",
            "down",
            "guasto",
            "la rete è DOWN!",
            "non funziona",
            "download",
            "agent-1",
            "agent-2",
            "agent-3",
            "çàèìòù",
            "日本語",
            "🙂👩‍💻",
            "a|b,c\nd",
            " ",
            "\0",
        ];
        match self.below(4) {
            0 | 1 => self.pick(WORDS).to_string(),
            2 => {
                let len = if self.chance(20) {
                    self.below(2000)
                } else {
                    self.below(12)
                };
                (0..len)
                    .map(|_| match self.below(3) {
                        0 => char::from(b'a' + self.below(26) as u8),
                        1 => char::from_u32(self.below(0x800) as u32).unwrap_or('?'),
                        _ => char::from_u32(self.below(0x11_0000) as u32).unwrap_or('�'),
                    })
                    .collect()
            }
            _ => format!("{}-{}", self.pick(WORDS), self.below(1000)),
        }
    }

    fn strings(&mut self) -> Vec<String> {
        let n = if self.chance(10) {
            self.below(20)
        } else {
            self.below(4)
        };
        (0..n).map(|_| self.string()).collect()
    }

    fn option<T>(&mut self, value: impl FnOnce(&mut Self) -> T) -> Option<T> {
        (!self.chance(3)).then(|| value(self))
    }

    fn presence(&mut self) -> Presence {
        match self.below(3) {
            0 => Presence::Online,
            1 => Presence::Away,
            _ => Presence::Offline,
        }
    }

    fn agent(&mut self) -> Agent {
        let capacity = self.u32();
        Agent {
            id: if self.chance(2) {
                format!("agent-{}", self.below(5))
            } else {
                self.string()
            },
            name: self.string(),
            skills: self.strings(),
            languages: self.strings(),
            accounts: self.strings(),
            capacity,
            load: if self.chance(2) {
                self.below(u64::from(capacity) + 1) as u32
            } else {
                self.u32()
            },
            presence: self.presence(),
            last_assigned_at: self.option(Self::u64),
        }
    }

    /// A routing context: 0–200 agents (mostly a few), every field drawn.
    fn context(&mut self, text: Option<&str>) -> RoutingContext {
        let agents = if self.chance(6) {
            self.below(201)
        } else {
            self.below(12)
        };
        let now = self.u64();
        RoutingContext {
            conversation: RoutingConversation {
                id: self.string(),
                channel: self.string(),
                account: self.string(),
                brand: self.option(Self::string),
                language: self.option(Self::string),
                customer: self.string(),
                kind: match self.below(3) {
                    0 => MessageKind::PublicPost,
                    1 => MessageKind::PrivateMessage,
                    _ => MessageKind::Comment,
                },
                text: match text {
                    Some(text) => text.to_string(),
                    None => self.string(),
                },
                priority: self.next() as u8,
                previous_agent: self.option(|r| format!("agent-{}", r.below(5))),
                // Often inside sticky's window.
                previous_agent_at: self.option(|r| {
                    if r.chance(2) {
                        now.saturating_sub(r.below(2 * 60 * 60_000))
                    } else {
                        r.u64()
                    }
                }),
                waiting_since: self.u64(),
            },
            agents: (0..agents).map(|_| self.agent()).collect(),
            queue: QueueStats {
                waiting: self.u32(),
                oldest_wait_ms: self.u64(),
                average_handle_ms: self.u64(),
            },
            now,
            roster_version: 0,
        }
    }
}

/// The seed: `CENTRALINO_FAST_PATH_SEED` if set, else a fresh one per run.
fn seed() -> u64 {
    if let Some(seed) = std::env::var("CENTRALINO_FAST_PATH_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return seed;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Rng(now.as_nanos() as u64 ^ u64::from(std::process::id())).next()
}

/// A decision or an error, comparable across the two paths.
fn outcome(result: Result<RoutingDecision, Error>) -> Result<RoutingDecision, String> {
    result.map_err(|e| e.to_string())
}

/// What `hostile-router`'s echo writes for `agents`, as the host holds them.
fn echo(agents: &[Agent]) -> String {
    agents
        .iter()
        .map(|a| {
            format!(
                "{}|{}|{}|{}|{}|{}|{}|{}|{:?}",
                a.id,
                a.name,
                a.skills.join(","),
                a.languages.join(","),
                a.accounts.join(","),
                a.capacity,
                a.load,
                match a.presence {
                    Presence::Online => "online",
                    Presence::Away => "away",
                    Presence::Offline => "offline",
                },
                a.last_assigned_at
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Routes `contexts` random contexts through both paths of `policy` and compares every
/// decision; with `text`, every conversation says it (the echo). Returns how many decisions
/// were compared.
async fn differential(
    policy: &str,
    settings: &[(&str, &str)],
    contexts: usize,
    text: Option<&str>,
    check: impl Fn(&RoutingContext, &RoutingDecision) -> Result<(), String>,
) -> usize {
    let seed = seed();
    let mut rng = Rng(seed);
    let mut fast = instance(policy, settings, RouteCall::Borrowed);
    let mut generated = instance(policy, settings, RouteCall::Generated);
    let replay = format!(
        "{policy} {settings:?}: replay with CENTRALINO_FAST_PATH_SEED={seed} cargo nextest run \
         -p centralino --lib -E 'test(fast_path::)'"
    );
    let started = std::time::Instant::now();
    let mut agents = 0;
    // Assign, narrow, enqueue, pass, error: so the log shows the contexts reach each.
    let mut seen = [0usize; 5];
    for n in 0..contexts {
        let context = rng.context(text);
        agents += context.agents.len();
        let by_fast = outcome(fast.route(&context).await);
        let by_generated = outcome(generated.route(&context).await);
        assert_eq!(
            by_fast, by_generated,
            "context {n} of seed {seed}: the fast path and the generated bindings disagree \
             ({replay}); context: {context:?}"
        );
        seen[match &by_fast {
            Ok(d) => match d.action {
                RoutingAction::Assign(_) => 0,
                RoutingAction::Narrow(_) => 1,
                RoutingAction::Enqueue => 2,
                RoutingAction::Pass => 3,
            },
            Err(_) => 4,
        }] += 1;
        if let Ok(decision) = &by_fast
            && let Err(problem) = check(&context, decision)
        {
            panic!("context {n} of seed {seed}: {problem} ({replay}); context: {context:?}");
        }
    }
    assert_eq!(fast.instances_started(), generated.instances_started());
    eprintln!(
        "{policy} {settings:?}: {contexts} contexts ({agents} agents) through both paths in \
         {:?}, seed {seed}; assign/narrow/enqueue/pass/error: {seen:?}",
        started.elapsed()
    );
    contexts
}

fn anything(_: &RoutingContext, _: &RoutingDecision) -> Result<(), String> {
    Ok(())
}

/// What an echo guest answers in `echo` mode: a pass whose reason writes out every agent
/// as the guest received it, which must be as the host sent it.
fn echoes_every_agent(context: &RoutingContext, decision: &RoutingDecision) -> Result<(), String> {
    let expected = echo(&context.agents);
    if decision.action == RoutingAction::Pass && decision.reason == expected {
        Ok(())
    } else {
        Err(format!(
            "the guest received other agents than the host sent: got {decision:?}, expected \
             the echo {expected:?}"
        ))
    }
}

/// Contexts per policy: 3,600 in all, a few seconds on 2 cores in a debug build.
const CONTEXTS: usize = 600;

#[tokio::test]
async fn least_loaded_as_released_for_0_1_decides_the_same_through_both_paths() {
    differential("least-loaded-v0-1-0", &[], CONTEXTS, None, anything).await;
}

/// The echo guests that keep the roster: contract 0.2's and 0.3's.
const ROSTER_ECHOES: [&str; 2] = ["roster-echo-v0-2-0", "roster-echo"];

#[tokio::test]
async fn every_candidate_reaches_a_0_2_or_0_3_policy_as_the_host_holds_it_through_both_paths() {
    for guest in ROSTER_ECHOES {
        differential(guest, &[], CONTEXTS / 2, Some("echo"), echoes_every_agent).await;
    }
}

/// The conversation, the queue and the time reach a 0.2 or 0.3 policy as the host holds
/// them, field by field: under 0.2 written into the guest by hand (`context_lowering.rs`),
/// under 0.3 as numbers for the repeating strings, the rest asked of the host.
#[tokio::test]
async fn the_conversation_reaches_a_0_2_or_0_3_policy_as_the_host_holds_it_through_both_paths() {
    for guest in ROSTER_ECHOES {
        differential(
            guest,
            &[],
            CONTEXTS / 2,
            Some("conversation"),
            |context, decision| {
                let c = &context.conversation;
                let q = &context.queue;
                let kind = match c.kind {
                    MessageKind::PublicPost => 0,
                    MessageKind::PrivateMessage => 1,
                    MessageKind::Comment => 2,
                };
                let expected = format!(
                    "{}|{}|{}|{:?}|{:?}|{}|{}|{}|{}|{:?}|{:?}|{}|{}|{}|{}|{}",
                    c.id,
                    c.channel,
                    c.account,
                    c.brand,
                    c.language,
                    c.customer,
                    kind,
                    c.text,
                    c.priority,
                    c.previous_agent,
                    c.previous_agent_at,
                    c.waiting_since,
                    q.waiting,
                    q.oldest_wait_ms,
                    q.average_handle_ms,
                    context.now
                );
                if decision.action == RoutingAction::Pass && decision.reason == expected {
                    Ok(())
                } else {
                    Err(format!(
                        "the guest saw another conversation than the host sent: got \
                     {decision:?}, expected the echo {expected:?}"
                    ))
                }
            },
        )
        .await;
    }
}

#[tokio::test]
async fn round_robin_decides_the_same_through_both_paths() {
    differential("round-robin", &[], CONTEXTS, None, anything).await;
}

#[tokio::test]
async fn least_loaded_decides_the_same_through_both_paths() {
    differential("least-loaded", &[], CONTEXTS, None, anything).await;
}

#[tokio::test]
async fn skills_decides_the_same_through_both_paths() {
    differential("skills", &[], CONTEXTS / 2, None, anything).await;
    differential(
        "skills",
        &[("require_language", "false")],
        CONTEXTS / 2,
        None,
        anything,
    )
    .await;
}

#[tokio::test]
async fn sticky_decides_the_same_through_both_paths() {
    differential(
        "sticky",
        &[("window_minutes", "60")],
        CONTEXTS,
        None,
        anything,
    )
    .await;
}

#[tokio::test]
async fn priority_decides_the_same_through_both_paths() {
    let settings = [
        ("keywords", "guasto,down,non funziona,日本語"),
        ("level", "7"),
    ];
    differential("priority", &settings, CONTEXTS, None, anything).await;
}

#[tokio::test]
async fn every_agent_arrives_as_the_host_holds_it_through_both_paths() {
    differential(
        "hostile-router",
        &[],
        CONTEXTS,
        Some("echo"),
        echoes_every_agent,
    )
    .await;
}

#[test]
fn a_failed_self_check_chooses_the_generated_bindings() {
    let failed = || Err("router.agent is 80 bytes".to_string());
    assert_eq!(RouteCall::chosen(None, failed), RouteCall::Generated);
    assert_eq!(RouteCall::chosen(None, || Ok(())), RouteCall::Borrowed);
    // An explicit choice is not second-guessed.
    assert_eq!(
        RouteCall::chosen(Some(RouteCall::Borrowed), failed),
        RouteCall::Borrowed
    );
    assert_eq!(
        RouteCall::chosen(Some(RouteCall::Generated), || Ok(())),
        RouteCall::Generated
    );
}

#[test]
fn a_default_runtime_takes_the_fast_path_on_this_wasmtime() {
    assert_eq!(Runtime::new().unwrap().route_call(), RouteCall::Borrowed);
}

/// The fallback on its own: decisions the routing policies' tests expect, faults and
/// instance replacement, as on the fast path.
#[tokio::test]
async fn the_generated_bindings_route_and_recover_on_their_own() {
    let agent = |id: &str, load: u32, capacity: u32| Agent {
        id: id.to_string(),
        name: id.to_string(),
        skills: vec!["tim".to_string()],
        languages: vec!["it".to_string()],
        accounts: vec![format!("TIM_{id}")],
        capacity,
        load,
        presence: Presence::Online,
        last_assigned_at: None,
    };
    let mut context = Rng(1).context(Some("ciao"));
    context.agents = vec![
        agent("full", 1, 1),
        agent("half", 2, 4),
        agent("two-thirds", 2, 3),
    ];
    let mut least_loaded = instance("least-loaded", &[], RouteCall::Generated);
    let decision = least_loaded.route(&context).await.unwrap();
    assert_eq!(decision.action, RoutingAction::Assign("half".to_string()));
    assert_eq!(decision.reason, "least-loaded: half holds 2 of 4");

    let mut hostile = instance("hostile-router", &[], RouteCall::Generated);
    context.conversation.text = "echo".to_string();
    let decision = hostile.route(&context).await.unwrap();
    assert_eq!(decision.reason, echo(&context.agents));
    context.conversation.text = "panic".to_string();
    match hostile.route(&context).await {
        Err(Error::Fault {
            fault: Fault::Trap, ..
        }) => {}
        other => panic!("expected a trap, got {other:?}"),
    }
    context.conversation.text = "ciao".to_string();
    let decision = hostile.route(&context).await.unwrap();
    assert_eq!(decision.action, RoutingAction::Assign("full".to_string()));
    assert_eq!(hostile.instances_started(), 2);
}

mod roster_changes;

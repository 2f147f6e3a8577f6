//! The admin's routing chain: policy plugins run in order, each seeing what the stages
//! before it left.
//!
//! A chain is written as stages joined by `>`, each a plugin name with optional settings
//! in parentheses, separated by `;` (values may contain commas):
//!
//! ```text
//! priority(keywords=guasto,down; level=7) > sticky(window_minutes=60) > skills > least-loaded
//! ```
//!
//! A name is looked up as `<plugin dir>/<name>.wasm`; a path (with `/` or ending in
//! `.wasm`) is used as is.
//!
//! Semantics, per the contract's `router` interface:
//!
//! | stage says | the chain |
//! | --- | --- |
//! | `assign(id)` | stops; `id` gets it (if it is a candidate who can take it, see below) |
//! | `narrow(ids)` | keeps only those candidates, in that order; none left queues it |
//! | `enqueue` | stops; the conversation waits |
//! | `pass` | goes on with the same candidates |
//! | `priority: some(p)` | later stages and the queue see priority `p` |
//!
//! When the last stage is done without an assignment, the first candidate who can take the
//! conversation (online within their hours, under capacity) gets it; if there is none, it
//! waits. The chain guards the operators' limits itself: an `assign` naming someone who is
//! not a candidate, is away or is full is ignored and counted against the stage, and
//! `narrow` cannot bring back an operator an earlier stage dropped.
//!
//! A stage that fails (its own error, a trap, a deadline) must not lose the conversation:
//! the failure is logged (the error names the plugin and version), counted, and the stage
//! counts as `pass`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, RoutingError};
use crate::runtime::{PluginLimits, RouterInstance, Runtime};
use crate::types::{Agent, Pairs, Presence, RoutingAction, RoutingContext};

/// One stage as written: a plugin and its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageSpec {
    /// Plugin name (`least-loaded`) or path to a component.
    pub plugin: String,
    /// Settings passed to the plugin's `configure`.
    pub settings: Pairs,
}

/// A chain as written by the admin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSpec {
    /// Stages, first to last.
    pub stages: Vec<StageSpec>,
}

impl fmt::Display for ChainSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, stage) in self.stages.iter().enumerate() {
            if index > 0 {
                f.write_str(" > ")?;
            }
            f.write_str(&stage.plugin)?;
            if !stage.settings.is_empty() {
                let settings: Vec<String> = stage
                    .settings
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect();
                write!(f, "({})", settings.join("; "))?;
            }
        }
        Ok(())
    }
}

/// Splits `text` at `separator` where it is not inside parentheses.
fn split_top_level(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if c == separator && depth == 0 => {
                parts.push(&text[start..at]);
                start = at + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_stage(text: &str) -> Result<StageSpec, String> {
    let text = text.trim();
    let (plugin, settings) = match text.split_once('(') {
        Some((plugin, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| format!("stage `{text}` opens `(` but does not end with `)`"))?;
            (plugin.trim(), Some(inner))
        }
        None => (text, None),
    };
    if plugin.is_empty() {
        return Err("a stage has no plugin name".to_string());
    }
    if plugin.contains([')', ' ']) {
        return Err(format!("`{plugin}` is not a plugin name"));
    }
    let mut pairs = Vec::new();
    for setting in settings.into_iter().flat_map(|s| s.split(';')) {
        if setting.trim().is_empty() {
            continue;
        }
        let (key, value) = setting.split_once('=').ok_or_else(|| {
            format!(
                "setting `{}` of {plugin} is not `name=value`",
                setting.trim()
            )
        })?;
        pairs.push((key.trim().to_string(), value.trim().to_string()));
    }
    Ok(StageSpec {
        plugin: plugin.to_string(),
        settings: pairs,
    })
}

impl FromStr for ChainSpec {
    type Err = RoutingError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| RoutingError::ChainSpec {
            spec: text.to_string(),
            reason,
        };
        if text.trim().is_empty() {
            return Err(error("no stages".to_string()));
        }
        let stages = split_top_level(text, '>')
            .into_iter()
            .map(parse_stage)
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?;
        Ok(ChainSpec { stages })
    }
}

impl StageSpec {
    /// Where the component is: a path as given, or `<dir>/<name>.wasm`.
    pub fn component_path(&self, plugin_dir: &Path) -> PathBuf {
        if self.plugin.contains('/') || self.plugin.ends_with(".wasm") {
            PathBuf::from(&self.plugin)
        } else {
            plugin_dir.join(format!("{}.wasm", self.plugin))
        }
    }
}

/// What a stage did with one conversation, for logs, shadow comparisons and replays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum StepOutcome {
    /// The stage decided; its reason is kept.
    Decided {
        /// The action.
        action: RoutingAction,
        /// The stage's reason.
        reason: String,
    },
    /// The stage assigned someone who cannot take the conversation; treated as `pass`.
    Ignored {
        /// Why the assignment was ignored.
        reason: String,
    },
    /// The stage failed, or was skipped because it is resting after failing several
    /// times in a row; treated as `pass`.
    Failed {
        /// The error, naming the plugin.
        error: String,
    },
}

/// One stage's part in a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The stage's plugin and version (`skills@0.1.0`).
    pub stage: String,
    /// What happened.
    pub outcome: StepOutcome,
}

/// Where the conversation goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "to", content = "operator", rename_all = "kebab-case")]
pub enum Outcome {
    /// To this operator.
    Assign(String),
    /// To the queue.
    Queue,
}

/// The chain's decision for one conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainDecision {
    /// Where it goes.
    pub outcome: Outcome,
    /// The conversation's priority after every stage had its say.
    pub priority: u8,
    /// Why, in a few words: the deciding stage's reason, or the chain's own.
    pub reason: String,
    /// Each stage that ran, in order.
    pub steps: Vec<Step>,
}

struct Stage {
    label: String,
    instance: RouterInstance,
    failures: u64,
    /// Failures since its last answer.
    in_a_row: u32,
    /// Skipped until then (ms since the epoch, on the decisions' clock).
    resting_until: Option<u64>,
}

/// Failures in a row after which a stage rests (is skipped without being called).
const REST_AFTER: u32 = 3;

/// The first rest; each further failure in a row doubles it, up to [`LONGEST_REST_MS`].
const FIRST_REST_MS: u64 = 1_000;

/// The longest rest.
const LONGEST_REST_MS: u64 = 60_000;

impl Stage {
    /// Counts a failure; after [`REST_AFTER`] in a row the stage rests, a little longer
    /// each time, so a broken policy stops costing every decision a failed call (and a
    /// fresh instance). The first call after a rest is a trial: an answer ends the rests.
    fn failed(&mut self, now: u64) {
        self.failures += 1;
        self.in_a_row = self.in_a_row.saturating_add(1);
        if self.in_a_row >= REST_AFTER {
            let doublings = (self.in_a_row - REST_AFTER).min(16);
            let rest = FIRST_REST_MS
                .saturating_mul(1 << doublings)
                .min(LONGEST_REST_MS);
            self.resting_until = Some(now.saturating_add(rest));
            tracing::warn!(
                stage = %self.label,
                failures_in_a_row = self.in_a_row,
                rest_ms = rest,
                "routing stage rests: it is skipped until then"
            );
        }
    }

    /// Why the stage is skipped now, if it is resting.
    fn resting(&self, now: u64) -> Option<String> {
        let until = self.resting_until.filter(|until| now < *until)?;
        Some(format!(
            "plugin {} failed {} times in a row and rests for {} ms more; stage skipped",
            self.label,
            self.in_a_row,
            until - now
        ))
    }
}

/// A loaded chain: one plugin instance per stage.
pub struct PolicyChain {
    spec: String,
    stages: Vec<Stage>,
}

impl fmt::Debug for PolicyChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyChain")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

fn can_take(agent: &Agent) -> bool {
    agent.presence == Presence::Online && agent.load < agent.capacity
}

impl PolicyChain {
    /// A chain over instances the caller created (settings already given to them).
    pub fn new(stages: Vec<RouterInstance>) -> Self {
        let stages: Vec<Stage> = stages
            .into_iter()
            .map(|instance| Stage {
                label: instance.id().to_string(),
                instance,
                failures: 0,
                in_a_row: 0,
                resting_until: None,
            })
            .collect();
        let spec = stages
            .iter()
            .map(|s| s.instance.id().name.clone())
            .collect::<Vec<_>>()
            .join(" > ");
        PolicyChain { spec, stages }
    }

    /// Loads every stage of `spec` from `plugin_dir` and configures it, so a missing
    /// plugin or a bad setting is reported now, naming the plugin, and not on the first
    /// customer's message.
    pub async fn load(
        runtime: &Runtime,
        spec: &ChainSpec,
        plugin_dir: &Path,
        limits: &PluginLimits,
    ) -> Result<Self, RoutingError> {
        let mut stages = Vec::with_capacity(spec.stages.len());
        for stage in &spec.stages {
            let plugin = runtime
                .load_router(stage.component_path(plugin_dir))
                .map_err(Error::from)?;
            let mut instance = plugin.instance(stage.settings.clone(), limits.clone());
            instance.ready().await.map_err(Error::from)?;
            stages.push(instance);
        }
        let mut chain = PolicyChain::new(stages);
        chain.spec = spec.to_string();
        Ok(chain)
    }

    /// The chain as written.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// Failures per stage so far (stage label, count).
    pub fn failures(&self) -> Vec<(String, u64)> {
        self.stages
            .iter()
            .map(|s| (s.label.clone(), s.failures))
            .collect()
    }

    /// All stage failures so far.
    pub fn total_failures(&self) -> u64 {
        self.stages.iter().map(|s| s.failures).sum()
    }

    /// Runs the chain for one conversation. Never fails: a stage that fails is skipped.
    #[cfg_attr(feature = "test-support", visibility::make(pub))]
    pub(crate) async fn decide(&mut self, context: &mut RoutingContext) -> ChainDecision {
        let mut steps = Vec::with_capacity(self.stages.len());
        for stage in &mut self.stages {
            if let Some(error) = stage.resting(context.now) {
                steps.push(Step {
                    stage: stage.label.clone(),
                    outcome: StepOutcome::Failed { error },
                });
                continue;
            }
            let decision = match stage.instance.route(context).await {
                Ok(decision) => {
                    stage.in_a_row = 0;
                    stage.resting_until = None;
                    decision
                }
                Err(error) => {
                    stage.failed(context.now);
                    tracing::warn!(
                        conversation = %context.conversation.id,
                        "{error}; routing stage treated as pass"
                    );
                    steps.push(Step {
                        stage: stage.label.clone(),
                        outcome: StepOutcome::Failed {
                            error: error.to_string(),
                        },
                    });
                    continue;
                }
            };
            if let Some(priority) = decision.priority {
                context.conversation.priority = priority;
            }
            let step = |outcome| Step {
                stage: stage.label.clone(),
                outcome,
            };
            // Each arm moves the stage's action and reason into its step (a narrow's ids
            // are not copied for the record) and copies only what it also returns.
            let reason = decision.reason;
            let decided = |action, reason| StepOutcome::Decided { action, reason };
            match decision.action {
                RoutingAction::Assign(id) => {
                    match context.agents.iter().find(|agent| agent.id == id) {
                        Some(agent) if can_take(agent) => {
                            let action = RoutingAction::Assign(id.clone());
                            steps.push(step(decided(action, reason.clone())));
                            return ChainDecision {
                                outcome: Outcome::Assign(id),
                                priority: context.conversation.priority,
                                reason,
                                steps,
                            };
                        }
                        found => {
                            let why = if found.is_some() {
                                "cannot take a conversation now"
                            } else {
                                "is not a candidate"
                            };
                            let reason = format!(
                                "plugin {} assigned `{id}`, who {why}; stage treated as pass",
                                stage.label
                            );
                            stage.failures += 1;
                            tracing::warn!(conversation = %context.conversation.id, "{reason}");
                            steps.push(step(StepOutcome::Ignored { reason }));
                        }
                    }
                }
                RoutingAction::Narrow(ids) => {
                    let agents = std::mem::take(&mut context.agents);
                    context.agents = super::narrow::keep(agents, &ids);
                    // Nobody left queues the conversation, for the stage's reason.
                    let queued = context.agents.is_empty().then(|| reason.clone());
                    steps.push(step(decided(RoutingAction::Narrow(ids), reason)));
                    if let Some(reason) = queued {
                        return ChainDecision {
                            outcome: Outcome::Queue,
                            priority: context.conversation.priority,
                            reason,
                            steps,
                        };
                    }
                }
                RoutingAction::Enqueue => {
                    steps.push(step(decided(RoutingAction::Enqueue, reason.clone())));
                    return ChainDecision {
                        outcome: Outcome::Queue,
                        priority: context.conversation.priority,
                        reason,
                        steps,
                    };
                }
                RoutingAction::Pass => steps.push(step(decided(RoutingAction::Pass, reason))),
            }
        }
        let priority = context.conversation.priority;
        match context.agents.iter().find(|agent| can_take(agent)) {
            Some(agent) => ChainDecision {
                outcome: Outcome::Assign(agent.id.clone()),
                priority,
                reason: format!("chain end: {} is the first candidate free", agent.id),
                steps,
            },
            None => ChainDecision {
                outcome: Outcome::Queue,
                priority,
                reason: "chain end: no candidate can take it now".to_string(),
                steps,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_spec_reads_stages_and_settings_with_commas() {
        let spec: ChainSpec =
            "priority(keywords=guasto,down; level=7) > sticky(window_minutes=60) > skills > least-loaded"
                .parse()
                .unwrap();
        let names: Vec<&str> = spec.stages.iter().map(|s| s.plugin.as_str()).collect();
        assert_eq!(names, ["priority", "sticky", "skills", "least-loaded"]);
        assert_eq!(
            spec.stages[0].settings,
            vec![
                ("keywords".to_string(), "guasto,down".to_string()),
                ("level".to_string(), "7".to_string())
            ]
        );
        assert!(spec.stages[2].settings.is_empty());
        // Display writes it back in the same form.
        assert_eq!(spec.to_string().parse::<ChainSpec>().unwrap(), spec);
    }

    #[test]
    fn a_bad_chain_spec_says_what_is_wrong() {
        for (text, expected) in [
            ("", "no stages"),
            ("skills >", "a stage has no plugin name"),
            ("sticky(window_minutes)", "is not `name=value`"),
            ("sticky(window_minutes=5", "does not end with `)`"),
        ] {
            let err = text.parse::<ChainSpec>().unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn plugin_names_resolve_in_the_plugin_dir_and_paths_stay_paths() {
        let dir = Path::new("target/plugins");
        let spec: ChainSpec = "skills > ./mine/custom.wasm".parse().unwrap();
        assert_eq!(
            spec.stages[0].component_path(dir),
            PathBuf::from("target/plugins/skills.wasm")
        );
        assert_eq!(
            spec.stages[1].component_path(dir),
            PathBuf::from("./mine/custom.wasm")
        );
    }
}

//! `skills`: a routing policy that keeps only the operators who can serve this
//! conversation: its brand, and its language when known.
//!
//! - **Brand**: when the receiving account belongs to a brand, only operators whose skills
//!   contain that brand stay. A conversation without a brand is not filtered by brand.
//! - **Language**: when the language is known, only operators who speak it stay
//!   (`require_language=true`, the default). With `require_language=false` nobody is
//!   dropped for language: speakers come first, then the others, so a later stage prefers a
//!   speaker but an Italian-only operator can still take an English tweet when nobody else
//!   is free.
//!
//! Skills and languages compare without regard to ASCII case (`TIM` = `tim`). The stage
//! narrows and never assigns: presence and capacity are for the stages after it. An empty
//! result queues the conversation, which is right: nobody on the roster can serve it.
//!
//! Settings: `require_language` = `true` | `false` (default `true`).

centralino_sdk::small_object_allocator!();

use centralino_sdk::routing::{AgentHandle, Decision, RoutingContext};
use centralino_sdk::{PluginError, Result, Router, reason};

struct Skills {
    /// Whether a known language must be spoken (`require_language`).
    require_language: bool,
}

fn has(list: &[String], wanted: &str) -> bool {
    list.iter().any(|item| item.eq_ignore_ascii_case(wanted))
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(PluginError::InvalidInput(format!(
            "skills: `{key}` must be `true` or `false`, got `{other}`"
        ))),
    }
}

impl Router for Skills {
    fn configure(settings: Vec<(String, String)>) -> Result<Self> {
        let mut require_language = true;
        for (key, value) in &settings {
            match key.as_str() {
                "require_language" => require_language = parse_bool(key, value)?,
                other => {
                    return Err(PluginError::InvalidInput(format!(
                        "skills: unknown setting `{other}` (known: `require_language`)"
                    )));
                }
            }
        }
        Ok(Skills { require_language })
    }

    fn route(&mut self, context: &RoutingContext<'_>) -> Result<Decision> {
        // Both announced to the instance once and resolved by the SDK: no call to the host.
        let brand = context.conversation.brand();
        let language = context.conversation.language();
        // The kept operators' handles, speakers first: a loop that pushes 4-byte handles,
        // not a partition into two vectors of `Operator`s (72 bytes each, copied twice in
        // wasm: about a third of this stage at 200 operators, `BENCHMARKS.md` §1).
        let mut kept: Vec<AgentHandle> = Vec::with_capacity(context.len());
        let mut others: Vec<AgentHandle> = Vec::new();
        for op in context.candidates() {
            if !brand.is_none_or(|brand| has(op.skills, brand)) {
                continue;
            }
            if language.is_none_or(|lang| has(op.languages, lang)) {
                kept.push(op.handle);
            } else if !self.require_language {
                // Without `require_language`, those who do not speak it stay, behind the
                // speakers.
                others.push(op.handle);
            }
        }
        kept.extend(others);
        let reason = reason!(
            "skills: ",
            kept.len(),
            " of ",
            context.len(),
            " operators serve brand ",
            brand.unwrap_or("(any)"),
            " in language ",
            language.unwrap_or("(any)")
        );
        Ok(Decision::narrow_to(kept, reason))
    }
}

centralino_sdk::export_router!(Skills);

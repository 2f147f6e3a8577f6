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

wit_bindgen::generate!({ path: "../../wit", world: "routing-policy" });
centralino_sdk::plugin_metadata!();
centralino_sdk::small_object_allocator!();

use std::cell::Cell;

use centralino::plugin::types::PluginError;
use exports::centralino::plugin::router::{Action, Agent, Context, Decision, Guest};

thread_local! {
    /// Whether a known language must be spoken (`require_language`).
    static REQUIRE_LANGUAGE: Cell<bool> = const { Cell::new(true) };
}

struct Skills;

fn has(list: &[String], wanted: &str) -> bool {
    list.iter().any(|item| item.eq_ignore_ascii_case(wanted))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, PluginError> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(PluginError::InvalidInput(format!(
            "skills: `{key}` must be `true` or `false`, got `{other}`"
        ))),
    }
}

impl Guest for Skills {
    fn configure(settings: Vec<(String, String)>) -> Result<(), PluginError> {
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
        REQUIRE_LANGUAGE.set(require_language);
        Ok(())
    }

    fn route(context: Context) -> Result<Decision, PluginError> {
        let conversation = &context.conversation;
        let brand = conversation.brand.as_deref();
        let language = conversation.language.as_deref();
        let with_brand: Vec<&Agent> = context
            .agents
            .iter()
            .filter(|agent| brand.is_none_or(|brand| has(&agent.skills, brand)))
            .collect();
        let speaks = |agent: &Agent| language.is_none_or(|lang| has(&agent.languages, lang));
        let (speakers, others): (Vec<&Agent>, Vec<&Agent>) =
            with_brand.into_iter().partition(|agent| speaks(agent));
        // Without `require_language`, those who do not speak it stay, behind the speakers.
        let others = if REQUIRE_LANGUAGE.get() {
            Vec::new()
        } else {
            others
        };
        let kept: Vec<String> = speakers
            .iter()
            .chain(others.iter())
            .map(|agent| agent.id.clone())
            .collect();
        let reason = format!(
            "skills: {} of {} operators serve brand {} in language {}",
            kept.len(),
            context.agents.len(),
            brand.unwrap_or("(any)"),
            language.unwrap_or("(any)")
        );
        Ok(Decision {
            action: Action::Narrow(kept),
            priority: None,
            reason,
        })
    }
}

export!(Skills);

//! Test guest: a routing policy written against `centralino:plugin@2.0.0`, a major version
//! this host does not serve. The host must refuse it before instantiating it, naming the
//! plugin and both versions.

wit_bindgen::generate!({
    inline: r#"
        package centralino:plugin@2.0.0;

        interface router {
            route: func(conversation-id: string, agent-ids: list<string>) -> option<string>;
        }

        world routing-policy {
            export router;
        }
    "#,
    world: "routing-policy",
});
centralino_sdk::plugin_metadata!(contract = "2.0.0");

struct Future;

impl exports::centralino::plugin::router::Guest for Future {
    fn route(_conversation_id: String, agent_ids: Vec<String>) -> Option<String> {
        agent_ids.into_iter().next()
    }
}

export!(Future);

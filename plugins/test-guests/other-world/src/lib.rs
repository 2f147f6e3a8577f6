//! Test guest: a well-formed component that exports something other than a centralino
//! world. The host must refuse it with a message naming what it found.

wit_bindgen::generate!({
    inline: r#"
        package acme:greeter@1.0.0;

        interface greet {
            hello: func(name: string) -> string;
        }

        world greeter {
            export greet;
        }
    "#,
    world: "greeter",
});
centralino_sdk::plugin_metadata!();

struct Greeter;

impl exports::acme::greeter::greet::Guest for Greeter {
    fn hello(name: String) -> String {
        format!("ciao {name}")
    }
}

export!(Greeter);

//! Test guest: a contract 0.3 routing policy (on the SDK) that reads WASI's monotonic
//! clock in every decision. The clock is not one of the standard streams, so the host
//! links this policy with wasmtime's full WASI and calls it on a fiber, where the in-tree
//! policies (standard streams alone) are called without one. It assigns the first
//! candidate, with the clock's reading in the reason.
//!
//! The import is declared here rather than left to the standard library, so the
//! component imports the clock whichever way the plugins are built (`wasm32-wasip2`, or
//! `wasm32-unknown-unknown` wrapped by `wasm-tools`, whose `std` imports no WASI).

wit_bindgen::generate!({
    inline: r#"
        package centralino-test:wasi-clock-router;

        world clock-user {
            import wasi:clocks/monotonic-clock@0.2.12;
        }

        package wasi:io@0.2.12 {
            interface poll {
                resource pollable {
                    ready: func() -> bool;
                    block: func();
                }
                poll: func(in: list<borrow<pollable>>) -> list<u32>;
            }
        }

        package wasi:clocks@0.2.12 {
            interface monotonic-clock {
                use wasi:io/poll@0.2.12.{pollable};
                type instant = u64;
                type duration = u64;
                now: func() -> instant;
                resolution: func() -> duration;
                subscribe-instant: func(when: instant) -> pollable;
                subscribe-duration: func(when: duration) -> pollable;
            }
        }
    "#,
    world: "clock-user",
    generate_all,
});

use centralino_sdk::routing::{Decision, RoutingContext};
use centralino_sdk::{Result, Router};

struct ClockRouter;

impl Router for ClockRouter {
    fn configure(_settings: Vec<(String, String)>) -> Result<Self> {
        Ok(ClockRouter)
    }

    fn route(&mut self, context: &RoutingContext<'_>) -> Result<Decision> {
        let now = wasi::clocks::monotonic_clock::now();
        Ok(match context.candidates().next() {
            Some(op) => {
                Decision::assign(&op, format!("wasi-clock-router: first candidate at {now}"))
            }
            None => Decision::narrow([], format!("wasi-clock-router: nobody at {now}")),
        })
    }
}

centralino_sdk::export_router!(ClockRouter);

//! The floor under every decision: what wasmtime itself costs to enter a component and
//! come back, with no centralino code on the way. A component written in WAT exports
//! functions that do nothing: one without arguments, one taking a string, one taking seven
//! strings (the contract 0.2 conversation's seven strings; each string is a call of the
//! guest's `cabi_realloc` before the export runs), and two with the shape of a whole
//! `route` call for nine candidates:
//!
//! - **0.2's shape**: the seven strings, the candidates' list and the decision time: more
//!   than 16 flat values, so the arguments go through memory too (an argument area, one
//!   more `cabi_realloc`): ten entries into the guest per call;
//! - **a shape without strings**: the conversation passed as a borrowed handle of a
//!   host resource (which a policy asks for the strings it reads, one call each), the
//!   candidates' list and the time: one `cabi_realloc` and the call, the guest dropping
//!   the borrow before it returns, as the canonical ABI requires;
//! - **a flat shape**: the candidates' list, the time and the conversation's scalars,
//!   its repeating strings (channel, account, brand, language) as numbers announced once
//!   per instance like operators' handles, the rest asked for by the policies that read
//!   it: 12 flat values, so one `cabi_realloc` and the call.
//!
//! Each is called without a fiber (`TypedFunc::call`) and on one (`call_async`), in an
//! engine configured as the runtime's (component model, epoch interruption), interleaved
//! in rounds like the decision sides.
//!
//! The difference between a decision and this floor is what centralino and the policy
//! add; the floor itself moves only with wasmtime or the contract's shape.

use std::hint::black_box;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, Resource, ResourceType, TypedFunc};
use wasmtime::{Config, Engine, Store};

use crate::stats::{Ways, interleaved};

/// Exports that do nothing; `realloc` hands out the same scratch block every time (the
/// arguments are never read). `route-02` takes its arguments through memory (17 flat
/// values), `route-handle` drops its borrowed conversation and returns, `route-flat` takes
/// 12 flat values.
const COMPONENT: &str = r#"
(component
  (import "conversation" (type $conversation (sub resource)))
  (core func $drop (canon resource.drop $conversation))
  (core module $m
    (import "host" "drop" (func $drop (param i32)))
    (memory (export "memory") 1)
    (func (export "empty"))
    (func (export "one") (param i32 i32))
    (func (export "seven") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32))
    (func (export "route-02") (param i32))
    (func (export "route-handle") (param i32 i32 i32 i64) (call $drop (local.get 0)))
    (func (export "route-flat")
      (param i32 i32 i64 i32 i32 i64 i32 i32 i32 i32 i32 i32))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024)))
  (core instance $i (instantiate $m (with "host" (instance (export "drop" (func $drop))))))
  (func (export "route-02")
    (param "a" string) (param "b" string) (param "c" string) (param "d" string)
    (param "e" string) (param "f" string) (param "g" string)
    (param "candidates" (list u64)) (param "now" u64)
    (canon lift (core func $i "route-02")
      (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func (export "route-handle")
    (param "conversation" (borrow $conversation)) (param "candidates" (list u64))
    (param "now" u64)
    (canon lift (core func $i "route-handle")
      (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func (export "empty") (canon lift (core func $i "empty")))
  (func (export "one") (param "a" string)
    (canon lift (core func $i "one")
      (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func (export "seven")
    (param "a" string) (param "b" string) (param "c" string) (param "d" string)
    (param "e" string) (param "f" string) (param "g" string)
    (canon lift (core func $i "seven")
      (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func (export "route-flat")
    (param "candidates" (list u64)) (param "now" u64) (param "kind" u8)
    (param "priority" u8) (param "waiting-since" u64) (param "channel" u32)
    (param "account" u32) (param "brand" (option u32)) (param "language" (option u32))
    (canon lift (core func $i "route-flat")
      (memory (core memory $i "memory")) (realloc (core func $i "realloc")))))
"#;

/// Seven string arguments.
type Seven = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// The seven strings of a typical conversation (id, channel, account, brand, language,
/// customer, text).
const SEVEN: Seven = (
    "conv-000123",
    "twitter",
    "@TIM_Official",
    "tim",
    "it",
    "cliente_42",
    "la fibra non funziona da ieri sera",
);

/// Nine candidates' rows as the runtime writes them into the guest: four 64-bit words
/// each (`CandidateRow::write_all`), which a list of `u64` lowers by a copy as the
/// runtime's own lowering does (wasmtime's derived lowering of a record, field by field,
/// would cost more than the runtime pays).
const ROWS: [u64; 36] = [0x0001_0000_0003; 36];

/// The host resource a conversation would be in the shape without strings.
struct Conversation;

/// 0.2's shape: seven strings, the candidates, the time.
type Route02 = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [u64],
    u64,
);

/// Per-call medians in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Figure {
    /// No arguments: without a fiber, on a fiber.
    pub empty: [f64; 2],
    /// One string.
    pub one_string: [f64; 2],
    /// Seven strings.
    pub seven_strings: [f64; 2],
    /// A `route` of 0.2's shape, nine candidates.
    pub route_02: [f64; 2],
    /// A `route` with the conversation as a borrowed handle, nine candidates.
    pub route_handle: [f64; 2],
    /// A `route` of flat values, nine candidates.
    pub route_flat: [f64; 2],
}

struct Exports {
    store: Store<()>,
    empty: TypedFunc<(), ()>,
    one: TypedFunc<(&'static str,), ()>,
    seven: TypedFunc<Seven, ()>,
    route_02: TypedFunc<Route02, ()>,
    route_handle: TypedFunc<(Resource<Conversation>, &'static [u64], u64), ()>,
    route_flat: TypedFunc<RouteFlat, ()>,
}

/// The flat shape's arguments.
type RouteFlat = (
    &'static [u64],
    u64,
    u8,
    u8,
    u64,
    u32,
    u32,
    Option<u32>,
    Option<u32>,
);

/// The twelve ways: each export without a fiber, then on one.
const WAYS: usize = 12;

impl Ways for Exports {
    fn count(&self) -> usize {
        WAYS
    }

    async fn batch(&mut self, which: usize, n: u64) -> anyhow::Result<Duration> {
        // One arm per way, each calling its export directly: a generic async helper
        // choosing between `call` and `call_async` added about 20 ns to every call here.
        let store = &mut self.store;
        let started = Instant::now();
        for _ in 0..n {
            match which {
                0 => self.empty.call(&mut *store, ())?,
                1 => self.empty.call_async(&mut *store, ()).await?,
                2 => self.one.call(&mut *store, black_box((SEVEN.6,)))?,
                3 => {
                    self.one
                        .call_async(&mut *store, black_box((SEVEN.6,)))
                        .await?
                }
                4 => self.seven.call(&mut *store, black_box(SEVEN))?,
                5 => self.seven.call_async(&mut *store, black_box(SEVEN)).await?,
                6 => self.route_02.call(&mut *store, black_box(route_02()))?,
                7 => {
                    self.route_02
                        .call_async(&mut *store, black_box(route_02()))
                        .await?
                }
                8 => self.route_handle.call(&mut *store, route_handle())?,
                9 => {
                    self.route_handle
                        .call_async(&mut *store, route_handle())
                        .await?
                }
                10 => self.route_flat.call(&mut *store, black_box(route_flat()))?,
                _ => {
                    self.route_flat
                        .call_async(&mut *store, black_box(route_flat()))
                        .await?
                }
            }
        }
        Ok(started.elapsed())
    }
}

fn route_02() -> Route02 {
    let (a, b, c, d, e, f, g) = SEVEN;
    (a, b, c, d, e, f, g, &ROWS, 1_700_000_000_000)
}

fn route_handle() -> (Resource<Conversation>, &'static [u64], u64) {
    (
        Resource::new_borrow(black_box(7)),
        black_box(&ROWS),
        1_700_000_000_000,
    )
}

fn route_flat() -> RouteFlat {
    (
        &ROWS,
        1_700_000_000_000,
        1,
        0,
        1_699_999_990_000,
        1,
        3,
        Some(2),
        None,
    )
}

/// Times the twelve ways in `rounds` interleaved rounds of about `round_time` each.
pub async fn run(rounds: usize, round_time: Duration) -> anyhow::Result<Figure> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    let engine = Engine::new(&config)?;
    let component = Component::new(&engine, wat::parse_str(COMPONENT)?)?;
    let mut store = Store::new(&engine, ());
    // The deadline is never reached: nothing advances this engine's epoch.
    store.set_epoch_deadline(1);
    let mut linker = Linker::new(&engine);
    linker.root().resource(
        "conversation",
        ResourceType::host::<Conversation>(),
        |_, _| Ok(()),
    )?;
    let instance = linker.instantiate(&mut store, &component)?;
    let mut exports = Exports {
        empty: instance.get_typed_func(&mut store, "empty")?,
        one: instance.get_typed_func(&mut store, "one")?,
        seven: instance.get_typed_func(&mut store, "seven")?,
        route_02: instance.get_typed_func(&mut store, "route-02")?,
        route_handle: instance.get_typed_func(&mut store, "route-handle")?,
        route_flat: instance.get_typed_func(&mut store, "route-flat")?,
        store,
    };
    let timed = interleaved(&mut exports, rounds, round_time).await?;
    Ok(Figure {
        empty: [timed[0].ns, timed[1].ns],
        one_string: [timed[2].ns, timed[3].ns],
        seven_strings: [timed[4].ns, timed[5].ns],
        route_02: [timed[6].ns, timed[7].ns],
        route_handle: [timed[8].ns, timed[9].ns],
        route_flat: [timed[10].ns, timed[11].ns],
    })
}

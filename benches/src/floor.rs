//! The floor under every decision: what wasmtime itself costs to enter a component and
//! come back, with no centralino code on the way. A component written in WAT exports three
//! functions that do nothing: one without arguments, one taking a string, one taking seven
//! strings (the contract 0.2 conversation's seven strings; each string is a call of the
//! guest's `cabi_realloc` before the export runs). Each is called without a fiber
//! (`TypedFunc::call`) and on one (`call_async`), in an engine configured as the runtime's
//! (component model, epoch interruption), interleaved in rounds like the decision sides.
//!
//! The difference between a decision and this floor is what centralino and the policy
//! add; the floor itself moves only with wasmtime or the contract's shape.

use std::hint::black_box;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, TypedFunc};
use wasmtime::{Config, Engine, Store};

use crate::stats::{Ways, interleaved};

/// Three exports that do nothing; `realloc` hands out the same scratch block every time
/// (the strings are never read).
const COMPONENT: &str = r#"
(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "empty"))
    (func (export "one") (param i32 i32))
    (func (export "seven") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024)))
  (core instance $i (instantiate $m))
  (func (export "empty") (canon lift (core func $i "empty")))
  (func (export "one") (param "a" string)
    (canon lift (core func $i "one")
      (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func (export "seven")
    (param "a" string) (param "b" string) (param "c" string) (param "d" string)
    (param "e" string) (param "f" string) (param "g" string)
    (canon lift (core func $i "seven")
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

/// Per-call medians in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Figure {
    /// No arguments: without a fiber, on a fiber.
    pub empty: [f64; 2],
    /// One string.
    pub one_string: [f64; 2],
    /// Seven strings.
    pub seven_strings: [f64; 2],
}

struct Exports {
    store: Store<()>,
    empty: TypedFunc<(), ()>,
    one: TypedFunc<(&'static str,), ()>,
    seven: TypedFunc<Seven, ()>,
}

/// The six ways: each export without a fiber, then on one.
const WAYS: usize = 6;

impl Ways for Exports {
    fn count(&self) -> usize {
        WAYS
    }

    async fn batch(&mut self, which: usize, n: u64) -> anyhow::Result<Duration> {
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
                _ => self.seven.call_async(&mut *store, black_box(SEVEN)).await?,
            }
        }
        Ok(started.elapsed())
    }
}

/// Times the six ways in `rounds` interleaved rounds of about `round_time` each.
pub async fn run(rounds: usize, round_time: Duration) -> anyhow::Result<Figure> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    let engine = Engine::new(&config)?;
    let component = Component::new(&engine, wat::parse_str(COMPONENT)?)?;
    let mut store = Store::new(&engine, ());
    // The deadline is never reached: nothing advances this engine's epoch.
    store.set_epoch_deadline(1);
    let instance = Linker::new(&engine).instantiate(&mut store, &component)?;
    let mut exports = Exports {
        empty: instance.get_typed_func(&mut store, "empty")?,
        one: instance.get_typed_func(&mut store, "one")?,
        seven: instance.get_typed_func(&mut store, "seven")?,
        store,
    };
    let timed = interleaved(&mut exports, rounds, round_time).await?;
    Ok(Figure {
        empty: [timed[0].ns, timed[1].ns],
        one_string: [timed[2].ns, timed[3].ns],
        seven_strings: [timed[4].ns, timed[5].ns],
    })
}

//! The WASI a routing policy gets when it asks for no more than a program's standard
//! streams: stdin (always at its end), stdout and stderr (lines into the host log, under
//! the call's log budget, as WASI's own streams are), no environment, no arguments, and
//! `exit` as a fault. Every function answers at once, so an instance linked with these
//! alone never waits on the host, and the runtime calls its `route` without a fiber
//! (BENCHMARKS.md §1: 8–21% of a decision in the bench).
//!
//! These are the interfaces Rust's standard library imports on `wasm32-wasip2`; a policy
//! that imports anything else (clocks, random, files: a JavaScript or Python build) is
//! linked with wasmtime's full WASI instead, as before (`crate::bindings::Linkers`).

use wasmtime::component::{ComponentType, Linker, Lower, Resource, ResourceType};
use wasmtime::{StoreContextMut, bail};
use wasmtime_wasi::WasiView as _;

use crate::state::{LineWriter, PluginState};

/// The WASI release the interfaces are defined under; the linker also serves a plugin
/// that imports another 0.2 release (its semver-compatible lookup).
const WASI: &str = "0.2.6";

/// How much an output stream says it takes at once (`check-write`).
const WRITE_WINDOW: u64 = 64 * 1024;

/// `wasi:io/error.error`: never made here (no operation fails with one).
struct IoError;

/// `wasi:io/poll.pollable`: always ready.
struct Pollable;

/// `wasi:io/streams.input-stream`: stdin, always at its end.
struct InputStream;

/// `wasi:io/streams.output-stream`: stdout or stderr, line by line into the host log.
struct OutputStream(LineWriter);

/// `wasi:cli/terminal-input.terminal-input`: never handed out (no stream is a terminal).
struct TerminalInput;

/// `wasi:cli/terminal-output.terminal-output`: never handed out either.
struct TerminalOutput;

/// `wasi:io/streams.stream-error`.
#[derive(ComponentType, Lower)]
#[component(variant)]
enum StreamError {
    #[component(name = "last-operation-failed")]
    #[allow(dead_code)] // part of the type; no operation here fails that way
    LastOperationFailed(Resource<IoError>),
    #[component(name = "closed")]
    Closed,
}

type Store<'a> = StoreContextMut<'a, PluginState>;

fn interface(name: &str) -> String {
    format!("{name}@{WASI}")
}

/// Removes a resource the guest dropped from the store's table.
fn dropped<T: 'static>(mut store: Store<'_>, rep: u32) -> wasmtime::Result<T> {
    Ok(store
        .data_mut()
        .ctx()
        .table
        .delete(Resource::<T>::new_own(rep))?)
}

fn push<T: Send + 'static>(store: &mut Store<'_>, value: T) -> wasmtime::Result<Resource<T>> {
    Ok(store.data_mut().ctx().table.push(value)?)
}

fn output(store: &mut Store<'_>, stream: &'static str) -> wasmtime::Result<Resource<OutputStream>> {
    let writer = store.data().line_writer(stream);
    push(store, OutputStream(writer))
}

fn write(
    store: &mut Store<'_>,
    this: &Resource<OutputStream>,
    bytes: &[u8],
) -> wasmtime::Result<()> {
    store.data_mut().ctx().table.get_mut(this)?.0.write(bytes);
    Ok(())
}

/// Defines the standard-stream interfaces in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    let mut error = linker.instance(&interface("wasi:io/error"))?;
    error.resource("error", ResourceType::host::<IoError>(), |store, rep| {
        dropped::<IoError>(store, rep).map(drop)
    })?;
    error.func_wrap(
        "[method]error.to-debug-string",
        |_store: Store<'_>, (_this,): (Resource<IoError>,)| Ok((String::new(),)),
    )?;

    let mut poll = linker.instance(&interface("wasi:io/poll"))?;
    poll.resource(
        "pollable",
        ResourceType::host::<Pollable>(),
        |store, rep| dropped::<Pollable>(store, rep).map(drop),
    )?;
    poll.func_wrap(
        "[method]pollable.ready",
        |_store: Store<'_>, (_this,): (Resource<Pollable>,)| Ok((true,)),
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |_store: Store<'_>, (_this,): (Resource<Pollable>,)| Ok(()),
    )?;
    poll.func_wrap(
        "poll",
        |_store: Store<'_>, (these,): (Vec<Resource<Pollable>>,)| {
            let ready = (0..u32::try_from(these.len()).unwrap_or(u32::MAX)).collect::<Vec<u32>>();
            Ok((ready,))
        },
    )?;

    let mut streams = linker.instance(&interface("wasi:io/streams"))?;
    streams.resource(
        "input-stream",
        ResourceType::host::<InputStream>(),
        |store, rep| dropped::<InputStream>(store, rep).map(drop),
    )?;
    streams.resource(
        "output-stream",
        ResourceType::host::<OutputStream>(),
        |store, rep| {
            // A line the guest never ended still reaches the log.
            dropped::<OutputStream>(store, rep).map(|mut stream| stream.0.finish())
        },
    )?;
    // stdin is at its end: reads answer `closed` (with WASI's own result types: bytes for
    // a read, a count for a skip).
    for method in ["read", "blocking-read"] {
        streams.func_wrap(
            &format!("[method]input-stream.{method}"),
            |_store: Store<'_>, (_this, _len): (Resource<InputStream>, u64)| {
                Ok((Err::<Vec<u8>, _>(StreamError::Closed),))
            },
        )?;
    }
    for method in ["skip", "blocking-skip"] {
        streams.func_wrap(
            &format!("[method]input-stream.{method}"),
            |_store: Store<'_>, (_this, _len): (Resource<InputStream>, u64)| {
                Ok((Err::<u64, _>(StreamError::Closed),))
            },
        )?;
    }
    streams.func_wrap(
        "[method]input-stream.subscribe",
        |mut store: Store<'_>, (_this,): (Resource<InputStream>,)| {
            Ok((push(&mut store, Pollable)?,))
        },
    )?;
    streams.func_wrap(
        "[method]output-stream.check-write",
        |_store: Store<'_>, (_this,): (Resource<OutputStream>,)| {
            Ok((Ok::<u64, StreamError>(WRITE_WINDOW),))
        },
    )?;
    for method in ["write", "blocking-write-and-flush"] {
        streams.func_wrap(
            &format!("[method]output-stream.{method}"),
            |mut store: Store<'_>, (this, bytes): (Resource<OutputStream>, Vec<u8>)| {
                write(&mut store, &this, &bytes)?;
                Ok((Ok::<(), StreamError>(()),))
            },
        )?;
    }
    for method in ["flush", "blocking-flush"] {
        streams.func_wrap(
            &format!("[method]output-stream.{method}"),
            |_store: Store<'_>, (_this,): (Resource<OutputStream>,)| {
                Ok((Ok::<(), StreamError>(()),))
            },
        )?;
    }
    // Zeroes are written like any bytes, within the window `check-write` grants (WASI's
    // rule: a longer write is the guest's error, a trap here as in wasmtime's streams).
    for method in ["write-zeroes", "blocking-write-zeroes-and-flush"] {
        streams.func_wrap(
            &format!("[method]output-stream.{method}"),
            |mut store: Store<'_>, (this, len): (Resource<OutputStream>, u64)| {
                if len > WRITE_WINDOW {
                    bail!("wrote {len} zero bytes at once; check-write granted {WRITE_WINDOW}");
                }
                let zeroes = vec![0; usize::try_from(len)?];
                write(&mut store, &this, &zeroes)?;
                Ok((Ok::<(), StreamError>(()),))
            },
        )?;
    }
    // The only input stream is stdin, at its end: a splice from it moves nothing.
    for method in ["splice", "blocking-splice"] {
        streams.func_wrap(
            &format!("[method]output-stream.{method}"),
            |_store: Store<'_>,
             (_this, _src, _len): (Resource<OutputStream>, Resource<InputStream>, u64)| {
                Ok((Err::<u64, _>(StreamError::Closed),))
            },
        )?;
    }
    streams.func_wrap(
        "[method]output-stream.subscribe",
        |mut store: Store<'_>, (_this,): (Resource<OutputStream>,)| {
            Ok((push(&mut store, Pollable)?,))
        },
    )?;

    linker
        .instance(&interface("wasi:cli/stdin"))?
        .func_wrap("get-stdin", |mut store: Store<'_>, (): ()| {
            Ok((push(&mut store, InputStream)?,))
        })?;
    linker
        .instance(&interface("wasi:cli/stdout"))?
        .func_wrap("get-stdout", |mut store: Store<'_>, (): ()| {
            Ok((output(&mut store, "stdout")?,))
        })?;
    linker
        .instance(&interface("wasi:cli/stderr"))?
        .func_wrap("get-stderr", |mut store: Store<'_>, (): ()| {
            Ok((output(&mut store, "stderr")?,))
        })?;

    let mut environment = linker.instance(&interface("wasi:cli/environment"))?;
    environment.func_wrap("get-environment", |_store: Store<'_>, (): ()| {
        Ok((Vec::<(String, String)>::new(),))
    })?;
    environment.func_wrap("get-arguments", |_store: Store<'_>, (): ()| {
        Ok((Vec::<String>::new(),))
    })?;
    environment.func_wrap("initial-cwd", |_store: Store<'_>, (): ()| {
        Ok((None::<String>,))
    })?;

    let mut exit = linker.instance(&interface("wasi:cli/exit"))?;
    exit.func_wrap(
        "exit",
        |_store: Store<'_>, (status,): (Result<(), ()>,)| -> wasmtime::Result<()> {
            let status = if status.is_ok() { "success" } else { "failure" };
            bail!("the plugin called exit ({status})")
        },
    )?;
    // Since WASI 0.2.12; a guest built against an earlier 0.2 does not import it.
    exit.func_wrap(
        "exit-with-code",
        |_store: Store<'_>, (code,): (u8,)| -> wasmtime::Result<()> {
            bail!("the plugin called exit (status code {code})")
        },
    )?;

    linker
        .instance(&interface("wasi:cli/terminal-input"))?
        .resource(
            "terminal-input",
            ResourceType::host::<TerminalInput>(),
            |store, rep| dropped::<TerminalInput>(store, rep).map(drop),
        )?;
    linker
        .instance(&interface("wasi:cli/terminal-output"))?
        .resource(
            "terminal-output",
            ResourceType::host::<TerminalOutput>(),
            |store, rep| dropped::<TerminalOutput>(store, rep).map(drop),
        )?;
    linker
        .instance(&interface("wasi:cli/terminal-stdin"))?
        .func_wrap("get-terminal-stdin", |_store: Store<'_>, (): ()| {
            Ok((None::<Resource<TerminalInput>>,))
        })?;
    for (interface_name, getter) in [
        ("wasi:cli/terminal-stdout", "get-terminal-stdout"),
        ("wasi:cli/terminal-stderr", "get-terminal-stderr"),
    ] {
        linker
            .instance(&interface(interface_name))?
            .func_wrap(getter, |_store: Store<'_>, (): ()| {
                Ok((None::<Resource<TerminalOutput>>,))
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use wasmtime::component::{Component, Linker};
    use wasmtime::{Config, Engine};

    use crate::state::PluginState;

    /// Every function of the interfaces served here, as WASI 0.2.12 defines it, links:
    /// a type that drifts from WASI's (as `skip`'s once did) fails here instead of quietly
    /// sending a policy that imports it to full WASI and a fiber.
    #[test]
    fn every_function_links_with_the_types_wasi_defines() {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).unwrap();
        let wat = include_str!("../../tests/fixtures/wasi-0.2.12-streams-imports.wat");
        let component = Component::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
        let mut linker = Linker::<PluginState>::new(&engine);
        super::add_to_linker(&mut linker).unwrap();
        if let Err(e) = linker.instantiate_pre(&component) {
            panic!("the streams the runtime serves differ from WASI's: {e:#}");
        }
    }
}

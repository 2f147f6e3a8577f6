//! The WebAssembly runtime: one shared engine, components checked before they are
//! compiled, compiled artifacts cached on disk, and instances that are cheap to replace.
//!
//! ```text
//! file ──inspect──► world + contract version + plugin id   (refuse early, name the plugin)
//!      ──compile──► Component (disk cache keyed by content hash + wasmtime version)
//!      ──link─────► InstancePre per plugin (imports resolved once)
//!      ──instance─► Store per instance: memory/table caps, epoch deadline per call
//! ```
//!
//! A call that traps, runs past its deadline or exceeds its memory cap returns an
//! [`Error::Fault`](crate::Error::Fault) naming the plugin and version; the instance is
//! dropped and the next call gets a fresh one (configured again with the same settings).

pub(crate) mod bindings;
mod cache;
mod channel;
mod inspect;
mod limits;
mod router;
pub(crate) mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, Trap, UpdateDeadline};

pub use cache::CacheOutcome;
pub use channel::{ChannelInstance, ChannelPlugin};
pub use inspect::{
    CONTRACT_PACKAGE, Inspection, METADATA_SECTION, Metadata, SUPPORTED_CONTRACTS, World, inspect,
    inspect_file, serves,
};
pub use limits::PluginLimits;
pub use router::{RouterInstance, RouterPlugin};

use crate::capabilities::{Grants, HttpContext, HttpTransport, RateLimitBook};
use crate::error::{Error, Fault, PluginId};
use cache::ComponentCache;
use state::PluginState;

/// How often the engine's epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Configures a [`Runtime`].
#[derive(Debug, Default)]
pub struct RuntimeBuilder {
    cache_dir: Option<PathBuf>,
}

impl RuntimeBuilder {
    /// Caches compiled components in `dir` (created on first use). Default: no disk cache,
    /// every load compiles.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Creates the engine, the linkers and the epoch ticker.
    pub fn build(self) -> Result<Runtime, Error> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config)
            .map_err(|e| anyhow::anyhow!("creating the wasmtime engine: {e:#}"))?;

        let mut router_linker = Linker::new(&engine);
        let mut channel_linker = Linker::new(&engine);
        let link = |e: wasmtime::Error| anyhow::anyhow!("setting up the plugin linker: {e:#}");
        wasmtime_wasi::p2::add_to_linker_async(&mut router_linker).map_err(link)?;
        wasmtime_wasi::p2::add_to_linker_async(&mut channel_linker).map_err(link)?;
        bindings::v0_1::routing_policy::RoutingPolicy::add_to_linker::<_, HasSelf<_>>(
            &mut router_linker,
            |s| s,
        )
        .map_err(link)?;
        bindings::v0_1::channel::Channel::add_to_linker::<_, HasSelf<_>>(
            &mut channel_linker,
            |s| s,
        )
        .map_err(link)?;

        let http = HttpTransport::new()?;
        let ticker = EpochTicker::start(engine.clone())?;
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                cache: self.cache_dir.map(ComponentCache::new),
                router_linker,
                channel_linker,
                http,
                _ticker: ticker,
            }),
        })
    }
}

/// The shared plugin runtime. Cheap to clone; one per process is enough.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    cache: Option<ComponentCache>,
    router_linker: Linker<PluginState>,
    channel_linker: Linker<PluginState>,
    http: HttpTransport,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A builder with the documented defaults.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// A runtime with the defaults (no disk cache).
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// Reads, inspects and compiles a component, refusing it unless it implements
    /// `expected` at a served contract version.
    fn compile(
        &self,
        path: &Path,
        expected: World,
    ) -> Result<(Arc<Inspection>, Component, CacheOutcome), Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let info = inspect(path, &bytes)?;
        info.ensure_loadable(path, Some(expected))?;
        let compiled = match &self.inner.cache {
            Some(cache) => cache.load(&self.inner.engine, &bytes),
            None => Component::new(&self.inner.engine, &bytes)
                .map(|c| (c, CacheOutcome::Disabled))
                .map_err(anyhow::Error::from),
        };
        let (component, outcome) = compiled.map_err(|e| Error::InvalidComponent {
            path: path.to_path_buf(),
            reason: format!("plugin {} does not compile: {e:#}", info.plugin),
        })?;
        Ok((Arc::new(info), component, outcome))
    }

    /// Loads a routing policy component.
    pub fn load_router(&self, path: impl AsRef<Path>) -> Result<RouterPlugin, Error> {
        let path = path.as_ref();
        let (info, component, outcome) = self.compile(path, World::RoutingPolicy)?;
        let pre = self
            .inner
            .router_linker
            .instantiate_pre(&component)
            .and_then(bindings::v0_1::routing_policy::RoutingPolicyPre::new)
            .map_err(|e| link_error(path, &info.plugin, e))?;
        Ok(RouterPlugin::new(self.clone(), info, pre, outcome))
    }

    /// Loads a channel connector component.
    pub fn load_channel(&self, path: impl AsRef<Path>) -> Result<ChannelPlugin, Error> {
        let path = path.as_ref();
        let (info, component, outcome) = self.compile(path, World::Channel)?;
        let pre = self
            .inner
            .channel_linker
            .instantiate_pre(&component)
            .and_then(bindings::v0_1::channel::ChannelPre::new)
            .map_err(|e| link_error(path, &info.plugin, e))?;
        Ok(ChannelPlugin::new(self.clone(), info, pre, outcome))
    }

    /// A fresh store for one instance of `plugin`.
    ///
    /// Deadlines: the epoch deadline is one tick ahead, so the callback runs every tick. It
    /// yields to the async executor (a busy plugin never starves other connectors) and
    /// interrupts the call once its compute time, not counting host waits, passes the budget.
    fn store(
        &self,
        plugin: Arc<PluginId>,
        grants: Arc<Grants>,
        book: Arc<RateLimitBook>,
        limits: &PluginLimits,
    ) -> Store<PluginState> {
        let http = HttpContext {
            transport: self.inner.http.clone(),
            book,
            timeout: limits.http_timeout,
            max_response_bytes: limits.http_max_response_bytes,
            retries: limits.http_retries,
            hold: limits.http_rate_limit_hold,
        };
        let state = PluginState::new(plugin, grants, http, limits);
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|context| {
            Ok(if context.data().call_clock.expired() {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        store
    }
}

fn link_error(path: &Path, plugin: &PluginId, e: wasmtime::Error) -> Error {
    Error::InvalidComponent {
        path: path.to_path_buf(),
        reason: format!("plugin {plugin} needs imports this host does not provide: {e:#}"),
    }
}

/// Starts the compute budget of one call.
fn begin_call(store: &mut Store<PluginState>, budget: Duration) {
    store.data_mut().call_clock.start(budget);
    store.set_epoch_deadline(1);
}

/// Turns a failed call into an [`Error::Fault`], naming what happened.
fn fault(store: &Store<PluginState>, function: &'static str, error: &wasmtime::Error) -> Error {
    let state = store.data();
    let kind = if state.limiter.memory_exceeded {
        Fault::MemoryLimit
    } else if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        Fault::Deadline
    } else {
        Fault::Trap
    };
    let mut detail = error.root_cause().to_string();
    if let Some(said) = state.log_budget.take_last_stderr() {
        detail = format!("{detail} (guest stderr: {said})");
    }
    tracing::warn!(plugin = %state.plugin, function, fault = %kind, "{detail}; instance discarded");
    Error::Fault {
        plugin: (*state.plugin).clone(),
        function,
        fault: kind,
        detail,
    }
}

fn instantiate_fault(plugin: &PluginId, error: &wasmtime::Error) -> Error {
    Error::Fault {
        plugin: plugin.clone(),
        function: "instantiate",
        fault: Fault::Instantiate,
        detail: format!("{error:#}"),
    }
}

/// Advances the engine's epoch on a thread of its own until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Result<Self, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("centralino-epoch".to_string())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| anyhow::anyhow!("starting the epoch ticker thread: {e}"))?;
        Ok(EpochTicker { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

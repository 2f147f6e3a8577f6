//! The WebAssembly runtime: one shared engine, components checked before they are
//! compiled, compiled artifacts cached on disk, and instances that are cheap to replace.
//!
//! ```text
//! file ──inspect──► world + contract version + plugin id   (refuse early, name the plugin)
//!      ──compile──► Component (disk cache keyed by content hash + wasmtime version)
//!      ──link─────► InstancePre per plugin (imports resolved once)
//!      ──instance─► Store per instance: memory/table/instance caps, epoch deadline and
//!                   log budget per call, output caps on every result
//! ```
//!
//! A call that traps, runs past its deadline, exceeds its memory cap or returns more than
//! its output caps allow ends with an [`Error::Fault`] naming the
//! plugin and version; the instance is dropped and the next call gets a fresh one
//! (configured again with the same settings). So does a call whose future was dropped
//! midway, without counting as a fault. [`PluginLimits`] documents every limit and its
//! default; [`CallNotes`] collects what calls did short of a fault (refused capability
//! requests, log over budget). Connectors add backoff and a circuit breaker on top
//! (the host's `connectors` module).
//!
//! This crate is the part of centralino that plugin tooling and the plugin test kit need:
//! the engine, inspection and signatures, the contract's capabilities and their grants,
//! and the host's own types for what crosses the contract. It has no store, no SQL and no
//! HTTP servers. The `centralino` crate builds on it and re-exports what CRM vendors use;
//! its items are versioned with the host.

pub mod capabilities;
pub mod error;
pub mod rate_limits;
pub mod types;
pub mod windows;

// Shared with the `centralino` crate, which uses them as its own modules; no stability
// promise beyond that crate's.
#[doc(hidden)]
pub mod calendar;
#[doc(hidden)]
pub mod conventions;
#[doc(hidden)]
pub mod platform_versions;
#[doc(hidden)]
pub mod retry;

pub(crate) mod bindings;
mod borrowed;
mod cache;
mod call;
mod candidate_row;
mod channel;
mod context_lowering;
#[cfg(test)]
mod fast_path;
mod flat_route;
mod imports;
mod inline_str;
mod inspect;
mod limits;
mod provenance;
mod roster;
mod route_answer;
mod route_call;
mod router;
pub(crate) mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};

pub use cache::CacheOutcome;
pub use call::CallNotes;
pub use channel::{ChannelInstance, ChannelPlugin};
pub use imports::{FetchedMedia, MediaFetchError, MediaFetcher};
pub use inspect::{
    CONTRACT_PACKAGE, Inspection, METADATA_SECTION, Metadata, SUPPORTED_CONTRACTS, World, inspect,
    inspect_file, serves,
};
pub use limits::PluginLimits;
pub use provenance::{
    PluginSignature, PluginTrust, SIGNATURE_SECTION, SigningKey, generate_key, sign,
};
pub(crate) use route_call::RouteCall;
pub use router::{RouterInstance, RouterPlugin};

use crate::capabilities::Grants;
pub use crate::error::{Error, Fault, PluginFailure, PluginId};
use cache::ComponentCache;
use imports::{HttpContext, HttpTransport, RateLimitBook};
use state::PluginState;

/// How often the engine's epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Configures a [`Runtime`].
#[derive(Debug, Default)]
pub struct RuntimeBuilder {
    cache_dir: Option<PathBuf>,
    pooling: Option<u32>,
    route_call: Option<RouteCall>,
    trust: PluginTrust,
    routing_on_fiber: bool,
}

/// Largest linear memory of a pooled instance slot (see [`RuntimeBuilder::pooling`]): the
/// default [`PluginLimits::memory_bytes`].
pub const POOLED_MEMORY_BYTES: usize = 64 << 20;

/// Core instances, memories and tables one plugin may use in a pooled slot. The plugins
/// built here need 1 memory, 1 table and a handful of core instances (the module and the
/// component's shims); the caps leave room for components built with a WASI adapter.
const POOLED_CORE_INSTANCES: u32 = 8;
const POOLED_MEMORIES: u32 = 2;
const POOLED_TABLES: u32 = 4;

impl RuntimeBuilder {
    /// Caches compiled components in `dir` (created on first use). Default: no disk cache,
    /// every load compiles.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Preallocates slots for `instances` live plugin instances with wasmtime's pooling
    /// allocator, so that starting an instance reuses a ready slot (memory, tables, async
    /// stack) instead of mapping fresh ones: cheaper instantiation and a footprint fixed up
    /// front, for hosts with many tenants. Each slot's memory grows to at most
    /// [`POOLED_MEMORY_BYTES`] whatever a plugin's [`PluginLimits::memory_bytes`] says, and
    /// an instance beyond `instances` fails to start (reported as an instantiation fault).
    /// The pool reserves address space, not memory: about 4 GiB per memory slot.
    /// Default: off (wasmtime's on-demand allocator: no ceiling, nothing reserved).
    pub fn pooling(mut self, instances: u32) -> Self {
        self.pooling = Some(instances);
        self
    }

    /// Which components load: signed by whom, and whether a signature is required (see
    /// [`PluginTrust`]). Default: unsigned and validly signed components load; a signature
    /// that does not match its file is always refused.
    pub fn trust(mut self, trust: PluginTrust) -> Self {
        self.trust = trust;
        self
    }

    /// Calls every routing policy on a fiber that yields to the executor at each epoch
    /// tick, when `always` is true. By default a policy that imports nothing that waits
    /// (the standard streams alone, as Rust policies on `std` do) is called on the
    /// caller's thread, 8–21% less per decision in the bench (BENCHMARKS.md §1); such a
    /// call holds the thread until it returns or reaches its deadline
    /// ([`PluginLimits::call_deadline`]), and a policy that reaches it is called on a
    /// fiber from then on. Set this on an executor that must never be held for that long,
    /// such as a single-threaded one serving other work.
    pub fn routing_on_fiber(mut self, always: bool) -> Self {
        self.routing_on_fiber = always;
        self
    }

    /// Calls `route` the way given instead of choosing ([`RouteCall`]).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn route_call(mut self, call: RouteCall) -> Self {
        self.route_call = Some(call);
        self
    }

    /// Creates the engine, the linkers and the epoch ticker.
    pub fn build(self) -> Result<Runtime, Error> {
        let route_call = RouteCall::chosen(self.route_call, || {
            borrowed::self_check()
                .and_then(|()| roster::self_check())
                .and_then(|()| context_lowering::self_check())
                .and_then(|()| flat_route::self_check())
                .and_then(|()| route_answer::self_check())
        });
        let mut config = engine_config();
        if let Some(instances) = self.pooling {
            let mut pool = PoolingAllocationConfig::new();
            pool.total_component_instances(instances)
                .total_core_instances(instances.saturating_mul(POOLED_CORE_INSTANCES))
                .total_memories(instances.saturating_mul(POOLED_MEMORIES))
                .total_tables(instances.saturating_mul(POOLED_TABLES))
                // Every live store keeps its async stack between calls.
                .total_stacks(instances)
                .max_core_instances_per_component(POOLED_CORE_INSTANCES)
                .max_memories_per_component(POOLED_MEMORIES)
                .max_tables_per_component(POOLED_TABLES)
                .max_memory_size(POOLED_MEMORY_BYTES);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config)
            .map_err(|e| anyhow::anyhow!("creating the wasmtime engine: {e:#}"))?;

        let linkers = bindings::Linkers::new(&engine)
            .map_err(|e| anyhow::anyhow!("setting up the plugin linkers: {e:#}"))?;

        let http = HttpTransport::new()?;
        let ticker = EpochTicker::start(engine.clone())?;
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                quiet_compiler: std::sync::OnceLock::new(),
                cache: self
                    .cache_dir
                    .or_else(test_cache_dir)
                    .map(ComponentCache::new),
                linkers,
                http,
                route_call,
                routing_on_fiber: self.routing_on_fiber,
                trust: self.trust,
                _ticker: ticker,
            }),
        })
    }
}

/// A digest of what an engine's compiled artifacts must match to load into another.
fn compatibility(engine: &Engine) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.finish()
}

/// The engine settings every plugin is compiled and run with.
fn engine_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // A profiling aid (BENCHMARKS.md, "Profiling"): with `CENTRALINO_PERF_MAP` set, the
    // compiled plugins' functions are listed in `/tmp/perf-<pid>.map`, so `perf report`
    // names the guest's functions instead of bare addresses.
    if std::env::var_os("CENTRALINO_PERF_MAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// The shared plugin runtime. Cheap to clone; one per process is enough.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    /// Compiles on one thread, for swaps (see [`Runtime::load_channel_quietly`]); `None`
    /// when its artifacts would not load into `engine`.
    quiet_compiler: std::sync::OnceLock<Option<Engine>>,
    cache: Option<ComponentCache>,
    /// One linker per world and contract line.
    linkers: bindings::Linkers,
    http: HttpTransport,
    route_call: RouteCall,
    /// [`RuntimeBuilder::routing_on_fiber`].
    routing_on_fiber: bool,
    trust: PluginTrust,
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

    /// The plugin trust policy it was built with.
    #[doc(hidden)]
    pub fn trust(&self) -> &PluginTrust {
        &self.inner.trust
    }

    /// A runtime with the defaults (no disk cache).
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// How this runtime calls routing policies' `route`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn route_call(&self) -> RouteCall {
        self.inner.route_call
    }

    /// Reads, inspects and compiles a component, refusing it unless it implements
    /// `expected` at a served contract version.
    fn compile(
        &self,
        path: &Path,
        expected: World,
        quietly: bool,
    ) -> Result<(Arc<Inspection>, Component, CacheOutcome), Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let info = inspect(path, &bytes)?;
        info.ensure_loadable(path, Some(expected))?;
        self.inner
            .trust
            .check(path, &info.plugin, info.signature.as_ref())?;
        let build = || self.build_component(&bytes, quietly);
        let compiled = match &self.inner.cache {
            Some(cache) => cache.load(&self.inner.engine, &bytes, build),
            None => build().map(|c| (c, CacheOutcome::Disabled)),
        };
        let (component, outcome) = compiled.map_err(|e| Error::InvalidComponent {
            path: path.to_path_buf(),
            reason: format!("plugin {} does not compile: {e:#}", info.plugin),
        })?;
        Ok((Arc::new(info), component, outcome))
    }

    /// Compiles `bytes` for this runtime's engine; `quietly` on one thread.
    fn build_component(&self, bytes: &[u8], quietly: bool) -> anyhow::Result<Component> {
        let quiet = if quietly { self.quiet_compiler() } else { None };
        let Some(compiler) = quiet else {
            return Component::new(&self.inner.engine, bytes).map_err(anyhow::Error::from);
        };
        let artifact = Component::new(compiler, bytes)
            .and_then(|c| c.serialize())
            .map_err(anyhow::Error::from)?;
        #[allow(unsafe_code)]
        // SAFETY: `artifact` was just produced by `Component::serialize` in this process, by
        // an engine of the same wasmtime with the same compatibility hash as ours (checked
        // when it was made), and is not modified in between.
        let component = unsafe { Component::deserialize(&self.inner.engine, &artifact) };
        component.map_err(anyhow::Error::from)
    }

    /// Whether [`Runtime::load_channel_quietly`] compiles on one thread (it falls back to
    /// the engine's own compiler if that ever stops being possible).
    pub fn compiles_quietly(&self) -> bool {
        self.quiet_compiler().is_some()
    }

    /// The single-threaded compiler, made on first use: the engine's settings without
    /// parallel compilation (and without the pooling allocator, which a compiler never
    /// uses). `None`, with a warning, if its artifacts would not load into the engine.
    fn quiet_compiler(&self) -> Option<&Engine> {
        self.inner
            .quiet_compiler
            .get_or_init(|| {
                let mut config = engine_config();
                config.parallel_compilation(false);
                let engine = match Engine::new(&config) {
                    Ok(engine) => engine,
                    Err(e) => {
                        tracing::warn!("no single-threaded compiler, swaps compile on every core: {e:#}");
                        return None;
                    }
                };
                let compatible = compatibility(&engine) == compatibility(&self.inner.engine);
                if !compatible {
                    tracing::warn!("the single-threaded compiler's artifacts do not fit the engine; swaps compile on every core");
                }
                compatible.then_some(engine)
            })
            .as_ref()
    }

    /// Loads a routing policy component.
    pub fn load_router(&self, path: impl AsRef<Path>) -> Result<RouterPlugin, Error> {
        let path = path.as_ref();
        let (info, component, outcome) = self.compile(path, World::RoutingPolicy, false)?;
        let pre = self
            .inner
            .linkers
            .router(&info.plugin, &info.contract, &component)
            .map_err(|e| link_error(path, &info.plugin, e))?;
        Ok(RouterPlugin::new(self.clone(), info, pre, outcome))
    }

    /// Loads a channel connector component.
    pub fn load_channel(&self, path: impl AsRef<Path>) -> Result<ChannelPlugin, Error> {
        self.channel(path.as_ref(), false)
    }

    /// [`Runtime::load_channel`] for a swap on a running host: a cache miss compiles on one
    /// thread instead of all cores, so traffic keeps a core while a new version compiles
    /// (slower to finish, gentler on the calls being served). Call it from a blocking
    /// thread.
    pub fn load_channel_quietly(&self, path: impl AsRef<Path>) -> Result<ChannelPlugin, Error> {
        self.channel(path.as_ref(), true)
    }

    fn channel(&self, path: &Path, quietly: bool) -> Result<ChannelPlugin, Error> {
        let (info, component, outcome) = self.compile(path, World::Channel, quietly)?;
        let pre = self
            .inner
            .linkers
            .channel(&info.contract, &component)
            .map_err(|e| link_error(path, &info.plugin, e))?;
        Ok(ChannelPlugin::new(self.clone(), info, pre, outcome))
    }

    /// The HTTP client every plugin of this runtime shares.
    pub(crate) fn http_transport(&self) -> HttpTransport {
        self.inner.http.clone()
    }

    /// A fresh store for one instance of `plugin`.
    ///
    /// Deadlines: the epoch deadline is one tick ahead, so the callback runs every tick. It
    /// yields to the async executor (a busy plugin never starves other connectors) and
    /// interrupts the call once its compute time, not counting host waits, passes the budget.
    /// A store marked `never_yields` (a routing policy that imports nothing that waits,
    /// called without a fiber) keeps its thread until then instead of yielding.
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
            let state = context.data();
            Ok(if state.call_clock.expired() {
                UpdateDeadline::Interrupt
            } else if state.never_yields {
                UpdateDeadline::Continue(1)
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        store
    }
}

/// The compile cache of a runtime built with no `cache_dir`, in the project's own test
/// builds only (`test-support`): `CENTRALINO_TEST_CACHE_DIR`, which `cargo xtask test` sets
/// for the suite, so its hundreds of test processes compile each plugin once instead of
/// once each (Cranelift was most of a typical test's time). Artifacts are the same code a
/// compile gives; the cache's own tests name their folders and are unaffected.
fn test_cache_dir() -> Option<PathBuf> {
    if !cfg!(feature = "test-support") {
        return None;
    }
    std::env::var_os("CENTRALINO_TEST_CACHE_DIR").map(PathBuf::from)
}

fn link_error(path: &Path, plugin: &PluginId, e: wasmtime::Error) -> Error {
    Error::InvalidComponent {
        path: path.to_path_buf(),
        reason: format!("plugin {plugin} needs imports this host does not provide: {e:#}"),
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

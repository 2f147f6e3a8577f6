//! How a routing policy's `route` is called: the fast path or the generated bindings.

/// How a routing policy's `route` is called; chosen once, when the [`Runtime`](super::Runtime) is built.
///
/// The fast path ([`borrowed`](super::borrowed)) lowers the routing context straight from the host's types
/// through wasmtime's unstable `component::__internal` API, with `unsafe` code; it is why
/// wasmtime is held to one major version. The generated bindings' ordinary typed call
/// clones every string of the context into the contract's owned types first (the cost
/// [`borrowed`](super::borrowed) removes) and relies on nothing internal. Both give the same
/// decisions: `runtime::fast_path` checks it over thousands of random contexts for every
/// routing policy.
///
/// By default the runtime takes the fast path when [`borrowed::self_check`](super::borrowed::self_check) passes (the
/// layout the `unsafe` code writes is the canonical ABI's and the generated bindings'),
/// and otherwise warns once and takes the generated path. For a maintainer upgrading
/// wasmtime: if the `borrowed::tests` or `runtime::fast_path` tests fail, decisions are
/// still right through the generated path; to ship before the fast path is repaired, make
/// [`RouteCall::chosen`] return [`RouteCall::Generated`] (one line), and if `__internal` no
/// longer compiles, reduce `borrowed.rs` to the conversion to `router::Context` (and
/// `roster.rs` and `context_lowering.rs`, the 0.2 lowering, to the generated call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteCall {
    /// The context borrowed from the host's types, lowered by [`borrowed`](super::borrowed).
    Borrowed,
    /// The generated bindings' typed `call_route`, with an owned `router::Context`.
    Generated,
}

impl RouteCall {
    /// `forced` if given, else the fast path if `check` (the fast path's self-check) passed.
    pub(super) fn chosen(
        forced: Option<RouteCall>,
        check: impl FnOnce() -> Result<(), String>,
    ) -> Self {
        if let Some(call) = forced {
            return call;
        }
        match check() {
            Ok(()) => RouteCall::Borrowed,
            Err(difference) => {
                tracing::warn!(
                    "routing decisions go through the generated bindings (slower): the fast \
                     path's assumptions do not hold in this wasmtime: {difference}"
                );
                RouteCall::Generated
            }
        }
    }
}

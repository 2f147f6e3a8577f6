//! The host's background tasks (the outbox sender, the CRM dispatcher, the media fetcher,
//! the routing ticker, the pruner, one poller per polling connector, the plugin watcher), kept alive.
//!
//! Each runs inside a supervisor. A panic in a task — a bug, or input nobody foresaw — is
//! caught, logged with its cause, counted (`centralino_task_restarts_total`), and the task
//! is started again after a pause (1 s, doubling to a minute; back to 1 s once a run has
//! lasted a minute). While a task is down the host is not ready (`/readyz`, `status`), so
//! a load balancer or an orchestrator sees the trouble instead of a host that says it is
//! fine while nothing is sent.
//!
//! A task that returns (the host was dropped) is not restarted; dropping a task's handle
//! stops the supervisor and the task with it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinHandle;

use crate::clock::Clock;

/// A run at least this long starts the restart pauses ([`crate::retry::TASK_RESTART`])
/// from the first again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// How one background task is doing, as `status` and [`crate::Host::background_tasks`]
/// show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TaskHealth {
    /// The task: `outbox-sender`, `crm-dispatcher`, `media-fetcher`, `routing-ticker`, `pruner`,
    /// `plugin-watcher`, or `poller:<tenant>/<connector>`.
    pub task: String,
    /// Whether it is running now (false between a panic and its restart).
    pub running: bool,
    /// Times it was started again after a panic, since the host started.
    pub restarts: u64,
    /// Since when it has been down (ms since the epoch), while it is.
    pub down_since_ms: Option<u64>,
    /// What the last panic said, if there was one.
    pub last_panic: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    running: bool,
    restarts: u64,
    down_since_ms: Option<u64>,
    last_panic: Option<String>,
}

/// The registry of supervised tasks, shared by the supervisors and the host.
#[derive(Debug, Default)]
pub(crate) struct TaskBook {
    tasks: Mutex<BTreeMap<String, State>>,
    /// The host's clock, for `down_since_ms` (the system clock without one).
    clock: Option<Arc<dyn Clock>>,
    #[cfg(feature = "fault-injection")]
    injections: Mutex<BTreeMap<String, Arc<tokio::sync::Notify>>>,
}

impl TaskBook {
    /// A book reading `down_since_ms` from `clock`.
    pub(crate) fn new(clock: Option<Arc<dyn Clock>>) -> Self {
        TaskBook {
            clock,
            ..TaskBook::default()
        }
    }

    fn with<T>(&self, task: &str, f: impl FnOnce(&mut State) -> T) -> T {
        // A poisoned lock only means a panic mid-update elsewhere; the entries stay usable.
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        f(tasks.entry(task.to_string()).or_default())
    }

    fn started(&self, task: &str) {
        self.with(task, |s| {
            s.running = true;
            s.down_since_ms = None;
        });
    }

    fn panicked(&self, task: &str, cause: String) {
        let now = crate::clock::read(self.clock.as_ref());
        self.with(task, |s| {
            s.running = false;
            s.down_since_ms = Some(now);
            s.last_panic = Some(cause);
        });
    }

    fn restarting(&self, task: &str) {
        self.with(task, |s| s.restarts += 1);
    }

    fn finished(&self, task: &str) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.remove(task);
    }

    /// Every supervised task, by name.
    pub(crate) fn health(&self) -> Vec<TaskHealth> {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks
            .iter()
            .map(|(task, s)| TaskHealth {
                task: task.clone(),
                running: s.running,
                restarts: s.restarts,
                down_since_ms: s.down_since_ms,
                last_panic: s.last_panic.clone(),
            })
            .collect()
    }

    /// Makes `task` panic at its next await point (tests of the supervision only).
    #[cfg(feature = "fault-injection")]
    pub(crate) fn inject_panic(&self, task: &str) {
        self.injection(task).notify_one();
    }

    #[cfg(feature = "fault-injection")]
    fn injection(&self, task: &str) -> Arc<tokio::sync::Notify> {
        let mut injections = self
            .injections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        injections.entry(task.to_string()).or_default().clone()
    }
}

/// Aborts the task it holds when dropped, so stopping a supervisor stops its task.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `make()`'s future as task `name`, starting it again after every panic. The
/// returned handle stops both the supervisor and the task when aborted.
pub(crate) fn supervise<F, Fut>(book: Arc<TaskBook>, name: String, make: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    // Listed from the start, so the host shows every task as soon as it is built.
    book.started(&name);
    tokio::spawn(async move {
        let mut panics_in_a_row = 0u64;
        loop {
            book.started(&name);
            let started = Instant::now();
            let mut task = AbortOnDrop(tokio::spawn(run(&book, &name, make())));
            let outcome = (&mut task.0).await;
            match outcome {
                Ok(()) => {
                    book.finished(&name);
                    return;
                }
                Err(e) if e.is_panic() => {
                    let cause = panic_cause(e.into_panic());
                    if started.elapsed() >= HEALTHY_RUN {
                        panics_in_a_row = 0;
                    }
                    let pause = crate::retry::TASK_RESTART.delay(panics_in_a_row);
                    panics_in_a_row = panics_in_a_row.saturating_add(1);
                    tracing::error!(
                        task = %name,
                        "background task panicked: {cause}; starting it again in {} ms",
                        pause.as_millis()
                    );
                    book.panicked(&name, cause);
                    tokio::time::sleep(pause).await;
                    book.restarting(&name);
                }
                // Cancelled: the runtime is shutting down.
                Err(_) => return,
            }
        }
    })
}

/// The task's future, which under `fault-injection` also panics when a test asks.
#[cfg(not(feature = "fault-injection"))]
fn run<Fut: Future<Output = ()>>(_book: &TaskBook, _name: &str, task: Fut) -> Fut {
    task
}

#[cfg(feature = "fault-injection")]
fn run<Fut: Future<Output = ()>>(
    book: &TaskBook,
    name: &str,
    task: Fut,
) -> impl Future<Output = ()> + use<Fut> {
    let injected = book.injection(name);
    let name = name.to_string();
    async move {
        tokio::select! {
            () = task => {}
            () = injected.notified() => {
                #[allow(clippy::panic)]
                {
                    panic!("panic injected into `{name}` by a test");
                }
            }
        }
    }
}

/// The message a panic carried, when it is text.
fn panic_cause(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_restarted_and_counted() {
        let book = Arc::new(TaskBook::default());
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = runs.clone();
        let _task = supervise(book.clone(), "flaky".to_string(), move || {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n < 2 {
                    #[allow(clippy::panic)]
                    {
                        panic!("run {n} failed");
                    }
                }
                std::future::pending::<()>().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let health = book.health();
        assert_eq!(health.len(), 1);
        assert!(!health[0].running);
        assert_eq!(health[0].last_panic.as_deref(), Some("run 0 failed"));
        // 1 s, then 2 s: the third run holds.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let health = book.health();
        assert!(health[0].running, "{health:?}");
        assert_eq!(health[0].restarts, 2);
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}

//! The overview's live updates: server-sent events (`GET events`).
//!
//! One sampler per console reads the host's state every [`TICK`] while at least one page
//! watches, and publishes the [`Snapshot`] on a `watch` channel; it stops when the last
//! page goes. Each page's stream renders the snapshot in its own language and sends it
//! as an `overview` event, the HTML of the live part, which `console.js` puts in place.
//! However many pages are open, the host is read once per tick, and only through the
//! same calls the admin API makes (a routing engine is held while its queue is copied),
//! so watching never holds up the webhook path.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hyper::body::{Bytes, Frame};
use tokio::sync::{mpsc, watch};

use super::figures::FiguresCache;
use super::i18n::Lang;
use super::overview::{Snapshot, render, sample};
use crate::Host;

/// How often the host is read while someone watches.
pub(crate) const TICK: Duration = Duration::from_millis(500);
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a browser waits before reconnecting a dropped stream.
const RETRY_MS: u64 = 2000;

type Publisher = watch::Sender<Arc<Snapshot>>;

/// The console's sampler, while one runs.
#[derive(Default)]
pub(crate) struct Live {
    /// The sampler task owns the sender; this only finds it. When the task ends (or
    /// panics) the sender goes, every stream ends, and browsers reconnect to a new one.
    publisher: Mutex<Weak<Publisher>>,
    /// The charts' figures, read from the store at most every 30 s.
    figures: FiguresCache,
}

impl Live {
    /// A receiver of snapshots, starting the sampler if none runs.
    async fn subscribe(self: &Arc<Self>, host: &Host) -> watch::Receiver<Arc<Snapshot>> {
        if let Some(publisher) = self.lock().upgrade() {
            return publisher.subscribe();
        }
        let first = Arc::new(sample(host, &self.figures, false).await);
        let mut slot = self.lock();
        if let Some(publisher) = slot.upgrade() {
            return publisher.subscribe();
        }
        let (sender, receiver) = watch::channel(first);
        let publisher = Arc::new(sender);
        *slot = Arc::downgrade(&publisher);
        drop(slot);
        tokio::spawn(self.clone().sample_while_watched(host.clone(), publisher));
        receiver
    }

    async fn sample_while_watched(self: Arc<Self>, host: Host, publisher: Arc<Publisher>) {
        loop {
            tokio::time::sleep(TICK).await;
            {
                // Under the lock, so a page subscribing now either sees this sampler
                // (and is counted) or finds none and starts the next one.
                let mut slot = self.lock();
                if publisher.receiver_count() == 0 {
                    *slot = Weak::new();
                    return;
                }
            }
            let snapshot = sample(&host, &self.figures, false).await;
            publisher.send_replace(Arc::new(snapshot));
        }
    }

    /// The charts' figures, shared with the overview page's first snapshot.
    pub(crate) fn figures(&self) -> &FiguresCache {
        &self.figures
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Weak<Publisher>> {
        self.publisher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The event stream of one page; only `only`'s tenant when given.
    pub(crate) async fn stream(
        self: &Arc<Self>,
        host: &Host,
        lang: Lang,
        only: Option<String>,
    ) -> Response {
        let mut snapshots = self.subscribe(host).await;
        let (sender, receiver) = mpsc::channel::<Bytes>(2);
        tokio::spawn(async move {
            let first = snapshots.borrow_and_update().clone();
            let opening = format!(
                "retry: {RETRY_MS}\n{}",
                event(&render(lang, &first, only.as_deref()))
            );
            if sender.send(Bytes::from(opening)).await.is_err() {
                return;
            }
            loop {
                let next = match tokio::time::timeout(KEEP_ALIVE, snapshots.changed()).await {
                    Ok(Ok(())) => {
                        let snapshot = snapshots.borrow_and_update().clone();
                        event(&render(lang, &snapshot, only.as_deref()))
                    }
                    // The sampler is gone: end the stream, the browser reconnects.
                    Ok(Err(_)) => return,
                    Err(_) => ": keep-alive\n\n".to_string(),
                };
                // An error means the page went away.
                if sender.send(Bytes::from(next)).await.is_err() {
                    return;
                }
            }
        });
        let mut response = Body::new(EventBody(receiver)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        response
    }
}

/// One `overview` event carrying `html` (each line a `data:` line). A carriage return
/// would end a line for the browser too, so none is sent (the HTML escapes them).
fn event(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + 64);
    out.push_str("event: overview\n");
    for line in html.lines() {
        out.push_str("data: ");
        out.extend(line.chars().filter(|c| *c != '\r'));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// A response body fed by a channel: each message is sent as it comes.
struct EventBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|next| next.map(|bytes| Ok(Frame::data(bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_an_event_is_a_data_line() {
        assert_eq!(
            event("<p>a</p>\n<p>b</p>"),
            "event: overview\ndata: <p>a</p>\ndata: <p>b</p>\n\n"
        );
        assert_eq!(event("a\revent: x"), "event: overview\ndata: aevent: x\n\n");
    }
}

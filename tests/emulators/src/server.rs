//! What every emulator shares: a loopback server, the request log and fault injection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::task::JoinHandle;

/// One request as the emulator received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a query parameter (percent-decoding `%XX` and `+`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_pairs(&self.query)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The body parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A failure to inject into the next matching requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The platform's rate limit: X answers 429 with `x-rate-limit-reset`; Graph answers
    /// error code 613 with usage headers at 100 %.
    RateLimited {
        /// Seconds until the window resets.
        reset_after_secs: u64,
    },
    /// A server error with this status.
    ServerError(u16),
    /// The credential has expired (X: 401; Graph: code 190, subcode 463).
    ExpiredToken,
    /// Answer normally, but only after this delay.
    Slow(Duration),
    /// Answer normally, saying the rate-limit window is now spent (X:
    /// `x-rate-limit-remaining: 0`) until it resets this many seconds later. The X
    /// emulator only; the others answer normally.
    LastInWindow {
        /// Seconds until the window resets.
        reset_after_secs: u64,
    },
}

#[derive(Debug)]
struct Injected {
    path_contains: String,
    fault: Fault,
    remaining: u32,
}

/// The request log and fault queue of one emulator.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    requests: Mutex<Vec<Recorded>>,
    faults: Mutex<Vec<Injected>>,
}

impl Journal {
    pub(crate) fn record(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Recorded {
        let recorded = Recorded {
            method: method.as_str().to_string(),
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        };
        lock(&self.requests).push(recorded.clone());
        recorded
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        lock(&self.requests).clone()
    }

    pub(crate) fn inject(&self, path_contains: &str, fault: Fault, times: u32) {
        lock(&self.faults).push(Injected {
            path_contains: path_contains.to_string(),
            fault,
            remaining: times,
        });
    }

    pub(crate) fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// Takes one injected fault matching `path`, if any.
    pub(crate) fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let injected = faults
            .iter_mut()
            .find(|f| f.remaining > 0 && path.contains(&f.path_contains))?;
        injected.remaining -= 1;
        Some(injected.fault.clone())
    }
}

/// Locks a mutex, recovering the data if a panicking test thread poisoned it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running loopback server; stops when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    pub(crate) async fn start(router: Router) -> anyhow::Result<Server> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("emulator on {addr} stopped: {e}");
            }
        });
        Ok(Server { addr, task })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Splits a query string into decoded pairs.
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

pub(crate) fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push(high * 16 + low);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON response with extra headers.
pub(crate) fn json(
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: serde_json::Value,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    for (name, value) in headers {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Shared state plus the journal, for handlers.
pub(crate) type Shared<S> = Arc<(Journal, Mutex<S>)>;

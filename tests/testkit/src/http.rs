//! A scripted platform on loopback: it answers each request with the next matching
//! [`Exchange`] and records everything, so a test asserts exactly what a connector sent.
//!
//! Exchanges match on method and path (the query is the connector's business, and is
//! recorded for assertions). Each is used once, in order; a request nothing matches gets a
//! `501` whose body names it, and shows up in [`ScriptedServer::requests`] like any other.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
pub use centralino_emulators::Recorded;
use tokio::task::JoinHandle;

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Exchange {
    method: String,
    path: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Exchange {
    /// An exchange for `method path`, answering an empty `200` until told otherwise.
    pub fn new(method: &str, path: &str) -> Self {
        Exchange {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// `POST path`.
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    /// Answers `status` with a JSON body.
    pub fn reply_json(mut self, status: u16, body: serde_json::Value) -> Self {
        self.status = status;
        self.body = body.to_string().into_bytes();
        self.headers
            .push(("content-type".to_string(), "application/json".to_string()));
        self
    }

    /// Answers `status` with a raw body.
    pub fn reply(mut self, status: u16, body: impl Into<Vec<u8>>) -> Self {
        self.status = status;
        self.body = body.into();
        self
    }

    /// Adds a response header (a rate-limit header, say).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

#[derive(Debug, Default)]
struct Script {
    pending: Vec<Exchange>,
    requests: Vec<Recorded>,
}

/// A loopback HTTP server playing a script. Stops when dropped.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: JoinHandle<()>,
}

fn lock(script: &Mutex<Script>) -> MutexGuard<'_, Script> {
    script
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ScriptedServer {
    /// Starts on an ephemeral loopback port with these exchanges.
    pub async fn start(exchanges: Vec<Exchange>) -> anyhow::Result<ScriptedServer> {
        let script = Arc::new(Mutex::new(Script {
            pending: exchanges,
            requests: Vec::new(),
        }));
        let router = Router::new().fallback(answer).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("scripted server on {addr} stopped: {e}");
            }
        });
        Ok(ScriptedServer { addr, script, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:<port>`, for allow-lists.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.script).requests.clone()
    }

    /// `METHOD path` of the exchanges not used yet.
    pub fn unused(&self) -> Vec<String> {
        lock(&self.script)
            .pending
            .iter()
            .map(|e| format!("{} {}", e.method, e.path))
            .collect()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
    let mut script = lock(&script);
    let found = script
        .pending
        .iter()
        .position(|e| e.method == recorded.method && e.path == recorded.path);
    let response = match found {
        Some(index) => {
            let exchange = script.pending.remove(index);
            let status = StatusCode::from_u16(exchange.status).unwrap_or(StatusCode::OK);
            let mut response = (status, exchange.body).into_response();
            for (name, value) in exchange.headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::try_from(name.as_str()),
                    HeaderValue::try_from(value.as_str()),
                ) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        None => (
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "no scripted exchange for {} {}",
                recorded.method, recorded.path
            ),
        )
            .into_response(),
    };
    script.requests.push(recorded);
    response
}

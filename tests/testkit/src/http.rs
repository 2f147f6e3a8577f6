//! A scripted platform on loopback: it answers each request with the next matching
//! [`Exchange`] and records everything, so a test asserts exactly what a connector sent.
//!
//! Exchanges match on method and path (the query is the connector's business, and is
//! recorded for assertions). Each is used once, in order; a request nothing matches gets a
//! `501` whose body names it, and shows up in [`ScriptedServer::requests`] like any other.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

/// One request as the scripted server received it.
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

    /// The first value of a query parameter, percent-decoded (`+` is a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key) == name).then(|| decode(value))
        })
    }

    /// The body parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// `application/x-www-form-urlencoded` decoding of one key or value; a malformed escape
/// is kept as written.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

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
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = script.clone();
        let task = tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        eprintln!("scripted server on {addr} stopped: {e}");
                        return;
                    }
                };
                let script = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let script = script.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(&script, request).await) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = connection.await {
                        eprintln!("scripted server on {addr}: a connection failed: {e}");
                    }
                });
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

async fn answer(script: &Mutex<Script>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return respond(StatusCode::BAD_REQUEST, format!("reading the body: {e}")),
    };
    let recorded = Recorded {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts
            .headers
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
    let mut script = lock(script);
    let found = script
        .pending
        .iter()
        .position(|e| e.method == recorded.method && e.path == recorded.path);
    let response = match found {
        Some(index) => {
            let exchange = script.pending.remove(index);
            let status = StatusCode::from_u16(exchange.status).unwrap_or(StatusCode::OK);
            let mut response = respond(status, exchange.body);
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
        None => respond(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "no scripted exchange for {} {}",
                recorded.method, recorded.path
            ),
        ),
    };
    script.requests.push(recorded);
    response
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(query: &str) -> Recorded {
        Recorded {
            method: "GET".into(),
            path: "/".into(),
            query: query.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    #[test]
    fn query_parameters_are_percent_decoded_and_malformed_escapes_kept() {
        let r = recorded("q=ciao+Mario%21&since_id=17&bad=%zz%4&utf=caff%C3%A8");
        assert_eq!(r.query_param("q").as_deref(), Some("ciao Mario!"));
        assert_eq!(r.query_param("since_id").as_deref(), Some("17"));
        assert_eq!(r.query_param("bad").as_deref(), Some("%zz%4"));
        assert_eq!(r.query_param("utf").as_deref(), Some("caffè"));
        assert_eq!(r.query_param("missing"), None);
    }

    #[tokio::test]
    async fn a_scripted_exchange_answers_once_and_anything_else_gets_501() {
        let server = ScriptedServer::start(vec![
            Exchange::post("/send")
                .reply_json(201, serde_json::json!({ "id": "m-1" }))
                .header("x-rate-limit-remaining", "9"),
        ])
        .await
        .unwrap();
        let client = reqwest::Client::new();
        let url = format!("{}/send?to=mario", server.base_url());
        let first = client.post(&url).body("ciao").send().await.unwrap();
        assert_eq!(first.status().as_u16(), 201);
        assert_eq!(first.headers()["x-rate-limit-remaining"], "9");
        assert_eq!(first.text().await.unwrap(), r#"{"id":"m-1"}"#);
        let second = client.post(&url).send().await.unwrap();
        assert_eq!(second.status().as_u16(), 501);
        assert!(second.text().await.unwrap().contains("POST /send"));
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].body, b"ciao");
        assert_eq!(requests[0].query_param("to").as_deref(), Some("mario"));
        assert!(server.unused().is_empty());
    }
}

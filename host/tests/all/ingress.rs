//! Ingress hardening, through the HTTP server on loopback: slow clients (raw TCP), body
//! caps, signatures checked before parsing, wrong content types, malformed and deeply
//! nested JSON, against the real Twitter and Facebook plugins.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use centralino::Host;
use centralino::IngressLimits;
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::connectors::ConnectorSpec;
use centralino::types::{AccountConfig, ConnectorConfig};
use centralino_emulators::webhooks::{
    facebook_delivery_headers, messenger_text, tweet_create, twitter_delivery_headers,
};
use centralino_emulators::{GraphApi, XApi};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::component;
use crate::hostile::{health, stored_ids, twitter};

const CONSUMER_SECRET: &str = "x-consumer-secret";
const APP_SECRET: &str = "fb-app-secret";

/// Longest a socket read may take before the test calls it a hang.
const PATIENCE: Duration = Duration::from_secs(30);

struct Ingress {
    host: Host,
    addr: std::net::SocketAddr,
    _x: XApi,
    _graph: GraphApi,
    _server: tokio::task::JoinHandle<()>,
}

impl Ingress {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn post(
        &self,
        connector: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> (u16, String) {
        let mut request = reqwest::Client::new()
            .post(self.url(&format!("/webhooks/{connector}")))
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Posts `body` to `connector`, signed as its platform signs.
    async fn signed(&self, connector: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        let mut headers = match connector {
            "twitter" => twitter_delivery_headers(CONSUMER_SECRET, body),
            _ => facebook_delivery_headers(APP_SECRET, body),
        };
        headers.retain(|(name, _)| name != "content-type");
        headers.push(("content-type".to_string(), content_type.to_string()));
        self.post(connector, &headers, body.to_vec()).await
    }

    /// No connector faulted and nothing was stored.
    async fn assert_untouched(&self) {
        for name in ["twitter", "facebook"] {
            let h = health(&self.host, name);
            assert_eq!(h.faults, 0, "{name}: {:?}", h.last_fault);
            assert!(
                stored_ids(&self.host, name).await.is_empty(),
                "{name} stored nothing"
            );
        }
    }
}

fn facebook(graph: &GraphApi) -> ConnectorSpec {
    let mut secrets = BTreeMap::new();
    secrets.insert("app_secret".to_string(), Secret::new(APP_SECRET));
    secrets.insert("verify_token".to_string(), Secret::new("verify-me"));
    let mut credentials = BTreeMap::new();
    credentials.insert(
        "tim-page".to_string(),
        Credential::QueryParameter {
            name: "access_token".to_string(),
            token: Secret::new("page-token-tim"),
        },
    );
    let mut spec = ConnectorSpec::new(
        "facebook",
        component("facebook"),
        ConnectorConfig {
            settings: vec![("graph_base".to_string(), graph.base_url())],
            accounts: vec![AccountConfig {
                id: "5001".to_string(),
                handle: Some("TIM".to_string()),
                credential: Some("tim-page".to_string()),
                settings: Vec::new(),
            }],
        },
    );
    spec.grants = Grants::default()
        .allow_hosts(vec![graph.authority()])
        .credentials(credentials)
        .secrets(secrets);
    spec
}

/// A host with the Twitter and Facebook connectors (no background polling), served with
/// `limits`.
async fn ingress(limits: IngressLimits) -> Ingress {
    let x = XApi::start().await.unwrap();
    let graph = GraphApi::start().await.unwrap();
    let mut twitter = twitter(&x);
    twitter.poll_interval = None;
    let host = Host::builder()
        .connector(twitter)
        .connector(facebook(&graph))
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = host.clone();
    let server = tokio::spawn(async move {
        serving.serve_with(listener, limits).await.unwrap();
    });
    Ingress {
        host,
        addr,
        _x: x,
        _graph: graph,
        _server: server,
    }
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut received)).await;
    assert!(
        read.is_ok(),
        "the server kept the connection open for {PATIENCE:?}"
    );
    String::from_utf8_lossy(&received).into_owned()
}

fn mention() -> Vec<u8> {
    serde_json::to_vec(&tweet_create(
        "1001",
        "1860000000000000777",
        ("42", "mario_rossi", "Mario"),
        "@TIM_Official ciao",
        None,
    ))
    .unwrap()
}

/// `depth` levels of `open`, then `inner`, then as many `close`.
fn nested(depth: usize, open: &str, inner: &str, close: &str) -> Vec<u8> {
    let mut body = open.repeat(depth);
    body.push_str(inner);
    body.push_str(&close.repeat(depth));
    body.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_finish_their_headers_are_disconnected_and_others_are_served() {
    let limits = IngressLimits {
        header_read_timeout: Duration::from_millis(500),
        ..IngressLimits::default()
    };
    let ingress = ingress(limits).await;
    // Twenty slowloris clients: a request line, one header, then silence.
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(ingress.addr).await.unwrap();
        stream
            .write_all(b"POST /webhooks/twitter HTTP/1.1\r\nHost: centralino\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    // Meanwhile a real delivery goes through.
    let body = mention();
    let (status, _) = ingress.signed("twitter", "application/json", &body).await;
    assert_eq!(status, 200);
    assert_eq!(stored_ids(&ingress.host, "twitter").await.len(), 1);
    let started = Instant::now();
    for stream in &mut slow {
        read_until_closed(stream).await;
    }
    assert!(started.elapsed() < PATIENCE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trickles_its_body_gets_408_and_is_disconnected() {
    let limits = IngressLimits {
        body_read_timeout: Duration::from_millis(800),
        ..IngressLimits::default()
    };
    let ingress = ingress(limits).await;
    let mut stream = TcpStream::connect(ingress.addr).await.unwrap();
    stream
        .write_all(
            b"POST /webhooks/twitter HTTP/1.1\r\nHost: centralino\r\n\
              content-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
        )
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // One byte every 100 ms: the whole body would take 100 s.
    let trickle = tokio::spawn(async move {
        for _ in 0..999 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut received)).await;
    trickle.abort();
    assert!(
        read.is_ok(),
        "the slow body held the connection for {PATIENCE:?}"
    );
    let response = String::from_utf8_lossy(&received);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    ingress.assert_untouched().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let limits = IngressLimits {
        header_read_timeout: Duration::from_millis(500),
        ..IngressLimits::default()
    };
    let ingress = ingress(limits).await;
    let mut stream = TcpStream::connect(ingress.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: centralino\r\n\r\n")
        .await
        .unwrap();
    let response = read_until_closed(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused_declared_or_chunked() {
    let limits = IngressLimits {
        max_body_bytes: 64 << 10,
        ..IngressLimits::default()
    };
    let ingress = ingress(limits).await;
    // Declared too large: refused before a byte of the body is sent.
    let mut stream = TcpStream::connect(ingress.addr).await.unwrap();
    stream
        .write_all(
            b"POST /webhooks/twitter HTTP/1.1\r\nHost: centralino\r\n\
              content-length: 10485760\r\n\r\n",
        )
        .await
        .unwrap();
    let response = read_until_closed(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");

    // Chunked, no length: refused once the cap is passed.
    let mut stream = TcpStream::connect(ingress.addr).await.unwrap();
    stream
        .write_all(
            b"POST /webhooks/twitter HTTP/1.1\r\nHost: centralino\r\n\
              transfer-encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 16 << 10, "x".repeat(16 << 10));
    for _ in 0..8 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let response = read_until_closed(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    ingress.assert_untouched().await;
}

#[tokio::test]
async fn signatures_are_checked_before_the_body_is_parsed() {
    let ingress = ingress(IngressLimits::default()).await;
    // Bodies that would fail parsing: if the plugin parsed first, these would be 400.
    let bodies = [
        b"{\"for_user_id\": ".to_vec(),
        nested(100_000, "[", "", "]"),
        b"\xff\xfe not even UTF-8".to_vec(),
    ];
    for connector in ["twitter", "facebook"] {
        for body in &bodies {
            let (missing, _) = ingress.post(connector, &[], body.clone()).await;
            assert_eq!(missing, 401, "{connector}: no signature");
            let forged = match connector {
                "twitter" => twitter_delivery_headers("not-the-secret", body),
                _ => facebook_delivery_headers("not-the-secret", body),
            };
            let (wrong, _) = ingress.post(connector, &forged, body.clone()).await;
            assert_eq!(wrong, 403, "{connector}: wrong signature");
        }
    }
    ingress.assert_untouched().await;
}

#[tokio::test]
async fn malformed_json_is_refused_with_400_and_nothing_is_stored() {
    let ingress = ingress(IngressLimits::default()).await;
    let full = mention();
    // Not JSON, or not a JSON object: both plugins answer 400.
    let malformed: Vec<Vec<u8>> = vec![
        Vec::new(),
        full[..full.len() / 2].to_vec(),
        [full.clone(), b" trailing garbage".to_vec()].concat(),
        b"{\"for_user_id\": \"1001\", }".to_vec(),
        b"{\"object\": \"page\", \"entry\": [}".to_vec(),
        b"{\"a\": NaN}".to_vec(),
        b"{\"for_user_id\": 1e999999}".to_vec(),
        b"{\"for_user_id\": \"\\ud800\"}".to_vec(),
        b"\xff\xfe\x00{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"a string\"".to_vec(),
    ];
    for connector in ["twitter", "facebook"] {
        for body in &malformed {
            let (status, text) = ingress.signed(connector, "application/json", body).await;
            assert_eq!(
                status,
                400,
                "{connector}: {:?} answered {text}",
                String::from_utf8_lossy(body)
            );
        }
    }
    // Well-formed JSON of an unexpected shape: a plugin may acknowledge it as an event it
    // does not handle (X sends many) or refuse it, but never stores it or traps on it.
    let foreign: Vec<Vec<u8>> = vec![
        b"{\"object\": \"page\", \"entry\": [{\"id\": {\"nested\": true}, \"messaging\": 7}]}"
            .to_vec(),
        b"{\"for_user_id\": \"1001\", \"tweet_create_events\": [{\"id_str\": []}]}".to_vec(),
        b"{\"for_user_id\": \"1001\", \"tweet_create_events\": 42}".to_vec(),
        b"{\"object\": \"page\", \"entry\": [{\"messaging\": [{\"message\": {\"text\": 1}}]}]}"
            .to_vec(),
        b"{}".to_vec(),
    ];
    for connector in ["twitter", "facebook"] {
        for body in &foreign {
            let (status, text) = ingress.signed(connector, "application/json", body).await;
            assert!(
                status == 200 || status == 400,
                "{connector}: {:?} answered {status} {text}",
                String::from_utf8_lossy(body)
            );
        }
    }
    ingress.assert_untouched().await;
    // Still serving.
    let (status, _) = ingress.signed("twitter", "application/json", &full).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn deeply_nested_json_does_not_overflow_the_plugin_stack() {
    let ingress = ingress(IngressLimits::default()).await;
    let depth = 100_000;
    let inside = |prefix: &str, open: &str, inner: &str, close: &str, suffix: &str| {
        [
            prefix.as_bytes(),
            &nested(depth, open, inner, close),
            suffix.as_bytes(),
        ]
        .concat()
    };
    // 100,000 levels, bare and inside each platform's envelope, where the plugins parse
    // typed fields, skip unknown ones, or keep free-form JSON.
    let bodies = [
        nested(depth, "[", "", "]"),
        nested(depth, "{\"a\":", "0", "}"),
        inside(
            "{\"for_user_id\":\"1001\",\"tweet_create_events\":",
            "[",
            "",
            "]",
            "}",
        ),
        inside(
            "{\"for_user_id\":\"1001\",\"tweet_create_events\":[{\"id_str\":\"1\",\"entities\":",
            "{\"x\":",
            "0",
            "}",
            "}]}",
        ),
        inside("{\"for_user_id\":\"1001\",\"unknown\":", "[", "", "]", "}"),
        inside("{\"object\":\"page\",\"entry\":", "[", "", "]", "}"),
        inside(
            "{\"object\":\"page\",\"entry\":[{\"id\":\"5001\",\"messaging\":[{\"message\":",
            "{\"x\":",
            "0",
            "}",
            "}]}]}",
        ),
        inside(
            "{\"object\":\"page\",\"entry\":[{\"id\":\"5001\",\"changes\":[{\"field\":\"feed\",\"value\":",
            "[",
            "",
            "]",
            "}]}]}",
        ),
    ];
    for connector in ["twitter", "facebook"] {
        for body in &bodies {
            let (status, text) = ingress.signed(connector, "application/json", body).await;
            // The plugin answered: refused (parser limit) or acknowledged as nothing it
            // handles. A stack overflow would be a trap: a 503 and a fault.
            assert!(
                status == 400 || status == 200,
                "{connector}: {status} {text}"
            );
        }
    }
    ingress.assert_untouched().await;
    let (status, _) = ingress
        .signed("twitter", "application/json", &mention())
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn wrong_content_types_are_judged_by_the_signature_and_the_body() {
    let ingress = ingress(IngressLimits::default()).await;
    // Bodies that are not the platforms' JSON, each with its own content type, signed.
    let wrong = [
        (
            "application/x-www-form-urlencoded",
            b"for_user_id=1001&text=ciao".to_vec(),
        ),
        ("text/xml", b"<tweet><text>ciao</text></tweet>".to_vec()),
        (
            "multipart/form-data; boundary=x",
            b"--x\r\ncontent-disposition: form-data; name=\"a\"\r\n\r\nb\r\n--x--".to_vec(),
        ),
        ("application/octet-stream", vec![0, 159, 146, 150, 0xff, 0]),
        ("text/plain", b"mario: ciao".to_vec()),
    ];
    for connector in ["twitter", "facebook"] {
        for (content_type, body) in &wrong {
            let (status, text) = ingress.signed(connector, content_type, body).await;
            assert_eq!(status, 400, "{connector} with {content_type}: {text}");
        }
    }
    ingress.assert_untouched().await;
    // The label is not what proves a delivery: the signature over the bytes is. A signed,
    // well-formed delivery is taken whatever its content type says (platforms have sent
    // `text/plain` and charset variants), and an unsigned one never is.
    let body = serde_json::to_vec(&messenger_text(
        "5001",
        "7001",
        "m_1",
        "ciao",
        1_795_856_400_000,
    ))
    .unwrap();
    let (status, _) = ingress.signed("facebook", "text/plain", &body).await;
    assert_eq!(status, 200);
    let (status, _) = ingress
        .post(
            "facebook",
            &[("content-type".to_string(), "application/json".to_string())],
            body,
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(stored_ids(&ingress.host, "facebook").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_slow_connections_from_one_peer_does_not_delay_another_peers_delivery() {
    // The attack: more slow connections than the ingress serves at once, from one address.
    // Without a per-peer share they fill every slot, and a platform's delivery waits in
    // the accept queue until header timeouts free one.
    let limits = IngressLimits {
        max_connections: 64,
        max_connections_per_peer: 8,
        header_read_timeout: Duration::from_secs(20),
        ..IngressLimits::default()
    };
    let ingress = ingress(limits).await;
    let mut slow = Vec::new();
    for _ in 0..300 {
        let Ok(mut stream) = TcpStream::connect(ingress.addr).await else {
            continue;
        };
        let _ = stream
            .write_all(b"POST /webhooks/twitter HTTP/1.1\r\nHost: centralino\r\n")
            .await;
        slow.push(stream);
    }
    // The platform delivers from another address (127.0.0.2 is loopback too).
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let body = mention();
    let mut request = client
        .post(ingress.url("/webhooks/twitter"))
        .body(body.clone());
    for (name, value) in twitter_delivery_headers(CONSUMER_SECRET, &body) {
        request = request.header(name, value);
    }
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(15), request.send())
        .await
        .expect("the delivery waited behind the flood")
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // Far below the 20 s a freed slot would take.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stored_ids(&ingress.host, "twitter").await.len(), 1);
    // The flooder kept only its share: the rest of its connections were closed at once.
    let mut closed = 0;
    for stream in &mut slow {
        let mut byte = [0u8; 1];
        // Closed unread, the socket may answer with a reset rather than an end of file.
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(5), stream.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert!(
        closed >= slow.len() - 8,
        "{closed} of {} closed",
        slow.len()
    );
}

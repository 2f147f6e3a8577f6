//! The host's `http` capability, driven by the `http-probe` guest against the loopback
//! platform emulators: allow-lists, host-attached credentials, rate-limit windows,
//! retries, size caps, timeouts.

use std::collections::BTreeMap;
use std::time::Duration;

use centralino::capabilities::{Credential, Grants, Secret};
use centralino::runtime::{ChannelInstance, PluginLimits, Runtime};
use centralino::types::{ConnectorConfig, WebhookRequest};
use centralino_emulators::{Fault, GraphApi, XApi};

use crate::component;

async fn x_api() -> XApi {
    let x = XApi::start().await.unwrap();
    x.add_user("1001", "TIM_Official", "TIM", "token-tim");
    x
}

fn grants(allowed: &[String]) -> Grants {
    let mut credentials = BTreeMap::new();
    credentials.insert(
        "tim".to_string(),
        Credential::Bearer(Secret::new("token-tim")),
    );
    credentials.insert(
        "page".to_string(),
        Credential::QueryParameter {
            name: "access_token".to_string(),
            token: Secret::new("page-token"),
        },
    );
    Grants::default()
        .allow_hosts(allowed.iter().cloned())
        .credentials(credentials)
}

pub fn probe(grants: Grants, limits: PluginLimits) -> ChannelInstance {
    let plugin = Runtime::new()
        .unwrap()
        .load_channel(component("http-probe"))
        .unwrap();
    plugin.instance(ConnectorConfig::default(), grants, limits)
}

/// Runs one request through the probe; returns (status line or error, body).
pub async fn fetch(probe: &mut ChannelInstance, spec: &str) -> String {
    let outcome = probe
        .handle_webhook(WebhookRequest {
            method: "POST".to_string(),
            path: "/".to_string(),
            query: String::new(),
            headers: Vec::new(),
            body: spec.as_bytes().to_vec(),
        })
        .await
        .unwrap();
    String::from_utf8(outcome.response.body).unwrap()
}

#[tokio::test]
async fn the_host_attaches_a_bearer_credential_the_plugin_only_names() {
    let x = x_api().await;
    let mut probe = probe(grants(&[x.authority()]), PluginLimits::default());
    let result = fetch(
        &mut probe,
        &format!("GET {}/2/users/1001/mentions tim", x.base_url()),
    )
    .await;
    assert!(result.starts_with("200\n"), "{result}");
    let requests = x.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer token-tim")
    );
}

#[tokio::test]
async fn the_host_attaches_a_graph_token_as_a_query_parameter() {
    let graph = GraphApi::start().await.unwrap();
    graph.add_page("2001", "page-token");
    let mut probe = probe(grants(&[graph.authority()]), PluginLimits::default());
    let result = fetch(
        &mut probe,
        &format!("POST {}/v25.0/me/messages page", graph.base_url()),
    )
    .await;
    // The token was accepted (no error 190); the empty message is refused with error 100.
    assert!(
        result.starts_with("400\n") && result.contains("\"code\":100"),
        "{result}"
    );
    assert_eq!(
        graph.requests()[0].query_param("access_token").as_deref(),
        Some("page-token")
    );
    assert!(
        !result.contains("page-token"),
        "the token never reaches the plugin: {result}"
    );
}

#[tokio::test]
async fn a_host_off_the_allow_list_is_denied_and_never_contacted() {
    let x = x_api().await;
    let mut probe = probe(grants(&["api.x.com".to_string()]), PluginLimits::default());
    let result = fetch(
        &mut probe,
        &format!("GET {}/2/users/1001/mentions tim", x.base_url()),
    )
    .await;
    assert!(
        result.starts_with("ERROR denied: plugin http-probe@0.1.0 may not reach"),
        "{result}"
    );
    assert!(x.requests().is_empty());
}

#[tokio::test]
async fn an_ungranted_credential_is_denied_and_nothing_is_sent() {
    let x = x_api().await;
    let mut probe = probe(grants(&[x.authority()]), PluginLimits::default());
    let result = fetch(
        &mut probe,
        &format!("GET {}/2/users/1001/mentions telecom", x.base_url()),
    )
    .await;
    assert_eq!(
        result,
        "ERROR denied: credential `telecom` is not granted to plugin http-probe@0.1.0"
    );
    assert!(x.requests().is_empty());
}

#[tokio::test]
async fn a_plugin_cannot_set_the_authorization_header_itself() {
    let x = x_api().await;
    let mut probe = probe(grants(&[x.authority()]), PluginLimits::default());
    let spec = format!(
        "GET {}/2/users/1001/mentions\nAuthorization: Bearer stolen",
        x.base_url()
    );
    let result = fetch(&mut probe, &spec).await;
    assert!(
        result.starts_with("ERROR invalid-request: header `Authorization` is set by the host"),
        "{result}"
    );
    assert!(x.requests().is_empty());
}

#[tokio::test]
async fn a_spent_rate_limit_window_holds_requests_instead_of_hammering() {
    let x = x_api().await;
    x.inject(
        "/mentions",
        Fault::RateLimited {
            reset_after_secs: 60,
        },
        1,
    );
    let mut probe = probe(grants(&[x.authority()]), PluginLimits::default());
    let url = format!("GET {}/2/users/1001/mentions tim", x.base_url());
    let first = fetch(&mut probe, &url).await;
    assert!(first.starts_with("429\n"), "{first}");
    let second = fetch(&mut probe, &url).await;
    let wait: u64 = second
        .strip_prefix("ERROR rate-limited: ")
        .unwrap()
        .parse()
        .unwrap();
    assert!((55_000..=60_000).contains(&wait), "{wait}");
    assert_eq!(
        x.requests().len(),
        1,
        "the second request never left the host"
    );
    // Another endpoint has its own window.
    let other = fetch(&mut probe, &format!("GET {}/2/dm_events tim", x.base_url())).await;
    assert!(other.starts_with("200\n"), "{other}");
}

#[tokio::test]
async fn idempotent_requests_are_retried_after_server_errors() {
    let x = x_api().await;
    x.inject("/mentions", Fault::ServerError(503), 2);
    let mut probe = probe(grants(&[x.authority()]), PluginLimits::default());
    let result = fetch(
        &mut probe,
        &format!("GET {}/2/users/1001/mentions tim", x.base_url()),
    )
    .await;
    assert!(result.starts_with("200\n"), "{result}");
    assert_eq!(x.requests().len(), 3);
}

#[tokio::test]
async fn a_post_is_never_retried() {
    let x = x_api().await;
    x.inject("/2/tweets", Fault::ServerError(503), 1);
    let mut probe = probe(grants(&[x.authority()]), PluginLimits::default());
    let result = fetch(&mut probe, &format!("POST {}/2/tweets tim", x.base_url())).await;
    assert!(result.starts_with("503\n"), "{result}");
    assert_eq!(x.requests().len(), 1);
}

#[tokio::test]
async fn an_oversized_response_is_refused() {
    let x = x_api().await;
    let limits = PluginLimits {
        http_max_response_bytes: 16,
        ..PluginLimits::default()
    };
    let mut probe = probe(grants(&[x.authority()]), limits);
    let result = fetch(
        &mut probe,
        &format!("GET {}/2/users/1001/mentions tim", x.base_url()),
    )
    .await;
    assert_eq!(result, "ERROR too-large: 16");
}

#[tokio::test]
async fn a_slow_platform_times_out() {
    let x = x_api().await;
    x.inject("/mentions", Fault::Slow(Duration::from_secs(3)), 1);
    let limits = PluginLimits {
        http_timeout: Duration::from_millis(200),
        http_retries: 0,
        ..PluginLimits::default()
    };
    let mut probe = probe(grants(&[x.authority()]), limits);
    let result = fetch(
        &mut probe,
        &format!("GET {}/2/users/1001/mentions tim", x.base_url()),
    )
    .await;
    assert_eq!(result, "ERROR timeout: ");
}

#[tokio::test]
async fn waiting_on_the_network_does_not_count_against_the_call_deadline() {
    let x = x_api().await;
    x.inject("/mentions", Fault::Slow(Duration::from_millis(600)), 1);
    let limits = PluginLimits {
        call_deadline: Duration::from_millis(100),
        ..PluginLimits::default()
    };
    let mut probe = probe(grants(&[x.authority()]), limits);
    let result = fetch(
        &mut probe,
        &format!("GET {}/2/users/1001/mentions tim", x.base_url()),
    )
    .await;
    assert!(result.starts_with("200\n"), "{result}");
}

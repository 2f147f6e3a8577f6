//! Platform API versions: the host notices when Graph answers with another version than the
//! connector asked for, and when the configured version is past its end of life, and says
//! so in the connector's health, `/metrics` and `centralino status`.

use std::collections::BTreeMap;
use std::process::Command;

use centralino::Host;
use centralino::api::AdminApi;
use centralino::capabilities::{Credential, Grants, Secret};
use centralino::connectors::{ConnectorHealth, ConnectorSpec};
use centralino::types::{AccountConfig, ConnectorConfig, MessageKind, OutboundMessage};
use centralino_emulators::GraphApi;

use crate::component;

const ADMIN: &str = "admin-token-for-versions";

/// A host serving page 5001 through the Graph emulator, with `api_version` as given.
async fn host(graph: &GraphApi, api_version: Option<&str>) -> Host {
    graph.add_page("5001", "page-token");
    let credentials = BTreeMap::from([(
        "page".to_string(),
        Credential::QueryParameter {
            name: "access_token".to_string(),
            token: Secret::new("page-token"),
        },
    )]);
    let secrets = BTreeMap::from([
        ("app_secret".to_string(), Secret::new("app-secret")),
        ("verify_token".to_string(), Secret::new("verify-me")),
    ]);
    let mut settings = vec![("graph_base".to_string(), graph.base_url())];
    settings.extend(api_version.map(|v| ("api_version".to_string(), v.to_string())));
    let mut spec = ConnectorSpec::new(
        "facebook",
        component("facebook"),
        ConnectorConfig {
            settings,
            accounts: vec![AccountConfig {
                id: "5001".to_string(),
                handle: Some("TIM".to_string()),
                credential: Some("page".to_string()),
                settings: Vec::new(),
            }],
        },
    );
    spec.grants = Grants::default()
        .allow_hosts(vec![graph.authority()])
        .credentials(credentials)
        .secrets(secrets);
    Host::builder().connector(spec).build().await.unwrap()
}

async fn reply(host: &Host, graph: &GraphApi) {
    graph.customer_wrote("5001", "7001");
    host.send(
        "default",
        "facebook",
        OutboundMessage {
            account: "5001".to_string(),
            conversation_key: "fb:5001:7001".to_string(),
            kind: MessageKind::PrivateMessage,
            recipient: Some("7001".to_string()),
            in_reply_to: None,
            text: "Ciao!".to_string(),
            attachments: Vec::new(),
            idempotency_key: format!("reply-{}", uuid::Uuid::new_v4()),
        },
    )
    .await
    .unwrap();
}

fn health(host: &Host) -> ConnectorHealth {
    host.connector_health().into_iter().next().unwrap()
}

/// `centralino status` against the host's admin API on loopback: its stdout.
async fn status(host: &Host) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let api = AdminApi::new(host.clone(), Some(&Secret::new(ADMIN)));
    let server = tokio::spawn(async move { api.serve(listener).await.unwrap() });
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_centralino"))
            .args(["status", "--admin", &url])
            .env("CENTRALINO_ADMIN_TOKEN", ADMIN)
            .env_remove("CENTRALINO_ADMIN_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    server.abort();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn metrics(host: &Host) -> String {
    host.metrics_text().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_answering_with_another_version_than_asked_shows_in_health_status_and_metrics() {
    let graph = GraphApi::start().await.unwrap();
    let host = host(&graph, None).await;
    // By default the connector asks for a current version, and Graph serves that one.
    reply(&host, &graph).await;
    assert!(
        graph.requests().last().unwrap().path.starts_with("/v25.0/"),
        "{:?}",
        graph.requests().last().unwrap().path
    );
    let h = health(&host);
    assert_eq!(
        (h.api_version_served, h.api_version_retirement),
        (None, None)
    );
    assert!(
        status(&host)
            .await
            .lines()
            .all(|l| !l.contains("API version"))
    );

    // Graph answers with another version than asked for (as for a retired one).
    graph.serve_version("v26.0");
    reply(&host, &graph).await;
    let served = health(&host).api_version_served.unwrap().message;
    assert_eq!(
        served,
        "plugin facebook@0.1.0: Graph served API version v26.0 to a request for v25.0: v25.0 \
         is retired or unavailable, so Meta answered with another version; set `api_version` \
         to a current one"
    );
    let text = status(&host).await;
    assert!(
        text.contains(&format!("default/facebook: API version: {served}")),
        "{text}"
    );
    let metrics = metrics(&host).await;
    assert!(
        metrics.contains(
            "centralino_connector_api_version_warning{tenant=\"default\",connector=\"facebook\",kind=\"served\"} 1\n"
        ),
        "{metrics}"
    );
    // A reload (new settings or a new build) starts afresh: the next answers tell again.
    host.reload_connector("default", "facebook").await.unwrap();
    assert_eq!(health(&host).api_version_served, None);
    reply(&host, &graph).await;
    assert!(health(&host).api_version_served.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_graph_version_past_its_end_of_life_shows_in_health_status_and_metrics() {
    let graph = GraphApi::start().await.unwrap();
    let host = host(&graph, Some("v19.0")).await;
    let retirement = health(&host).api_version_retirement.unwrap();
    assert_eq!(
        retirement,
        "Graph API v19.0 (setting `api_version`) was retired on 2026-05-21: Meta serves its \
         calls with a newer version; set a current one"
    );
    let text = status(&host).await;
    assert!(
        text.contains(&format!("default/facebook: API version: {retirement}")),
        "{text}"
    );
    let metrics = metrics(&host).await;
    assert!(
        metrics.contains(
            "centralino_connector_api_version_warning{tenant=\"default\",connector=\"facebook\",kind=\"retirement\"} 1\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "centralino_connector_api_version_warning{tenant=\"default\",connector=\"facebook\",kind=\"served\"} 0\n"
        ),
        "{metrics}"
    );
}

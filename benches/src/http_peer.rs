//! The "external routing" peer: a small HTTP routing service on loopback (axum) running the
//! native policies, called with reqwest over a kept-alive connection, the way a CRM calls
//! Rocket.Chat's or Salesforce's external routing endpoint. JSON both ways.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::post;
use centralino::types::{RoutingContext, RoutingDecision};
use tokio::task::JoinHandle;

use crate::native::Policy;

/// A running routing service and a client for it. The server stops when this is dropped.
pub struct HttpPeer {
    base: String,
    client: reqwest::Client,
    server: JoinHandle<()>,
}

async fn route(
    Path(policy): Path<String>,
    Json(context): Json<RoutingContext>,
) -> Result<Json<RoutingDecision>, StatusCode> {
    let policy = Policy::from_name(&policy).ok_or(StatusCode::NOT_FOUND)?;
    Ok(Json(policy.decide(&context)))
}

impl HttpPeer {
    /// Starts the service on `127.0.0.1`, on a port of the system's choosing.
    pub async fn start() -> anyhow::Result<HttpPeer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let app = axum::Router::new().route("/route/{policy}", post(route));
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("routing service stopped: {e}");
            }
        });
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(4)
            .tcp_nodelay(true)
            .build()?;
        Ok(HttpPeer {
            base,
            client,
            server,
        })
    }

    /// Asks the service for `policy`'s decision on `context`.
    pub async fn decide(
        &self,
        policy: Policy,
        context: &RoutingContext,
    ) -> anyhow::Result<RoutingDecision> {
        let response = self
            .client
            .post(format!("{}/route/{}", self.base, policy.name()))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(context)?)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "routing service answered {}",
            response.status()
        );
        Ok(serde_json::from_slice(&response.bytes().await?)?)
    }
}

impl Drop for HttpPeer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

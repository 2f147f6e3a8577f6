//! The hardened serving loop every listener of the host uses (webhook ingress, REST and
//! admin APIs): header read timeout, a connection cap, and a per-peer share of it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Limits of the webhook ingress. Every default is safe for a server on the internet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressLimits {
    /// Largest request body; larger ones get 413. Default: 1 MiB.
    pub max_body_bytes: usize,
    /// Longest a client may take to send the request line and headers (and longest an
    /// idle keep-alive connection stays open). Default: 10 s.
    pub header_read_timeout: Duration,
    /// Longest a client may take to send the whole body; slower ones get 408. Default: 30 s.
    pub body_read_timeout: Duration,
    /// Connections served at once. Default: 1,024.
    pub max_connections: usize,
    /// Connections served at once from one IP address; more are closed at once. The
    /// platforms deliver from pools of addresses, a few connections each. Default: 64.
    pub max_connections_per_peer: usize,
}

impl Default for IngressLimits {
    fn default() -> Self {
        IngressLimits {
            max_body_bytes: 1 << 20,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_peer: 64,
        }
    }
}

/// Serves `app` on `listener` until the future is dropped, hardened like the webhook
/// ingress: the request head must arrive within `limits.header_read_timeout` (idle
/// keep-alive connections close then too), at most `limits.max_connections` connections
/// are served at once, and at most `limits.max_connections_per_peer` of them from one IP
/// address: a peer past its share is disconnected at once instead of queueing, so one
/// client opening connections by the thousand cannot delay everyone else's.
pub async fn serve(
    app: Router,
    listener: TcpListener,
    limits: IngressLimits,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let peers = Arc::new(PeerConnections::new(limits.max_connections_per_peer.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return Ok(());
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(share) = peers.enter(peer.ip()) else {
            // Over this peer's share: closed at once, the slot free for someone else.
            drop(stream);
            continue;
        };
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            drop(share);
            drop(slot);
        });
    }
}

/// Open connections per peer address, with a cap.
struct PeerConnections {
    cap: usize,
    open: std::sync::Mutex<HashMap<std::net::IpAddr, usize>>,
    /// Connections refused for being over a peer's share, and when that was last logged.
    refused: std::sync::Mutex<(u64, Option<std::time::Instant>)>,
}

impl PeerConnections {
    fn new(cap: usize) -> Self {
        PeerConnections {
            cap,
            open: std::sync::Mutex::new(HashMap::new()),
            refused: std::sync::Mutex::new((0, None)),
        }
    }

    /// Counts a new connection from `ip`, or `None` when `ip` holds its share already.
    fn enter(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<PeerShare> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(ip).or_default();
        if *count >= self.cap {
            drop(open);
            self.refused_one(ip);
            return None;
        }
        *count += 1;
        Some(PeerShare {
            peers: self.clone(),
            ip,
        })
    }

    /// Logs refusals at most every ten seconds, with how many there were.
    fn refused_one(&self, ip: std::net::IpAddr) {
        let mut refused = self
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        refused.0 += 1;
        let due = refused
            .1
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(10));
        if due {
            tracing::warn!(
                peer = %ip,
                refused = refused.0,
                cap = self.cap,
                "connections over one peer's share closed at once (max_connections_per_peer)"
            );
            *refused = (0, Some(std::time::Instant::now()));
        }
    }
}

/// One counted connection; leaving gives the share back.
struct PeerShare {
    peers: Arc<PeerConnections>,
    ip: std::net::IpAddr,
}

impl Drop for PeerShare {
    fn drop(&mut self) {
        let mut open = self
            .peers
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

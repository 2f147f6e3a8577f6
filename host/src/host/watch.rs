//! Plugin file watching: a poll of each connector's file (size, modification time, then
//! content hash), debounced so a file still being written is not loaded, and robust on
//! every file system (no inotify limits, works on network mounts and with editors and
//! deploy tools that replace files by renaming).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Weak;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::{Host, HostInner};

/// What the watcher last saw of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
}

/// One connector's file, as the watcher follows it.
#[derive(Debug)]
struct Watched {
    path: PathBuf,
    seen: Option<Seen>,
    /// Changed since the last reload decision.
    pending: bool,
    /// Content last refused, so a broken file is tried once, not every tick.
    refused: Option<String>,
}

fn look(path: &PathBuf) -> Option<Seen> {
    let metadata = std::fs::metadata(path).ok()?;
    Some(Seen {
        len: metadata.len(),
        modified: metadata.modified().ok(),
    })
}

/// The watcher; it ends when the host is dropped.
pub(super) async fn watch(host: Weak<HostInner>, every: Duration) {
    let every = every.max(Duration::from_millis(10));
    {
        let mut files: HashMap<(String, String), Watched> = HashMap::new();
        loop {
            let Some(inner) = host.upgrade() else { return };
            let host = Host {
                inner: inner.clone(),
            };
            let mut keys: Vec<(String, String)> = inner.connectors.keys().cloned().collect();
            keys.sort();
            for key in keys {
                let Some(connector) = inner.connectors.get(&key) else {
                    continue;
                };
                let path = connector.spec().plugin;
                let now = tokio::task::spawn_blocking({
                    let path = path.clone();
                    move || look(&path)
                })
                .await
                .ok()
                .flatten();
                // A file seen for the first time (or a connector pointed at another file by a
                // config reload) is compared with the version serving once it holds still:
                // it may have changed since that version was loaded.
                let watched = files.entry(key.clone()).or_insert_with(|| Watched {
                    path: path.clone(),
                    seen: None,
                    pending: true,
                    refused: None,
                });
                if watched.path != path {
                    *watched = Watched {
                        path,
                        seen: None,
                        pending: true,
                        refused: None,
                    };
                }
                if now != watched.seen {
                    // Still changing (or just changed): wait until it holds still.
                    watched.seen = now;
                    watched.pending = true;
                    continue;
                }
                if !watched.pending || now.is_none() {
                    continue;
                }
                watched.pending = false;
                let content = tokio::task::spawn_blocking({
                    let path = watched.path.clone();
                    move || std::fs::read(&path).map(|bytes| hex::encode(Sha256::digest(bytes)))
                })
                .await;
                let Ok(Ok(sha256)) = content else {
                    continue;
                };
                let serving = connector.health().plugin_sha256;
                if sha256 == serving || watched.refused.as_deref() == Some(sha256.as_str()) {
                    continue;
                }
                let (tenant, name) = &key;
                tracing::info!(
                    tenant,
                    connector = name,
                    file = %watched.path.display(),
                    "plugin file changed; reloading"
                );
                match host.reload_connector(tenant, name).await {
                    Ok(report) if report.swapped => watched.refused = None,
                    Ok(_) => watched.refused = Some(sha256),
                    Err(e) => tracing::warn!(tenant, connector = name, "watching: {e}"),
                }
            }
            drop(host);
            drop(inner);
            tokio::time::sleep(every).await;
        }
    }
}

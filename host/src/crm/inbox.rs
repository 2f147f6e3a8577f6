//! The local inbox: an in-process CRM that keeps every event, once. The demo and the
//! embedding examples read it; tests assert on it.

use std::sync::Mutex;

use super::{BoxFuture, Crm, CrmDelivery};

/// Keeps delivered events in memory, deduplicated by id.
#[derive(Debug, Default)]
pub struct LocalInbox {
    events: Mutex<Vec<CrmDelivery>>,
}

impl LocalInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event received, in delivery order.
    pub fn events(&self) -> Vec<CrmDelivery> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Crm for LocalInbox {
    fn deliver<'a>(&'a self, delivery: &'a CrmDelivery) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut events = self
                .events
                .lock()
                .map_err(|_| anyhow::anyhow!("local inbox poisoned"))?;
            if !events.iter().any(|e| e.id == delivery.id) {
                events.push(delivery.clone());
            }
            Ok(())
        })
    }
}

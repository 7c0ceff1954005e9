//! Cancellation of a run from outside it (a user pressing "cancel", a node shutting down).
//!
//! The token is checked by the epoch callback while the plugin computes and awaited beside the
//! plugin's future while it waits on a host call, so both kinds of work stop promptly.

use tokio::sync::watch;

/// A cloneable handle that cancels every run it was given to.
#[derive(Debug, Clone)]
pub struct CancelToken {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken {
            tx: std::sync::Arc::new(watch::channel(false).0),
        }
    }
}

impl CancelToken {
    /// A token that is not cancelled yet.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels; idempotent.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether `cancel` was called.
    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once `cancel` has been called.
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so `wait_for` can only end by seeing `true`.
        let _ = rx.wait_for(|c| *c).await;
    }
}

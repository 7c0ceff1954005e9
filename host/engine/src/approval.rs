//! Approval requests of engine runs, kept in the store: the first time a run asks, the request
//! is recorded and the run is suspended (see `Store::suspend`); a person's answer sends the run
//! back to the queue, and the run that comes back is answered from the record.

use mc_runtime::{ApprovalAsk, Approvals, Asked};
use mc_store::{AskState, Store};

/// [`Approvals`] over the store's `approval_asks`.
#[derive(Debug, Clone)]
pub struct StoreApprovals {
    store: Store,
}

impl StoreApprovals {
    pub fn new(store: Store) -> StoreApprovals {
        StoreApprovals { store }
    }
}

#[async_trait::async_trait]
impl Approvals for StoreApprovals {
    async fn ask(&self, ask: ApprovalAsk) -> Result<Asked, String> {
        let Ok(run) = ask.from.run_id.parse::<i64>() else {
            return Err(format!("run `{}` is not a run of this engine", ask.from.run_id));
        };
        let state = self
            .store
            .tenant(&ask.from.tenant)
            .ask_approval(run, ask.seq, &ask.title, &ask.body)
            .await
            .map_err(|e| format!("the approval request could not be recorded: {e}"))?;
        Ok(match state {
            AskState::Pending => Asked::Pending,
            AskState::Approved(text) => Asked::Approved(text),
            AskState::Rejected(reason) => Asked::Rejected(reason),
        })
    }
}

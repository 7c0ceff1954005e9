//! Approval as the runtime sees it: a run asks a person to approve a text through the
//! [`Approvals`] its caller provides. A request without an answer yet cannot be waited for inside
//! the run (a person may take days; the run has a deadline of minutes), so the run stops with
//! [`RunFailure::AwaitingApproval`](crate::RunFailure::AwaitingApproval) and its caller runs it
//! again once the answer is in. Requests are numbered in the order the run makes them, so the run
//! that comes back finds its answers by number; what it did before asking happens again, which is
//! why the contract says side effects belong after the request.

use mc_ai::CallContext;

/// One request of one run.
#[derive(Debug, Clone)]
pub struct ApprovalAsk {
    pub from: CallContext,
    /// The request's number in the run (0, 1, …).
    pub seq: u32,
    pub title: String,
    pub body: String,
}

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// Approved: the text as approved, possibly edited.
    Approved(String),
    /// Rejected: the reviewer's reason.
    Rejected(String),
    /// Recorded; nobody has answered yet. The run stops here and is run again later.
    Pending,
}

/// Records approval requests and answers those already decided.
#[async_trait::async_trait]
pub trait Approvals: Send + Sync {
    /// Records `ask` the first time it is made and says where it stands; `Err` is a text for the
    /// plugin (the request could not be recorded).
    async fn ask(&self, ask: ApprovalAsk) -> Result<Asked, String>;
}

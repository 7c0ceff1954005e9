//! `mission:control/approval`: a request answered already is answered at once; one without an
//! answer stops the run (a trap carrying [`Suspended`]) so that it holds no worker while a
//! person decides. A run outside the engine has nobody to ask and is refused.

use crate::approval::{ApprovalAsk, Asked};
use crate::bindings::mission::control::approval::{self, ApprovalError, ApprovalRequest, Decision};
use crate::state::RunState;

/// Longest request title kept, in bytes: it is a line in the approvals inbox.
pub const MAX_TITLE_BYTES: usize = 200;
/// Longest request text, in bytes: a draft for a person to read, not a data transfer.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The trap that stops a run whose request waits for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("waiting for approval of \"{title}\"")]
pub(crate) struct Suspended {
    pub(crate) title: String,
}

impl approval::Host for RunState {
    async fn request(&mut self, request: ApprovalRequest) -> wasmtime::Result<Result<Decision, ApprovalError>> {
        let Some(approvals) = self.services.approvals.clone() else {
            return Ok(Err(ApprovalError::NotGranted(self.deny(
                "approval",
                format!("asking for approval (\"{}\") is not granted to this run", request.title),
            ))));
        };
        if request.title.len() > MAX_TITLE_BYTES || request.body.len() > MAX_BODY_BYTES {
            return Ok(Err(ApprovalError::Other(format!(
                "an approval request's title may be {MAX_TITLE_BYTES} bytes and its text {MAX_BODY_BYTES} bytes; \
                 this one's are {} and {}",
                request.title.len(),
                request.body.len()
            ))));
        }
        let seq = self.approvals_asked;
        self.approvals_asked += 1;
        let ask = ApprovalAsk {
            from: self.call.clone(),
            seq,
            title: request.title.clone(),
            body: request.body,
        };
        match approvals.ask(ask).await {
            Ok(Asked::Approved(text)) => Ok(Ok(Decision::Approved(text))),
            Ok(Asked::Rejected(reason)) => Ok(Ok(Decision::Rejected(reason))),
            Ok(Asked::Pending) => Err(wasmtime::Error::new(Suspended { title: request.title })),
            Err(e) => Ok(Err(ApprovalError::Other(e))),
        }
    }
}

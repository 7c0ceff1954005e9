//! Human in the loop: ask a person to approve a draft before it has any effect.
//!
//! ```no_run
//! # fn f() -> mission_control_sdk::Result<()> {
//! use mission_control_sdk::approval::{self, Decision};
//! match approval::request("Newsletter for March", "Dear customers, ...")? {
//!     Decision::Approved(text) => { /* send `text`, possibly edited by the reviewer */ }
//!     Decision::Rejected(reason) => { /* drop the draft */ }
//! }
//! # Ok(()) }
//! ```

use crate::bindings::mission::control::approval::{self as wit, ApprovalError, ApprovalRequest};
use crate::{Error, Result};

/// What the reviewer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Approved; the text as approved, possibly edited.
    Approved(String),
    /// Rejected, with the reviewer's reason.
    Rejected(String),
}

/// Asks for approval of `body`, titled `title`, and waits for the decision. The host may suspend
/// the run meanwhile, so do side effects after this call, never before.
pub fn request(title: &str, body: &str) -> Result<Decision> {
    let req = ApprovalRequest {
        title: title.to_string(),
        body: body.to_string(),
    };
    match wit::request(&req) {
        Ok(wit::Decision::Approved(t)) => Ok(Decision::Approved(t)),
        Ok(wit::Decision::Rejected(r)) => Ok(Decision::Rejected(r)),
        Err(ApprovalError::NotGranted(m)) => Err(Error::not_granted(m)),
        Err(ApprovalError::Other(m)) => Err(Error::upstream(m)),
    }
}

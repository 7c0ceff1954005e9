//! The error type every SDK call returns and a plugin's `run` may return.

use std::fmt;

use crate::bindings::mission::control::types::{Failure, FailureKind};

/// The category of an [`Error`]; the host records it with the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is not what the plugin expects; retrying will not help.
    InvalidInput,
    /// A capability (a host, a model, the key-value store, delegation ...) was not granted.
    NotGranted,
    /// An AI provider or HTTP service failed.
    Upstream,
    /// A budget does not allow the work.
    BudgetExceeded,
    /// Anything else.
    Internal,
}

/// An error with a kind, a message for the person reading the run, and whether a retry may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    retryable: bool,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind`; upstream errors are retryable by default, others are not.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            retryable: kind == ErrorKind::Upstream,
        }
    }

    /// The input is not what the plugin expects.
    pub fn invalid_input(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// A capability was not granted.
    pub fn not_granted(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotGranted, message)
    }

    /// An upstream service failed (retryable).
    pub fn upstream(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Upstream, message)
    }

    /// Anything else.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, message)
    }

    /// Overrides whether the engine may retry the run.
    pub fn with_retryable(mut self, retryable: bool) -> Error {
        self.retryable = retryable;
        self
    }

    /// The category.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether a retry may help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    pub(crate) fn into_failure(self) -> Failure {
        Failure {
            kind: match self.kind {
                ErrorKind::InvalidInput => FailureKind::InvalidInput,
                ErrorKind::NotGranted => FailureKind::NotGranted,
                ErrorKind::Upstream => FailureKind::Upstream,
                ErrorKind::BudgetExceeded => FailureKind::BudgetExceeded,
                ErrorKind::Internal => FailureKind::Internal,
            },
            message: self.message,
            retryable: self.retryable,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::internal(format!("JSON error: {e}"))
    }
}

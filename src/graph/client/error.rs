//! What Graph calls fail with; callers branch on it.

use std::time::Duration;

/// A failed Graph call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphError {
    /// 429 or 503; wait `retry_after` when Graph gave one.
    #[error("throttled by Graph (retry after {retry_after:?})")]
    Throttled { retry_after: Option<Duration> },
    #[error("not found")]
    NotFound,
    /// 401 after one token refresh, or a token request that failed.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {reason}")]
    Forbidden { reason: String },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("bad request ({code}): {message}")]
    BadRequest { code: String, message: String },
    /// A presence pair Graph does not allow; rejected before sending.
    #[error("{0}")]
    InvalidPresence(String),
    /// 5xx after the retries ran out.
    #[error("Graph server error {status}")]
    Server { status: u16 },
    /// Connection, TLS or timeout failure after the retries ran out.
    #[error("transport: {0}")]
    Transport(String),
    /// An answer that does not parse.
    #[error("unexpected response: {0}")]
    Decode(String),
}

impl GraphError {
    /// Worth trying again later (throttling, server and transport failures).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            GraphError::Throttled { .. } | GraphError::Server { .. } | GraphError::Transport(_)
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            GraphError::Throttled { retry_after } => *retry_after,
            _ => None,
        }
    }
}

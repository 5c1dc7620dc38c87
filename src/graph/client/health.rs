//! The `graph` readiness component as Graph's answers show it. The token refresh reports the
//! same component, but a token lives an hour: without this, Graph could refuse connections or
//! answer 5xx for minutes while readiness still said "up". Every call reports what it met:
//!
//! - an answer (2xx, or a 4xx that concerns the request, not Graph) → `up`;
//! - an attempt that failed and will be retried (connection, timeout, 5xx) or throttling →
//!   `degraded`;
//! - a call that failed after its retries → `down`.
//!
//! The registry is written only when the state changes, so the steady stream of successful
//! calls costs a read lock.

use crate::graph::GraphError;
use crate::graph::client::auth::HEALTH_COMPONENT;
use crate::model::health::{HealthRegistry, HealthState};

/// How the details of call reports begin; the token source's reports do not.
const PREFIX: &str = "Graph ";

/// Reports call outcomes as the `graph` component (nothing without a registry).
#[derive(Debug, Clone, Default)]
pub(crate) struct CallHealth {
    registry: Option<HealthRegistry>,
}

impl CallHealth {
    pub(crate) fn new(registry: Option<HealthRegistry>) -> Self {
        Self { registry }
    }

    /// Graph answered (a success, or a refusal of this particular request). Lifts only what
    /// calls reported: a failing token refresh stays visible until the token source clears it.
    pub(crate) fn answered(&self) {
        let Some(r) = &self.registry else { return };
        let reported_by_calls = r
            .get(HEALTH_COMPONENT)
            .is_none_or(|c| c.state == HealthState::Up || c.detail.starts_with(PREFIX));
        if reported_by_calls {
            self.report(HealthState::Up, || format!("{PREFIX}answers"));
        }
    }

    /// One attempt failed; the call will try again.
    pub(crate) fn attempt_failed(&self, e: &GraphError) {
        match e {
            GraphError::Throttled { .. } => {
                self.report(HealthState::Degraded, || format!("{PREFIX}throttles: {e}"));
            }
            _ if e.is_transient() => {
                self.report(HealthState::Degraded, || {
                    format!("{PREFIX}calls failing: {e}")
                });
            }
            GraphError::Decode(_) => {
                self.report(HealthState::Degraded, || {
                    format!("{PREFIX}answer unreadable: {e}")
                });
            }
            _ => self.answered(),
        }
    }

    /// The call failed for good (its retries ran out, or there were none to make).
    pub(crate) fn call_failed(&self, e: &GraphError) {
        match e {
            GraphError::Server { .. } | GraphError::Transport(_) => {
                self.report(HealthState::Down, || {
                    format!("{PREFIX}unreachable or failing: {e}")
                });
            }
            other => self.attempt_failed(other),
        }
    }

    fn report(&self, state: HealthState, detail: impl FnOnce() -> String) {
        let Some(r) = &self.registry else { return };
        if r.get(HEALTH_COMPONENT).is_some_and(|c| c.state == state) {
            return;
        }
        r.set(HEALTH_COMPONENT, true, state, detail());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_degrade_then_bring_down_and_an_answer_brings_back_up() {
        let registry = HealthRegistry::new();
        let h = CallHealth::new(Some(registry.clone()));
        let state = || registry.get(HEALTH_COMPONENT).map(|c| c.state);
        h.answered();
        assert_eq!(state(), Some(HealthState::Up));
        h.attempt_failed(&GraphError::Transport("connection refused".into()));
        assert_eq!(state(), Some(HealthState::Degraded));
        h.call_failed(&GraphError::Server { status: 502 });
        assert_eq!(state(), Some(HealthState::Down));
        h.call_failed(&GraphError::NotFound);
        assert_eq!(state(), Some(HealthState::Up), "a 404 is an answer");
        h.call_failed(&GraphError::Throttled { retry_after: None });
        assert_eq!(state(), Some(HealthState::Degraded));
    }

    #[test]
    fn an_answer_leaves_a_failing_token_refresh_visible() {
        let registry = HealthRegistry::new();
        let h = CallHealth::new(Some(registry.clone()));
        registry.set(
            HEALTH_COMPONENT,
            true,
            HealthState::Degraded,
            "token refresh failing",
        );
        h.answered();
        assert_eq!(
            registry.get(HEALTH_COMPONENT).map(|c| c.state),
            Some(HealthState::Degraded)
        );
    }
}

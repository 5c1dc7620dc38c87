//! Readiness: a registry where each part reports the state of what it depends on (Graph,
//! sync accounts, subscriptions, connectors). `/health/ready` reads it, plus a live database
//! ping. A critical component that is down makes readiness 503.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The state of one dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    Up,
    Degraded,
    Down,
}

/// One line of the readiness report.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentHealth {
    pub name: String,
    pub state: HealthState,
    /// A critical component that is down makes the daemon not ready.
    pub critical: bool,
    pub detail: String,
    pub updated_at: DateTime<Utc>,
}

/// Shared, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct HealthRegistry {
    inner: Arc<RwLock<BTreeMap<String, ComponentHealth>>>,
}

impl HealthRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports the state of a component (replacing its previous report).
    pub fn set(&self, name: &str, critical: bool, state: HealthState, detail: impl Into<String>) {
        let entry = ComponentHealth {
            name: name.to_owned(),
            state,
            critical,
            detail: detail.into(),
            updated_at: Utc::now(),
        };
        self.inner
            .write()
            .expect("health registry lock poisoned")
            .insert(name.to_owned(), entry);
    }

    /// Forgets a component (e.g. a connector that was removed).
    pub fn remove(&self, name: &str) {
        self.inner
            .write()
            .expect("health registry lock poisoned")
            .remove(name);
    }

    pub fn get(&self, name: &str) -> Option<ComponentHealth> {
        self.inner
            .read()
            .expect("health registry lock poisoned")
            .get(name)
            .cloned()
    }

    pub fn snapshot(&self) -> Vec<ComponentHealth> {
        self.inner
            .read()
            .expect("health registry lock poisoned")
            .values()
            .cloned()
            .collect()
    }
}

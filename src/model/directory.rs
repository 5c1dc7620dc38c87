//! The people on both sides: Teams users from the directory and contact-center agents from
//! their connectors, as the store keeps them and the matching plan pairs them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A Teams user the bridge knows, with the contact-center agent matched to it (if any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Graph user object id; the bridge's key.
    pub teams_id: String,
    pub upn: String,
    pub mail: Option<String>,
    pub display_name: Option<String>,
    pub business_phones: Vec<String>,
    pub mobile_phone: Option<String>,
    /// Connector name and agent id of the matched agent.
    pub cc_connector: Option<String>,
    pub cc_agent_id: Option<String>,
    /// False once the user lost the licence or was deleted; kept for the audit trail.
    pub active: bool,
    pub updated_at: DateTime<Utc>,
}

impl UserRecord {
    /// How the person is shown in logs and alerts: "Display Name (upn)", or the UPN alone.
    pub fn label(&self) -> String {
        match self.display_name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => format!("{name} ({})", self.upn),
            None => self.upn.clone(),
        }
    }
}

/// The agent matching gives a user: connector and agent id, or neither (unmatched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMatch {
    pub teams_id: String,
    pub connector: Option<String>,
    pub agent_id: Option<String>,
}

/// A contact-center agent as its connector lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub connector: String,
    pub agent_id: String,
    pub email: Option<String>,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl AgentRecord {
    /// The record of an agent `connector` listed at `now`.
    pub fn listed(
        connector: &str,
        agent: super::contact_center::Agent,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            connector: connector.to_owned(),
            agent_id: agent.id,
            email: agent.email,
            username: agent.username,
            display_name: agent.display_name,
            updated_at: now,
        }
    }
}

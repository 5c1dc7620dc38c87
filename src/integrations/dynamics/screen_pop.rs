//! Screen pop: the link that opens a contact's record for the agent, rendered from the
//! environment's `screen_pop_url` template and the values captured for the contact (a
//! model-driven app record opens at `{environment}/main.aspx?appid=…&pagetype=entityrecord&etn=…&id=…`:
//! https://learn.microsoft.com/power-apps/developer/model-driven-apps/open-forms-views-dialogs-reports-url).
//! An agent's link is the one of the contact they are on: their newest contact that is
//! connected and has not ended.

use std::sync::Arc;

use serde::Serialize;

use super::config::DynamicsConfig;
use super::steps::load_state;
use super::template::render_screen_pop;
use crate::connectors::ContactEventKind;
use crate::store::{Store, StoreError};

/// One environment's link to a contact's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub environment: String,
    pub url: String,
}

/// The contact an agent is on and its links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentScreenPop {
    pub agent_id: String,
    pub connector: String,
    pub contact_id: String,
    /// Empty until a record exists for the contact.
    pub links: Vec<Link>,
}

/// Screen-pop links of the configured environments.
#[derive(Clone)]
pub struct ScreenPops {
    envs: Vec<Arc<DynamicsConfig>>,
    store: Arc<dyn Store>,
}

impl ScreenPops {
    pub fn new(envs: Vec<Arc<DynamicsConfig>>, store: Arc<dyn Store>) -> Self {
        Self { envs, store }
    }

    /// The links of one contact, in every environment that has its record.
    pub async fn for_contact(
        &self,
        connector: &str,
        contact: &str,
    ) -> Result<Vec<Link>, StoreError> {
        let mut out = Vec::new();
        for env in &self.envs {
            let state = load_state(self.store.as_ref(), &env.name, connector, contact).await?;
            match render_screen_pop(env, connector, contact, &state.captured) {
                Some(Ok(url)) => out.push(Link {
                    environment: env.name.clone(),
                    url,
                }),
                Some(Err(e)) => {
                    tracing::warn!(environment = %env.name, error = %e.message, "screen-pop link could not be rendered")
                }
                None => {}
            }
        }
        Ok(out)
    }

    /// The contact `agent` is on now (of one connector, or any) and its links; `None` when
    /// the agent is on no contact.
    pub async fn for_agent(
        &self,
        agent: &str,
        connector: Option<&str>,
    ) -> Result<Option<AgentScreenPop>, StoreError> {
        let events = self.store.list_contact_events(agent, connector, 1).await?;
        let Some(first) = events.first() else {
            return Ok(None);
        };
        let kinds: Vec<ContactEventKind> = events.iter().map(|e| e.event.kind).collect();
        if !kinds.contains(&ContactEventKind::Connected) || kinds.contains(&ContactEventKind::Ended)
        {
            return Ok(None);
        }
        let (conn, contact) = (first.connector.clone(), first.event.contact_id.clone());
        Ok(Some(AgentScreenPop {
            agent_id: agent.to_owned(),
            links: self.for_contact(&conn, &contact).await?,
            connector: conn,
            contact_id: contact,
        }))
    }
}

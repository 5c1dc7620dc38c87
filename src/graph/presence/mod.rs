//! Presence read and write calls. Each write is described once as a [`PresenceWrite`], which
//! becomes either a single request or an item of a `$batch`.

pub mod memory;
pub mod poller;
pub mod scope_changes;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::graph::client::ApiFamily;
use crate::graph::client::{GraphClient, GraphRequest};
use crate::graph::{GraphError, PresenceApi};
use crate::model::TeamsPresence;

/// Most user ids per `getPresencesByUserId` call.
pub const MAX_IDS_PER_READ: usize = 650;
/// Concurrent `getPresencesByUserId` calls for one large read; the limiter paces them.
const READ_CONCURRENCY: usize = 4;
/// Extra calls one chunk may spend isolating ids Graph refuses (a `400` for the whole call):
/// halving finds one bad id among 650 in about 20 calls. A `400` that every half gets too (a
/// request Graph refuses whatever the ids) stops sooner.
const ISOLATION_CALLS: u32 = 64;

/// True for a Graph user id: an object-id GUID, hyphenated, as Graph writes them (ids are
/// "user object-ID GUIDs", reference graph.md §3.1). Anything else would make Graph refuse
/// the whole `getPresencesByUserId` call it travels in.
pub fn is_user_id(id: &str) -> bool {
    id.len() == 36 && uuid::Uuid::try_parse(id).is_ok()
}

pub use crate::model::presence_pairs::{PREFERRED_PAIRS, SET_PRESENCE_PAIRS};

/// `setPresence` expiration bounds.
pub const MIN_SESSION_EXPIRATION: Duration = Duration::from_secs(5 * 60);
pub const MAX_SESSION_EXPIRATION: Duration = Duration::from_secs(4 * 60 * 60);

/// Finds `(availability, activity)` among `allowed`, case-insensitively, and returns Graph's
/// spelling; otherwise an error listing the allowed pairs.
pub fn check_pair(
    call: &str,
    allowed: &[(&'static str, &'static str)],
    availability: &str,
    activity: &str,
) -> Result<(&'static str, &'static str), GraphError> {
    allowed
        .iter()
        .find(|(a, b)| a.eq_ignore_ascii_case(availability) && b.eq_ignore_ascii_case(activity))
        .copied()
        .ok_or_else(|| {
            let list: Vec<String> = allowed.iter().map(|(a, b)| format!("{a}/{b}")).collect();
            GraphError::InvalidPresence(format!(
                "{call} does not accept {availability}/{activity}; allowed pairs: {}",
                list.join(", ")
            ))
        })
}

/// ISO 8601 duration as Graph writes it (`PT1H`, `PT5M`, `PT1H30M`).
pub fn iso_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::from("PT");
    if h > 0 {
        out += &format!("{h}H");
    }
    if m > 0 {
        out += &format!("{m}M");
    }
    if s > 0 || (h == 0 && m == 0) {
        out += &format!("{s}S");
    }
    out
}

/// One presence write.
#[derive(Debug, Clone, PartialEq)]
pub enum PresenceWrite {
    Set {
        user_id: String,
        availability: String,
        activity: String,
        expiration: Duration,
    },
    Clear {
        user_id: String,
    },
    SetPreferred {
        user_id: String,
        availability: String,
        activity: String,
        expiration: Option<Duration>,
    },
    ClearPreferred {
        user_id: String,
    },
    StatusMessage {
        user_id: String,
        message: String,
        expires_at: Option<DateTime<Utc>>,
    },
}

impl PresenceWrite {
    pub fn user_id(&self) -> &str {
        match self {
            Self::Set { user_id, .. }
            | Self::Clear { user_id }
            | Self::SetPreferred { user_id, .. }
            | Self::ClearPreferred { user_id }
            | Self::StatusMessage { user_id, .. } => user_id,
        }
    }

    /// Validates and renders the call: `(relative url, body)`. Bodies follow Microsoft's
    /// samples field for field.
    pub fn to_request(&self, session_id: &str) -> Result<(String, serde_json::Value), GraphError> {
        let base = format!("users/{}/presence", self.user_id());
        Ok(match self {
            Self::Set {
                availability,
                activity,
                expiration,
                ..
            } => {
                let (a, b) = check_pair("setPresence", SET_PRESENCE_PAIRS, availability, activity)?;
                if *expiration < MIN_SESSION_EXPIRATION || *expiration > MAX_SESSION_EXPIRATION {
                    return Err(GraphError::InvalidPresence(format!(
                        "setPresence expiration must be between PT5M and PT4H, got {}",
                        iso_duration(*expiration)
                    )));
                }
                let body = json!({"sessionId": session_id, "availability": a, "activity": b,
                    "expirationDuration": iso_duration(*expiration)});
                (format!("{base}/setPresence"), body)
            }
            Self::Clear { .. } => (
                format!("{base}/clearPresence"),
                json!({"sessionId": session_id}),
            ),
            Self::SetPreferred {
                availability,
                activity,
                expiration,
                ..
            } => {
                let (a, b) = check_pair(
                    "setUserPreferredPresence",
                    PREFERRED_PAIRS,
                    availability,
                    activity,
                )?;
                let mut body = json!({"availability": a, "activity": b});
                if let Some(e) = expiration {
                    body["expirationDuration"] = json!(iso_duration(*e));
                }
                (format!("{base}/setUserPreferredPresence"), body)
            }
            Self::ClearPreferred { .. } => {
                (format!("{base}/clearUserPreferredPresence"), json!({}))
            }
            Self::StatusMessage {
                message,
                expires_at,
                ..
            } => {
                let mut status = json!({"message": {"content": message, "contentType": "text"}});
                if let Some(at) = expires_at {
                    status["expiryDateTime"] = json!({
                        "dateTime": format!("{}.{:07}", at.format("%Y-%m-%dT%H:%M:%S"),
                            at.timestamp_subsec_nanos() / 100),
                        "timeZone": "UTC",
                    });
                }
                (
                    format!("{base}/setStatusMessage"),
                    json!({"statusMessage": status}),
                )
            }
        })
    }

    /// A 404 on `clearPresence` means the session is already gone.
    pub fn not_found_is_success(&self) -> bool {
        matches!(self, Self::Clear { .. })
    }
}

/// A presence as Graph returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceDto {
    pub id: String,
    #[serde(default)]
    pub availability: compact_str::CompactString,
    #[serde(default)]
    pub activity: compact_str::CompactString,
    #[serde(default)]
    pub sequence_number: Option<compact_str::CompactString>,
}

impl From<PresenceDto> for (String, TeamsPresence) {
    fn from(p: PresenceDto) -> Self {
        let mut t = TeamsPresence::new(p.availability, p.activity);
        t.sequence = p.sequence_number;
        (p.id, t)
    }
}

#[derive(Deserialize)]
struct ValueList<T> {
    value: Vec<T>,
}

impl GraphClient {
    /// Sends one presence write.
    pub async fn write_presence(&self, w: &PresenceWrite) -> Result<(), GraphError> {
        let (url, body) = w.to_request(self.client_id())?;
        let req = GraphRequest::new(Method::POST, url, ApiFamily::PresenceWrite).json(body);
        match self.send(req).await {
            Err(GraphError::NotFound) if w.not_found_is_success() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// `GET /users/{id}/presence`.
    pub async fn get_presence(&self, user_id: &str) -> Result<TeamsPresence, GraphError> {
        let req = GraphRequest::new(
            Method::GET,
            format!("users/{user_id}/presence"),
            ApiFamily::PresenceRead,
        );
        let dto: PresenceDto = self.send_json(req).await?;
        Ok(<(String, TeamsPresence)>::from(dto).1)
    }

    /// `setStatusMessage`; `expires_at` None keeps the message until changed.
    pub async fn set_status_message(
        &self,
        user_id: &str,
        message: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), GraphError> {
        self.write_presence(&PresenceWrite::StatusMessage {
            user_id: user_id.to_owned(),
            message: message.to_owned(),
            expires_at,
        })
        .await
    }

    async fn read_chunk(&self, ids: &[String]) -> Result<Vec<(String, TeamsPresence)>, GraphError> {
        let req = GraphRequest::new(
            Method::POST,
            "communications/getPresencesByUserId",
            ApiFamily::PresenceRead,
        )
        .json(json!({ "ids": ids }));
        let list: ValueList<PresenceDto> = self.send_json(req).await?;
        Ok(list.value.into_iter().map(Into::into).collect())
    }

    /// Reads `ids`; when Graph refuses the call (`400`), reads each half on its own, so one
    /// id Graph refuses costs only itself. Spends at most `budget` extra calls.
    fn read_isolating<'a>(
        &'a self,
        ids: &'a [String],
        budget: &'a mut u32,
    ) -> futures::future::BoxFuture<'a, Result<Vec<(String, TeamsPresence)>, GraphError>> {
        Box::pin(async move {
            let err = match self.read_chunk(ids).await {
                Err(e @ GraphError::BadRequest { .. }) => e,
                other => return other,
            };
            if ids.len() == 1 {
                tracing::warn!(user = %ids[0], error = %err, "Graph refuses this user id; its presence is not read");
                return Ok(Vec::new());
            }
            if *budget < 2 {
                return Err(err);
            }
            *budget -= 2;
            let (a, b) = ids.split_at(ids.len() / 2);
            let first = self.read_isolating(a, budget).await;
            let second = self.read_isolating(b, budget).await;
            match (first, second) {
                // Both halves refused as a whole: the request is at fault, not one id.
                (Err(GraphError::BadRequest { .. }), Err(GraphError::BadRequest { .. })) => {
                    Err(err)
                }
                (first, second) => {
                    let mut out = first?;
                    out.extend(second?);
                    Ok(out)
                }
            }
        })
    }

    /// One chunk of at most 650 ids, isolating ids Graph refuses.
    async fn read_users(&self, ids: &[String]) -> Result<Vec<(String, TeamsPresence)>, GraphError> {
        let mut budget = ISOLATION_CALLS;
        self.read_isolating(ids, &mut budget).await
    }
}

#[async_trait]
impl PresenceApi for GraphClient {
    async fn get_presences(
        &self,
        user_ids: &[String],
    ) -> Result<Vec<(String, TeamsPresence)>, GraphError> {
        let (valid, invalid): (Vec<String>, Vec<String>) =
            user_ids.iter().cloned().partition(|id| is_user_id(id));
        if !invalid.is_empty() {
            tracing::warn!(
                count = invalid.len(),
                example = %invalid[0],
                "ids that are not Graph user ids are left out of the presence read"
            );
        }
        let reads: Vec<_> = valid
            .chunks(MAX_IDS_PER_READ)
            .map(|c| self.read_users(c))
            .collect();
        let chunks: Vec<Result<_, GraphError>> = futures::stream::iter(reads)
            .buffered(READ_CONCURRENCY)
            .collect()
            .await;
        let mut out = Vec::with_capacity(user_ids.len());
        for c in chunks {
            out.extend(c?);
        }
        Ok(out)
    }

    async fn set_presence(
        &self,
        user_id: &str,
        availability: &str,
        activity: &str,
        expiration: Duration,
    ) -> Result<(), GraphError> {
        self.write_presence(&PresenceWrite::Set {
            user_id: user_id.to_owned(),
            availability: availability.to_owned(),
            activity: activity.to_owned(),
            expiration,
        })
        .await
    }

    async fn clear_presence(&self, user_id: &str) -> Result<(), GraphError> {
        self.write_presence(&PresenceWrite::Clear {
            user_id: user_id.to_owned(),
        })
        .await
    }

    async fn set_user_preferred_presence(
        &self,
        user_id: &str,
        availability: &str,
        activity: &str,
        expiration: Option<Duration>,
    ) -> Result<(), GraphError> {
        self.write_presence(&PresenceWrite::SetPreferred {
            user_id: user_id.to_owned(),
            availability: availability.to_owned(),
            activity: activity.to_owned(),
            expiration,
        })
        .await
    }

    async fn clear_user_preferred_presence(&self, user_id: &str) -> Result<(), GraphError> {
        self.write_presence(&PresenceWrite::ClearPreferred {
            user_id: user_id.to_owned(),
        })
        .await
    }
}

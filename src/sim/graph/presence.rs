//! Simulated presence: app sessions (setPresence) that fade and expire, the user's own Teams
//! client, preferred presence, aggregation by Graph's precedence, and the read and write
//! routes.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{SimGraph, WriteLogEntry, graph_error};
use crate::graph::presence::{PREFERRED_PAIRS, SET_PRESENCE_PAIRS};

/// A session state that fades: `Available` → `AvailableInactive` after this, → `Away` after twice.
const FADE_AFTER_MINS: i64 = 5;
const MAX_IDS: usize = 650;

#[derive(Debug, Clone)]
pub struct AppSession {
    pub availability: String,
    pub activity: String,
    pub set_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Preferred {
    pub availability: String,
    pub activity: String,
    pub expires_at: DateTime<Utc>,
}

/// One user's presence sessions.
#[derive(Debug, Clone, Default)]
pub struct PresenceState {
    /// App sessions by session id.
    pub sessions: HashMap<String, AppSession>,
    /// The user's own Teams client, as if they clicked a status; `None` when signed out.
    pub client: Option<(String, String)>,
    pub preferred: Option<Preferred>,
    pub status_message: Option<Value>,
    /// Last aggregated state and its version stamp.
    pub last: Option<(String, String)>,
    pub sequence: u64,
}

/// A change of a user's aggregated presence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceEvent {
    pub user_id: String,
    pub availability: String,
    pub activity: String,
    pub sequence_number: String,
}

fn rank(availability: &str) -> u8 {
    match availability.to_ascii_lowercase().as_str() {
        "donotdisturb" => 4,
        "busy" | "busyidle" => 3,
        "available" | "availableidle" => 2,
        "away" | "berightback" => 1,
        _ => 0,
    }
}

impl PresenceState {
    /// Aggregated presence at `now`: preferred > DoNotDisturb > Busy > Available > Away;
    /// `Offline/Offline` without a live session. Drops expired sessions.
    pub fn aggregate(&mut self, now: DateTime<Utc>) -> (String, String) {
        self.sessions.retain(|_, s| s.expires_at > now);
        if self.preferred.as_ref().is_some_and(|p| p.expires_at <= now) {
            self.preferred = None;
        }
        let mut live: Vec<(String, String)> = self
            .sessions
            .values()
            .map(|s| {
                let age = now - s.set_at;
                let fade = Duration::minutes(FADE_AFTER_MINS);
                match (s.availability.as_str(), s.activity.as_str()) {
                    ("Available", "Available") if age >= fade * 2 => ("Away".into(), "Away".into()),
                    ("Available", "Available") if age >= fade => {
                        ("Available".into(), "AvailableInactive".into())
                    }
                    (a, b) => (a.to_owned(), b.to_owned()),
                }
            })
            .collect();
        live.extend(self.client.clone());
        if live.is_empty() {
            return ("Offline".into(), "Offline".into());
        }
        if let Some(p) = &self.preferred {
            return (p.availability.clone(), p.activity.clone());
        }
        live.into_iter()
            .max_by_key(|(a, _)| rank(a))
            .expect("not empty")
    }
}

impl SimGraph {
    /// The user's aggregated presence now; publishes an event when it changed. `None` for an
    /// unknown user.
    pub fn effective_presence(&self, user_id: &str) -> Option<PresenceEvent> {
        let now = self.now();
        let mut t = self.lock();
        if t.users.get(user_id).is_none_or(|u| u.deleted) {
            return None;
        }
        let p = t.presence.entry(user_id.to_owned()).or_default();
        let current = p.aggregate(now);
        let changed = p.last.as_ref() != Some(&current);
        if changed {
            p.sequence += 1;
            p.last = Some(current.clone());
        }
        let ev = PresenceEvent {
            user_id: user_id.to_owned(),
            availability: current.0,
            activity: current.1,
            sequence_number: format!("{:020}", p.sequence),
        };
        if changed {
            let _ = self.events.send(ev.clone());
        }
        Some(ev)
    }

    /// Sets the user's own Teams client status (as if they clicked it); `None` signs them out.
    pub fn set_user_status(&self, user_id: &str, status: Option<(&str, &str)>) {
        self.lock()
            .presence
            .entry(user_id.to_owned())
            .or_default()
            .client = status.map(|(a, b)| (a.to_owned(), b.to_owned()));
        self.effective_presence(user_id);
    }

    fn presence_json(&self, user_id: &str) -> Option<Value> {
        let ev = self.effective_presence(user_id)?;
        let msg = self
            .lock()
            .presence
            .get(user_id)
            .and_then(|p| p.status_message.clone());
        let mut v = json!({"id": ev.user_id, "availability": ev.availability,
            "activity": ev.activity, "sequenceNumber": ev.sequence_number});
        if let Some(m) = msg {
            v["statusMessage"] = m;
        }
        Some(v)
    }
}

pub(super) fn routes() -> Router<SimGraph> {
    Router::new()
        .route("/v1.0/users/{id}/presence", get(get_presence))
        .route("/v1.0/communications/presences/{id}", get(get_presence))
        .route("/v1.0/communications/getPresencesByUserId", post(get_many))
        .route("/v1.0/users/{id}/presence/{action}", post(write))
}

async fn get_presence(
    State(sim): State<SimGraph>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = sim.authorize(&headers) {
        return *r;
    }
    match sim.presence_json(&id) {
        Some(v) => Json(v).into_response(),
        None => graph_error(StatusCode::NOT_FOUND, "NotFound", "User not found"),
    }
}

#[derive(Deserialize)]
struct Ids {
    ids: Vec<String>,
}

async fn get_many(
    State(sim): State<SimGraph>,
    headers: HeaderMap,
    body: Result<Json<Ids>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(r) = sim.authorize(&headers) {
        return *r;
    }
    let Ok(Json(Ids { ids })) = body else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Body must be {\"ids\": [...]}",
        );
    };
    if ids.is_empty() || ids.len() > MAX_IDS {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Between 1 and 650 user ids are supported per request.",
        );
    }
    // Ids are user object-id GUIDs (reference graph.md §1.2 and §3.1, `resource` row): a
    // malformed one makes Graph refuse the whole call. The exact code and message are not
    // documented; these are the generic `BadRequest` shape.
    if let Some(bad_id) = ids.iter().find(|id| uuid::Uuid::try_parse(id).is_err()) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Invalid user id '{bad_id}'."),
        );
    }
    let value: Vec<Value> = ids.iter().filter_map(|id| sim.presence_json(id)).collect();
    Json(json!({ "value": value })).into_response()
}

/// Parses `PT1H30M`-style durations.
pub fn parse_iso_duration(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix("PT")?;
    let mut total = 0i64;
    let mut num = String::new();
    for c in rest.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            'H' => 3600,
            'M' => 60,
            'S' => 1,
            _ => return None,
        };
    }
    num.is_empty().then_some(Duration::seconds(total))
}

fn pair_allowed(allowed: &[(&str, &str)], a: &str, b: &str) -> bool {
    allowed
        .iter()
        .any(|(x, y)| x.eq_ignore_ascii_case(a) && y.eq_ignore_ascii_case(b))
}

fn bad(message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

async fn write(
    State(sim): State<SimGraph>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(r) = sim.authorize(&headers) {
        return *r;
    }
    let Ok(Json(body)) = body else {
        return bad("Body must be JSON");
    };
    let now = sim.now();
    {
        let mut t = sim.lock();
        if t.users.get(&id).is_none_or(|u| u.deleted) {
            return graph_error(StatusCode::NOT_FOUND, "NotFound", "User not found");
        }
        let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let p = t.presence.entry(id.clone()).or_default();
        match action.as_str() {
            "setPresence" => {
                let (a, b) = (s("availability"), s("activity"));
                if !pair_allowed(SET_PRESENCE_PAIRS, &a, &b) {
                    return bad("Unsupported availability/activity combination");
                }
                let exp = match body.get("expirationDuration").and_then(Value::as_str) {
                    None => Duration::minutes(5),
                    Some(d) => match parse_iso_duration(d) {
                        Some(d) if d >= Duration::minutes(5) && d <= Duration::hours(4) => d,
                        _ => return bad("expirationDuration must be between PT5M and PT4H"),
                    },
                };
                p.sessions.insert(
                    s("sessionId"),
                    AppSession {
                        availability: a,
                        activity: b,
                        set_at: now,
                        expires_at: now + exp,
                    },
                );
            }
            "clearPresence" => {
                if p.sessions.remove(&s("sessionId")).is_none() {
                    return graph_error(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        "Presence session not found",
                    );
                }
            }
            "setUserPreferredPresence" => {
                let (a, b) = (s("availability"), s("activity"));
                if !pair_allowed(PREFERRED_PAIRS, &a, &b) {
                    return bad("Unsupported availability/activity combination");
                }
                let default = if a == "Busy" || a == "DoNotDisturb" {
                    Duration::days(1)
                } else {
                    Duration::days(7)
                };
                let exp = match body.get("expirationDuration").and_then(Value::as_str) {
                    None => default,
                    Some(d) => match parse_iso_duration(d) {
                        Some(d) => d,
                        None => return bad("expirationDuration is not an ISO 8601 duration"),
                    },
                };
                p.preferred = Some(Preferred {
                    availability: a,
                    activity: b,
                    expires_at: now + exp,
                });
            }
            "clearUserPreferredPresence" => p.preferred = None,
            "setStatusMessage" => match body.get("statusMessage") {
                Some(m) if m.get("message").is_some() => p.status_message = Some(m.clone()),
                _ => return bad("statusMessage.message is required"),
            },
            _ => {
                return graph_error(
                    StatusCode::NOT_FOUND,
                    "UnknownAction",
                    "Unknown presence action",
                );
            }
        }
        t.writes.push(WriteLogEntry {
            at: now,
            user_id: id.clone(),
            call: action,
            body,
        });
    }
    sim.effective_presence(&id);
    StatusCode::OK.into_response()
}

//! One page of the team as the API and the console show it: the active Teams users (matched
//! or not), then the contact-center agents matched to no active user, each part in a stable
//! order (name, then key), searched, filtered and paged in SQL so 100,000 people stay fast.

use chrono::{DateTime, Utc};

use super::{AgentRecord, ObservedStatus, UserRecord};

/// The sync states a page can be filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeopleState {
    /// Matched, neither holding nor suspended.
    Ok,
    /// Matched, a status waiting out its hold-down.
    Holding,
    /// Matched, sync suspended after flapping.
    Suspended,
    /// A Teams user matched to no agent.
    Unmatched,
    /// An agent matched to no active Teams user.
    NoTeamsUser,
}

impl PeopleState {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PeopleState::Ok => "ok",
            PeopleState::Holding => "holding",
            PeopleState::Suspended => "suspended",
            PeopleState::Unmatched => "unmatched",
            PeopleState::NoTeamsUser => "no_teams_user",
        }
    }

    pub const ALL: [PeopleState; 5] = [
        PeopleState::Ok,
        PeopleState::Holding,
        PeopleState::Suspended,
        PeopleState::Unmatched,
        PeopleState::NoTeamsUser,
    ];
}

/// The order of a page. Each is stable (ties broken by the key), and the users always come
/// before the agents matched to no user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeopleSort {
    /// By name (the user principal name, or the agent id, when there is none); indexed.
    #[default]
    Name,
    /// By sync state as it is judged now (ok, holding, suspended, unmatched, then agents
    /// without a Teams user), then by name.
    State,
    /// Most recent change on either side first (people never seen last), then by name.
    LastChange,
}

impl PeopleSort {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PeopleSort::Name => "name",
            PeopleSort::State => "state",
            PeopleSort::LastChange => "last_change",
        }
    }

    pub const ALL: [PeopleSort; 3] = [PeopleSort::Name, PeopleSort::State, PeopleSort::LastChange];
}

/// What to list.
#[derive(Debug, Clone, PartialEq)]
pub struct PeopleQuery {
    /// A case-insensitive part of the name, user principal name, mail, agent id or agent
    /// e-mail; empty matches everyone.
    pub query: String,
    pub state: Option<PeopleState>,
    /// Only people matched on (users) or listed by (agents) this connector.
    pub connector: Option<String>,
    pub sort: PeopleSort,
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
    /// The moment holding and suspended are judged at.
    pub now: DateTime<Utc>,
}

/// One person on a page.
#[derive(Debug, Clone, PartialEq)]
pub enum Person {
    /// An active Teams user.
    User(Box<PersonUser>),
    /// An agent matched to no active Teams user.
    Agent(AgentRecord),
}

/// An active Teams user, with the newest status seen on each side and the engine's state blob
/// when it holds one.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonUser {
    pub user: UserRecord,
    pub teams: Option<ObservedStatus>,
    pub contact_center: Option<ObservedStatus>,
    pub engine_state: Option<super::JsonText>,
}

/// A page and the number of people matching the query on all pages.
#[derive(Debug, Clone, PartialEq)]
pub struct PeoplePage {
    pub people: Vec<Person>,
    pub total: u64,
}

//! Durable state behind one trait, [`Store`], with a SQLite implementation (the default, one
//! file, WAL) and a Postgres one (for several replicas). Owns the schema (`migrations/`) and
//! nothing else: no business rules live here. Callers branch on [`StoreError`].
//!
//! The SQL is written once, in `sql/`, and expanded for both pool types; `sqlite.rs` and
//! `postgres.rs` only open, configure and migrate their pools. `prune` holds the
//! audit-retention job.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Side;
use crate::model::contact_center::ContactEvent;

pub mod config;
pub mod inbox;
pub mod lease;
pub mod people;
pub mod postgres;
pub mod prune;
mod sql;
pub mod sqlite;

/// What callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

pub use crate::model::directory::{AgentRecord, UserMatch, UserRecord};

/// The latest status seen on one side for one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedStatus {
    pub user_id: String,
    pub side: Side,
    /// A serialized [`crate::model::Status`].
    pub status: serde_json::Value,
    pub observed_at: DateTime<Utc>,
    pub source: String,
}

/// The last write the bridge made to one side for one user (echo memory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteRecord {
    pub user_id: String,
    pub side: Side,
    /// A serialized [`crate::model::Status`] (or `{"clear": true}` style marker).
    pub status: serde_json::Value,
    pub written_at: DateTime<Utc>,
    /// Graph sequenceNumber observed right after the write, when known.
    pub sequence: Option<String>,
}

/// A Graph change-notification subscription the bridge owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// Graph's subscription id.
    pub id: String,
    /// `presence` or `users`.
    pub kind: String,
    /// Shard number for presence subscriptions.
    pub shard: Option<i64>,
    /// Sync account that owns it (presence subscriptions are delegated).
    pub account_id: Option<String>,
    pub resource: String,
    /// The random secret Graph echoes in each notification. Compared in constant time.
    pub client_state: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub last_renewed_at: Option<DateTime<Utc>>,
    pub last_reauthorized_at: Option<DateTime<Utc>>,
    /// `active`, `failing`, ...; free text set by the subscription manager.
    pub state: String,
    pub last_error: Option<String>,
}

/// A delegated "sync account" whose refresh token lets the bridge hold presence subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncAccountRecord {
    pub id: String,
    pub upn: String,
    /// Graph user object id of the account.
    pub user_object_id: Option<String>,
    /// The refresh token, encrypted by the caller (AES-GCM); the store never sees plaintext.
    pub encrypted_refresh_token: Vec<u8>,
    /// `healthy`, `revoked`, `expired`, ...
    pub state: String,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A JSON document as its text: what the store keeps in a JSON column, made by serializing a
/// typed value straight to text (no `serde_json::Value` tree per record, whose maps cost ~10
/// times the text) and read back into a typed value by its reader.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JsonText(Box<serde_json::value::RawValue>);

impl JsonText {
    /// `value` as JSON text.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Self> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// The text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The document read as `T`.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> serde_json::Result<T> {
        serde_json::from_str(self.0.get())
    }

    /// The document as a `serde_json::Value` (for tests and tools, not hot paths).
    pub fn value(&self) -> serde_json::Value {
        self.parse().unwrap_or(serde_json::Value::Null)
    }
}

impl From<serde_json::Value> for JsonText {
    fn from(v: serde_json::Value) -> Self {
        Self::of(&v).expect("a JSON value serializes")
    }
}

impl std::fmt::Debug for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.get())
    }
}

impl std::fmt::Display for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.get())
    }
}

/// Equal when the documents are (PostgreSQL's `jsonb` gives back the same document with
/// other spacing and key order).
impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get() || self.value() == other.value()
    }
}

/// One decision the engine took, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Assigned by the store; ignored on insert.
    pub id: i64,
    pub user_id: String,
    pub at: DateTime<Utc>,
    /// The record: what came in and what was decided (`runtime::audit::Record`), as JSON.
    pub input: JsonText,
    /// Which rule matched, e.g. `teams_to_cc[0]`.
    pub rule: Option<String>,
    /// `write_cc`, `write_teams`, `ignore`, `suspend`, ...
    pub action: String,
    /// Why, in plain words.
    pub reason: String,
}

/// A row to put in the durable inbox. Producers push typed [`crate::model::InboxPayload`]s
/// through [`inbox::Inbox`], which makes these rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewInboxItem {
    /// A copy of the payload's `kind` tag (`observation`, `teams_refresh`, ...), for SQL.
    pub kind: String,
    /// The user it concerns, when known; used to keep per-user order.
    pub user_id: Option<String>,
    /// The serialized payload, `kind` tag included.
    pub payload: serde_json::Value,
    pub received_at: DateTime<Utc>,
}

/// A row taken from the inbox under a lease; [`inbox::Inbox::claim`] decodes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxItem {
    pub id: i64,
    pub kind: String,
    pub user_id: Option<String>,
    pub payload: serde_json::Value,
    pub received_at: DateTime<Utc>,
    pub attempts: i32,
}

/// One contact-center event to take in, with its inbox row: [`Store::ingest_push`] checks it
/// against the persisted event ids and per-agent times and stores it in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestRow {
    /// The platform's event id, when it sends one (the duplicate check needs it).
    pub event_id: Option<String>,
    pub agent_id: String,
    /// When the platform says the change happened.
    pub at: DateTime<Utc>,
    pub item: NewInboxItem,
}

/// A contact event as stored: the connector it came from and when it was taken in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredContactEvent {
    pub connector: String,
    pub event: ContactEvent,
    pub received_at: DateTime<Utc>,
}

/// The key a contact event is stored once under: the platform's event id, or the contact and
/// the step when the platform sends none (a contact is offered, connected, … once).
pub fn contact_event_key(e: &ContactEvent) -> String {
    match &e.event_id {
        Some(id) => format!("id:{id}"),
        None => format!("contact:{}/{}", e.contact_id, e.kind.as_str()),
    }
}

/// What an integration keeps about one contact (values captured from earlier steps, steps
/// done), as its own JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactStateRecord {
    /// The integration and its instance, e.g. `dynamics:{environment}`.
    pub integration: String,
    pub connector: String,
    pub contact_id: String,
    pub state: serde_json::Value,
    pub updated_at: DateTime<Utc>,
}

/// A job for the durable work queue ([`Store::queue_push`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// The consumer, e.g. `dynamics`, `messaging`, `alerts`.
    pub queue: String,
    /// Ordering key: jobs with the same queue and key run strictly in push order.
    pub key: String,
    /// Unique within the queue: pushing a dedupe id already stored (pending or done within
    /// [`crate::store::prune::JOB_RETENTION`]) stores nothing.
    pub dedupe: Option<String>,
    pub payload: serde_json::Value,
    /// Not handed out before this time.
    pub not_before: DateTime<Utc>,
}

/// A job handed out by [`Store::queue_claim`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: i64,
    pub queue: String,
    pub key: String,
    pub payload: serde_json::Value,
    /// Earlier attempts that ended in a retry.
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

/// What [`Store::ingest_push`] did with one [`IngestRow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestVerdict {
    /// New: its row is in the inbox.
    Accepted,
    /// Its event id was taken in before (by this or another process, before or after a
    /// restart); nothing stored.
    Duplicate,
    /// Older than the newest event already taken in for the agent; nothing stored.
    Stale,
}

/// Durable state. Implementations: [`sqlite::SqliteStore`], [`postgres::PgStore`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Cheap readiness check: the database answers and accepts writes (a statement that
    /// needs write access but changes no row), so a read-only file or role is not "ready".
    async fn ping(&self) -> StoreResult<()>;
    /// The name inbox leases are held under (`store.instance_id`, else the host name).
    fn instance_id(&self) -> &str;

    // users and agents
    /// Insert or update users by `teams_id`, in one transaction.
    async fn upsert_users(&self, users: &[UserRecord]) -> StoreResult<()>;
    async fn get_user(&self, teams_id: &str) -> StoreResult<UserRecord>;
    /// The stored records of those of `teams_ids` that exist, in no particular order (read
    /// [`USERS_PER_READ`] ids per statement, so an id given twice may come back twice).
    async fn get_users(&self, teams_ids: &[String]) -> StoreResult<Vec<UserRecord>>;
    /// All users, active or not, ordered by `teams_id`.
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    /// Up to `limit` users whose ids sort after `after` (from the first when `None`), in id
    /// order: a pass over the whole directory a page at a time (see [`each_user`]).
    async fn list_users_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>>;
    /// Records matches (connector and agent; both `None` unmatches) on existing users,
    /// stamped `at`; touches no other column. Returns the users changed.
    async fn set_user_matches(&self, matches: &[UserMatch], at: DateTime<Utc>) -> StoreResult<u64>;
    /// A cheap fingerprint of the users and agents (counts, active users, newest update
    /// times): equal fingerprints mean no user or agent was added, removed, (de)activated or
    /// updated in between, so matching and the in-memory directory need no fresh read.
    async fn directory_version(&self) -> StoreResult<[String; 5]>;
    /// Marks users inactive (lost licence, deleted); returns how many changed.
    async fn deactivate_users(&self, teams_ids: &[String]) -> StoreResult<u64>;
    /// Finds the user matched to an agent.
    async fn user_by_agent(&self, connector: &str, agent_id: &str) -> StoreResult<UserRecord>;
    /// Replaces the agent list of one connector, in one transaction.
    async fn replace_agents(&self, connector: &str, agents: &[AgentRecord]) -> StoreResult<()>;
    async fn list_agents(&self, connector: Option<&str>) -> StoreResult<Vec<AgentRecord>>;

    // statuses, writes, engine state
    async fn put_observed(&self, observed: &[ObservedStatus]) -> StoreResult<()>;
    async fn list_observed(&self) -> StoreResult<Vec<ObservedStatus>>;
    async fn put_writes(&self, writes: &[WriteRecord]) -> StoreResult<()>;
    async fn list_writes(&self) -> StoreResult<Vec<WriteRecord>>;
    /// Saves the engine's per-user state blobs (upsert by user).
    async fn save_user_states(&self, states: &[(String, JsonText)]) -> StoreResult<()>;
    async fn load_user_states(&self) -> StoreResult<Vec<(String, JsonText)>>;

    // Graph subscriptions and accounts
    /// Insert or update by id.
    async fn upsert_subscription(&self, sub: &SubscriptionRecord) -> StoreResult<()>;
    async fn list_subscriptions(&self) -> StoreResult<Vec<SubscriptionRecord>>;
    async fn get_subscription(&self, id: &str) -> StoreResult<SubscriptionRecord>;
    /// NotFound when absent.
    async fn delete_subscription(&self, id: &str) -> StoreResult<()>;
    /// Insert; Conflict when an account with the same id or upn exists.
    async fn insert_account(&self, account: &SyncAccountRecord) -> StoreResult<()>;
    /// Update by id; NotFound when absent.
    async fn update_account(&self, account: &SyncAccountRecord) -> StoreResult<()>;
    async fn list_accounts(&self) -> StoreResult<Vec<SyncAccountRecord>>;
    async fn get_account(&self, id: &str) -> StoreResult<SyncAccountRecord>;
    /// NotFound when absent.
    async fn delete_account(&self, id: &str) -> StoreResult<()>;

    // small key/value state: delta links, cursors, snapshots
    async fn get_kv(&self, key: &str) -> StoreResult<Option<String>>;
    async fn put_kv(&self, key: &str, value: &str) -> StoreResult<()>;
    async fn delete_kv(&self, key: &str) -> StoreResult<()>;

    // connector cursors: where an event source resumes after a restart
    /// The cursors of `connector`, ordered by key.
    async fn get_cursors(&self, connector: &str) -> StoreResult<Vec<(String, String)>>;
    /// Inserts or updates cursors of `connector` by key, in one transaction.
    async fn put_cursors(&self, connector: &str, cursors: &[(String, String)]) -> StoreResult<()>;
    /// Forgets cursors of `connector` (absent keys are no error).
    async fn delete_cursors(&self, connector: &str, keys: &[String]) -> StoreResult<()>;

    // audit
    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()>;
    /// Newest first.
    async fn list_audit(&self, user_id: &str, limit: u32) -> StoreResult<Vec<AuditEntry>>;
    /// Deletes entries older than `before`; returns how many.
    async fn prune_audit(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    // durable inbox
    /// Appends items in one transaction; either all are stored or none.
    async fn inbox_push(&self, items: &[NewInboxItem]) -> StoreResult<()>;
    /// Leases up to `limit` items nobody holds (or whose lease ran out), oldest first, for
    /// `lease_secs`, under [`Store::instance_id`]. Safe with several replicas.
    async fn inbox_claim(&self, limit: u32, lease_secs: u32) -> StoreResult<Vec<InboxItem>>;
    /// Gives back every lease held under [`Store::instance_id`] (attempts + 1): called when
    /// the engine starts, as those leases belong to a previous run of this instance that did
    /// not finish them. Leases of other instances are left alone. Returns how many.
    async fn inbox_reclaim(&self) -> StoreResult<u64>;
    /// Removes processed items.
    async fn inbox_ack(&self, ids: &[i64]) -> StoreResult<()>;
    /// Gives items back (lease cleared, attempts + 1) after a failure.
    async fn inbox_release(&self, ids: &[i64]) -> StoreResult<()>;
    /// Items waiting (leased or not).
    async fn inbox_len(&self) -> StoreResult<u64>;

    // contact-center replay protection
    /// In one transaction, in order: drops rows whose event id `connector` already took in
    /// and rows older than the newest event taken in for their agent, records the others'
    /// ids and times, and appends their inbox items. Atomic across concurrent callers and
    /// replicas: of several copies of one event exactly one is accepted.
    async fn ingest_push(
        &self,
        connector: &str,
        rows: &[IngestRow],
    ) -> StoreResult<Vec<IngestVerdict>>;
    /// Forgets event ids recorded before `before`, and all but the newest `per_agent` ids of
    /// each agent. Returns how many were deleted.
    async fn prune_ingest(&self, before: DateTime<Utc>, per_agent: u32) -> StoreResult<u64>;

    // contact events
    /// Stores contact events of `connector` in one transaction, each once
    /// ([`contact_event_key`]); returns, per event, whether it was new.
    // the durable work queue of the integrations
    /// Stores the jobs in one transaction; returns how many were new (not deduplicated).
    async fn queue_push(&self, jobs: &[NewJob]) -> StoreResult<u64>;
    /// Leases up to `limit` due jobs of `queue` for `lease_secs`: only the oldest pending job
    /// of each key, so a key's jobs run one at a time and in order. A job whose lease ran out
    /// (its runner died) is handed out again.
    async fn queue_claim(
        &self,
        queue: &str,
        limit: u32,
        lease_secs: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Job>>;
    /// Marks a job done (kept for deduplication until pruned).
    async fn queue_done(&self, id: i64) -> StoreResult<()>;
    /// Gives a job back to run again at `not_before`, counting the attempt.
    async fn queue_retry(&self, id: i64, not_before: DateTime<Utc>, error: &str)
    -> StoreResult<()>;
    /// Pending (not done) jobs of `queue`.
    async fn queue_len(&self, queue: &str) -> StoreResult<u64>;
    /// The earliest time a job at the head of its key in `queue` may be handed out.
    async fn queue_next_due(&self, queue: &str) -> StoreResult<Option<DateTime<Utc>>>;
    /// Deletes done jobs finished before `before`.
    async fn prune_jobs(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    async fn contact_events_push(
        &self,
        connector: &str,
        events: &[ContactEvent],
    ) -> StoreResult<Vec<bool>>;
    /// The events of the `contacts` most recent contacts `agent_id` had a part in (of one
    /// connector, or all), grouped by contact, each contact's in the order they happened.
    async fn list_contact_events(
        &self,
        agent_id: &str,
        connector: Option<&str>,
        contacts: u32,
    ) -> StoreResult<Vec<StoredContactEvent>>;
    /// Deletes contact events taken in before `before`; returns how many.
    async fn prune_contact_events(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    // per-contact state of the integrations
    /// The state `integration` keeps for a contact, if any.
    async fn contact_state_get(
        &self,
        integration: &str,
        connector: &str,
        contact_id: &str,
    ) -> StoreResult<Option<ContactStateRecord>>;
    /// Inserts or replaces the state of one contact.
    async fn contact_state_put(&self, record: &ContactStateRecord) -> StoreResult<()>;
    /// Deletes the states of `integration` last written before `before`; returns how many.
    async fn contact_state_prune(
        &self,
        integration: &str,
        before: DateTime<Utc>,
    ) -> StoreResult<u64>;
    // the team, paged
    /// One page of the active users (by name, then id), then the agents matched to no active
    /// user (by name, then connector and id), searched and filtered, with the total.
    async fn list_people(&self, query: &people::PeopleQuery) -> StoreResult<people::PeoplePage>;
}

/// Ids per statement of [`Store::get_users`]: well under either backend's parameter limit.
pub const USERS_PER_READ: usize = 1_000;

/// Users per page of [`each_user`]: a few MB of records at a time, however large the directory.
pub const USER_PAGE: u32 = 2_000;

/// Calls `f` with every user, in id order, reading [`USER_PAGE`] at a time: a pass over the
/// whole directory that holds one page of records, not all of them. Users written during the
/// pass may or may not be seen (it is not one snapshot).
pub async fn each_user(store: &dyn Store, mut f: impl FnMut(UserRecord) + Send) -> StoreResult<()> {
    let mut after: Option<String> = None;
    loop {
        let page = store.list_users_page(after.as_deref(), USER_PAGE).await?;
        let full = page.len() >= USER_PAGE as usize;
        after = page.last().map(|u| u.teams_id.clone());
        page.into_iter().for_each(&mut f);
        if !full {
            return Ok(());
        }
    }
}

/// Opens the store named by the URL (`sqlite://…` or `postgres://…`) and applies migrations.
pub async fn open(cfg: &crate::store::config::StoreConfig) -> StoreResult<Arc<dyn Store>> {
    use secrecy::ExposeSecret;
    if cfg.url.expose_secret().starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(cfg).await?))
    } else {
        Ok(Arc::new(postgres::PgStore::open(cfg).await?))
    }
}

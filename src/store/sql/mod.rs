//! The one implementation of [`super::Store`] that both backends share. The SQL is the same
//! for SQLite and Postgres (numbered `$n` parameters, `ON CONFLICT … DO UPDATE`, `RETURNING`),
//! and sqlx maps the Rust types to each backend's columns (timestamps as RFC 3339 TEXT or
//! TIMESTAMPTZ, JSON as TEXT or JSONB), so [`impl_store!`] expands the same method bodies for
//! each pool type. The only dialect difference, the row locking of `inbox_claim`, is a
//! parameter of the macro.

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::model::Side;

mod contact_state;
mod contacts;
mod cursors;
mod ingest;
mod methods;
mod people;
mod queue;
mod support;

pub(crate) use contact_state::impl_contact_state;
pub(crate) use contacts::impl_contacts;
pub(crate) use cursors::impl_cursors;
pub(crate) use ingest::impl_ingest;
pub(crate) use methods::impl_store;
pub(crate) use people::impl_people;
pub(crate) use queue::impl_queue;
pub(crate) use support::{from_row, impl_support};

/// Bind parameters per multi-row statement. Below SQLite's limit (32,766) and Postgres's
/// (65,535) with room to spare, and large enough that a 1,000-item inbox push is one statement.
pub(crate) const CHUNK_PARAMS: usize = 4_000;

/// Statements built at run time (multi-row inserts, `IN` lists) longer than this are prepared
/// for the one call and not kept in the connection's statement cache.
pub(crate) const CACHED_SQL_MAX: usize = 1_024;

/// How many rows of `cols` columns fit in one statement.
pub(crate) fn rows_per_chunk(cols: usize) -> usize {
    CHUNK_PARAMS / cols
}

/// Maps sqlx errors to what callers branch on.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict(d.message().to_owned())
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
        other => StoreError::Other(other.to_string()),
    }
}

/// The URL as it may be shown: the password replaced, even when the URL does not parse.
pub(crate) fn shown_url(url: &str) -> String {
    crate::config::redact_url(url)
}

/// Removes the URL's passwords from an error message, should a driver ever echo them.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    crate::config::scrub_url_passwords(message, url)
}

/// Timestamps are kept to the millisecond, so what is read back equals what was written on
/// both backends (Postgres keeps microseconds, SQLite text keeps nanoseconds).
pub(crate) fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

pub(crate) fn side_from_str(s: &str) -> Result<Side, sqlx::Error> {
    match s {
        "teams" => Ok(Side::Teams),
        "contact_center" => Ok(Side::ContactCenter),
        other => Err(sqlx::Error::Decode(
            format!("unknown side {other:?} in the database").into(),
        )),
    }
}

/// Keeps the last item for each key, in first-seen order, so one multi-row upsert never
/// touches a row twice (Postgres rejects that; SQLite would apply both).
pub(crate) fn last_by_key<'a, T, K: Eq + std::hash::Hash>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<&'a T> {
    let mut index = std::collections::HashMap::with_capacity(items.len());
    let mut out: Vec<&T> = Vec::with_capacity(items.len());
    for item in items {
        match index.entry(key(item)) {
            std::collections::hash_map::Entry::Occupied(e) => out[*e.get()] = item,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(item);
            }
        }
    }
    out
}

/// Keeps, for each key, the item with the greatest `at` (the later one on a tie), in
/// first-seen order of the keys.
pub(crate) fn newest_by_key<'a, T, K: Eq + std::hash::Hash>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
    at: impl Fn(&T) -> DateTime<Utc>,
) -> Vec<&'a T> {
    let mut index = std::collections::HashMap::with_capacity(items.len());
    let mut out: Vec<&T> = Vec::with_capacity(items.len());
    for item in items {
        match index.entry(key(item)) {
            std::collections::hash_map::Entry::Occupied(e) => {
                if at(item) >= at(out[*e.get()]) {
                    out[*e.get()] = item;
                }
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(item);
            }
        }
    }
    out
}

/// `observed_status` and `bridge_writes` share one shape: per (user, side) a status, a time and
/// one more text column; one pair of functions reads and writes both.
pub(crate) struct StatusTable {
    pub table: &'static str,
    pub at: &'static str,
    pub extra: &'static str,
    /// Whether a row may only be replaced by one at least as new (by `at`).
    pub newer_only: bool,
}

/// What was seen on each side: never goes back in time, whatever order rows arrive in.
pub(crate) const OBSERVED: StatusTable = StatusTable {
    table: "observed_status",
    at: "observed_at",
    extra: "source",
    newer_only: true,
};

pub(crate) const WRITES: StatusTable = StatusTable {
    table: "bridge_writes",
    at: "written_at",
    extra: "sequence",
    newer_only: false,
};

/// A row of a [`StatusTable`]: user, side, status, time, extra column.
pub(crate) type StatusRow<U, V, E> = (U, Side, V, DateTime<Utc>, Option<E>);

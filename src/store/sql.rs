//! The one implementation of [`super::Store`] that both backends share. The SQL is the same
//! for SQLite and Postgres (numbered `$n` parameters, `ON CONFLICT … DO UPDATE`, `RETURNING`),
//! and sqlx maps the Rust types to each backend's columns (timestamps as RFC 3339 TEXT or
//! TIMESTAMPTZ, JSON as TEXT or JSONB), so [`impl_store!`] expands the same method bodies for
//! each pool type. The only dialect difference, the row locking of `inbox_claim`, is a
//! parameter of the macro.

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::model::Side;

/// Bind parameters per multi-row statement. Below SQLite's limit (32,766) and Postgres's
/// (65,535) with room to spare, and large enough that a 1,000-item inbox push is one statement.
pub(crate) const CHUNK_PARAMS: usize = 4_000;

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
    if url::Url::parse(url).is_ok() {
        return crate::config::redact_url(url);
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!(
                "{scheme}://{user}:[redacted]@{host}{}",
                &rest[authority_end..]
            )
        }
        None => url.to_owned(),
    }
}

/// Removes the URL's password from an error message, should a driver ever echo it.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    let password = url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned));
    match password {
        Some(pw) if !pw.is_empty() => message.replace(&pw, "[redacted]"),
        _ => message.to_owned(),
    }
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

/// Expands `impl Store for $store` over `self.pool: sqlx::Pool<$db>`. `$lock` is appended to
/// the row selection of `inbox_claim` (`FOR UPDATE SKIP LOCKED` on Postgres, empty on SQLite,
/// which serialises writers anyway).
macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:literal, $lock:literal) => {
        use sqlx::Row as _;
        use $crate::store::sql::{db_err, last_by_key, ms, rows_per_chunk, side_from_str};
        use $crate::store::*;
        type DbRow = <$db as sqlx::Database>::Row;
        type Tx<'c> = sqlx::Transaction<'c, $db>;
        use sqlx::types::Json;

        const USER_COLS: &str = "SELECT teams_id, upn, mail, display_name, business_phones, \
            mobile_phone, cc_connector, cc_agent_id, active, updated_at FROM users";
        const AGENT_COLS: &str =
            "SELECT connector, agent_id, email, username, display_name, updated_at FROM agents";
        const SUB_COLS: &str = "SELECT id, kind, shard, account_id, resource, client_state, \
            expires_at, created_at, last_renewed_at, last_reauthorized_at, state, last_error \
            FROM subscriptions";
        const ACCOUNT_COLS: &str = "SELECT id, upn, user_object_id, encrypted_refresh_token, \
            state, last_refresh_at, last_error, created_at FROM sync_accounts";

        fn user_row(r: &DbRow) -> Result<UserRecord, sqlx::Error> {
            Ok(UserRecord {
                teams_id: r.try_get("teams_id")?,
                upn: r.try_get("upn")?,
                mail: r.try_get("mail")?,
                display_name: r.try_get("display_name")?,
                business_phones: r.try_get::<Json<Vec<String>>, _>("business_phones")?.0,
                mobile_phone: r.try_get("mobile_phone")?,
                cc_connector: r.try_get("cc_connector")?,
                cc_agent_id: r.try_get("cc_agent_id")?,
                active: r.try_get("active")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        fn agent_row(r: &DbRow) -> Result<AgentRecord, sqlx::Error> {
            Ok(AgentRecord {
                connector: r.try_get("connector")?,
                agent_id: r.try_get("agent_id")?,
                email: r.try_get("email")?,
                username: r.try_get("username")?,
                display_name: r.try_get("display_name")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        fn sub_row(r: &DbRow) -> Result<SubscriptionRecord, sqlx::Error> {
            Ok(SubscriptionRecord {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                shard: r.try_get("shard")?,
                account_id: r.try_get("account_id")?,
                resource: r.try_get("resource")?,
                client_state: r.try_get("client_state")?,
                expires_at: r.try_get("expires_at")?,
                created_at: r.try_get("created_at")?,
                last_renewed_at: r.try_get("last_renewed_at")?,
                last_reauthorized_at: r.try_get("last_reauthorized_at")?,
                state: r.try_get("state")?,
                last_error: r.try_get("last_error")?,
            })
        }

        fn account_row(r: &DbRow) -> Result<SyncAccountRecord, sqlx::Error> {
            Ok(SyncAccountRecord {
                id: r.try_get("id")?,
                upn: r.try_get("upn")?,
                user_object_id: r.try_get("user_object_id")?,
                encrypted_refresh_token: r.try_get("encrypted_refresh_token")?,
                state: r.try_get("state")?,
                last_refresh_at: r.try_get("last_refresh_at")?,
                last_error: r.try_get("last_error")?,
                created_at: r.try_get("created_at")?,
            })
        }

        fn audit_row(r: &DbRow) -> Result<AuditEntry, sqlx::Error> {
            Ok(AuditEntry {
                id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                at: r.try_get("at")?,
                input: r.try_get::<Json<serde_json::Value>, _>("input")?.0,
                rule: r.try_get("rule")?,
                action: r.try_get("action")?,
                reason: r.try_get("reason")?,
            })
        }

        fn inbox_row(r: &DbRow) -> Result<InboxItem, sqlx::Error> {
            Ok(InboxItem {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                user_id: r.try_get("user_id")?,
                payload: r.try_get::<Json<serde_json::Value>, _>("payload")?.0,
                received_at: r.try_get("received_at")?,
                attempts: r.try_get("attempts")?,
            })
        }

        /// A status row of `observed_status` or `bridge_writes`.
        fn status_row(r: &DbRow, at: &str) -> Result<(String, Side, serde_json::Value, chrono::DateTime<chrono::Utc>), sqlx::Error> {
            Ok((
                r.try_get("user_id")?,
                side_from_str(r.try_get("side")?)?,
                r.try_get::<Json<serde_json::Value>, _>("status")?.0,
                r.try_get(at)?,
            ))
        }

        fn collect<T>(rows: Vec<DbRow>, f: fn(&DbRow) -> Result<T, sqlx::Error>) -> StoreResult<Vec<T>> {
            rows.iter().map(f).collect::<Result<_, _>>().map_err(db_err)
        }

        /// Runs `head (v1, v2, …)` for the values, in chunks, inside `tx`; returns rows affected.
        async fn exec_in<'a, T>(tx: &mut Tx<'_>, head: &str, values: &'a [T]) -> Result<u64, sqlx::Error>
        where
            T: Sync,
            &'a T: sqlx::Encode<'a, $db> + sqlx::Type<$db> + Send,
        {
            let mut affected = 0;
            for chunk in values.chunks(rows_per_chunk(1)) {
                let mut qb = sqlx::QueryBuilder::<'a, $db>::new(head);
                qb.push(" (");
                let mut list = qb.separated(", ");
                for v in chunk {
                    list.push_bind(v);
                }
                qb.push(")");
                affected += qb.build().execute(&mut **tx).await?.rows_affected();
            }
            Ok(affected)
        }

        /// Multi-row `INSERT INTO head VALUES …tail` in chunks, inside `tx`.
        async fn insert_rows<'a, T: 'a>(
            tx: &mut Tx<'_>,
            head: &str,
            cols: usize,
            tail: &str,
            rows: impl IntoIterator<Item = T>,
            bind: impl Fn(sqlx::query_builder::Separated<'_, 'a, $db, &'static str>, T),
        ) -> Result<(), sqlx::Error> {
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let mut qb = sqlx::QueryBuilder::<'a, $db>::new(head);
                qb.push_values(rows.by_ref().take(rows_per_chunk(cols)), &bind);
                qb.push(tail);
                qb.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_err)?;
                Ok(())
            }

            async fn upsert_users(&self, users: &[UserRecord]) -> StoreResult<()> {
                let users = last_by_key(users, |u| u.teams_id.as_str());
                let mut tx = self.pool.begin().await.map_err(db_err)?;
                insert_rows(
                    &mut tx,
                    "INSERT INTO users (teams_id, upn, mail, display_name, business_phones, \
                     mobile_phone, cc_connector, cc_agent_id, active, updated_at) ",
                    10,
                    " ON CONFLICT (teams_id) DO UPDATE SET upn = excluded.upn, \
                     mail = excluded.mail, display_name = excluded.display_name, \
                     business_phones = excluded.business_phones, \
                     mobile_phone = excluded.mobile_phone, cc_connector = excluded.cc_connector, \
                     cc_agent_id = excluded.cc_agent_id, active = excluded.active, \
                     updated_at = excluded.updated_at",
                    users,
                    |mut b, u| {
                        b.push_bind(&u.teams_id)
                            .push_bind(&u.upn)
                            .push_bind(&u.mail)
                            .push_bind(&u.display_name)
                            .push_bind(Json(&u.business_phones))
                            .push_bind(&u.mobile_phone)
                            .push_bind(&u.cc_connector)
                            .push_bind(&u.cc_agent_id)
                            .push_bind(u.active)
                            .push_bind(ms(u.updated_at));
                    },
                )
                .await
                .map_err(db_err)?;
                tx.commit().await.map_err(db_err)
            }

            async fn get_user(&self, teams_id: &str) -> StoreResult<UserRecord> {
                let sql = format!("{USER_COLS} WHERE teams_id = $1");
                let row = sqlx::query(&sql).bind(teams_id).fetch_one(&self.pool).await;
                user_row(&row.map_err(db_err)?).map_err(db_err)
            }

            async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
                let sql = format!("{USER_COLS} ORDER BY teams_id");
                let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(db_err)?;
                collect(rows, user_row)
            }

            async fn deactivate_users(&self, teams_ids: &[String]) -> StoreResult<u64> {
                let mut tx = self.pool.begin().await.map_err(db_err)?;
                let head = "UPDATE users SET active = FALSE WHERE active AND teams_id IN";
                let n = exec_in(&mut tx, head, teams_ids).await.map_err(db_err)?;
                tx.commit().await.map_err(db_err)?;
                Ok(n)
            }

            async fn user_by_agent(&self, connector: &str, agent_id: &str) -> StoreResult<UserRecord> {
                let sql = format!(
                    "{USER_COLS} WHERE cc_connector = $1 AND cc_agent_id = $2 \
                     ORDER BY active DESC, teams_id LIMIT 1"
                );
                let row = sqlx::query(&sql).bind(connector).bind(agent_id).fetch_one(&self.pool).await;
                user_row(&row.map_err(db_err)?).map_err(db_err)
            }

            async fn replace_agents(&self, connector: &str, agents: &[AgentRecord]) -> StoreResult<()> {
                let agents = last_by_key(agents, |a| a.agent_id.as_str());
                let mut tx = self.pool.begin().await.map_err(db_err)?;
                sqlx::query("DELETE FROM agents WHERE connector = $1")
                    .bind(connector)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                insert_rows(
                    &mut tx,
                    "INSERT INTO agents (connector, agent_id, email, username, display_name, updated_at) ",
                    6,
                    "",
                    agents,
                    |mut b, a| {
                        b.push_bind(connector)
                            .push_bind(&a.agent_id)
                            .push_bind(&a.email)
                            .push_bind(&a.username)
                            .push_bind(&a.display_name)
                            .push_bind(ms(a.updated_at));
                    },
                )
                .await
                .map_err(db_err)?;
                tx.commit().await.map_err(db_err)
            }

            async fn list_agents(&self, connector: Option<&str>) -> StoreResult<Vec<AgentRecord>> {
                let sql = format!(
                    "{AGENT_COLS} WHERE $1 IS NULL OR connector = $1 ORDER BY connector, agent_id"
                );
                let rows = sqlx::query(&sql).bind(connector).fetch_all(&self.pool).await;
                collect(rows.map_err(db_err)?, agent_row)
            }

            async fn put_observed(&self, observed: &[ObservedStatus]) -> StoreResult<()> {
                let observed = last_by_key(observed, |o| (o.user_id.as_str(), o.side));
                let mut tx = self.pool.begin().await.map_err(db_err)?;
                insert_rows(
                    &mut tx,
                    "INSERT INTO observed_status (user_id, side, status, observed_at, source) ",
                    5,
                    " ON CONFLICT (user_id, side) DO UPDATE SET status = excluded.status, \
                     observed_at = excluded.observed_at, source = excluded.source",
                    observed,
                    |mut b, o| {
                        b.push_bind(&o.user_id)
                            .push_bind(o.side.as_str())
                            .push_bind(Json(&o.status))
                            .push_bind(ms(o.observed_at))
                            .push_bind(&o.source);
                    },
                )
                .await
                .map_err(db_err)?;
                tx.commit().await.map_err(db_err)
            }

            async fn list_observed(&self) -> StoreResult<Vec<ObservedStatus>> {
                let rows = sqlx::query(
                    "SELECT user_id, side, status, observed_at, source FROM observed_status \
                     ORDER BY user_id, side",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                collect(rows, |r| {
                    let (user_id, side, status, observed_at) = status_row(r, "observed_at")?;
                    Ok(ObservedStatus { user_id, side, status, observed_at, source: r.try_get("source")? })
                })
            }

            async fn put_writes(&self, writes: &[WriteRecord]) -> StoreResult<()> {
                let writes = last_by_key(writes, |w| (w.user_id.as_str(), w.side));
                let mut tx = self.pool.begin().await.map_err(db_err)?;
                insert_rows(
                    &mut tx,
                    "INSERT INTO bridge_writes (user_id, side, status, written_at, sequence) ",
                    5,
                    " ON CONFLICT (user_id, side) DO UPDATE SET status = excluded.status, \
                     written_at = excluded.written_at, sequence = excluded.sequence",
                    writes,
                    |mut b, w| {
                        b.push_bind(&w.user_id)
                            .push_bind(w.side.as_str())
                            .push_bind(Json(&w.status))
                            .push_bind(ms(w.written_at))
                            .push_bind(&w.sequence);
                    },
                )
                .await
                .map_err(db_err)?;
                tx.commit().await.map_err(db_err)
            }

            async fn list_writes(&self) -> StoreResult<Vec<WriteRecord>> {
                let rows = sqlx::query(
                    "SELECT user_id, side, status, written_at, sequence FROM bridge_writes \
                     ORDER BY user_id, side",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                collect(rows, |r| {
                    let (user_id, side, status, written_at) = status_row(r, "written_at")?;
                    Ok(WriteRecord { user_id, side, status, written_at, sequence: r.try_get("sequence")? })
                })
            }

            async fn save_user_states(&self, states: &[(String, serde_json::Value)]) -> StoreResult<()> {
                let states = last_by_key(states, |s| s.0.as_str());
                let mut tx = self.pool.begin().await.map_err(db_err)?;
                insert_rows(
                    &mut tx,
                    "INSERT INTO user_state (user_id, state) ",
                    2,
                    " ON CONFLICT (user_id) DO UPDATE SET state = excluded.state",
                    states,
                    |mut b, (user, state)| {
                        b.push_bind(user).push_bind(Json(state));
                    },
                )
                .await
                .map_err(db_err)?;
                tx.commit().await.map_err(db_err)
            }

            async fn load_user_states(&self) -> StoreResult<Vec<(String, serde_json::Value)>> {
                let rows = sqlx::query("SELECT user_id, state FROM user_state ORDER BY user_id")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                collect(rows, |r| {
                    Ok((r.try_get("user_id")?, r.try_get::<Json<serde_json::Value>, _>("state")?.0))
                })
            }

            async fn upsert_subscription(&self, s: &SubscriptionRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO subscriptions (id, kind, shard, account_id, resource, \
                     client_state, expires_at, created_at, last_renewed_at, \
                     last_reauthorized_at, state, last_error) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, shard = excluded.shard, \
                     account_id = excluded.account_id, resource = excluded.resource, \
                     client_state = excluded.client_state, expires_at = excluded.expires_at, \
                     created_at = excluded.created_at, last_renewed_at = excluded.last_renewed_at, \
                     last_reauthorized_at = excluded.last_reauthorized_at, \
                     state = excluded.state, last_error = excluded.last_error",
                )
                .bind(&s.id)
                .bind(&s.kind)
                .bind(s.shard)
                .bind(&s.account_id)
                .bind(&s.resource)
                .bind(&s.client_state)
                .bind(ms(s.expires_at))
                .bind(ms(s.created_at))
                .bind(s.last_renewed_at.map(ms))
                .bind(s.last_reauthorized_at.map(ms))
                .bind(&s.state)
                .bind(&s.last_error)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn list_subscriptions(&self) -> StoreResult<Vec<SubscriptionRecord>> {
                let sql = format!("{SUB_COLS} ORDER BY id");
                let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(db_err)?;
                collect(rows, sub_row)
            }

            async fn get_subscription(&self, id: &str) -> StoreResult<SubscriptionRecord> {
                let sql = format!("{SUB_COLS} WHERE id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_one(&self.pool).await;
                sub_row(&row.map_err(db_err)?).map_err(db_err)
            }

            async fn delete_subscription(&self, id: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM subscriptions WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }

            async fn insert_account(&self, a: &SyncAccountRecord) -> StoreResult<()> {
                self.write_account(
                    "INSERT INTO sync_accounts (id, upn, user_object_id, encrypted_refresh_token, \
                     state, last_refresh_at, last_error, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    a,
                )
                .await
            }

            async fn update_account(&self, a: &SyncAccountRecord) -> StoreResult<()> {
                self.write_account(
                    "UPDATE sync_accounts SET upn = $2, user_object_id = $3, \
                     encrypted_refresh_token = $4, state = $5, last_refresh_at = $6, \
                     last_error = $7, created_at = $8 WHERE id = $1",
                    a,
                )
                .await
            }

            async fn list_accounts(&self) -> StoreResult<Vec<SyncAccountRecord>> {
                let sql = format!("{ACCOUNT_COLS} ORDER BY id");
                let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(db_err)?;
                collect(rows, account_row)
            }

            async fn get_account(&self, id: &str) -> StoreResult<SyncAccountRecord> {
                let sql = format!("{ACCOUNT_COLS} WHERE id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_one(&self.pool).await;
                account_row(&row.map_err(db_err)?).map_err(db_err)
            }

            async fn delete_account(&self, id: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM sync_accounts WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }

            async fn get_kv(&self, key: &str) -> StoreResult<Option<String>> {
                sqlx::query_scalar("SELECT value FROM kv WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)
            }

            async fn put_kv(&self, key: &str, value: &str) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO kv (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn delete_kv(&self, key: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM kv WHERE key = $1")
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(db_err)?;
                insert_rows(
                    &mut tx,
                    "INSERT INTO audit_log (user_id, at, input, rule, action, reason) ",
                    6,
                    "",
                    entries,
                    |mut b, e| {
                        b.push_bind(&e.user_id)
                            .push_bind(ms(e.at))
                            .push_bind(Json(&e.input))
                            .push_bind(&e.rule)
                            .push_bind(&e.action)
                            .push_bind(&e.reason);
                    },
                )
                .await
                .map_err(db_err)?;
                tx.commit().await.map_err(db_err)
            }

            async fn list_audit(&self, user_id: &str, limit: u32) -> StoreResult<Vec<AuditEntry>> {
                let rows = sqlx::query(
                    "SELECT id, user_id, at, input, rule, action, reason FROM audit_log \
                     WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
                )
                .bind(user_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                collect(rows, audit_row)
            }

            async fn prune_audit(&self, before: chrono::DateTime<chrono::Utc>) -> StoreResult<u64> {
                let done = sqlx::query("DELETE FROM audit_log WHERE at < $1")
                    .bind(ms(before))
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected())
            }

            async fn inbox_push(&self, items: &[NewInboxItem]) -> StoreResult<()> {
                if items.is_empty() {
                    return Ok(());
                }
                let mut tx = self.pool.begin().await.map_err(db_err)?;
                insert_rows(
                    &mut tx,
                    "INSERT INTO inbox (kind, user_id, payload, received_at) ",
                    4,
                    "",
                    items,
                    |mut b, i| {
                        b.push_bind(&i.kind)
                            .push_bind(&i.user_id)
                            .push_bind(Json(&i.payload))
                            .push_bind(ms(i.received_at));
                    },
                )
                .await
                .map_err(db_err)?;
                tx.commit().await.map_err(db_err)
            }

            async fn inbox_claim(&self, limit: u32, lease_secs: u32) -> StoreResult<Vec<InboxItem>> {
                let now = chrono::Utc::now().timestamp_millis();
                let rows = sqlx::query(concat!(
                    "UPDATE inbox SET lease_until = $1 WHERE id IN (SELECT id FROM inbox \
                     WHERE lease_until IS NULL OR lease_until <= $2 ORDER BY id LIMIT $3 ",
                    $lock,
                    ") RETURNING id, kind, user_id, payload, received_at, attempts"
                ))
                .bind(now + i64::from(lease_secs) * 1000)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                let mut items = collect(rows, inbox_row)?;
                items.sort_by_key(|i| i.id);
                Ok(items)
            }

            async fn inbox_ack(&self, ids: &[i64]) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(db_err)?;
                exec_in(&mut tx, "DELETE FROM inbox WHERE id IN", ids).await.map_err(db_err)?;
                tx.commit().await.map_err(db_err)
            }

            async fn inbox_release(&self, ids: &[i64]) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(db_err)?;
                let head = "UPDATE inbox SET lease_until = NULL, attempts = attempts + 1 WHERE id IN";
                exec_in(&mut tx, head, ids).await.map_err(db_err)?;
                tx.commit().await.map_err(db_err)
            }

            async fn inbox_len(&self) -> StoreResult<u64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(n as u64)
            }
        }

        impl $store {
            /// Insert or update of a sync account: NotFound when nothing matched, Conflict on a
            /// duplicate id or upn.
            async fn write_account(&self, sql: &str, a: &SyncAccountRecord) -> StoreResult<()> {
                let done = sqlx::query(sql)
                    .bind(&a.id)
                    .bind(&a.upn)
                    .bind(&a.user_object_id)
                    .bind(&a.encrypted_refresh_token)
                    .bind(&a.state)
                    .bind(a.last_refresh_at.map(ms))
                    .bind(&a.last_error)
                    .bind(ms(a.created_at))
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            }
        }
    };
}

pub(crate) use impl_store;

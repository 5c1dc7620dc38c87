//! Row decoding and statement helpers for one pool type, expanded by [`impl_support!`] next to
//! [`super::impl_store!`] in each backend's module.

/// `from_row!(r => Record { field, json_field: json, … })` reads each field from the column
/// of the same name (JSON columns through `sqlx::types::Json`).
macro_rules! from_row {
    ($r:ident => $ty:ident { $($field:ident $(: $json:ident)?),* $(,)? }) => {
        Ok($ty { $($field: $crate::store::sql::from_row!(@get $r, $field $(, $json)?)),* })
    };
    (@get $r:ident, $field:ident) => {
        sqlx::Row::try_get($r, stringify!($field))?
    };
    (@get $r:ident, $field:ident, json) => {
        sqlx::Row::try_get::<sqlx::types::Json<_>, _>($r, stringify!($field))?.0
    };
}

/// Expands, for `$store` holding `pool: sqlx::Pool<$db>`: row decoders, chunked multi-row
/// `INSERT` and `… IN (…)` helpers, and the shared status-table and account writers.
macro_rules! impl_support {
    ($store:ty, $db:ty) => {
        use sqlx::Row as _;
        use sqlx::types::Json;
        use $crate::store::sql::{
            from_row,
            CACHED_SQL_MAX, StatusRow, StatusTable, db_err, last_by_key, ms, rows_per_chunk, side_from_str,
        };
        use $crate::store::*;

        type DbRow = <$db as sqlx::Database>::Row;
        type Tx<'c> = sqlx::Transaction<'c, $db>;
        type Binder<'q, 'a> = sqlx::query_builder::Separated<'q, 'a, $db, &'static str>;

        fn user_row(r: &DbRow) -> Result<UserRecord, sqlx::Error> {
            from_row!(r => UserRecord {
                teams_id, upn, mail, display_name, business_phones: json, mobile_phone,
                cc_connector, cc_agent_id, active, updated_at,
            })
        }

        fn agent_row(r: &DbRow) -> Result<AgentRecord, sqlx::Error> {
            from_row!(r => AgentRecord { connector, agent_id, email, username, display_name, updated_at })
        }

        fn sub_row(r: &DbRow) -> Result<SubscriptionRecord, sqlx::Error> {
            from_row!(r => SubscriptionRecord {
                id, kind, shard, account_id, resource, client_state, expires_at, created_at,
                last_renewed_at, last_reauthorized_at, state, last_error,
            })
        }

        fn account_row(r: &DbRow) -> Result<SyncAccountRecord, sqlx::Error> {
            from_row!(r => SyncAccountRecord {
                id, upn, user_object_id, encrypted_refresh_token, state, last_refresh_at,
                last_error, created_at,
            })
        }

        fn audit_row(r: &DbRow) -> Result<AuditEntry, sqlx::Error> {
            from_row!(r => AuditEntry { id, user_id, at, input: json, rule, action, reason })
        }

        fn inbox_row(r: &DbRow) -> Result<InboxItem, sqlx::Error> {
            from_row!(r => InboxItem { id, kind, user_id, payload: json, received_at, attempts })
        }

        fn status_row(r: &DbRow) -> Result<StatusRow<String, serde_json::Value, String>, sqlx::Error> {
            Ok((
                r.try_get("user_id")?,
                side_from_str(r.try_get("side")?)?,
                r.try_get::<Json<serde_json::Value>, _>("status")?.0,
                r.try_get("at")?,
                r.try_get("extra")?,
            ))
        }

        fn state_row(r: &DbRow) -> Result<(String, JsonText), sqlx::Error> {
            Ok((r.try_get("user_id")?, r.try_get::<Json<JsonText>, _>("state")?.0))
        }

        fn collect<T>(rows: Vec<DbRow>, f: fn(&DbRow) -> Result<T, sqlx::Error>) -> StoreResult<Vec<T>> {
            rows.iter().map(f).collect::<Result<_, _>>().map_err(db_err)
        }

        /// Every row of a query with text parameters `$1…`.
        async fn fetch_all<T>(
            pool: &sqlx::Pool<$db>,
            sql: &str,
            binds: &[&str],
            f: fn(&DbRow) -> Result<T, sqlx::Error>,
        ) -> StoreResult<Vec<T>> {
            use futures::TryStreamExt as _;
            let query = binds.iter().fold(sqlx::query(sql), |q, b| q.bind(*b));
            // Row by row: `fetch_all` would hold every row's raw values (for SQLite, a copy
            // of each value: ~1 KB per user row) beside the records made from them.
            let mut rows = query.fetch(pool);
            let mut out = Vec::new();
            while let Some(row) = rows.try_next().await.map_err(db_err)? {
                out.push(f(&row).map_err(db_err)?);
            }
            Ok(out)
        }

        /// The one row of a query with text parameters `$1…`; NotFound when there is none.
        async fn fetch_one<T>(
            pool: &sqlx::Pool<$db>,
            sql: &str,
            binds: &[&str],
            f: fn(&DbRow) -> Result<T, sqlx::Error>,
        ) -> StoreResult<T> {
            let query = binds.iter().fold(sqlx::query(sql), |q, b| q.bind(*b));
            f(&query.fetch_one(pool).await.map_err(db_err)?).map_err(db_err)
        }

        /// Runs a statement with text parameters `$1…`; returns the rows affected.
        async fn execute(pool: &sqlx::Pool<$db>, sql: &str, binds: &[&str]) -> StoreResult<u64> {
            let query = binds.iter().fold(sqlx::query(sql), |q, b| q.bind(*b));
            Ok(query.execute(pool).await.map_err(db_err)?.rows_affected())
        }

        /// An `UPDATE`/`DELETE` of one keyed row: NotFound when it matched nothing.
        fn found(rows_affected: u64) -> StoreResult<()> {
            if rows_affected == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        }

        /// `head (v1, v2, …)` for the values, as many statements as the bind limit needs.
        fn in_statements<'a, T>(head: &str, values: &'a [T]) -> Vec<sqlx::QueryBuilder<'a, $db>>
        where
            &'a T: sqlx::Encode<'a, $db> + sqlx::Type<$db> + Send,
        {
            let statement = |chunk: &'a [T]| {
                let mut qb = sqlx::QueryBuilder::<'a, $db>::new(head);
                qb.push(" (");
                let mut list = qb.separated(", ");
                for v in chunk {
                    list.push_bind(v);
                }
                qb.push(")");
                qb
            };
            values.chunks(rows_per_chunk(1)).map(statement).collect()
        }

        /// `head VALUES (…), (…) tail` for the rows, `cols` binds each, as many statements as
        /// the bind limit needs.
        fn values_statements<'a, T: 'a>(
            head: &str,
            cols: usize,
            tail: &str,
            rows: impl IntoIterator<Item = T>,
            bind: impl Fn(Binder<'_, 'a>, T),
        ) -> Vec<sqlx::QueryBuilder<'a, $db>> {
            let mut rows = rows.into_iter().peekable();
            let mut statements = Vec::new();
            while rows.peek().is_some() {
                let mut qb = sqlx::QueryBuilder::<'a, $db>::new(head);
                qb.push_values(rows.by_ref().take(rows_per_chunk(cols)), &bind);
                qb.push(tail);
                statements.push(qb);
            }
            statements
        }

        /// The builder's statement, kept in the connection's prepared-statement cache only when
        /// it is short. Multi-row statements differ in their row count from one call to the
        /// next and each prepared one is large (SQLite's program for 1,000 rows is hundreds of
        /// KB): cached, they filled every connection's cache with one-off programs.
        fn built<'q, 'a>(
            qb: &'q mut sqlx::QueryBuilder<'a, $db>,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'a>> {
            let keep = qb.sql().len() <= CACHED_SQL_MAX;
            qb.build().persistent(keep)
        }

        /// Runs the statements inside `tx`; returns the rows affected.
        async fn run_in(tx: &mut Tx<'_>, statements: Vec<sqlx::QueryBuilder<'_, $db>>) -> StoreResult<u64> {
            let mut affected = 0;
            for mut qb in statements {
                affected += built(&mut qb).execute(&mut **tx).await.map_err(db_err)?.rows_affected();
            }
            Ok(affected)
        }

        /// Runs the statements so that all or none take effect: one statement on its own (it
        /// is atomic, and skipping BEGIN/COMMIT saves two round trips on the hot inbox path),
        /// several in a transaction.
        async fn run_atomic(pool: &sqlx::Pool<$db>, mut statements: Vec<sqlx::QueryBuilder<'_, $db>>) -> StoreResult<u64> {
            if statements.len() <= 1 {
                return match statements.pop() {
                    Some(mut qb) => Ok(built(&mut qb).execute(pool).await.map_err(db_err)?.rows_affected()),
                    None => Ok(0),
                };
            }
            let mut tx = pool.begin().await.map_err(db_err)?;
            let affected = run_in(&mut tx, statements).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(affected)
        }

        impl $store {
            /// Upserts rows of `observed_status` or `bridge_writes`.
            async fn put_status(
                &self,
                t: &StatusTable,
                rows: &[StatusRow<&str, &serde_json::Value, &str>],
            ) -> StoreResult<()> {
                let head = format!("INSERT INTO {} (user_id, side, status, {}, {}) ", t.table, t.at, t.extra);
                let mut tail = format!(
                    " ON CONFLICT (user_id, side) DO UPDATE SET status = excluded.status, \
                     {0} = excluded.{0}, {1} = excluded.{1}",
                    t.at, t.extra
                );
                if t.newer_only {
                    tail.push_str(&format!(" WHERE {0}.{1} <= excluded.{1}", t.table, t.at));
                }
                let rows = last_by_key(rows, |r| (r.0, r.1));
                let statements = values_statements(&head, 5, &tail, rows, |mut b, r| {
                    b.push_bind(r.0).push_bind(r.1.as_str()).push_bind(Json(r.2)).push_bind(ms(r.3)).push_bind(r.4);
                });
                run_atomic(&self.pool, statements).await.map(drop)
            }

            /// All rows of `observed_status` or `bridge_writes`, by user and side.
            async fn list_status(&self, t: &StatusTable) -> StoreResult<Vec<StatusRow<String, serde_json::Value, String>>> {
                let sql = format!(
                    "SELECT user_id, side, status, {} AS at, {} AS extra FROM {} ORDER BY user_id, side",
                    t.at, t.extra, t.table
                );
                let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(db_err)?;
                collect(rows, status_row)
            }

            /// Insert or update of a sync account, binding its columns as `$1…$8`.
            async fn write_account(&self, sql: &str, a: &SyncAccountRecord) -> StoreResult<u64> {
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
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use {from_row, impl_support};

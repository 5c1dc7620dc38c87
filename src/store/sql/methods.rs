//! The `Store` methods, written once for both backends.

/// Expands `impl Store for $store` over `self.pool: sqlx::Pool<$db>`, with the helpers of
/// [`super::impl_support!`]. `$lock` is appended to the row selection of `inbox_claim`
/// (`FOR UPDATE SKIP LOCKED` on Postgres; empty on SQLite, which serialises writers anyway).
macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:literal, $lock:literal) => {
        $crate::store::sql::impl_support!($store, $db);
        $crate::store::sql::impl_ingest!($store, $db);
        $crate::store::sql::impl_cursors!($store, $db);
        $crate::store::sql::impl_contacts!($store, $db);
        $crate::store::sql::impl_contact_state!($store, $db);
        $crate::store::sql::impl_queue!($store, $db, $lock);
        $crate::store::sql::impl_people!($store, $db);
        use $crate::store::sql::{OBSERVED, WRITES, newest_by_key};

        const USERS: &str = "SELECT teams_id, upn, mail, display_name, business_phones, \
            mobile_phone, cc_connector, cc_agent_id, active, updated_at FROM users";
        const AGENTS: &str =
            "SELECT connector, agent_id, email, username, display_name, updated_at FROM agents";
        const SUBSCRIPTIONS: &str = "SELECT id, kind, shard, account_id, resource, \
            client_state, expires_at, created_at, last_renewed_at, last_reauthorized_at, state, \
            last_error FROM subscriptions";
        const ACCOUNTS: &str = "SELECT id, upn, user_object_id, encrypted_refresh_token, \
            state, last_refresh_at, last_error, created_at FROM sync_accounts";

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> StoreResult<()> {
                // Needs write access (a read-only file, role or standby fails it) and changes
                // no row: no key is empty.
                sqlx::query("UPDATE kv SET value = value WHERE key = ''")
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            fn instance_id(&self) -> &str {
                &self.owner
            }

            async fn upsert_users(&self, users: &[UserRecord]) -> StoreResult<()> {
                let users = last_by_key(users, |u| u.teams_id.as_str());
                run_atomic(&self.pool, values_statements(
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
                ))
                .await.map(drop)
            }

            async fn get_user(&self, teams_id: &str) -> StoreResult<UserRecord> {
                fetch_one(&self.pool, &format!("{USERS} WHERE teams_id = $1"), &[teams_id], user_row).await
            }

            async fn get_users(&self, teams_ids: &[String]) -> StoreResult<Vec<UserRecord>> {
                let mut out = Vec::with_capacity(teams_ids.len());
                for chunk in teams_ids.chunks(crate::store::USERS_PER_READ) {
                    let marks = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
                    let binds: Vec<&str> = chunk.iter().map(String::as_str).collect();
                    let sql = format!("{USERS} WHERE teams_id IN ({marks})");
                    out.extend(fetch_all(&self.pool, &sql, &binds, user_row).await?);
                }
                Ok(out)
            }

            async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
                fetch_all(&self.pool, &format!("{USERS} ORDER BY teams_id"), &[], user_row).await
            }

            async fn list_users_page(
                &self,
                after: Option<&str>,
                limit: u32,
            ) -> StoreResult<Vec<UserRecord>> {
                let sql = format!("{USERS} WHERE teams_id > $1 ORDER BY teams_id LIMIT {limit}");
                fetch_all(&self.pool, &sql, &[after.unwrap_or("")], user_row).await
            }

            async fn set_user_matches(&self, matches: &[UserMatch], at: DateTime<Utc>) -> StoreResult<u64> {
                // One multi-row statement per chunk; `column1…` are the VALUES columns' names in
                // both backends.
                let matches = last_by_key(matches, |m| m.teams_id.as_str());
                let at = ms(at);
                run_atomic(&self.pool, values_statements(
                    "UPDATE users SET cc_connector = v.column2, cc_agent_id = v.column3, \
                     updated_at = v.column4 FROM (",
                    4,
                    ") AS v WHERE users.teams_id = v.column1",
                    matches,
                    |mut b, m| {
                        b.push_bind(&m.teams_id)
                            .push_bind(&m.connector)
                            .push_bind(&m.agent_id)
                            .push_bind(at);
                    },
                ))
                .await
            }

            async fn directory_version(&self) -> StoreResult<[String; 5]> {
                // As text: times are integers in one backend's schema and text in the other's.
                let row = sqlx::query(
                    "SELECT CAST((SELECT COUNT(*) FROM users) AS TEXT) AS users, \
                     CAST((SELECT COUNT(*) FROM users WHERE active) AS TEXT) AS active, \
                     CAST((SELECT MAX(updated_at) FROM users) AS TEXT) AS users_at, \
                     CAST((SELECT COUNT(*) FROM agents) AS TEXT) AS agents, \
                     CAST((SELECT MAX(updated_at) FROM agents) AS TEXT) AS agents_at",
                )
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
                let get = |c: &str| {
                    row.try_get::<Option<String>, _>(c)
                        .map(Option::unwrap_or_default)
                        .map_err(db_err)
                };
                Ok([get("users")?, get("active")?, get("users_at")?, get("agents")?, get("agents_at")?])
            }

            async fn deactivate_users(&self, teams_ids: &[String]) -> StoreResult<u64> {
                let head = "UPDATE users SET active = FALSE WHERE active AND teams_id IN";
                run_atomic(&self.pool, in_statements(head, teams_ids)).await
            }

            async fn user_by_agent(&self, connector: &str, agent_id: &str) -> StoreResult<UserRecord> {
                // Should two users claim one agent, the active one wins, then the lowest id.
                let sql = format!(
                    "{USERS} WHERE cc_connector = $1 AND cc_agent_id = $2 \
                     ORDER BY active DESC, teams_id LIMIT 1"
                );
                fetch_one(&self.pool, &sql, &[connector, agent_id], user_row).await
            }

            async fn replace_agents(&self, connector: &str, agents: &[AgentRecord]) -> StoreResult<()> {
                let agents = last_by_key(agents, |a| a.agent_id.as_str());
                let mut tx = self.pool.begin().await.map_err(db_err)?;
                sqlx::query("DELETE FROM agents WHERE connector = $1")
                    .bind(connector)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                run_in(&mut tx, values_statements(
                    "INSERT INTO agents (connector, agent_id, email, username, display_name, \
                     updated_at) ",
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
                ))
                .await?;
                tx.commit().await.map_err(db_err)
            }

            async fn list_agents(&self, connector: Option<&str>) -> StoreResult<Vec<AgentRecord>> {
                let sql = format!(
                    "{AGENTS} WHERE $1 IS NULL OR connector = $1 ORDER BY connector, agent_id"
                );
                // Row by row, as `fetch_all` (the helper) does.
                use futures::TryStreamExt as _;
                let mut rows = sqlx::query(&sql).bind(connector).fetch(&self.pool);
                let mut out = Vec::new();
                while let Some(row) = rows.try_next().await.map_err(db_err)? {
                    out.push(agent_row(&row).map_err(db_err)?);
                }
                Ok(out)
            }

            async fn put_observed(&self, observed: &[ObservedStatus]) -> StoreResult<()> {
                // Per user and side the newest wins, in the batch and against the table.
                let newest = newest_by_key(observed, |o| (o.user_id.as_str(), o.side), |o| o.observed_at);
                let rows: Vec<_> = newest
                    .into_iter()
                    .map(|o| (o.user_id.as_str(), o.side, &o.status, o.observed_at, Some(o.source.as_str())))
                    .collect();
                self.put_status(&OBSERVED, &rows).await
            }

            async fn list_observed(&self) -> StoreResult<Vec<ObservedStatus>> {
                let rows = self.list_status(&OBSERVED).await?;
                Ok(rows
                    .into_iter()
                    .map(|(user_id, side, status, observed_at, source)| ObservedStatus {
                        user_id,
                        side,
                        status,
                        observed_at,
                        source: source.unwrap_or_default(),
                    })
                    .collect())
            }

            async fn put_writes(&self, writes: &[WriteRecord]) -> StoreResult<()> {
                let rows: Vec<_> = writes
                    .iter()
                    .map(|w| (w.user_id.as_str(), w.side, &w.status, w.written_at, w.sequence.as_deref()))
                    .collect();
                self.put_status(&WRITES, &rows).await
            }

            async fn list_writes(&self) -> StoreResult<Vec<WriteRecord>> {
                let rows = self.list_status(&WRITES).await?;
                Ok(rows
                    .into_iter()
                    .map(|(user_id, side, status, written_at, sequence)| WriteRecord {
                        user_id,
                        side,
                        status,
                        written_at,
                        sequence,
                    })
                    .collect())
            }

            async fn save_user_states(&self, states: &[(String, JsonText)]) -> StoreResult<()> {
                let states = last_by_key(states, |s| s.0.as_str());
                run_atomic(&self.pool, values_statements(
                    "INSERT INTO user_state (user_id, state) ",
                    2,
                    " ON CONFLICT (user_id) DO UPDATE SET state = excluded.state",
                    states,
                    |mut b, (user, state)| {
                        b.push_bind(user).push_bind(Json(state));
                    },
                ))
                .await.map(drop)
            }

            async fn load_user_states(&self) -> StoreResult<Vec<(String, JsonText)>> {
                let sql = "SELECT user_id, state FROM user_state ORDER BY user_id";
                fetch_all(&self.pool, sql, &[], state_row).await
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
                fetch_all(&self.pool, &format!("{SUBSCRIPTIONS} ORDER BY id"), &[], sub_row).await
            }

            async fn get_subscription(&self, id: &str) -> StoreResult<SubscriptionRecord> {
                fetch_one(&self.pool, &format!("{SUBSCRIPTIONS} WHERE id = $1"), &[id], sub_row).await
            }

            async fn delete_subscription(&self, id: &str) -> StoreResult<()> {
                found(execute(&self.pool, "DELETE FROM subscriptions WHERE id = $1", &[id]).await?)
            }

            async fn insert_account(&self, a: &SyncAccountRecord) -> StoreResult<()> {
                let sql = "INSERT INTO sync_accounts (id, upn, user_object_id, \
                    encrypted_refresh_token, state, last_refresh_at, last_error, created_at) \
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
                self.write_account(sql, a).await.map(drop)
            }

            async fn update_account(&self, a: &SyncAccountRecord) -> StoreResult<()> {
                let sql = "UPDATE sync_accounts SET upn = $2, user_object_id = $3, \
                    encrypted_refresh_token = $4, state = $5, last_refresh_at = $6, \
                    last_error = $7, created_at = $8 WHERE id = $1";
                found(self.write_account(sql, a).await?)
            }

            async fn list_accounts(&self) -> StoreResult<Vec<SyncAccountRecord>> {
                fetch_all(&self.pool, &format!("{ACCOUNTS} ORDER BY id"), &[], account_row).await
            }

            async fn get_account(&self, id: &str) -> StoreResult<SyncAccountRecord> {
                fetch_one(&self.pool, &format!("{ACCOUNTS} WHERE id = $1"), &[id], account_row).await
            }

            async fn delete_account(&self, id: &str) -> StoreResult<()> {
                found(execute(&self.pool, "DELETE FROM sync_accounts WHERE id = $1", &[id]).await?)
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
                execute(&self.pool, "DELETE FROM kv WHERE key = $1", &[key]).await.map(drop)
            }

            async fn get_cursors(&self, connector: &str) -> StoreResult<Vec<(String, String)>> {
                self.cursors_of(connector).await
            }

            async fn put_cursors(&self, connector: &str, cursors: &[(String, String)]) -> StoreResult<()> {
                self.cursors_put(connector, cursors).await
            }

            async fn delete_cursors(&self, connector: &str, keys: &[String]) -> StoreResult<()> {
                self.cursors_delete(connector, keys).await
            }

            async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
                run_atomic(&self.pool, values_statements(
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
                ))
                .await.map(drop)
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
                run_atomic(&self.pool, inbox_statements(items)).await.map(drop)
            }

            async fn inbox_claim(&self, limit: u32, lease_secs: u32) -> StoreResult<Vec<InboxItem>> {
                let now = chrono::Utc::now().timestamp_millis();
                let rows = sqlx::query(concat!(
                    "UPDATE inbox SET lease_until = $1, lease_owner = $4 WHERE id IN (SELECT id \
                     FROM inbox WHERE lease_until IS NULL OR lease_until <= $2 ORDER BY id LIMIT $3 ",
                    $lock,
                    ") RETURNING id, kind, user_id, payload, received_at, attempts"
                ))
                .bind(now + i64::from(lease_secs) * 1000)
                .bind(now)
                .bind(i64::from(limit))
                .bind(&self.owner)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                // RETURNING does not promise an order.
                let mut items = collect(rows, inbox_row)?;
                items.sort_by_key(|i| i.id);
                Ok(items)
            }

            async fn inbox_ack(&self, ids: &[i64]) -> StoreResult<()> {
                run_atomic(&self.pool, in_statements("DELETE FROM inbox WHERE id IN", ids)).await.map(drop)
            }

            async fn inbox_release(&self, ids: &[i64]) -> StoreResult<()> {
                let head = "UPDATE inbox SET lease_until = NULL, lease_owner = NULL, \
                    attempts = attempts + 1 WHERE id IN";
                run_atomic(&self.pool, in_statements(head, ids)).await.map(drop)
            }

            async fn inbox_reclaim(&self) -> StoreResult<u64> {
                let sql = "UPDATE inbox SET lease_until = NULL, lease_owner = NULL, \
                    attempts = attempts + 1 WHERE lease_owner = $1 AND lease_until IS NOT NULL";
                execute(&self.pool, sql, &[&self.owner]).await
            }

            async fn inbox_len(&self) -> StoreResult<u64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)?;
                Ok(n as u64)
            }

            async fn contact_events_push(
                &self,
                connector: &str,
                events: &[$crate::model::contact_center::ContactEvent],
            ) -> StoreResult<Vec<bool>> {
                self.contacts_push(connector, events).await
            }

            async fn list_contact_events(
                &self,
                agent_id: &str,
                connector: Option<&str>,
                contacts: u32,
            ) -> StoreResult<Vec<StoredContactEvent>> {
                self.contacts_list(agent_id, connector, contacts).await
            }

            async fn prune_contact_events(
                &self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> StoreResult<u64> {
                self.contacts_prune(before).await
            }

            async fn contact_state_get(
                &self,
                integration: &str,
                connector: &str,
                contact_id: &str,
            ) -> StoreResult<Option<$crate::store::ContactStateRecord>> {
                self.contact_state_read(integration, connector, contact_id).await
            }

            async fn contact_state_put(
                &self,
                record: &$crate::store::ContactStateRecord,
            ) -> StoreResult<()> {
                self.contact_state_write(record).await
            }

            async fn contact_state_prune(
                &self,
                integration: &str,
                before: chrono::DateTime<chrono::Utc>,
            ) -> StoreResult<u64> {
                self.contact_state_delete_before(integration, before).await
            }

            async fn queue_push(&self, jobs: &[NewJob]) -> StoreResult<u64> {
                self.jobs_push(jobs).await
            }

            async fn queue_claim(
                &self,
                queue: &str,
                limit: u32,
                lease_secs: u32,
                now: chrono::DateTime<chrono::Utc>,
            ) -> StoreResult<Vec<Job>> {
                self.jobs_claim(queue, limit, lease_secs, now).await
            }

            async fn queue_done(&self, id: i64) -> StoreResult<()> {
                self.jobs_done(id).await
            }

            async fn queue_retry(
                &self,
                id: i64,
                not_before: chrono::DateTime<chrono::Utc>,
                error: &str,
            ) -> StoreResult<()> {
                self.jobs_retry(id, not_before, error).await
            }

            async fn queue_len(&self, queue: &str) -> StoreResult<u64> {
                self.jobs_len(queue).await
            }

            async fn queue_next_due(
                &self,
                queue: &str,
            ) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
                self.jobs_next_due(queue).await
            }

            async fn prune_jobs(&self, before: chrono::DateTime<chrono::Utc>) -> StoreResult<u64> {
                self.jobs_prune(before).await
            }

            async fn ingest_push(&self, connector: &str, rows: &[IngestRow]) -> StoreResult<Vec<IngestVerdict>> {
                self.ingest_push_tx(connector, rows).await
            }

            async fn prune_ingest(&self, before: chrono::DateTime<chrono::Utc>, per_agent: u32) -> StoreResult<u64> {
                self.prune_ingest_ids(before, per_agent).await
            }

            async fn list_people(
                &self,
                query: &$crate::store::people::PeopleQuery,
            ) -> StoreResult<$crate::store::people::PeoplePage> {
                self.people_page(query).await
            }
        }
    };
}

pub(crate) use impl_store;

//! The durable work queue, written once for both backends (see the `jobs` migration): jobs
//! pushed once per dedupe id, handed out only at the head of their key and only when due,
//! leased while they run, retried later or marked done. Expanded by [`impl_queue!`] next to
//! [`super::impl_store!`], whose `Store` methods call these.

/// Expands, for `$store` holding `pool: sqlx::Pool<$db>` and `owner`, the bodies of the
/// `Store` methods on the work queue. `$lock` is appended to the row selection of the claim
/// (`FOR UPDATE SKIP LOCKED` on Postgres, so two replicas never take one job).
macro_rules! impl_queue {
    ($store:ty, $db:ty, $lock:literal) => {
        impl $store {
            async fn jobs_push(&self, jobs: &[$crate::store::NewJob]) -> StoreResult<u64> {
                if jobs.is_empty() {
                    return Ok(0);
                }
                let now = chrono::Utc::now().timestamp_millis();
                let mut fresh = 0;
                let mut tx = self.pool.begin().await.map_err(db_err)?;
                for j in jobs {
                    fresh += sqlx::query(
                        "INSERT INTO jobs (queue, key, dedupe, payload, not_before, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (queue, dedupe) DO NOTHING",
                    )
                    .bind(&j.queue)
                    .bind(&j.key)
                    .bind(&j.dedupe)
                    .bind(Json(&j.payload))
                    .bind(j.not_before.timestamp_millis())
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                }
                tx.commit().await.map_err(db_err)?;
                Ok(fresh)
            }

            async fn jobs_claim(
                &self,
                queue: &str,
                limit: u32,
                lease_secs: u32,
                now: chrono::DateTime<chrono::Utc>,
            ) -> StoreResult<Vec<$crate::store::Job>> {
                let now = now.timestamp_millis();
                let rows = sqlx::query(concat!(
                    "UPDATE jobs SET lease_until = $1, lease_owner = $2 WHERE id IN (\
                     SELECT j.id FROM jobs j WHERE j.queue = $3 AND j.done_at IS NULL \
                     AND j.not_before <= $4 AND (j.lease_until IS NULL OR j.lease_until <= $4) \
                     AND NOT EXISTS (SELECT 1 FROM jobs p WHERE p.queue = j.queue \
                     AND p.key = j.key AND p.done_at IS NULL AND p.id < j.id) \
                     ORDER BY j.id LIMIT $5 ",
                    $lock,
                    ") RETURNING id, queue, key, payload, attempts, created_at"
                ))
                .bind(now + i64::from(lease_secs) * 1000)
                .bind(&self.owner)
                .bind(queue)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                let mut jobs = rows
                    .iter()
                    .map(|r| {
                        let attempts: i32 = r.try_get("attempts")?;
                        let created: i64 = r.try_get("created_at")?;
                        let payload: Json<serde_json::Value> = r.try_get("payload")?;
                        Ok($crate::store::Job {
                            id: r.try_get("id")?,
                            queue: r.try_get("queue")?,
                            key: r.try_get("key")?,
                            payload: payload.0,
                            attempts: attempts.max(0) as u32,
                            created_at: chrono::DateTime::from_timestamp_millis(created)
                                .unwrap_or_default(),
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(db_err)?;
                // RETURNING does not promise an order.
                jobs.sort_by_key(|j| j.id);
                Ok(jobs)
            }

            async fn jobs_done(&self, id: i64) -> StoreResult<()> {
                let now = chrono::Utc::now().timestamp_millis();
                let n = sqlx::query(
                    "UPDATE jobs SET done_at = $1, lease_until = NULL, lease_owner = NULL \
                     WHERE id = $2",
                )
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(db_err)?
                .rows_affected();
                found(n)
            }

            async fn jobs_retry(
                &self,
                id: i64,
                not_before: chrono::DateTime<chrono::Utc>,
                error: &str,
            ) -> StoreResult<()> {
                let n = sqlx::query(
                    "UPDATE jobs SET not_before = $1, last_error = $2, attempts = attempts + 1, \
                     lease_until = NULL, lease_owner = NULL WHERE id = $3 AND done_at IS NULL",
                )
                .bind(not_before.timestamp_millis())
                .bind(error)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(db_err)?
                .rows_affected();
                found(n)
            }

            async fn jobs_len(&self, queue: &str) -> StoreResult<u64> {
                let n: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE queue = $1 AND done_at IS NULL")
                        .bind(queue)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                Ok(n as u64)
            }

            async fn jobs_next_due(
                &self,
                queue: &str,
            ) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
                let at: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(CASE WHEN j.lease_until IS NOT NULL AND j.lease_until > j.not_before \
                     THEN j.lease_until ELSE j.not_before END) FROM jobs \
                     j WHERE j.queue = $1 AND j.done_at IS NULL AND NOT EXISTS (SELECT 1 FROM jobs p \
                     WHERE p.queue = j.queue AND p.key = j.key AND p.done_at IS NULL \
                     AND p.id < j.id)",
                )
                .bind(queue)
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(at.and_then(chrono::DateTime::from_timestamp_millis))
            }

            async fn jobs_prune(&self, before: chrono::DateTime<chrono::Utc>) -> StoreResult<u64> {
                let n = sqlx::query("DELETE FROM jobs WHERE done_at IS NOT NULL AND done_at < $1")
                    .bind(before.timestamp_millis())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                Ok(n)
            }
        }
    };
}

pub(crate) use impl_queue;

//! Connector cursors, written once for both backends: where a connector's event source
//! resumes after a restart (per key, an opaque value the connector understands). Expanded by
//! [`impl_cursors!`] next to [`super::impl_store!`].

/// Expands, for `$store` holding `pool: sqlx::Pool<$db>`, the bodies of `get_cursors`,
/// `put_cursors` and `delete_cursors`.
macro_rules! impl_cursors {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn cursors_of(&self, connector: &str) -> StoreResult<Vec<(String, String)>> {
                let rows = sqlx::query(
                    "SELECT key, value FROM connector_cursors WHERE connector = $1 ORDER BY key",
                )
                .bind(connector)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                rows.iter()
                    .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(db_err)
            }

            async fn cursors_put(
                &self,
                connector: &str,
                cursors: &[(String, String)],
            ) -> StoreResult<()> {
                let cursors = last_by_key(cursors, |c| c.0.as_str());
                let now = chrono::Utc::now().timestamp_millis();
                run_atomic(
                    &self.pool,
                    values_statements(
                        "INSERT INTO connector_cursors (connector, key, value, updated_at) ",
                        4,
                        " ON CONFLICT (connector, key) DO UPDATE SET value = excluded.value, \
                         updated_at = excluded.updated_at",
                        cursors,
                        |mut b, c| {
                            b.push_bind(connector)
                                .push_bind(&c.0)
                                .push_bind(&c.1)
                                .push_bind(now);
                        },
                    ),
                )
                .await
                .map(drop)
            }

            async fn cursors_delete(&self, connector: &str, keys: &[String]) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(db_err)?;
                for chunk in keys.chunks(rows_per_chunk(1) - 1) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "DELETE FROM connector_cursors WHERE connector = ",
                    );
                    qb.push_bind(connector).push(" AND key IN (");
                    let mut list = qb.separated(", ");
                    for k in chunk {
                        list.push_bind(k);
                    }
                    qb.push(")");
                    built(&mut qb).execute(&mut *tx).await.map_err(db_err)?;
                }
                tx.commit().await.map_err(db_err)
            }
        }
    };
}

pub(crate) use impl_cursors;

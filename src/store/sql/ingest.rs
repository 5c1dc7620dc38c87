//! Replay protection for contact-center events, written once for both backends: the
//! check-and-record of event ids and per-agent times happens in the database, in the
//! transaction that appends the inbox rows, so it holds across restarts, concurrent requests
//! and replicas. Expanded by [`impl_ingest!`] next to [`super::impl_store!`].

/// Expands, for `$store` holding `pool: sqlx::Pool<$db>`: the inbox row statements and the
/// bodies of `ingest_push` and `prune_ingest`.
macro_rules! impl_ingest {
    ($store:ty, $db:ty) => {
        /// `INSERT INTO inbox …` for the items, as many statements as the bind limit needs.
        fn inbox_statements<'a>(
            items: impl IntoIterator<Item = &'a NewInboxItem>,
        ) -> Vec<sqlx::QueryBuilder<'a, $db>> {
            values_statements(
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
        }

        impl $store {
            async fn ingest_push_tx(
                &self,
                connector: &str,
                rows: &[IngestRow],
            ) -> StoreResult<Vec<IngestVerdict>> {
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                // Rows are checked agent by agent (each agent's in the order given), so that
                // concurrent transactions on Postgres take the row locks in one order.
                let mut order: Vec<usize> = (0..rows.len()).collect();
                order.sort_by(|a, b| rows[*a].agent_id.cmp(&rows[*b].agent_id));
                let now = chrono::Utc::now().timestamp_millis();
                let mut verdicts = vec![IngestVerdict::Accepted; rows.len()];
                let mut tx = self.pool.begin().await.map_err(db_err)?;
                for i in order {
                    let r = &rows[i];
                    if let Some(id) = &r.event_id {
                        let fresh = sqlx::query(
                            "INSERT INTO ingest_events (connector, event_id, agent_id, seen_at) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (connector, event_id) DO NOTHING",
                        )
                        .bind(connector)
                        .bind(id)
                        .bind(&r.agent_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?
                        .rows_affected();
                        if fresh == 0 {
                            verdicts[i] = IngestVerdict::Duplicate;
                            continue;
                        }
                    }
                    let newest = sqlx::query(
                        "INSERT INTO ingest_agents (connector, agent_id, last_at) \
                         VALUES ($1, $2, $3) ON CONFLICT (connector, agent_id) DO UPDATE \
                         SET last_at = excluded.last_at \
                         WHERE ingest_agents.last_at <= excluded.last_at",
                    )
                    .bind(connector)
                    .bind(&r.agent_id)
                    .bind(r.at.timestamp_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                    if newest == 0 {
                        verdicts[i] = IngestVerdict::Stale;
                    }
                }
                let accepted = rows
                    .iter()
                    .zip(&verdicts)
                    .filter(|(_, v)| **v == IngestVerdict::Accepted)
                    .map(|(r, _)| &r.item);
                run_in(&mut tx, inbox_statements(accepted)).await?;
                tx.commit().await.map_err(db_err)?;
                Ok(verdicts)
            }

            async fn prune_ingest_ids(
                &self,
                before: chrono::DateTime<chrono::Utc>,
                per_agent: u32,
            ) -> StoreResult<u64> {
                let old = sqlx::query("DELETE FROM ingest_events WHERE seen_at < $1")
                    .bind(before.timestamp_millis())
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                let over = sqlx::query(
                    "DELETE FROM ingest_events WHERE id IN (SELECT id FROM (SELECT id, \
                     ROW_NUMBER() OVER (PARTITION BY connector, agent_id \
                     ORDER BY seen_at DESC, id DESC) AS n FROM ingest_events) ranked \
                     WHERE n > $1)",
                )
                .bind(i64::from(per_agent))
                .execute(&self.pool)
                .await
                .map_err(db_err)?
                .rows_affected();
                Ok(old + over)
            }
        }
    };
}

pub(crate) use impl_ingest;

//! Contact events, written once for both backends: stored once per platform event (or per
//! contact and kind when the platform sends no event id), read back per contact in the
//! order they happened, and pruned after their retention. Expanded by [`impl_contacts!`]
//! next to [`super::impl_store!`], whose `Store` methods call these.

/// Expands, for `$store` holding `pool: sqlx::Pool<$db>`, the bodies of the `Store` methods
/// on contact events.
macro_rules! impl_contacts {
    ($store:ty, $db:ty) => {
        impl $store {
        async fn contacts_push(
            &self,
            connector: &str,
            events: &[$crate::model::contact_center::ContactEvent],
        ) -> StoreResult<Vec<bool>> {
            if events.is_empty() {
                return Ok(Vec::new());
            }
            let now = chrono::Utc::now().timestamp_millis();
            let mut fresh = Vec::with_capacity(events.len());
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            for e in events {
                let key = contact_event_key(e);
                let n = sqlx::query(
                    "INSERT INTO contact_events (connector, dedupe_key, contact_id, kind, \
                     agent_id, at, received_at, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (connector, dedupe_key) DO NOTHING",
                )
                .bind(connector)
                .bind(&key)
                .bind(&e.contact_id)
                .bind(e.kind.as_str())
                .bind(&e.agent_id)
                .bind(e.at.timestamp_millis())
                .bind(now)
                .bind(Json(e))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
                fresh.push(n > 0);
            }
            tx.commit().await.map_err(db_err)?;
            Ok(fresh)
        }

        async fn contacts_list(
            &self,
            agent_id: &str,
            connector: Option<&str>,
            contacts: u32,
        ) -> StoreResult<Vec<StoredContactEvent>> {
            // The contacts the agent had a part in, newest first; then all of their events
            // (an `ended` or a recording often names no agent).
            let head = "SELECT connector, contact_id, MAX(at) AS last FROM contact_events \
                        WHERE agent_id = $1";
            let tail = " GROUP BY connector, contact_id ORDER BY last DESC LIMIT $2";
            let ids = match connector {
                Some(c) => sqlx::query(&format!("{head} AND connector = $3{tail}"))
                    .bind(agent_id)
                    .bind(i64::from(contacts))
                    .bind(c)
                    .fetch_all(&self.pool)
                    .await,
                None => sqlx::query(&format!("{head}{tail}"))
                    .bind(agent_id)
                    .bind(i64::from(contacts))
                    .fetch_all(&self.pool)
                    .await,
            }
            .map_err(db_err)?;
            let mut out = Vec::new();
            for row in ids {
                let conn: String = row.try_get("connector").map_err(db_err)?;
                let contact: String = row.try_get("contact_id").map_err(db_err)?;
                let rows = sqlx::query(
                    "SELECT payload, received_at FROM contact_events \
                     WHERE connector = $1 AND contact_id = $2 ORDER BY at, id",
                )
                .bind(&conn)
                .bind(&contact)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
                for r in rows {
                    let event: Json<$crate::model::contact_center::ContactEvent> =
                        r.try_get("payload").map_err(db_err)?;
                    let received: i64 = r.try_get("received_at").map_err(db_err)?;
                    out.push(StoredContactEvent {
                        connector: conn.clone(),
                        event: event.0,
                        received_at: chrono::DateTime::from_timestamp_millis(received)
                            .unwrap_or_default(),
                    });
                }
            }
            Ok(out)
        }

        async fn contacts_prune(
            &self,
            before: chrono::DateTime<chrono::Utc>,
        ) -> StoreResult<u64> {
            Ok(sqlx::query("DELETE FROM contact_events WHERE received_at < $1")
                .bind(before.timestamp_millis())
                .execute(&self.pool)
                .await
                .map_err(db_err)?
                .rows_affected())
        }
        }
    };
}

pub(crate) use impl_contacts;

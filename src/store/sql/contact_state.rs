//! Per-contact state of the integrations, written once for both backends: one JSON document
//! per integration, connector and contact, replaced as a whole, pruned by age. Expanded by
//! [`impl_contact_state!`] next to [`super::impl_store!`], whose `Store` methods call these.

/// Expands, for `$store` holding `pool: sqlx::Pool<$db>`, the bodies of the `Store` methods
/// on integration contact state.
macro_rules! impl_contact_state {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn contact_state_read(
                &self,
                integration: &str,
                connector: &str,
                contact_id: &str,
            ) -> StoreResult<Option<$crate::store::ContactStateRecord>> {
                let row = sqlx::query(
                    "SELECT state, updated_at FROM integration_contact_state \
                     WHERE integration = $1 AND connector = $2 AND contact_id = $3",
                )
                .bind(integration)
                .bind(connector)
                .bind(contact_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
                let Some(row) = row else { return Ok(None) };
                let state: Json<serde_json::Value> = row.try_get("state").map_err(db_err)?;
                let updated: i64 = row.try_get("updated_at").map_err(db_err)?;
                Ok(Some($crate::store::ContactStateRecord {
                    integration: integration.to_owned(),
                    connector: connector.to_owned(),
                    contact_id: contact_id.to_owned(),
                    state: state.0,
                    updated_at: chrono::DateTime::from_timestamp_millis(updated)
                        .unwrap_or_default(),
                }))
            }

            async fn contact_state_write(
                &self,
                r: &$crate::store::ContactStateRecord,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO integration_contact_state \
                     (integration, connector, contact_id, state, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (integration, connector, contact_id) DO UPDATE SET \
                     state = excluded.state, updated_at = excluded.updated_at",
                )
                .bind(&r.integration)
                .bind(&r.connector)
                .bind(&r.contact_id)
                .bind(Json(&r.state))
                .bind(r.updated_at.timestamp_millis())
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn contact_state_delete_before(
                &self,
                integration: &str,
                before: chrono::DateTime<chrono::Utc>,
            ) -> StoreResult<u64> {
                Ok(sqlx::query(
                    "DELETE FROM integration_contact_state \
                     WHERE integration = $1 AND updated_at < $2",
                )
                .bind(integration)
                .bind(before.timestamp_millis())
                .execute(&self.pool)
                .await
                .map_err(db_err)?
                .rows_affected())
            }
        }
    };
}

pub(crate) use impl_contact_state;

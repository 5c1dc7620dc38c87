//! Placeholder: the postgres implementation of [`super::Store`] is being written.

use super::StoreResult;
use crate::config::StoreConfig;

pub struct PgStore;

impl PgStore {
    pub async fn open(_cfg: &StoreConfig) -> StoreResult<Self> {
        Err(super::StoreError::Unavailable(
            "postgres store not implemented yet".into(),
        ))
    }
}

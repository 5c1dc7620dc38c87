//! Placeholder: the sqlite implementation of [`super::Store`] is being written.

use super::StoreResult;
use crate::config::StoreConfig;

pub struct SqliteStore;

impl SqliteStore {
    pub async fn open(_cfg: &StoreConfig) -> StoreResult<Self> {
        Err(super::StoreError::Unavailable(
            "sqlite store not implemented yet".into(),
        ))
    }
}

//! `[[connectors]]`

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigErrors};

/// One `[[connectors]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {}

pub fn validate(_cfg: &mut Config, _errs: &mut ConfigErrors) {}

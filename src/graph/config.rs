//! `[graph]`

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigErrors};

/// `[graph]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphConfig {}

pub fn validate(_cfg: &mut Config, _errs: &mut ConfigErrors) {}

//! `[sync]`, `[[teams_to_cc]]`, `[[cc_to_teams]]`

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigErrors};

/// `[sync]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {}

/// One `[[teams_to_cc]]` rule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsToCcRule {}

/// One `[[cc_to_teams]]` rule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CcToTeamsRule {}

pub fn validate(_cfg: &mut Config, _errs: &mut ConfigErrors) {}

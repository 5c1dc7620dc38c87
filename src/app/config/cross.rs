//! Checks that span the mapping tables and the connectors, run by `check-config` and at start,
//! so a configuration that validates also runs: contact-center statuses against the catalogs
//! the configuration itself defines, and Teams values against those Graph documents.

use crate::config::ConfigErrors;
use crate::engine::rules::check_catalog;

use super::Config;

/// Availability values Graph documents, in the older and the current versions of the presence
/// resource page (reference graph.md §1: the two lists differ; UNCERTAIN which is complete, so
/// both are accepted).
pub const TEAMS_AVAILABILITIES: &[&str] = &[
    "Available",
    "AvailableIdle",
    "Away",
    "BeRightBack",
    "Busy",
    "BusyIdle",
    "DoNotDisturb",
    "Focusing",
    "InACall",
    "InAMeeting",
    "Offline",
    "PresenceUnknown",
    "Presenting",
];

/// Activity values Graph documents (both versions of the page, as above).
pub const TEAMS_ACTIVITIES: &[&str] = &[
    "Available",
    "Away",
    "BeRightBack",
    "Busy",
    "DoNotDisturb",
    "InACall",
    "InAConferenceCall",
    "Inactive",
    "InAMeeting",
    "Offline",
    "OffWork",
    "OutOfOffice",
    "PresenceUnknown",
    "Presenting",
    "UrgentInterruptionsOnly",
];

pub(super) fn check(cfg: &Config, errs: &mut ConfigErrors) {
    for c in &cfg.connectors {
        if let Some(catalog) = c.static_catalog() {
            check_catalog(c.name(), &cfg.teams_to_cc, &cfg.cc_to_teams, &catalog, errs);
        }
    }
    let known = |list: &[&str], v: &str| list.iter().any(|k| k.eq_ignore_ascii_case(v));
    for (i, r) in cfg.teams_to_cc.iter().enumerate() {
        for a in &r.when.availability {
            if !known(TEAMS_AVAILABILITIES, a) {
                errs.push(
                    format!("teams_to_cc[{i}].when.availability"),
                    format!(
                        "\"{a}\" is not a Teams availability; Graph documents {}",
                        TEAMS_AVAILABILITIES.join(", ")
                    ),
                );
            }
        }
        for a in &r.when.activity {
            if !known(TEAMS_ACTIVITIES, a) {
                errs.push(
                    format!("teams_to_cc[{i}].when.activity"),
                    format!(
                        "\"{a}\" is not a Teams activity; Graph documents {}",
                        TEAMS_ACTIVITIES.join(", ")
                    ),
                );
            }
        }
    }
    for (i, r) in cfg.cc_to_teams.iter().enumerate() {
        for v in &r.only_if_teams {
            if !known(TEAMS_AVAILABILITIES, v) && !known(TEAMS_ACTIVITIES, v) {
                errs.push(
                    format!("cc_to_teams[{i}].only_if_teams"),
                    format!("\"{v}\" is neither a Teams availability nor a Teams activity"),
                );
            }
        }
    }
}

//! The mapping tables as the engine uses them: first-match evaluation, case-insensitive, and
//! the check of contact-center statuses against a connector's catalog.

use crate::config::ConfigErrors;
use crate::engine::config::{CcToTeamsRule, TeamsSet, TeamsToCcRule};
use crate::model::contact_center::{Activity, CatalogStatus, StatusKind};
use crate::model::{CcStatus, TeamsPresence};

/// A status given by name or id in the config matches a status by either, ignoring case.
pub fn cc_is(status: &CcStatus, name_or_id: &str) -> bool {
    status.name.eq_ignore_ascii_case(name_or_id) || status.id.eq_ignore_ascii_case(name_or_id)
}

fn any_ci(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v.eq_ignore_ascii_case(value))
}

/// Both tables plus what the engine needs to resolve statuses.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub teams_to_cc: Vec<TeamsToCcRule>,
    pub cc_to_teams: Vec<CcToTeamsRule>,
    /// Names or ids meaning "logged out".
    pub offline: Vec<String>,
    /// A catalog to resolve rule targets to full statuses (id and name), when known.
    pub catalog: Vec<CatalogStatus>,
}

impl Rules {
    /// First Teams → contact-center rule matching this presence and guard status.
    /// `ignore_guards` is `on_cc_login = teams_always_wins`.
    pub fn match_teams(
        &self,
        teams: &TeamsPresence,
        cc: Option<&CcStatus>,
        ignore_guards: bool,
    ) -> Option<u16> {
        self.teams_to_cc
            .iter()
            .position(|r| {
                (r.when.availability.is_empty()
                    || any_ci(&r.when.availability, &teams.availability))
                    && (r.when.activity.is_empty() || any_ci(&r.when.activity, &teams.activity))
                    && (ignore_guards
                        || r.only_if_cc.is_empty()
                        || cc.is_some_and(|c| r.only_if_cc.iter().any(|g| cc_is(c, g))))
            })
            .map(|i| i as u16)
    }

    /// First contact-center → Teams rule matching this status, contact activity and guard
    /// presence. A rule's empty lists match anything; a rule naming activities does not match
    /// while the activity is unknown.
    pub fn match_cc(
        &self,
        cc: &CcStatus,
        activity: Option<&Activity>,
        teams: Option<&TeamsPresence>,
    ) -> Option<u16> {
        self.cc_to_teams
            .iter()
            .position(|r| {
                (r.when.status.is_empty() || r.when.status.iter().any(|s| cc_is(cc, s)))
                    && (r.when.cc_activity.is_empty()
                        || activity
                            .is_some_and(|a| any_ci(&r.when.cc_activity, a.activity.as_str())))
                    && (r.when.channel.is_empty()
                        || activity
                            .and_then(|a| a.channel)
                            .is_some_and(|c| any_ci(&r.when.channel, c.as_str())))
                    && (r.only_if_teams.is_empty()
                        || teams.is_some_and(|t| {
                            any_ci(&r.only_if_teams, &t.availability)
                                || any_ci(&r.only_if_teams, &t.activity)
                        }))
            })
            .map(|i| i as u16)
    }

    pub fn is_offline(&self, cc: &CcStatus) -> bool {
        self.offline.iter().any(|o| cc_is(cc, o))
            || self
                .catalog
                .iter()
                .any(|c| c.kind == StatusKind::Offline && c.id == cc.id)
    }

    /// The status a Teams → contact-center rule sets, resolved through the catalog.
    pub fn cc_target(&self, rule: u16) -> CcStatus {
        let set = &self.teams_to_cc[rule as usize].set;
        resolve(&self.catalog, set)
    }

    /// Takes a connector's catalog: resolves rule targets and adds its offline statuses.
    pub fn set_catalog(&mut self, catalog: Vec<CatalogStatus>) {
        self.catalog = catalog;
    }

    /// The pair a contact-center → Teams rule sets, or `None` for `"clear"`.
    pub fn teams_target(&self, rule: u16) -> Option<(&str, &str)> {
        match &self.cc_to_teams[rule as usize].set {
            TeamsSet::Pair {
                availability,
                activity,
            } => Some((availability, activity)),
            TeamsSet::Keyword(_) => None,
        }
    }
}

/// Finds a status by name or id in a catalog; unknown names stay as given (id = name).
pub fn resolve(catalog: &[CatalogStatus], name_or_id: &str) -> CcStatus {
    catalog
        .iter()
        .find(|c| c.id.eq_ignore_ascii_case(name_or_id) || c.name.eq_ignore_ascii_case(name_or_id))
        .map(CatalogStatus::as_status)
        .unwrap_or_else(|| CcStatus {
            id: name_or_id.to_owned(),
            name: name_or_id.to_owned(),
        })
}

/// Checks every contact-center status the rules name against a connector's catalog. Statuses
/// the bridge sets must exist and be settable; statuses it matches on must exist.
pub fn check_catalog(
    connector: &str,
    t2c: &[TeamsToCcRule],
    c2t: &[CcToTeamsRule],
    catalog: &[CatalogStatus],
    errs: &mut ConfigErrors,
) {
    let find = |s: &str| {
        catalog
            .iter()
            .find(|c| c.id.eq_ignore_ascii_case(s) || c.name.eq_ignore_ascii_case(s))
    };
    let known = |errs: &mut ConfigErrors, path: String, s: &str| {
        if find(s).is_none() {
            errs.push(
                path,
                format!("\"{s}\" is not in the status catalog of connector \"{connector}\""),
            );
        }
    };
    for (i, r) in t2c.iter().enumerate() {
        match find(&r.set) {
            None => known(errs, format!("teams_to_cc[{i}].set"), &r.set),
            Some(c) if !c.settable => errs.push(
                format!("teams_to_cc[{i}].set"),
                format!(
                    "\"{}\" cannot be set through the API of connector \"{connector}\"",
                    r.set
                ),
            ),
            Some(_) => {}
        }
        for g in &r.only_if_cc {
            known(errs, format!("teams_to_cc[{i}].only_if_cc"), g);
        }
    }
    for (i, r) in c2t.iter().enumerate() {
        for s in &r.when.status {
            known(errs, format!("cc_to_teams[{i}].when.status"), s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(id: &str, name: &str, settable: bool) -> CatalogStatus {
        CatalogStatus {
            id: id.into(),
            name: name.into(),
            kind: StatusKind::NotRoutable,
            settable,
        }
    }

    #[test]
    fn catalog_check_reports_rule_indexes() {
        let t2c: Vec<TeamsToCcRule> = toml::from_str::<toml::Value>(
            r#"r = [{ when = { activity = ["InACall"] }, set = "Busy (Teams)", only_if_cc = ["avail"] },
                    { when = { activity = ["Presenting"] }, set = "On Contact" }]"#,
        )
        .unwrap()["r"]
            .clone()
            .try_into()
            .unwrap();
        let catalog = vec![
            cat("avail", "Available", true),
            cat("oc", "On Contact", false),
        ];
        let mut errs = ConfigErrors::default();
        check_catalog("cc", &t2c, &[], &catalog, &mut errs);
        let paths: Vec<_> = errs.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, vec!["teams_to_cc[0].set", "teams_to_cc[1].set"]);
        assert_eq!(resolve(&catalog, "available").id, "avail");
    }
}

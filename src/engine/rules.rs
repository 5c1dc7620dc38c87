//! The mapping tables as the engine uses them: first-match evaluation, case-insensitive, and
//! the check of contact-center statuses against a connector's catalog.

use std::collections::HashMap;

use crate::config::ConfigErrors;
use crate::engine::config::{CcToTeamsRule, TeamsSet, TeamsToCcRule, rule_applies};
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
    /// A catalog to resolve rule targets to full statuses (id and name), when known, for
    /// users whose connector has no catalog of its own in `catalogs`.
    pub catalog: Vec<CatalogStatus>,
    /// Each connector's own catalog, by connector name.
    pub catalogs: HashMap<String, Vec<CatalogStatus>>,
}

impl Rules {
    /// First Teams → contact-center rule for a user of `connector` matching this presence
    /// and guard status. `ignore_guards` is `on_cc_login = teams_always_wins`.
    pub fn match_teams(
        &self,
        teams: &TeamsPresence,
        cc: Option<&CcStatus>,
        ignore_guards: bool,
        connector: Option<&str>,
    ) -> Option<u16> {
        self.teams_to_cc
            .iter()
            .position(|r| {
                rule_applies(r.connector.as_deref(), connector)
                    && (r.when.availability.is_empty()
                        || any_ci(&r.when.availability, &teams.availability))
                    && (r.when.activity.is_empty() || any_ci(&r.when.activity, &teams.activity))
                    && (ignore_guards
                        || r.only_if_cc.is_empty()
                        || cc.is_some_and(|c| r.only_if_cc.iter().any(|g| cc_is(c, g))))
            })
            .map(|i| i as u16)
    }

    /// First contact-center → Teams rule for a user of `connector` matching this status,
    /// contact activity and guard presence. A rule's empty lists match anything; a rule naming
    /// activities does not match while the activity is unknown.
    pub fn match_cc(
        &self,
        cc: &CcStatus,
        activity: Option<&Activity>,
        teams: Option<&TeamsPresence>,
        connector: Option<&str>,
    ) -> Option<u16> {
        self.cc_to_teams
            .iter()
            .position(|r| {
                rule_applies(r.connector.as_deref(), connector)
                    && (r.when.status.is_empty() || r.when.status.iter().any(|s| cc_is(cc, s)))
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

    /// Whether `cc` means "logged out" for a user of `connector`.
    pub fn is_offline(&self, cc: &CcStatus, connector: Option<&str>) -> bool {
        self.offline.iter().any(|o| cc_is(cc, o))
            || self
                .catalog_of(connector)
                .iter()
                .any(|c| c.kind == StatusKind::Offline && c.id == cc.id)
    }

    /// The status a Teams → contact-center rule sets for a user of `connector`, resolved
    /// through that connector's catalog.
    pub fn cc_target(&self, rule: u16, connector: Option<&str>) -> CcStatus {
        let set = &self.teams_to_cc[rule as usize].set;
        resolve(self.catalog_of(connector), set)
    }

    /// The catalog statuses of `connector` resolve in: its own, else the shared one.
    pub fn catalog_of(&self, connector: Option<&str>) -> &[CatalogStatus] {
        connector
            .and_then(|c| self.catalogs.get(c))
            .unwrap_or(&self.catalog)
    }

    /// Takes the catalog used for users whose connector has no catalog of its own.
    pub fn set_catalog(&mut self, catalog: Vec<CatalogStatus>) {
        self.catalog = catalog;
    }

    /// Takes one connector's catalog: resolves the targets of its users' rules and adds its
    /// offline statuses. Other connectors' catalogs are kept.
    pub fn set_connector_catalog(&mut self, connector: &str, catalog: Vec<CatalogStatus>) {
        self.catalogs.insert(connector.to_owned(), catalog);
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

/// Checks every contact-center status the rules that apply to `connector` name (those naming
/// it and those naming no connector) against its catalog. Statuses the bridge sets must exist
/// and be settable; statuses it matches on must exist. Errors name the rule's index.
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
    let applies = |rule: Option<&str>| rule_applies(rule, Some(connector));
    for (i, r) in t2c.iter().enumerate() {
        if !applies(r.connector.as_deref()) {
            continue;
        }
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
        if !applies(r.connector.as_deref()) {
            continue;
        }
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

    fn tables(text: &str) -> (Vec<TeamsToCcRule>, Vec<CcToTeamsRule>) {
        let cfg: crate::engine::config::EngineConfig = toml::from_str(text).unwrap();
        (cfg.teams_to_cc, cfg.cc_to_teams)
    }

    const TWO: &str = r#"
[[teams_to_cc]]
connector = "gc"
when = { activity = ["InACall"] }
set = "Busy"

[[teams_to_cc]]
connector = "sim"
when = { activity = ["InACall"] }
set = "Busy (Teams)"

[[teams_to_cc]]
when = { activity = ["Presenting"] }
set = "Meeting"

[[cc_to_teams]]
connector = "sim"
when = { status = ["On Contact"] }
set = { availability = "Busy", activity = "InACall" }
"#;

    #[test]
    fn each_connector_checks_only_the_rules_that_apply_to_it() {
        let (t2c, c2t) = tables(TWO);
        let gc = vec![cat("g-busy", "Busy", true), cat("g-meet", "Meeting", true)];
        let sim = vec![
            cat("busy_teams", "Busy (Teams)", true),
            cat("on_contact", "On Contact", false),
        ];
        let mut errs = ConfigErrors::default();
        check_catalog("gc", &t2c, &c2t, &gc, &mut errs);
        assert!(errs.is_empty(), "{errs}");
        check_catalog("sim", &t2c, &c2t, &sim, &mut errs);
        let paths: Vec<_> = errs.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, vec!["teams_to_cc[2].set"], "{errs}");
        assert!(errs.iter().next().unwrap().message.contains("\"sim\""));
    }

    #[test]
    fn rules_naming_a_connector_match_only_its_users_and_resolve_in_its_catalog() {
        let (t2c, c2t) = tables(TWO);
        let mut rules = Rules {
            teams_to_cc: t2c,
            cc_to_teams: c2t,
            ..Rules::default()
        };
        rules.set_connector_catalog("gc", vec![cat("g-busy", "Busy", true)]);
        rules.set_connector_catalog("sim", vec![cat("busy_teams", "Busy (Teams)", true)]);
        let call = TeamsPresence::new("Busy", "InACall");
        assert_eq!(rules.match_teams(&call, None, false, Some("gc")), Some(0));
        assert_eq!(rules.match_teams(&call, None, false, Some("sim")), Some(1));
        assert_eq!(rules.match_teams(&call, None, false, None), None);
        assert_eq!(rules.cc_target(0, Some("gc")).id, "g-busy");
        assert_eq!(rules.cc_target(1, Some("sim")).id, "busy_teams");
        let on_contact = CcStatus {
            id: "on_contact".into(),
            name: "On Contact".into(),
        };
        assert_eq!(
            rules.match_cc(&on_contact, None, None, Some("sim")),
            Some(0)
        );
        assert_eq!(rules.match_cc(&on_contact, None, None, Some("gc")), None);
    }

    #[test]
    fn a_second_catalog_does_not_replace_the_first() {
        let mut rules = Rules::default();
        let mut off = cat("x-off", "Logged off", false);
        off.kind = StatusKind::Offline;
        rules.set_connector_catalog("gc", vec![off]);
        rules.set_connector_catalog("sim", vec![cat("x-off", "Lunch", true)]);
        let status = CcStatus {
            id: "x-off".into(),
            name: "Logged off".into(),
        };
        assert!(rules.is_offline(&status, Some("gc")));
        assert!(!rules.is_offline(&status, Some("sim")));
        assert_eq!(rules.catalog_of(Some("gc"))[0].name, "Logged off");
    }

    #[test]
    fn unknown_connectors_are_reported_with_the_rule_index() {
        let (t2c, c2t) = tables(TWO);
        let mut errs = ConfigErrors::default();
        crate::engine::config::check_rule_connectors(&t2c, &c2t, &["gc"], &mut errs);
        let paths: Vec<_> = errs.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            vec!["teams_to_cc[1].connector", "cc_to_teams[0].connector"]
        );
    }
}

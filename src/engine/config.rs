//! `[sync]`, `[[teams_to_cc]]`, `[[cc_to_teams]]`: how the bridge syncs and the two mapping
//! tables (first match wins). Rules are checked here against what Graph allows; statuses are
//! checked against a connector's catalog once it is known ([`crate::engine::rules`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::ConfigErrors;
use crate::model::contact_center::{Channel, ContactActivity};

/// What Graph accepts for `setPresence` and `setUserPreferredPresence` (graph.md §2.1, §2.3);
/// one list, owned by the Graph client that enforces it.
use crate::model::presence_pairs::{PREFERRED_PAIRS, SET_PRESENCE_PAIRS as SESSION_PAIRS};

/// A sync direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    TeamsToCc,
    CcToTeams,
}

/// What happens when an agent logs in to the contact center while Teams maps to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnCcLogin {
    /// The status the agent logs in with stays; Teams drives the contact center again from
    /// the next Teams change.
    #[default]
    KeepCc,
    /// At login the Teams-mapped status is applied at once (no hold-down).
    AdoptTeams,
    /// Like `adopt_teams`, and `only_if_cc` guards are ignored: whenever a Teams rule matches,
    /// the contact-center status follows, even over a status the agent picked.
    TeamsAlwaysWins,
}

/// How Teams users are matched to contact-center agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchBy {
    /// Teams `mail`, else `userPrincipalName`, against the agent's email (case-insensitive).
    #[default]
    Email,
    /// Teams `userPrincipalName` against the agent's email or username.
    Upn,
    /// Teams display name against the agent's display name.
    DisplayName,
    /// An explicit CSV file `teams_id_or_upn,cc_agent_id` (`sync.match_csv_file`).
    Csv,
}

/// `sync.mode`: whether decisions are carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Decisions are written to Teams and the contact center.
    #[default]
    Live,
    /// Everything runs (reads, matching, decisions, audit, metrics) but nothing is written to
    /// either side: each would-be write is logged, counted and recorded in the audit trail.
    Shadow,
}

/// `[sync]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// `live` (default) writes decisions; `shadow` makes and records them without writing.
    pub mode: SyncMode,
    /// A pilot group: when not empty, only these people are synced. Entries are Teams object
    /// ids, user principal names or e-mail addresses, agent ids, or `connector:agent`. The
    /// engine makes no decisions for anyone else (their statuses are still read and shown).
    pub only: Vec<String>,
    /// Which directions are enabled: `teams_to_cc`, `cc_to_teams`, or both.
    pub directions: Vec<Direction>,
    /// How long a status must persist before it is propagated, in seconds. Rules may override.
    pub hold_down_secs: u64,
    /// Interval between full reconciliations of both sides, in seconds (at least 60).
    pub reconcile_interval_secs: u64,
    /// Precedence when an agent logs in to the contact center.
    pub on_cc_login: OnCcLogin,
    /// Contact-center statuses (names or ids) that mean "logged out", in addition to the
    /// statuses a connector's catalog marks as offline.
    pub cc_offline_statuses: Vec<String>,
    /// Oscillation breaker: more than this many writes for one user within
    /// `flap_window_secs` suspends the user's sync.
    pub flap_max_writes: u32,
    /// Oscillation breaker window, in seconds.
    pub flap_window_secs: u64,
    /// How long a flapping user stays suspended, in seconds.
    pub flap_cooldown_secs: u64,
    /// Re-post interval of the bridge's Teams presence session, in seconds. Must be below 300:
    /// Graph fades `Available` after 5 minutes.
    pub keepalive_interval_secs: u64,
    /// `expirationDuration` sent with `setPresence`, in seconds (300 to 14400, PT5M–PT4H).
    /// Some tenants reportedly ignore it and expire after 5 minutes (UNCERTAIN), which the
    /// keep-alive covers.
    pub session_expiration_secs: u64,
    /// Clear the bridge's Teams sessions when the daemon stops.
    pub clear_sessions_on_shutdown: bool,
    /// How Teams users are matched to agents.
    pub match_by: MatchBy,
    /// CSV file of `teams_id_or_upn,cc_agent_id` lines, required when `match_by = "csv"`.
    pub match_csv_file: Option<PathBuf>,
    /// Engine worker tasks; users are sharded over them by user id.
    pub workers: usize,
    /// Longest wait between retries of a failed write, in seconds.
    pub write_retry_max_secs: u64,
    /// Whose Teams presence is read (presence subscriptions and polling): `matched` (users
    /// matched to an agent, the default) or `all` (every Teams-licensed user). `include` adds
    /// people and `exclude` removes people either way. The directory lists everyone licensed
    /// regardless.
    pub scope: ScopeMode,
    /// People whose presence is read although they are not matched to an agent (people shown
    /// to agents: supervisors, experts, back office).
    pub include: ScopeList,
    /// People whose presence is never read, even when matched.
    pub exclude: ScopeList,
}

/// `sync.scope`: the base population whose Teams presence is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeMode {
    /// Teams users matched to a contact-center agent.
    #[default]
    Matched,
    /// Every Teams-licensed user of the directory.
    All,
}

/// `sync.include` / `sync.exclude`: people by Entra group and by UPN.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScopeList {
    /// Entra (Microsoft Entra ID) group object ids; members are read transitively
    /// (`GET /groups/{id}/transitiveMembers`, application permission GroupMember.Read.All).
    pub groups: Vec<String>,
    /// User principal names (case-insensitive).
    pub upns: Vec<String>,
}

impl ScopeList {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.upns.is_empty()
    }
}

/// Whose Teams presence is read: `sync.scope`, `sync.include` and `sync.exclude` together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresenceScope {
    pub mode: ScopeMode,
    pub include: ScopeList,
    pub exclude: ScopeList,
}

impl PresenceScope {
    /// Every Teams-licensed user, nobody added or removed.
    pub fn all() -> PresenceScope {
        PresenceScope {
            mode: ScopeMode::All,
            ..PresenceScope::default()
        }
    }

    /// The groups whose members must be known (included and excluded), deduplicated.
    pub fn groups(&self) -> Vec<String> {
        let mut g: Vec<String> = self
            .include
            .groups
            .iter()
            .chain(&self.exclude.groups)
            .cloned()
            .collect();
        g.sort();
        g.dedup();
        g
    }
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            mode: SyncMode::Live,
            only: Vec::new(),
            directions: vec![Direction::TeamsToCc, Direction::CcToTeams],
            hold_down_secs: 15,
            reconcile_interval_secs: 3600,
            on_cc_login: OnCcLogin::KeepCc,
            cc_offline_statuses: vec!["Offline".into()],
            flap_max_writes: 6,
            flap_window_secs: 120,
            flap_cooldown_secs: 600,
            keepalive_interval_secs: 240,
            session_expiration_secs: 3600,
            clear_sessions_on_shutdown: false,
            match_by: MatchBy::Email,
            match_csv_file: None,
            workers: 4,
            write_retry_max_secs: 60,
            scope: ScopeMode::Matched,
            include: ScopeList::default(),
            exclude: ScopeList::default(),
        }
    }
}

impl SyncConfig {
    pub fn enabled(&self, d: Direction) -> bool {
        self.directions.contains(&d)
    }

    /// Whether writes are only logged, counted and audited (`sync.mode = "shadow"`).
    pub fn shadow(&self) -> bool {
        self.mode == SyncMode::Shadow
    }

    /// `scope`, `include` and `exclude` as the Graph side takes them.
    pub fn presence_scope(&self) -> PresenceScope {
        PresenceScope {
            mode: self.scope,
            include: self.include.clone(),
            exclude: self.exclude.clone(),
        }
    }
}

/// `when` of a Teams → contact-center rule; every given list must match (case-insensitive).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TeamsWhen {
    /// Teams availability values, e.g. `["Busy", "DoNotDisturb"]`.
    pub availability: Vec<String>,
    /// Teams activity values, e.g. `["InACall", "Presenting"]`.
    pub activity: Vec<String>,
}

/// One `[[teams_to_cc]]` rule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsToCcRule {
    /// Which Teams presence this rule applies to.
    pub when: TeamsWhen,
    /// Apply only while the contact-center status is one of these (names or ids).
    #[serde(default)]
    pub only_if_cc: Vec<String>,
    /// Contact-center status to set (a name or id from the connector's catalog).
    pub set: String,
    /// When no rule matches any more, put back the status the agent had before.
    #[serde(default)]
    pub restore: bool,
    /// Overrides `sync.hold_down_secs` for this rule.
    #[serde(default)]
    pub hold_down_secs: Option<u64>,
    /// The connector (a `[[connectors]]` name) this rule applies to; without one it applies
    /// to the users of every connector. `set` and `only_if_cc` name statuses of its catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
}

/// `when` of a contact-center → Teams rule; every given list must match.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CcWhen {
    /// Contact-center status names or ids (case-insensitive).
    pub status: Vec<String>,
    /// What the agent is doing: `offered`, `on_contact`, `after_contact_work`, `idle`,
    /// `logged_out` (case-insensitive).
    pub cc_activity: Vec<String>,
    /// The channel of the contact the activity concerns: `voice`, `chat`, `email`, `task`.
    /// An activity whose channel the platform did not report matches no channel list.
    pub channel: Vec<String>,
}

/// What a contact-center → Teams rule sets: a pair, or `"clear"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TeamsSet {
    Keyword(String),
    Pair {
        availability: String,
        activity: String,
    },
}

/// How the Teams presence is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// `setPresence`: an app session, kept alive; loses to the user's own DND/Busy.
    #[default]
    Session,
    /// `setUserPreferredPresence`: overrides the user's own choice.
    Preferred,
}

/// One `[[cc_to_teams]]` rule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CcToTeamsRule {
    /// Which contact-center statuses this rule applies to.
    pub when: CcWhen,
    /// Apply only while the Teams availability or activity is one of these.
    #[serde(default)]
    pub only_if_teams: Vec<String>,
    /// `{ availability = "Busy", activity = "InACall" }`, or `"clear"` to remove the
    /// bridge's presence.
    pub set: TeamsSet,
    /// `session` (setPresence, default) or `preferred` (setUserPreferredPresence).
    #[serde(default)]
    pub mode: WriteMode,
    /// Overrides `sync.hold_down_secs` for this rule.
    #[serde(default)]
    pub hold_down_secs: Option<u64>,
    /// The connector (a `[[connectors]]` name) this rule applies to; without one it applies
    /// to the users of every connector. `when.status` names statuses of its catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
}

/// Whether a rule naming `rule` (or no connector) applies to a user of `user` (or of an
/// unknown connector: then only rules naming none apply).
pub fn rule_applies(rule: Option<&str>, user: Option<&str>) -> bool {
    match rule {
        None => true,
        Some(r) => user == Some(r),
    }
}

/// Reports rules naming a connector that is not in `known`, with their index.
pub fn check_rule_connectors(
    teams_to_cc: &[TeamsToCcRule],
    cc_to_teams: &[CcToTeamsRule],
    known: &[&str],
    errs: &mut ConfigErrors,
) {
    let named = teams_to_cc
        .iter()
        .map(|r| ("teams_to_cc", r.connector.as_deref()))
        .enumerate()
        .chain(
            cc_to_teams
                .iter()
                .map(|r| ("cc_to_teams", r.connector.as_deref()))
                .enumerate(),
        );
    for (i, (table, c)) in named {
        if let Some(c) = c.filter(|c| !known.contains(c)) {
            let known = if known.is_empty() {
                "none is configured".to_owned()
            } else {
                format!("configured: {}", known.join(", "))
            };
            errs.push(
                format!("{table}[{i}].connector"),
                format!("no connector is named \"{c}\" ({known})"),
            );
        }
    }
}

fn is_pair(pairs: &[(&str, &str)], a: &str, b: &str) -> bool {
    pairs
        .iter()
        .any(|(x, y)| x.eq_ignore_ascii_case(a) && y.eq_ignore_ascii_case(b))
}

fn list_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(a, b)| format!("{a}/{b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the engine is configured with: `[sync]` and both mapping tables (top-level arrays in
/// the file, so they are assembled here rather than nested in `[sync]`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EngineConfig {
    #[serde(default)]
    pub sync: SyncConfig,
    #[serde(default)]
    pub teams_to_cc: Vec<TeamsToCcRule>,
    #[serde(default)]
    pub cc_to_teams: Vec<CcToTeamsRule>,
}

impl EngineConfig {
    pub fn validate(&self, errs: &mut ConfigErrors) {
        self.sync.validate("sync", errs);
        validate_rules(&self.teams_to_cc, &self.cc_to_teams, errs);
    }
}

impl SyncConfig {
    pub fn validate(&self, path: &str, errs: &mut ConfigErrors) {
        let s = self;
        if s.directions.is_empty() {
            errs.push(
                ConfigErrors::key(path, "directions"),
                "name at least one of teams_to_cc, cc_to_teams",
            );
        }
        errs.at_least(
            path,
            "reconcile_interval_secs",
            s.reconcile_interval_secs,
            60,
        );
        if s.hold_down_secs > 3600 {
            errs.push(
                ConfigErrors::key(path, "hold_down_secs"),
                "must be at most 3600",
            );
        }
        errs.at_least(path, "flap_max_writes", s.flap_max_writes, 2);
        if s.flap_max_writes > 64 {
            errs.push(
                ConfigErrors::key(path, "flap_max_writes"),
                "must be at most 64",
            );
        }
        errs.at_least(path, "flap_window_secs", s.flap_window_secs, 1);
        errs.at_least(path, "flap_cooldown_secs", s.flap_cooldown_secs, 1);
        if !(300..=14_400).contains(&s.session_expiration_secs) {
            errs.push(
                ConfigErrors::key(path, "session_expiration_secs"),
                "must be between 300 and 14400 (Graph allows PT5M to PT4H)",
            );
        }
        if s.keepalive_interval_secs < 10 || s.keepalive_interval_secs >= 300 {
            errs.push(
                ConfigErrors::key(path, "keepalive_interval_secs"),
                "must be between 10 and 299 (Graph fades Available after 5 minutes)",
            );
        } else if s.keepalive_interval_secs >= s.session_expiration_secs {
            errs.push(
                ConfigErrors::key(path, "keepalive_interval_secs"),
                "must be shorter than sync.session_expiration_secs",
            );
        }
        errs.between(path, "workers", s.workers, 1, 64);
        for (key, list) in [("include", &s.include), ("exclude", &s.exclude)] {
            for (i, g) in list.groups.iter().enumerate() {
                if uuid::Uuid::parse_str(g.trim()).is_err() {
                    errs.push(
                        format!("{path}.{key}.groups[{i}]"),
                        format!("\"{g}\" is not an Entra group object id (a GUID)"),
                    );
                }
            }
            for (i, u) in list.upns.iter().enumerate() {
                if !u.contains('@') {
                    errs.push(
                        format!("{path}.{key}.upns[{i}]"),
                        format!("\"{u}\" is not a user principal name (name@domain)"),
                    );
                }
            }
        }
        errs.at_least(path, "write_retry_max_secs", s.write_retry_max_secs, 1);
        for (i, entry) in s.only.iter().enumerate() {
            let e = entry.trim();
            if e.is_empty() || e.starts_with(':') || e.ends_with(':') {
                errs.push(
                    format!("{path}.only[{i}]"),
                    format!(
                        "\"{entry}\" names nobody; give a Teams object id, a user principal name \
                         or e-mail address, an agent id, or connector:agent"
                    ),
                );
            }
        }
        match (s.match_by, &s.match_csv_file) {
            (MatchBy::Csv, None) => errs.push(
                ConfigErrors::key(path, "match_csv_file"),
                "is required when sync.match_by = \"csv\"",
            ),
            (MatchBy::Csv, Some(p)) if !p.is_file() => errs.push(
                ConfigErrors::key(path, "match_csv_file"),
                format!("{} is not a readable file", p.display()),
            ),
            (m, Some(_)) if m != MatchBy::Csv => errs.push(
                ConfigErrors::key(path, "match_csv_file"),
                "is only used with sync.match_by = \"csv\"",
            ),
            _ => {}
        }
    }
}

/// Checks both mapping tables' shape; statuses are checked against a connector's catalog
/// once it is known ([`crate::engine::rules`]).
pub fn validate_rules(
    teams_to_cc: &[TeamsToCcRule],
    cc_to_teams: &[CcToTeamsRule],
    errs: &mut ConfigErrors,
) {
    for (i, r) in teams_to_cc.iter().enumerate() {
        let p = format!("teams_to_cc[{i}]");
        if r.when.availability.is_empty() && r.when.activity.is_empty() {
            errs.push(
                format!("{p}.when"),
                "give availability and/or activity to match",
            );
        }
        if r.set.trim().is_empty() {
            errs.push(format!("{p}.set"), "is empty");
        }
        if r.hold_down_secs.is_some_and(|h| h > 3600) {
            errs.push(format!("{p}.hold_down_secs"), "must be at most 3600");
        }
    }
    for (i, r) in cc_to_teams.iter().enumerate() {
        let p = format!("cc_to_teams[{i}]");
        if r.when.status.is_empty() && r.when.cc_activity.is_empty() {
            errs.push(
                format!("{p}.when"),
                "name at least one status and/or cc_activity",
            );
        }
        if !r.when.channel.is_empty() && r.when.cc_activity.is_empty() {
            errs.push(
                format!("{p}.when.channel"),
                "matches the channel of a contact activity: give cc_activity too",
            );
        }
        for a in &r.when.cc_activity {
            if !ContactActivity::ALL
                .iter()
                .any(|k| k.as_str().eq_ignore_ascii_case(a))
            {
                errs.push(
                    format!("{p}.when.cc_activity"),
                    format!(
                        "\"{a}\" is not a contact activity; use one of {}",
                        ContactActivity::ALL.map(ContactActivity::as_str).join(", ")
                    ),
                );
            }
        }
        for c in &r.when.channel {
            if !Channel::ALL
                .iter()
                .any(|k| k.as_str().eq_ignore_ascii_case(c))
            {
                errs.push(
                    format!("{p}.when.channel"),
                    format!(
                        "\"{c}\" is not a channel; use one of {}",
                        Channel::ALL.map(Channel::as_str).join(", ")
                    ),
                );
            }
        }
        if r.hold_down_secs.is_some_and(|h| h > 3600) {
            errs.push(format!("{p}.hold_down_secs"), "must be at most 3600");
        }
        match (&r.set, r.mode) {
            (TeamsSet::Keyword(k), _) if k.eq_ignore_ascii_case("clear") => {}
            (TeamsSet::Keyword(k), _) => errs.push(
                format!("{p}.set"),
                format!("\"{k}\" is not a keyword; use \"clear\" or {{ availability, activity }}"),
            ),
            (
                TeamsSet::Pair {
                    availability,
                    activity,
                },
                WriteMode::Session,
            ) => {
                if !is_pair(SESSION_PAIRS, availability, activity) {
                    errs.push(
                        format!("{p}.set"),
                        format!(
                            "{availability}/{activity} cannot be set with setPresence; allowed: {} \
                             (or mode = \"preferred\")",
                            list_pairs(SESSION_PAIRS)
                        ),
                    );
                }
            }
            (
                TeamsSet::Pair {
                    availability,
                    activity,
                },
                WriteMode::Preferred,
            ) => {
                if !is_pair(PREFERRED_PAIRS, availability, activity) {
                    errs.push(
                        format!("{p}.set"),
                        format!(
                            "{availability}/{activity} cannot be set with setUserPreferredPresence; \
                             allowed: {}",
                            list_pairs(PREFERRED_PAIRS)
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(), Vec<String>> {
        let cfg: EngineConfig = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut errs = ConfigErrors::default();
        cfg.validate(&mut errs);
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs
                .iter()
                .map(|i| format!("{}: {}", i.path, i.message))
                .collect())
        }
    }

    #[test]
    fn design_example_is_valid() {
        let text = r#"
[sync]
directions = ["teams_to_cc", "cc_to_teams"]
hold_down_secs = 15
reconcile_interval_secs = 3600

[[teams_to_cc]]
when = { activity = ["InACall", "InAConferenceCall", "Presenting"] }
only_if_cc = ["Available"]
set = "Busy (Teams)"
restore = true

[[cc_to_teams]]
when = { status = ["On Contact", "After Contact Work"] }
set = { availability = "Busy", activity = "InACall" }

[[cc_to_teams]]
when = { status = ["Offline"] }
set = "clear"

[[cc_to_teams]]
when = { status = ["Break"] }
set = { availability = "BeRightBack", activity = "BeRightBack" }
mode = "preferred"
"#;
        assert_eq!(parse(text), Ok(()));
    }

    #[test]
    fn every_rule_error_names_its_index() {
        let text = r#"
[sync]
directions = []
keepalive_interval_secs = 300

[[teams_to_cc]]
when = {}
set = ""

[[cc_to_teams]]
when = { status = ["On Contact"] }
set = { availability = "Busy", activity = "Busy" }

[[cc_to_teams]]
when = { status = ["x"] }
set = { availability = "Busy", activity = "InACall" }
mode = "preferred"

[[cc_to_teams]]
when = { status = ["x"] }
set = "nothing"
"#;
        let errs = parse(text).unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap()).collect();
        assert_eq!(
            paths,
            vec![
                "sync.directions",
                "sync.keepalive_interval_secs",
                "teams_to_cc[0].when",
                "teams_to_cc[0].set",
                "cc_to_teams[0].set",
                "cc_to_teams[1].set",
                "cc_to_teams[2].set",
            ],
            "{errs:#?}"
        );
        assert!(errs[4].contains("mode = \"preferred\""), "{}", errs[4]);
    }

    #[test]
    fn scope_lists_are_checked() {
        let ok = r#"
[sync]
scope = "all"
include = { groups = ["6f1c1a5e-0000-4000-8000-00000000e001"], upns = ["boss@example.com"] }
exclude = { upns = ["x@example.com"] }
"#;
        assert_eq!(parse(ok), Ok(()));
        let bad = r#"
[sync]
include = { groups = ["sales-team"], upns = ["boss"] }
exclude = { groups = ["6f1c1a5e-0000-4000-8000-00000000e001", "nope"] }
"#;
        let errs = parse(bad).unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap()).collect();
        assert_eq!(
            paths,
            vec![
                "sync.include.groups[0]",
                "sync.include.upns[0]",
                "sync.exclude.groups[1]"
            ]
        );
        let cfg: EngineConfig = toml::from_str("[sync]\nscope = \"all\"").unwrap();
        assert_eq!(cfg.sync.presence_scope(), PresenceScope::all());
        assert!(toml::from_str::<EngineConfig>("[sync]\ninclude = { group = [] }").is_err());
    }

    #[test]
    fn mode_and_only_are_checked() {
        let cfg: EngineConfig =
            toml::from_str("[sync]\nmode = \"shadow\"\nonly = [\"a@example.com\"]").unwrap();
        assert!(cfg.sync.shadow());
        assert!(!EngineConfig::default().sync.shadow());
        let errs = parse("[sync]\nonly = [\"a@example.com\", \" \", \"simcc:\"]").unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap()).collect();
        assert_eq!(paths, vec!["sync.only[1]", "sync.only[2]"], "{errs:#?}");
        assert!(toml::from_str::<EngineConfig>("[sync]\nmode = \"dry\"").is_err());
    }

    #[test]
    fn unknown_rule_keys_are_rejected() {
        let text = r#"
[[teams_to_cc]]
when = { activity = ["InACall"] }
set = "Busy"
restor = true
"#;
        assert!(parse(text).unwrap_err()[0].contains("restor"));
    }
}

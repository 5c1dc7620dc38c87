//! The engine and contact activity: `cc_to_teams` rules matching `cc_activity` / `channel`,
//! an activity change alone, and the echo guards around it.

use super::Engine;
use super::config::{EngineConfig, WriteMode};
use super::state::{Action, Decision, Millis, Reason, UserState};
use crate::model::contact_center::{Activity, CatalogStatus, Channel, ContactActivity, StatusKind};
use crate::model::{CcStatus, Observation, Source, Status, TeamsPresence};

const RULES: &str = r#"
[sync]
hold_down_secs = 15

[[teams_to_cc]]
when = { activity = ["InACall"] }
only_if_cc = ["Available"]
set = "Busy (Teams)"
restore = true

[[cc_to_teams]]
when = { cc_activity = ["on_contact"], channel = ["voice"] }
set = { availability = "Busy", activity = "InACall" }

[[cc_to_teams]]
when = { cc_activity = ["on_contact"] }
set = { availability = "Busy", activity = "InAConferenceCall" }

[[cc_to_teams]]
when = { cc_activity = ["after_contact_work"] }
set = { availability = "Away", activity = "Away" }
hold_down_secs = 5
"#;

const S: Millis = 1000;

fn engine() -> Engine {
    let cfg: EngineConfig = toml::from_str(RULES).unwrap();
    let mut errs = crate::config::ConfigErrors::default();
    cfg.validate(&mut errs);
    assert!(errs.is_empty(), "{errs}");
    let mut e = Engine::from_config(&cfg);
    e.rules.set_catalog(
        ["Available", "Busy (Teams)", "Offline"]
            .iter()
            .map(|n| CatalogStatus {
                id: n.to_string(),
                name: n.to_string(),
                kind: StatusKind::NotRoutable,
                settable: true,
            })
            .collect(),
    );
    e
}

fn cc(name: &str) -> Status {
    Status::ContactCenter(CcStatus {
        id: name.into(),
        name: name.into(),
    })
}

fn act(activity: ContactActivity, channel: Option<Channel>) -> Option<Activity> {
    Some(Activity { activity, channel })
}

struct W {
    e: Engine,
    st: UserState,
    now: Millis,
}

impl W {
    fn new() -> W {
        let mut w = W {
            e: engine(),
            st: UserState::default(),
            now: 1_000_000,
        };
        w.teams("Available", "Available");
        w.cc("Available", act(ContactActivity::Idle, None));
        w
    }

    fn teams(&mut self, a: &str, b: &str) -> Vec<Decision> {
        let mut out = Vec::new();
        let p = Status::Teams(TeamsPresence::new(a, b));
        self.e
            .observe(&mut self.st, p, Source::GraphWebhook, self.now, &mut out);
        out
    }

    fn cc(&mut self, status: &str, activity: Option<Activity>) -> Vec<Decision> {
        let mut out = Vec::new();
        self.e.observe_activity_at(
            &mut self.st,
            cc(status),
            activity,
            Source::ConnectorPush,
            self.now,
            self.now,
            &mut out,
        );
        out
    }

    fn wait(&mut self, ms: Millis) -> Vec<Decision> {
        self.now += ms;
        let mut out = Vec::new();
        self.e.tick(&mut self.st, self.now, &mut out);
        out
    }
}

fn writes(d: &[Decision]) -> Vec<Action> {
    d.iter().filter_map(|d| d.action.clone()).collect()
}

fn set(a: &str, b: &str) -> Action {
    Action::SetTeams {
        availability: a.into(),
        activity: b.into(),
        mode: WriteMode::Session,
    }
}

#[test]
fn a_contact_maps_after_the_hold_down_and_clears_when_it_ends() {
    let mut w = W::new();
    let d = w.cc(
        "Available",
        act(ContactActivity::OnContact, Some(Channel::Voice)),
    );
    assert!(writes(&d).is_empty(), "held down first: {d:?}");
    assert_eq!(d.last().unwrap().reason, Reason::Holding);
    assert_eq!(writes(&w.wait(15 * S)), vec![set("Busy", "InACall")]);
    // After-contact work has its own rule, with its own hold-down.
    let d = w.cc(
        "Available",
        act(ContactActivity::AfterContactWork, Some(Channel::Voice)),
    );
    assert!(writes(&d).is_empty());
    assert_eq!(writes(&w.wait(5 * S)), vec![set("Away", "Away")]);
    // Idle again: no rule matches, the bridge's session is removed after the hold-down
    // (the rule in place, after-contact work, holds for 5 s).
    assert!(writes(&w.cc("Available", act(ContactActivity::Idle, None))).is_empty());
    assert_eq!(
        writes(&w.wait(5 * S)),
        vec![Action::ClearTeams {
            mode: WriteMode::Session
        }]
    );
}

#[test]
fn the_channel_picks_the_rule_and_an_unknown_activity_matches_no_activity_rule() {
    let mut w = W::new();
    w.cc(
        "Available",
        act(ContactActivity::OnContact, Some(Channel::Chat)),
    );
    assert_eq!(
        writes(&w.wait(15 * S)),
        vec![set("Busy", "InAConferenceCall")]
    );
    let mut w = W::new();
    // A status with no activity reported keeps the one known (idle): nothing to do.
    let d = w.cc("Available", None);
    assert_eq!(d.last().unwrap().reason, Reason::Unchanged);
    assert_eq!(w.st.cc_activity, act(ContactActivity::Idle, None));
}

#[test]
fn a_contact_does_not_abandon_the_bridges_contact_center_override() {
    let mut w = W::new();
    // Teams call → the bridge sets "Busy (Teams)".
    w.teams("Busy", "InACall");
    let d = w.wait(15 * S);
    assert_eq!(
        writes(&d),
        vec![Action::SetCc {
            status: CcStatus {
                id: "Busy (Teams)".into(),
                name: "Busy (Teams)".into()
            }
        }]
    );
    // Its echo, then the platform reports a contact on top (e.g. an outbound call) with
    // the bridge's status still in place: no write either way, the override stays.
    assert_eq!(
        w.cc("Busy (Teams)", act(ContactActivity::Idle, None))[0].reason,
        Reason::Echo
    );
    let d = w.cc(
        "Busy (Teams)",
        act(ContactActivity::OnContact, Some(Channel::Voice)),
    );
    assert_eq!(d[0].reason, Reason::Echo);
    assert!(writes(&w.wait(60 * S)).is_empty());
    assert_eq!(w.st.t2c.applied, Some(0));
    // The Teams call ends: the override is restored as usual.
    w.teams("Available", "Available");
    assert_eq!(
        writes(&w.wait(15 * S)),
        vec![Action::SetCc {
            status: CcStatus {
                id: "Available".into(),
                name: "Available".into()
            }
        }]
    );
}

#[test]
fn an_activity_change_alone_never_writes_to_the_contact_center() {
    let mut w = W::new();
    let mut all = Vec::new();
    all.extend(w.cc(
        "Available",
        act(ContactActivity::Offered, Some(Channel::Voice)),
    ));
    all.extend(w.cc(
        "Available",
        act(ContactActivity::OnContact, Some(Channel::Voice)),
    ));
    all.extend(w.wait(15 * S));
    // The bridge's own Teams write comes back: an echo, no teams_to_cc rule fires.
    all.extend(w.teams("Busy", "InACall"));
    all.extend(w.wait(60 * S));
    assert!(
        all.iter()
            .all(|d| !matches!(d.action, Some(Action::SetCc { .. }))),
        "{all:#?}"
    );
    assert!(all.iter().any(|d| d.reason == Reason::Echo));
}

#[test]
fn unknown_activities_and_channels_are_reported_with_the_rule_index() {
    let text = r#"
[[cc_to_teams]]
when = { status = ["On Contact"] }
set = { availability = "Busy", activity = "InACall" }

[[cc_to_teams]]
when = { cc_activity = ["on_call"], channel = ["video"] }
set = { availability = "Busy", activity = "InACall" }

[[cc_to_teams]]
when = { channel = ["voice"] }
set = "clear"
"#;
    let cfg: EngineConfig = toml::from_str(text).unwrap();
    let mut errs = crate::config::ConfigErrors::default();
    cfg.validate(&mut errs);
    let got: Vec<String> = errs
        .iter()
        .map(|i| format!("{}: {}", i.path, i.message))
        .collect();
    let paths: Vec<&str> = got.iter().map(|e| e.split(':').next().unwrap()).collect();
    assert_eq!(
        paths,
        vec![
            "cc_to_teams[1].when.cc_activity",
            "cc_to_teams[1].when.channel",
            "cc_to_teams[2].when",
            "cc_to_teams[2].when.channel",
        ],
        "{got:#?}"
    );
    assert!(got[0].contains("\"on_call\"") && got[0].contains("after_contact_work"));
}

#[test]
fn stored_items_and_states_without_activity_still_load() {
    let o: Observation = serde_json::from_value(serde_json::json!({
        "user": "u1",
        "status": { "side": "contact_center", "id": "a", "name": "A" },
        "observed_at": "2026-11-30T08:00:00Z",
        "source": "connector_push"
    }))
    .unwrap();
    assert_eq!(o.activity, None);
    let st: UserState = serde_json::from_value(serde_json::json!({ "cc_at": 5 })).unwrap();
    assert_eq!(st.cc_activity, None);
    let with = Observation {
        activity: act(ContactActivity::OnContact, Some(Channel::Voice)),
        ..o
    };
    let v = serde_json::to_value(&with).unwrap();
    assert_eq!(v["activity"]["activity"], "on_contact");
    assert_eq!(serde_json::from_value::<Observation>(v).unwrap(), with);
}

#[test]
fn a_reconciliation_read_carries_the_activity_so_a_contact_ended_meanwhile_is_not_lost() {
    let mut w = W::new();
    w.cc(
        "Available",
        act(ContactActivity::OnContact, Some(Channel::Voice)),
    );
    assert_eq!(writes(&w.wait(15 * S)), vec![set("Busy", "InACall")]);
    // The daemon was down while the contact ended; the first reconciliation after the
    // restart reads the agent idle. The read is newer than any event dated before it.
    w.now += 60 * S;
    let mut out = Vec::new();
    let drift = w.e.reconcile_at(
        &mut w.st,
        None,
        Some((
            CcStatus {
                id: "Available".into(),
                name: "Available".into(),
            },
            act(ContactActivity::Idle, None),
        )),
        w.now,
        w.now,
        &mut out,
    );
    assert!(drift.cc_missed, "the activity had drifted");
    assert_eq!(w.st.cc_activity, act(ContactActivity::Idle, None));
    assert_eq!(
        writes(&w.wait(15 * S)),
        vec![Action::ClearTeams {
            mode: WriteMode::Session
        }],
        "the bridge's presence is removed"
    );
    // The stream's records from the downtime, older than the read, change nothing.
    let mut out = Vec::new();
    w.e.observe_activity_at(
        &mut w.st,
        cc("Available"),
        act(ContactActivity::OnContact, Some(Channel::Voice)),
        Source::ConnectorPush,
        w.now - 50 * S,
        w.now,
        &mut out,
    );
    assert_eq!(out.last().unwrap().reason, Reason::Stale);
}

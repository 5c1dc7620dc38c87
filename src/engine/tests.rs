//! Unit and property tests of the pure engine, against a small model of both sides.

use proptest::prelude::*;

use super::config::WriteMode;
use super::state::{Action, Decision, HeldPresence, Millis, Reason, UserState};
use super::{Drift, Engine};
use crate::engine::config::EngineConfig;
use crate::model::contact_center::{CatalogStatus, StatusKind};
use crate::model::{CcStatus, Source, Status, TeamsPresence};

const RULES: &str = include_str!("../../tests/fixtures/rules.toml");

pub(crate) fn engine_with(extra: &str) -> Engine {
    let text = format!("{extra}\n{RULES}");
    let cfg: EngineConfig = toml::from_str(&text).unwrap();
    let mut errs = crate::config::ConfigErrors::default();
    cfg.validate(&mut errs);
    assert!(errs.is_empty(), "{errs}");
    let mut e = Engine::from_config(&cfg);
    e.rules.set_catalog(
        CC.iter()
            .chain(["Busy (Teams)", "Do Not Disturb"].iter())
            .map(|n| CatalogStatus {
                id: cc(n).id,
                name: n.to_string(),
                kind: if *n == "Offline" {
                    StatusKind::Offline
                } else {
                    StatusKind::NotRoutable
                },
                settable: true,
            })
            .collect(),
    );
    e
}

fn cc(name: &str) -> CcStatus {
    CcStatus {
        id: name.to_lowercase().replace(' ', "-"),
        name: name.into(),
    }
}

fn teams(a: &str, b: &str) -> TeamsPresence {
    TeamsPresence::new(a, b)
}

const S: Millis = 1000;

/// Both sides as the platforms would show them, and the engine fed from them.
struct World {
    engine: Engine,
    st: UserState,
    now: Millis,
    own: TeamsPresence,
    held: Option<HeldPresence>,
    cc: CcStatus,
    /// Every decision so far.
    log: Vec<Decision>,
    /// Statuses the agent picked, with the bridge's last CC write at that time.
    restores_over_agent: usize,
    last_bridge_cc: Option<CcStatus>,
    agent_touched_since_write: bool,
}

impl World {
    fn new(engine: Engine) -> World {
        let mut w = World {
            engine,
            st: UserState::default(),
            now: 1_000_000,
            own: teams("Available", "Available"),
            held: None,
            cc: cc("Available"),
            log: Vec::new(),
            restores_over_agent: 0,
            last_bridge_cc: None,
            agent_touched_since_write: false,
        };
        w.feed(Status::Teams(w.shown()));
        w.feed(Status::ContactCenter(w.cc.clone()));
        w
    }

    /// What Teams shows: the bridge's session wins over lower own states; preferred wins.
    fn shown(&self) -> TeamsPresence {
        match &self.held {
            Some(h) if h.mode == WriteMode::Preferred => teams(&h.availability, &h.activity),
            Some(h)
                if super::decide::rank(&h.availability)
                    > super::decide::rank(&self.own.availability) =>
            {
                teams(&h.availability, &h.activity)
            }
            _ => self.own.clone(),
        }
    }

    fn feed(&mut self, status: Status) {
        let mut queue = vec![status];
        let mut rounds = 0;
        while let Some(s) = queue.pop() {
            rounds += 1;
            assert!(
                rounds < 50,
                "endless echo loop: {:#?}",
                &self.log[self.log.len().saturating_sub(20)..]
            );
            let mut out = Vec::new();
            let source = match s {
                Status::Teams(_) => Source::GraphWebhook,
                Status::ContactCenter(_) => Source::ConnectorPush,
            };
            let echo_expected = matches!(&s, Status::ContactCenter(c) if self.last_bridge_cc.as_ref() == Some(c) && !self.agent_touched_since_write);
            self.engine
                .observe(&mut self.st, s, source, self.now, &mut out);
            if echo_expected {
                assert!(
                    out.iter().all(|d| d.action.is_none()),
                    "echo propagated: {out:#?}"
                );
            }
            queue.extend(self.apply(out));
        }
    }

    fn apply(&mut self, out: Vec<Decision>) -> Vec<Status> {
        let mut echoes = Vec::new();
        for d in out {
            match &d.action {
                Some(Action::SetCc { status }) => {
                    if d.reason == Reason::Restored && self.agent_touched_since_write {
                        self.restores_over_agent += 1;
                    }
                    self.cc = status.clone();
                    self.last_bridge_cc = Some(status.clone());
                    self.agent_touched_since_write = false;
                    echoes.push(Status::ContactCenter(status.clone()));
                }
                Some(Action::SetTeams {
                    availability,
                    activity,
                    mode,
                }) => {
                    self.held = Some(HeldPresence {
                        availability: availability.clone(),
                        activity: activity.clone(),
                        mode: *mode,
                    });
                    echoes.push(Status::Teams(self.shown()));
                }
                Some(Action::ClearTeams { .. }) => {
                    self.held = None;
                    echoes.push(Status::Teams(self.shown()));
                }
                None => {}
            }
            self.log.push(d);
        }
        echoes
    }

    fn user_teams(&mut self, p: TeamsPresence) {
        self.own = p;
        self.feed(Status::Teams(self.shown()));
    }

    fn agent_cc(&mut self, c: CcStatus) {
        if self.cc != c {
            self.agent_touched_since_write = true;
        }
        self.cc = c.clone();
        self.feed(Status::ContactCenter(c));
    }

    /// Advances the clock, firing every deadline on the way.
    fn advance(&mut self, ms: Millis) {
        let end = self.now + ms;
        while let Some(d) = self.st.next_deadline().filter(|d| *d <= end) {
            self.now = d.max(self.now);
            let mut out = Vec::new();
            self.engine.tick(&mut self.st, self.now, &mut out);
            for s in self.apply(out) {
                self.feed(s);
            }
        }
        self.now = end;
    }

    fn writes(&self) -> Vec<&Action> {
        self.log.iter().filter_map(|d| d.action.as_ref()).collect()
    }

    fn writes_except_keepalive(&self) -> usize {
        self.log
            .iter()
            .filter(|d| d.action.is_some() && d.reason != Reason::KeepAlive)
            .count()
    }
}

#[test]
fn teams_call_sets_cc_after_hold_down_and_restores_afterwards() {
    let mut w = World::new(engine_with(""));
    w.user_teams(teams("Busy", "InACall"));
    assert!(w.writes().is_empty());
    w.advance(14 * S);
    assert!(w.writes().is_empty(), "nothing before the hold-down ends");
    w.advance(S);
    assert_eq!(
        w.writes(),
        vec![&Action::SetCc {
            status: cc("Busy (Teams)")
        }]
    );
    assert_eq!(w.cc, cc("Busy (Teams)"));
    w.user_teams(teams("Available", "Available"));
    w.advance(15 * S);
    assert_eq!(w.cc, cc("Available"), "{:#?}", w.log);
    assert_eq!(w.writes().len(), 2);
}

#[test]
fn returning_to_the_propagated_status_cancels_and_newer_status_restarts() {
    let mut w = World::new(engine_with(""));
    w.user_teams(teams("Busy", "InACall"));
    w.advance(10 * S);
    w.user_teams(teams("Available", "Available"));
    assert_eq!(w.log.last().unwrap().reason, Reason::HoldCancelled);
    w.advance(60 * S);
    assert!(w.writes().is_empty());
    // A different rule restarts the wait.
    w.user_teams(teams("Busy", "InACall"));
    w.advance(10 * S);
    w.user_teams(teams("DoNotDisturb", "DoNotDisturb"));
    w.advance(10 * S);
    assert!(w.writes().is_empty(), "the newer status restarted the wait");
    w.advance(5 * S);
    assert_eq!(w.cc, cc("Do Not Disturb"));
}

#[test]
fn restore_leaves_a_status_the_agent_picked() {
    let mut w = World::new(engine_with(""));
    w.user_teams(teams("Busy", "InACall"));
    w.advance(15 * S);
    w.agent_cc(cc("Lunch"));
    assert!(w.log.iter().any(|d| d.reason == Reason::OverrideAbandoned));
    w.user_teams(teams("Available", "Available"));
    w.advance(60 * S);
    assert_eq!(w.cc, cc("Lunch"));
    assert_eq!(w.restores_over_agent, 0);
}

#[test]
fn cc_contact_sets_teams_with_keepalive_and_clears_after() {
    let mut w = World::new(engine_with(""));
    w.agent_cc(cc("On Contact"));
    w.advance(15 * S);
    assert_eq!(w.shown(), teams("Busy", "InACall"));
    let before = w.writes().len();
    w.advance(3600 * S);
    let keepalives = w
        .log
        .iter()
        .filter(|d| d.reason == Reason::KeepAlive)
        .count();
    assert_eq!(keepalives, 15, "one re-post every 240 s over an hour");
    assert_eq!(w.writes().len(), before + 15);
    w.agent_cc(cc("Available"));
    w.advance(15 * S);
    assert!(w.held.is_none());
    assert_eq!(w.st.c2t.keepalive_due, None);
    assert!(matches!(w.writes().last(), Some(Action::ClearTeams { .. })));
}

#[test]
fn the_echo_of_a_teams_write_does_not_drive_cc() {
    // A rule that would map the bridge's own Busy/InACall back to the contact center.
    let mut w = World::new(engine_with(""));
    w.engine.rules.teams_to_cc[0].only_if_cc.clear();
    w.agent_cc(cc("On Contact"));
    w.advance(100 * S);
    assert!(
        w.writes()
            .iter()
            .all(|a| !matches!(a, Action::SetCc { .. })),
        "{:#?}",
        w.log
    );
}

#[test]
fn flapping_suspends_and_resumes() {
    let mut w = World::new(engine_with(
        "[sync]\nhold_down_secs = 0\nflap_max_writes = 4",
    ));
    for _ in 0..5 {
        w.agent_cc(cc("On Contact"));
        w.advance(5 * S);
        w.agent_cc(cc("Available"));
        w.advance(5 * S);
    }
    assert!(w.log.iter().any(|d| d.reason == Reason::FlapSuspended));
    assert_eq!(w.writes().len(), 4);
    assert_eq!(w.st.sync_state(w.now), super::state::SyncState::Suspended);
    w.agent_cc(cc("On Contact"));
    w.advance(600 * S);
    assert!(w.log.iter().any(|d| d.reason == Reason::Resumed));
    assert_eq!(w.shown(), teams("Busy", "InACall"));
}

#[test]
fn precedence_on_login() {
    for (option, expect) in [
        ("keep_cc", cc("Available")),
        ("adopt_teams", cc("Busy (Teams)")),
        ("teams_always_wins", cc("Busy (Teams)")),
    ] {
        let mut w = World::new(engine_with(&format!("[sync]\non_cc_login = \"{option}\"")));
        w.agent_cc(cc("Offline"));
        w.user_teams(teams("Busy", "InACall"));
        w.advance(60 * S);
        assert!(
            w.writes().is_empty(),
            "{option}: nothing is written while logged out"
        );
        w.agent_cc(cc("Available"));
        assert_eq!(w.cc, expect, "{option}: {:#?}", w.log);
        w.advance(60 * S);
        assert_eq!(w.cc, expect, "{option}");
        // teams_always_wins ignores only_if_cc: a status outside the guard is overridden.
        w.user_teams(teams("Available", "Available"));
        w.advance(60 * S);
        w.agent_cc(cc("Lunch"));
        w.user_teams(teams("Busy", "InACall"));
        w.advance(60 * S);
        let want = if option == "teams_always_wins" {
            cc("Busy (Teams)")
        } else {
            cc("Lunch")
        };
        assert_eq!(w.cc, want, "{option}");
    }
}

#[test]
fn a_lost_session_is_reposted_and_reconcile_reports_it() {
    let mut w = World::new(engine_with(""));
    w.agent_cc(cc("On Contact"));
    w.advance(15 * S);
    let writes = w.writes().len();
    // A correct system: reconcile writes nothing.
    let mut out = Vec::new();
    let shown = w.shown();
    let d = w
        .engine
        .reconcile(&mut w.st, Some(shown), Some(w.cc.clone()), w.now, &mut out);
    assert_eq!(d, Drift::default());
    assert!(out.iter().all(|d| d.action.is_none()), "{out:#?}");
    // The session expired behind the bridge's back.
    let mut out = Vec::new();
    let d = w.engine.reconcile(
        &mut w.st,
        Some(teams("Offline", "Offline")),
        Some(w.cc.clone()),
        w.now,
        &mut out,
    );
    assert!(d.session_lost && d.teams_missed && !d.cc_missed);
    let acts: Vec<_> = out.iter().filter_map(|d| d.action.as_ref()).collect();
    assert_eq!(
        acts,
        vec![&Action::SetTeams {
            availability: "Busy".into(),
            activity: "InACall".into(),
            mode: WriteMode::Session
        }],
        "{out:#?}"
    );
    assert_eq!(writes, w.writes().len());
}

#[test]
fn stale_sequence_numbers_are_ignored() {
    let e = engine_with("");
    let mut st = UserState::default();
    let mut out = Vec::new();
    let mut p = teams("Busy", "InACall");
    p.sequence = Some("B".into());
    e.observe(
        &mut st,
        Status::Teams(p.clone()),
        Source::GraphWebhook,
        0,
        &mut out,
    );
    p.sequence = Some("A".into());
    p.availability = "Available".into();
    e.observe(&mut st, Status::Teams(p), Source::GraphPoll, 1, &mut out);
    assert_eq!(out.last().unwrap().reason, Reason::Stale);
    assert_eq!(st.teams.as_ref().unwrap().availability, "Busy");
}

#[test]
fn state_round_trips_through_json() {
    let mut w = World::new(engine_with(""));
    w.user_teams(teams("Busy", "InACall"));
    w.advance(15 * S);
    w.agent_cc(cc("On Contact"));
    let json = serde_json::to_value(&w.st).unwrap();
    let back: UserState = serde_json::from_value(json).unwrap();
    assert_eq!(back, w.st);
}

#[derive(Debug, Clone)]
enum Ev {
    Teams(usize),
    Cc(usize),
    Wait(Millis),
}

const TEAMS: &[(&str, &str)] = &[
    ("Available", "Available"),
    ("Busy", "InACall"),
    ("Busy", "Busy"),
    ("DoNotDisturb", "Presenting"),
    ("DoNotDisturb", "DoNotDisturb"),
    ("Away", "Away"),
];
const CC: &[&str] = &[
    "Available",
    "On Contact",
    "After Contact Work",
    "Break",
    "Lunch",
    "Offline",
];

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        (0..TEAMS.len()).prop_map(Ev::Teams),
        (0..CC.len()).prop_map(Ev::Cc),
        (0i64..40_000).prop_map(Ev::Wait),
    ]
}

fn run(w: &mut World, evs: &[Ev]) {
    for e in evs {
        match e {
            Ev::Teams(i) => w.user_teams(teams(TEAMS[*i].0, TEAMS[*i].1)),
            Ev::Cc(i) => w.agent_cc(cc(CC[*i])),
            Ev::Wait(ms) => w.advance(*ms),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Echoes never propagate (checked in `World::feed`), restore never overwrites the agent,
    /// and once inputs stop both sides settle: only keep-alives are written from then on, and
    /// re-reading both sides changes nothing.
    #[test]
    fn settles_without_echo_loops(evs in proptest::collection::vec(ev(), 0..60),
                                  login in 0usize..3) {
        let opt = ["keep_cc", "adopt_teams", "teams_always_wins"][login];
        let mut w = World::new(engine_with(&format!("[sync]\non_cc_login = \"{opt}\"")));
        run(&mut w, &evs);
        // Long enough for any hold-down and a suspension to end.
        w.advance(700 * S);
        let settled = w.writes_except_keepalive();
        w.advance(3600 * S);
        prop_assert_eq!(w.writes_except_keepalive(), settled, "writes after settling");
        let mut out = Vec::new();
        let shown = w.shown();
        let drift = w.engine.reconcile(&mut w.st, Some(shown), Some(w.cc.clone()), w.now, &mut out);
        prop_assert!(!drift.any());
        prop_assert!(out.iter().all(|d| d.action.is_none()));
        prop_assert_eq!(w.restores_over_agent, 0);
    }

    /// A Teams status that lasts less than the hold-down never reaches the contact center.
    #[test]
    fn short_statuses_never_propagate(
        blips in proptest::collection::vec((1usize..TEAMS.len(), 0i64..14_999, 0i64..100_000), 0..30)
    ) {
        let mut w = World::new(engine_with(""));
        for (i, short, rest) in blips {
            w.user_teams(teams(TEAMS[i].0, TEAMS[i].1));
            w.advance(short);
            w.user_teams(teams("Available", "Available"));
            w.advance(rest);
        }
        prop_assert!(w.writes().is_empty(), "{:#?}", w.log);
    }
}

/// In shadow mode the bridge's presence is never in Teams: its absence is not a lost session,
/// so a reconciliation finds no drift there and decides no re-post.
#[test]
fn shadow_mode_does_not_take_the_missing_session_for_a_lost_one() {
    let mut e = engine_with("");
    e.p.shadow = true;
    let mut st = UserState::default();
    let mut out = Vec::new();
    e.observe(
        &mut st,
        Status::Teams(teams("Available", "Available")),
        Source::GraphPoll,
        0,
        &mut out,
    );
    e.observe(
        &mut st,
        Status::ContactCenter(cc("On Contact")),
        Source::ConnectorPush,
        S,
        &mut out,
    );
    e.tick(&mut st, 20 * S, &mut out);
    assert!(st.c2t.held.is_some(), "{out:#?}");
    let mut out = Vec::new();
    let d = e.reconcile(
        &mut st,
        Some(teams("Available", "Available")),
        Some(cc("On Contact")),
        30 * S,
        &mut out,
    );
    assert!(!d.session_lost, "{out:#?}");
    assert!(out.iter().all(|d| d.action.is_none()), "{out:#?}");
}

//! The pure engine: a user's state, an observation or the clock in; decisions out. No I/O, no
//! clock reads, no allocation beyond the statuses it keeps, so it runs in microseconds.
//!
//! Per direction the engine computes the rule that should apply now (first match of the
//! table; `None` when no rule matches) and compares it with the rule in place. A difference
//! starts the hold-down; a newer difference restarts it; going back to the rule in place
//! cancels it. When the hold-down ends the change is made, unless the oscillation breaker
//! finds too many writes in its window, which suspends the user for a cooldown.

use crate::engine::config::EngineConfig;
use crate::engine::config::{Direction, OnCcLogin, WriteMode};
use crate::engine::rules::{Rules, cc_is};
use crate::engine::state::{
    Action, Decision, HeldPresence, Millis, Pending, Reason, Table, Trigger, UserState, WrittenCc,
};
use crate::model::{CcStatus, Side, Source, Status, TeamsPresence};

/// Timing and switches, in engine units.
#[derive(Debug, Clone)]
pub struct Params {
    pub teams_to_cc: bool,
    pub cc_to_teams: bool,
    pub hold_down_ms: Millis,
    pub on_cc_login: OnCcLogin,
    pub flap_max_writes: usize,
    pub flap_window_ms: Millis,
    pub flap_cooldown_ms: Millis,
    pub keepalive_ms: Millis,
}

/// The mapping tables and parameters. Shared read-only by all workers.
#[derive(Debug, Clone)]
pub struct Engine {
    pub rules: Rules,
    pub p: Params,
}

/// What a reconciliation read found for one user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drift {
    /// Teams showed a presence the engine had not seen (a missed notification).
    pub teams_missed: bool,
    /// The contact center showed a status the engine had not seen.
    pub cc_missed: bool,
    /// Teams no longer showed the bridge's session.
    pub session_lost: bool,
}

impl Drift {
    pub fn any(&self) -> bool {
        self.teams_missed || self.cc_missed || self.session_lost
    }
}

/// Ranks availabilities by Graph's session precedence (DoNotDisturb > Busy > Available > Away).
pub(crate) fn rank(availability: &str) -> u8 {
    const RANKS: &[(&str, u8)] = &[
        ("DoNotDisturb", 4),
        ("Busy", 3),
        ("BusyIdle", 3),
        ("Available", 2),
        ("AvailableIdle", 2),
        ("Away", 1),
        ("BeRightBack", 1),
    ];
    RANKS
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(availability))
        .map_or(0, |(_, r)| *r)
}

enum Step {
    Nothing,
    Cancelled,
    Holding(Millis),
    Commit,
}

struct Ctx<'a> {
    now: Millis,
    trigger: Trigger,
    out: &'a mut Vec<Decision>,
}

impl Ctx<'_> {
    fn push(&mut self, rule: Option<(Table, u16)>, action: Option<Action>, reason: Reason) {
        self.out.push(Decision {
            at: self.now,
            trigger: self.trigger,
            rule,
            action,
            reason,
            due: None,
        });
    }
}

impl Engine {
    pub fn from_config(cfg: &EngineConfig) -> Engine {
        let s = &cfg.sync;
        Engine {
            rules: Rules {
                teams_to_cc: cfg.teams_to_cc.clone(),
                cc_to_teams: cfg.cc_to_teams.clone(),
                offline: s.cc_offline_statuses.clone(),
                catalog: Vec::new(),
            },
            p: Params {
                teams_to_cc: s.enabled(Direction::TeamsToCc),
                cc_to_teams: s.enabled(Direction::CcToTeams),
                hold_down_ms: s.hold_down_secs as Millis * 1000,
                on_cc_login: s.on_cc_login,
                flap_max_writes: s.flap_max_writes as usize,
                flap_window_ms: s.flap_window_secs as Millis * 1000,
                flap_cooldown_ms: s.flap_cooldown_secs as Millis * 1000,
                keepalive_ms: s.keepalive_interval_secs as Millis * 1000,
            },
        }
    }

    /// Takes one observation for this user and appends the decisions it leads to.
    pub fn observe(
        &self,
        st: &mut UserState,
        status: Status,
        source: Source,
        now: Millis,
        out: &mut Vec<Decision>,
    ) {
        let trigger = Trigger::Observation {
            side: status.side(),
            source,
        };
        let mut cx = Ctx { now, trigger, out };
        match status {
            Status::Teams(p) => self.observe_teams(st, p, &mut cx),
            Status::ContactCenter(c) => self.observe_cc(st, c, &mut cx),
        }
    }

    fn observe_teams(&self, st: &mut UserState, p: TeamsPresence, cx: &mut Ctx) {
        if let (Some(new), Some(old)) = (
            p.sequence.as_deref(),
            st.teams.as_ref().and_then(|t| t.sequence.as_deref()),
        ) && (new.len(), new) <= (old.len(), old)
        {
            return cx.push(None, None, Reason::Stale);
        }
        let changed = st.teams.as_ref() != Some(&p);
        if changed {
            st.teams_at = cx.now;
        }
        let echo = st.c2t.held.as_ref().is_some_and(|h| h.shows(&p));
        st.teams = Some(p);
        if echo {
            return cx.push(None, None, Reason::Echo);
        }
        if self.session_lost(st) && !self.suspended(st, cx.now) {
            let rule = st.c2t.applied.map(|r| (Table::CcToTeams, r));
            if let Some(h) = st.c2t.held.clone() {
                self.write(st, cx, rule, set_teams(&h), Reason::SessionLost);
            }
        }
        if !changed && st.c2t.own.is_some() {
            return cx.push(None, None, Reason::Unchanged);
        }
        st.c2t.own = st.teams.clone();
        st.t2c.quiet = false;
        let before = cx.out.len();
        self.eval_t2c(st, cx, false);
        self.eval_c2t(st, cx, false);
        if cx.out.len() == before {
            self.push_idle(st, cx, Side::Teams);
        }
    }

    fn observe_cc(&self, st: &mut UserState, c: CcStatus, cx: &mut Ctx) {
        let echo = st
            .wrote_cc
            .as_ref()
            .is_some_and(|w| w.live && same_cc(&w.status, &c));
        let changed = !st.cc.as_ref().is_some_and(|old| same_cc(old, &c));
        if echo {
            st.cc = Some(c);
            return cx.push(None, None, Reason::Echo);
        }
        if !changed {
            return cx.push(None, None, Reason::Unchanged);
        }
        st.cc_at = cx.now;
        if let Some(w) = st.wrote_cc.as_mut() {
            w.live = false;
        }
        let was_offline = st.cc.as_ref().is_some_and(|o| self.rules.is_offline(o));
        let offline = self.rules.is_offline(&c);
        st.cc = Some(c);
        if let Some(r) = st.t2c.applied.take() {
            st.t2c.before = None;
            st.t2c.pending = None;
            cx.push(Some((Table::TeamsToCc, r)), None, Reason::OverrideAbandoned);
        }
        let before = cx.out.len();
        if offline {
            st.t2c.pending = None;
            cx.push(None, None, Reason::LoggedOut);
        } else if was_offline {
            match self.p.on_cc_login {
                OnCcLogin::KeepCc => {
                    st.t2c.quiet = true;
                    st.t2c.pending = None;
                    cx.push(None, None, Reason::LoginKeepCc);
                }
                OnCcLogin::AdoptTeams | OnCcLogin::TeamsAlwaysWins => self.eval_t2c(st, cx, true),
            }
        } else {
            self.eval_t2c(st, cx, false);
        }
        self.eval_c2t(st, cx, false);
        if cx.out.len() == before {
            self.push_idle(st, cx, Side::ContactCenter);
        }
    }

    /// Called when the user's deadline ([`UserState::next_deadline`]) has come.
    pub fn tick(&self, st: &mut UserState, now: Millis, out: &mut Vec<Decision>) {
        let mut cx = Ctx {
            now,
            trigger: Trigger::Timer,
            out,
        };
        if st.suspended_until.is_some_and(|u| u <= now) {
            st.suspended_until = None;
            cx.push(None, None, Reason::Resumed);
            if st
                .c2t
                .held
                .as_ref()
                .is_some_and(|h| h.mode == WriteMode::Session)
            {
                st.c2t.keepalive_due = Some(now);
            }
            self.eval_t2c(st, &mut cx, false);
            self.eval_c2t(st, &mut cx, false);
        }
        if self.suspended(st, now) {
            return;
        }
        if st.t2c.pending.as_ref().is_some_and(|p| p.due <= now) {
            self.eval_t2c(st, &mut cx, false);
        }
        if st.c2t.pending.as_ref().is_some_and(|p| p.due <= now) {
            self.eval_c2t(st, &mut cx, false);
        }
        if st.c2t.keepalive_due.is_some_and(|k| k <= now) {
            match st.c2t.held.clone() {
                Some(h) if h.mode == WriteMode::Session => {
                    st.c2t.keepalive_due = Some(now + self.p.keepalive_ms);
                    let rule = st.c2t.applied.map(|r| (Table::CcToTeams, r));
                    cx.push(rule, Some(set_teams(&h)), Reason::KeepAlive);
                }
                _ => st.c2t.keepalive_due = None,
            }
        }
    }

    /// Feeds a reconciliation read of both sides; reports what had drifted.
    pub fn reconcile(
        &self,
        st: &mut UserState,
        teams: Option<TeamsPresence>,
        cc: Option<CcStatus>,
        now: Millis,
        out: &mut Vec<Decision>,
    ) -> Drift {
        let mut drift = Drift::default();
        if let Some(t) = teams {
            let echo = st.c2t.held.as_ref().is_some_and(|h| h.shows(&t));
            drift.teams_missed = !echo && st.teams.as_ref() != Some(&t);
            let start = out.len();
            self.observe(st, Status::Teams(t), Source::Reconcile, now, out);
            drift.session_lost = out[start..].iter().any(|d| d.reason == Reason::SessionLost);
        }
        if let Some(c) = cc {
            drift.cc_missed = !st.cc.as_ref().is_some_and(|o| same_cc(o, &c));
            self.observe(st, Status::ContactCenter(c), Source::Reconcile, now, out);
        }
        drift
    }

    fn suspended(&self, st: &UserState, now: Millis) -> bool {
        st.suspended_until.is_some_and(|u| u > now)
    }

    fn session_lost(&self, st: &UserState) -> bool {
        match (&st.c2t.held, &st.teams) {
            (Some(h), Some(t)) if h.mode == WriteMode::Session => {
                rank(&t.availability) < rank(&h.availability)
            }
            _ => false,
        }
    }

    fn push_idle(&self, st: &UserState, cx: &mut Ctx, side: Side) {
        let (on, reason) = match side {
            Side::Teams => (self.p.teams_to_cc, st.t2c.applied),
            Side::ContactCenter => (self.p.cc_to_teams, st.c2t.applied),
        };
        let r = if !on {
            Reason::DirectionOff
        } else if self.suspended(st, cx.now) {
            Reason::Suspended
        } else if reason.is_none() {
            Reason::NoRule
        } else {
            Reason::Unchanged
        };
        cx.push(None, None, r);
    }

    fn hold_ms(&self, rule: Option<u16>, table: Table) -> Millis {
        let per_rule = rule.and_then(|r| match table {
            Table::TeamsToCc => self.rules.teams_to_cc[r as usize].hold_down_secs,
            Table::CcToTeams => self.rules.cc_to_teams[r as usize].hold_down_secs,
        });
        per_rule.map_or(self.p.hold_down_ms, |s| s as Millis * 1000)
    }

    /// Hold-down bookkeeping shared by both directions.
    fn step(
        &self,
        pending: &mut Option<Pending>,
        applied: Option<u16>,
        desired: Option<u16>,
        hold_ms: Millis,
        now: Millis,
    ) -> Step {
        if desired == applied {
            return if pending.take().is_some() {
                Step::Cancelled
            } else {
                Step::Nothing
            };
        }
        let due = match pending {
            Some(p) if p.rule == desired => p.due,
            _ => now + hold_ms,
        };
        if due <= now {
            *pending = None;
            Step::Commit
        } else {
            *pending = Some(Pending { rule: desired, due });
            Step::Holding(due)
        }
    }

    fn eval_t2c(&self, st: &mut UserState, cx: &mut Ctx, immediate: bool) {
        if !self.p.teams_to_cc || self.suspended(st, cx.now) || st.t2c.quiet {
            return;
        }
        let cc_offline = st.cc.as_ref().is_some_and(|c| self.rules.is_offline(c));
        let overridden = st.t2c.applied.is_some() && st.wrote_cc.as_ref().is_some_and(|w| w.live);
        let guard = if overridden {
            st.t2c.before.as_ref()
        } else {
            st.cc.as_ref()
        };
        let always = self.p.on_cc_login == OnCcLogin::TeamsAlwaysWins;
        let desired = match (&st.c2t.own, cc_offline) {
            (Some(t), false) => self.rules.match_teams(t, guard, always),
            _ => None,
        };
        let hold = if immediate {
            0
        } else {
            self.hold_ms(desired.or(st.t2c.applied), Table::TeamsToCc)
        };
        let rule = desired.or(st.t2c.applied).map(|r| (Table::TeamsToCc, r));
        match self.step(&mut st.t2c.pending, st.t2c.applied, desired, hold, cx.now) {
            Step::Nothing => {}
            Step::Cancelled => cx.push(rule, None, Reason::HoldCancelled),
            Step::Holding(due) => push_holding(cx, rule, due),
            Step::Commit => self.commit_t2c(st, cx, desired),
        }
    }

    fn commit_t2c(&self, st: &mut UserState, cx: &mut Ctx, desired: Option<u16>) {
        match desired {
            Some(r) => {
                let target = self.rules.cc_target(r);
                let rule = Some((Table::TeamsToCc, r));
                let already = st.cc.as_ref().is_some_and(|c| same_cc(c, &target));
                if st.t2c.applied.is_none() {
                    st.t2c.before = if already { None } else { st.cc.clone() };
                }
                if already {
                    st.t2c.applied = Some(r);
                    return cx.push(rule, None, Reason::AlreadySet);
                }
                if self.write(
                    st,
                    cx,
                    rule,
                    Action::SetCc { status: target },
                    Reason::Mapped,
                ) {
                    st.t2c.applied = Some(r);
                }
            }
            None => {
                let Some(old) = st.t2c.applied else { return };
                let rule = Some((Table::TeamsToCc, old));
                let intact = st.wrote_cc.as_ref().is_some_and(|w| w.live);
                let before = st.t2c.before.clone();
                match before {
                    _ if !self.rules.teams_to_cc[old as usize].restore => {
                        cx.push(rule, None, Reason::OverrideEnded)
                    }
                    Some(b) if intact => {
                        let action = Action::SetCc { status: b };
                        if !self.write(st, cx, rule, action, Reason::Restored) {
                            return;
                        }
                    }
                    _ => cx.push(rule, None, Reason::RestoreSkippedAgentChanged),
                }
                st.t2c.applied = None;
                st.t2c.before = None;
            }
        }
    }

    fn eval_c2t(&self, st: &mut UserState, cx: &mut Ctx, immediate: bool) {
        if !self.p.cc_to_teams || self.suspended(st, cx.now) {
            return;
        }
        // While the contact center shows the bridge's own write, it says nothing about the
        // agent: the echo must not travel back to Teams.
        let cc_is_echo = match (&st.wrote_cc, &st.cc) {
            (Some(w), Some(c)) => w.live && same_cc(&w.status, c),
            _ => false,
        };
        if cc_is_echo {
            st.c2t.pending = None;
            return;
        }
        let desired = st
            .cc
            .as_ref()
            .and_then(|c| self.rules.match_cc(c, st.c2t.own.as_ref()));
        let hold = if immediate {
            0
        } else {
            self.hold_ms(desired.or(st.c2t.applied), Table::CcToTeams)
        };
        let rule = desired.or(st.c2t.applied).map(|r| (Table::CcToTeams, r));
        match self.step(&mut st.c2t.pending, st.c2t.applied, desired, hold, cx.now) {
            Step::Nothing => {}
            Step::Cancelled => cx.push(rule, None, Reason::HoldCancelled),
            Step::Holding(due) => push_holding(cx, rule, due),
            Step::Commit => self.commit_c2t(st, cx, desired),
        }
    }

    fn commit_c2t(&self, st: &mut UserState, cx: &mut Ctx, desired: Option<u16>) {
        let rule = desired.or(st.c2t.applied).map(|r| (Table::CcToTeams, r));
        let target = desired.and_then(|r| {
            self.rules.teams_target(r).map(|(a, b)| HeldPresence {
                availability: a.to_owned(),
                activity: b.to_owned(),
                mode: self.rules.cc_to_teams[r as usize].mode,
            })
        });
        match target {
            Some(t) => {
                if let Some(old) = st.c2t.held.as_ref().filter(|h| h.mode != t.mode) {
                    let clear = Action::ClearTeams { mode: old.mode };
                    if !self.write(st, cx, rule, clear, Reason::Cleared) {
                        return;
                    }
                }
                if st.c2t.held.as_ref() == Some(&t) {
                    st.c2t.applied = desired;
                    return cx.push(rule, None, Reason::AlreadySet);
                }
                if self.write(st, cx, rule, set_teams(&t), Reason::Mapped) {
                    st.c2t.applied = desired;
                }
            }
            None => match st.c2t.held.as_ref() {
                Some(h) => {
                    let clear = Action::ClearTeams { mode: h.mode };
                    if self.write(st, cx, rule, clear, Reason::Cleared) {
                        st.c2t.applied = desired;
                    }
                }
                None => {
                    st.c2t.applied = desired;
                    cx.push(rule, None, Reason::NothingToClear);
                }
            },
        }
    }

    /// Records a write (echo memory, flap window) and emits it, unless the oscillation
    /// breaker trips, which suspends the user instead. Returns whether the write was emitted.
    fn write(
        &self,
        st: &mut UserState,
        cx: &mut Ctx,
        rule: Option<(Table, u16)>,
        action: Action,
        reason: Reason,
    ) -> bool {
        let horizon = cx.now - self.p.flap_window_ms;
        st.recent_writes.retain(|t| *t > horizon);
        if st.recent_writes.len() >= self.p.flap_max_writes {
            st.recent_writes.clear();
            st.suspended_until = Some(cx.now + self.p.flap_cooldown_ms);
            st.t2c.pending = None;
            st.c2t.pending = None;
            st.c2t.keepalive_due = None;
            cx.push(rule, None, Reason::FlapSuspended);
            return false;
        }
        st.recent_writes.push(cx.now);
        match &action {
            Action::SetCc { status } => {
                st.wrote_cc = Some(WrittenCc {
                    status: status.clone(),
                    at: cx.now,
                    live: true,
                });
            }
            Action::SetTeams {
                availability,
                activity,
                mode,
            } => {
                st.wrote_teams_at = Some(cx.now);
                st.c2t.keepalive_due =
                    (*mode == WriteMode::Session).then_some(cx.now + self.p.keepalive_ms);
                st.c2t.held = Some(HeldPresence {
                    availability: availability.clone(),
                    activity: activity.clone(),
                    mode: *mode,
                });
            }
            Action::ClearTeams { .. } => {
                st.wrote_teams_at = Some(cx.now);
                st.c2t.held = None;
                st.c2t.keepalive_due = None;
            }
        }
        cx.push(rule, Some(action), reason);
        true
    }
}

fn push_holding(cx: &mut Ctx, rule: Option<(Table, u16)>, due: Millis) {
    cx.push(rule, None, Reason::Holding);
    if let Some(d) = cx.out.last_mut() {
        d.due = Some(due);
    }
}

fn set_teams(h: &HeldPresence) -> Action {
    Action::SetTeams {
        availability: h.availability.clone(),
        activity: h.activity.clone(),
        mode: h.mode,
    }
}

/// Two statuses are the same when their ids match, or (for targets given by name) the name.
fn same_cc(a: &CcStatus, b: &CcStatus) -> bool {
    a.id == b.id || cc_is(a, &b.name)
}

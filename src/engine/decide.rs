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
use crate::engine::rules::Rules;
use crate::engine::state::{Action, Decision, Millis, Reason, Seen, Table, Trigger, UserState};
use crate::engine::tables::{same_cc, set_teams};
use crate::model::contact_center::Activity;
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
    /// Shadow mode: the bridge's writes are never made, so Teams never shows its presence
    /// and that absence is not a lost session (no re-post is decided for it).
    pub shadow: bool,
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

pub(super) enum Step {
    Nothing,
    Cancelled,
    Holding(Millis),
    Commit,
}

pub(super) struct Ctx<'a> {
    pub(super) now: Millis,
    pub(super) trigger: Trigger,
    pub(super) out: &'a mut Vec<Decision>,
}

impl Ctx<'_> {
    pub(super) fn push(
        &mut self,
        rule: Option<(Table, u16)>,
        action: Option<Action>,
        reason: Reason,
    ) {
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
                catalogs: Default::default(),
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
                shadow: s.shadow(),
            },
        }
    }

    /// Takes one observation made now for this user and appends the decisions it leads to.
    pub fn observe(
        &self,
        st: &mut UserState,
        status: Status,
        source: Source,
        now: Millis,
        out: &mut Vec<Decision>,
    ) {
        self.observe_at(st, status, source, now, now, out)
    }

    /// Takes one observation made at `observed_at` (epoch milliseconds) for this user and
    /// appends the decisions it leads to. One older than the newest already applied on its
    /// side ([`Seen::supersedes`]) is stale: it changes no state and causes no write,
    /// whatever order observations arrive in (a crashed process's items come back late).
    pub fn observe_at(
        &self,
        st: &mut UserState,
        status: Status,
        source: Source,
        observed_at: Millis,
        now: Millis,
        out: &mut Vec<Decision>,
    ) {
        self.observe_activity_at(st, status, None, source, observed_at, now, out)
    }

    /// [`Engine::observe_at`] with the agent's contact activity, when the contact-center
    /// source reported it (`None` keeps what was known). A change of activity alone is a
    /// change: `cc_to_teams` rules naming `cc_activity` or `channel` are evaluated again, and
    /// nothing else is (the status the agent selected did not change, so an override the
    /// bridge holds on the contact center stays, and no `teams_to_cc` write follows).
    #[allow(clippy::too_many_arguments)]
    pub fn observe_activity_at(
        &self,
        st: &mut UserState,
        status: Status,
        activity: Option<Activity>,
        source: Source,
        observed_at: Millis,
        now: Millis,
        out: &mut Vec<Decision>,
    ) {
        let trigger = Trigger::Observation {
            side: status.side(),
            source,
        };
        let mut cx = Ctx { now, trigger, out };
        let sequence = match &status {
            Status::Teams(p) => p.sequence.clone(),
            Status::ContactCenter(_) => None,
        };
        let seen = match status.side() {
            Side::Teams => &mut st.teams_seen,
            Side::ContactCenter => &mut st.cc_seen,
        };
        if seen
            .as_ref()
            .is_some_and(|s| s.supersedes(observed_at, sequence.as_deref()))
        {
            return cx.push(None, None, Reason::Stale);
        }
        *seen = Some(Seen::advanced(
            seen.as_ref(),
            observed_at,
            sequence.as_deref(),
        ));
        match status {
            Status::Teams(p) => self.observe_teams(st, p, &mut cx),
            Status::ContactCenter(c) => self.observe_cc(st, c, activity, &mut cx),
        }
    }

    fn observe_teams(&self, st: &mut UserState, p: TeamsPresence, cx: &mut Ctx) {
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

    fn observe_cc(
        &self,
        st: &mut UserState,
        c: CcStatus,
        activity: Option<Activity>,
        cx: &mut Ctx,
    ) {
        let echo = st
            .wrote_cc
            .as_ref()
            .is_some_and(|w| w.live && same_cc(&w.status, &c));
        let changed = !st.cc.as_ref().is_some_and(|old| same_cc(old, &c));
        let activity = activity.or(st.cc_activity);
        let activity_changed = activity != st.cc_activity;
        st.cc_activity = activity;
        if echo {
            // The status is the bridge's own write: neither it nor the activity reported
            // with it travels back to Teams (eval_c2t holds off while the echo is live).
            st.cc = Some(c);
            return cx.push(None, None, Reason::Echo);
        }
        if !changed {
            if !activity_changed {
                return cx.push(None, None, Reason::Unchanged);
            }
            st.cc_at = cx.now;
            let before = cx.out.len();
            self.eval_c2t(st, cx, false);
            if cx.out.len() == before {
                self.push_idle(st, cx, Side::ContactCenter);
            }
            return;
        }
        st.cc_at = cx.now;
        if let Some(w) = st.wrote_cc.as_mut() {
            w.live = false;
        }
        let conn = st.connector.as_deref();
        let was_offline = st
            .cc
            .as_ref()
            .is_some_and(|o| self.rules.is_offline(o, conn));
        let offline = self.rules.is_offline(&c, conn);
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

    /// Feeds a reconciliation read of both sides made now; reports what had drifted.
    pub fn reconcile(
        &self,
        st: &mut UserState,
        teams: Option<TeamsPresence>,
        cc: Option<CcStatus>,
        now: Millis,
        out: &mut Vec<Decision>,
    ) -> Drift {
        self.reconcile_at(st, teams, cc.map(|c| (c, None)), now, now, out)
    }

    /// Feeds a reconciliation read of both sides that started at `read_at`; reports what had
    /// drifted. A side already observed after `read_at` is stale and left alone.
    pub fn reconcile_at(
        &self,
        st: &mut UserState,
        teams: Option<TeamsPresence>,
        cc: Option<(CcStatus, Option<Activity>)>,
        read_at: Millis,
        now: Millis,
        out: &mut Vec<Decision>,
    ) -> Drift {
        let stale = |out: &[Decision]| out.iter().any(|d| d.reason == Reason::Stale);
        let mut drift = Drift::default();
        if let Some(t) = teams {
            let echo = st.c2t.held.as_ref().is_some_and(|h| h.shows(&t));
            // A first read of a side never seen before is news, not drift: nothing was missed.
            let missed = !echo && st.teams.as_ref().is_some_and(|known| known != &t);
            let start = out.len();
            self.observe_at(st, Status::Teams(t), Source::Reconcile, read_at, now, out);
            drift.teams_missed = missed && !stale(&out[start..]);
            drift.session_lost = out[start..].iter().any(|d| d.reason == Reason::SessionLost);
        }
        if let Some((c, activity)) = cc {
            // The read's activity too, when the platform reports it: a stream's events from
            // before the read are stale after it, so without it a contact that ended while
            // the daemon was down would stay on in Teams.
            let missed = st.cc.as_ref().is_some_and(|o| {
                !same_cc(o, &c) || activity.is_some_and(|a| st.cc_activity.as_ref() != Some(&a))
            });
            let start = out.len();
            self.observe_activity_at(
                st,
                Status::ContactCenter(c),
                activity,
                Source::Reconcile,
                read_at,
                now,
                out,
            );
            drift.cc_missed = missed && !stale(&out[start..]);
        }
        drift
    }

    pub(super) fn suspended(&self, st: &UserState, now: Millis) -> bool {
        st.suspended_until.is_some_and(|u| u > now)
    }

    pub(super) fn session_lost(&self, st: &UserState) -> bool {
        if self.p.shadow {
            return false;
        }
        match (&st.c2t.held, &st.teams) {
            (Some(h), Some(t)) if h.mode == WriteMode::Session => {
                rank(&t.availability) < rank(&h.availability)
            }
            _ => false,
        }
    }

    pub(super) fn push_idle(&self, st: &UserState, cx: &mut Ctx, side: Side) {
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

    pub(super) fn hold_ms(&self, rule: Option<u16>, table: Table) -> Millis {
        let per_rule = rule.and_then(|r| match table {
            Table::TeamsToCc => self.rules.teams_to_cc[r as usize].hold_down_secs,
            Table::CcToTeams => self.rules.cc_to_teams[r as usize].hold_down_secs,
        });
        per_rule.map_or(self.p.hold_down_ms, |s| s as Millis * 1000)
    }
}

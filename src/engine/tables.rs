//! The two directions of the engine: evaluating a mapping table against a user's state,
//! holding a change down, and committing it as a write (with the oscillation breaker).

use crate::engine::config::{OnCcLogin, WriteMode};
use crate::engine::decide::{Ctx, Engine, Step};
use crate::engine::rules::cc_is;
use crate::engine::state::{
    Action, HeldPresence, Millis, Pending, Reason, Table, UserState, WrittenCc,
};
use crate::model::CcStatus;

impl Engine {
    /// Hold-down bookkeeping shared by both directions.
    pub(super) fn step(
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

    pub(super) fn eval_t2c(&self, st: &mut UserState, cx: &mut Ctx, immediate: bool) {
        if !self.p.teams_to_cc || self.suspended(st, cx.now) || st.t2c.quiet {
            return;
        }
        let conn = st.connector.as_deref();
        let cc_offline = st
            .cc
            .as_ref()
            .is_some_and(|c| self.rules.is_offline(c, conn));
        let overridden = st.t2c.applied.is_some() && st.wrote_cc.as_ref().is_some_and(|w| w.live);
        let guard = if overridden {
            st.t2c.before.as_deref()
        } else {
            st.cc.as_ref()
        };
        let always = self.p.on_cc_login == OnCcLogin::TeamsAlwaysWins;
        let desired = match (&st.c2t.own, cc_offline) {
            (Some(t), false) => self.rules.match_teams(t, guard, always, conn),
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

    pub(super) fn commit_t2c(&self, st: &mut UserState, cx: &mut Ctx, desired: Option<u16>) {
        match desired {
            Some(r) => {
                let target = self.rules.cc_target(r, st.connector.as_deref());
                let rule = Some((Table::TeamsToCc, r));
                let already = st.cc.as_ref().is_some_and(|c| same_cc(c, &target));
                if st.t2c.applied.is_none() {
                    st.t2c.before = if already {
                        None
                    } else {
                        st.cc.clone().map(Box::new)
                    };
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
                        let action = Action::SetCc { status: *b };
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

    pub(super) fn eval_c2t(&self, st: &mut UserState, cx: &mut Ctx, immediate: bool) {
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
        let desired = st.cc.as_ref().and_then(|c| {
            self.rules.match_cc(
                c,
                st.cc_activity.as_ref(),
                st.c2t.own.as_ref(),
                st.connector.as_deref(),
            )
        });
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

    pub(super) fn commit_c2t(&self, st: &mut UserState, cx: &mut Ctx, desired: Option<u16>) {
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
                if st.c2t.held.as_deref() == Some(&t) {
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
    pub(super) fn write(
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
                st.wrote_cc = Some(Box::new(WrittenCc {
                    status: status.clone(),
                    at: cx.now,
                    live: true,
                }));
            }
            Action::SetTeams {
                availability,
                activity,
                mode,
            } => {
                st.wrote_teams_at = Some(cx.now);
                st.c2t.keepalive_due =
                    (*mode == WriteMode::Session).then_some(cx.now + self.p.keepalive_ms);
                st.c2t.held = Some(Box::new(HeldPresence {
                    availability: availability.clone(),
                    activity: activity.clone(),
                    mode: *mode,
                }));
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

pub(super) fn set_teams(h: &HeldPresence) -> Action {
    Action::SetTeams {
        availability: h.availability.clone(),
        activity: h.activity.clone(),
        mode: h.mode,
    }
}

/// Two statuses are the same when their ids match, or (for targets given by name) the name.
pub(super) fn same_cc(a: &CcStatus, b: &CcStatus) -> bool {
    a.id == b.id || cc_is(a, &b.name)
}

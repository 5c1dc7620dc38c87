//! Unit tests of the simulated tenant's presence model.

use std::time::Duration;

use chrono::Utc;

use super::PresenceState;
use super::presence::{AppSession, Preferred, parse_iso_duration};
use crate::graph::presence::iso_duration;

#[test]
fn durations_the_client_writes_parse_back() {
    for d in [60, 300, 5400, 14_400] {
        let parsed = parse_iso_duration(&iso_duration(Duration::from_secs(d)));
        assert_eq!(parsed.unwrap().num_seconds() as u64, d);
    }
}

fn session(a: &str, b: &str, set_mins_ago: i64, expires_in_mins: i64) -> AppSession {
    let now = Utc::now();
    AppSession {
        availability: a.into(),
        activity: b.into(),
        set_at: now - chrono::Duration::minutes(set_mins_ago),
        expires_at: now + chrono::Duration::minutes(expires_in_mins),
    }
}

#[test]
fn simulated_presence_fades_expires_and_follows_precedence() {
    let now = Utc::now();
    let agg = |p: &mut PresenceState| p.aggregate(now);
    let mut p = PresenceState::default();
    assert_eq!(agg(&mut p), ("Offline".into(), "Offline".into()));
    p.sessions
        .insert("app".into(), session("Available", "Available", 0, 60));
    assert_eq!(agg(&mut p).1, "Available");
    p.sessions
        .insert("app".into(), session("Available", "Available", 6, 60));
    assert_eq!(
        agg(&mut p),
        ("Available".into(), "AvailableInactive".into())
    );
    p.sessions
        .insert("app".into(), session("Available", "Available", 11, 60));
    assert_eq!(agg(&mut p), ("Away".into(), "Away".into()));
    p.sessions
        .insert("app".into(), session("Busy", "InACall", 30, 60));
    p.client = Some(("Available".into(), "Available".into()));
    assert_eq!(agg(&mut p).0, "Busy", "Busy beats Available");
    p.client = Some(("DoNotDisturb".into(), "DoNotDisturb".into()));
    assert_eq!(agg(&mut p).0, "DoNotDisturb", "DoNotDisturb beats Busy");
    p.preferred = Some(Preferred {
        availability: "BeRightBack".into(),
        activity: "BeRightBack".into(),
        expires_at: now + chrono::Duration::hours(1),
    });
    assert_eq!(agg(&mut p).0, "BeRightBack", "preferred beats sessions");
    p.client = None;
    p.sessions
        .insert("app".into(), session("Busy", "InACall", 30, -1));
    assert_eq!(
        agg(&mut p),
        ("Offline".into(), "Offline".into()),
        "preferred needs a live session"
    );
    assert!(p.sessions.is_empty(), "expired session dropped");
}

use serde_json::json;

use super::*;
use crate::engine::state::Table;
use crate::model::{Side, Source};

const AT: i64 = 1_767_225_600_123; // 2026-01-01 00:00:00.123 UTC

fn decision(
    reason: Reason,
    trigger: Trigger,
    action: Option<Action>,
    due: Option<i64>,
) -> Decision {
    Decision {
        at: AT,
        trigger,
        rule: Some((Table::TeamsToCc, 0)),
        action,
        reason,
        due,
    }
}

fn busy_teams() -> CcStatus {
    CcStatus {
        id: "busy_teams".into(),
        name: "Busy (Teams)".into(),
    }
}

/// Entries as the worker wrote them with `json!` before records were typed.
fn stored_entries() -> Vec<(AuditEntry, &'static str)> {
    let entry = |input: serde_json::Value, action: &str, reason: Reason| AuditEntry {
        id: 1,
        user_id: "u1".into(),
        at: to_utc(AT),
        input: input.into(),
        rule: Some("teams_to_cc[0]".into()),
        action: action.into(),
        reason: reason.words().into(),
    };
    vec![
        (
            entry(
                json!({ "input": { "side": "teams", "source": "graph_webhook", "status": {
                        "side": "teams", "availability": "Busy", "activity": "InACall" } },
                    "decision": { "reason": "holding", "trigger": { "observation": {
                        "side": "teams", "source": "graph_webhook" } },
                        "due": "2026-01-01T00:00:15.123Z" } }),
                "none",
                Reason::Holding,
            ),
            "2026-01-01 00:00:00.123Z  Teams showed Busy/InACall (from graph_webhook): did \
             nothing [teams_to_cc[0]], because waiting for the status to persist through the \
             hold-down (until 2026-01-01T00:00:15.123Z).",
        ),
        (
            entry(
                json!({ "input": { "timer": true },
                    "decision": { "reason": "mapped", "trigger": "timer",
                        "write": { "kind": "set_cc", "status": {
                            "id": "busy_teams", "name": "Busy (Teams)" } } } }),
                "write_cc",
                Reason::Mapped,
            ),
            "2026-01-01 00:00:00.123Z  a timer fired: set the contact-center status to \
             \"Busy (Teams)\" [teams_to_cc[0]], because a mapping rule matched.",
        ),
        (
            entry(
                json!({ "input": { "reconcile": { "teams": null,
                        "contact_center": { "id": "oc", "name": "On Contact" } } },
                    "decision": { "reason": "session_lost", "trigger": { "observation": {
                        "side": "contact_center", "source": "reconcile" } },
                        "write": { "kind": "set_teams", "availability": "Busy",
                            "activity": "InACall", "mode": "preferred" } } }),
                "write_teams",
                Reason::SessionLost,
            ),
            "2026-01-01 00:00:00.123Z  reconciliation read Teams nothing and contact center \
             \"On Contact\": set Teams to Busy/InACall (preferred) [teams_to_cc[0]], because \
             Teams no longer shows the bridge's presence, so it is posted again.",
        ),
        (
            entry(
                json!({ "input": { "side": "contact_center", "source": "connector_push",
                        "status": { "side": "contact_center", "id": "a", "name": "Available" } },
                    "decision": { "reason": "cleared", "trigger": { "observation": {
                        "side": "contact_center", "source": "connector_push" } },
                        "write": { "kind": "clear_teams", "mode": "session" } } }),
                "clear_teams",
                Reason::Cleared,
            ),
            "2026-01-01 00:00:00.123Z  the contact center showed \"Available\" (from \
             connector_push): removed the bridge's Teams presence [teams_to_cc[0]], because the \
             bridge's Teams presence is removed.",
        ),
    ]
}

#[test]
fn stored_entries_are_described_as_before() {
    for (e, want) in stored_entries() {
        assert_eq!(describe(&e), want);
    }
}

#[test]
fn stored_entries_read_back_unchanged_for_the_api() {
    for (e, _) in stored_entries() {
        let record: Record = e.input.parse().unwrap();
        assert_eq!(serde_json::to_value(&record).unwrap(), e.input.value());
    }
}

#[test]
fn entries_are_written_as_before() {
    let obs = AuditInput::Observation {
        source: Source::GraphWebhook,
        status: Status::Teams(TeamsPresence::new("Busy", "InACall")),
    };
    let trigger = Trigger::Observation {
        side: Side::Teams,
        source: Source::GraphWebhook,
    };
    let e = entry(
        "u1",
        obs,
        &decision(Reason::Holding, trigger, None, Some(AT + 15_000)),
        false,
    );
    let (old, _) = &stored_entries()[0];
    assert_eq!(
        &e,
        &AuditEntry {
            id: 0,
            ..old.clone()
        }
    );

    let write = Action::SetCc {
        status: busy_teams(),
    };
    let e = entry(
        "u1",
        AuditInput::Timer,
        &decision(Reason::Mapped, Trigger::Timer, Some(write), None),
        false,
    );
    let (old, _) = &stored_entries()[1];
    assert_eq!(
        &e,
        &AuditEntry {
            id: 0,
            ..old.clone()
        }
    );
}

#[test]
fn an_unreadable_record_is_still_described() {
    let (mut e, _) = stored_entries().remove(1);
    e.input = json!({ "what": "else" }).into();
    assert_eq!(
        describe(&e),
        "2026-01-01 00:00:00.123Z  an unreadable record [teams_to_cc[0]], because a mapping \
         rule matched."
    );
}

#[test]
fn due_times_are_shown_as_they_are_stored() {
    for ms in [AT, AT - 123, AT + 1, AT + 10] {
        let stored = serde_json::to_value(to_utc(ms)).unwrap();
        let shown = to_utc(ms).to_rfc3339_opts(SecondsFormat::AutoSi, true);
        assert_eq!(stored.as_str(), Some(shown.as_str()));
    }
}

#[test]
fn a_shadow_write_is_recorded_and_described_as_not_made() {
    let write = Action::SetCc {
        status: busy_teams(),
    };
    let d = decision(Reason::Mapped, Trigger::Timer, Some(write), None);
    let e = entry("u1", AuditInput::Timer, &d, true);
    assert_eq!(e.input.value()["decision"]["shadow"], json!(true));
    assert_eq!(
        describe(&e),
        "2026-01-01 00:00:00.123Z  a timer fired: would set the contact-center status to \
         \"Busy (Teams)\" (shadow mode) [teams_to_cc[0]], because a mapping rule matched."
    );
    let clear = Action::ClearTeams {
        mode: crate::engine::config::WriteMode::Session,
    };
    let d = decision(Reason::Cleared, Trigger::Timer, Some(clear), None);
    assert!(
        describe(&entry("u1", AuditInput::Timer, &d, true))
            .contains("would remove the bridge's Teams presence (session) (shadow mode)")
    );
    // A decision without a write is not marked, whatever the mode.
    let d = decision(Reason::NoRule, Trigger::Timer, None, None);
    let e = entry("u1", AuditInput::Timer, &d, true);
    assert!(
        e.input.value()["decision"].get("shadow").is_none(),
        "{}",
        e.input
    );
}

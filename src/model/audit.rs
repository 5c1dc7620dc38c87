//! The audit trail's record of one decision: what came in and what the engine decided. Written
//! by the runtime, read back by `explain` and the decisions API, both through these types.
//!
//! The stored JSON predates these types and is kept as it was, so records written before
//! read back unchanged:
//! `{"input": {"side", "source", "status"} | {"reconcile": {"teams", "contact_center"}} |
//! {"timer": true} | {"operator": "upn"}, "decision": {…}}`.

use serde::{Deserialize, Serialize};

use super::{CcStatus, Side, Source, Status, TeamsPresence};

/// One audit record. `D` is the engine's account of its decision (reason, trigger, write):
/// those are engine types, which this module may not name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord<D> {
    pub input: AuditInput,
    pub decision: D,
}

/// What made the engine decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "InputWire", from = "InputWire")]
pub enum AuditInput {
    /// A status seen on one side.
    Observation { source: Source, status: Status },
    /// A reconciliation read of both sides (`None`: the side was not read or shows nothing).
    Reconcile {
        teams: Option<TeamsPresence>,
        contact_center: Option<CcStatus>,
    },
    /// A timer of the engine's (hold-down, keep-alive, suspension end).
    Timer,
    /// Someone acting from the console (their user principal name).
    Operator { by: String },
}

/// The stored shape of [`AuditInput`].
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum InputWire {
    Timer {
        timer: bool,
    },
    Operator {
        operator: String,
    },
    Reconcile {
        reconcile: ReconcileWire,
    },
    Observation {
        side: Side,
        source: Source,
        status: Status,
    },
}

#[derive(Serialize, Deserialize)]
struct ReconcileWire {
    teams: Option<TeamsPresence>,
    contact_center: Option<CcStatus>,
}

impl From<AuditInput> for InputWire {
    fn from(i: AuditInput) -> Self {
        match i {
            AuditInput::Observation { source, status } => InputWire::Observation {
                side: status.side(),
                source,
                status,
            },
            AuditInput::Reconcile {
                teams,
                contact_center,
            } => InputWire::Reconcile {
                reconcile: ReconcileWire {
                    teams,
                    contact_center,
                },
            },
            AuditInput::Timer => InputWire::Timer { timer: true },
            AuditInput::Operator { by } => InputWire::Operator { operator: by },
        }
    }
}

impl From<InputWire> for AuditInput {
    fn from(w: InputWire) -> Self {
        match w {
            InputWire::Observation { source, status, .. } => {
                AuditInput::Observation { source, status }
            }
            InputWire::Reconcile { reconcile } => AuditInput::Reconcile {
                teams: reconcile.teams,
                contact_center: reconcile.contact_center,
            },
            InputWire::Timer { .. } => AuditInput::Timer,
            InputWire::Operator { operator } => AuditInput::Operator { by: operator },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Inputs as the runtime wrote them with `json!` before these types existed.
    #[test]
    fn stored_inputs_read_back_and_are_written_unchanged() {
        let stored = [
            json!({ "timer": true }),
            json!({ "reconcile": {
                "teams": { "availability": "Busy", "activity": "InACall" },
                "contact_center": null } }),
            json!({ "reconcile": { "teams": null,
                "contact_center": { "id": "avail", "name": "Available" } } }),
            json!({ "side": "teams", "source": "graph_webhook", "status": {
                "side": "teams", "availability": "Away", "activity": "Away", "sequence": "7" } }),
            json!({ "side": "contact_center", "source": "connector_push", "status": {
                "side": "contact_center", "id": "oc", "name": "On Contact" } }),
        ];
        for v in stored {
            let input: AuditInput = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(&input).unwrap(), v);
        }
    }

    #[test]
    fn variants_are_told_apart() {
        let timer: AuditInput = serde_json::from_value(json!({ "timer": true })).unwrap();
        assert_eq!(timer, AuditInput::Timer);
        let obs: AuditInput = serde_json::from_value(json!({ "side": "contact_center",
            "source": "reconcile", "status": { "side": "contact_center", "id": "b", "name": "B" } }))
        .unwrap();
        assert!(matches!(
            obs,
            AuditInput::Observation {
                source: Source::Reconcile,
                ..
            }
        ));
        assert!(serde_json::from_value::<AuditInput>(json!({ "what": 1 })).is_err());
    }
}

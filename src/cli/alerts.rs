//! `presence-bridge alerts test [--sink NAME]`: sends a sample alert to each configured sink
//! now (not through the queue) and says what each answered.

use super::out::outln;
use crate::app::AppError;
use crate::app::config::Config;
use crate::runtime::alerts::config::ConditionKind;
use crate::runtime::alerts::deliver::{Outgoing, send};
use crate::runtime::alerts::tracker::{AlertStatus, Severity, Transition};

pub(super) async fn test(config: &Config, only: Option<&str>) -> anyhow::Result<()> {
    let sinks: Vec<_> = config
        .alerts
        .iter()
        .filter(|s| only.is_none_or(|n| s.name == n))
        .collect();
    if sinks.is_empty() {
        let why = match only {
            Some(n) => format!("no [[alerts]] entry is named {n:?}"),
            None => "no [[alerts]] entry is configured".to_owned(),
        };
        return Err(AppError::Config(why).into());
    }
    let http = reqwest::Client::new();
    let now = chrono::Utc::now();
    let mut failed = 0;
    for sink in sinks {
        let sample = Outgoing {
            sink: sink.name.clone(),
            instance: config.store.instance_id(),
            alert: Transition {
                key: "test".into(),
                kind: ConditionKind::ConnectorDown,
                severity: Severity::Warning,
                status: AlertStatus::Firing,
                summary: "Test alert from presence-bridge".into(),
                detail: format!(
                    "Sent by `presence-bridge alerts test` to the sink {:?}: alerts reach this place. Nothing is wrong.",
                    sink.name
                ),
                since: now,
                at: now,
            },
        };
        match send(&http, sink, &sample).await {
            Ok(()) => outln!("{}: sent", sink.name)?,
            Err(e) => {
                failed += 1;
                outln!("{}: FAILED: {e}", sink.name)?;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} alert sink(s) did not take the test alert");
    }
    Ok(())
}

//! What the health page shows beyond the readiness lights: when the Graph app's credentials
//! run out, and which subscription shard serves how many users, by webhook or by polling.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::graph::config::GraphConfig;
use crate::graph::subscriptions::api::presence_resource_ids;
use crate::store::SubscriptionRecord;

/// A credential is amber this many days before it expires (and red once it has).
pub const CREDENTIAL_AMBER_DAYS: i64 = 30;

/// One light per known credential end: the client secret's (`graph.client_secret_expires_at`)
/// and the certificate's (read from `graph.certificate_file`). Empty when neither is known.
pub fn credential_lights(graph: Option<&GraphConfig>, now: DateTime<Utc>) -> Vec<Value> {
    let Some(graph) = graph else {
        return Vec::new();
    };
    let certificate = graph
        .certificate_file
        .as_deref()
        .and_then(crate::runtime::alerts::certificate_not_after);
    [
        ("client secret", graph.client_secret_expires_at),
        ("certificate", certificate),
    ]
    .into_iter()
    .filter_map(|(name, at)| Some(credential_light(name, at?, now)))
    .collect()
}

/// A credential's light: green, amber from [`CREDENTIAL_AMBER_DAYS`] days ahead, red once
/// expired; the end is given in words ("expires on 3 January 2027, in 12 days").
pub fn credential_light(name: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Value {
    let date = expires_at.format("%-d %B %Y").to_string();
    let left = expires_at - now;
    let days = left.num_days();
    let (light, word, when) = if left <= chrono::Duration::zero() {
        let ago = -days;
        let ago = match ago {
            0 => "today".to_owned(),
            1 => "1 day ago".to_owned(),
            n => format!("{n} days ago"),
        };
        ("red", "down", format!("expired on {date} ({ago})"))
    } else {
        let in_words = match days {
            0 => "today".to_owned(),
            1 => "in 1 day".to_owned(),
            n => format!("in {n} days"),
        };
        let (light, word) = if days < CREDENTIAL_AMBER_DAYS {
            ("amber", "degraded")
        } else {
            ("green", "ok")
        };
        (light, word, format!("expires on {date}, {in_words}"))
    };
    json!({
        "name": name,
        "light": light,
        "word": word,
        "detail": when,
        "expires_at": expires_at,
    })
}

/// Each stored subscription with the users it covers and how its users are served: by the
/// webhook while the subscription is active and unexpired, else by polling (the subscription
/// manager hands a failing or lapsed shard's users to the poller).
pub fn subscriptions_json(records: &[SubscriptionRecord], now: DateTime<Utc>) -> Vec<Value> {
    let mut rows: Vec<&SubscriptionRecord> = records.iter().collect();
    rows.sort_by(|a, b| (&a.kind, a.shard, &a.id).cmp(&(&b.kind, b.shard, &b.id)));
    rows.into_iter()
        .map(|s| {
            let webhook = s.state == "active" && s.expires_at > now;
            let users = (s.kind == "presence").then(|| presence_resource_ids(&s.resource).len());
            json!({
                "kind": s.kind,
                "shard": s.shard,
                "account_id": s.account_id,
                "expires_at": s.expires_at,
                "state": s.state,
                "users": users,
                "served_by": if webhook { "webhook" } else { "polled" },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    #[test]
    fn credential_lights_turn_amber_thirty_days_ahead_and_red_when_expired() {
        let now = at(2026, 11, 30);
        let green = credential_light("client secret", at(2027, 3, 1), now);
        assert_eq!(green["light"], "green");
        assert_eq!(green["word"], "ok");
        assert_eq!(green["detail"], "expires on 1 March 2027, in 91 days");
        let amber = credential_light("client secret", at(2026, 12, 12), now);
        assert_eq!(amber["light"], "amber");
        assert_eq!(amber["word"], "degraded");
        assert_eq!(amber["detail"], "expires on 12 December 2026, in 12 days");
        let red = credential_light("certificate", at(2026, 11, 27), now);
        assert_eq!(red["light"], "red");
        assert_eq!(red["word"], "down");
        assert_eq!(red["detail"], "expired on 27 November 2026 (3 days ago)");
    }

    #[test]
    fn no_credential_light_when_no_end_is_known() {
        let now = at(2026, 11, 30);
        assert!(credential_lights(None, now).is_empty());
        let graph = GraphConfig::default();
        assert!(credential_lights(Some(&graph), now).is_empty());
        let graph = GraphConfig {
            client_secret_expires_at: Some(at(2026, 12, 1)),
            ..GraphConfig::default()
        };
        let lights = credential_lights(Some(&graph), now);
        assert_eq!(lights.len(), 1);
        assert_eq!(lights[0]["name"], "client secret");
        assert_eq!(lights[0]["light"], "amber");
    }
}

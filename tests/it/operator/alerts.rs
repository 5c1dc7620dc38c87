//! Outbound alerts: a condition that holds raises one alert per sink, retried through the
//! work queue when the sink throttles, and one "resolved" when it clears; `alerts test`.

use std::time::Duration;

use presence_bridge::app::config::Config;
use presence_bridge::sim::contact_center::{self, SimOptions};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::cli::{output, run, write};
use crate::helpers::{eventually, spawn_app_with};

async fn bodies(server: &MockServer, at: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == at)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn a_connector_down_alerts_once_per_sink_retries_a_throttled_sink_and_resolves() {
    let hooks = MockServer::start().await;
    // The generic webhook throttles the first delivery.
    Mock::given(method("POST"))
        .and(path("/generic"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&hooks)
        .await;
    let sim = contact_center::spawn(SimOptions::default()).await.unwrap();
    sim.reject_credentials(true);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"
shutdown_grace_secs = 5
[store]
url = "sqlite://{db}/test.db"
[alerting]
evaluate_interval_secs = 1
connector_down_minutes = 0
[[alerts]]
name = "ops"
kind = "webhook"
url = "{hooks}/generic"
[[alerts]]
name = "channel"
kind = "teams"
url = "{hooks}/teams"
conditions = ["connector_down"]
{connector}"#,
        db = dir.path().display(),
        hooks = hooks.uri(),
        // Polled every second, so the connector's health follows the platform both ways.
        connector = sim
            .connector_toml("sim")
            .replace("interval_secs = 0", "interval_secs = 1"),
    );
    let mut cfg = Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new()).unwrap();
    cfg.resolve_and_validate().unwrap();
    let app = spawn_app_with(cfg, dir).await;

    eventually(
        "the firing alert at both sinks",
        Duration::from_secs(30),
        || async {
            let generic = bodies(&hooks, "/generic").await;
            generic.len() == 2 && !bodies(&hooks, "/teams").await.is_empty()
        },
    )
    .await;
    let generic = bodies(&hooks, "/generic").await;
    assert_eq!(
        generic[0], generic[1],
        "the throttled delivery was sent again, unchanged"
    );
    let alert = &generic[1];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["condition"], "connector_down");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["summary"], "Connector sim is down");
    assert!(
        alert["detail"].as_str().unwrap().contains("unauthorized"),
        "{alert}"
    );
    let card = &bodies(&hooks, "/teams").await[0];
    assert_eq!(card["type"], "message");
    let attachment = &card["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(attachment["content"]["type"], "AdaptiveCard");
    assert_eq!(
        attachment["content"]["body"][0]["text"], "CRITICAL: Connector sim is down",
        "the state in words, not only colour"
    );

    sim.reject_credentials(false);
    eventually(
        "the resolved alert at both sinks",
        Duration::from_secs(60),
        || async {
            let resolved = |v: &Vec<Value>| {
                v.iter()
                    .any(|b| b["status"] == "resolved" || b.to_string().contains("RESOLVED"))
            };
            resolved(&bodies(&hooks, "/generic").await) && resolved(&bodies(&hooks, "/teams").await)
        },
    )
    .await;
    // A few more evaluations: nothing more is sent while nothing changes.
    let settled = hooks.received_requests().await.unwrap().len();
    let metrics_seen = || async {
        let text = app.get("/metrics").await.text().await.unwrap();
        text.contains("alerts_sent_total") && text.contains("# HELP alerts_firing")
    };
    eventually("alert metrics", Duration::from_secs(10), metrics_seen).await;
    app.shutdown().await;
    let generic = bodies(&hooks, "/generic").await;
    let statuses: Vec<&str> = generic
        .iter()
        .map(|b| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["firing", "firing", "resolved"],
        "one alert, one retry, one resolved"
    );
    assert_eq!(bodies(&hooks, "/teams").await.len(), 2);
    assert_eq!(hooks.received_requests().await.unwrap().len(), settled);
}

#[tokio::test]
async fn alerts_test_sends_a_sample_to_each_sink_and_says_what_each_answered() {
    let hooks = MockServer::start().await;
    Mock::given(path("/gone"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&hooks)
        .await;
    Mock::given(path("/ok"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hooks)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        &dir,
        &format!(
            "[store]\nurl = \"sqlite://{}/t.db\"\n[[alerts]]\nname = \"good\"\nkind = \"teams\"\nurl = \"{u}/ok\"\n[[alerts]]\nname = \"bad\"\nkind = \"webhook\"\nurl = \"{u}/gone\"\n",
            dir.path().display(),
            u = hooks.uri()
        ),
    );
    let hooks_uri = hooks.uri();
    let both = tokio::task::spawn_blocking({
        let config = config.clone();
        move || run(&config, &["alerts", "test"], &[])
    })
    .await
    .unwrap();
    let text = output(&both);
    assert_eq!(both.status.code(), Some(1), "{text}");
    assert!(text.contains("good: sent"), "{text}");
    assert!(
        text.contains("bad: FAILED: the sink answered 404"),
        "{text}"
    );
    assert!(!text.contains(&hooks_uri), "sink URLs are secrets: {text}");

    let one = tokio::task::spawn_blocking({
        let config = config.clone();
        move || run(&config, &["alerts", "test", "--sink", "good"], &[])
    })
    .await
    .unwrap();
    assert_eq!(one.status.code(), Some(0), "{}", output(&one));
    let sample: Value =
        serde_json::from_slice(&hooks.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(sample["attachments"][0]["content"]["type"], "AdaptiveCard");

    let none = tokio::task::spawn_blocking(move || {
        run(&config, &["alerts", "test", "--sink", "nope"], &[])
    })
    .await
    .unwrap();
    assert_eq!(none.status.code(), Some(78), "{}", output(&none));
    assert!(output(&none).contains("no [[alerts]] entry is named \"nope\""));
}

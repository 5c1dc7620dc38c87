//! The generic connector's pure parts: signature checks, snapshot diffs, the poll loop and
//! form-encoded events. Its requests against the simulated contact center are tested in
//! `tests/it/connectors_http.rs`.

use super::*;
use crate::config::ConfigErrors;
use crate::connectors::config::ConnectorConfig;
use crate::connectors::poll::{diff_snapshot, poll_loop, snapshot};
use crate::model::Source;
use crate::model::contact_center::{Activity, Channel, ContactActivity};
use chrono::TimeZone;

fn status(id: &str) -> CcStatus {
    CcStatus {
        id: id.into(),
        name: id.into(),
    }
}

/// The `[[connectors]]` of a configuration file, validated.
#[derive(serde::Deserialize)]
struct File {
    connectors: Vec<ConnectorConfig>,
}

fn config_from(toml_text: &str) -> File {
    let mut file: File = toml::from_str(toml_text).expect("parses");
    let mut errs = ConfigErrors::default();
    crate::connectors::config::validate(&mut file.connectors, "connectors", &mut errs);
    assert!(errs.is_empty(), "{errs}");
    file
}

#[test]
fn shared_secret_and_sha1_base64_verification() {
    use super::config::{HmacConfig, SignatureEncoding, SignedString, VerifyConfig};
    let now = Utc::now();
    let shared = VerifyConfig::SharedSecret {
        header: "x-token".into(),
        secret: Some("s3cret".into()),
        secret_file: None,
    };
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-token", "s3cret".parse().unwrap());
    assert!(inbound::verify(&shared, &h, b"{}", now).is_ok());
    h.insert("x-token", "s3cre".parse().unwrap());
    assert!(inbound::verify(&shared, &h, b"{}", now).is_err());
    let hm = VerifyConfig::Hmac(HmacConfig {
        header: "x-sig".into(),
        secret: Some("k".into()),
        secret_file: None,
        algorithm: super::config::HmacAlgorithm::Sha1,
        encoding: SignatureEncoding::Base64,
        prefix: String::new(),
        signed: SignedString::Body,
        timestamp_header: None,
        replay_window_secs: None,
    });
    let sig = inbound::hmac_sign(config::HmacAlgorithm::Sha1, b"k", &[b"payload"]);
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        "x-sig",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sig)
            .parse()
            .unwrap(),
    );
    assert!(inbound::verify(&hm, &h, b"payload", now).is_ok());
    assert!(inbound::verify(&hm, &h, b"payload2", now).is_err());
}

#[test]
fn snapshot_diff_reports_only_changes() {
    let at = Utc::now();
    let row = |a: &str, s: &str| AgentStatus {
        agent_id: a.into(),
        status: status(s),
        since: None,
        activity: None,
    };
    let first = diff_snapshot(&HashMap::new(), &[row("a", "x"), row("b", "y")], at);
    assert_eq!(first.len(), 2, "first poll reports everyone");
    let last = snapshot(vec![row("a", "x"), row("b", "y")]);
    let next = diff_snapshot(&last, &[row("a", "x"), row("b", "z")], at);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].agent_id, "b");
    assert_eq!(next[0].status, status("z"));
    assert_eq!(next[0].source, Source::ConnectorPoll);
}

#[test]
fn snapshot_diff_reports_an_activity_change_alone() {
    let at = Utc::now();
    let since = at - chrono::Duration::minutes(30);
    let row = |activity: Option<ContactActivity>| AgentStatus {
        agent_id: "a".into(),
        status: status("available"),
        since: Some(since),
        activity: activity.map(|activity| Activity {
            activity,
            channel: Some(Channel::Voice),
        }),
    };
    let last = snapshot(vec![row(Some(ContactActivity::Idle))]);
    let next = diff_snapshot(&last, &[row(Some(ContactActivity::OnContact))], at);
    assert_eq!(
        next.len(),
        1,
        "the contact began, the status did not change"
    );
    assert_eq!(
        next[0].activity.unwrap().activity,
        ContactActivity::OnContact
    );
    assert_eq!(next[0].at, at, "dated now, not when the status began");
    let same = snapshot(vec![row(Some(ContactActivity::OnContact))]);
    assert!(diff_snapshot(&same, &[row(Some(ContactActivity::OnContact))], at).is_empty());
}

#[tokio::test(start_paused = true)]
async fn poll_loop_emits_changes_each_interval() {
    let (tx, mut rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let rounds = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = rounds.clone();
    let task = tokio::spawn(poll_loop(
        Duration::from_secs(30),
        tx,
        cancel.clone(),
        move || {
            let n = r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                let s = if n < 2 { "x" } else { "y" };
                Ok(vec![AgentStatus {
                    agent_id: "a".into(),
                    status: status(s),
                    since: None,
                    activity: None,
                }])
            }
        },
    ));
    assert_eq!(
        rx.recv().await.unwrap().as_agent().unwrap().status,
        status("x")
    );
    assert_eq!(
        rx.recv().await.unwrap().as_agent().unwrap().status,
        status("y"),
        "unchanged second poll emitted nothing"
    );
    assert!(rounds.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    cancel.cancel();
    task.await.unwrap().unwrap();
}

#[test]
fn form_encoded_events_with_a_shared_secret() {
    let cfg = config_from(
        r#"
[[connectors]]
name = "tw"
kind = "http"
statuses = [{ id = "WA1", name = "Available", kind = "routable" }, { id = "WA2", name = "Offline", kind = "offline" }]
[connectors.inbound]
agent_id_pointer = "/WorkerSid"
status_pointer = "/WorkerActivitySid"
event_id_pointer = "/Sid"
timestamp_pointer = "/Timestamp"
verify = { type = "shared_secret", header = "X-Hook-Token", secret = "tok" }
"#,
    );
    let ConnectorConfig::Http(h) = cfg.connectors[0].clone() else {
        panic!("http kind")
    };
    let c = HttpConnector::new(*h, reqwest::Client::new(), None).unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-hook-token", "tok".parse().unwrap());
    headers.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    let body = b"EventType=worker.activity.update&WorkerSid=WK1&WorkerActivitySid=WA2&Sid=EV1&Timestamp=1767225600";
    let events = c
        .webhook()
        .unwrap()
        .parse(&headers, body, Utc.timestamp_opt(1_767_225_605, 0).unwrap())
        .unwrap();
    assert_eq!(events.len(), 1);
    let event = events[0].as_agent().unwrap();
    assert_eq!(event.agent_id, "WK1");
    assert_eq!(
        event.status,
        CcStatus {
            id: "WA2".into(),
            name: "Offline".into()
        }
    );
    assert_eq!(event.event_id.as_deref(), Some("EV1"));
    assert_eq!(event.at.timestamp(), 1_767_225_600);
}

use super::config::{DynamicsConfig, StepName};
use super::template::{Captured, check, missing_inputs};
use super::*;
use crate::connectors::{Channel, ContactEvent, ContactEventKind};

/// The phone-call recipe of the example configuration.
pub(crate) const RECIPE: &str = r#"
name = "crm"
url = "https://contoso.crm.dynamics.com"
tenant_id = "tenant"
client_id = "client"
client_secret = "secret"
app_id = "11111111-2222-3333-4444-555555555555"
channels = ["voice"]
suppress_duplicate_detection = true
screen_pop_url = "{{ environment.url }}main.aspx?appid={{ environment.app_id }}&pagetype=entityrecord&etn=phonecall&id={{ steps.created.activityid }}"

[steps.created]
method = "POST"
path = "phonecalls"
query = "$select=activityid"
headers = { Prefer = "return=representation" }
body = '{"activityid": {{ contact.record_id | tojson }}, "subject": {{ ("Call from " ~ (contact.customer_endpoint or "unknown")) | tojson }}, "phonenumber": {{ contact.customer_endpoint | tojson }}, "directioncode": false, "actualstart": {{ contact.at | tojson }}}'
captures = [{ name = "activityid", json_pointer = "/activityid" }]

[steps.ended]
method = "PATCH"
path = "phonecalls({{ steps.created.activityid }})"
headers = { "If-Match" = "*" }
body = '{"category": "contact center", "actualend": {{ contact.at | tojson }}}'

[steps.recording_available]
method = "PATCH"
path = "phonecalls({{ steps.created.activityid }})"
headers = { "If-Match" = "*" }
body = '{"description": {{ ("Recording: " ~ contact.recording_url) | tojson }}}'
"#;

fn env(text: &str) -> DynamicsConfig {
    toml::from_str(text).expect("environment parses")
}

fn event(kind: ContactEventKind) -> ContactEvent {
    ContactEvent {
        contact_id: "call-1".into(),
        kind,
        at: chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
            .unwrap()
            .into(),
        channel: Some(Channel::Voice),
        agent_id: Some("a1".into()),
        queue: Some("sales".into()),
        customer_endpoint: Some("+15550199".into()),
        recording_url: Some("https://rec.example/1".into()),
        event_id: None,
        attributes: Default::default(),
    }
}

#[test]
fn the_recipe_checks_clean() {
    assert_eq!(check(&env(RECIPE)), vec![]);
}

#[test]
fn a_step_waits_for_the_values_it_uses() {
    let e = env(RECIPE);
    let ended = e.steps.get(StepName::Ended).unwrap();
    assert_eq!(
        missing_inputs(ended, &Captured::new()),
        vec!["steps.created.activityid".to_owned()]
    );
    let mut c = Captured::new();
    c.entry("created".into())
        .or_default()
        .insert("activityid".into(), "x".into());
    assert!(missing_inputs(ended, &c).is_empty());
}

#[test]
fn template_errors_name_their_key() {
    let bad = RECIPE.replace(
        "{{ contact.at | tojson }}}'\n\n[steps.recording",
        "{{ contact.ended_at | tojson }}}'\n\n[steps.recording",
    );
    let errs = check(&env(&bad));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].field, "steps.ended.body");
    // A step may only use what the steps before it captured.
    let later = RECIPE.replace(
        "path = \"phonecalls\"\n",
        "path = \"phonecalls({{ steps.ended.activityid }})\"\n",
    );
    let errs = check(&env(&later));
    assert_eq!(errs[0].field, "steps.created.path", "{errs:?}");
    assert!(errs[0].message.contains("steps.ended.activityid"));
    let pop = RECIPE.replace(
        "id={{ steps.created.activityid }}",
        "id={{ steps.created.id }}",
    );
    let errs = check(&env(&pop));
    assert_eq!(errs[0].field, "screen_pop_url", "{errs:?}");
}

#[test]
fn created_runs_first_whatever_event_comes_first() {
    let envs = vec![std::sync::Arc::new(env(RECIPE))];
    let jobs = follow::jobs(&envs, "cc", &[event(ContactEventKind::Ended)]);
    let dedupes: Vec<_> = jobs.iter().map(|j| j.dedupe.clone().unwrap()).collect();
    assert_eq!(dedupes, ["crm/cc/call-1/created", "crm/cc/call-1/ended"]);
    assert!(
        jobs.iter()
            .all(|j| j.key == "crm/cc/call-1" && j.queue == follow::QUEUE)
    );
    // An environment following other connectors takes nothing from this one.
    let mut other = env(RECIPE);
    other.connectors = vec!["genesys".into()];
    assert!(
        follow::jobs(
            &[std::sync::Arc::new(other)],
            "cc",
            &[event(ContactEventKind::Offered)]
        )
        .is_empty()
    );
}

#[test]
fn render_prints_the_exact_request_with_the_token_redacted() {
    let e = env(RECIPE);
    let mut c = Captured::new();
    c.entry("created".into())
        .or_default()
        .insert("activityid".into(), "abc".into());
    let text = render(
        std::slice::from_ref(&e),
        None,
        "ended",
        "cc",
        &event(ContactEventKind::Ended),
        &c,
    )
    .unwrap();
    assert!(
        text.starts_with("PATCH https://contoso.crm.dynamics.com/api/data/v9.2/phonecalls(abc)\n"),
        "{text}"
    );
    assert!(text.contains("Authorization: Bearer [redacted]"));
    assert!(text.contains("If-Match: *"));
    assert!(text.contains("MSCRM.SuppressDuplicateDetection: true"));
    assert!(
        text.contains(r#""actualend": "2026-11-30T10:00:00Z""#),
        "{text}"
    );
    assert!(!text.contains("secret"));
}

#[test]
fn the_record_id_is_stable_per_environment_and_contact() {
    let a = template::record_id("crm", "cc", "call-1");
    assert_eq!(a, template::record_id("crm", "cc", "call-1"));
    assert_ne!(a, template::record_id("crm", "cc", "call-2"));
    assert!(uuid::Uuid::parse_str(&a).is_ok());
}

//! The generic HTTP connector's signed contact-event webhook.

use super::*;
use crate::contact_states::http::{CONNECTOR, step};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_contact_creates_one_phone_call_and_updates_it_twice() {
    let graph = tenant(1).await;
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let d = start(&graph, &sim, &dir, CONNECTOR).await;

    assert_eq!(step(&d, "call.ringing").await, 202);
    let id = phonecall(&sim).await;
    let rec = &sim.records("phonecalls")[&id];
    assert_eq!(rec["phonenumber"], "+15550199");
    assert_eq!(rec["subject"], "Call from +15550199");
    assert_eq!(
        screen_pop(&d, "a1").await.0,
        404,
        "ringing is not on the contact"
    );

    // Connected: the agent's screen pop opens the record.
    assert_eq!(step(&d, "call.answered").await, 202);
    until_screen_pop(&d, &sim, "a1", &id).await;
    let per_contact: Value = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/contacts/cc/call-7/screen-pop",
            d.address
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(per_contact["links"][0]["environment"], "crm");

    // The platform redelivers; the end and the recording follow.
    assert_eq!(step(&d, "call.ringing").await, 202);
    assert_eq!(step(&d, "call.answered").await, 202);
    assert_eq!(step(&d, "call.hangup").await, 202);
    until_field(&sim, "category").await;
    assert_eq!(screen_pop(&d, "a1").await.0, 404, "the contact ended");
    assert_eq!(step(&d, "call.recording").await, 202);
    let description = until_field(&sim, "description").await;
    assert_eq!(description, "Recording: https://rec.example/call-7");
    assert_one_record_updated_twice(&sim, &id);
    assert_eq!(sim.tokens_issued(), 1, "the token is cached");
    d.stop().await;
    graph.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_for_as_long_as_retry_after_asks() {
    let graph = tenant(1).await;
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let d = start(&graph, &sim, &dir, CONNECTOR).await;
    sim.throttle(1, 2);
    assert_eq!(step(&d, "call.ringing").await, 202);
    phonecall(&sim).await;
    let log = requests(&sim);
    assert_eq!(log[0], ("POST".into(), "phonecalls".into(), 429));
    assert_eq!(log[1], ("POST".into(), "phonecalls".into(), 201));
    assert!(
        gap(&sim, 0, 1) >= Duration::from_secs(2),
        "sent again {:?} after a Retry-After of 2 s",
        gap(&sim, 0, 1)
    );
    d.stop().await;
    graph.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_steps_resumes_without_a_second_record() {
    let graph = tenant(1).await;
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let d = start(&graph, &sim, &dir, CONNECTOR).await;
    assert_eq!(step(&d, "call.ringing").await, 202);
    assert_eq!(step(&d, "call.answered").await, 202);
    let id = phonecall(&sim).await;
    // The update is throttled, and the daemon stops while it waits.
    sim.throttle(1, 3);
    assert_eq!(step(&d, "call.hangup").await, 202);
    until("the throttled update", || async {
        requests(&sim).iter().any(|(_, _, s)| *s == 429)
    })
    .await;
    d.stop().await;

    // Same SQLite file: the waiting update runs once due; redeliveries add nothing.
    let d = start(&graph, &sim, &dir, CONNECTOR).await;
    assert_eq!(step(&d, "call.ringing").await, 202);
    assert_eq!(step(&d, "call.hangup").await, 202);
    within("the update after the restart", 30, || async {
        sim.records("phonecalls")[&id].contains_key("category")
    })
    .await;
    assert_eq!(step(&d, "call.recording").await, 202);
    until_field(&sim, "description").await;
    assert_one_record_updated_twice(&sim, &id);
    d.stop().await;
    graph.shutdown().await;
}

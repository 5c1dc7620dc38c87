//! Amazon Connect: agent event stream and contact-record stream records from the fake Kinesis.

use super::*;
use crate::connectors_amazon_contacts::spawn_connect;
use crate::contact_states::amazon::{
    AGENT, contact_record, kinesis_connector, kinesis_fake, on, one_agent, step,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amazon_connect_call_creates_one_phone_call_and_updates_it_twice() {
    let graph = tenant(1).await;
    let fake = kinesis_fake().await;
    let connect = spawn_connect(one_agent()).await;
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let d = start(&graph, &sim, &dir, &kinesis_connector(&connect, &fake)).await;
    d.matched(1).await;

    step(&fake, "e1", on("c-1", None), on("c-1", Some("CONNECTING")));
    let id = phonecall(&sim).await;
    step(
        &fake,
        "e2",
        on("c-1", Some("CONNECTING")),
        on("c-1", Some("CONNECTED")),
    );
    until_screen_pop(&d, &sim, AGENT, &id).await;
    step(
        &fake,
        "e3",
        on("c-1", Some("CONNECTED")),
        on("c-1", Some("ENDED")),
    );
    until_field(&sim, "category").await;
    step(&fake, "e4", on("c-1", Some("ENDED")), on("c-1", None));
    contact_record(&fake, "c-1");
    until_field(&sim, "description").await;
    assert_one_record_updated_twice(&sim, &id);
    d.stop().await;
    graph.shutdown().await;
}

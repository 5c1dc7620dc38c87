//! Genesys Cloud: a conversation seen over the Notifications WebSocket of the fake.

use presence_bridge::sim::genesys::{self, VoiceCall};

use super::*;
use crate::contact_states::genesys::{connector, subscribed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genesys_call_creates_one_phone_call_and_updates_it_twice() {
    let graph = tenant(1).await;
    let fake = genesys::spawn(1, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let d = start(&graph, &sim, &dir, &connector(&fake)).await;
    d.matched(1).await;
    subscribed(&fake, 1).await;

    let mut call = VoiceCall::new("conv-1");
    call.recording = true;
    fake.call("user-1", &call);
    let id = phonecall(&sim).await;
    fake.call("user-1", &call.clone().state("connected"));
    until_screen_pop(&d, &sim, "user-1", &id).await;
    fake.call("user-1", &call.clone().state("disconnected"));
    until_field(&sim, "category").await;
    until_field(&sim, "description").await;
    assert_one_record_updated_twice(&sim, &id);
    d.stop().await;
    graph.shutdown().await;
}

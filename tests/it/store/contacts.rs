//! Contact events in the store, on both backends: stored once, read back per contact in the
//! order they happened, bounded by the agent's most recent contacts, and pruned.

use presence_bridge::model::contact_center::{Channel, ContactEvent, ContactEventKind};

use super::*;

fn event(contact: &str, kind: ContactEventKind, secs: i64, agent: Option<&str>) -> ContactEvent {
    ContactEvent {
        contact_id: contact.into(),
        kind,
        at: t(secs),
        channel: Some(Channel::Voice),
        agent_id: agent.map(Into::into),
        queue: Some("Support".into()),
        customer_endpoint: Some("tel:+15550100".into()),
        recording_url: None,
        event_id: None,
        attributes: serde_json::Map::new(),
    }
}

store_suite! {
    async fn contact_events_are_stored_once_and_read_in_order(db: TestDb) {
        use ContactEventKind::*;
        let s = db.open().await;
        // Delivered out of order, one twice, one redelivered under its event id.
        let mut rec = event("c1", RecordingAvailable, 40, None);
        rec.event_id = Some("ev-rec".into());
        rec.recording_url = Some("https://rec.example/c1".into());
        let batch = vec![
            event("c1", Connected, 10, Some("a1")),
            event("c1", Offered, 5, Some("a1")),
            event("c1", Connected, 10, Some("a1")),
            rec.clone(),
        ];
        assert_eq!(s.contact_events_push("gen", &batch).await.unwrap(), [true, true, false, true]);
        let mut again = rec.clone();
        again.at = t(41);
        let later = vec![event("c1", Ended, 30, None), again];
        assert_eq!(s.contact_events_push("gen", &later).await.unwrap(), [true, false]);
        // The same contact id at another connector is another contact.
        assert_eq!(s.contact_events_push("http", &[event("c1", Offered, 5, Some("a1"))]).await.unwrap(), [true]);

        // Reopened (a restart): everything is still there.
        let s = db.open().await;
        let got = s.list_contact_events("a1", Some("gen"), 10).await.unwrap();
        let kinds: Vec<_> = got.iter().map(|e| e.event.kind).collect();
        assert_eq!(kinds, [Offered, Connected, Ended, RecordingAvailable]);
        assert_eq!(got[3].event, rec);
        assert!(got.iter().all(|e| e.connector == "gen"));
        assert_eq!(s.list_contact_events("a1", None, 10).await.unwrap().len(), 5);
        assert!(s.list_contact_events("a2", None, 10).await.unwrap().is_empty());
    }

    async fn contact_listing_is_bounded_to_the_newest_contacts(db: TestDb) {
        use ContactEventKind::*;
        let s = db.open().await;
        for i in 0..5 {
            let c = format!("c{i}");
            s.contact_events_push("gen", &[
                event(&c, Offered, i * 100, Some("a1")),
                event(&c, Ended, i * 100 + 50, None),
            ]).await.unwrap();
        }
        let got = s.list_contact_events("a1", None, 2).await.unwrap();
        let contacts: Vec<_> = got.iter().map(|e| e.event.contact_id.as_str()).collect();
        assert_eq!(contacts, ["c4", "c4", "c3", "c3"]);
    }

    async fn old_contact_events_are_pruned(db: TestDb) {
        use ContactEventKind::*;
        let s = db.open().await;
        s.contact_events_push("gen", &[event("c1", Offered, 0, Some("a1"))]).await.unwrap();
        let future = Utc::now() + Duration::minutes(1);
        assert_eq!(s.prune_contact_events(Utc::now() - Duration::days(1)).await.unwrap(), 0);
        assert_eq!(s.prune_contact_events(future).await.unwrap(), 1);
        assert!(s.list_contact_events("a1", None, 10).await.unwrap().is_empty());
    }
}

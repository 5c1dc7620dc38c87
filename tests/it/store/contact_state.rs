//! Per-contact state of the integrations, on both backends: replaced as a whole, read back
//! after a reopen, separate per integration, connector and contact, and pruned by age per
//! integration.

use presence_bridge::store::ContactStateRecord;
use serde_json::json;

use super::*;

fn record(
    integration: &str,
    contact: &str,
    state: serde_json::Value,
    secs: i64,
) -> ContactStateRecord {
    ContactStateRecord {
        integration: integration.into(),
        connector: "cc".into(),
        contact_id: contact.into(),
        state,
        updated_at: t(secs),
    }
}

store_suite! {
    async fn contact_state_is_replaced_kept_and_pruned(db: TestDb) {
        let s = db.open().await;
        assert_eq!(s.contact_state_get("dynamics:crm", "cc", "c1").await.unwrap(), None);
        s.contact_state_put(&record("dynamics:crm", "c1", json!({"done": {}}), 10)).await.unwrap();
        let done = json!({"captured": {"created": {"activityid": "a-1"}}});
        s.contact_state_put(&record("dynamics:crm", "c1", done.clone(), 20)).await.unwrap();
        s.contact_state_put(&record("dynamics:other", "c1", json!({"x": 1}), 5)).await.unwrap();
        s.contact_state_put(&record("dynamics:crm", "c2", json!({"y": 2}), 5)).await.unwrap();

        // Reopened (a restart): the latest state of each.
        let s = db.open().await;
        assert_eq!(
            s.contact_state_get("dynamics:crm", "cc", "c1").await.unwrap(),
            Some(record("dynamics:crm", "c1", done.clone(), 20))
        );
        assert_eq!(s.contact_state_get("dynamics:crm", "other", "c1").await.unwrap(), None);

        // Pruning one integration leaves the others and the newer records.
        assert_eq!(s.contact_state_prune("dynamics:crm", t(10)).await.unwrap(), 1);
        assert_eq!(s.contact_state_get("dynamics:crm", "cc", "c2").await.unwrap(), None);
        assert!(s.contact_state_get("dynamics:crm", "cc", "c1").await.unwrap().is_some());
        assert!(s.contact_state_get("dynamics:other", "cc", "c1").await.unwrap().is_some());
    }
}

//! `GET /api/v1/users` paged over HTTP, and the OpenAPI document.

use crate::helpers::{spawn_app_with, test_config};
use presence_bridge::store::UserRecord;
use serde_json::Value;

fn user(i: usize) -> UserRecord {
    let mut u = crate::store::user(&format!("t{i:03}"), None);
    u.display_name = Some(format!("Person {i:03}"));
    u.upn = format!("person{i:03}@example.com");
    u
}

#[tokio::test]
async fn users_are_paged_with_a_total_and_bad_parameters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(&dir);
    cfg.api.bearer_token = Some(secrecy::SecretString::from("t0ken"));
    let app = spawn_app_with(cfg, dir).await;
    let users: Vec<UserRecord> = (1..=25).rev().map(user).collect();
    app.store.upsert_users(&users).await.unwrap();
    let get = |q: &str| {
        let url = format!("{}/api/v1/users{q}", app.address);
        let client = app.client.clone();
        async move { client.get(url).bearer_auth("t0ken").send().await.unwrap() }
    };

    let body: Value = get("?per_page=10&page=3").await.json().await.unwrap();
    assert_eq!(body["total"], 25);
    assert_eq!(body["page"], 3);
    assert_eq!(body["per_page"], 10);
    let names: Vec<&str> = body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Person 021",
            "Person 022",
            "Person 023",
            "Person 024",
            "Person 025"
        ]
    );

    let body: Value = get("?query=person%20007&state=unmatched")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["total"], 1, "{body}");
    assert_eq!(body["users"][0]["sync_state"], "unmatched");

    for bad in [
        "?state=asleep",
        "?sort=mood",
        "?page=0",
        "?per_page=1001",
        "?page=x",
    ] {
        let res = get(bad).await;
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request", "{bad}: {body}");
    }

    // The OpenAPI document describes the endpoint and needs no token.
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let params: Vec<&str> = doc["paths"]["/api/v1/users"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        ["query", "state", "connector", "sort", "page", "per_page"]
    );
    app.shutdown().await;
}

#[tokio::test]
async fn users_carry_the_contact_activity_and_take_a_sort() {
    use presence_bridge::engine::UserState;
    use presence_bridge::model::contact_center::{Activity, Channel, ContactActivity};

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(&dir);
    cfg.api.bearer_token = Some(secrecy::SecretString::from("t0ken"));
    let app = spawn_app_with(cfg, dir).await;
    let mut busy = crate::store::user("t1", Some("a1"));
    busy.display_name = Some("Busy Agent".into());
    let mut free = crate::store::user("t2", Some("a2"));
    free.display_name = Some("Free Agent".into());
    app.store.upsert_users(&[busy, free]).await.unwrap();
    let on_call = UserState {
        cc_activity: Some(Activity {
            activity: ContactActivity::OnContact,
            channel: Some(Channel::Voice),
        }),
        ..Default::default()
    };
    let suspended = UserState {
        suspended_until: Some(chrono::Utc::now().timestamp_millis() + 600_000),
        ..Default::default()
    };
    app.store
        .save_user_states(&[
            ("t1".into(), serde_json::to_value(&on_call).unwrap().into()),
            (
                "t2".into(),
                serde_json::to_value(&suspended).unwrap().into(),
            ),
        ])
        .await
        .unwrap();
    let get = |q: &str| {
        let url = format!("{}/api/v1/users{q}", app.address);
        let client = app.client.clone();
        async move {
            let res = client.get(url).bearer_auth("t0ken").send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let body = get("?query=t1").await;
    assert_eq!(
        body["users"][0]["contact_activity"],
        serde_json::json!({ "activity": "on_contact", "channel": "voice" }),
        "{body}"
    );
    let body = get("?query=t2").await;
    assert!(body["users"][0]["contact_activity"].is_null(), "{body}");

    let names = |body: &Value| -> Vec<String> {
        body["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u["display_name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        names(&get("?sort=name").await),
        ["Busy Agent", "Free Agent"]
    );
    assert_eq!(
        names(&get("?sort=state").await),
        ["Free Agent", "Busy Agent"]
    );
    app.shutdown().await;
}

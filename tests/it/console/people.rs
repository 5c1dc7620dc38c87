//! The paged team query behind `GET /api/v1/users` and the team page: its order, filters,
//! search and total, on SQLite and Postgres.

use chrono::{Duration, Utc};
use presence_bridge::engine::UserState;
use presence_bridge::engine::state::Pending;
use presence_bridge::store::people::{PeopleQuery, PeopleSort, PeopleState, Person};
use presence_bridge::store::{AgentRecord, Store};

use crate::store::{TestDb, user, with_postgres, with_sqlite};

fn named(
    id: &str,
    name: Option<&str>,
    connector: Option<&str>,
    agent: Option<&str>,
) -> presence_bridge::store::UserRecord {
    let mut u = user(id, agent);
    u.display_name = name.map(Into::into);
    u.upn = format!(
        "{}@example.com",
        name.map(|n| n.to_lowercase().replace(' ', "."))
            .unwrap_or_else(|| "zeta".into())
    );
    u.cc_connector = connector.map(Into::into);
    u
}

fn agent(connector: &str, id: &str, name: &str) -> AgentRecord {
    AgentRecord {
        connector: connector.into(),
        agent_id: id.into(),
        email: Some(format!("{id}@cc.example.com")),
        username: None,
        display_name: Some(name.into()),
        updated_at: Utc::now(),
    }
}

async fn seed(store: &dyn Store) {
    let mut gone = named("u4", Some("Dee Gone"), Some("cc"), Some("a4"));
    gone.active = false;
    store
        .upsert_users(&[
            named("u1", Some("Bob"), None, None),
            named("u2", Some("Cy Holding"), Some("other"), Some("a2")),
            named("u3", Some("Ann Suspended"), Some("cc"), Some("a3")),
            named("u5", None, None, None),
            named("u6", Some("Dan Ok"), Some("cc"), Some("a6")),
            gone,
        ])
        .await
        .unwrap();
    store
        .replace_agents(
            "cc",
            &[
                agent("cc", "a3", "Ann S"),
                agent("cc", "a6", "Dan O"),
                agent("cc", "a4", "Dee G"),
                agent("cc", "a9", "Eve Agent"),
            ],
        )
        .await
        .unwrap();
    store
        .replace_agents("other", &[agent("other", "a2", "Cy H")])
        .await
        .unwrap();
    let now = Utc::now().timestamp_millis();
    let suspended = UserState {
        suspended_until: Some(now + 600_000),
        ..Default::default()
    };
    let mut holding = UserState::default();
    holding.t2c.pending = Some(Pending {
        rule: Some(0),
        due: now + 10_000,
    });
    let was_suspended = UserState {
        suspended_until: Some(now - 1_000),
        ..Default::default()
    };
    store
        .save_user_states(&[
            (
                "u3".into(),
                serde_json::to_value(&suspended).unwrap().into(),
            ),
            ("u2".into(), serde_json::to_value(&holding).unwrap().into()),
            (
                "u6".into(),
                serde_json::to_value(&was_suspended).unwrap().into(),
            ),
        ])
        .await
        .unwrap();
}

fn q(
    query: &str,
    state: Option<PeopleState>,
    connector: Option<&str>,
    page: u32,
    per_page: u32,
) -> PeopleQuery {
    PeopleQuery {
        query: query.into(),
        state,
        connector: connector.map(Into::into),
        sort: PeopleSort::Name,
        page,
        per_page,
        now: Utc::now() + Duration::milliseconds(0),
    }
}

/// Each person's key: the Teams id, else `connector/agent`.
async fn keys(store: &dyn Store, query: PeopleQuery) -> (Vec<String>, u64) {
    let page = store.list_people(&query).await.unwrap();
    let keys = page
        .people
        .iter()
        .map(|p| match p {
            Person::User(u) => u.user.teams_id.clone(),
            Person::Agent(a) => format!("{}/{}", a.connector, a.agent_id),
        })
        .collect();
    (keys, page.total)
}

async fn order_filters_and_total(db: TestDb) {
    let store = db.open().await;
    let store = store.as_ref();
    seed(store).await;
    let all = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    // Active users by name (the UPN without one), then agents matched to no active user
    // (the inactive user's agent is listed as an agent).
    assert_eq!(
        keys(store, q("", None, None, 1, 100)).await,
        (all(&["u3", "u1", "u2", "u6", "u5", "cc/a4", "cc/a9"]), 7)
    );
    // Pages cut across both parts, the total stays.
    assert_eq!(
        keys(store, q("", None, None, 2, 3)).await,
        (all(&["u6", "u5", "cc/a4"]), 7)
    );
    assert_eq!(
        keys(store, q("", None, None, 3, 3)).await,
        (all(&["cc/a9"]), 7)
    );
    assert_eq!(keys(store, q("", None, None, 4, 3)).await, (all(&[]), 7));

    // Search: name, UPN, agent id, agent e-mail; case-insensitive; LIKE characters literal.
    assert_eq!(
        keys(store, q("ann", None, None, 1, 100)).await,
        (all(&["u3"]), 1)
    );
    assert_eq!(
        keys(store, q("BOB@EXAMPLE", None, None, 1, 100)).await,
        (all(&["u1"]), 1)
    );
    assert_eq!(
        keys(store, q("a9", None, None, 1, 100)).await,
        (all(&["cc/a9"]), 1)
    );
    assert_eq!(
        keys(store, q("a6", None, None, 1, 100)).await,
        (all(&["u6"]), 1)
    );
    assert_eq!(keys(store, q("%", None, None, 1, 100)).await, (all(&[]), 0));

    // States: judged now from the engine's state (a suspension that ran out is ok).
    assert_eq!(
        keys(store, q("", Some(PeopleState::Suspended), None, 1, 100)).await,
        (all(&["u3"]), 1)
    );
    assert_eq!(
        keys(store, q("", Some(PeopleState::Holding), None, 1, 100)).await,
        (all(&["u2"]), 1)
    );
    assert_eq!(
        keys(store, q("", Some(PeopleState::Ok), None, 1, 100)).await,
        (all(&["u6"]), 1)
    );
    assert_eq!(
        keys(store, q("", Some(PeopleState::Unmatched), None, 1, 100)).await,
        (all(&["u1", "u5"]), 2)
    );
    assert_eq!(
        keys(store, q("", Some(PeopleState::NoTeamsUser), None, 1, 100)).await,
        (all(&["cc/a4", "cc/a9"]), 2)
    );

    // Connector: users matched on it and its unmatched agents.
    assert_eq!(
        keys(store, q("", None, Some("cc"), 1, 100)).await,
        (all(&["u3", "u6", "cc/a4", "cc/a9"]), 4)
    );
    assert_eq!(
        keys(store, q("", None, Some("other"), 1, 100)).await,
        (all(&["u2"]), 1)
    );

    // Statuses come with the row.
    store
        .put_observed(&[presence_bridge::store::ObservedStatus {
            user_id: "u3".into(),
            side: presence_bridge::model::Side::Teams,
            status: serde_json::json!({"side": "teams", "availability": "Busy", "activity": "InACall"}),
            observed_at: Utc::now(),
            source: "graph_poll".into(),
        }])
        .await
        .unwrap();
    let page = store
        .list_people(&q("ann", None, None, 1, 10))
        .await
        .unwrap();
    match &page.people[0] {
        Person::User(u) => {
            assert_eq!(u.teams.as_ref().unwrap().status["activity"], "InACall");
            assert!(u.contact_center.is_none());
            assert!(u.engine_state.is_some());
        }
        other => panic!("not a user: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_order_filters_and_total_sqlite() {
    with_sqlite(order_filters_and_total).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_order_filters_and_total_postgres() {
    with_postgres(module_path!(), order_filters_and_total).await
}

fn observed(
    user: &str,
    side: presence_bridge::model::Side,
    secs_ago: i64,
) -> presence_bridge::store::ObservedStatus {
    let status = match side {
        presence_bridge::model::Side::Teams => {
            serde_json::json!({"side": "teams", "availability": "Available", "activity": "Available"})
        }
        presence_bridge::model::Side::ContactCenter => {
            serde_json::json!({"side": "contact_center", "id": "available", "name": "Available"})
        }
    };
    presence_bridge::store::ObservedStatus {
        user_id: user.into(),
        side,
        status,
        observed_at: Utc::now() - Duration::seconds(secs_ago),
        source: "reconcile".into(),
    }
}

async fn sorted(db: TestDb) {
    use presence_bridge::model::Side::{ContactCenter, Teams};
    let store = db.open().await;
    let store = store.as_ref();
    seed(store).await;
    let all = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let by = |sort: PeopleSort, page: u32, per_page: u32| PeopleQuery {
        sort,
        ..q("", None, None, page, per_page)
    };

    // By state: needing attention first (suspended, holding, unmatched, ok), ties by name,
    // then the agents without a Teams user; pages cut the same order.
    assert_eq!(
        keys(store, by(PeopleSort::State, 1, 100)).await,
        (all(&["u3", "u2", "u1", "u5", "u6", "cc/a4", "cc/a9"]), 7)
    );
    assert_eq!(
        keys(store, by(PeopleSort::State, 2, 2)).await,
        (all(&["u1", "u5"]), 7)
    );

    // By last change: the newer side's time, newest first; never seen last, by name.
    store
        .put_observed(&[
            observed("u2", Teams, 30),
            observed("u2", ContactCenter, 1),
            observed("u6", Teams, 10),
            observed("u1", ContactCenter, 20),
        ])
        .await
        .unwrap();
    assert_eq!(
        keys(store, by(PeopleSort::LastChange, 1, 100)).await,
        (all(&["u2", "u6", "u1", "u3", "u5", "cc/a4", "cc/a9"]), 7)
    );
    assert_eq!(
        keys(store, by(PeopleSort::LastChange, 2, 3)).await,
        (all(&["u3", "u5", "cc/a4"]), 7)
    );
    // The default stays by name, and filters apply to every order.
    assert_eq!(
        keys(store, by(PeopleSort::Name, 1, 3)).await,
        (all(&["u3", "u1", "u2"]), 7)
    );
    let unmatched = PeopleQuery {
        sort: PeopleSort::LastChange,
        ..q("", Some(PeopleState::Unmatched), None, 1, 100)
    };
    assert_eq!(keys(store, unmatched).await, (all(&["u1", "u5"]), 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sorted_by_state_and_last_change_sqlite() {
    with_sqlite(sorted).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sorted_by_state_and_last_change_postgres() {
    with_postgres(module_path!(), sorted).await
}

//! The Graph client against the simulated tenant over HTTP, and against wiremock where the exact
//! request shape is asserted against Microsoft's samples.

use std::time::Duration;

use presence_bridge::graph::config::{AssertionAlgorithm, GraphConfig};
use presence_bridge::graph::{GraphClient, GraphError, PresenceApi};
use presence_bridge::sim::graph::{
    FaultKind, FaultRule, SimGraphHandle, SimGraphOptions, SimUser, spawn,
};
use secrecy::SecretString;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn sample(name: &str) -> Value {
    let text =
        std::fs::read_to_string(format!("{FIXTURES}/graph-samples/{name}")).expect("sample exists");
    serde_json::from_str(&text).expect("sample parses")
}

pub fn client_config(sim: &SimGraphHandle) -> GraphConfig {
    let o = &sim.state.options;
    GraphConfig {
        tenant_id: Some(o.tenant_id.clone()),
        client_id: Some(o.client_id.clone()),
        client_secret: o.client_secret.clone().map(SecretString::from),
        base_url: sim.base_url.parse().unwrap(),
        authority_url: sim.authority_url.parse().unwrap(),
        ..GraphConfig::default()
    }
}

pub async fn sim_with_users(n: usize) -> SimGraphHandle {
    let sim = spawn(SimGraphOptions::default()).await;
    for i in 0..n {
        sim.state.upsert_user(SimUser::licensed(
            &user_id(i),
            &format!("user{i}@contoso.example"),
        ));
    }
    sim
}

pub fn user_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

async fn setup(n: usize) -> (SimGraphHandle, GraphClient) {
    let sim = sim_with_users(n).await;
    let client = GraphClient::new(&client_config(&sim), None).expect("client builds");
    (sim, client)
}

#[tokio::test(start_paused = true)]
async fn token_is_cached_shared_and_refreshed_ahead_of_expiry() {
    let opts = SimGraphOptions {
        token_lifetime_secs: 1200,
        ..SimGraphOptions::default()
    };
    let sim = spawn(opts).await;
    sim.state
        .upsert_user(SimUser::licensed(&user_id(1), "a@contoso.example"));
    let client = GraphClient::new(&client_config(&sim), None).unwrap();
    let id = user_id(1);
    let calls: Vec<_> = (0..10).map(|_| client.get_presence(&id)).collect();
    for r in futures::future::join_all(calls).await {
        r.expect("read works");
    }
    assert_eq!(
        sim.state.tokens_issued("client_credentials"),
        1,
        "one refresh shared"
    );
    // 1200 s lifetime, 300 s margin: still cached at 800 s, renewed after 900 s.
    tokio::time::advance(Duration::from_secs(800)).await;
    client.get_presence(&user_id(1)).await.unwrap();
    assert_eq!(sim.state.tokens_issued("client_credentials"), 1);
    tokio::time::advance(Duration::from_secs(150)).await;
    client.get_presence(&user_id(1)).await.unwrap();
    assert_eq!(sim.state.tokens_issued("client_credentials"), 2);
}

#[tokio::test]
async fn a_401_refreshes_once_then_fails_typed() {
    let (sim, client) = setup(1).await;
    client.get_presence(&user_id(0)).await.unwrap();
    sim.state.revoke_access_tokens();
    client
        .get_presence(&user_id(0))
        .await
        .expect("refresh and retry");
    assert_eq!(sim.state.tokens_issued("client_credentials"), 2);
    sim.state.reject_all_tokens(true);
    let err = client.get_presence(&user_id(0)).await.unwrap_err();
    assert!(matches!(err, GraphError::Unauthorized(_)), "{err:?}");
    assert_eq!(
        sim.state.tokens_issued("client_credentials"),
        3,
        "only one refresh"
    );
}

#[tokio::test]
async fn wrong_secret_is_a_typed_unauthorized_error() {
    let sim = sim_with_users(1).await;
    let mut cfg = client_config(&sim);
    cfg.client_secret = Some(SecretString::from("wrong".to_owned()));
    let client = GraphClient::new(&cfg, None).unwrap();
    let err = client.get_presence(&user_id(0)).await.unwrap_err();
    match err {
        GraphError::Unauthorized(m) => assert!(m.contains("invalid_client"), "{m}"),
        other => panic!("{other:?}"),
    }
}

async fn certificate_auth_works(alg: AssertionAlgorithm) {
    let opts = SimGraphOptions {
        client_secret: None,
        certificate_pem: Some(
            std::fs::read_to_string(format!("{FIXTURES}/graph-app.crt.pem")).unwrap(),
        ),
        ..SimGraphOptions::default()
    };
    let sim = spawn(opts).await;
    sim.state
        .upsert_user(SimUser::licensed(&user_id(0), "a@contoso.example"));
    let mut cfg = client_config(&sim);
    cfg.certificate_file = Some(format!("{FIXTURES}/graph-app.crt.pem").into());
    cfg.certificate_key_file = Some(format!("{FIXTURES}/graph-app.key.pem").into());
    cfg.assertion_algorithm = alg;
    let client = GraphClient::new(&cfg, None).unwrap();
    client
        .get_presence(&user_id(0))
        .await
        .expect("assertion accepted");
    assert_eq!(sim.state.tokens_issued("client_credentials"), 1);
}

#[tokio::test]
async fn certificate_assertion_ps256_is_accepted() {
    certificate_auth_works(AssertionAlgorithm::PS256).await;
}

#[tokio::test]
async fn certificate_assertion_rs256_is_accepted() {
    certificate_auth_works(AssertionAlgorithm::RS256).await;
}

#[tokio::test]
async fn presence_for_1300_users_is_read_in_two_calls() {
    let (sim, client) = setup(1300).await;
    sim.state
        .set_user_status(&user_id(7), Some(("Busy", "InACall")));
    let ids: Vec<String> = (0..1300).map(user_id).collect();
    let got = client.get_presences(&ids).await.unwrap();
    assert_eq!(got.len(), 1300);
    assert_eq!(sim.state.request_count("getPresencesByUserId"), 2);
    let (id, p) = &got[7];
    assert_eq!(id, &user_id(7));
    assert_eq!(
        (p.availability.as_str(), p.activity.as_str()),
        ("Busy", "InACall")
    );
    assert!(p.sequence.is_some());
    assert_eq!(got[0].1.availability, "Offline");
}

#[tokio::test]
async fn the_simulator_refuses_more_than_650_ids() {
    let (sim, client) = setup(1).await;
    let token = client.app_token().await.unwrap();
    let ids: Vec<String> = (0..651).map(user_id).collect();
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/communications/getPresencesByUserId",
            sim.base_url
        ))
        .bearer_auth(secrecy::ExposeSecret::expose_secret(&token))
        .json(&serde_json::json!({ "ids": ids }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn writes_reach_graph_and_aggregate_by_precedence() {
    let (sim, client) = setup(1).await;
    let u = user_id(0);
    sim.state
        .set_user_status(&u, Some(("Available", "Available")));
    client
        .set_presence(&u, "busy", "inacall", Duration::from_secs(3600))
        .await
        .unwrap();
    let p = client.get_presence(&u).await.unwrap();
    assert_eq!(
        (p.availability.as_str(), p.activity.as_str()),
        ("Busy", "InACall")
    );
    // The user's own DoNotDisturb beats the app's Busy.
    sim.state
        .set_user_status(&u, Some(("DoNotDisturb", "DoNotDisturb")));
    assert_eq!(
        client.get_presence(&u).await.unwrap().availability,
        "DoNotDisturb"
    );
    // Preferred beats everything.
    client
        .set_user_preferred_presence(&u, "Away", "Away", None)
        .await
        .unwrap();
    assert_eq!(client.get_presence(&u).await.unwrap().availability, "Away");
    client.clear_user_preferred_presence(&u).await.unwrap();
    client.clear_presence(&u).await.unwrap();
    client
        .clear_presence(&u)
        .await
        .expect("404 on clear is success");
    assert_eq!(
        client.get_presence(&u).await.unwrap().activity,
        "DoNotDisturb"
    );
    client
        .set_status_message(&u, "On a customer call", None)
        .await
        .unwrap();
    let calls: Vec<String> = sim.state.writes().into_iter().map(|w| w.call).collect();
    assert_eq!(
        calls,
        [
            "setPresence",
            "setUserPreferredPresence",
            "clearUserPreferredPresence",
            "clearPresence",
            "setStatusMessage"
        ]
    );
    let first = &sim.state.writes()[0].body;
    assert_eq!(first["sessionId"], sim.state.options.client_id.as_str());
    assert_eq!(first["availability"], "Busy");
    assert_eq!(first["activity"], "InACall");
}

#[tokio::test]
async fn disallowed_pairs_and_expirations_are_rejected_before_sending() {
    let (sim, client) = setup(1).await;
    let u = user_id(0);
    let err = client
        .set_presence(&u, "Busy", "InAMeeting", Duration::from_secs(600))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, GraphError::InvalidPresence(_)));
    assert!(
        msg.contains("Busy/InACall") && msg.contains("DoNotDisturb/Presenting"),
        "{msg}"
    );
    let err = client
        .set_presence(&u, "Available", "Available", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("PT5M"), "{err}");
    let err = client
        .set_user_preferred_presence(&u, "Busy", "InACall", None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Offline/OffWork"), "{err}");
    assert!(sim.state.writes().is_empty());
    assert_eq!(sim.state.request_count("/presence/"), 0);
}

#[tokio::test(start_paused = true)]
async fn throttling_waits_for_retry_after() {
    let (sim, client) = setup(1).await;
    sim.state.inject_fault(FaultRule {
        path_contains: "/presence".into(),
        remaining: 2,
        kind: FaultKind::Status {
            status: 429,
            retry_after_secs: Some(10),
        },
    });
    let start = tokio::time::Instant::now();
    client
        .get_presence(&user_id(0))
        .await
        .expect("succeeds after waiting");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(21),
        "{waited:?}"
    );
    assert_eq!(sim.state.request_count("/presence"), 3);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_bound_is_returned_to_the_caller() {
    let (sim, client) = setup(1).await;
    sim.state.inject_fault(FaultRule {
        path_contains: "/presence".into(),
        remaining: 1,
        kind: FaultKind::Status {
            status: 503,
            retry_after_secs: Some(600),
        },
    });
    let err = client.get_presence(&user_id(0)).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(600)));
}

#[tokio::test(start_paused = true)]
async fn server_errors_and_dropped_connections_back_off_then_give_up() {
    let (sim, client) = setup(1).await;
    sim.state.inject_fault(FaultRule {
        path_contains: "/presence".into(),
        remaining: 1,
        kind: FaultKind::Status {
            status: 500,
            retry_after_secs: None,
        },
    });
    sim.state.inject_fault(FaultRule {
        path_contains: "/presence".into(),
        remaining: 1,
        kind: FaultKind::Drop,
    });
    let start = tokio::time::Instant::now();
    client
        .get_presence(&user_id(0))
        .await
        .expect("third try works");
    // Backoff: 250–500 ms, then 500–1000 ms.
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(750) && waited <= Duration::from_millis(1500),
        "{waited:?}"
    );
    sim.state.inject_fault(FaultRule {
        path_contains: "/presence".into(),
        remaining: 10,
        kind: FaultKind::Status {
            status: 502,
            retry_after_secs: None,
        },
    });
    let err = client.get_presence(&user_id(0)).await.unwrap_err();
    assert!(matches!(err, GraphError::Server { status: 502 }), "{err:?}");
    assert_eq!(
        sim.state.request_count("/presence"),
        3 + 5,
        "1 try + 4 retries"
    );
}

#[tokio::test(start_paused = true)]
async fn the_simulators_budget_answers_429_and_the_client_paces_itself() {
    let (sim, client) = setup(1).await;
    sim.state
        .set_budgets(vec![presence_bridge::sim::graph::Budget {
            path_contains: "presence".into(),
            limit: 3,
            window_secs: 30,
            window_start: None,
            used: 0,
        }]);
    for _ in 0..3 {
        client.get_presence(&user_id(0)).await.unwrap();
    }
    let err = reqwest::Client::new()
        .get(format!("{}/users/{}/presence", sim.base_url, user_id(0)))
        .bearer_auth(secrecy::ExposeSecret::expose_secret(
            &client.app_token().await.unwrap(),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(err.status(), 429);
    assert!(err.headers().get("retry-after").is_some());
    let body: Value = err.json().await.unwrap();
    assert_eq!(
        body["error"]["code"],
        sample("throttling-429-response-body.json")["error"]["code"]
    );
}

mod shapes {
    //! Request bodies compared with Microsoft's samples, field for field.
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const SAMPLE_APP: &str = "22553876-f5ab-4529-bffb-cfe50aa89f87";

    async fn mock_graph() -> (MockServer, GraphClient) {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/tenant/oauth2/v2.0/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "token_type": "Bearer", "expires_in": 3599, "access_token": "tok-shape"})))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(sample("presence-getPresencesByUserId-response.json")),
            )
            .mount(&server)
            .await;
        let cfg = GraphConfig {
            tenant_id: Some("tenant".into()),
            client_id: Some(SAMPLE_APP.into()),
            client_secret: Some(SecretString::from("s3cr3t-shape".to_owned())),
            base_url: format!("{}/v1.0", server.uri()).parse().unwrap(),
            authority_url: server.uri().parse().unwrap(),
            ..GraphConfig::default()
        };
        (server, GraphClient::new(&cfg, None).unwrap())
    }

    async fn body_of(server: &MockServer, suffix: &str) -> Value {
        let reqs = server.received_requests().await.unwrap();
        let r = reqs
            .iter()
            .rev()
            .find(|r| r.url.path().ends_with(suffix))
            .unwrap_or_else(|| panic!("no request to {suffix}"));
        serde_json::from_slice(&r.body).unwrap()
    }

    #[tokio::test]
    async fn write_bodies_match_the_samples() {
        let (server, client) = mock_graph().await;
        let u = "fa8bf3dc-eca7-46b7-bad1-db199b62afc3";
        client
            .set_presence(u, "Available", "Available", Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(
            body_of(&server, "/setPresence").await,
            sample("presence-setPresence-request.json")
        );
        client.clear_presence(u).await.unwrap();
        assert_eq!(
            body_of(&server, "/clearPresence").await,
            sample("presence-clearPresence-request.json")
        );
        client
            .set_user_preferred_presence(
                u,
                "DoNotDisturb",
                "DoNotDisturb",
                Some(Duration::from_secs(8 * 3600)),
            )
            .await
            .unwrap();
        assert_eq!(
            body_of(&server, "/setUserPreferredPresence").await,
            sample("presence-setUserPreferredPresence-request.json")
        );
        client.clear_user_preferred_presence(u).await.unwrap();
        assert_eq!(
            body_of(&server, "/clearUserPreferredPresence").await,
            sample("presence-clearUserPreferredPresence-request.json")
        );
        client
            .set_status_message(u, "Hey I am available now", None)
            .await
            .unwrap();
        assert_eq!(
            body_of(&server, "/setStatusMessage").await,
            sample("presence-setStatusMessage-request-no-expiry.json")
        );
        let at = chrono::Utc::now();
        client
            .set_status_message(u, "Hey I'm currently in a meeting.", Some(at))
            .await
            .unwrap();
        let got = body_of(&server, "/setStatusMessage").await;
        let want = sample("presence-setStatusMessage-request-with-expiry.json");
        assert_eq!(
            got["statusMessage"]["message"],
            want["statusMessage"]["message"]
        );
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(&got["statusMessage"]["expiryDateTime"]),
            keys(&want["statusMessage"]["expiryDateTime"])
        );
        assert_eq!(got["statusMessage"]["expiryDateTime"]["timeZone"], "UTC");
    }

    #[tokio::test]
    async fn read_body_matches_the_sample_and_the_token_request_is_form_encoded() {
        let (server, client) = mock_graph().await;
        let ids = vec![
            "fa8bf3dc-eca7-46b7-bad1-db199b62afc3".to_owned(),
            "66825e03-7ef5-42da-9069-724602c31f6b".to_owned(),
        ];
        let got = client.get_presences(&ids).await.unwrap();
        assert_eq!(
            body_of(&server, "/getPresencesByUserId").await,
            sample("presence-getPresencesByUserId-request.json")
        );
        assert_eq!(got[0].1.activity, "InAMeeting");
        let reqs = server.received_requests().await.unwrap();
        let token = reqs
            .iter()
            .find(|r| r.url.path().ends_with("/token"))
            .unwrap();
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&token.body)
                .into_owned()
                .collect();
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["client_id"], SAMPLE_APP);
        assert_eq!(form["client_secret"], "s3cr3t-shape");
        assert_eq!(form["scope"], format!("{}/.default", server.uri()));
        let read = reqs
            .iter()
            .find(|r| r.url.path().ends_with("/getPresencesByUserId"))
            .unwrap();
        assert_eq!(
            read.headers.get("authorization").unwrap(),
            "Bearer tok-shape"
        );
    }
}

mod accounts;
mod app;
mod directory;

#[tokio::test(start_paused = true)]
async fn a_request_that_times_out_is_retried() {
    let sim = sim_with_users(1).await;
    let mut cfg = client_config(&sim);
    cfg.request_timeout_secs = 2;
    let client = GraphClient::new(&cfg, None).unwrap();
    client.get_presence(&user_id(0)).await.unwrap();
    sim.state.inject_fault(FaultRule {
        path_contains: "/presence".into(),
        remaining: 1,
        kind: FaultKind::Delay { ms: 60_000 },
    });
    client
        .get_presence(&user_id(0))
        .await
        .expect("the retry answers");
    assert_eq!(sim.state.request_count("/presence"), 3);
}

#[tokio::test]
async fn the_control_api_drives_users_status_and_the_clock() {
    let (sim, client) = setup(0).await;
    let http = reqwest::Client::new();
    let c = &sim.control_url;
    let u = user_id(42);
    let user = serde_json::json!({"id": u, "userPrincipalName": "ctl@contoso.example",
        "assignedPlans": [{"servicePlanId": presence_bridge::graph::config::TEAMS1_PLAN_ID,
        "capabilityStatus": "Enabled"}]});
    let r = http
        .post(format!("{c}/users"))
        .json(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .post(format!("{c}/users/{u}/status"))
        .json(&serde_json::json!({"availability": "Away", "activity": "Away"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(client.get_presence(&u).await.unwrap().availability, "Away");
    client
        .set_presence(&u, "Available", "Available", Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(client.get_presence(&u).await.unwrap().activity, "Available");
    let r = http
        .post(format!("{c}/clock/advance"))
        .json(&serde_json::json!({"secs": 360}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        client.get_presence(&u).await.unwrap().activity,
        "AvailableInactive",
        "faded after 5 min"
    );
    let writes: Vec<Value> = http
        .get(format!("{c}/writes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0]["call"], "setPresence");
    let r = http
        .post(format!("{c}/users/{u}/licence"))
        .json(&serde_json::json!({"service_plan_id": presence_bridge::graph::config::TEAMS1_PLAN_ID, "enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let users = client
        .list_teams_users(&client.config().teams_service_plan_ids)
        .await
        .unwrap();
    assert!(users.is_empty());
    let r = http.delete(format!("{c}/users/{u}")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(matches!(
        client.get_presence(&u).await,
        Err(GraphError::NotFound)
    ));
    sim.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_early_refresh_keeps_using_the_live_token() {
    let opts = SimGraphOptions {
        token_lifetime_secs: 1200,
        ..SimGraphOptions::default()
    };
    let sim = spawn(opts).await;
    sim.state
        .upsert_user(SimUser::licensed(&user_id(0), "a@contoso.example"));
    let health = presence_bridge::model::health::HealthRegistry::new();
    let client = GraphClient::new(&client_config(&sim), Some(health.clone())).unwrap();
    client.get_presence(&user_id(0)).await.unwrap();
    let state = |h: &presence_bridge::model::health::HealthRegistry| h.get("graph").unwrap().state;
    assert_eq!(
        state(&health),
        presence_bridge::model::health::HealthState::Up
    );
    sim.state.inject_fault(FaultRule {
        path_contains: "/oauth2/".into(),
        remaining: 100,
        kind: FaultKind::Status {
            status: 500,
            retry_after_secs: None,
        },
    });
    tokio::time::advance(Duration::from_secs(950)).await;
    client
        .get_presence(&user_id(0))
        .await
        .expect("old token still valid");
    assert_eq!(
        state(&health),
        presence_bridge::model::health::HealthState::Degraded
    );
    tokio::time::advance(Duration::from_secs(300)).await;
    assert!(client.get_presence(&user_id(0)).await.is_err());
    assert_eq!(
        state(&health),
        presence_bridge::model::health::HealthState::Down
    );
}

//! The Graph webhook receiver over real HTTP, with a real SQLite inbox: the handshake, good
//! rich and basic batches, and a table of bad inputs that each get their documented answer and
//! leave the inbox untouched.

pub(crate) mod e2e;

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use presence_bridge::app::Application;
use presence_bridge::graph::notifications::NotificationReceiver;
use presence_bridge::graph::notifications::config::CertificateConfig;
use presence_bridge::graph::notifications::crypto::{
    EncryptedContent, public_key_from_certificate_der,
};
use presence_bridge::model::{InboxPayload, Source, Status, TeamsPresence, TeamsRefresh};
use presence_bridge::sim::graph::encrypt::encrypt_for_notification;
use presence_bridge::sim::graph::tokens::{SIM_KID, TokenIssuer};
use presence_bridge::store::{self, Store, SubscriptionRecord};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const TENANT_ID: &str = "99999999-8888-7777-6666-555555555555";
const USER: &str = "6e5cf7c4-4ab8-4e1d-9c39-2d4e6f0a1b2c";
const SUB: &str = "sub-presence-0";
const STATE: &str = "k3Yq9-secret-client-state";
const USERS_SUB: &str = "sub-users";
const USERS_STATE: &str = "users-secret-client-state";

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/graph")
        .join(name)
}

/// `cert-a` is configured; `cert-b`'s key is not.
pub fn cert_config(n: u8, id: &str) -> CertificateConfig {
    CertificateConfig {
        id: id.into(),
        certificate_file: fixture(&format!("notify-cert-{n}.pem")),
        private_key_file: fixture(&format!("notify-key-{n}.pem")),
    }
}

pub fn encrypt(cert: u8, id: &str, plaintext: &[u8]) -> EncryptedContent {
    let pem = std::fs::read_to_string(fixture(&format!("notify-cert-{cert}.pem"))).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let public = public_key_from_certificate_der(&B64.decode(b64).unwrap()).unwrap();
    encrypt_for_notification(&public, id, plaintext).unwrap()
}

fn presence(user: &str, availability: &str, activity: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "@odata.id": format!("users/{user}/presence"),
        "@odata.type": "#microsoft.graph.presence",
        "id": user, "availability": availability, "activity": activity,
    }))
    .unwrap()
}

fn rich_item(sub: &str, state: &str, content: &EncryptedContent) -> Value {
    json!({
        "subscriptionId": sub, "clientState": state, "changeType": "updated",
        "tenantId": TENANT_ID, "resource": format!("communications/presences/{USER}"),
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z",
        "resourceData": {"@odata.id": format!("users/{USER}/presence"),
            "@odata.type": "#microsoft.graph.presence", "id": USER},
        "encryptedContent": content,
    })
}

fn basic_item(sub: &str, state: &str, user: &str) -> Value {
    json!({
        "subscriptionId": sub, "clientState": state, "changeType": "updated",
        "tenantId": TENANT_ID, "resource": format!("communications/presences/{user}"),
        "resourceData": {"id": user},
    })
}

struct Rig {
    url: String,
    store: Arc<dyn Store>,
    issuer: TokenIssuer,
    authority: String,
    http: reqwest::Client,
    _jwks: MockServer,
    dir: tempfile::TempDir,
    receiver: NotificationReceiver,
}

impl Rig {
    async fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = crate::helpers::test_config(&dir);
        cfg.graph.webhook.certificates = vec![cert_config(1, "cert-a")];
        cfg.graph.webhook.max_body_bytes = 64 * 1024;
        let store = store::open(&cfg.store).await.expect("store opens");
        let issuer = TokenIssuer::new();
        let jwks = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/common/discovery/v2.0/keys"))
            .respond_with(ResponseTemplate::new(200).set_body_json(issuer.jwks()))
            .mount(&jwks)
            .await;
        let authority = jwks.uri();
        // Validation tokens are checked against this tenant, app and authority (the JWKS mock).
        cfg.graph.tenant_id = Some(TENANT_ID.into());
        cfg.graph.client_id = Some(CLIENT_ID.into());
        cfg.graph.client_secret = Some("rig-secret".into());
        cfg.graph.authority_url = authority.parse().unwrap();
        cfg.graph.base_url = authority.parse().unwrap();
        for (id, kind, state) in [(SUB, "presence", STATE), (USERS_SUB, "users", USERS_STATE)] {
            store
                .upsert_subscription(&SubscriptionRecord {
                    id: id.into(),
                    kind: kind.into(),
                    shard: (kind == "presence").then_some(0),
                    account_id: None,
                    resource: "communications/presences".into(),
                    client_state: state.into(),
                    expires_at: chrono::Utc::now() + chrono::Duration::minutes(60),
                    created_at: chrono::Utc::now(),
                    last_renewed_at: None,
                    last_reauthorized_at: None,
                    state: "active".into(),
                    last_error: None,
                })
                .await
                .unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Application::builder(cfg)
            .listener(listener)
            .store(store.clone())
            .without_jobs()
            .build()
            .await
            .expect("daemon builds");
        let receiver = app.notifications().clone();
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        Rig {
            url,
            store,
            issuer,
            authority,
            http: reqwest::Client::new(),
            _jwks: jwks,
            dir,
            receiver,
        }
    }

    fn token(&self) -> String {
        self.issuer
            .validation_token(CLIENT_ID, TENANT_ID, &self.authority)
            .to_string()
    }

    fn claims(&self) -> Value {
        TokenIssuer::v2_claims(CLIENT_ID, TENANT_ID, &self.authority)
    }

    fn rich_batch(&self, content: &EncryptedContent) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "value": [rich_item(SUB, STATE, content)],
            "validationTokens": [self.token()],
        }))
        .unwrap()
    }

    async fn post(&self, query: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, String) {
        let mut req = self
            .http
            .post(format!("{}/graph/notifications{query}", self.url));
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let res = req.body(body).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    async fn post_json(&self, body: Vec<u8>) -> u16 {
        self.post("", Some("application/json"), body).await.0
    }

    async fn inbox_len(&self) -> u64 {
        self.store.inbox_len().await.unwrap()
    }
}

#[tokio::test]
async fn handshake_echoes_the_decoded_token_as_plain_text() {
    let rig = Rig::new().await;
    for endpoint in ["notifications", "lifecycle"] {
        let res = rig
            .http
            .post(format!(
                "{}/graph/{endpoint}?validationToken=Validation%3A+Testing+client+application+reachability+for+subscription+Request-Id%3A+7b0c",
                rig.url
            ))
            .header("content-type", "text/plain; charset=utf-8")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(res.headers()["content-type"], "text/plain");
        assert_eq!(
            res.text().await.unwrap(),
            "Validation: Testing client application reachability for subscription Request-Id: 7b0c"
        );
    }
}

#[tokio::test]
async fn rich_notification_reaches_the_inbox_decrypted_once() {
    let rig = Rig::new().await;
    let content = encrypt(1, "cert-a", &presence(USER, "Busy", "InACall"));
    assert_eq!(rig.post_json(rig.rich_batch(&content)).await, 202);
    let items = rig.store.inbox_claim(10, 30).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].kind, "observation");
    assert_eq!(items[0].user_id.as_deref(), Some(USER));
    let payload = serde_json::from_value(items[0].payload.clone()).unwrap();
    let InboxPayload::Observation(o) = payload else {
        panic!("not an observation: {payload:?}");
    };
    assert_eq!(o.user, USER);
    assert_eq!(
        o.status,
        Status::Teams(TeamsPresence::new("Busy", "InACall"))
    );
    assert_eq!(o.source, Source::GraphWebhook);

    // The same presence again (a retry, or a duplicate) is accepted but not stored twice.
    let again = encrypt(1, "cert-a", &presence(USER, "Busy", "InACall"));
    assert_eq!(rig.post_json(rig.rich_batch(&again)).await, 202);
    assert_eq!(rig.inbox_len().await, 1);

    // A v1.0 validation token (issuer sts.windows.net, publisher in `appid`) is accepted too.
    let now = chrono::Utc::now().timestamp();
    let v1 = rig.issuer.sign(&json!({
        "aud": CLIENT_ID, "iss": format!("https://sts.windows.net/{TENANT_ID}/"),
        "iat": now, "nbf": now, "exp": now + 3600, "ver": "1.0",
        "appid": presence_bridge::graph::notifications::jwt::GRAPH_CHANGE_TRACKING_APP_ID,
    }));
    let next = encrypt(1, "cert-a", &presence(USER, "Available", "Available"));
    let body = serde_json::to_vec(&json!({
        "value": [rich_item(SUB, STATE, &next)], "validationTokens": [v1],
    }))
    .unwrap();
    assert_eq!(rig.post_json(body).await, 202);
    assert_eq!(rig.inbox_len().await, 2);
}

#[tokio::test]
async fn basic_notifications_become_one_coalesced_refresh() {
    let rig = Rig::new().await;
    let other = "0a1b2c3d-0000-4000-8000-000000000001";
    let body = serde_json::to_vec(&json!({"value": [
        basic_item(SUB, STATE, USER), basic_item(SUB, STATE, other), basic_item(SUB, STATE, USER),
        basic_item(SUB, "wrong", other),
    ]}))
    .unwrap();
    assert_eq!(rig.post_json(body).await, 202);
    let items = rig.store.inbox_claim(10, 30).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].kind, "teams_refresh");
    assert_eq!(
        serde_json::from_value::<InboxPayload>(items[0].payload.clone()).unwrap(),
        InboxPayload::TeamsRefresh(TeamsRefresh {
            user_ids: vec![USER.into(), other.into()]
        })
    );
}

#[tokio::test]
async fn user_changes_trigger_a_directory_sync_and_lifecycle_events_reach_the_manager() {
    let rig = Rig::new().await;
    let changed = rig.receiver.directory_changed();
    let mut lifecycle = rig.receiver.take_lifecycle_events().unwrap();
    let body = serde_json::to_vec(&json!({"value": [
        {"subscriptionId": USERS_SUB, "clientState": USERS_STATE, "changeType": "updated",
         "resource": "Users/6e5cf7c4", "resourceData": {"id": "6e5cf7c4"}},
        {"subscriptionId": SUB, "clientState": STATE, "lifecycleEvent": "reauthorizationRequired",
         "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z"},
    ]}))
    .unwrap();
    assert_eq!(rig.post_json(body).await, 202);
    tokio::time::timeout(std::time::Duration::from_secs(5), changed.notified())
        .await
        .expect("directory sync requested");
    let ev = lifecycle.recv().await.unwrap();
    assert_eq!(
        (ev.subscription_id.as_str(), ev.event.as_str()),
        (SUB, "reauthorizationRequired")
    );
    assert_eq!(
        rig.inbox_len().await,
        0,
        "neither is a presence observation"
    );
}

#[tokio::test]
async fn an_inbox_that_cannot_take_the_batch_gets_503_and_nothing_is_remembered() {
    let rig = Rig::new().await;
    let db = format!("sqlite://{}/test.db", rig.dir.path().display());
    let side = sqlx::SqlitePool::connect(&db).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER inbox_full BEFORE INSERT ON inbox BEGIN SELECT RAISE(ABORT, 'full'); END",
    )
    .execute(&side)
    .await
    .unwrap();
    let content = encrypt(1, "cert-a", &presence(USER, "Busy", "InACall"));
    assert_eq!(rig.post_json(rig.rich_batch(&content)).await, 503);
    assert_eq!(rig.inbox_len().await, 0);

    // Graph retries; once the inbox works the same presence is stored (it was not remembered
    // as seen when the write failed).
    sqlx::query("DROP TRIGGER inbox_full")
        .execute(&side)
        .await
        .unwrap();
    assert_eq!(rig.post_json(rig.rich_batch(&content)).await, 202);
    assert_eq!(rig.inbox_len().await, 1);
}

struct Case {
    name: &'static str,
    query: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    want: u16,
}

fn case(name: &'static str, body: Vec<u8>, want: u16) -> Case {
    Case {
        name,
        query: "",
        content_type: Some("application/json"),
        body,
        want,
    }
}

#[tokio::test]
async fn bad_inputs_get_their_documented_answer_and_change_nothing() {
    let rig = Rig::new().await;
    let good = || encrypt(1, "cert-a", &presence(USER, "Away", "Away"));
    let with_items = |items: Vec<Value>, tokens: Option<Vec<String>>| {
        let mut v = json!({ "value": items });
        if let Some(t) = tokens {
            v["validationTokens"] = json!(t);
        }
        serde_json::to_vec(&v).unwrap()
    };
    let token_with = |edit: &dyn Fn(&mut Value)| {
        let mut c = rig.claims();
        edit(&mut c);
        rig.issuer.sign(&c)
    };
    let rich_with_token =
        |t: String| with_items(vec![rich_item(SUB, STATE, &good())], Some(vec![t]));
    let now = chrono::Utc::now().timestamp();

    let mut tampered = good();
    let mut data = B64.decode(&tampered.data).unwrap();
    data[3] ^= 0x40;
    tampered.data = B64.encode(data);
    let mut bad_hmac = good();
    bad_hmac.data_signature = B64.encode([7u8; 32]);
    let mut wrong_cert = good();
    wrong_cert.encryption_certificate_id = "cert-b".into();
    let other_key = encrypt(2, "cert-a", &presence(USER, "Away", "Away"));
    let mut bad_b64 = good();
    bad_b64.data_key = "%%%not base64%%%".into();
    let not_presence = encrypt(1, "cert-a", b"{\"hello\":\"world\"}");
    let bad_user = encrypt(1, "cert-a", &presence("../../etc/passwd", "Away", "Away"));

    let foreign_key = std::fs::read(fixture("notify-key-2.pem")).unwrap();
    let forged = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = Some(SIM_KID.into());
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&foreign_key).unwrap();
        jsonwebtoken::encode(&h, &rig.claims(), &key).unwrap()
    };
    let unknown_kid = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.kid = Some("no-such-kid".into());
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&foreign_key).unwrap();
        jsonwebtoken::encode(&h, &rig.claims(), &key).unwrap()
    };
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &rig.claims(),
        &jsonwebtoken::EncodingKey::from_secret(b"guess"),
    )
    .unwrap();

    let mut cases = vec![
        case(
            "wrong clientState",
            with_items(vec![basic_item(SUB, "nope", USER)], None),
            403,
        ),
        case(
            "clientState prefix",
            with_items(vec![basic_item(SUB, &STATE[..10], USER)], None),
            403,
        ),
        case(
            "missing clientState",
            with_items(
                vec![
                    json!({"subscriptionId": SUB, "changeType": "updated", "resourceData": {"id": USER}}),
                ],
                None,
            ),
            403,
        ),
        case(
            "unknown subscription",
            with_items(vec![basic_item("sub-unknown", STATE, USER)], None),
            403,
        ),
        case(
            "other subscription's state",
            with_items(vec![basic_item(SUB, USERS_STATE, USER)], None),
            403,
        ),
        case("bad HMAC", rig.rich_batch(&bad_hmac), 400),
        case("tampered data", rig.rich_batch(&tampered), 400),
        case("wrong certificate id", rig.rich_batch(&wrong_cert), 400),
        case(
            "data key for another certificate",
            rig.rich_batch(&other_key),
            400,
        ),
        case("data key not base64", rig.rich_batch(&bad_b64), 400),
        case(
            "decrypts to something else",
            rig.rich_batch(&not_presence),
            400,
        ),
        case("decrypts to a junk user id", rig.rich_batch(&bad_user), 400),
        case(
            "basic with junk user id",
            with_items(vec![basic_item(SUB, STATE, "<script>")], None),
            400,
        ),
        case(
            "JWT wrong aud",
            rich_with_token(token_with(&|c| c["aud"] = json!("someone-else"))),
            401,
        ),
        case(
            "JWT wrong issuer",
            rich_with_token(token_with(&|c| {
                c["iss"] = json!("https://sts.windows.net/other-tenant/")
            })),
            401,
        ),
        case(
            "JWT expired",
            rich_with_token(token_with(&|c| {
                c["exp"] = json!(now - 600);
                c["nbf"] = json!(now - 4000);
            })),
            401,
        ),
        case(
            "JWT not yet valid",
            rich_with_token(token_with(&|c| c["nbf"] = json!(now + 3000))),
            401,
        ),
        case(
            "JWT wrong publisher (v2 azp)",
            rich_with_token(token_with(&|c| c["azp"] = json!(CLIENT_ID))),
            401,
        ),
        case(
            "JWT wrong publisher (v1 appid)",
            rich_with_token(token_with(&|c| {
                c["ver"] = json!("1.0");
                c["appid"] = json!(CLIENT_ID);
            })),
            401,
        ),
        case(
            "JWT without exp",
            rich_with_token(token_with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            })),
            401,
        ),
        case("JWT bad signature", rich_with_token(forged), 401),
        case("JWT unknown kid", rich_with_token(unknown_kid), 401),
        case("JWT HS256", rich_with_token(hs256), 401),
        case("JWT garbage", rich_with_token("not.a.jwt".into()), 401),
        case(
            "rich without validationTokens",
            with_items(vec![rich_item(SUB, STATE, &good())], None),
            401,
        ),
        case(
            "rich with empty validationTokens",
            with_items(vec![rich_item(SUB, STATE, &good())], Some(vec![])),
            401,
        ),
        case(
            "one good and one bad token",
            with_items(
                vec![rich_item(SUB, STATE, &good())],
                Some(vec![rig.token(), token_with(&|c| c["aud"] = json!("x"))]),
            ),
            401,
        ),
        case("malformed JSON", b"{\"value\": [".to_vec(), 400),
        case("JSON without value", b"{\"values\": []}".to_vec(), 400),
        case("empty value", b"{\"value\": []}".to_vec(), 400),
        case("value not a list", b"{\"value\": {}}".to_vec(), 400),
        case(
            "oversize body",
            with_items(
                vec![json!({"subscriptionId": SUB, "pad": "x".repeat(70 * 1024)})],
                None,
            ),
            413,
        ),
    ];
    cases.push(Case {
        content_type: Some("text/plain"),
        ..case("wrong content type", rig.rich_batch(&good()), 415)
    });
    cases.push(Case {
        content_type: None,
        ..case("no content type", rig.rich_batch(&good()), 415)
    });
    cases.push(Case {
        query: "?validationToken=",
        ..case("empty handshake token", vec![], 400)
    });
    let long: &'static str =
        Box::leak(format!("?validationToken={}", "a".repeat(2000)).into_boxed_str());
    cases.push(Case {
        query: long,
        ..case("handshake token too long", vec![], 400)
    });
    assert!(cases.len() >= 25);

    let subs_before = rig.store.list_subscriptions().await.unwrap();
    for c in cases {
        let (status, body) = rig.post(c.query, c.content_type, c.body).await;
        assert_eq!(status, c.want, "{}: got {status} {body}", c.name);
        assert!(!body.contains("alert"), "{}: echoed input: {body}", c.name);
        assert_eq!(rig.inbox_len().await, 0, "{}: inbox changed", c.name);
    }
    assert_eq!(rig.store.list_subscriptions().await.unwrap(), subs_before);

    // The receiver is still healthy afterwards: a good batch goes through.
    assert_eq!(rig.post_json(rig.rich_batch(&good())).await, 202);
    assert_eq!(rig.inbox_len().await, 1);
}

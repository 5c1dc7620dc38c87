//! Sync accounts: device-code sign-in, encrypted refresh tokens that rotate, revocation and
//! expiry; and a log capture proving no secret or token is ever logged.

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use presence_bridge::graph::GraphClient;
use presence_bridge::graph::PresenceApi;
use presence_bridge::graph::accounts::{AccountError, AccountTokens, health_component};
use presence_bridge::graph::config::GraphConfig;
use presence_bridge::model::health::{HealthRegistry, HealthState};
use presence_bridge::sim::graph::identity::RefreshDenial;
use presence_bridge::sim::graph::{SimGraphHandle, SimUser};
use presence_bridge::store::config::StoreConfig;
use presence_bridge::store::{self, Store};
use secrecy::{ExposeSecret, SecretString};

use super::{client_config, sim_with_users, user_id};

const SVC_ID: &str = "50000000-0000-4000-8000-000000000001";
const SVC_UPN: &str = "svc-presence-1@contoso.example";

fn key() -> String {
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}

fn config(sim: &SimGraphHandle) -> GraphConfig {
    GraphConfig {
        token_encryption_key: Some(SecretString::from(key())),
        ..client_config(sim)
    }
}

struct Env {
    sim: SimGraphHandle,
    store: Arc<dyn Store>,
    health: HealthRegistry,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    let sim = sim_with_users(1).await;
    sim.state.upsert_user(SimUser::licensed(SVC_ID, SVC_UPN));
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        url: SecretString::from(format!("sqlite://{}/accounts.db", dir.path().display())),
        ..StoreConfig::default()
    };
    Env {
        store: store::open(&cfg).await.unwrap(),
        sim,
        health: HealthRegistry::new(),
        _dir: dir,
    }
}

impl Env {
    fn tokens(&self) -> AccountTokens {
        AccountTokens::new(
            &config(&self.sim),
            self.store.clone(),
            Some(self.health.clone()),
        )
        .unwrap()
    }

    async fn add(&self, tokens: &AccountTokens) -> String {
        let sim = self.sim.state.clone();
        let rec = tokens
            .add_account(|p| {
                assert!(p.message.contains(&p.user_code));
                assert!(sim.approve_device_code(&p.user_code, SVC_UPN));
            })
            .await
            .expect("device code flow completes");
        rec.id
    }
}

#[tokio::test]
async fn device_code_sign_in_stores_an_encrypted_rotating_refresh_token() {
    let env = env().await;
    let tokens = env.tokens();
    let id = env.add(&tokens).await;
    let rec = env.store.get_account(&id).await.unwrap();
    assert_eq!(rec.upn, SVC_UPN);
    assert_eq!(rec.user_object_id.as_deref(), Some(SVC_ID));
    assert_eq!(rec.state, "healthy");
    assert!(!String::from_utf8_lossy(&rec.encrypted_refresh_token).contains("sim-rt-"));
    // The sign-in's access token is cached.
    tokens.access_token(&id).await.unwrap();
    assert_eq!(env.sim.state.tokens_issued("refresh_token"), 0);

    // A restart (empty cache) refreshes, and the stored token rotates each time.
    let t1 = env.tokens().access_token(&id).await.unwrap();
    let rec1 = env.store.get_account(&id).await.unwrap();
    assert_ne!(rec1.encrypted_refresh_token, rec.encrypted_refresh_token);
    let t2 = env.tokens().access_token(&id).await.unwrap();
    assert_ne!(t1.expose_secret(), t2.expose_secret());
    assert_eq!(env.sim.state.tokens_issued("refresh_token"), 2);
    assert_eq!(
        env.health.get(&health_component(SVC_UPN)).unwrap().state,
        HealthState::Up
    );

    // Adding the same person again re-authorizes the same account.
    assert_eq!(env.add(&tokens).await, id);
    assert_eq!(env.store.list_accounts().await.unwrap().len(), 1);
    tokens.remove_account(SVC_UPN).await.unwrap();
    assert!(env.store.list_accounts().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_revoked_or_expired_account_is_marked_unhealthy() {
    for (denial, state) in [
        (RefreshDenial::Revoked, "revoked"),
        (RefreshDenial::Expired, "expired"),
    ] {
        let env = env().await;
        let id = env.add(&env.tokens()).await;
        env.sim.state.deny_refresh(SVC_ID, Some(denial));
        let err = env.tokens().access_token(&id).await.unwrap_err();
        match (denial, &err) {
            (RefreshDenial::Revoked, AccountError::Revoked(_))
            | (RefreshDenial::Expired, AccountError::Expired(_)) => {}
            _ => panic!("{err:?}"),
        }
        assert_eq!(env.store.get_account(&id).await.unwrap().state, state);
        let h = env.health.get(&health_component(SVC_UPN)).unwrap();
        assert_eq!(h.state, HealthState::Down);
        assert!(!h.critical);
    }
}

#[tokio::test]
async fn an_account_token_needs_the_encryption_key() {
    let env = env().await;
    let cfg = client_config(&env.sim);
    assert!(matches!(
        AccountTokens::new(&cfg, env.store.clone(), None),
        Err(AccountError::NoKey)
    ));
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_or_token_appears_in_any_log_line() {
    let capture = Capture::default();
    let sink = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = env().await;
    let cfg = config(&env.sim);
    let client = GraphClient::new(&cfg, Some(env.health.clone())).unwrap();
    client.get_presences(&[user_id(0)]).await.unwrap();
    env.sim.state.revoke_access_tokens();
    client
        .set_presence(
            &user_id(0),
            "Busy",
            "InACall",
            std::time::Duration::from_secs(600),
        )
        .await
        .unwrap();
    let tokens = env.tokens();
    let id = env.add(&tokens).await;
    env.tokens().access_token(&id).await.unwrap();
    env.sim
        .state
        .deny_refresh(SVC_ID, Some(RefreshDenial::Revoked));
    let _ = env.tokens().access_token(&id).await;
    tracing::info!(config = ?cfg, client = ?client, "done");

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("done"), "the capture works");
    let mut secrets: Vec<String> = vec![
        env.sim.state.options.client_secret.clone().unwrap(),
        key(),
        "sim-at-".into(),
        "sim-rt-".into(),
        "sim-dc-".into(),
    ];
    secrets.extend(env.sim.state.lock().identity.access_tokens.keys().cloned());
    for s in secrets {
        assert!(!logs.contains(&s), "log contains a secret ({}...)", &s[..6]);
    }
}

/// Moves an account's last successful refresh `days` into the past.
async fn age(env: &Env, id: &str, days: i64) {
    let mut rec = env.store.get_account(id).await.unwrap();
    rec.last_refresh_at = Some(chrono::Utc::now() - chrono::Duration::days(days));
    env.store.update_account(&rec).await.unwrap();
}

#[tokio::test]
async fn every_account_is_refreshed_on_schedule_even_without_a_subscription() {
    let env = env().await;
    let id = env.add(&env.tokens()).await;
    age(&env, &id, 80).await;
    let metrics = presence_bridge::telemetry::Metrics::new();
    let tokens = env.tokens();
    tokens
        .refresh_due(std::time::Duration::from_secs(86_400), Some(&metrics))
        .await
        .unwrap();
    assert_eq!(env.sim.state.tokens_issued("refresh_token"), 1);
    let rec = env.store.get_account(&id).await.unwrap();
    assert!(chrono::Utc::now() - rec.last_refresh_at.unwrap() < chrono::Duration::minutes(1));
    let h = env.health.get(&health_component(SVC_UPN)).unwrap();
    assert_eq!(h.state, HealthState::Up, "{}", h.detail);
    assert!(h.detail.contains("90 days"), "{}", h.detail);
    assert!(
        metrics.render().contains(&format!(
            "graph_sync_account_days_left{{account=\"{SVC_UPN}\"}} 90"
        )),
        "{}",
        metrics.render()
    );
    // Not due again within the interval: no second refresh.
    tokens
        .refresh_due(std::time::Duration::from_secs(86_400), Some(&metrics))
        .await
        .unwrap();
    assert_eq!(env.sim.state.tokens_issued("refresh_token"), 1);
}

#[tokio::test]
async fn an_account_whose_refresh_keeps_failing_turns_amber_before_it_lapses() {
    let env = env().await;
    let id = env.add(&env.tokens()).await;
    age(&env, &id, 80).await;
    // The identity platform is unreachable: a transient failure, not a revocation.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = GraphConfig {
        authority_url: format!("http://127.0.0.1:{port}").parse().unwrap(),
        ..config(&env.sim)
    };
    let tokens = AccountTokens::new(&cfg, env.store.clone(), Some(env.health.clone())).unwrap();
    tokens
        .refresh_due(std::time::Duration::from_secs(86_400), None)
        .await
        .unwrap();
    let rec = env.store.get_account(&id).await.unwrap();
    assert_eq!(rec.state, "healthy", "a transient failure does not revoke");
    let h = env.health.get(&health_component(SVC_UPN)).unwrap();
    assert_eq!(h.state, HealthState::Degraded, "{}", h.detail);
    assert!(h.detail.contains("lapses in 10 days"), "{}", h.detail);
    assert!(h.detail.contains("cannot reach"), "{}", h.detail);

    // A revoked sign-in is red, with what to do.
    env.sim
        .state
        .deny_refresh(SVC_ID, Some(RefreshDenial::Revoked));
    env.tokens()
        .refresh_due(std::time::Duration::from_secs(86_400), None)
        .await
        .unwrap();
    let h = env.health.get(&health_component(SVC_UPN)).unwrap();
    assert_eq!(h.state, HealthState::Down, "{}", h.detail);
    assert!(h.detail.contains("accounts add"), "{}", h.detail);
}

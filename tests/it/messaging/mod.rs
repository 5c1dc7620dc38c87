//! The Teams chat ⇄ Open Messaging bridge over loopback: the daemon with `[messaging]`, the
//! simulated Graph tenant (chats, chat-message subscriptions, rich notifications) and the
//! simulated Open Messaging integration.

mod bridge;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use presence_bridge::app::Application;
use presence_bridge::app::config::Config;
use presence_bridge::graph::accounts::AccountTokens;
use presence_bridge::graph::config::GraphConfig;
use presence_bridge::graph::notifications::config::PresenceSource;
use presence_bridge::integrations::messaging::config::{GenesysMessagingConfig, MessagingConfig};
use presence_bridge::model::clock::Clock;
use presence_bridge::sim::graph::{SimGraphHandle, SimGraphOptions, SimUser, spawn};
use presence_bridge::sim::openmessaging::{self, OM_CLIENT_ID, OM_CLIENT_SECRET, SimOpenMessaging};
use presence_bridge::store::{self, Store, UserRecord};
use secrecy::SecretString;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::graph::client_config;
use crate::graph_notify::cert_config;
use crate::helpers::eventually;

pub(crate) const CUSTOMER: &str = "c0000000-0000-4000-8000-000000000001";
pub(crate) const CUSTOMER_UPN: &str = "carol.customer@fabrikam.example";
pub(crate) const SUPPORT: &str = "50000000-0000-4000-8000-000000000001";
pub(crate) const SUPPORT_UPN: &str = "support@contoso.example";
pub(crate) const INTEGRATION: &str = "6f4b2a1e-0000-4000-8000-00000000cafe";
pub(crate) const WEBHOOK_SECRET: &str = "open-messaging-webhook-secret";
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// Both simulators, a store with a signed-in support account, and a port for the daemon.
pub(crate) struct Env {
    pub(crate) graph_sim: SimGraphHandle,
    pub(crate) om: SimOpenMessaging,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) graph: GraphConfig,
    pub(crate) clock: Clock,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) port: u16,
    pub(crate) chat: String,
}

/// The daemon, running.
pub(crate) struct Daemon {
    stop: CancellationToken,
    join: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub(crate) url: String,
}

impl Daemon {
    pub(crate) async fn shutdown(self) {
        self.stop.cancel();
        self.join.await.unwrap().unwrap();
    }
}

impl Env {
    pub(crate) async fn new() -> Env {
        let sim = spawn(SimGraphOptions {
            token_lifetime_secs: 30 * 24 * 3600,
            ..SimGraphOptions::default()
        })
        .await;
        let mut carol = SimUser::licensed(CUSTOMER, CUSTOMER_UPN);
        carol.display_name = Some("Carol Customer".into());
        sim.state.upsert_user(carol);
        let mut support = SimUser::licensed(SUPPORT, SUPPORT_UPN);
        support.display_name = Some("Contoso Support".into());
        sim.state.upsert_user(support);
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::helpers::test_config(&dir);
        let store = store::open(&cfg.store).await.unwrap();
        store
            .upsert_users(&[UserRecord {
                teams_id: CUSTOMER.into(),
                upn: CUSTOMER_UPN.into(),
                mail: None,
                display_name: Some("Carol Customer".into()),
                business_phones: vec![],
                mobile_phone: None,
                cc_connector: None,
                cc_agent_id: None,
                active: true,
                updated_at: chrono::Utc::now(),
            }])
            .await
            .unwrap();
        let graph = GraphConfig {
            token_encryption_key: Some(SecretString::from(
                base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
            )),
            presence_source: Some(PresenceSource::Poll),
            ..client_config(&sim)
        };
        let tokens = AccountTokens::new(&graph, store.clone(), None).unwrap();
        let s = sim.state.clone();
        tokens
            .add_account(|p| assert!(s.approve_device_code(&p.user_code, SUPPORT_UPN)))
            .await
            .expect("support account signs in");
        let chat = sim.state.create_chat(&[CUSTOMER, SUPPORT]);
        let om = openmessaging::spawn(INTEGRATION, WEBHOOK_SECRET).await;
        let port = crate::helpers::port_for_restarts();
        om.set_webhook_url(&format!(
            "http://127.0.0.1:{port}/messaging/genesys/support"
        ));
        Env {
            graph_sim: sim,
            om,
            store,
            graph,
            clock: Clock::new(),
            dir,
            port,
            chat,
        }
    }

    pub(crate) fn config(&self, tweak: impl FnOnce(&mut MessagingConfig)) -> Config {
        let url = format!("http://127.0.0.1:{}", self.port);
        let mut cfg = crate::helpers::test_config(&self.dir);
        cfg.graph = self.graph.clone();
        cfg.graph.webhook.certificates = vec![cert_config(1, "cert-a")];
        cfg.server.public_url = Some(url.parse().unwrap());
        let oauth = toml::from_str(&format!(
            "token_url = \"{}/oauth/token\"\nclient_id = \"{OM_CLIENT_ID}\"\nclient_secret = \"{OM_CLIENT_SECRET}\"",
            self.om.url
        ))
        .unwrap();
        cfg.messaging = MessagingConfig {
            enabled: true,
            support_accounts: vec![SUPPORT_UPN.into()],
            attachment_dir: self.dir.path().join("files"),
            url_signing_key: Some(SecretString::from(
                base64::engine::general_purpose::STANDARD.encode([5u8; 32]),
            )),
            genesys: Some(GenesysMessagingConfig {
                name: "support".into(),
                integration_id: INTEGRATION.into(),
                api_base_url: self.om.url.parse().unwrap(),
                oauth,
                webhook_secret: Some(SecretString::from(WEBHOOK_SECRET)),
                webhook_secret_file: None,
                receipts: true,
                max_webhook_body_bytes: 256 * 1024,
            }),
            ..MessagingConfig::default()
        };
        tweak(&mut cfg.messaging);
        cfg.resolve_and_validate()
            .expect("messaging test config is valid");
        cfg
    }

    /// Starts (or restarts) the daemon on the env's port, with its jobs.
    pub(crate) async fn daemon(&self, cfg: Config) -> Daemon {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        let app = Application::builder(cfg)
            .listener(listener)
            .store(self.store.clone())
            .clock(self.clock.clone())
            .build()
            .await
            .expect("daemon builds");
        let stop = app.cancel_token();
        let url = format!("http://127.0.0.1:{}", self.port);
        let join = tokio::spawn(app.run_until_stopped(std::future::pending()));
        Daemon { stop, join, url }
    }

    /// Waits until the support account's chat-message subscription exists at Graph.
    pub(crate) async fn subscribed(&self) {
        let sim = self.graph_sim.state.clone();
        eventually("the chat-message subscription", WAIT, || {
            let sim = sim.clone();
            async move {
                sim.subscriptions().iter().any(|s| {
                    s.resource
                        .ends_with(&format!("users/{SUPPORT}/chats/getAllMessages"))
                })
            }
        })
        .await;
    }

    /// The customer writes plain HTML in the chat.
    pub(crate) async fn customer_says(&self, html: &str) -> String {
        self.graph_sim
            .state
            .user_says(&self.chat, CUSTOMER, html, vec![], vec![], None)
            .await
    }

    /// Waits until Genesys holds `n` inbound messages; returns them.
    pub(crate) async fn genesys_messages(&self, n: usize) -> Vec<Value> {
        let om = self.om.clone();
        eventually(&format!("{n} inbound message(s) at Genesys"), WAIT, || {
            let om = om.clone();
            async move { om.messages().len() >= n }
        })
        .await;
        self.om.messages()
    }

    /// Waits until the chat holds `n` messages; returns them.
    pub(crate) async fn chat_messages(&self, n: usize) -> Vec<Value> {
        let sim = self.graph_sim.state.clone();
        let chat = self.chat.clone();
        eventually(&format!("{n} message(s) in the Teams chat"), WAIT, || {
            let (sim, chat) = (sim.clone(), chat.clone());
            async move { sim.chat_messages(&chat).len() >= n }
        })
        .await;
        self.graph_sim.state.chat_messages(&self.chat)
    }
}

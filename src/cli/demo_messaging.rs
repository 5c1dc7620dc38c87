//! `presence-bridge demo --messaging`: the Teams chat ⇄ Open Messaging bridge in the demo. A
//! simulated customer (Carol, of Fabrikam) writes to the simulated support account in Teams
//! every so often; the simulated Genesys integration hands each message to a simulated agent,
//! who answers; the answer is posted back into the same Teams chat. The log shows each hop.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::out::outln;
use crate::app::config::Config;
use crate::graph::accounts::AccountTokens;
use crate::graph::notifications::config::CertificateConfig;
use crate::integrations::messaging::config::{GenesysMessagingConfig, MessagingConfig};
use crate::sim::graph::{SimGraph, SimGraphHandle, SimUser};
use crate::sim::openmessaging::{self, OM_CLIENT_ID, OM_CLIENT_SECRET, SimOpenMessaging};
use crate::store::Store;

const CUSTOMER: &str = "c0000000-0000-4000-8000-00000000c001";
const SUPPORT: &str = "50000000-0000-4000-8000-00000000c002";
const SUPPORT_UPN: &str = "support@example.com";
const INTEGRATION: &str = "00000000-0000-4000-8000-0000000000de";
const SECRET: &str = "demo-open-messaging-secret";

/// The notification certificate of the demo (the test fixture; never a production key).
const CERT_PEM: &str = include_str!("../../tests/fixtures/graph/notify-cert-1.pem");
const KEY_PEM: &str = include_str!("../../tests/fixtures/graph/notify-key-1.pem");

/// How often the simulated customer writes: often enough to watch, slow enough to read.
const CUSTOMER_EVERY: Duration = Duration::from_secs(20);

/// How often the simulated agent looks for new customer messages.
const AGENT_POLL: Duration = Duration::from_millis(500);

/// What the messaging part of the demo keeps alive.
pub struct DemoMessaging {
    om: SimOpenMessaging,
    chat: String,
    dir: std::path::PathBuf,
}

impl Drop for DemoMessaging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Adds the messaging bridge to the demo configuration: the simulated integration, a
/// customer and a support account in the tenant, a certificate and keys.
pub async fn prepare(graph: &SimGraphHandle, cfg: &mut Config) -> anyhow::Result<DemoMessaging> {
    let dir = std::env::temp_dir().join(format!("presence-bridge-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("cert.pem"), CERT_PEM)?;
    std::fs::write(dir.join("key.pem"), KEY_PEM)?;
    let mut carol = SimUser::licensed(CUSTOMER, "carol@fabrikam.example");
    carol.display_name = Some("Carol Fabrikam".into());
    graph.state.upsert_user(carol);
    let mut support = SimUser::licensed(SUPPORT, SUPPORT_UPN);
    support.display_name = Some("Contoso Support".into());
    graph.state.upsert_user(support);
    let chat = graph.state.create_chat(&[CUSTOMER, SUPPORT]);
    let om = openmessaging::spawn(INTEGRATION, SECRET).await;
    let listen = cfg.server.listen;
    let public = format!("http://127.0.0.1:{}", listen.port());
    om.set_webhook_url(&format!("{public}/messaging/genesys/support"));
    cfg.server.public_url = Some(public.parse()?);
    cfg.graph.token_encryption_key = Some(random_key());
    cfg.graph.webhook.certificates = vec![CertificateConfig {
        id: "demo-cert".into(),
        certificate_file: dir.join("cert.pem"),
        private_key_file: dir.join("key.pem"),
    }];
    let oauth = toml::from_str(&format!(
        "token_url = \"{}/oauth/token\"\nclient_id = \"{OM_CLIENT_ID}\"\nclient_secret = \"{OM_CLIENT_SECRET}\"",
        om.url
    ))?;
    cfg.messaging = MessagingConfig {
        enabled: true,
        support_accounts: vec![SUPPORT_UPN.into()],
        attachment_dir: dir.join("files"),
        url_signing_key: Some(random_key()),
        genesys: Some(GenesysMessagingConfig {
            name: "support".into(),
            integration_id: INTEGRATION.into(),
            api_base_url: om.url.parse()?,
            oauth,
            webhook_secret: Some(SecretString::from(SECRET)),
            webhook_secret_file: None,
            receipts: true,
            max_webhook_body_bytes: 256 * 1024,
        }),
        ..MessagingConfig::default()
    };
    cfg.resolve_and_validate()?;
    Ok(DemoMessaging { om, chat, dir })
}

fn random_key() -> SecretString {
    let mut k = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut k);
    SecretString::from(base64::engine::general_purpose::STANDARD.encode(k))
}

impl DemoMessaging {
    /// Signs the support account in (the simulated tenant approves the device code).
    pub async fn sign_in(
        &self,
        graph: &SimGraph,
        cfg: &Config,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<()> {
        let tokens = AccountTokens::new(&cfg.graph, store, None)?;
        let sim = graph.clone();
        tokens
            .add_account(|p| {
                sim.approve_device_code(&p.user_code, SUPPORT_UPN);
            })
            .await?;
        Ok(())
    }

    pub fn describe(&self) -> anyhow::Result<()> {
        outln!(
            "  Teams chat ⇄ Open Messaging: a customer writes every {} s in chat {}; the simulated agent answers (see the log)",
            CUSTOMER_EVERY.as_secs(),
            self.chat
        )?;
        Ok(())
    }

    /// The customer writes, the agent answers, until `stop`.
    pub async fn scenario(self, graph: SimGraph, stop: CancellationToken) {
        let lines = [
            "Hello, our <b>printer</b> in building 4 stopped working.",
            "It shows error <i>E-042</i>.",
            "Is there a workaround until someone comes?",
            "Thanks, that helped!",
        ];
        // The first message once the chat subscription exists (made at start).
        let mut customer = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(5),
            CUSTOMER_EVERY,
        );
        let mut agent = tokio::time::interval(AGENT_POLL);
        let mut answered = 0usize;
        let mut said = 0usize;
        let mut posted = 0usize;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = customer.tick() => {
                    let text = lines[said % lines.len()];
                    said += 1;
                    tracing::info!(target: "demo", text, "customer writes in Teams");
                    graph.user_says(&self.chat, CUSTOMER, &format!("<p>{text}</p>"), vec![], vec![], None).await;
                }
                _ = agent.tick() => {
                    let messages = self.om.messages();
                    for m in messages.iter().skip(answered) {
                        let from = m["channel"]["from"].clone();
                        let text = m["text"].as_str().unwrap_or_default();
                        tracing::info!(target: "demo", text, "Genesys agent receives");
                        let answer = format!("Agent Sam here: noted \"{text}\". We are on it.");
                        self.om.agent_says(&from, &answer, &[]).await;
                    }
                    answered = messages.len();
                    let replies: Vec<_> = graph
                        .chat_messages(&self.chat)
                        .into_iter()
                        .filter(|m| m["from"]["user"]["id"] == SUPPORT)
                        .collect();
                    for m in replies.iter().skip(posted) {
                        let text = m["body"]["content"].as_str().unwrap_or_default();
                        tracing::info!(target: "demo", text, "agent's answer posted in the Teams chat");
                    }
                    posted = replies.len();
                }
            }
        }
    }
}

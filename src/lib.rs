//! presence-bridge keeps Microsoft Teams presence and contact-center agent status in step.
//!
//! Architecture in one paragraph: every input (a Graph change notification, a Graph presence
//! poll, a contact-center event or poll, a reconciliation read) becomes a
//! [`model::Observation`] and is written to the durable inbox ([`store::inbox`]) before it is
//! acknowledged. The engine's I/O shell ([`runtime`]) takes observations for one user in order
//! and hands them to the pure engine ([`engine`]: mapping tables, hold-down, echo and loop
//! guards), then carries the decisions out through Microsoft Graph ([`graph`]) or a
//! contact-center connector ([`connectors`]), both using one outbound HTTP policy ([`net`]).
//! State lives behind the [`store::Store`] trait (SQLite by default, Postgres for several
//! replicas). [`app::Application`] is the composition root: its builder wires every part and
//! the router of [`http`]; [`cli`] holds the commands. With the `demo` feature (on by
//! default) `sim` holds the simulated Graph tenant and contact centers used by the tests, the
//! demo and the benchmarks; production builds (`--no-default-features`) leave it out.
//!
//! Imports point one way, and `tests/it/layering.rs` enforces it: [`model`] (types and the
//! ports: health, the contact-center trait, clock), [`config`] (the section toolkit) and
//! [`job`] import nothing else; then [`engine`] and [`telemetry`]; then [`store`] and [`net`];
//! then [`graph`] and [`connectors`]; then `sim` and [`runtime`]; then [`http`] beside
//! [`integrations`] (consumers of contact events: Dynamics 365), then [`app`] and [`cli`], in
//! that order.

pub mod app;
pub mod cli;
pub(crate) mod config;
pub mod connectors;
pub mod engine;
pub mod graph;
pub(crate) mod http;
pub mod integrations;
pub(crate) mod job;
pub mod model;
pub(crate) mod net;
pub mod runtime;
#[cfg(feature = "demo")]
pub mod sim;
pub mod store;
pub mod telemetry;

/// Entry points for the fuzz targets in `fuzz/`: each takes arbitrary input and runs the code
/// that reads untrusted bytes. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;

    use crate::connectors::http::{config::InboundConfig, inbound, template};
    use crate::graph::notifications::crypto::{Decryptor, NotificationKey};
    use crate::graph::notifications::jwt::{JwksCache, TokenValidator};
    use crate::graph::notifications::{NotificationCollection, crypto};

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/rich-notification")
            .join(name)
    }

    /// A notification batch as Graph posts it: parsed, then each encrypted item opened with
    /// the `current` fixture key (id `fixture-current`).
    pub struct Notifications(Decryptor);

    impl Default for Notifications {
        fn default() -> Self {
            let key = NotificationKey::load(
                "fixture-current",
                &fixture("current.cert.pem"),
                &fixture("current.key.pem"),
            )
            .expect("fixture key");
            Self(Decryptor::new(vec![key]))
        }
    }

    impl Notifications {
        pub fn run(&self, data: &[u8]) {
            let Ok(batch) = serde_json::from_slice::<NotificationCollection>(data) else {
                return;
            };
            let rich: Vec<_> = batch
                .value
                .iter()
                .filter_map(|n| n.encrypted_content.as_ref())
                .collect();
            for plain in self.0.decrypt_batch(&rich, 1).into_iter().flatten() {
                let _ = serde_json::from_slice::<serde_json::Value>(&plain);
            }
        }
    }

    /// Validation tokens checked against the `current` fixture key (kid `current`).
    pub struct Jwt {
        validator: TokenValidator,
        runtime: tokio::runtime::Runtime,
    }

    impl Default for Jwt {
        fn default() -> Self {
            use rsa::pkcs8::EncodePublicKey;
            let pem = std::fs::read_to_string(fixture("current.cert.pem")).expect("fixture");
            let der = x509_cert::der::DecodePem::from_pem(pem.as_bytes())
                .and_then(|c: x509_cert::Certificate| x509_cert::der::Encode::to_der(&c))
                .expect("certificate");
            let public = crypto::public_key_from_certificate_der(&der).expect("public key");
            let pem = public
                .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                .expect("pem");
            let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).expect("key");
            let url = url::Url::parse("http://127.0.0.1:9/keys").expect("url");
            let jwks = JwksCache::preloaded(url, vec![("current".into(), key)]);
            Self {
                validator: TokenValidator::new(
                    jwks,
                    "11111111-2222-3333-4444-555555555555",
                    "99999999-8888-7777-6666-555555555555",
                    "https://login.microsoftonline.com",
                ),
                // Timers and I/O on: a token naming an unknown key makes the cache try to
                // fetch the key set again (from a closed port here), with a timeout.
                runtime: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime"),
            }
        }
    }

    impl Jwt {
        pub fn run(&self, data: &[u8]) {
            let tokens: Vec<String> = String::from_utf8_lossy(data)
                .split('\n')
                .map(str::to_owned)
                .collect();
            let _ = self.runtime.block_on(self.validator.validate_all(&tokens));
        }
    }

    /// An `http` connector's inbound webhook body: the first byte picks JSON or a form body.
    pub fn http_events(data: &[u8]) {
        let cfg: InboundConfig = serde_json::from_value(serde_json::json!({
            "verify": {"type": "shared_secret", "header": "x-secret", "secret": "s"},
            "events_pointer": "/events",
            "agent_id_pointer": "/agent/id",
            "status_pointer": "/status",
            "timestamp_pointer": "/at",
            "event_id_pointer": "/id",
            "activity": {"pointer": "/activity", "values": {"talking": "on_contact"},
                         "channel_pointer": "/channel", "channels": {"phone": "voice"}},
        }))
        .expect("inbound config");
        let Some((kind, body)) = data.split_first() else {
            return;
        };
        let mut headers = reqwest::header::HeaderMap::new();
        let content_type = if kind & 1 == 0 {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            content_type.parse().expect("ct"),
        );
        let _ = inbound::extract(&cfg, &headers, body, chrono::Utc::now(), |s| {
            crate::model::CcStatus {
                id: s.to_owned(),
                name: s.to_owned(),
            }
        });
    }

    /// A request template: the input up to the first NUL is the URL template, the rest the
    /// JSON body template, rendered with the variables of a status write. Returns why it was
    /// refused (`None`: it rendered, or the input is not a template).
    pub fn template(data: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(data);
        let (url, body) = text.split_once('\0').unwrap_or((&text, ""));
        let tpl: crate::connectors::http::config::RequestTemplate =
            match serde_json::from_value(serde_json::json!({
                "method": "PUT", "url": url, "body": body,
                "headers": {"x-agent": "{{ agent_id }}"},
            })) {
                Ok(t) => t,
                Err(_) => return None,
            };
        let ctx = serde_json::json!({
            "base_url": "https://cc.example/", "agent_id": "a-1", "status_id": "busy",
            "status_name": "Busy (Teams)", "captures": {"etag": "7"},
        });
        let env = template::environment();
        template::render_request(&env, &tpl, &minijinja::Value::from_serialize(&ctx))
            .err()
            .map(|e| format!("{}: {}", e.field, e.message))
    }

    /// The configuration file: parsed, then (when it parses) validated.
    pub fn config(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(mut cfg) = crate::app::config::Config::from_toml_str_with_env(text, Vec::new()) {
            let _ = cfg.resolve_and_validate();
        }
    }
}

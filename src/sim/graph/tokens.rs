//! The simulated identity platform's side of rich notifications: a signing key, its JWKS, and
//! validation tokens shaped like the ones Graph puts in `validationTokens` (reference/graph.md
//! §3.8 and `validation-token-claims-v2.json`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use crate::graph::notifications::jwt::GRAPH_CHANGE_TRACKING_APP_ID;

/// The simulator's token-signing key (a test key, used by nothing else).
const SIGNING_KEY_PEM: &str = include_str!("keys/token-signing-key.pem");

/// Key id the simulator's tokens and JWKS carry.
pub const SIM_KID: &str = "sim-signing-key-1";

/// Signs validation tokens and publishes the matching JWKS.
pub struct TokenIssuer {
    key: EncodingKey,
    jwks: Value,
}

impl Default for TokenIssuer {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenIssuer {
    pub fn new() -> Self {
        let private = crate::graph::notifications::crypto::parse_private_key(SIGNING_KEY_PEM)
            .expect("simulator signing key parses");
        let public = private.to_public_key();
        let jwks = json!({ "keys": [{
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": SIM_KID,
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        }]});
        Self {
            key: EncodingKey::from_rsa_pem(SIGNING_KEY_PEM.as_bytes())
                .expect("simulator signing key parses"),
            jwks,
        }
    }

    /// The JWKS document (`{"keys":[…]}`).
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// Signs arbitrary claims with the simulator key (tests craft bad tokens with it).
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(SIM_KID.to_owned());
        jsonwebtoken::encode(&header, claims, &self.key).expect("claims serialize")
    }

    /// Claims of a good v2.0 validation token for this app and tenant, valid for an hour.
    pub fn v2_claims(client_id: &str, tenant_id: &str, authority: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "aud": client_id,
            "iss": format!("{}/{tenant_id}/v2.0", authority.trim_end_matches('/')),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "azp": GRAPH_CHANGE_TRACKING_APP_ID,
            "azpacr": "2",
            "tid": tenant_id,
            "ver": "2.0",
        })
    }

    /// A good validation token.
    pub fn validation_token(&self, client_id: &str, tenant_id: &str, authority: &str) -> String {
        self.sign(&Self::v2_claims(client_id, tenant_id, authority))
    }
}

/// Serves `jwks` at `/common/discovery/v2.0/keys` on loopback until `cancel` fires; returns
/// the base URL, usable as the authority (the simulated tenant serves the same path).
pub async fn serve_jwks(
    jwks: Value,
    cancel: tokio_util::sync::CancellationToken,
) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/common/discovery/v2.0/keys",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
    });
    Ok(url)
}

//! App-only auth: the client-credentials grant through the `oauth2` crate, with a client
//! secret or a certificate (signed client assertion). The access token is cached and renewed
//! ahead of its `expires_in`; concurrent callers wait for one refresh.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};
use secrecy::{ExposeSecret, SecretString};
use sha1::Digest as _;

use crate::graph::GraphError;
use crate::graph::config::{AssertionAlgorithm, GraphConfig};
use crate::model::health::{HealthRegistry, HealthState};
use crate::net::token::{IssuedToken, Refresh, RefreshingToken, TokenSource};

/// The readiness component this module reports.
pub const HEALTH_COMPONENT: &str = "graph";
/// Lifetime of a client assertion; Entra wants "5-10 minutes after nbf at most".
const ASSERTION_LIFETIME_SECS: i64 = 300;
/// Assumed token lifetime when the identity platform omits `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(600);
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A certificate and its private key, used to sign client assertions.
pub struct CertificateCredential {
    key: jsonwebtoken::EncodingKey,
    algorithm: AssertionAlgorithm,
    /// base64url SHA-256 of the certificate DER (`x5t#S256`).
    pub x5t_s256: String,
    /// base64url SHA-1 of the certificate DER (`x5t`).
    pub x5t: String,
}

impl std::fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("algorithm", &self.algorithm)
            .field("x5t_s256", &self.x5t_s256)
            .finish_non_exhaustive()
    }
}

/// Why the app's certificate credential cannot be loaded (reported at start).
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a PEM certificate: {0}")]
    Certificate(#[from] x509_cert::der::Error),
    #[error("{} is not a PEM RSA private key", .0.display())]
    Key(PathBuf),
}

/// base64url SHA-256 and SHA-1 thumbprints of a PEM certificate: `(x5t#S256, x5t)`.
pub fn cert_thumbprints(cert_pem: &str) -> Result<(String, String), CredentialError> {
    use x509_cert::der::{DecodePem, Encode};
    let der = x509_cert::Certificate::from_pem(cert_pem.as_bytes())?.to_der()?;
    Ok((
        URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der)),
        URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der)),
    ))
}

impl CertificateCredential {
    pub fn load(
        cert: &Path,
        key: &Path,
        algorithm: AssertionAlgorithm,
    ) -> Result<Self, CredentialError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| CredentialError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        let (x5t_s256, x5t) = cert_thumbprints(&String::from_utf8_lossy(&cert_pem))?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&key_pem)
            .map_err(|_| CredentialError::Key(key.to_owned()))?;
        Ok(Self {
            key,
            algorithm,
            x5t_s256,
            x5t,
        })
    }

    /// A signed client assertion for `client_id` addressed to `token_url`.
    pub fn assertion(&self, client_id: &str, token_url: &str) -> Result<String, GraphError> {
        let mut header = jsonwebtoken::Header::new(match self.algorithm {
            AssertionAlgorithm::PS256 => jsonwebtoken::Algorithm::PS256,
            AssertionAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        });
        header.typ = Some("JWT".into());
        match self.algorithm {
            AssertionAlgorithm::PS256 => header.x5t_s256 = Some(self.x5t_s256.clone()),
            AssertionAlgorithm::RS256 => header.x5t = Some(self.x5t.clone()),
        }
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({
            "aud": token_url,
            "exp": now + ASSERTION_LIFETIME_SECS,
            "iss": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "sub": client_id,
        });
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| GraphError::Unauthorized(format!("cannot sign client assertion: {e}")))
    }
}

/// How the app proves itself.
#[derive(Debug)]
pub enum AppCredential {
    Secret(SecretString),
    Certificate(CertificateCredential),
}

impl AppCredential {
    pub fn from_config(cfg: &GraphConfig) -> Result<Self, GraphError> {
        match (
            &cfg.client_secret,
            &cfg.certificate_file,
            &cfg.certificate_key_file,
        ) {
            (Some(s), _, _) => Ok(Self::Secret(s.clone())),
            (None, Some(c), Some(k)) => CertificateCredential::load(c, k, cfg.assertion_algorithm)
                .map(Self::Certificate)
                .map_err(|e| GraphError::Unauthorized(e.to_string())),
            _ => Err(GraphError::Unauthorized(
                "no client secret or certificate configured".into(),
            )),
        }
    }
}

/// Gets app-only tokens from the identity platform and reports the outcome of each refresh as
/// the `graph` readiness component.
pub(crate) struct AppTokenSource {
    cfg: Arc<GraphConfig>,
    http: reqwest::Client,
    credential: AppCredential,
    health: Option<HealthRegistry>,
}

impl std::fmt::Debug for AppTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppTokenSource")
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

/// The app-only token, shared by all clones of the client.
pub(crate) type AppAuth = RefreshingToken<AppTokenSource>;

/// The app token cache for `cfg`, renewed `graph.token_refresh_margin_secs` ahead of expiry.
pub(crate) fn app_auth(
    cfg: Arc<GraphConfig>,
    http: reqwest::Client,
    health: Option<HealthRegistry>,
) -> Result<AppAuth, GraphError> {
    let credential = AppCredential::from_config(&cfg)?;
    let margin = Duration::from_secs(cfg.token_refresh_margin_secs);
    let source = AppTokenSource {
        cfg,
        http,
        credential,
        health,
    };
    Ok(RefreshingToken::new(source, margin))
}

impl TokenSource for AppTokenSource {
    type Error = GraphError;

    async fn fetch(&self) -> Result<IssuedToken, GraphError> {
        let client_id = self.cfg.client_id.clone().unwrap_or_default();
        let token_url = self.cfg.identity_url("token");
        let mut client = BasicClient::new(ClientId::new(client_id.clone()))
            .set_token_uri(
                TokenUrl::new(token_url.clone())
                    .map_err(|e| GraphError::Unauthorized(format!("bad token url: {e}")))?,
            )
            .set_auth_type(AuthType::RequestBody);
        let assertion = match &self.credential {
            AppCredential::Secret(s) => {
                client = client.set_client_secret(ClientSecret::new(s.expose_secret().to_owned()));
                None
            }
            AppCredential::Certificate(c) => Some(c.assertion(&client_id, &token_url)?),
        };
        let mut req = client
            .exchange_client_credentials()
            .add_scope(Scope::new(self.cfg.app_scope()));
        if let Some(a) = assertion {
            req = req
                .add_extra_param("client_assertion_type", ASSERTION_TYPE)
                .add_extra_param("client_assertion", a);
        }
        let resp = req.request_async(&self.http).await.map_err(token_error)?;
        Ok(IssuedToken {
            secret: SecretString::from(resp.access_token().secret().clone()),
            lifetime: resp.expires_in().unwrap_or(DEFAULT_TOKEN_LIFETIME),
        })
    }

    fn observe(&self, refresh: Refresh<'_, GraphError>) {
        let Some(h) = &self.health else { return };
        let (state, detail) = match refresh {
            Refresh::Acquired => (HealthState::Up, "app token acquired".to_owned()),
            Refresh::FailedKeepingOld(e) => {
                (HealthState::Degraded, format!("token refresh failing: {e}"))
            }
            Refresh::Failed(e) => (HealthState::Down, format!("token request failed: {e}")),
        };
        h.set(HEALTH_COMPONENT, true, state, detail);
    }
}

/// Maps an `oauth2` token error to a [`GraphError`]; never includes request parameters.
pub fn token_error<RE, T>(e: RequestTokenError<RE, T>) -> GraphError
where
    RE: std::error::Error + 'static,
    T: oauth2::ErrorResponse + 'static,
{
    match e {
        RequestTokenError::ServerResponse(r) => GraphError::Unauthorized(r.to_string()),
        RequestTokenError::Request(e) => GraphError::Transport(crate::net::transport::describe(&e)),
        RequestTokenError::Parse(e, _) => GraphError::Decode(e.to_string()),
        RequestTokenError::Other(e) => GraphError::Decode(e),
    }
}

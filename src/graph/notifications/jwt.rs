//! Validation of the JWTs Graph puts in `validationTokens` of rich notifications
//! (reference/graph.md §3.8): RS256 signature from the authority's JWKS (cached, refreshed when
//! a token names an unknown `kid`), `aud` = our client id, issuer of our tenant (v1 or v2
//! form), publisher `appid` (v1) / `azp` (v2) = the Graph Change Tracking app, `exp`/`nbf`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;

/// The "Microsoft Graph Change Tracking" application that signs notification batches.
pub const GRAPH_CHANGE_TRACKING_APP_ID: &str = "0bf30f3b-4a52-48df-9a82-234910c4a086";

/// Keys rotate rarely, but an unknown `kid` may also be an attacker's invention: refetch the
/// JWKS for an unknown kid at most this often, so forged tokens cannot make us hammer the
/// authority.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Even without unknown kids, refetch the JWKS this often so retired keys stop being trusted.
const MAX_KEY_AGE: Duration = Duration::from_secs(24 * 3600);

/// Clock skew allowed on `exp`/`nbf`, in seconds.
const LEEWAY_SECS: u64 = 60;

/// Why a validation token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("rich notifications without validation tokens")]
    Missing,
    #[error("token header unreadable")]
    Header,
    #[error("token signed with an unknown key")]
    UnknownKey,
    #[error("signing keys unavailable: {0}")]
    Jwks(String),
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("token not issued by the Graph change-tracking app")]
    Publisher,
}

impl JwtError {
    /// A failure on our side (keys could not be fetched), not the sender's.
    pub fn is_ours(&self) -> bool {
        matches!(self, JwtError::Jwks(_))
    }
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
}

/// Cached JWKS of the identity authority.
pub struct JwksCache {
    url: url::Url,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
    fetch_lock: Mutex<()>,
}

impl JwksCache {
    pub fn new(url: url::Url, http: reqwest::Client) -> Self {
        Self {
            url,
            http,
            cache: RwLock::new(KeyCache::default()),
            fetch_lock: Mutex::new(()),
        }
    }

    /// A cache that already holds `keys` (by `kid`), as if just fetched from `url`: for the
    /// fuzz targets, which must not reach the network.
    #[doc(hidden)]
    pub fn preloaded(url: url::Url, keys: Vec<(String, DecodingKey)>) -> Self {
        let cache = Self::new(url, reqwest::Client::new());
        *cache.cache.try_write().expect("new cache is free") = KeyCache {
            keys: keys.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
            fetched_at: Some(Instant::now()),
        };
        cache
    }

    /// The key `kid` names, fetching the set again when it is unknown or old.
    pub async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, JwtError> {
        {
            let c = self.cache.read().await;
            let fresh = c.fetched_at.is_some_and(|t| t.elapsed() < MAX_KEY_AGE);
            if fresh && let Some(k) = c.keys.get(kid) {
                return Ok(k.clone());
            }
        }
        let _guard = self.fetch_lock.lock().await;
        {
            let c = self.cache.read().await;
            let recent = c
                .fetched_at
                .is_some_and(|t| t.elapsed() < MIN_REFETCH_INTERVAL);
            if let Some(k) = c.keys.get(kid)
                && c.fetched_at.is_some_and(|t| t.elapsed() < MAX_KEY_AGE)
            {
                return Ok(k.clone());
            }
            if recent {
                return Err(JwtError::UnknownKey);
            }
        }
        let keys = self.fetch().await?;
        let mut c = self.cache.write().await;
        c.keys = keys;
        c.fetched_at = Some(Instant::now());
        c.keys.get(kid).cloned().ok_or(JwtError::UnknownKey)
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<DecodingKey>>, JwtError> {
        let set: JwkSet = self
            .http
            .get(self.url.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| JwtError::Jwks(e.to_string()))?
            .json()
            .await
            .map_err(|e| JwtError::Jwks(e.to_string()))?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((kid, Arc::new(key)))
            })
            .collect())
    }
}

#[derive(serde::Deserialize)]
struct PublisherClaims {
    ver: Option<String>,
    azp: Option<String>,
    appid: Option<String>,
}

/// Validates the tokens of one batch.
pub struct TokenValidator {
    jwks: JwksCache,
    validation: Validation,
}

impl TokenValidator {
    /// `authority` is e.g. `https://login.microsoftonline.com` (no trailing slash needed).
    pub fn new(jwks: JwksCache, client_id: &str, tenant_id: &str, authority: &str) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[client_id]);
        validation.set_issuer(&[
            format!("https://sts.windows.net/{tenant_id}/"),
            format!("{}/{tenant_id}/v2.0", authority.trim_end_matches('/')),
        ]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        Self { jwks, validation }
    }

    /// Every token must pass; an empty list is refused.
    pub async fn validate_all(&self, tokens: &[String]) -> Result<(), JwtError> {
        if tokens.is_empty() {
            return Err(JwtError::Missing);
        }
        for token in tokens {
            self.validate(token).await?;
        }
        Ok(())
    }

    async fn validate(&self, token: &str) -> Result<(), JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Header)?;
        if header.alg != Algorithm::RS256 {
            return Err(JwtError::Header);
        }
        let kid = header.kid.ok_or(JwtError::Header)?;
        let key = self.jwks.key(&kid).await?;
        let data = jsonwebtoken::decode::<PublisherClaims>(token, &key, &self.validation)
            .map_err(|e| JwtError::Invalid(format!("{:?}", e.kind())))?;
        let c = data.claims;
        let publisher = match c.ver.as_deref() {
            Some("1.0") => c.appid,
            Some("2.0") => c.azp,
            _ => c.azp.or(c.appid),
        };
        if publisher.as_deref() == Some(GRAPH_CHANGE_TRACKING_APP_ID) {
            Ok(())
        } else {
            Err(JwtError::Publisher)
        }
    }
}

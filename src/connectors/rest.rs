//! One authenticated REST client for the connectors that speak HTTP: every request goes
//! through the connector's [`Resilience`] (rate limit, retries, Retry-After, health), and an
//! OAuth2 token is fetched again once after a 401.

use base64::Engine;
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName};
use secrecy::{ExposeSecret, SecretString};

use super::ConnectorError;
use super::oauth::TokenCache;
use super::retry::{Resilience, classify, transport};

/// Characters a path segment keeps as they are: RFC 3986 "unreserved".
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `value` as exactly one URL path segment: everything but the unreserved characters is
/// percent-encoded, `/` included, so an id such as `a/../../x` cannot leave its segment.
/// `None` for `.` and `..`, which URL parsers resolve as dot segments even when
/// percent-encoded (WHATWG URL, "single-dot" and "double-dot" segments).
pub fn path_segment(value: &str) -> Option<String> {
    (value != "." && value != "..").then(|| component(value))
}

/// `value` with everything but the unreserved characters percent-encoded.
pub fn component(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, UNRESERVED).to_string()
}

/// How requests authenticate.
pub enum Auth {
    None,
    Header(HeaderName, SecretString),
    Basic(String, SecretString),
    Bearer(SecretString),
    OAuth2(Box<TokenCache>),
}

impl Auth {
    /// The header this auth adds, with the secret part shown as `[redacted]`.
    pub fn redacted_header(&self) -> Option<(String, String)> {
        match self {
            Auth::None => None,
            Auth::Header(n, _) => Some((n.to_string(), "[redacted]".into())),
            Auth::Basic(..) => Some(("Authorization".into(), "Basic [redacted]".into())),
            Auth::Bearer(_) | Auth::OAuth2(_) => {
                Some(("Authorization".into(), "Bearer [redacted]".into()))
            }
        }
    }

    /// Adds the credentials to `rb`; also returns the OAuth2 token used, if any.
    async fn apply(
        &self,
        rb: reqwest::RequestBuilder,
    ) -> Result<(reqwest::RequestBuilder, Option<SecretString>), ConnectorError> {
        Ok(match self {
            Auth::None => (rb, None),
            Auth::Header(n, v) => (rb.header(n, v.expose_secret()), None),
            Auth::Basic(u, p) => {
                let b64 = base64::engine::general_purpose::STANDARD
                    .encode(format!("{u}:{}", p.expose_secret()));
                (rb.header(AUTHORIZATION, format!("Basic {b64}")), None)
            }
            Auth::Bearer(t) => (rb.bearer_auth(t.expose_secret()), None),
            Auth::OAuth2(c) => {
                let token = c.token().await?;
                (rb.bearer_auth(token.expose_secret()), Some(token))
            }
        })
    }
}

/// A response whose status was accepted.
#[derive(Debug, Clone)]
pub struct RestResponse {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RestResponse {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body).map_err(|e| ConnectorError::Decode(e.to_string()))
    }
}

pub struct RestClient {
    pub http: reqwest::Client,
    pub auth: Auth,
    pub resilience: Resilience,
}

impl RestClient {
    /// Sends the request `build` makes (rebuilt for each attempt). `accepted` lists the
    /// success codes (`None` = any 2xx).
    pub async fn send<F>(
        &self,
        what: &str,
        accepted: Option<&[u16]>,
        build: F,
    ) -> Result<RestResponse, ConnectorError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    {
        self.resilience
            .call(what, || self.attempt(accepted, &build))
            .await
    }

    async fn attempt<F>(
        &self,
        accepted: Option<&[u16]>,
        build: &F,
    ) -> Result<RestResponse, ConnectorError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    {
        let mut refreshed = false;
        loop {
            let (rb, token) = self.auth.apply(build(&self.http)).await?;
            let resp = rb.send().await.map_err(transport)?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.map_err(transport)?;
            let ok = match accepted {
                Some(codes) => codes.contains(&status.as_u16()),
                None => status.is_success(),
            };
            if ok {
                return Ok(RestResponse { headers, body });
            }
            if status == StatusCode::UNAUTHORIZED
                && !refreshed
                && let (Auth::OAuth2(c), Some(used)) = (&self.auth, &token)
            {
                c.invalidate(used).await;
                refreshed = true;
                continue;
            }
            return Err(classify(status, &headers, &body));
        }
    }
}

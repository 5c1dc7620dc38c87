//! The Graph calls the bridge makes as a support account (delegated token of its sync
//! account; Graph lets an app post chat messages on its own only for migration):
//!
//! - `POST /chats/{chat-id}/messages` (`ChatMessage.Send`; `201` with the chatMessage)
//!   <https://learn.microsoft.com/en-us/graph/api/chat-post-messages>;
//! - the bytes of an image a message embeds: `GET …/hostedContents/{id}/$value`
//!   <https://learn.microsoft.com/en-us/graph/api/chatmessagehostedcontent-get>;
//! - a shared file (a `reference` attachment): `GET /shares/u!{base64url(url)}/driveItem/content`
//!   <https://learn.microsoft.com/en-us/graph/api/shares-get> (needs `Files.Read.All`).
//!
//! Downloads stream and stop at `messaging.max_attachment_bytes`; the delegated token is only
//! ever sent to `graph.base_url`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};

use crate::graph::GraphError;
use crate::graph::accounts::{AccountError, AccountTokens};
use crate::graph::client::{ApiFamily, GraphClient, GraphRequest};

/// What a download ended with.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("larger than the limit ({bytes} bytes or more)")]
    TooLarge { bytes: u64 },
    #[error("throttled")]
    Throttled(Option<Duration>),
    /// Worth another try (5xx, transport).
    #[error("{0}")]
    Transient(String),
    /// Will not work on a retry (404, 403, a host we do not send tokens to).
    #[error("{0}")]
    Refused(String),
}

/// A downloaded file.
#[derive(Debug)]
pub struct Downloaded {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

/// Graph chat calls on behalf of support accounts.
pub struct TeamsChats {
    client: GraphClient,
    accounts: Arc<AccountTokens>,
    http: reqwest::Client,
    graph_base: String,
}

/// Longest a download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

impl TeamsChats {
    pub fn new(client: GraphClient, accounts: Arc<AccountTokens>) -> Result<Self, GraphError> {
        let graph_base = client
            .config()
            .base_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let http = reqwest::Client::builder()
            .timeout(DOWNLOAD_TIMEOUT)
            .build()
            .map_err(|e| GraphError::Transport(crate::net::transport::describe(&e)))?;
        Ok(Self {
            client,
            accounts,
            http,
            graph_base,
        })
    }

    async fn token(&self, account_id: &str) -> Result<SecretString, GraphError> {
        self.accounts
            .access_token(account_id)
            .await
            .map_err(|e| match e {
                AccountError::Graph(g) => g,
                other => GraphError::Unauthorized(other.to_string()),
            })
    }

    /// Posts HTML into the chat as the account; returns the new message's id.
    pub async fn post_message(
        &self,
        account_id: &str,
        chat_id: &str,
        html: &str,
    ) -> Result<String, GraphError> {
        #[derive(serde::Deserialize)]
        struct Created {
            id: String,
        }
        let token = self.token(account_id).await?;
        let url = format!("chats/{}/messages", path_segment(chat_id));
        let body = serde_json::json!({"body": {"contentType": "html", "content": html}});
        let req = GraphRequest::new(Method::POST, url, ApiFamily::Other)
            .json(body)
            .bearer(token);
        let created: Created = self.client.send_json(req).await?;
        Ok(created.id)
    }

    /// Downloads a hosted content (`src` of an embedded image) as the account.
    pub async fn download_hosted(
        &self,
        account_id: &str,
        url: &str,
        max: u64,
    ) -> Result<Downloaded, DownloadError> {
        if !url.starts_with(&format!("{}/", self.graph_base)) {
            return Err(DownloadError::Refused(
                "image is not hosted by Microsoft Graph".into(),
            ));
        }
        let token = self.token(account_id).await.map_err(graph_download_error)?;
        let req = self.http.get(url).bearer_auth(token.expose_secret());
        fetch_capped(req, max).await
    }

    /// Downloads a shared file (a `reference` attachment's `contentUrl`) as the account.
    pub async fn download_shared(
        &self,
        account_id: &str,
        content_url: &str,
        max: u64,
    ) -> Result<Downloaded, DownloadError> {
        let share = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(content_url);
        let url = format!("{}/shares/u!{share}/driveItem/content", self.graph_base);
        let token = self.token(account_id).await.map_err(graph_download_error)?;
        let req = self.http.get(url).bearer_auth(token.expose_secret());
        fetch_capped(req, max).await
    }

    /// Downloads an agent's attachment from the (pre-signed) URL Genesys gave.
    pub async fn download_public(&self, url: &str, max: u64) -> Result<Downloaded, DownloadError> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(DownloadError::Refused("not an http(s) URL".into()));
        }
        fetch_capped(self.http.get(url), max).await
    }
}

fn graph_download_error(e: GraphError) -> DownloadError {
    match e {
        GraphError::Throttled { retry_after } => DownloadError::Throttled(retry_after),
        e if e.is_transient() => DownloadError::Transient(e.to_string()),
        e => DownloadError::Refused(e.to_string()),
    }
}

/// A chat id as a path segment: raw, as Graph's examples show them (`19:…@thread.v2`), with
/// only the characters that would end or escape a segment percent-encoded.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '/' => out.push_str("%2F"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            '%' => out.push_str("%25"),
            ' ' => out.push_str("%20"),
            c => out.push(c),
        }
    }
    out
}

/// Sends `req` and reads the body, stopping once it passes `max` bytes.
async fn fetch_capped(req: reqwest::RequestBuilder, max: u64) -> Result<Downloaded, DownloadError> {
    let resp = req
        .send()
        .await
        .map_err(|e| DownloadError::Transient(crate::net::transport::describe(&e)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(match status.as_u16() {
            429 | 503 => {
                DownloadError::Throttled(crate::net::retry_after::from_headers(resp.headers()))
            }
            500..=599 | 408 => DownloadError::Transient(format!("HTTP {status}")),
            _ => DownloadError::Refused(format!("HTTP {status}")),
        });
    }
    if let Some(len) = resp.content_length()
        && len > max
    {
        return Err(DownloadError::TooLarge { bytes: len });
    }
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut bytes = Vec::new();
    let mut resp = resp;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| DownloadError::Transient(crate::net::transport::describe(&e)))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > max {
            return Err(DownloadError::TooLarge {
                bytes: bytes.len() as u64,
            });
        }
    }
    Ok(Downloaded {
        bytes,
        content_type,
    })
}

//! `[server]` and `[api]`: the HTTP listener and the management API.

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigErrors, resolve_secret, serialize_redacted_opt};

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP server binds, e.g. `0.0.0.0:8080`. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Public HTTPS base URL under which Graph and connectors reach this daemon; webhook URLs
    /// are built from it (`{public_url}/graph/notifications`). Required for webhooks.
    pub public_url: Option<url::Url>,
    /// Largest request body accepted, in bytes; larger requests get 413.
    pub body_limit_bytes: usize,
    /// How long a graceful shutdown waits for in-flight requests and jobs, in seconds.
    pub shutdown_grace_secs: u64,
    /// Per-request timeout for inbound requests, in seconds.
    pub request_timeout_secs: u64,
    /// How long a client may take to send a request's headers, in seconds, counted from
    /// when the server starts waiting for them. On HTTP/1.1 that wait includes the idle time
    /// of a keep-alive connection between two requests. The connection is closed when it runs out.
    pub header_read_timeout_secs: u64,
    /// A connection with no request in progress for this long is closed, in seconds
    /// (keep-alive connections, HTTP/2 connections, and connections that never send a byte).
    pub idle_timeout_secs: u64,
    /// Most connections served at once. Beyond it a new connection is answered at once with
    /// `503 Service Unavailable` (`Retry-After: 1`) and closed, so the listener keeps draining
    /// its queue. Keep it well below the process's open-file limit (`ulimit -n`).
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".parse().expect("valid default address"),
            public_url: None,
            body_limit_bytes: 1024 * 1024,
            shutdown_grace_secs: 20,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 30,
            max_connections: 1024,
        }
    }
}

impl ServerConfig {
    pub fn validate(&self, path: &str, errs: &mut ConfigErrors) {
        if let Some(u) = &self.public_url {
            errs.http_url(ConfigErrors::key(path, "public_url"), u);
        }
        errs.at_least(path, "body_limit_bytes", self.body_limit_bytes, 1024);
        errs.at_least(path, "request_timeout_secs", self.request_timeout_secs, 1);
        errs.at_least(
            path,
            "header_read_timeout_secs",
            self.header_read_timeout_secs,
            1,
        );
        errs.at_least(path, "idle_timeout_secs", self.idle_timeout_secs, 1);
        errs.at_least(path, "max_connections", self.max_connections, 1);
    }
}

/// `[api]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Bearer token that `/api/v1/*` requires. Without one (inline or file) the API answers 404.
    #[serde(serialize_with = "serialize_redacted_opt")]
    pub bearer_token: Option<SecretString>,
    /// File holding the bearer token (trailing newline trimmed).
    pub bearer_token_file: Option<PathBuf>,
}

impl ApiConfig {
    /// Resolves the token from the file when one is given.
    pub fn validate(&mut self, path: &str, errs: &mut ConfigErrors) {
        self.bearer_token = resolve_secret(
            errs,
            &ConfigErrors::key(path, "bearer_token"),
            self.bearer_token.take(),
            self.bearer_token_file.as_deref(),
        );
    }
}

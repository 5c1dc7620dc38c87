//! `[console]`: the operator console at `/` and how people sign in to it.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigErrors, resolve_secret, serialize_redacted_opt};

/// How people sign in to the console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleAuth {
    /// Microsoft Entra ID (OpenID Connect, authorization code flow with PKCE).
    #[default]
    Entra,
    /// No sign-in: whoever reaches the port is an operator. Only with a loopback
    /// `server.listen`.
    None,
}

/// `[console]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve the console (team, person, health pages and actions) at `/`.
    pub enabled: bool,
    /// `entra` (default) or `none` (loopback `server.listen` only).
    pub auth: ConsoleAuth,
    /// Directory (tenant) id people sign in with; default `graph.tenant_id`.
    pub tenant_id: Option<String>,
    /// Application (client) id of the app registration people sign in to; default
    /// `graph.client_id`. Its redirect URI (platform "Web") is `{public URL}/console/callback`.
    pub client_id: Option<String>,
    /// Client secret of that app, sent when redeeming the code; default `graph.client_secret`.
    #[serde(serialize_with = "serialize_redacted_opt")]
    pub client_secret: Option<SecretString>,
    /// File holding that client secret.
    pub client_secret_file: Option<PathBuf>,
    /// Identity platform endpoint; default `graph.authority_url`.
    pub authority_url: Option<url::Url>,
    /// The console's base URL as browsers reach it (the redirect URI is built from it);
    /// default `server.public_url`, else `http://{server.listen}`. With `https` the session
    /// cookie is `Secure`.
    pub public_url: Option<url::Url>,
    /// App role values (the `roles` claim) that make someone an operator (may act).
    pub operator_roles: Vec<String>,
    /// App role values that make someone a viewer (read-only).
    pub viewer_roles: Vec<String>,
    /// Entra group object ids (the `groups` claim) that make someone an operator.
    pub operator_groups: Vec<String>,
    /// Entra group object ids that make someone a viewer.
    pub viewer_groups: Vec<String>,
    /// How long a console session lasts after sign-in, in seconds.
    pub session_ttl_secs: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            auth: ConsoleAuth::Entra,
            tenant_id: None,
            client_id: None,
            client_secret: None,
            client_secret_file: None,
            authority_url: None,
            public_url: None,
            operator_roles: vec!["PresenceBridge.Operator".into()],
            viewer_roles: vec!["PresenceBridge.Viewer".into()],
            operator_groups: Vec::new(),
            viewer_groups: Vec::new(),
            session_ttl_secs: 8 * 3600,
        }
    }
}

impl ConsoleConfig {
    /// Checks the section against `[server]` (loopback for `auth = "none"`) and `[graph]`
    /// (where the tenant and client default from).
    pub fn validate(
        &mut self,
        path: &str,
        listen: std::net::SocketAddr,
        graph_tenant: Option<&str>,
        graph_client: Option<&str>,
        errs: &mut ConfigErrors,
    ) {
        self.client_secret = resolve_secret(
            errs,
            &ConfigErrors::key(path, "client_secret"),
            self.client_secret.take(),
            self.client_secret_file.as_deref(),
        );
        if let Some(u) = &self.public_url {
            errs.http_url(ConfigErrors::key(path, "public_url"), u);
        }
        errs.at_least(path, "session_ttl_secs", self.session_ttl_secs, 60);
        if !self.enabled {
            return;
        }
        match self.auth {
            ConsoleAuth::None => {
                if !listen.ip().is_loopback() {
                    errs.push(
                        ConfigErrors::key(path, "auth"),
                        format!(
                            "\"none\" is only accepted when server.listen is a loopback address \
                             (it is {listen}); sign people in with \"entra\""
                        ),
                    );
                }
            }
            ConsoleAuth::Entra => {
                if self.tenant_id.as_deref().or(graph_tenant).is_none() {
                    errs.push(
                        ConfigErrors::key(path, "tenant_id"),
                        "sign-in with Entra ID needs a tenant: set console.tenant_id or graph.tenant_id",
                    );
                }
                if self.client_id.as_deref().or(graph_client).is_none() {
                    errs.push(
                        ConfigErrors::key(path, "client_id"),
                        "sign-in with Entra ID needs an app: set console.client_id or graph.client_id",
                    );
                }
                if self.operator_roles.is_empty()
                    && self.viewer_roles.is_empty()
                    && self.operator_groups.is_empty()
                    && self.viewer_groups.is_empty()
                {
                    errs.push(
                        path,
                        "no app role or group lets anyone in: set operator_roles, viewer_roles, \
                         operator_groups or viewer_groups",
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(auth: ConsoleAuth, listen: &str) -> Vec<String> {
        let mut c = ConsoleConfig {
            enabled: true,
            auth,
            ..ConsoleConfig::default()
        };
        let mut errs = ConfigErrors::default();
        c.validate(
            "console",
            listen.parse().unwrap(),
            Some("t"),
            Some("c"),
            &mut errs,
        );
        errs.iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect()
    }

    #[test]
    fn no_sign_in_only_on_loopback() {
        assert!(check(ConsoleAuth::None, "127.0.0.1:8080").is_empty());
        assert!(check(ConsoleAuth::None, "[::1]:8080").is_empty());
        let errs = check(ConsoleAuth::None, "0.0.0.0:8080");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("console.auth: "), "{errs:?}");
        assert!(check(ConsoleAuth::Entra, "0.0.0.0:8080").is_empty());
    }

    #[test]
    fn entra_needs_a_tenant_an_app_and_a_role() {
        let mut c = ConsoleConfig {
            enabled: true,
            operator_roles: vec![],
            viewer_roles: vec![],
            ..ConsoleConfig::default()
        };
        let mut errs = ConfigErrors::default();
        c.validate(
            "console",
            "0.0.0.0:80".parse().unwrap(),
            None,
            None,
            &mut errs,
        );
        let paths: Vec<String> = errs.iter().map(|e| e.path.clone()).collect();
        assert_eq!(paths, ["console.tenant_id", "console.client_id", "console"]);
    }
}

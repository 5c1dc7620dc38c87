//! Wiring of the console: `[console]` with its defaults from `[graph]` and `[server]`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{AppError, Core};
use crate::http::console::accounts::AccountSignIns;
use crate::http::console::config::ConsoleAuth;
use crate::http::console::signin::{Access, Entra};
use crate::http::console::{ConsoleAuthMode, ConsoleSettings, ConsoleState};
use crate::http::health::Readiness;

/// The console's state: off unless `console.enabled`.
pub(super) fn state(
    core: &Core,
    addr: SocketAddr,
    cancel: &CancellationToken,
) -> Result<ConsoleState, AppError> {
    let cfg = &core.config;
    let c = &cfg.console;
    if !c.enabled {
        return Ok(ConsoleState::disabled());
    }
    let public = c
        .public_url
        .clone()
        .or_else(|| cfg.server.public_url.clone())
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("http://{addr}"));
    let auth = match c.auth {
        ConsoleAuth::None => ConsoleAuthMode::None,
        ConsoleAuth::Entra => {
            let missing = |what: &str| AppError::Config(format!("console: no {what}"));
            let entra = Entra::new(
                c.tenant_id
                    .clone()
                    .or_else(|| cfg.graph.tenant_id.clone())
                    .ok_or_else(|| missing("tenant_id"))?,
                c.client_id
                    .clone()
                    .or_else(|| cfg.graph.client_id.clone())
                    .ok_or_else(|| missing("client_id"))?,
                c.client_secret
                    .clone()
                    .or_else(|| cfg.graph.client_secret.clone()),
                c.authority_url.as_ref().unwrap_or(&cfg.graph.authority_url),
                format!("{public}/console/callback"),
                Access {
                    operator_roles: c.operator_roles.clone(),
                    viewer_roles: c.viewer_roles.clone(),
                    operator_groups: c.operator_groups.clone(),
                    viewer_groups: c.viewer_groups.clone(),
                },
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(cfg.graph.request_timeout_secs))
                    .build()
                    .map_err(|e| AppError::Other(e.to_string()))?,
            )
            .map_err(|e| AppError::Config(format!("console: authority URL: {e}")))?;
            ConsoleAuthMode::Entra(entra)
        }
    };
    Ok(ConsoleState::new(
        ConsoleSettings {
            auth,
            secure_cookies: public.starts_with("https://"),
            session_ttl: Duration::from_secs(c.session_ttl_secs),
            shutdown: cancel.clone(),
            accounts: AccountSignIns::new(
                cfg.graph
                    .enabled()
                    .then(|| std::sync::Arc::new(cfg.graph.clone())),
                core.health.clone(),
            ),
        },
        core.store.clone(),
        core.inbox.clone(),
        Readiness::new(core.store.clone(), core.health.clone()),
    ))
}

//! `connectors render NAME AGENT STATUS`.

use super::out::out;
use crate::app::config::Config;

/// Prints the exact set-status request an http connector would send (secrets redacted).
pub(super) async fn render(
    config: &Config,
    name: &str,
    agent: &str,
    status: &str,
) -> anyhow::Result<()> {
    let text =
        crate::connectors::render_set_status(&config.connectors, name, agent, status).await?;
    out!("{text}")?;
    Ok(())
}

//! `presence-bridge accounts add|list|remove`: manage the delegated sync accounts.

use super::out::outln;
use std::io::Write;

use crate::app::config::Config;
use crate::graph::accounts::AccountTokens;

/// `accounts` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AccountsCommand {
    /// Sign in a sync account with the device-code flow: prints a URL and a code, then waits
    /// until the account has signed in (scopes Presence.Read.All offline_access).
    Add,
    /// List the sync accounts: id, user, state, last refresh.
    List,
    /// Remove a sync account, by id or user principal name.
    Remove {
        /// Account id or user principal name.
        account: String,
    },
}

/// Runs an `accounts` subcommand.
pub(super) async fn run(config: &Config, command: AccountsCommand) -> anyhow::Result<()> {
    if !config.graph.enabled() {
        anyhow::bail!("[graph] is not configured (graph.tenant_id is missing)");
    }
    let store = super::open_store(config).await?;
    let tokens = AccountTokens::new(&config.graph, store.clone(), None)?;
    match command {
        AccountsCommand::Add => {
            let rec = tokens
                .add_account(|p| {
                    // Nothing to do when stdout is gone: the sign-in still completes.
                    let _ = outln!("{}", p.message);
                    let _ = outln!("Waiting for the sign-in to finish...");
                    let _ = std::io::stdout().flush();
                })
                .await?;
            outln!("Added sync account {} ({}).", rec.upn, rec.id)?;
        }
        AccountsCommand::List => {
            let accounts = store.list_accounts().await?;
            if accounts.is_empty() {
                outln!("No sync accounts. Add one with `presence-bridge accounts add`.")?;
                return Ok(());
            }
            outln!("{:<36}  {:<32}  {:<8}  LAST REFRESH", "ID", "USER", "STATE")?;
            for a in accounts {
                let last = a
                    .last_refresh_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "never".into());
                outln!("{:<36}  {:<32}  {:<8}  {last}", a.id, a.upn, a.state)?;
            }
        }
        AccountsCommand::Remove { account } => {
            let rec = tokens.remove_account(&account).await?;
            outln!("Removed sync account {} ({}).", rec.upn, rec.id)?;
        }
    }
    Ok(())
}

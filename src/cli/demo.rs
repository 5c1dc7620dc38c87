//! `presence-bridge demo`: the full daemon on SQLite against the simulated Teams tenant and
//! the simulated contact center, both on loopback, with people whose statuses change on both
//! sides (Teams calls and presentations, contact-center contacts, breaks, and flapping that the
//! hold-down swallows). Needs no credentials and no network.

use super::out::outln;
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;

use crate::app::Application;
use crate::app::config::Config;
use crate::sim::contact_center::{self, SimContactCenter};
use crate::sim::graph::{self as sim_graph, SimGraph, SimGraphOptions, SimUser};

/// The demo's static configuration (the simulators' addresses are appended at start).
pub const DEMO_TOML: &str = include_str!("../../config/demo.toml");

/// Name of the simulated contact center's connector.
pub const DEMO_CONNECTOR: &str = "simcc";

/// How often the scenario starts something new for someone: often enough to watch, slow
/// enough to read the log.
const SCENARIO_TICK: Duration = Duration::from_millis(1500);

/// Options of `presence-bridge demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub users: usize,
    /// Overrides `server.listen` of the demo config.
    pub listen: Option<std::net::SocketAddr>,
}

/// The Teams user id of demo person `i` (1-based), a GUID as Graph's are.
pub fn demo_user_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// Builds the demo configuration for simulators at the given addresses.
pub fn demo_config(
    graph: &sim_graph::SimGraphHandle,
    cc: &SimContactCenter,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<Config> {
    let opts = &graph.state.options;
    let text = format!(
        "{DEMO_TOML}\n[graph]\ntenant_id = \"{tenant}\"\nclient_id = \"{client}\"\n\
         client_secret = \"{secret}\"\nbase_url = \"{base}\"\nauthority_url = \"{authority}\"\n\
         presence_source = \"poll\"\ndirectory_sync_interval_secs = 60\n\
         [graph.poll]\ninterval_secs = 2\nsafety_interval_secs = 60\n{connector}",
        tenant = opts.tenant_id,
        client = opts.client_id,
        secret = opts.client_secret.as_deref().unwrap_or_default(),
        base = graph.base_url,
        authority = graph.authority_url,
        connector = cc.connector_toml(DEMO_CONNECTOR),
    );
    let mut cfg = Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new())?;
    if let Some(addr) = listen {
        cfg.server.listen = addr;
    }
    cfg.resolve_and_validate()?;
    Ok(cfg)
}

/// Starts the simulators, seeds `users` people on both sides, and returns them.
pub async fn start_simulators(
    users: usize,
) -> anyhow::Result<(sim_graph::SimGraphHandle, SimContactCenter)> {
    let graph = sim_graph::spawn(SimGraphOptions::default()).await;
    for i in 1..=users {
        let mut user = SimUser::licensed(&demo_user_id(i), &format!("agent{i}@example.com"));
        user.display_name = Some(format!("Agent {i}"));
        user.business_phones = vec![format!("+1 425 555 {:04}", i)];
        graph.state.upsert_user(user);
        graph
            .state
            .set_user_status(&demo_user_id(i), Some(("Available", "Available")));
    }
    let cc = contact_center::spawn(contact_center::SimOptions {
        agents: users,
        page_size: 100,
        ..Default::default()
    })
    .await?;
    Ok((graph, cc))
}

/// Runs the demo until Ctrl-C.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let (graph, cc) = start_simulators(opts.users).await?;
    let config = demo_config(&graph, &cc, opts.listen)?;
    crate::telemetry::init_tracing(&config.log)?;
    // A fresh database every run: the simulators start fresh too.
    if let Some(path) = config.store.sqlite_path().filter(|p| p.exists()) {
        std::fs::remove_file(&path)?;
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
        }
    }
    let app = Application::build(config).await?;
    let base = format!("http://{}", app.local_addr());
    cc.set_webhook_url(&format!("{base}/connectors/{DEMO_CONNECTOR}/events"));

    outln!()?;
    outln!(
        "presence-bridge demo: {} people on a simulated Teams tenant and contact center",
        opts.users
    )?;
    outln!(
        "  users and both statuses: curl -H 'Authorization: Bearer demo-token' {base}/api/v1/users"
    )?;
    outln!(
        "  last reconciliation:     curl -H 'Authorization: Bearer demo-token' {base}/api/v1/reconcile/last"
    )?;
    outln!("  readiness:               {base}/health/ready")?;
    outln!("  metrics:                 {base}/metrics")?;
    outln!(
        "  explain one person:      presence-bridge explain {} (with the demo's database)",
        demo_user_id(1)
    )?;
    outln!("  simulated Graph:         {}", graph.base_url)?;
    outln!("  simulated contact center: {}", cc.base_url)?;
    outln!("Ctrl-C stops.")?;
    outln!()?;

    let stop = app.cancel_token();
    let scenario = tokio::spawn(scenario(graph.state.clone(), cc, opts.users, stop.clone()));
    let result = app.run_until_stopped(crate::app::shutdown_signal()).await;
    stop.cancel();
    let _ = scenario.await;
    graph.shutdown().await;
    result
}

/// What the people in the demo do.
#[derive(Debug, Clone, Copy)]
enum Act {
    TeamsCall,
    Presenting,
    Meeting,
    Contact,
    Break,
    Flap,
}

async fn scenario(
    graph: SimGraph,
    cc: SimContactCenter,
    users: usize,
    stop: tokio_util::sync::CancellationToken,
) {
    let cc = std::sync::Arc::new(cc);
    let mut ticker = tokio::time::interval(SCENARIO_TICK);
    let mut busy = std::collections::HashSet::new();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            Some(i) = done_rx.recv() => { busy.remove(&i); }
            _ = ticker.tick() => {
                let (i, act, secs) = {
                    let mut rng = rand::thread_rng();
                    let free: Vec<usize> = (1..=users).filter(|i| !busy.contains(i)).collect();
                    let Some(&i) = free.choose(&mut rng) else { continue };
                    let act = *[Act::TeamsCall, Act::TeamsCall, Act::Presenting, Act::Meeting,
                        Act::Contact, Act::Contact, Act::Break, Act::Flap]
                        .choose(&mut rng)
                        .expect("non-empty");
                    (i, act, rng.gen_range(15..60u64))
                };
                busy.insert(i);
                let graph = graph.clone();
                let cc = cc.clone();
                let done = done_tx.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = act_out(&graph, &cc, i, act, Duration::from_secs(secs)) => {}
                    }
                    let _ = done.send(i);
                });
            }
        }
    }
}

async fn act_out(graph: &SimGraph, cc: &SimContactCenter, i: usize, act: Act, length: Duration) {
    let user = demo_user_id(i);
    let agent = format!("agent-{i}");
    let teams = |a: &'static str, b: &'static str| graph.set_user_status(&user, Some((a, b)));
    tracing::info!(target: "demo", person = i, activity = ?act, secs = length.as_secs(), "scenario");
    match act {
        Act::TeamsCall | Act::Presenting | Act::Meeting => {
            match act {
                Act::TeamsCall => teams("Busy", "InACall"),
                Act::Presenting => teams("DoNotDisturb", "Presenting"),
                _ => teams("Busy", "InAMeeting"),
            }
            tokio::time::sleep(length).await;
            teams("Available", "Available");
        }
        Act::Contact => {
            cc.set_agent_status(&agent, "on_contact").await;
            tokio::time::sleep(length).await;
            cc.set_agent_status(&agent, "acw").await;
            tokio::time::sleep(length / 4).await;
            cc.set_agent_status(&agent, "available").await;
        }
        Act::Break => {
            cc.set_agent_status(&agent, "break").await;
            tokio::time::sleep(length).await;
            cc.set_agent_status(&agent, "available").await;
        }
        Act::Flap => {
            // Shorter than the hold-down each time: nothing should propagate.
            for _ in 0..4 {
                teams("Busy", "InACall");
                tokio::time::sleep(Duration::from_secs(1)).await;
                teams("Available", "Available");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

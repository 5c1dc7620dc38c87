//! `presence-bridge sim`: the demo's simulated Teams tenant and contact center as a process of
//! their own, so that a daemon started separately (a benchmark, a trial of a configuration)
//! can be measured without the simulators' cost in its own process. It prints the daemon's
//! configuration for them (the demo's settings, `[graph]` and the `[[connectors]]` entry) and
//! serves until Ctrl-C or SIGTERM, optionally changing people's statuses on both sides at a
//! steady rate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::demo::{DEMO_CONNECTOR, config_text, demo_user_id, seed_people};
use super::out::outln;
use crate::sim::contact_center::{self, SimContactCenter};
use crate::sim::graph::{self as sim_graph, SimGraph, SimGraphOptions};

/// Options of `presence-bridge sim`.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub users: usize,
    /// Where the simulated Graph listens (port 0: any free port).
    pub listen: SocketAddr,
    /// Where the simulated contact center listens (default: `listen`'s address, any port).
    pub cc_listen: Option<SocketAddr>,
    /// Agents per page of the contact center's list and poll endpoints.
    pub page_size: usize,
    /// The `requests_per_sec` the printed connector entry allows towards the simulator.
    pub cc_requests_per_sec: f64,
    /// Each person changes status on average once every this many seconds, alternately in
    /// Teams and in the contact center; 0 = nobody changes.
    pub change_every_secs: u64,
    /// Where the contact center sends its signed event webhooks (the daemon's
    /// `/connectors/simcc/events`); also settable later through its control API.
    pub webhook_url: Option<String>,
    /// Write the configuration there instead of printing it.
    pub config_out: Option<std::path::PathBuf>,
}

/// How often the change driver wakes: rates are spread over these ticks.
const CHANGE_TICK: Duration = Duration::from_millis(100);

/// Runs the simulators until Ctrl-C or SIGTERM.
pub async fn run(opts: SimOptions) -> anyhow::Result<()> {
    let graph_listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let cc_addr = opts
        .cc_listen
        .unwrap_or_else(|| SocketAddr::new(opts.listen.ip(), 0));
    let cc_listener = tokio::net::TcpListener::bind(cc_addr).await?;
    let graph = sim_graph::spawn_on(graph_listener, SimGraphOptions::default());
    seed_people(&graph.state, opts.users);
    let cc = contact_center::spawn_on(
        cc_listener,
        contact_center::SimOptions {
            agents: opts.users,
            page_size: opts.page_size,
            ..Default::default()
        },
    )?;
    if let Some(url) = &opts.webhook_url {
        cc.set_webhook_url(url);
    }
    let connector = format!(
        "{}\n[connectors.limits]\nrequests_per_sec = {:?}\n",
        cc.connector_toml(DEMO_CONNECTOR),
        opts.cc_requests_per_sec
    );
    let text = config_text(&graph, connector, "")?;
    outln!("simulated Graph:          {}", graph.base_url)?;
    outln!("simulated contact center: {}", cc.base_url)?;
    outln!(
        "people: {} (Teams users {} .. {}, agents agent-1 .. agent-{})",
        opts.users,
        demo_user_id(1),
        demo_user_id(opts.users),
        opts.users
    )?;
    match &opts.config_out {
        Some(path) => {
            std::fs::write(path, &text)?;
            outln!("daemon configuration written to {}", path.display())?;
        }
        None => {
            outln!("# ---- daemon configuration ----")?;
            outln!("{text}")?;
            outln!("# ---- end of daemon configuration ----")?;
        }
    }
    outln!(
        "contact-center events go to {} (set it with POST {}control/webhook)",
        opts.webhook_url.as_deref().unwrap_or("nowhere yet"),
        cc.base_url
    )?;
    outln!("ready")?;

    let stop = CancellationToken::new();
    // Held here until the end: dropping the handle stops the contact center's server.
    let cc = Arc::new(cc);
    let driver = (opts.change_every_secs > 0).then(|| {
        tokio::spawn(drive_changes(
            graph.state.clone(),
            cc.clone(),
            opts.users,
            opts.change_every_secs,
            stop.clone(),
        ))
    });
    crate::app::shutdown_signal().await;
    stop.cancel();
    if let Some(d) = driver {
        let _ = d.await;
    }
    graph.shutdown().await;
    Ok(())
}

/// Changes `users / every_secs` statuses a second, picked at random, alternately in Teams
/// (Available ⇄ Busy/InACall) and in the contact center (available ⇄ on_contact).
async fn drive_changes(
    graph: SimGraph,
    cc: Arc<SimContactCenter>,
    users: usize,
    every_secs: u64,
    stop: CancellationToken,
) {
    let per_tick = users as f64 / every_secs as f64 * CHANGE_TICK.as_secs_f64();
    let mut due = 0.0;
    let mut teams_busy = vec![false; users + 1];
    let mut cc_busy = vec![false; users + 1];
    let mut teams_side = false;
    let mut tick = tokio::time::interval(CHANGE_TICK);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        due += per_tick;
        while due >= 1.0 {
            due -= 1.0;
            let i = rand::thread_rng().gen_range(1..=users);
            teams_side = !teams_side;
            if teams_side {
                teams_busy[i] = !teams_busy[i];
                let pair = if teams_busy[i] {
                    ("Busy", "InACall")
                } else {
                    ("Available", "Available")
                };
                graph.set_user_status(&demo_user_id(i), Some(pair));
            } else {
                cc_busy[i] = !cc_busy[i];
                let status = if cc_busy[i] {
                    "on_contact"
                } else {
                    "available"
                };
                let cc = cc.clone();
                tokio::spawn(async move {
                    cc.set_agent_status(&format!("agent-{i}"), status).await;
                });
            }
        }
    }
}

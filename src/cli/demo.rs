//! `presence-bridge demo`: the full daemon on SQLite against the simulated Teams tenant and
//! the simulated contact center, both on loopback, with people whose statuses change on both
//! sides (Teams calls and presentations, contact-center contacts, breaks, and flapping that the
//! hold-down swallows). Needs no credentials and no network. `--cc` picks the simulated
//! contact center: the generic one (`sim`, through the http connector and signed webhooks),
//! a fake innovaphone PBX (`innovaphone`, AppWebsocket) or a fake Google CCAI Platform tenant
//! (`ccai`, REST and polling).

use super::out::outln;
use std::time::Duration;

use rand::Rng;
use rand::seq::SliceRandom;

use crate::app::Application;
use crate::app::config::Config;
use crate::sim::ccai::{self as sim_ccai, FakeCcai};
use crate::sim::contact_center::{self, SimContactCenter};
use crate::sim::graph::{self as sim_graph, SimGraph, SimGraphOptions, SimUser};
use crate::sim::innovaphone::{self as sim_innovaphone, FakeInnovaphone};

/// The demo's static configuration (the simulators' addresses are appended at start).
pub const DEMO_TOML: &str = include_str!("../../config/demo.toml");

/// Name of the simulated contact center's connector.
pub const DEMO_CONNECTOR: &str = "simcc";

/// The demo's rules with `--cc innovaphone` and `--cc ccai` (in place of demo.toml's).
const INNOVAPHONE_RULES: &str = include_str!("../../config/demo-innovaphone.toml");
const CCAI_RULES: &str = include_str!("../../config/demo-ccai.toml");
/// Where demo.toml's rules begin (they are for the generic simulator's statuses).
const RULES_MARKER: &str = "\n# Teams -> contact center:";

/// Which simulated contact center the demo runs against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoCc {
    /// The generic simulator, through the http connector (signed webhooks).
    #[default]
    Sim,
    /// A fake innovaphone PBX (AppWebsocket login, PbxApi presence).
    Innovaphone,
    /// A fake Google CCAI Platform tenant (REST, polling).
    Ccai,
}

/// A running simulated contact center of any kind.
pub enum DemoCenter {
    Sim(SimContactCenter),
    Innovaphone(FakeInnovaphone),
    Ccai(FakeCcai),
}

impl DemoCenter {
    /// The connector's name in the demo configuration.
    pub fn connector_name(&self) -> &'static str {
        match self {
            DemoCenter::Sim(_) => DEMO_CONNECTOR,
            DemoCenter::Innovaphone(_) => "pbx",
            DemoCenter::Ccai(_) => "ccai",
        }
    }

    /// The agent id of demo person `i` (1-based).
    pub fn agent_id(&self, i: usize) -> String {
        match self {
            DemoCenter::Sim(_) => format!("agent-{i}"),
            DemoCenter::Innovaphone(_) => format!("agent{i}"),
            DemoCenter::Ccai(_) => i.to_string(),
        }
    }

    pub fn address(&self) -> &str {
        match self {
            DemoCenter::Sim(c) => &c.base_url,
            DemoCenter::Innovaphone(c) => &c.url,
            DemoCenter::Ccai(c) => &c.base_url,
        }
    }

    /// The `[[connectors]]` entry and the mapping rules for this contact center.
    fn config_toml(&self, users: usize) -> (String, &'static str) {
        match self {
            DemoCenter::Sim(c) => (c.connector_toml(DEMO_CONNECTOR), ""),
            DemoCenter::Innovaphone(c) => {
                let mut t = format!(
                    "[[connectors]]\nname = \"pbx\"\nkind = \"innovaphone\"\nurl = \"{}\"\n\
                     app = \"{}\"\npassword = \"{}\"\n",
                    c.url,
                    sim_innovaphone::INNOVAPHONE_APP,
                    sim_innovaphone::INNOVAPHONE_PASSWORD
                );
                for i in 1..=users {
                    t.push_str(&format!("[[connectors.agents]]\nsip = \"agent{i}\"\n"));
                }
                (t, INNOVAPHONE_RULES)
            }
            DemoCenter::Ccai(c) => (
                format!(
                    "[[connectors]]\nname = \"ccai\"\nkind = \"ccai\"\nsubdomain = \"{}\"\n\
                     domain = \"uc1.ccaiplatform.com\"\nbase_url = \"{}\"\napi_token = \"{}\"\n\
                     poll_interval_secs = 2\n",
                    sim_ccai::CCAI_SUBDOMAIN,
                    c.base_url,
                    sim_ccai::CCAI_TOKEN
                ),
                CCAI_RULES,
            ),
        }
    }

    /// Person `i` takes a contact: it is offered and connected.
    pub async fn contact_begins(&self, i: usize) {
        match self {
            DemoCenter::Sim(c) => {
                c.set_agent_status(&self.agent_id(i), "on_contact").await;
            }
            DemoCenter::Innovaphone(c) => c.set_on_the_phone(&self.agent_id(i), true),
            DemoCenter::Ccai(c) => c.set_agent_status(i as u64, "In-Call"),
        }
    }

    /// Person `i`'s contact ends; after-contact work begins.
    pub async fn contact_wraps(&self, i: usize) {
        match self {
            DemoCenter::Sim(c) => {
                c.set_agent_status(&self.agent_id(i), "acw").await;
            }
            DemoCenter::Innovaphone(c) => c.set_on_the_phone(&self.agent_id(i), false),
            DemoCenter::Ccai(c) => c.set_wrap_up(i as u64, true),
        }
    }

    /// Person `i` takes a break.
    pub async fn takes_break(&self, i: usize) {
        match self {
            DemoCenter::Sim(c) => {
                c.set_agent_status(&self.agent_id(i), "break").await;
            }
            DemoCenter::Innovaphone(c) => c.set_user_presence(&self.agent_id(i), "away"),
            DemoCenter::Ccai(c) => c.set_agent_status(i as u64, "Break"),
        }
    }

    /// Person `i` is available again.
    pub async fn available(&self, i: usize) {
        match self {
            DemoCenter::Sim(c) => {
                c.set_agent_status(&self.agent_id(i), "available").await;
            }
            DemoCenter::Innovaphone(c) => c.set_user_presence(&self.agent_id(i), ""),
            DemoCenter::Ccai(c) => {
                c.set_wrap_up(i as u64, false);
                c.set_agent_status(i as u64, "Available");
            }
        }
    }
}

/// How often the scenario starts something new for someone: often enough to watch, slow
/// enough to read the log.
const SCENARIO_TICK: Duration = Duration::from_millis(1500);

/// Options of `presence-bridge demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub users: usize,
    /// Overrides `server.listen` of the demo config.
    pub listen: Option<std::net::SocketAddr>,
    /// The simulated contact center.
    pub cc: DemoCc,
    /// Also bridge a simulated customer's Teams chat to a simulated Genesys agent.
    pub messaging: bool,
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
    build_config(graph, cc.connector_toml(DEMO_CONNECTOR), "", listen)
}

/// Builds the demo configuration for `users` people against any simulated contact center.
pub fn demo_config_for(
    graph: &sim_graph::SimGraphHandle,
    cc: &DemoCenter,
    users: usize,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<Config> {
    let (connector, rules) = cc.config_toml(users);
    build_config(graph, connector, rules, listen)
}

/// [`demo_config_for`] with `extra` appended to the contact center's connector entry.
fn demo_config_with(
    graph: &sim_graph::SimGraphHandle,
    cc: &DemoCenter,
    users: usize,
    listen: Option<std::net::SocketAddr>,
    extra: &str,
) -> anyhow::Result<Config> {
    let (connector, rules) = cc.config_toml(users);
    build_config(graph, connector + extra, rules, listen)
}

fn build_config(
    graph: &sim_graph::SimGraphHandle,
    connector: String,
    rules: &str,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<Config> {
    let text = config_text(graph, connector, rules)?;
    let mut cfg = Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new())?;
    if let Some(addr) = listen {
        cfg.server.listen = addr;
    }
    cfg.resolve_and_validate()?;
    Ok(cfg)
}

/// The demo configuration's text for simulators at the given addresses: demo.toml (or its
/// settings with `rules` in place of its rules), `[graph]` and the `connector` entry.
pub(crate) fn config_text(
    graph: &sim_graph::SimGraphHandle,
    connector: String,
    rules: &str,
) -> anyhow::Result<String> {
    let opts = &graph.state.options;
    // Another contact center brings its own rules: demo.toml's name the generic one's statuses.
    let base = if rules.is_empty() {
        DEMO_TOML
    } else {
        let at = DEMO_TOML
            .find(RULES_MARKER)
            .ok_or_else(|| anyhow::anyhow!("demo.toml has no rules section"))?;
        &DEMO_TOML[..at]
    };
    let text = format!(
        "{base}\n{rules}\n[graph]\ntenant_id = \"{tenant}\"\nclient_id = \"{client}\"\n\
         client_secret = \"{secret}\"\nbase_url = \"{base_url}\"\nauthority_url = \"{authority}\"\n\
         presence_source = \"poll\"\ndirectory_sync_interval_secs = 60\n\
         [graph.poll]\ninterval_secs = 2\nsafety_interval_secs = 60\n{connector}",
        tenant = opts.tenant_id,
        client = opts.client_id,
        secret = opts.client_secret.as_deref().unwrap_or_default(),
        base_url = graph.base_url,
        authority = graph.authority_url,
    );
    Ok(text)
}

/// Starts the simulators, seeds `users` people on both sides, and returns them.
pub async fn start_simulators(
    users: usize,
) -> anyhow::Result<(sim_graph::SimGraphHandle, SimContactCenter)> {
    let graph = start_graph(users).await;
    let cc = contact_center::spawn(contact_center::SimOptions {
        agents: users,
        page_size: 100,
        ..Default::default()
    })
    .await?;
    Ok((graph, cc))
}

/// Like [`start_simulators`], with the contact center of `kind`.
pub async fn start_simulators_for(
    kind: DemoCc,
    users: usize,
) -> anyhow::Result<(sim_graph::SimGraphHandle, DemoCenter)> {
    Ok(match kind {
        DemoCc::Sim => {
            let (graph, cc) = start_simulators(users).await?;
            (graph, DemoCenter::Sim(cc))
        }
        DemoCc::Innovaphone => (
            start_graph(users).await,
            DemoCenter::Innovaphone(sim_innovaphone::spawn(users).await?),
        ),
        DemoCc::Ccai => (
            start_graph(users).await,
            DemoCenter::Ccai(sim_ccai::spawn(users as u64).await?),
        ),
    })
}

/// The simulated Teams tenant with `users` people (`agent{i}@example.com`), all Available.
async fn start_graph(users: usize) -> sim_graph::SimGraphHandle {
    let graph = sim_graph::spawn(SimGraphOptions::default()).await;
    seed_people(&graph.state, users);
    graph
}

/// Adds the demo's `users` people to a simulated tenant, all Available.
pub(crate) fn seed_people(graph: &SimGraph, users: usize) {
    for i in 1..=users {
        let mut user = SimUser::licensed(&demo_user_id(i), &format!("agent{i}@example.com"));
        user.display_name = Some(format!("Agent {i}"));
        user.business_phones = vec![format!("+1 425 555 {:04}", i)];
        graph.upsert_user(user);
        graph.set_user_status(&demo_user_id(i), Some(("Available", "Available")));
    }
    // The console's sign-in: the first person operates, the second only views, the others
    // have no console role.
    graph.assign_app_roles(DEMO_OPERATOR, &["PresenceBridge.Operator"]);
    graph.assign_app_roles(DEMO_VIEWER, &["PresenceBridge.Viewer"]);
}

/// The demo person who signs in to the console as an operator, and one who only views.
pub const DEMO_OPERATOR: &str = "agent1@example.com";
pub const DEMO_VIEWER: &str = "agent2@example.com";

/// Runs the demo until Ctrl-C.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let (graph, cc) = start_simulators_for(opts.cc, opts.users).await?;
    // The generic contact center reports its contacts, written to a simulated Dataverse.
    let dataverse = match &cc {
        DemoCenter::Sim(_) => Some(crate::sim::dataverse::spawn().await?),
        _ => None,
    };
    let extra = dataverse
        .as_ref()
        .map(super::dynamics::demo::config_toml)
        .unwrap_or_default();
    let mut config = demo_config_with(&graph, &cc, opts.users, opts.listen, &extra)?;
    let messaging = match opts.messaging {
        true => Some(super::demo_messaging::prepare(&graph, &mut config).await?),
        false => None,
    };
    crate::telemetry::init_tracing(&config.log)?;
    // A fresh database every run: the simulators start fresh too.
    if let Some(path) = config.store.sqlite_path().filter(|p| p.exists()) {
        std::fs::remove_file(&path)?;
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
        }
    }
    let store = crate::store::open(&config.store).await?;
    if let Some(m) = &messaging {
        m.sign_in(&graph.state, &config, store.clone()).await?;
    }
    let app = Application::builder(config).store(store).build().await?;
    let base = format!("http://{}", app.local_addr());
    if let DemoCenter::Sim(sim) = &cc {
        sim.set_webhook_url(&format!("{base}/connectors/{DEMO_CONNECTOR}/events"));
    }

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
    outln!(
        "  console:                 {base}/ (sign in as {DEMO_OPERATOR}, password {}; {DEMO_VIEWER} views only)",
        sim_graph::oidc::SIM_SIGN_IN_PASSWORD
    )?;
    outln!("  readiness:               {base}/health/ready")?;
    outln!("  metrics:                 {base}/metrics")?;
    outln!(
        "  explain one person:      cargo run --release -- --config config/demo.toml explain agent1@example.com"
    )?;
    outln!("  simulated Graph:         {}", graph.base_url)?;
    outln!(
        "  simulated contact center ({:?}): {}",
        opts.cc,
        cc.address()
    )?;
    if let Some(d) = &dataverse {
        outln!(
            "  simulated Dataverse:     {d}api/data/v9.2/phonecalls (phone calls written per contact)",
            d = d.url
        )?;
        outln!(
            "  screen pop of agent-1:   curl -H 'Authorization: Bearer demo-token' {base}/api/v1/agents/agent-1/screen-pop"
        )?;
    }
    if let Some(m) = &messaging {
        m.describe()?;
    }
    outln!("Ctrl-C stops.")?;
    outln!()?;

    let stop = app.cancel_token();
    let contacts = dataverse.as_ref().map(|_| {
        std::sync::Arc::new(super::dynamics::demo::DemoContacts::new(format!(
            "{base}/connectors/{DEMO_CONNECTOR}/contact-events"
        )))
    });
    if let Some(m) = messaging {
        tokio::spawn(m.scenario(graph.state.clone(), stop.clone()));
    }
    let scenario = tokio::spawn(scenario(
        graph.state.clone(),
        cc,
        opts.users,
        stop.clone(),
        contacts,
    ));
    let result = app.run_until_stopped(crate::app::shutdown_signal()).await;
    stop.cancel();
    let _ = scenario.await;
    graph.shutdown().await;
    result
}

/// `sync.hold_down_secs`, the presence poll interval and `sync.flap_max_writes` of the demo's
/// configuration: the flapping person is paced by them.
const DEMO_HOLD_DOWN: Duration = Duration::from_secs(5);
const DEMO_POLL: Duration = Duration::from_secs(2);
const DEMO_FLAP_MAX_WRITES: usize = 6;

/// The flapping person's Teams statuses (busy or not, and for how long), so that the log
/// shows both defences: first calls longer than a poll (so they are seen) but shorter than
/// the hold-down (so they are held down and never written); then calls longer than the
/// hold-down, each written and restored, until the writes pass the oscillation breaker's
/// limit and sync is suspended.
fn flap_steps(hold_down: Duration, poll: Duration, max_writes: usize) -> Vec<(bool, Duration)> {
    let short = (poll + hold_down) / 2 + poll / 2;
    let long = hold_down + poll * 2;
    let mut steps = Vec::new();
    for _ in 0..3 {
        steps.push((true, short));
        steps.push((false, short));
    }
    // Each long call is two writes (the status, then its restore); one more for the limit.
    for _ in 0..max_writes / 2 + 1 {
        steps.push((true, long));
        steps.push((false, long));
    }
    steps
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
    cc: DemoCenter,
    users: usize,
    stop: tokio_util::sync::CancellationToken,
    contacts: Option<std::sync::Arc<super::dynamics::demo::DemoContacts>>,
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
                let contacts = contacts.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = act_out(&graph, &cc, i, act, Duration::from_secs(secs), contacts.as_deref()) => {}
                    }
                    let _ = done.send(i);
                });
            }
        }
    }
}

async fn act_out(
    graph: &SimGraph,
    cc: &DemoCenter,
    i: usize,
    act: Act,
    length: Duration,
    contacts: Option<&super::dynamics::demo::DemoContacts>,
) {
    let user = demo_user_id(i);
    let teams = |a: &'static str, b: &'static str| graph.set_user_status(&user, Some((a, b)));
    let secs = length.as_secs();
    let what = match act {
        Act::TeamsCall => format!("joins a Teams call for {secs} s"),
        Act::Presenting => format!("presents in Teams for {secs} s"),
        Act::Meeting => format!("sits in a Teams meeting for {secs} s"),
        Act::Contact => format!("takes a contact-center contact for {secs} s, then wraps up"),
        Act::Break => format!("takes a break in the contact center for {secs} s"),
        Act::Flap => "flaps: Teams calls shorter than the hold-down, then a run of calls long \
                      enough to be written, until the oscillation breaker suspends sync"
            .to_owned(),
    };
    tracing::info!(target: "demo", "Agent {i} (agent{i}@example.com) {what}");
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
            cc.contact_begins(i).await;
            let agent = cc.agent_id(i);
            let call = match contacts {
                Some(c) => Some(c.begin(&agent).await),
                None => None,
            };
            tokio::time::sleep(length).await;
            cc.contact_wraps(i).await;
            if let (Some(c), Some(call)) = (contacts, &call) {
                c.end(call, &agent).await;
            }
            tokio::time::sleep(length / 4).await;
            cc.available(i).await;
        }
        Act::Break => {
            cc.takes_break(i).await;
            tokio::time::sleep(length).await;
            cc.available(i).await;
        }
        Act::Flap => {
            for (busy, hold) in flap_steps(DEMO_HOLD_DOWN, DEMO_POLL, DEMO_FLAP_MAX_WRITES) {
                if busy {
                    teams("Busy", "InACall");
                } else {
                    teams("Available", "Available");
                }
                tokio::time::sleep(hold).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flapping_person_is_first_held_down_then_suspended() {
        let (hold, poll, max) = (DEMO_HOLD_DOWN, DEMO_POLL, DEMO_FLAP_MAX_WRITES);
        let steps = flap_steps(hold, poll, max);
        let (short, long): (Vec<&(bool, Duration)>, Vec<_>) =
            steps.iter().partition(|s| s.1 < hold);
        assert!(short.len() >= 4, "some calls are held down");
        assert!(short.iter().all(|s| s.1 > poll), "each is seen by a poll");
        assert!(
            long.iter().all(|s| s.1 >= hold + poll),
            "long ones outlast hold-down and poll"
        );
        assert!(long.len() > max, "enough writes to trip the breaker");
    }

    #[test]
    fn the_pacing_matches_the_demo_configuration() {
        let cfg: crate::app::config::Config =
            toml::from_str(include_str!("../../config/demo.toml")).unwrap();
        assert_eq!(cfg.sync.hold_down_secs, DEMO_HOLD_DOWN.as_secs());
        assert_eq!(cfg.sync.flap_max_writes as usize, DEMO_FLAP_MAX_WRITES);
    }
}

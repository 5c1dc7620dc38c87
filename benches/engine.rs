//! Engine benchmarks (printed figures, no assertions):
//! - decisions per second of the pure engine on one core;
//! - memory per synced user (engine state, map entry and key) at 10,000 and 100,000 users,
//!   measured with a counting allocator installed in this binary only.
//!
//! Run: `cargo bench --bench engine`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use presence_bridge::app::config::Config;
use presence_bridge::engine::{Engine, UserState};
use presence_bridge::model::{CcStatus, Source, Status, TeamsPresence};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RULES: &str = include_str!("../tests/fixtures/rules.toml");

fn engine() -> Engine {
    let text = format!("[sync]\nhold_down_secs = 15\n{RULES}");
    let mut cfg = Config::from_toml_str_with_env(&text, Vec::<(String, String)>::new())
        .expect("bench config parses");
    cfg.resolve_and_validate().expect("bench config is valid");
    Engine::from_config(&cfg.engine())
}

fn cc(name: &str) -> CcStatus {
    CcStatus {
        id: name.to_lowercase().replace(' ', "-"),
        name: name.to_owned(),
    }
}

fn inputs() -> Vec<Status> {
    let mut v = Vec::new();
    for (a, b) in [
        ("Available", "Available"),
        ("Busy", "InACall"),
        ("DoNotDisturb", "Presenting"),
        ("Away", "Away"),
    ] {
        v.push(Status::Teams(TeamsPresence::new(a, b)));
    }
    for n in ["Available", "On Contact", "After Contact Work", "Break"] {
        v.push(Status::ContactCenter(cc(n)));
    }
    v
}

/// Observations (and the timers they cause) per second, one thread.
fn decisions_per_second() {
    let e = engine();
    let inputs = inputs();
    let users = 10_000usize;
    let mut states = vec![UserState::default(); users];
    let mut out = Vec::with_capacity(16);
    let mut now: i64 = 1_700_000_000_000;
    let rounds = 2_000_000usize;
    let mut decisions = 0usize;
    let start = Instant::now();
    for i in 0..rounds {
        let u = i % users;
        // Each user sees a new status every ~4 s of engine time; timers fire when due.
        now += 400;
        let st = &mut states[u];
        if st.next_deadline().is_some_and(|d| d <= now) {
            e.tick(st, now, &mut out);
        }
        let input = inputs[(i / users + u) % inputs.len()].clone();
        let source = match input {
            Status::Teams(_) => Source::GraphWebhook,
            Status::ContactCenter(_) => Source::ConnectorPush,
        };
        e.observe(st, input, source, now, &mut out);
        decisions += out.len();
        out.clear();
    }
    let secs = start.elapsed().as_secs_f64();
    black_box(&states);
    println!(
        "engine: {rounds} observations in {secs:.3} s = {:.0} observations/s, {:.0} decisions/s (one core)",
        rounds as f64 / secs,
        decisions as f64 / secs
    );
}

/// Heap bytes per user for a map of users in a realistic steady state (both sides seen, a
/// held Teams session, a contact-center override with restore, recent writes).
fn memory_per_user(n: usize) {
    let e = engine();
    let before = LIVE.load(Ordering::Relaxed);
    let mut users: HashMap<String, UserState> = HashMap::with_capacity(n);
    let mut out = Vec::new();
    for i in 0..n {
        let id = format!("{:08x}-0000-4000-8000-{:012x}", i, i);
        let mut st = UserState::default();
        let t0 = 1_700_000_000_000i64;
        let feed = |st: &mut UserState, s: Status, at: i64, out: &mut Vec<_>| {
            e.observe(st, s, Source::GraphWebhook, at, out);
        };
        feed(
            &mut st,
            Status::Teams(TeamsPresence::new("Available", "Available")),
            t0,
            &mut out,
        );
        feed(
            &mut st,
            Status::ContactCenter(cc("Available")),
            t0,
            &mut out,
        );
        feed(
            &mut st,
            Status::Teams(TeamsPresence::new("Busy", "InACall")),
            t0 + 1,
            &mut out,
        );
        e.tick(&mut st, t0 + 20_000, &mut out);
        feed(
            &mut st,
            Status::ContactCenter(cc("Busy (Teams)")),
            t0 + 21_000,
            &mut out,
        );
        feed(
            &mut st,
            Status::ContactCenter(cc("On Contact")),
            t0 + 30_000,
            &mut out,
        );
        e.tick(&mut st, t0 + 50_000, &mut out);
        out.clear();
        users.insert(id, st);
    }
    let after = LIVE.load(Ordering::Relaxed);
    drop(out);
    let held = users.values().filter(|s| s.c2t.held.is_some()).count();
    println!(
        "memory: {n} users, {} bytes total, {:.0} bytes per user ({held} holding a Teams session)",
        after - before,
        (after - before) as f64 / n as f64
    );
    black_box(users);
}

fn main() {
    decisions_per_second();
    memory_per_user(10_000);
    memory_per_user(100_000);
    println!(
        "end-to-end latency (notification POST to contact-center write): not measured here; \
         needs the simulated Graph tenant and contact center"
    );
}

//! The console in headless Chromium against the whole demo (simulated tenant and contact
//! center, the real daemon): sign-in through the simulated tenant's login form, the team page
//! with both statuses and `tel:` links, a live update without reload, resuming a suspended
//! user, and a health light going red and green. Screenshots go to
//! `target/console-screenshots/`.

use std::sync::Arc;
use std::time::Duration;

use presence_bridge::app::Application;
use presence_bridge::app::config::Config;
use presence_bridge::cli::demo::{
    DEMO_CONNECTOR, DEMO_OPERATOR, demo_config, demo_user_id, start_simulators,
};
use presence_bridge::connectors::config::ConnectorConfig;
use presence_bridge::connectors::http::contact::ActivityConfig;
use presence_bridge::sim::contact_center::SimContactCenter;
use presence_bridge::sim::graph::SimGraphHandle;
use presence_bridge::sim::graph::oidc::SIM_SIGN_IN_PASSWORD;
use presence_bridge::store::{Store, SubscriptionRecord};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::webdriver::{Browser, ENTER, PAGE_TIMEOUT, TAB};
use crate::helpers::eventually;

const PEOPLE: usize = 3;

struct Demo {
    base: String,
    graph: SimGraphHandle,
    cc: SimContactCenter,
    store: Arc<dyn Store>,
    stop: CancellationToken,
    join: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Demo {
    /// The demo, its configuration changed by `tweak`.
    async fn start(tweak: impl FnOnce(&mut Config)) -> Demo {
        let (graph, cc) = start_simulators(PEOPLE).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = demo_config(&graph, &cc, Some("127.0.0.1:0".parse().unwrap())).unwrap();
        tweak(&mut cfg);
        cfg.store.url = format!("sqlite://{}/console.db", dir.path().display()).into();
        cfg.sync.hold_down_secs = 0;
        let app = Application::build(cfg).await.unwrap();
        let base = format!("http://{}", app.local_addr());
        cc.set_webhook_url(&format!("{base}/connectors/{DEMO_CONNECTOR}/events"));
        let store = app.store().clone();
        let stop = app.cancel_token();
        let join = tokio::spawn(app.run_until_stopped(std::future::pending()));
        let s = store.clone();
        eventually("everyone matched", Duration::from_secs(30), || async {
            let users = s.list_users().await.unwrap();
            users.len() == PEOPLE && users.iter().all(|u| u.cc_agent_id.is_some())
        })
        .await;
        Demo {
            base,
            graph,
            cc,
            store,
            stop,
            join,
            _dir: dir,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.join.await.unwrap().unwrap();
        self.graph.shutdown().await;
    }
}

/// Signs in as `upn` through the simulated tenant's login form.
async fn sign_in(b: &Browser, base: &str, upn: &str) {
    b.goto(&format!("{base}/console/sign-in")).await;
    b.type_into("#login", upn).await;
    b.type_into("#password", SIM_SIGN_IN_PASSWORD).await;
    b.click("#submit").await;
}

fn row(i: usize) -> String {
    format!("#team-rows tr[data-person=\"{}\"]", demo_user_id(i))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_team_page_tel_links_and_live_updates() {
    let demo = Demo::start(|_| {}).await;
    let b = Browser::start().await;

    // The page sends the signed-out to the tenant's login form.
    b.goto(&format!("{}/", demo.base)).await;
    b.wait_for("#login").await;
    b.screenshot("sign-in").await;

    // A user without a console role is refused.
    sign_in(&b, &demo.base, "agent3@example.com").await;
    let refused = b
        .wait_text("the refusal", "#message", |t| !t.is_empty())
        .await;
    assert!(refused.contains("no role"), "{refused}");
    b.screenshot("sign-in-refused").await;
    b.goto(&format!("{}/", demo.base)).await;
    b.wait_for("#login").await;

    // The operator signs in and sees everyone with both statuses.
    sign_in(&b, &demo.base, DEMO_OPERATOR).await;
    b.wait_for("#team-rows").await;
    let both_seen = r#"return Array.from(document.querySelectorAll('#team-rows tr')).filter(function (r) {
        var t = r.querySelector('.teams-status'), c = r.querySelector('.cc-status');
        return t && c && t.innerText.indexOf('Available') >= 0 && c.innerText.indexOf('Available') >= 0;
    }).length;"#;
    eventually("three people with both statuses", PAGE_TIMEOUT, || async {
        b.script(both_seen).await == json!(PEOPLE)
    })
    .await;
    assert!(b.text("#signed-in-as").await.contains("operator"));
    b.screenshot("team").await;

    // Phone numbers are tel: links.
    let href = b
        .script(&format!(
            "return document.querySelector('{} .phones a').getAttribute('href');",
            row(1)
        ))
        .await;
    assert_eq!(href, json!("tel:+14255550001"));

    // A status change in the contact center shows within 5 s, without a reload.
    b.script("window.noReload = 42; return true;").await;
    assert_eq!(
        demo.cc.set_agent_status("agent-2", "break").await,
        Some(202)
    );
    eventually("the break on the page", Duration::from_secs(5), || async {
        b.text(&format!("{} .cc-status", row(2)))
            .await
            .contains("Break")
    })
    .await;
    assert_eq!(
        b.script("return window.noReload;").await,
        json!(42),
        "the page reloaded"
    );
    b.screenshot("team-live-update").await;

    // A person's page explains the decisions.
    b.click(&format!("{} td a", row(2))).await;
    b.wait_text("decisions", "#decisions", |t| !t.is_empty())
        .await;
    b.screenshot("person").await;

    b.quit().await;
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_user_is_resumed_from_the_page() {
    let demo = Demo::start(|_| {}).await;
    let user = demo_user_id(1);
    suspend_agent_1(&demo).await;

    let b = Browser::start().await;
    sign_in(&b, &demo.base, DEMO_OPERATOR).await;
    b.wait_for("#team-rows").await;
    b.goto(&format!("{}/?state=suspended", demo.base)).await;
    b.wait_text("the suspended row", &format!("{} .sync", row(1)), |t| {
        t.contains("suspended")
    })
    .await;
    b.screenshot("team-suspended").await;
    b.click(&format!("{} button.resume", row(1))).await;
    let said = b
        .wait_text("the answer", "#message", |t| !t.is_empty())
        .await;
    assert!(said.contains("resumes"), "{said}");
    eventually("agent 1 no longer suspended", PAGE_TIMEOUT, || async {
        !is_suspended(demo.store.clone()).await
    })
    .await;
    // Audited with who did it.
    let explained = presence_bridge::runtime::audit::explain(demo.store.as_ref(), &user, 20)
        .await
        .unwrap();
    assert!(
        explained
            .iter()
            .any(|l| l.contains(DEMO_OPERATOR) && l.contains("console")),
        "{explained:#?}"
    );
    b.goto(&format!("{}/", demo.base)).await;
    b.wait_text("the resumed row", &format!("{} .sync", row(1)), |t| {
        !t.contains("suspended")
    })
    .await;
    b.screenshot("team-resumed").await;
    b.quit().await;
    demo.stop().await;
}

/// The class of the light `css` selects (its colour).
async fn light_class(b: &Browser, css: &str) -> String {
    let js = format!("return document.querySelector({}).className;", json!(css));
    b.script(&js).await.as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contact_center_light_goes_red_when_it_is_unreachable_and_green_when_it_returns() {
    // The contact center's statuses are also polled, every second, so the connector notices at
    // once when the contact center stops answering.
    let demo = Demo::start(|cfg| {
        if let Some(ConnectorConfig::Http(http)) = cfg.connectors.first_mut()
            && let Some(poll) = http.poll.as_mut()
        {
            poll.interval_secs = 1;
        }
    })
    .await;
    let b = Browser::start().await;
    sign_in(&b, &demo.base, DEMO_OPERATOR).await;
    b.wait_for("#team-rows").await;
    b.goto(&format!("{}/console/health", demo.base)).await;
    let light = format!("#lights li[data-component=\"connector:{DEMO_CONNECTOR}\"]");
    b.wait_text("the connector light", &light, |t| t.contains("ok"))
        .await;
    assert!(light_class(&b, &light).await.contains("light-green"));
    b.screenshot("health").await;

    // The contact center stops answering: its tokens stop working and new ones are refused.
    demo.cc.reject_credentials(true);
    demo.cc.revoke_tokens();
    let red = b
        .wait_text("the light red", &light, |t| t.contains("down"))
        .await;
    assert!(red.contains("down"), "{red}");
    assert!(light_class(&b, &light).await.contains("light-red"));
    b.screenshot("health-red").await;

    demo.cc.reject_credentials(false);
    b.wait_text("the light green again", &light, |t| t.contains("ok"))
        .await;
    b.screenshot("health-green-again").await;
    b.quit().await;
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_account_signs_in_again_from_the_health_page() {
    let demo = Demo::start(|cfg| {
        // 32 bytes, base64: where the refresh token is kept encrypted.
        cfg.graph.token_encryption_key = Some(secrecy::SecretString::from(
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ));
    })
    .await;
    let b = Browser::start().await;
    sign_in(&b, &demo.base, DEMO_OPERATOR).await;
    b.wait_for("#team-rows").await;
    b.goto(&format!("{}/console/health", demo.base)).await;
    b.click("button#account-sign-in").await;
    let code = b
        .wait_text("the device code", "#device-code", |t| !t.is_empty())
        .await;
    b.screenshot("account-sign-in-code").await;
    // The person signs in with the code (in the simulated tenant's device-code page).
    assert!(
        demo.graph
            .state
            .approve_device_code(&code, "agent3@example.com")
    );
    let done = b
        .wait_text("the page noticing the sign-in", "#account-status", |t| {
            t.starts_with("Signed in")
        })
        .await;
    assert!(done.contains("agent3@example.com"), "{done}");
    b.screenshot("account-sign-in-done").await;
    let accounts = demo.store.list_accounts().await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].upn, "agent3@example.com");
    assert_eq!(accounts[0].state, "healthy");
    b.quit().await;
    demo.stop().await;
}

/// Whether someone is suspended.
async fn is_suspended(store: Arc<dyn Store>) -> bool {
    let q = presence_bridge::store::people::PeopleQuery {
        query: String::new(),
        state: Some(presence_bridge::store::people::PeopleState::Suspended),
        connector: None,
        sort: Default::default(),
        page: 1,
        per_page: 10,
        now: chrono::Utc::now(),
    };
    store.list_people(&q).await.unwrap().total == 1
}

/// Makes agent 1 flap between a contact and available until the oscillation breaker suspends
/// them (demo.toml: more than 6 writes in 2 minutes).
async fn suspend_agent_1(demo: &Demo) {
    let user = demo_user_id(1);
    for i in 0..20 {
        if is_suspended(demo.store.clone()).await {
            return;
        }
        let status = if i % 2 == 0 {
            "on_contact"
        } else {
            "available"
        };
        let before = demo
            .graph
            .state
            .writes()
            .iter()
            .filter(|w| w.user_id == user)
            .count();
        assert_eq!(demo.cc.set_agent_status("agent-1", status).await, Some(202));
        let (g, s, u) = (demo.graph.state.clone(), demo.store.clone(), user.clone());
        eventually(
            "the engine took the change",
            Duration::from_secs(10),
            || {
                let (g, s, u) = (g.clone(), s.clone(), u.clone());
                async move {
                    g.writes().iter().filter(|w| w.user_id == u).count() > before
                        || is_suspended(s).await
                }
            },
        )
        .await;
    }
    assert!(
        is_suspended(demo.store.clone()).await,
        "agent 1 was never suspended"
    );
}

fn presence_subscription(shard: i64, users: &[String], state: &str) -> SubscriptionRecord {
    let now = chrono::Utc::now();
    SubscriptionRecord {
        id: format!("sub-{shard}"),
        kind: "presence".into(),
        shard: Some(shard),
        account_id: Some("account-1".into()),
        resource: presence_bridge::graph::subscriptions::api::presence_resource(users),
        client_state: "secret".into(),
        expires_at: now + chrono::Duration::hours(1),
        created_at: now,
        last_renewed_at: None,
        last_reauthorized_at: None,
        state: state.into(),
        last_error: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_activity_sort_credential_expiry_and_shards_on_the_pages() {
    let expires = chrono::Utc::now() + chrono::Duration::days(10) + chrono::Duration::hours(1);
    let demo = Demo::start(|cfg| {
        // The simulated contact center's status ids name the activity (`on_contact`).
        if let Some(ConnectorConfig::Http(http)) = cfg.connectors.first_mut()
            && let Some(inbound) = http.inbound.as_mut()
        {
            inbound.activity = Some(ActivityConfig {
                pointer: "/status_id".into(),
                values: [("available", "idle"), ("break", "idle")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into(),
                channel_pointer: None,
                channels: Default::default(),
            });
        }
        cfg.graph.client_secret_expires_at = Some(expires);
    })
    .await;
    let b = Browser::start().await;
    sign_in(&b, &demo.base, DEMO_OPERATOR).await;
    b.wait_for("#team-rows").await;

    // The contact activity shows next to the contact-center status, live.
    assert_eq!(
        demo.cc.set_agent_status("agent-2", "on_contact").await,
        Some(202)
    );
    let cc = b
        .wait_text(
            "the activity on the page",
            &format!("{} .cc-status", row(2)),
            |t| t.contains("on a contact"),
        )
        .await;
    assert!(cc.contains("On Contact"), "{cc}");
    b.screenshot("team-contact-activity").await;

    // Sort: a labelled control; by last change the newest change comes first.
    let label = b
        .script("var l = document.querySelector('label[for=sort]'); return l ? l.innerText : '';")
        .await;
    assert_eq!(label, json!("Sort by"));
    b.script("document.getElementById('sort').value = 'last_change'; return true;")
        .await;
    b.click("#apply").await;
    b.wait_text("the sorted caption", "#team caption", |t| {
        t.contains("by last change")
    })
    .await;
    let first = "return document.querySelector('#team-rows tr').getAttribute('data-person');";
    assert_eq!(b.script(first).await, json!(demo_user_id(2)));
    assert_eq!(
        b.script("return document.getElementById('sort').value;")
            .await,
        json!("last_change")
    );
    b.screenshot("team-sorted-by-last-change").await;

    // Health: the client secret's end as an amber light in words; the shards with the users
    // each covers and whether a webhook or polling serves them.
    let users: Vec<String> = (1..=PEOPLE).map(demo_user_id).collect();
    demo.store
        .upsert_subscription(&presence_subscription(0, &users[..2], "active"))
        .await
        .unwrap();
    demo.store
        .upsert_subscription(&presence_subscription(1, &users[2..], "failing"))
        .await
        .unwrap();
    b.goto(&format!("{}/console/health", demo.base)).await;
    let secret = "#credentials li[data-credential=\"client secret\"]";
    let said = b
        .wait_text("the client secret's light", secret, |t| !t.is_empty())
        .await;
    let date = expires.format("%-d %B %Y").to_string();
    assert!(said.contains("degraded"), "{said}");
    assert!(
        said.contains(&format!("expires on {date}, in 10 days")),
        "{said}"
    );
    assert!(light_class(&b, secret).await.contains("light-amber"));
    assert!(
        b.find("#credentials li[data-credential=\"certificate\"]")
            .await
            .is_none()
    );
    let shard = |n: usize| format!("#subscriptions tr[data-shard=\"{n}\"]");
    assert_eq!(b.text(&format!("{} .users", shard(0))).await, "2");
    assert_eq!(b.text(&format!("{} .served-by", shard(0))).await, "webhook");
    assert_eq!(b.text(&format!("{} .users", shard(1))).await, "1");
    assert!(
        b.text(&format!("{} .served-by", shard(1)))
            .await
            .starts_with("polled")
    );
    b.screenshot("health-credentials-and-shards").await;
    b.quit().await;
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_team_page_works_from_the_keyboard_alone() {
    let demo = Demo::start(|_| {}).await;
    suspend_agent_1(&demo).await;
    let b = Browser::start().await;
    sign_in(&b, &demo.base, DEMO_OPERATOR).await;
    b.wait_for("#team-rows").await;
    let focused = "var e = document.activeElement; return e ? (e.id || e.className) : '';";

    // Tab from the top of the page to the search box, type, submit with Enter.
    let mut tabs = 0;
    while b.script(focused).await != json!("query") {
        tabs += 1;
        assert!(tabs < 20, "the search box is not reachable with Tab");
        b.keys(TAB).await;
    }
    b.keys(&format!("{DEMO_OPERATOR}{ENTER}")).await;
    b.wait_text("the search result", "#summary", |t| {
        t.starts_with("People: 1 ")
    })
    .await;
    b.wait_text("the suspended row", &format!("{} .sync", row(1)), |t| {
        t.contains("suspended")
    })
    .await;

    // Tab on to Resume and press Enter.
    let mut tabs = 0;
    while b.script(focused).await != json!("resume") {
        tabs += 1;
        assert!(tabs < 40, "Resume is not reachable with Tab");
        b.keys(TAB).await;
    }
    b.keys(ENTER).await;
    let said = b
        .wait_text("the answer", "#message", |t| !t.is_empty())
        .await;
    assert!(said.contains("resumes"), "{said}");
    b.screenshot("keyboard-resumed").await;
    b.quit().await;
    demo.stop().await;
}

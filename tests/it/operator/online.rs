//! `check-config --online`: signs in to Graph and every connector (here the simulators) and
//! checks each rule against the catalogs they return.

use presence_bridge::cli::demo::{DEMO_CONNECTOR, start_simulators};
use presence_bridge::sim::contact_center::SimContactCenter;
use presence_bridge::sim::graph::SimGraphHandle;

fn config(graph: &SimGraphHandle, cc: &SimContactCenter, rules: &str) -> String {
    let opts = &graph.state.options;
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

{rules}

[graph]
tenant_id = "{tenant}"
client_id = "{client}"
client_secret = "{secret}"
base_url = "{base}"
authority_url = "{authority}"
presence_source = "poll"

{connector}
"#,
        tenant = opts.tenant_id,
        client = opts.client_id,
        secret = opts.client_secret.as_deref().unwrap_or_default(),
        base = graph.base_url,
        authority = graph.authority_url,
        connector = cc.connector_toml(DEMO_CONNECTOR),
    )
}

async fn check_online(text: String) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pb.toml");
    std::fs::write(&path, text).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
        .arg("--config")
        .arg(&path)
        .args(["check-config", "--online"])
        .env_clear()
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn rules_are_checked_against_the_catalogs_the_platforms_return() {
    let (graph, cc) = start_simulators(3).await.unwrap();
    let good = r#"
[[cc_to_teams]]
when = { status = ["On Contact"] }
set = { availability = "Busy", activity = "InACall" }
"#;
    let (code, shown) = check_online(config(&graph, &cc, good)).await;
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("signed in as the app"), "{shown}");
    assert!(shown.contains("3 agents"), "{shown}");

    // Valid offline (the catalog is fetched, not in the file), wrong online.
    let bad = r#"
[[cc_to_teams]]
when = { status = ["On Contact"] }
set = { availability = "Busy", activity = "InACall" }

[[cc_to_teams]]
when = { status = ["Lunch Break"] }
set = "clear"
"#;
    let (code, shown) = check_online(config(&graph, &cc, bad)).await;
    assert_eq!(code, Some(78), "{shown}");
    assert!(
        shown.contains("cc_to_teams[1].when.status") && shown.contains("Lunch Break"),
        "{shown}"
    );
    assert!(
        !shown.contains("[server]"),
        "the online verdict is not buried under the effective configuration: {shown}"
    );
}

#[tokio::test]
async fn a_platform_that_refuses_the_sign_in_is_reported() {
    let (graph, cc) = start_simulators(1).await.unwrap();
    let text = config(&graph, &cc, "").replace(
        &format!(
            "client_secret = \"{}\"",
            graph
                .state
                .options
                .client_secret
                .as_deref()
                .unwrap_or_default()
        ),
        "client_secret = \"wrong\"",
    );
    let (code, shown) = check_online(text).await;
    assert_eq!(code, Some(78), "{shown}");
    assert!(shown.contains("graph: cannot sign in"), "{shown}");
}

#[tokio::test]
async fn the_matching_preview_reads_both_sides_live_before_the_daemon_ran() {
    let (graph, cc) = start_simulators(3).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pb.toml");
    let text = config(&graph, &cc, "").replace(
        "[server]",
        &format!(
            "[store]\nurl = \"sqlite://{}\"\n\n[server]",
            dir.path().join("pb.db").display()
        ),
    );
    std::fs::write(&path, text).unwrap();
    let run = |args: &'static [&'static str]| {
        let path = path.clone();
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
                .arg("--config")
                .arg(&path)
                .args(args)
                .env_clear()
                .output()
                .await
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).to_string()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        }
    };
    let (code, stored) = run(&["users", "--report"]).await;
    assert_eq!(code, Some(0), "{stored}");
    assert!(
        stored.contains("matched: 0"),
        "nothing stored yet: {stored}"
    );
    let (code, live) = run(&["users", "--report", "--online"]).await;
    assert_eq!(code, Some(0), "{live}");
    assert!(live.contains("matched: 3"), "{live}");
    assert_eq!(
        live.matches("\nmatch ").count() + usize::from(live.starts_with("match ")),
        3,
        "{live}"
    );
}

//! The binary's messages and exit codes.

use assert_cmd::Command;

/// Runs the binary with `--config config`, `args` and only the given environment.
pub(super) fn run(
    config: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    bin()
        .arg("--config")
        .arg(config)
        .args(args)
        .envs(env.iter().copied())
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap()
}

fn bin() -> Command {
    let mut c = Command::cargo_bin("presence-bridge").unwrap();
    c.env_clear();
    c
}

pub(super) fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("pb.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub(super) fn output(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn check_config_reports_three_mistakes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        &dir,
        r#"
[server]
listen = 8080

[sync]
hold_down_secs = "soon"

[[cc_to_teams]]
when = { status = ["On Contact"] }
set = { availability = "Busy", activity = "InACall" }
colour = "red"
"#,
    );
    let out = run(&config, &["check-config"], &[]);
    let shown = output(&out);
    assert_eq!(out.status.code(), Some(78), "{shown}");
    for path in ["server.listen", "sync.hold_down_secs", "cc_to_teams[0]"] {
        assert!(shown.contains(path), "{path} not reported:\n{shown}");
    }
    assert!(shown.contains("colour"), "{shown}");
}

const BEARER_CONNECTOR: &str = r#"
[server]
listen = "127.0.0.1:0"

[[connectors]]
name = "cc"
kind = "http"
base_url = "https://cc.example.com/"
statuses = [{ id = "a", name = "Available", kind = "routable" }]
agents = [{ id = "agent-1", email = "a@example.com" }]
[connectors.auth]
type = "bearer"
"#;

#[test]
fn a_connector_secret_can_come_from_an_indexed_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(&dir, BEARER_CONNECTOR);
    let without = run(&config, &["check-config"], &[]);
    assert_eq!(without.status.code(), Some(78), "{}", output(&without));
    let with = run(
        &config,
        &["check-config"],
        &[("PRESENCE_BRIDGE__CONNECTORS__0__AUTH__TOKEN", "0123456789")],
    );
    let shown = output(&with);
    assert_eq!(with.status.code(), Some(0), "{shown}");
    assert!(
        !shown.contains("0123456789"),
        "the secret was printed: {shown}"
    );
}

#[test]
fn a_bad_environment_value_is_blamed_on_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(&dir, "[server]\nlisten = \"127.0.0.1:0\"\n");
    let out = run(
        &config,
        &["check-config"],
        &[
            ("PRESENCE_BRIDGE__SERVER__BODY_LIMIT_BYTES", "lots"),
            ("PRESENCE_BRIDGE__SYNC__HOLD_DOWN_SECS", "100000000"),
        ],
    );
    let shown = output(&out);
    assert_eq!(out.status.code(), Some(78), "{shown}");
    assert!(
        shown.contains("environment variable PRESENCE_BRIDGE__SERVER__BODY_LIMIT_BYTES"),
        "{shown}"
    );
}

fn graph_config(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let db = dir.path().join("pb.db");
    write(
        dir,
        &format!(
            r#"
[server]
listen = "127.0.0.1:0"
[store]
url = "sqlite://{}"
[graph]
tenant_id = "00000000-0000-0000-0000-000000000001"
client_id = "00000000-0000-0000-0000-000000000002"
client_secret = "s"
token_encryption_key = "ZXhhbXBsZS1rZXktZG8tbm90LXVzZS1pbi1wcm9kISE="
"#,
            db.display()
        ),
    )
}

#[test]
fn removing_an_unknown_sync_account_says_which_and_where_to_look() {
    let dir = tempfile::tempdir().unwrap();
    let config = graph_config(&dir);
    let out = run(&config, &["accounts", "remove", "x@example.com"], &[]);
    let shown = output(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("x@example.com"), "{shown}");
    assert!(shown.contains("accounts list"), "{shown}");
    assert!(!shown.contains("store: not found"), "{shown}");
}

#[test]
fn an_empty_account_list_prints_no_table_header() {
    let dir = tempfile::tempdir().unwrap();
    let config = graph_config(&dir);
    let out = run(&config, &["accounts", "list"], &[]);
    let shown = output(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("No sync accounts"), "{shown}");
    assert!(!shown.contains("LAST REFRESH"), "{shown}");
}

#[test]
fn a_taken_port_is_reported_once_with_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        &dir,
        &format!(
            "[server]\nlisten = \"{addr}\"\n[store]\nurl = \"sqlite://{}\"\n",
            dir.path().join("pb.db").display()
        ),
    );
    let out = run(&config, &["run"], &[]);
    let shown = output(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert_eq!(
        shown.matches("Address already in use").count(),
        1,
        "the OS error is repeated: {shown}"
    );
    assert!(shown.contains("server.listen"), "{shown}");
    assert!(shown.contains("--listen"), "{shown}");
}

#[test]
fn an_unreachable_database_is_tried_again_until_the_wait_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback refuses at once.
    let config = write(
        &dir,
        "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"postgres://bridge@127.0.0.1:1/pb\"\nconnect_wait_secs = 2\n[log]\nformat = \"json\"\n",
    );
    let out = run(&config, &["run"], &[]);
    let shown = output(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let attempts = shown.matches("database not reachable yet").count();
    assert!(attempts >= 2, "{attempts} retries logged:\n{shown}");
    assert!(shown.contains("gave up after"), "{shown}");
}

#[test]
fn a_config_that_syncs_nothing_is_valid_but_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(&dir, "[server]\nlisten = \"127.0.0.1:0\"\n");
    let out = run(&config, &["check-config"], &[]);
    let shown = output(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning: neither [graph]"),
        "{shown}"
    );
}

#[test]
fn a_sign_in_that_cannot_reach_the_identity_platform_names_the_host_and_cause() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = graph_config(&dir);
    let out = run(
        &config,
        &["accounts", "add"],
        &[(
            "PRESENCE_BRIDGE__GRAPH__AUTHORITY_URL",
            format!("http://127.0.0.1:{port}").as_str(),
        )],
    );
    let shown = output(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(&format!("cannot reach 127.0.0.1:{port}")),
        "{shown}"
    );
    assert!(shown.to_lowercase().contains("refused"), "{shown}");
    assert!(shown.contains("check the host and port"), "{shown}");
}

#[test]
fn check_config_checks_rules_against_static_catalogs_and_teams_values() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        &dir,
        &format!(
            "{BEARER_CONNECTOR}token = \"t\"\n{}",
            r#"
[[teams_to_cc]]
when = { activity = ["OnThePhone"] }
set = "Busy(Teams)"

[[cc_to_teams]]
when = { status = ["Available"] }
only_if_teams = ["Lunch"]
set = "clear"
"#
        ),
    );
    let out = run(&config, &["check-config"], &[]);
    let shown = output(&out);
    assert_eq!(out.status.code(), Some(78), "{shown}");
    assert!(
        shown.contains("teams_to_cc[0].set") && shown.contains("Busy(Teams)"),
        "{shown}"
    );
    assert!(
        shown.contains("teams_to_cc[0].when.activity") && shown.contains("OnThePhone"),
        "{shown}"
    );
    assert!(shown.contains("cc_to_teams[0].only_if_teams"), "{shown}");
}

#[test]
fn the_example_configuration_passes_check_config() {
    let out = run(
        std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/presence-bridge.example.toml"
        )),
        &["check-config"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
}

#[tokio::test]
async fn explain_takes_a_upn_an_email_or_a_name_and_refuses_an_ambiguous_name() {
    use presence_bridge::model::directory::UserRecord;
    use presence_bridge::store::AuditEntry;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/pb.db", dir.path().display());
    let store = presence_bridge::store::open(&presence_bridge::store::config::StoreConfig {
        url: url.clone().into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let person = |id: &str, upn: &str, mail: &str, name: &str| UserRecord {
        teams_id: id.into(),
        upn: upn.into(),
        mail: Some(mail.into()),
        display_name: Some(name.into()),
        business_phones: vec![],
        mobile_phone: None,
        cc_connector: None,
        cc_agent_id: None,
        active: true,
        updated_at: chrono::Utc::now(),
    };
    store
        .upsert_users(&[
            person(
                "id-alice",
                "alice@contoso.com",
                "alice.example@contoso.com",
                "Alice Example",
            ),
            person(
                "id-bob1",
                "bob1@contoso.com",
                "bob1@contoso.com",
                "Bob Twin",
            ),
            person(
                "id-bob2",
                "bob2@contoso.com",
                "bob2@contoso.com",
                "Bob Twin",
            ),
        ])
        .await
        .unwrap();
    store
        .append_audit(&[AuditEntry {
            id: 0,
            user_id: "id-alice".into(),
            at: chrono::Utc::now(),
            input: serde_json::json!({"not": "a record"}).into(),
            rule: None,
            action: "ignore".into(),
            reason: "no mapping rule matches".into(),
        }])
        .await
        .unwrap();
    let config = write(&dir, &format!("[store]\nurl = \"{url}\"\n"));
    for who in [
        "id-alice",
        "ALICE@contoso.com",
        "alice.example@contoso.com",
        "alice example",
    ] {
        let config = config.clone();
        let who = who.to_owned();
        let out = tokio::task::spawn_blocking(move || run(&config, &["explain", &who], &[]))
            .await
            .unwrap();
        let text = output(&out);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(
            text.contains("no mapping rule matches"),
            "found Alice's decision: {text}"
        );
    }
    let out = tokio::task::spawn_blocking(move || run(&config, &["explain", "Bob Twin"], &[]))
        .await
        .unwrap();
    let text = output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("names 2 people") && text.contains("id-bob1") && text.contains("id-bob2"),
        "{text}"
    );
}

//! The command line under hostile conditions: database passwords in every form a URL can hold
//! them, and a reader that closes the pipe early.

use std::process::{Command, Stdio};

use presence_bridge::store::UserRecord;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
}

const SECRET: &str = "Zq9-pw";

/// `store.url` forms that carry a password: unencoded `/` and `#` in the userinfo (the URL no
/// longer parses as the user meant), and the `password` query parameter that libpq and sqlx
/// accept. Port 1 on loopback refuses, so `run` fails at start-up and prints the URL.
fn urls() -> Vec<String> {
    vec![
        format!("postgres://bridge:{SECRET}/x@127.0.0.1:1/pb"),
        format!("postgres://bridge:{SECRET}#x@127.0.0.1:1/pb"),
        format!("postgres://bridge@127.0.0.1:1/pb?sslmode=disable&password={SECRET}"),
        format!("postgres://bridge:{SECRET}@127.0.0.1:1/pb"),
    ]
}

fn config_with_store_url(dir: &tempfile::TempDir, url: &str) -> std::path::PathBuf {
    let path = dir.path().join("pb.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\nurl = {url:?}\nconnect_wait_secs = 0\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_config_and_run_never_print_a_database_password() {
    for url in urls() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_with_store_url(&dir, &url);
        for command in ["check-config", "run"] {
            let out = bin()
                .arg("--config")
                .arg(&config)
                .arg(command)
                .env_clear()
                .output()
                .unwrap();
            let shown = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !shown.contains(SECRET),
                "`{command}` with store.url {url:?} printed the password:\n{shown}"
            );
            if command == "run" {
                assert_eq!(out.status.code(), Some(1), "{shown}");
            } else {
                assert_eq!(out.status.code(), Some(0), "{shown}");
                assert!(shown.contains("[redacted]"), "{shown}");
            }
        }
    }
}

/// `users --report | head -1`: the reader goes away before the command is done printing. The
/// command stops quietly with status 0 instead of panicking with status 101.
#[tokio::test]
async fn a_closed_pipe_ends_printing_commands_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pb.db");
    let config = config_with_store_url(&dir, &format!("sqlite://{}", db.display()));
    let store = presence_bridge::store::open(
        &presence_bridge::app::config::Config::load(&config)
            .unwrap()
            .store,
    )
    .await
    .unwrap();
    let users: Vec<UserRecord> = (0..2_000)
        .map(|i| UserRecord {
            teams_id: format!("00000000-0000-0000-0000-{i:012}"),
            upn: format!("person{i}@contoso.example"),
            mail: None,
            display_name: Some(format!("Person {i}")),
            business_phones: Vec::new(),
            mobile_phone: None,
            cc_connector: None,
            cc_agent_id: None,
            active: true,
            updated_at: chrono::Utc::now(),
        })
        .collect();
    store.upsert_users(&users).await.unwrap();
    drop(store);

    for args in [&["users", "--report"][..], &["users"], &["check-config"]] {
        let mut child = bin()
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader closes its end at once, as `head` does once it has its lines.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

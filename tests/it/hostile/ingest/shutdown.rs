//! SIGTERM while every outbound call hangs: the contact centers and the AWS instance
//! metadata service accept connections and never answer. The real daemon must exit within
//! 2 s of the signal (the requirement itself is the time bound; on an idle machine it takes a
//! small fraction of that).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

/// A peer that accepts connections, keeps them open and never sends a byte. The receiver
/// turns true at the first connection.
async fn black_hole() -> (String, watch::Receiver<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            open.push(sock);
            let _ = tx.send(true);
        }
    });
    (addr.to_string(), rx)
}

async fn until_connected(what: &str, rx: &mut watch::Receiver<bool>) {
    tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|c| *c))
        .await
        .unwrap_or_else(|_| panic!("the daemon never called {what}"))
        .expect("black hole alive");
}

#[tokio::test]
async fn sigterm_stops_the_daemon_within_two_seconds_while_every_call_hangs() {
    let (cc, mut cc_rx) = black_hole().await;
    let (genesys, mut genesys_rx) = black_hole().await;
    let (connect, _connect_rx) = black_hole().await;
    let (imds, mut imds_rx) = black_hole().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pb.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
shutdown_grace_secs = 20
[store]
url = "sqlite://{dir}/pb.db"
[log]
filter = "info"
format = "json"

[[connectors]]
name = "cc"
kind = "http"
base_url = "http://{cc}/"
statuses = [{{ id = "1", name = "Available", kind = "routable" }}]
[connectors.limits]
request_timeout_secs = 120
[connectors.list_agents]
request = {{ url = "{{{{ base_url }}}}agents" }}
id_pointer = "/id"

[[connectors]]
name = "genesys"
kind = "genesys"
login_base_url = "http://{genesys}/"
api_base_url = "http://{genesys}/"
client_id = "c"
client_secret = "s"
[connectors.limits]
request_timeout_secs = 120

# No static keys: the AWS credential chain runs, ending at the instance metadata service.
[[connectors]]
name = "connect"
kind = "amazon_connect"
region = "eu-west-2"
instance_id = "11111111-2222-3333-4444-555555555555"
endpoint_url = "http://{connect}"
[connectors.limits]
request_timeout_secs = 120
"#,
            dir = dir.path().display()
        ),
    )
    .unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            format!("http://{imds}"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("daemon starts");
    let pid = child.id().expect("running");
    // The log says when the server listens (the signal handler is installed by then); the
    // rest of the log is drained so the daemon never blocks on a full pipe.
    let (listening_tx, mut listening_rx) = watch::channel(false);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("listening") {
                let _ = listening_tx.send(true);
            }
        }
    });
    until_connected("its log", &mut listening_rx).await;
    until_connected("the http contact center", &mut cc_rx).await;
    until_connected("Genesys", &mut genesys_rx).await;
    until_connected("the instance metadata service", &mut imds_rx).await;

    let signalled = Instant::now();
    let kill = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let exited = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let took = signalled.elapsed();
    let status = match exited {
        Ok(s) => s.expect("wait"),
        Err(_) => {
            let _ = child.start_kill();
            panic!("the daemon did not stop within 10 s of SIGTERM");
        }
    };
    eprintln!("stopped {took:?} after SIGTERM");
    assert!(status.success(), "clean exit: {status}");
    assert!(
        took < Duration::from_secs(2),
        "stopped only {took:?} after SIGTERM"
    );
}

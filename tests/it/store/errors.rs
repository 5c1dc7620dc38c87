//! Opening a store that cannot be reached: one-line `Unavailable` errors, no password shown.

use super::*;

async fn open_err(url: &str) -> String {
    match store::open(&store_config(url.to_owned())).await {
        Err(StoreError::Unavailable(msg)) => msg,
        Err(other) => panic!("expected Unavailable for {url}, got {other:?}"),
        Ok(_) => panic!("expected {url} not to open"),
    }
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_without_the_password() {
    // Bind and drop a listener to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let msg = open_err(&format!("postgres://bridge:hunter2@127.0.0.1:{port}/db")).await;
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("check that the server is running"), "{msg}");
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

#[tokio::test]
async fn invalid_postgres_url_is_unavailable_without_the_password() {
    let msg = open_err("postgres://bridge:hunter2@127.0.0.1:notaport/db").await;
    assert!(msg.contains("store.url"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

#[tokio::test]
async fn sqlite_in_an_uncreatable_directory_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let msg = open_err(&format!("sqlite://{}/sub/store.db", file.display())).await;
    assert!(msg.contains("cannot create the directory"), "{msg}");
    assert!(msg.contains("store.url"), "{msg}");
}

#[tokio::test]
async fn sqlite_file_that_is_not_a_database_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junk.db");
    std::fs::write(&file, vec![b'x'; 4096]).unwrap();
    let msg = open_err(&format!("sqlite://{}", file.display())).await;
    assert!(msg.contains(&file.display().to_string()), "{msg}");
}

#[tokio::test]
async fn in_memory_sqlite_works() {
    let s = store::open(&store_config("sqlite::memory:".into()))
        .await
        .expect("in-memory store opens");
    s.put_kv("k", "v").await.unwrap();
    assert_eq!(s.get_kv("k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(s.backend(), "sqlite");
}

#[tokio::test]
async fn invalid_sqlite_url_is_unavailable() {
    let msg = open_err("sqlite://data/x.db?mode=sideways").await;
    assert!(msg.contains("not a valid SQLite URL"), "{msg}");
    assert!(msg.contains("sqlite://path/to/file.db"), "{msg}");
}

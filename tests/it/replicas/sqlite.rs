//! SQLite serves one process: a second daemon on the same file is refused at start, with a
//! message that says why and what to do; once the first one stops, the file is free again.

use presence_bridge::app::{AppError, Application};

use crate::helpers::test_config;

#[tokio::test]
async fn a_second_daemon_on_the_same_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Application::build(test_config(&dir)).await.expect("first");
    let second = Application::build(test_config(&dir)).await;
    let Err(AppError::Database(e)) = second else {
        panic!("a second daemon on the file must be refused");
    };
    let message = e.to_string();
    assert!(
        message.contains("in use by another presence-bridge process")
            && message.contains("use Postgres"),
        "{message}"
    );
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    drop(first);
    Application::build(test_config(&dir))
        .await
        .expect("free again once the first one is gone");
}

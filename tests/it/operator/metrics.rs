//! `/metrics` explains itself: every metric family has a `# HELP` line.

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_metric_family_has_a_help_line() {
    let app = spawn_app().await;
    app.get("/health/live").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    let types: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(!types.is_empty(), "{text}");
    for name in types {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no # HELP line:\n{text}"
        );
    }
    app.shutdown().await;
}

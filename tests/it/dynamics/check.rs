//! `check-config` reports a template error with its key path.

use assert_cmd::Command;

#[test]
fn check_config_names_the_step_template_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pb.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[store]
url = "sqlite://{}/pb.db"

[[dynamics]]
name = "crm"
url = "https://contoso.crm.dynamics.com"
tenant_id = "tenant"
client_id = "client"
client_secret = "secret"

[dynamics.steps.created]
path = "phonecalls"
body = '{{"phonenumber": {{{{ contact.customer_endpoint | tojson }}}}}}'
captures = [{{ name = "activityid", entity_id = true }}]

[dynamics.steps.ended]
method = "PATCH"
path = "phonecalls({{{{ steps.created.activityid }}}})"
body = '{{"actualend": {{{{ contact.ended_at | tojson }}}}}}'
"#,
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::cargo_bin("presence-bridge")
        .unwrap()
        .env_clear()
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(78), "{shown}");
    assert!(
        shown.contains("dynamics[0].steps.ended.body: unknown variable contact.ended_at"),
        "{shown}"
    );
}

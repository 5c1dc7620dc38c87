use secrecy::ExposeSecret;

use super::*;
use crate::telemetry::LogFormat;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_apply_when_the_file_is_empty() {
    let cfg = Config::from_toml_str_with_env("", env(&[])).unwrap();
    assert_eq!(cfg.server.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(
        cfg.store.url.expose_secret(),
        "sqlite://data/presence-bridge.db"
    );
    assert_eq!(cfg.log.format, LogFormat::Auto);
}

#[test]
fn environment_overrides_the_file() {
    let text = "[server]\nlisten = \"127.0.0.1:9000\"\nbody_limit_bytes = 2048\n";
    let cfg = Config::from_toml_str_with_env(
        text,
        env(&[
            ("PRESENCE_BRIDGE__SERVER__LISTEN", "127.0.0.1:9100"),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:9100");
    assert_eq!(cfg.server.body_limit_bytes, 2048);
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let err = Config::from_toml_str_with_env("[server]\nlisten_port = 1\n", env(&[])).unwrap_err();
    assert!(err.to_string().contains("listen_port"), "{err}");
    let err = Config::from_toml_str_with_env("[nonsense]\na = 1\n", env(&[])).unwrap_err();
    assert!(err.to_string().contains("nonsense"), "{err}");
}

#[test]
fn secrets_come_from_files_and_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "s3cret-token\n").unwrap();
    let text = format!("[api]\nbearer_token_file = \"{}\"\n", path.display());
    let mut cfg = Config::from_toml_str_with_env(&text, env(&[])).unwrap();
    cfg.resolve_and_validate().unwrap();
    assert_eq!(
        cfg.api.bearer_token.as_ref().unwrap().expose_secret(),
        "s3cret-token"
    );
    let shown = cfg.to_redacted_toml();
    assert!(!shown.contains("s3cret-token"), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
    assert!(!format!("{cfg:?}").contains("s3cret-token"));
}

#[test]
fn inline_and_file_secret_together_is_an_error() {
    let text = "[api]\nbearer_token = \"a\"\nbearer_token_file = \"/tmp/x\"\n";
    let mut cfg = Config::from_toml_str_with_env(text, env(&[])).unwrap();
    let err = cfg.resolve_and_validate().unwrap_err();
    assert!(err.to_string().contains("not both"), "{err}");
}

#[test]
fn database_passwords_are_redacted() {
    let cfg =
        Config::from_toml_str_with_env("[store]\nurl = \"postgres://bridge:pw@db/pb\"\n", env(&[]))
            .unwrap();
    assert!(!format!("{:?}", cfg.store).contains(":pw@"));
    assert!(!cfg.to_redacted_toml().contains(":pw@"));
}

#[test]
fn webhooks_need_a_public_url() {
    let text = "[graph]\npresence_source = \"hybrid\"\n";
    let mut cfg = Config::from_toml_str_with_env(text, env(&[])).unwrap();
    let Err(ConfigError::Invalid(errs)) = cfg.resolve_and_validate() else {
        panic!("hybrid without server.public_url must be refused");
    };
    assert!(
        errs.iter().any(|i| i.path == "graph.presence_source"),
        "{errs}"
    );
}

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

fn issues(err: ConfigError) -> Vec<(String, String)> {
    match err {
        ConfigError::Invalid(errs) => errs
            .iter()
            .map(|i| (i.path.clone(), i.message.clone()))
            .collect(),
        other => panic!("expected every issue listed, got {other}"),
    }
}

#[test]
fn every_type_error_and_unknown_key_is_reported_at_once() {
    let text = r#"
[server]
listen = 5
body_limit_bytes = "big"

[sync]
hold_down_secs = "soon"

[[teams_to_cc]]
when = { activity = ["InACall"] }
set = "Busy"
restor = true

[nonsense]
a = 1
"#;
    let found = issues(Config::from_toml_str_with_env(text, env(&[])).unwrap_err());
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    for want in [
        "server.listen",
        "server.body_limit_bytes",
        "sync.hold_down_secs",
        "nonsense",
    ] {
        assert!(paths.contains(&want), "{want} missing from {found:?}");
    }
    assert!(
        found
            .iter()
            .any(|(p, m)| p.starts_with("teams_to_cc[0]") && m.contains("restor")),
        "{found:?}"
    );
}

#[test]
fn array_sections_take_indexed_environment_overrides() {
    let text = r#"
[[connectors]]
name = "cc"
kind = "http"
base_url = "https://cc.example.com/"
[connectors.auth]
type = "bearer"
token = "from-file"
"#;
    let cfg = Config::from_toml_str_with_env(
        text,
        env(&[
            ("PRESENCE_BRIDGE__CONNECTORS__0__AUTH__TOKEN", "12345"),
            ("PRESENCE_BRIDGE__SYNC__HOLD_DOWN_SECS", "20"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.sync.hold_down_secs, 20);
    let shown = format!("{:?}", cfg.connectors[0]);
    assert!(!shown.contains("from-file"), "{shown}");
    let ConnectorConfig::Http(h) = &cfg.connectors[0] else {
        panic!("http connector")
    };
    let crate::connectors::http::config::AuthConfig::Bearer { token, .. } = &h.auth else {
        panic!("bearer auth: {:?}", h.auth)
    };
    assert_eq!(
        token.as_ref().map(|t| t.expose_secret().to_owned()),
        Some("12345".to_owned()),
        "a numeric-looking secret stays the string it was"
    );
}

#[test]
fn an_alert_sink_url_comes_from_an_indexed_environment_variable() {
    let text =
        "[[alerts]]\nname = \"ops\"\nkind = \"teams\"\nurl = \"https://file.example.com/x\"\n";
    let mut cfg = Config::from_toml_str_with_env(
        text,
        env(&[(
            "PRESENCE_BRIDGE__ALERTS__0__URL",
            "https://env.example.com/hook",
        )]),
    )
    .unwrap();
    cfg.resolve_and_validate().unwrap();
    let url = cfg.alerts[0]
        .url
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    assert_eq!(url, "https://env.example.com/hook");
}

#[test]
fn a_mistake_in_an_environment_variable_names_the_variable() {
    let err = Config::from_toml_str_with_env(
        "[server]\nlisten = \"127.0.0.1:9000\"\n",
        env(&[("PRESENCE_BRIDGE__SERVER__BODY_LIMIT_BYTES", "lots")]),
    )
    .unwrap_err();
    let found = issues(err);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .0
            .contains("environment variable PRESENCE_BRIDGE__SERVER__BODY_LIMIT_BYTES"),
        "{found:?}"
    );
    let err =
        Config::from_toml_str_with_env("", env(&[("PRESENCE_BRIDGE__CONNECTORS__3__NAME", "x")]))
            .unwrap_err();
    assert!(err.to_string().contains("next one is 0"), "{err}");
}

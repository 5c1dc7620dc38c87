use serde::{Deserialize, Serialize};

use super::*;

/// The `[[connectors]]` part of a configuration file.
#[derive(Debug, Deserialize, Serialize)]
struct File {
    #[serde(default)]
    connectors: Vec<ConnectorConfig>,
}

fn parse(toml_text: &str) -> Result<File, toml::de::Error> {
    toml::from_str(toml_text)
}

fn errors(toml_text: &str) -> Vec<(String, String)> {
    let mut file = match parse(toml_text) {
        Ok(f) => f,
        Err(e) => return vec![("parse".into(), e.to_string())],
    };
    let mut errs = ConfigErrors::default();
    validate(&mut file.connectors, "connectors", &mut errs);
    errs.iter()
        .map(|i| (i.path.clone(), i.message.clone()))
        .collect()
}

const STATIC_OK: &str = r#"
[[connectors]]
name = "a"
kind = "http"
statuses = [{ id = "1", name = "Available", kind = "routable" }]
"#;

#[test]
fn minimal_http_connector_is_valid() {
    assert_eq!(errors(STATIC_OK), vec![]);
}

#[test]
fn unknown_kind_is_one_clear_error() {
    let e = errors("[[connectors]]\nname = \"a\"\nkind = \"avaya\"\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].1.contains("avaya") && e[0].1.contains("genesys"),
        "{e:?}"
    );
}

#[test]
fn missing_secret_and_bad_template_name_their_key_paths() {
    let text = format!(
        "{STATIC_OK}{}",
        r#"
[[connectors]]
name = "b"
kind = "http"
statuses = [{ id = "1", name = "Available", kind = "routable" }]
auth = { type = "bearer" }
[connectors.set_status]
method = "PUT"
url = "{{ base_url }}agents/{{ agentid }}"
"#
    );
    let e = errors(&text);
    let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec!["connectors[1].auth.token", "connectors[1].set_status.url"],
        "{e:?}"
    );
    assert!(e[1].1.contains("agentid"), "{e:?}");
}

#[test]
fn duplicate_names_unknown_keys_and_missing_catalog() {
    let e = errors(&format!("{STATIC_OK}{STATIC_OK}"));
    assert_eq!(
        e,
        vec![(
            "connectors[1].name".into(),
            "duplicate connector name \"a\"".into()
        )]
    );
    let e = errors("[[connectors]]\nname = \"a\"\nkind = \"http\"\nstatuses = []\nbogus = 1\n");
    assert!(e[0].1.contains("bogus"), "{e:?}");
    let e = errors("[[connectors]]\nname = \"a\"\nkind = \"http\"\n");
    assert_eq!(e[0].0, "connectors[0].statuses");
}

#[test]
fn hmac_needs_timestamp_header_for_replay_window() {
    let text = format!(
        "{STATIC_OK}{}",
        r#"
[connectors.inbound]
agent_id_pointer = "/agent"
status_pointer = "status"
[connectors.inbound.verify]
type = "hmac"
header = "X-Sig"
secret = "k"
"#
    );
    let e = errors(&text);
    let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "connectors[0].inbound.status_pointer",
            "connectors[0].inbound.verify.timestamp_header"
        ],
        "{e:?}"
    );
}

#[test]
fn genesys_and_amazon_connect_settings_are_checked() {
    let e = errors(
        "[[connectors]]\nname = \"g\"\nkind = \"genesys\"\nclient_id = \"c\"\ntopics_per_channel = 5000\n",
    );
    let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "connectors[0].client_secret",
            "connectors[0].topics_per_channel"
        ],
        "{e:?}"
    );
    let e = errors(
        "[[connectors]]\nname = \"a\"\nkind = \"amazon_connect\"\nregion = \"eu-west-2\"\ninstance_id = \"i\"\naccess_key_id = \"AKID\"\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, "connectors[0].access_key_id");
    let ok = errors(
        "[[connectors]]\nname = \"a\"\nkind = \"amazon_connect\"\nregion = \"eu-west-2\"\ninstance_id = \"i\"\n",
    );
    assert_eq!(
        ok,
        vec![],
        "the AWS credential chain needs no keys in the file"
    );
}

#[test]
fn secrets_are_redacted_when_printed() {
    let mut file = parse(
        "[[connectors]]\nname = \"g\"\nkind = \"genesys\"\nclient_id = \"c\"\nclient_secret = \"hunter2\"\n",
    )
    .unwrap();
    let mut errs = ConfigErrors::default();
    validate(&mut file.connectors, "connectors", &mut errs);
    assert!(errs.is_empty(), "{errs}");
    assert!(!toml::to_string(&file).unwrap().contains("hunter2"));
    assert!(!format!("{file:?}").contains("hunter2"));
}

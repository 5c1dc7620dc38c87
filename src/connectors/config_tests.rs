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
fn a_replay_window_must_be_covered_by_the_signature() {
    let hmac = |verify: &str| {
        format!(
            "{STATIC_OK}\n[connectors.inbound]\nagent_id_pointer = \"/agent\"\nstatus_pointer = \"/status\"\n[connectors.inbound.verify]\ntype = \"hmac\"\nheader = \"X-Sig\"\nsecret = \"k\"\n{verify}"
        )
    };
    let paths = |verify: &str| -> Vec<String> {
        errors(&hmac(verify)).into_iter().map(|(p, _)| p).collect()
    };
    let v = "connectors[0].inbound.verify";
    assert_eq!(paths(""), Vec::<String>::new(), "body-only, no window");
    assert_eq!(
        paths("timestamp_header = \"X-Ts\"\n"),
        vec![format!("{v}.timestamp_header")]
    );
    assert_eq!(
        paths("replay_window_secs = 60\n"),
        vec![format!("{v}.replay_window_secs")]
    );
    assert_eq!(paths("replay_window_secs = 0\n"), Vec::<String>::new());
    assert_eq!(
        paths("signed = \"timestamp_body\"\n"),
        vec![format!("{v}.timestamp_header")]
    );
    assert_eq!(
        paths("signed = \"timestamp_body\"\ntimestamp_header = \"X-Ts\"\n"),
        Vec::<String>::new()
    );
}

#[test]
fn event_time_bounds_are_checked() {
    let e = errors(&format!(
        "{STATIC_OK}[connectors.event_time]\nmax_future_skew_secs = 0\nmax_age_secs = 10\n"
    ));
    let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "connectors[0].event_time.max_future_skew_secs",
            "connectors[0].event_time.max_age_secs"
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

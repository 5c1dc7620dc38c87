//! The shipped example configuration, checked online against the simulators: the file as it
//! is, only its endpoints and credentials pointed at loopback through indexed environment
//! overrides (and the example `http` connector's agent-list path, the one URL a generic
//! connector carries in a template). Every connector kind of the example is simulated here:
//! `http` by the demo's contact center, `genesys`, `innovaphone` and `ccai` by their
//! simulators, `amazon_connect` by the fake Connect API of the Amazon connector's tests.

use presence_bridge::sim::contact_center::{self, SIM_CLIENT_ID, SIM_CLIENT_SECRET, SimOptions};
use presence_bridge::sim::graph::{self as sim_graph, SimGraphOptions};
use presence_bridge::sim::{ccai, genesys, innovaphone};

const EXAMPLE: &str = include_str!("../../../config/presence-bridge.example.toml");

/// The example's `[[connectors]]`, in file order.
const CONNECTORS: &[(&str, &str)] = &[
    ("ccaip", "http"),
    ("genesys", "genesys"),
    ("connect", "amazon_connect"),
    ("pbx", "innovaphone"),
    ("ccai", "ccai"),
];

#[tokio::test]
async fn the_example_config_passes_the_online_check_against_the_simulators() {
    // The connectors are where the test expects them; a new one must be pointed somewhere.
    let cfg: toml::Value = toml::from_str(EXAMPLE).expect("the example parses");
    let listed: Vec<(String, String)> = cfg["connectors"]
        .as_array()
        .expect("[[connectors]]")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = CONNECTORS
        .iter()
        .map(|(n, k)| ((*n).to_owned(), (*k).to_owned()))
        .collect();
    assert_eq!(listed, want, "every connector of the example is simulated");

    let graph = sim_graph::spawn(SimGraphOptions::default()).await;
    let cc = contact_center::spawn(SimOptions {
        agents: 3,
        page_size: 100,
        ..Default::default()
    })
    .await
    .unwrap();
    let gc = genesys::spawn(3, None).await.unwrap();
    let (connect_url, _connect) = crate::connectors_amazon::spawn_fake(3).await;
    let pbx = innovaphone::spawn(3).await.unwrap();
    let cca = ccai::spawn(3).await.unwrap();

    let opts = &graph.state.options;
    let env: Vec<(String, String)> = [
        ("GRAPH__TENANT_ID", opts.tenant_id.clone()),
        ("GRAPH__CLIENT_ID", opts.client_id.clone()),
        (
            "GRAPH__CLIENT_SECRET",
            opts.client_secret.clone().unwrap_or_default(),
        ),
        ("GRAPH__BASE_URL", graph.base_url.clone()),
        ("GRAPH__AUTHORITY_URL", graph.authority_url.clone()),
        // http
        ("CONNECTORS__0__BASE_URL", cc.base_url.clone()),
        (
            "CONNECTORS__0__AUTH__TOKEN_URL",
            format!("{}oauth/token", cc.base_url),
        ),
        ("CONNECTORS__0__AUTH__CLIENT_ID", SIM_CLIENT_ID.into()),
        (
            "CONNECTORS__0__AUTH__CLIENT_SECRET",
            SIM_CLIENT_SECRET.into(),
        ),
        // genesys
        ("CONNECTORS__1__API_BASE_URL", gc.api_url.clone()),
        ("CONNECTORS__1__LOGIN_BASE_URL", gc.login_url.clone()),
        (
            "CONNECTORS__1__CLIENT_ID",
            genesys::GENESYS_CLIENT_ID.into(),
        ),
        (
            "CONNECTORS__1__CLIENT_SECRET",
            genesys::GENESYS_CLIENT_SECRET.into(),
        ),
        // amazon_connect
        ("CONNECTORS__2__ENDPOINT_URL", connect_url.clone()),
        ("CONNECTORS__2__ACCESS_KEY_ID", "AKIDEXAMPLE".into()),
        (
            "CONNECTORS__2__SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        ),
        // innovaphone
        ("CONNECTORS__3__URL", pbx.url.clone()),
        ("CONNECTORS__3__APP", innovaphone::INNOVAPHONE_APP.into()),
        (
            "CONNECTORS__3__PASSWORD",
            innovaphone::INNOVAPHONE_PASSWORD.into(),
        ),
        // ccai
        ("CONNECTORS__4__BASE_URL", cca.base_url.clone()),
        ("CONNECTORS__4__SUBDOMAIN", ccai::CCAI_SUBDOMAIN.into()),
        ("CONNECTORS__4__API_TOKEN", ccai::CCAI_TOKEN.into()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("PRESENCE_BRIDGE__{k}"), v))
    .collect();

    // The generic connector's agent list is a URL template; the simulator serves its agents
    // under another path (same JSON shape: /agents, /id, /email, /name).
    let from = "{{ base_url }}manager/api/v1/agents?page={{ page + 1 }}";
    assert!(EXAMPLE.contains(from), "the example's agent list request");
    let text = EXAMPLE.replacen(from, "{{ base_url }}api/agents?page={{ page + 1 }}", 1);

    let (code, shown) = check_online(&text, &env).await;
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains("online: graph: signed in as the app"),
        "{shown}"
    );
    for (name, _) in CONNECTORS {
        assert!(
            shown.contains(&format!("online: connector \"{name}\": ")),
            "{name} checked: {shown}"
        );
    }
    assert!(
        shown.contains("online: every rule fits the catalogs read"),
        "{shown}"
    );

    // The example's rules name statuses of catalogs the file itself defines (the http
    // connector's `statuses`, the PBX's activities); the rule its comments show for Genesys
    // names a presence definition fetched from the platform. Taken as written, it fits the
    // simulated org's definitions; with a label the org lacks, the check fails on it.
    // "Busy" is one of Genesys Cloud's primary statuses, which an org cannot rename or remove
    // (https://help.mypurecloud.com/articles/presence-status-and-activity-indicators/);
    // "Busy (Teams)" would be a secondary status an admin creates, absent from the simulator.
    let documented: String = EXAMPLE
        .lines()
        .skip_while(|l| !l.starts_with("#   [[teams_to_cc]]"))
        .take(4)
        .map(|l| l.trim_start_matches('#').trim().to_owned() + "\n")
        .collect();
    assert!(
        documented.contains("connector = \"genesys\"") && documented.contains("set = \"Busy\""),
        "{documented}"
    );
    let (code, shown) = check_online(&format!("{text}\n{documented}"), &env).await;
    assert_eq!(code, Some(0), "{shown}");
    let unknown = documented.replace("set = \"Busy\"", "set = \"Busy (Teams)\"");
    let (code, shown) = check_online(&format!("{text}\n{unknown}"), &env).await;
    assert_eq!(code, Some(78), "{shown}");
    assert!(
        shown.contains("teams_to_cc[3].set")
            && shown
                .contains("\"Busy (Teams)\" is not in the status catalog of connector \"genesys\""),
        "{shown}"
    );
}

/// `check-config --online` on `text` with `env` only; exit code and everything printed.
async fn check_online(text: &str, env: &[(String, String)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("presence-bridge.toml");
    std::fs::write(&path, text).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_presence-bridge"))
        .current_dir(dir.path())
        .arg("--config")
        .arg(&path)
        .args(["check-config", "--online"])
        .env_clear()
        .envs(env.iter().cloned())
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

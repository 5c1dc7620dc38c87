//! An agent id is one URL path segment, whatever it holds: `a/../../x` must not climb out of
//! `/agents/{id}/status`, and `..` (which URL parsers resolve even percent-encoded) is not
//! sent at all. A loopback server records the exact request path it receives.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use presence_bridge::app::config::Config;
use presence_bridge::connectors::config::ConnectorConfig;
use presence_bridge::connectors::genesys::GenesysConnector;
use presence_bridge::connectors::http::HttpConnector;
use presence_bridge::connectors::{ConnectorError, ContactCenter};
use presence_bridge::model::CcStatus;

type Paths = Arc<Mutex<Vec<String>>>;

/// Records every request's path as sent; answers a token request (OAuth2 client
/// credentials, RFC 6749 §4.4.3) with a token and everything else with 200 `{}`.
async fn record(State(paths): State<Paths>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    paths.lock().unwrap().push(path.clone());
    if req.method() == Method::POST && path.ends_with("/oauth/token") {
        let token = r#"{"access_token":"t","token_type":"bearer","expires_in":3600}"#;
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            token,
        )
            .into_response();
    }
    (StatusCode::OK, [("content-type", "application/json")], "{}").into_response()
}

async fn spawn_recorder() -> (String, Paths) {
    let paths = Paths::default();
    let app = Router::new().fallback(record).with_state(paths.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/"), paths)
}

fn connector_config(toml_text: &str) -> ConnectorConfig {
    let mut cfg =
        Config::from_toml_str_with_env(toml_text, Vec::<(String, String)>::new()).expect("parses");
    cfg.resolve_and_validate().expect("valid");
    cfg.connectors[0].clone()
}

fn status() -> CcStatus {
    CcStatus {
        id: "7".into(),
        name: "Busy (Teams)".into(),
    }
}

#[tokio::test]
async fn template_urlencode_keeps_an_agent_id_inside_its_path_segment() {
    let (base, paths) = spawn_recorder().await;
    let ConnectorConfig::Http(h) = connector_config(&format!(
        r#"
[[connectors]]
name = "cc"
kind = "http"
base_url = "{base}"
statuses = [{{ id = "7", name = "Busy (Teams)", kind = "not_routable" }}]
[connectors.set_status]
method = "PUT"
url = "{{{{ base_url }}}}agents/{{{{ agent_id | urlencode }}}}/status"
accepted_status_codes = [200]
"#
    )) else {
        panic!("http")
    };
    let c = HttpConnector::new(*h, reqwest::Client::new(), None).unwrap();
    c.set_status("a/../../x", &status()).await.unwrap();
    c.set_status("a b?c#d", &status()).await.unwrap();
    assert_eq!(
        *paths.lock().unwrap(),
        vec![
            "/agents/a%2F..%2F..%2Fx/status".to_owned(),
            "/agents/a%20b%3Fc%23d/status".to_owned()
        ]
    );
    for id in ["..", "."] {
        let err = c.set_status(id, &status()).await.unwrap_err();
        assert!(
            matches!(err, ConnectorError::Rejected { .. }),
            "{id}: {err:?}"
        );
    }
    assert_eq!(
        paths.lock().unwrap().len(),
        2,
        "nothing sent for dot segments"
    );
}

#[tokio::test]
async fn genesys_keeps_an_agent_id_inside_its_path_segment() {
    let (base, paths) = spawn_recorder().await;
    let ConnectorConfig::Genesys(g) = connector_config(&format!(
        r#"
[[connectors]]
name = "g"
kind = "genesys"
login_base_url = "{base}"
api_base_url = "{base}"
client_id = "c"
client_secret = "s"
"#
    )) else {
        panic!("genesys")
    };
    let c = GenesysConnector::new(g, reqwest::Client::new()).unwrap();
    c.set_status("a/../../x", &status()).await.unwrap();
    let err = c.set_status("..", &status()).await.unwrap_err();
    assert!(matches!(err, ConnectorError::Rejected { .. }), "{err:?}");
    let sent: Vec<String> = paths
        .lock()
        .unwrap()
        .iter()
        .filter(|p| !p.ends_with("/oauth/token"))
        .cloned()
        .collect();
    assert_eq!(
        sent,
        vec!["/api/v2/users/a%2F..%2F..%2Fx/presences/purecloud".to_owned()]
    );
}

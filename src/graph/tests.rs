//! Unit tests of the Graph client's pure parts.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;

use super::accounts::TokenCipher;
use super::config::AssertionAlgorithm;
use super::config::GraphConfig;
use super::presence::{PresenceWrite, iso_duration};
use crate::config::ConfigErrors;
use crate::graph::client::auth::CertificateCredential;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// The `[graph]` section of a configuration file.
#[derive(serde::Deserialize, serde::Serialize)]
struct File {
    #[serde(default)]
    graph: GraphConfig,
}

fn load(toml: &str) -> Result<File, ConfigErrors> {
    let mut file: File = toml::from_str(toml).expect("parses");
    let mut errs = ConfigErrors::default();
    file.graph.validate("graph", &mut errs);
    if errs.is_empty() { Ok(file) } else { Err(errs) }
}

fn issues(toml: &str) -> Vec<String> {
    match load(toml) {
        Err(e) => e.iter().map(|i| i.path.clone()).collect(),
        Ok(_) => vec![],
    }
}

#[test]
fn graph_is_optional_and_validated_when_present() {
    assert!(load("").unwrap().graph.tenant_id.is_none());
    let got = issues("[graph]\ntenant_id = \"11111111-2222-3333-4444-555555555555\"\n");
    assert!(got.contains(&"graph.client_id".into()), "{got:?}");
    assert!(got.contains(&"graph.client_secret".into()), "{got:?}");
    let got = issues(
        "[graph]\ntenant_id = \"contoso\"\nclient_id = \"x\"\nclient_secret = \"s\"\n\
         token_encryption_key = \"c2hvcnQ=\"\nbudget_window_secs = 0\n\
         teams_service_plan_ids = [\"not-a-guid\"]\n",
    );
    for key in [
        "graph.tenant_id",
        "graph.client_id",
        "graph.token_encryption_key",
        "graph.budget_window_secs",
        "graph.teams_service_plan_ids",
    ] {
        assert!(got.contains(&key.to_owned()), "{key} missing in {got:?}");
    }
    let ok = load(
        "[graph]\ntenant_id = \"11111111-2222-3333-4444-555555555555\"\n\
         client_id = \"22553876-f5ab-4529-bffb-cfe50aa89f87\"\nclient_secret = \"s\"\n",
    )
    .unwrap();
    assert_eq!(ok.graph.app_scope(), "https://graph.microsoft.com/.default");
    assert_eq!(
        ok.graph.identity_url("token"),
        "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token"
    );
    assert!(
        !toml::to_string(&ok)
            .unwrap()
            .contains("client_secret = \"s\"")
    );
}

#[test]
fn the_documented_section_parses_with_no_unknown_keys() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/presence-bridge.example.toml"
    ))
    .unwrap();
    let cfg: File = toml::from_str(&text).unwrap();
    assert_eq!(cfg.graph.presence_read_budget, 1500);
}

fn sample(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/graph-samples/{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn decode_part(jwt: &str, i: usize) -> serde_json::Value {
    let part = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn client_assertions_match_the_documented_shape() {
    let cert = format!("{FIXTURES}/graph-app.crt.pem");
    let key = format!("{FIXTURES}/graph-app.key.pem");
    let ps = CertificateCredential::load(cert.as_ref(), key.as_ref(), AssertionAlgorithm::PS256)
        .unwrap();
    let aud = "https://login.microsoftonline.com/t/oauth2/v2.0/token";
    let jwt = ps.assertion("app-id", aud).unwrap();
    let header = decode_part(&jwt, 0);
    let want = sample("oauth-client-assertion-jwt-header.json");
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&header), keys(&want));
    assert_eq!(header["alg"], "PS256");
    assert_eq!(header["x5t#S256"], ps.x5t_s256.as_str());
    let claims = decode_part(&jwt, 1);
    for k in keys(&sample("oauth-client-assertion-jwt-claims.json")) {
        assert!(claims.get(&k).is_some(), "claim {k} missing");
    }
    assert_eq!(claims["aud"], aud);
    assert_eq!(claims["iss"], "app-id");
    assert_eq!(claims["sub"], "app-id");
    assert!(claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap() <= 600);

    let rs = CertificateCredential::load(cert.as_ref(), key.as_ref(), AssertionAlgorithm::RS256)
        .unwrap();
    let header = decode_part(&rs.assertion("app-id", aud).unwrap(), 0);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["x5t"], rs.x5t.as_str());
    assert!(header.get("x5t#S256").is_none());
    assert!(!format!("{rs:?}").contains("PRIVATE"));
}

#[test]
fn durations_render_like_graph_writes_them() {
    assert_eq!(iso_duration(Duration::from_secs(3600)), "PT1H");
    assert_eq!(iso_duration(Duration::from_secs(300)), "PT5M");
    assert_eq!(iso_duration(Duration::from_secs(5400)), "PT1H30M");
    assert_eq!(iso_duration(Duration::from_secs(8 * 3600)), "PT8H");
}

#[test]
fn pairs_are_matched_case_insensitively_and_sent_in_graph_spelling() {
    let w = PresenceWrite::Set {
        user_id: "u".into(),
        availability: "donotdisturb".into(),
        activity: "PRESENTING".into(),
        expiration: Duration::from_secs(300),
    };
    let (url, body) = w.to_request("app").unwrap();
    assert_eq!(url, "users/u/presence/setPresence");
    assert_eq!(body["availability"], "DoNotDisturb");
    assert_eq!(body["activity"], "Presenting");
    let too_long = PresenceWrite::Set {
        user_id: "u".into(),
        availability: "Away".into(),
        activity: "Away".into(),
        expiration: Duration::from_secs(4 * 3600 + 1),
    };
    assert!(too_long.to_request("app").is_err());
}

#[test]
fn refresh_tokens_are_sealed_to_their_account() {
    let key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([3u8; 32]));
    let c = TokenCipher::from_secret(&key).unwrap();
    let token = SecretString::from("refresh-token-value".to_owned());
    let sealed = c.encrypt("acct-1", &token);
    assert!(!String::from_utf8_lossy(&sealed).contains("refresh-token-value"));
    assert_ne!(sealed, c.encrypt("acct-1", &token), "fresh nonce each time");
    let opened = c.decrypt("acct-1", &sealed).unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&opened),
        "refresh-token-value"
    );
    assert!(c.decrypt("acct-2", &sealed).is_err());
    let mut tampered = sealed.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(c.decrypt("acct-1", &tampered).is_err());
    let other = SecretString::from(base64::engine::general_purpose::STANDARD.encode([4u8; 32]));
    assert!(
        TokenCipher::from_secret(&other)
            .unwrap()
            .decrypt("acct-1", &sealed)
            .is_err()
    );
}

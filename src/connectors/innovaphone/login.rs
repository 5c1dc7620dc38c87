//! The AppWebsocket login, exactly as innovaphone's SDK documents it
//! (<https://sdk.innovaphone.com/doc/appwebsocket/AppWebsocket.htm>, "AppChallenge",
//! "AppLogin"; the same flow as the JavaScript `AppWebsocketClient.connect(uri, password, app,
//! domain, sip, guid, dn)` of <https://sdk.innovaphone.com/14r2/doc/javascript/AppWebsocketClient.htm>):
//!
//! 1. client → `{"mt":"AppChallenge"}`; PBX → `{"mt":"AppChallengeResult","challenge":…}`;
//! 2. client → `{"mt":"AppLogin","app","domain","sip","guid","dn","digest"}` where `digest`
//!    is the hex SHA-256 of `app:domain:sip:guid:dn:challenge:password` (with an `info`
//!    object, its compact JSON goes between `dn` and `challenge`);
//! 3. PBX → `{"mt":"AppLoginResult","ok":true}` on success.
//!
//! For a login to a PBX App object, `app` is the object's name and `domain`, `sip`, `guid`
//! and `dn` are left empty (they still enter the digest, as empty strings; the page's first
//! example). No `info` object is sent.

use sha2::{Digest, Sha256};

/// The `digest` of an `AppLogin`: hex SHA-256 over the fields in the documented order.
#[allow(clippy::too_many_arguments)]
pub fn login_digest(
    app: &str,
    domain: &str,
    sip: &str,
    guid: &str,
    dn: &str,
    info: Option<&str>,
    challenge: &str,
    password: &str,
) -> String {
    let text = match info {
        Some(info) => format!("{app}:{domain}:{sip}:{guid}:{dn}:{info}:{challenge}:{password}"),
        None => format!("{app}:{domain}:{sip}:{guid}:{dn}:{challenge}:{password}"),
    };
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The `AppLogin` message of an App-object login.
pub fn app_login(app: &str, challenge: &str, password: &str) -> serde_json::Value {
    serde_json::json!({
        "mt": "AppLogin",
        "app": app,
        "domain": "",
        "sip": "",
        "guid": "",
        "dn": "",
        "digest": login_digest(app, "", "", "", "", None, challenge, password),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vectors printed on the AppWebsocket page (password "pwd", challenge
    // "0123456789abcdef").
    #[test]
    fn digests_match_the_documented_examples() {
        assert_eq!(
            login_digest(
                "pbxadminapi",
                "",
                "",
                "",
                "",
                None,
                "0123456789abcdef",
                "pwd"
            ),
            "a205299ed2ef2786c311e0be1b14db343f2cadd906a6ae7b564eee34bda5e9a1"
        );
        assert_eq!(
            login_digest(
                "pbxadminapi",
                "",
                "",
                "",
                "",
                Some("{}"),
                "0123456789abcdef",
                "pwd"
            ),
            "57b23fe824b9222a7ac879597cb509bcdc865a1bfeb057d9d12118cef0c3ba34"
        );
        assert_eq!(
            login_digest(
                "pbxadminapi",
                "",
                "",
                "",
                "",
                Some(r#"{"cn":"Test User"}"#),
                "0123456789abcdef",
                "pwd"
            ),
            "96db3c3f657230c2b68194becc6d2a77f05de9f79f01fc81e9ca0fb196b10d9d"
        );
        assert_eq!(
            login_digest(
                "innovaphone-users",
                "example.com",
                "administrator",
                "0123456789abcdef0123456789abcdef",
                "Administrator User",
                Some(
                    r#"{"appobj":"users","apps":[{"name":"users"},{"name":"profile"}],"appurl":"https://1.2.3.4/example.com/usersapp/innovaphone-users","unlicensed":true}"#
                ),
                "0123456789abcdef",
                "pwd"
            ),
            "ef1b811ffaa8f9255c39c653d8fb26b4687b2d8c4d9ac91b4821bff6bae3ff44"
        );
    }
}

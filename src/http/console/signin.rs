//! Sign-in with Microsoft Entra ID: OpenID Connect's authorization code flow with PKCE
//! (S256), written to the identity platform's documentation
//! (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow>,
//! <https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc>). The
//! `id_token` is checked against the tenant's signing keys (`/{tenant}/discovery/v2.0/keys`),
//! its issuer (`{authority}/{tenant}/v2.0`), audience (the client id), lifetime and the nonce
//! of the request; the `roles` (app roles) and `groups` claims
//! (<https://learn.microsoft.com/en-us/entra/identity-platform/id-tokens>) decide the role.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Digest;

use super::session::{PendingSignIn, Role, Sessions, random_token};
use crate::graph::notifications::jwt::JwksCache;

/// Who may sign in, and as what.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub operator_roles: Vec<String>,
    pub viewer_roles: Vec<String>,
    pub operator_groups: Vec<String>,
    pub viewer_groups: Vec<String>,
}

impl Access {
    /// The strongest role the claims give, or none.
    pub fn role(&self, roles: &[String], groups: &[String]) -> Option<Role> {
        let any = |wanted: &[String], have: &[String]| wanted.iter().any(|w| have.contains(w));
        if any(&self.operator_roles, roles) || any(&self.operator_groups, groups) {
            Some(Role::Operator)
        } else if any(&self.viewer_roles, roles) || any(&self.viewer_groups, groups) {
            Some(Role::Viewer)
        } else {
            None
        }
    }
}

/// The app registration people sign in to.
pub struct Entra {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// `https://login.microsoftonline.com` (no trailing slash).
    pub authority: String,
    /// `{public url}/console/callback`
    pub redirect_uri: String,
    pub access: Access,
    http: reqwest::Client,
    jwks: JwksCache,
}

/// Why a sign-in did not complete. Shown to the person in general words only.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the sign-in was not started here or took too long")]
    UnknownState,
    #[error("the identity platform refused the code: {0}")]
    Token(String),
    #[error("the id token is not valid: {0}")]
    IdToken(String),
    #[error("{0} has no role that lets them use the console")]
    NoRole(String),
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: String,
}

#[derive(Deserialize)]
struct IdClaims {
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

/// The person a completed sign-in names.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: String,
    pub name: String,
    pub role: Role,
}

impl Entra {
    pub fn new(
        tenant_id: String,
        client_id: String,
        client_secret: Option<SecretString>,
        authority: &url::Url,
        redirect_uri: String,
        access: Access,
        http: reqwest::Client,
    ) -> Result<Arc<Self>, url::ParseError> {
        let authority = authority.as_str().trim_end_matches('/').to_owned();
        let jwks_url = url::Url::parse(&format!("{authority}/{tenant_id}/discovery/v2.0/keys"))?;
        Ok(Arc::new(Self {
            jwks: JwksCache::new(jwks_url, http.clone()),
            tenant_id,
            client_id,
            client_secret,
            authority,
            redirect_uri,
            access,
            http,
        }))
    }

    /// Starts a sign-in: remembers the PKCE verifier and nonce under a fresh `state` and
    /// returns the authorization URL to send the browser to.
    pub fn start(&self, sessions: &Sessions) -> String {
        let state = random_token();
        let verifier = random_token();
        let nonce = random_token();
        let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        sessions.begin(state.clone(), verifier, nonce.clone());
        let mut url = url::Url::parse(&format!(
            "{}/{}/oauth2/v2.0/authorize",
            self.authority, self.tenant_id
        ))
        .expect("authority was parsed at start");
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("response_mode", "query")
            .append_pair("scope", "openid profile")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        url.to_string()
    }

    /// Completes a sign-in: redeems the code with the verifier, checks the id token and
    /// decides the role.
    pub async fn finish(
        &self,
        sessions: &Sessions,
        state: &str,
        code: &str,
    ) -> Result<SignedIn, SignInError> {
        let PendingSignIn {
            verifier, nonce, ..
        } = sessions.finish(state).ok_or(SignInError::UnknownState)?;
        let token_url = format!("{}/{}/oauth2/v2.0/token", self.authority, self.tenant_id);
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("client_id", self.client_id.clone()),
            ("code", code.to_owned()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("code_verifier", verifier),
            ("scope", "openid profile".to_owned()),
        ];
        if let Some(s) = &self.client_secret {
            form.push(("client_secret", s.expose_secret().to_owned()));
        }
        let res = self
            .http
            .post(&token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| SignInError::Token(e.to_string()))?;
        if !res.status().is_success() {
            let status = res.status();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            let code = body["error"].as_str().unwrap_or("unknown");
            return Err(SignInError::Token(format!("{status} {code}")));
        }
        let tokens: TokenResponse = res
            .json()
            .await
            .map_err(|e| SignInError::Token(e.to_string()))?;
        let claims = self.check_id_token(&tokens.id_token, &nonce).await?;
        let user = claims
            .preferred_username
            .clone()
            .or(claims.oid.clone())
            .unwrap_or_default();
        let role = self
            .access
            .role(&claims.roles, &claims.groups)
            .ok_or_else(|| SignInError::NoRole(user.clone()))?;
        Ok(SignedIn {
            name: claims.name.unwrap_or_else(|| user.clone()),
            user,
            role,
        })
    }

    async fn check_id_token(&self, token: &str, nonce: &str) -> Result<IdClaims, SignInError> {
        let bad = |e: &dyn std::fmt::Display| SignInError::IdToken(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(&e))?;
        let kid = header.kid.ok_or_else(|| bad(&"no kid"))?;
        let key = self.jwks.key(&kid).await.map_err(|e| bad(&e))?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[&self.client_id]);
        v.set_issuer(&[format!("{}/{}/v2.0", self.authority, self.tenant_id)]);
        v.set_required_spec_claims(&["exp", "aud", "iss"]);
        let data = jsonwebtoken::decode::<IdClaims>(token, &key, &v).map_err(|e| bad(&e))?;
        if data.claims.nonce.as_deref() != Some(nonce) {
            return Err(bad(&"the nonce is not the one of the request"));
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strongest_role_wins_and_none_without_a_match() {
        let a = Access {
            operator_roles: vec!["Op".into()],
            viewer_roles: vec!["View".into()],
            operator_groups: vec!["g-op".into()],
            viewer_groups: vec![],
        };
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(a.role(&s(&["View", "Op"]), &[]), Some(Role::Operator));
        assert_eq!(a.role(&s(&["View"]), &[]), Some(Role::Viewer));
        assert_eq!(a.role(&[], &s(&["g-op"])), Some(Role::Operator));
        assert_eq!(a.role(&s(&["Other"]), &s(&["g-x"])), None);
    }
}

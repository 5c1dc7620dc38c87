//! Console sessions: kept in memory (a restart signs everyone out; several replicas need
//! sticky sessions), named by a random cookie value that is HttpOnly, SameSite=Lax and Secure
//! behind https; each with its own CSRF token that every action must carry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header;
use rand::RngCore;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "pb_console";

/// How long a started sign-in may take to come back from the identity platform.
const SIGN_IN_WINDOW: Duration = Duration::from_secs(600);

/// What someone may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads every page.
    Viewer,
    /// Reads, and takes the actions.
    Operator,
}

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user principal name (or `local` without sign-in): what audit entries name.
    pub user: String,
    pub name: String,
    pub role: Role,
    pub csrf: String,
    expires: Instant,
}

impl Session {
    /// A session that lasts as long as the process (the console without sign-in).
    pub fn new(user: String, name: String, role: Role) -> Session {
        Session {
            user,
            name,
            role,
            csrf: random_token(),
            expires: Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600),
        }
    }
}

/// A sign-in under way: what the callback checks.
#[derive(Debug, Clone)]
pub struct PendingSignIn {
    pub verifier: String,
    pub nonce: String,
    started: Instant,
}

/// A random URL-safe token of 32 bytes.
pub fn random_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Clone)]
pub struct Sessions {
    ttl: Duration,
    secure: bool,
    live: Arc<Mutex<HashMap<String, Session>>>,
    pending: Arc<Mutex<HashMap<String, PendingSignIn>>>,
}

impl Sessions {
    pub fn new(ttl: Duration, secure: bool) -> Self {
        Self {
            ttl,
            secure,
            live: Arc::default(),
            pending: Arc::default(),
        }
    }

    /// Starts a session; returns the `Set-Cookie` value.
    pub fn open(&self, user: String, name: String, role: Role) -> String {
        let id = random_token();
        let now = Instant::now();
        let mut live = self.live.lock().expect("sessions lock");
        live.retain(|_, s| s.expires > now);
        live.insert(
            id.clone(),
            Session {
                user,
                name,
                role,
                csrf: random_token(),
                expires: now + self.ttl,
            },
        );
        self.cookie(&id, self.ttl.as_secs())
    }

    /// Ends the session named by the request's cookie; returns the `Set-Cookie` that clears it.
    pub fn close(&self, headers: &HeaderMap) -> String {
        if let Some(id) = cookie_value(headers) {
            self.live.lock().expect("sessions lock").remove(&id);
        }
        self.cookie("", 0)
    }

    /// The live session named by the request's cookie.
    pub fn current(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie_value(headers)?;
        let live = self.live.lock().expect("sessions lock");
        live.get(&id)
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
    }

    /// Remembers a sign-in under its `state`.
    pub fn begin(&self, state: String, verifier: String, nonce: String) {
        let now = Instant::now();
        let mut pending = self.pending.lock().expect("sessions lock");
        pending.retain(|_, p| now.duration_since(p.started) < SIGN_IN_WINDOW);
        pending.insert(
            state,
            PendingSignIn {
                verifier,
                nonce,
                started: now,
            },
        );
    }

    /// Takes the sign-in started under `state` (once).
    pub fn finish(&self, state: &str) -> Option<PendingSignIn> {
        let p = self.pending.lock().expect("sessions lock").remove(state)?;
        (p.started.elapsed() < SIGN_IN_WINDOW).then_some(p)
    }
}

/// Whether `given` is the session's CSRF token (constant time).
pub fn csrf_ok(session: &Session, given: &str) -> bool {
    !given.is_empty() && bool::from(given.as_bytes().ct_eq(session.csrf.as_bytes()))
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == COOKIE && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_lax_and_secure_behind_https() {
        let s = Sessions::new(Duration::from_secs(60), true);
        let c = s.open("a@x".into(), "A".into(), Role::Viewer);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.ends_with("; Secure"));
        let plain = Sessions::new(Duration::from_secs(60), false);
        assert!(
            !plain
                .open("a@x".into(), "A".into(), Role::Viewer)
                .contains("Secure")
        );
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_gone_after_sign_out() {
        let s = Sessions::new(Duration::from_secs(60), false);
        let c = s.open("a@x".into(), "A".into(), Role::Operator);
        let value = c.split(';').next().unwrap().to_owned();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("other=1; {value}").parse().unwrap());
        let found = s.current(&h).expect("session");
        assert_eq!(found.role, Role::Operator);
        assert!(csrf_ok(&found, &found.csrf));
        assert!(!csrf_ok(&found, ""));
        assert!(!csrf_ok(&found, "forged"));
        s.close(&h);
        assert!(s.current(&h).is_none());
    }
}

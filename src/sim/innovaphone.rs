//! A fake innovaphone PBX AppWebsocket endpoint (`/PBX0/APPS/websocket`), written from the
//! SDK pages:
//! - the login: `AppChallenge` → `AppChallengeResult{challenge}` (digits only, as innovaphone
//!   implementations use), `AppLogin{app,domain,sip,guid,dn,digest[,info]}` checked against
//!   SHA-256 of `app:domain:sip:guid:dn[:info]:challenge:password`, → `AppLoginResult{ok}`:
//!   <https://sdk.innovaphone.com/doc/appwebsocket/AppWebsocket.htm>
//! - the PbxApi: `SubscribePresence{sip|num}` → `SubscribePresenceResult`, `PresenceState{up,
//!   sip,num,dn,email}`, `PresenceUpdate{presence:[newest first]}`, all with the request's
//!   `src`; `SetPresence{sip|guid,contact,activity,note}` → `SetPresenceResult{error,errorText}`:
//!   <https://sdk.innovaphone.com/doc/appwebsocket/PbxApi.htm>
//!
//! Assumed: a refused login answers `ok: false` and closes; the PBX's line state ("on the
//! phone") appears as a presence item with activity `on-the-phone` at the front of the list
//! (contact `line:` here) while a call lasts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sha2::Digest;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The App object the fake accepts.
pub const INNOVAPHONE_APP: &str = "presence-bridge";
pub const INNOVAPHONE_PASSWORD: &str = "app-object-password";

/// Internal marker: the connection task stops serving (see `freeze_connections`).
const FREEZE: &[u8] = b"freeze";

/// One presence item (PbxApi "presence" object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub contact: String,
    pub status: String,
    pub activity: String,
    pub note: String,
}

#[derive(Debug, Clone)]
struct User {
    sip: String,
    num: String,
    dn: String,
    email: String,
    /// Newest first.
    presence: Vec<Item>,
}

struct Conn {
    tx: mpsc::UnboundedSender<Message>,
    /// (user sip, src) of this connection's subscriptions.
    subs: Vec<(String, String)>,
}

#[derive(Default)]
struct FakeState {
    users: BTreeMap<String, User>,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    logins_ok: u64,
    logins_refused: u64,
    subscribes: Vec<(u64, String)>,
    set_presence: Vec<Value>,
}

type Shared = Arc<Mutex<FakeState>>;

/// A running fake; dropped = stopped.
pub struct FakeInnovaphone {
    /// `ws://127.0.0.1:port/PBX0/APPS/websocket`
    pub url: String,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeInnovaphone {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn presence_json(items: &[Item]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|i| json!({"contact": i.contact, "status": i.status, "activity": i.activity, "note": i.note}))
            .collect(),
    )
}

/// Starts the fake with users `agent1..=agentN` (number `20{i}`, `agent{i}@example.com`),
/// each available with a registered phone.
pub async fn spawn(users: usize) -> std::io::Result<FakeInnovaphone> {
    let mut st = FakeState::default();
    for i in 1..=users {
        let sip = format!("agent{i}");
        st.users.insert(
            sip.clone(),
            User {
                sip,
                num: format!("20{i}"),
                dn: format!("Agent {i}"),
                email: format!("agent{i}@example.com"),
                presence: vec![Item {
                    contact: "tel:".into(),
                    status: "open".into(),
                    activity: String::new(),
                    note: String::new(),
                }],
            },
        );
    }
    let state: Shared = Arc::new(Mutex::new(st));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let st = state.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(st.clone(), stream));
        }
    });
    Ok(FakeInnovaphone {
        url: format!("ws://{addr}/PBX0/APPS/websocket"),
        state,
        task,
    })
}

impl FakeInnovaphone {
    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake lock")
    }

    /// The user sets their presence (contact `tel:`) in myApps or on the phone.
    pub fn set_user_presence(&self, sip: &str, activity: &str) {
        let mut s = self.lock();
        put_item(&mut s, sip, "tel:", activity, "");
    }

    /// The PBX's line state: a call starts (`true`) or ends.
    pub fn set_on_the_phone(&self, sip: &str, on: bool) {
        let mut s = self.lock();
        if on {
            put_item(&mut s, sip, "line:", "on-the-phone", "");
        } else if let Some(u) = s.users.get_mut(sip) {
            u.presence.retain(|i| i.contact != "line:");
            notify(&s, sip);
        }
    }

    /// The newest presence item of a user.
    pub fn newest(&self, sip: &str) -> Option<Item> {
        self.lock().users.get(sip)?.presence.first().cloned()
    }

    /// The PBX drops every AppWebsocket connection (restart, network loss).
    pub fn drop_connections(&self) {
        let mut s = self.lock();
        for (_, c) in s.conns.drain() {
            let _ = c.tx.send(Message::Close(None));
        }
    }

    pub fn logins_ok(&self) -> u64 {
        self.lock().logins_ok
    }

    pub fn logins_refused(&self) -> u64 {
        self.lock().logins_refused
    }

    /// (connection number, user) of every `SubscribePresence` received.
    pub fn subscribes(&self) -> Vec<(u64, String)> {
        self.lock().subscribes.clone()
    }

    /// Every `SetPresence` message received.
    pub fn set_presence_messages(&self) -> Vec<Value> {
        self.lock().set_presence.clone()
    }

    /// The PBX stops answering on every open connection without closing it (no pongs, no
    /// messages): a hung peer.
    pub fn freeze_connections(&self) {
        let s = self.lock();
        for c in s.conns.values() {
            let _ = c.tx.send(Message::binary(FREEZE));
        }
    }

    pub fn open_connections(&self) -> usize {
        self.lock().conns.len()
    }
}

/// Puts `contact`'s item first (newest), as the PBX lists presence.
fn put_item(s: &mut FakeState, sip: &str, contact: &str, activity: &str, note: &str) {
    let Some(u) = s.users.get_mut(sip) else {
        return;
    };
    u.presence.retain(|i| i.contact != contact);
    u.presence.insert(
        0,
        Item {
            contact: contact.into(),
            status: "open".into(),
            activity: activity.into(),
            note: note.into(),
        },
    );
    notify(s, sip);
}

fn notify(s: &FakeState, sip: &str) {
    let Some(u) = s.users.get(sip) else { return };
    for c in s.conns.values() {
        for (user, src) in &c.subs {
            if user == sip {
                let m = json!({"api": "PbxApi", "mt": "PresenceUpdate", "src": src, "presence": presence_json(&u.presence)});
                let _ = c.tx.send(Message::text(m.to_string()));
            }
        }
    }
}

fn digest_ok(m: &Value, challenge: &str) -> bool {
    let f = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default();
    let mut text = format!(
        "{}:{}:{}:{}:{}",
        f("app"),
        f("domain"),
        f("sip"),
        f("guid"),
        f("dn")
    );
    if let Some(info) = m.get("info") {
        text.push(':');
        text.push_str(&info.to_string());
    }
    text.push_str(&format!(":{challenge}:{INNOVAPHONE_PASSWORD}"));
    let want = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    f("app") == INNOVAPHONE_APP && f("digest") == want
}

async fn serve(state: Shared, stream: tokio::net::TcpStream) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut read) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let id = {
        let mut s = state.lock().expect("fake lock");
        s.next_conn += 1;
        s.next_conn
    };
    let challenge = format!("{:016}", rand::random::<u64>() % 10_000_000_000_000_000);
    let mut logged_in = false;
    loop {
        let msg = tokio::select! {
            out = rx.recv() => match out {
                Some(Message::Close(f)) => { let _ = sink.send(Message::Close(f)).await; break }
                Some(Message::Binary(b)) if b.as_ref() == FREEZE => {
                    // Hold the socket open and read nothing: no pong ever goes out.
                    let _keep = (&sink, &read);
                    std::future::pending::<()>().await;
                    continue;
                }
                Some(m) => { if sink.send(m).await.is_err() { break } continue }
                None => break,
            },
            m = read.next() => m,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => continue,
        };
        let Ok(m) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let mt = m.get("mt").and_then(Value::as_str).unwrap_or_default();
        let src = m.get("src").cloned().unwrap_or(Value::Null);
        let reply = |v: Value| Message::text(v.to_string());
        match (mt, logged_in) {
            ("AppChallenge", _) => {
                let _ = sink
                    .send(reply(
                        json!({"mt": "AppChallengeResult", "challenge": challenge}),
                    ))
                    .await;
            }
            ("AppLogin", _) => {
                let ok = digest_ok(&m, &challenge);
                {
                    let mut s = state.lock().expect("fake lock");
                    if ok {
                        s.logins_ok += 1;
                        s.conns.insert(
                            id,
                            Conn {
                                tx: tx.clone(),
                                subs: Vec::new(),
                            },
                        );
                    } else {
                        s.logins_refused += 1;
                    }
                }
                if ok {
                    logged_in = true;
                    let _ = tx.send(reply(json!({"mt": "AppLoginResult", "ok": true})));
                } else {
                    let _ = sink
                        .send(reply(json!({"mt": "AppLoginResult", "ok": false})))
                        .await;
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            }
            (_, false) => {
                // Nothing but the login before a login.
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
            ("SubscribePresence", true) => {
                let mut s = state.lock().expect("fake lock");
                let key = m
                    .get("sip")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| {
                        let num = m.get("num").and_then(Value::as_str)?;
                        s.users
                            .values()
                            .find(|u| u.num == num)
                            .map(|u| u.sip.clone())
                    });
                let Some(user) = key.and_then(|k| s.users.get(&k).cloned()) else {
                    let _ = tx.send(reply(
                        json!({"api": "PbxApi", "mt": "SubscribePresenceResult", "src": src}),
                    ));
                    let _ = tx.send(reply(
                        json!({"api": "PbxApi", "mt": "PresenceState", "src": src, "up": false}),
                    ));
                    continue;
                };
                s.subscribes.push((id, user.sip.clone()));
                let src_text = src.as_str().unwrap_or_default().to_owned();
                if let Some(c) = s.conns.get_mut(&id) {
                    c.subs.push((user.sip.clone(), src_text));
                }
                let _ = tx.send(reply(
                    json!({"api": "PbxApi", "mt": "SubscribePresenceResult", "src": src}),
                ));
                let _ = tx.send(reply(json!({"api": "PbxApi", "mt": "PresenceState", "src": src, "up": true, "sip": user.sip, "num": user.num, "dn": user.dn, "email": user.email})));
                let _ = tx.send(reply(json!({"api": "PbxApi", "mt": "PresenceUpdate", "src": src, "presence": presence_json(&user.presence)})));
            }
            ("SetPresence", true) => {
                let mut s = state.lock().expect("fake lock");
                s.set_presence.push(m.clone());
                let sip = m
                    .get("sip")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if !s.users.contains_key(&sip) {
                    let _ = tx.send(reply(json!({"api": "PbxApi", "mt": "SetPresenceResult", "src": src, "error": 1, "errorText": "object not found"})));
                    continue;
                }
                let f = |k: &str| {
                    m.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                let _ = tx.send(reply(
                    json!({"api": "PbxApi", "mt": "SetPresenceResult", "src": src}),
                ));
                put_item(&mut s, &sip, &f("contact"), &f("activity"), &f("note"));
            }
            _ => {}
        }
    }
    state.lock().expect("fake lock").conns.remove(&id);
}

//! Change notifications: checks a batch Graph posted (subscription and `clientState`,
//! validation tokens, signature, decryption), turns what passes into inbox items, and writes
//! them durably before the HTTP layer answers 202.
//!
//! Answers (the receiver's contract, also what the table-driven tests check):
//! - more notifications than `graph.webhook.max_notifications_per_batch`: `413`, none looked at;
//! - at least one notification accepted (or only duplicates): `202`, the rest dropped and counted;
//! - every notification names an unknown subscription or a wrong `clientState`: `403`;
//! - rich data whose validation tokens are missing or invalid: `401` for the whole batch;
//! - rich data that fails its signature or cannot be decrypted (and nothing else passed): `400`;
//! - the inbox or the signing-key endpoint cannot be reached, or rich batches arrive faster
//!   than they can be decrypted (a batch waited over 1 s for a slot): `503`, so Graph retries.
//!
//! Notifications for subscriptions that are not ours cost little (see [`unknown`]): no lookup
//! for ids Graph cannot have issued or that were just looked up, one warning line a minute.

pub mod config;
pub mod crypto;
pub mod jwt;
mod payload;
mod unknown;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use subtle::ConstantTimeEq;
use tokio::sync::{Notify, RwLock, mpsc};

use crate::graph::notifications::crypto::{CryptoError, Decryptor, EncryptedContent};
use crate::graph::notifications::jwt::TokenValidator;
use crate::model::{InboxPayload, Observation, Source, Status, TeamsPresence, TeamsRefresh};
use crate::store::inbox::Inbox;
use crate::store::{Store, StoreError, SubscriptionRecord};
use crate::telemetry::Metrics;

pub use crate::graph::presence::memory::PresenceMemory;
pub use payload::{
    ChangeNotification, LifecycleEvent, NotificationCollection, Rejection, ResourceData,
};
use payload::{DecryptedPresence, basic_user_id, valid_user_id};
use unknown::{UnknownIds, WarnEvery, plausible_id};

/// Longest a rich batch waits for a decryption slot before it is answered 503: Graph wants
/// the answer within 3 s, and a batch that waited 1 s still has time to decrypt and commit.
const DECRYPT_SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Shared receiver state. Cheap to clone.
#[derive(Clone)]
pub struct NotificationReceiver {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    inbox: Inbox,
    metrics: Metrics,
    decryptor: Decryptor,
    tokens: Option<TokenValidator>,
    subscriptions: RwLock<HashMap<String, (String, String)>>,
    max_batch: usize,
    unknown: UnknownIds,
    warn_unknown: WarnEvery,
    warn_client_state: WarnEvery,
    memory: PresenceMemory,
    lifecycle_tx: mpsc::UnboundedSender<LifecycleEvent>,
    lifecycle_rx: Mutex<Option<mpsc::UnboundedReceiver<LifecycleEvent>>>,
    directory_changed: Arc<Notify>,
    decrypt_slots: Arc<tokio::sync::Semaphore>,
    /// Threads one batch's decryption is spread over (the machine's cores).
    decrypt_threads: usize,
}

/// What one notification turned into.
enum Item {
    Observation(Observation),
    Refresh(String),
    Directory,
    Lifecycle(LifecycleEvent),
}

impl NotificationReceiver {
    /// `tokens` is `None` when the Graph app identity is not configured; rich notifications
    /// are then refused (401). Batches of more than `max_batch` notifications are refused
    /// (413; `graph.webhook.max_notifications_per_batch`).
    pub fn new(
        inbox: Inbox,
        metrics: Metrics,
        decryptor: Decryptor,
        tokens: Option<TokenValidator>,
        memory: PresenceMemory,
        max_batch: usize,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            inner: Arc::new(Inner {
                store: inbox.store().clone(),
                inbox,
                metrics,
                decryptor,
                tokens,
                subscriptions: RwLock::new(HashMap::new()),
                max_batch,
                unknown: UnknownIds::default(),
                warn_unknown: WarnEvery::default(),
                warn_client_state: WarnEvery::default(),
                memory,
                lifecycle_tx: tx,
                lifecycle_rx: Mutex::new(Some(rx)),
                directory_changed: Arc::new(Notify::new()),
                decrypt_slots: Arc::new(tokio::sync::Semaphore::new(cores)),
                decrypt_threads: cores,
            }),
        }
    }

    /// The lifecycle events, for the subscription manager (only the first caller gets them).
    pub fn take_lifecycle_events(&self) -> Option<mpsc::UnboundedReceiver<LifecycleEvent>> {
        self.inner.lifecycle_rx.lock().expect("lock").take()
    }

    /// Fires when a `users` subscription reported a directory change (run a delta sync).
    pub fn directory_changed(&self) -> Arc<Notify> {
        self.inner.directory_changed.clone()
    }

    pub fn memory(&self) -> &PresenceMemory {
        &self.inner.memory
    }

    pub fn decryptor(&self) -> &Decryptor {
        &self.inner.decryptor
    }

    /// Makes a subscription known at once (the manager calls it after creating one).
    pub async fn remember(&self, sub: &SubscriptionRecord) {
        self.inner.unknown.remove(&sub.id);
        self.inner
            .subscriptions
            .write()
            .await
            .insert(sub.id.clone(), (sub.client_state.clone(), sub.kind.clone()));
    }

    /// Forgets a deleted subscription.
    pub async fn forget(&self, id: &str) {
        self.inner.subscriptions.write().await.remove(id);
    }

    /// Checks and stores one batch. `Ok(n)` = `n` items written (answer 202).
    pub async fn receive(&self, batch: NotificationCollection) -> Result<usize, Rejection> {
        let inner = &self.inner;
        if batch.value.is_empty() {
            return Err(Rejection::BadContent);
        }
        if batch.value.len() > inner.max_batch {
            self.drop_batch("batch_too_large", batch.value.len());
            return Err(Rejection::TooLarge);
        }
        let mut trusted = Vec::with_capacity(batch.value.len());
        for n in batch.value {
            match self.subscription_kind(&n).await? {
                Some(kind) => trusted.push((kind, n)),
                None => self.drop_one("not_ours"),
            }
        }
        if trusted.is_empty() {
            return Err(Rejection::NotOurs);
        }
        if trusted.iter().any(|(_, n)| n.encrypted_content.is_some()) {
            let tokens = batch.validation_tokens.unwrap_or_default();
            let Some(validator) = &inner.tokens else {
                self.drop_batch("no_token_validator", trusted.len());
                return Err(Rejection::BadTokens);
            };
            if let Err(e) = validator.validate_all(&tokens).await {
                self.drop_batch("bad_token", trusted.len());
                tracing::warn!(error = %e, "notification batch refused: validation tokens");
                return Err(if e.is_ours() {
                    Rejection::Unavailable
                } else {
                    Rejection::BadTokens
                });
            }
        }
        // Opening rich items is CPU-bound (one RSA private-key operation each). Batches wait
        // for a slot at most DECRYPT_SLOT_WAIT; beyond that the answer is 503 and Graph
        // retries, rather than an ack that misses Graph's 3 s and gets the endpoint throttled.
        let rich = trusted.iter().any(|(_, n)| n.encrypted_content.is_some());
        let _slot = if rich {
            let wait = inner.decrypt_slots.clone().acquire_owned();
            match tokio::time::timeout(DECRYPT_SLOT_WAIT, wait).await {
                Ok(Ok(permit)) => Some(permit),
                _ => {
                    self.drop_batch("overloaded", trusted.len());
                    return Err(Rejection::Unavailable);
                }
            }
        } else {
            None
        };
        let this = self.clone();
        let items = tokio::task::spawn_blocking(move || this.open_all(trusted))
            .await
            .map_err(|_| Rejection::Unavailable)?;
        if items.is_empty() {
            return Err(Rejection::BadContent);
        }
        self.commit(items).await
    }

    /// Decrypts and classifies; drops (and counts) what fails. The rich items of the batch
    /// are decrypted together ([`Decryptor::decrypt_batch`]) over the machine's cores.
    fn open_all(&self, trusted: Vec<(String, ChangeNotification)>) -> Vec<Item> {
        let rich: Vec<&EncryptedContent> = trusted
            .iter()
            .filter(|(kind, n)| n.lifecycle_event.is_none() && kind != "users")
            .filter_map(|(_, n)| n.encrypted_content.as_ref())
            .collect();
        let mut opened = self
            .inner
            .decryptor
            .decrypt_batch(&rich, self.inner.decrypt_threads)
            .into_iter();
        let mut out = Vec::with_capacity(trusted.len());
        for (kind, n) in trusted {
            if let Some(event) = n.lifecycle_event {
                out.push(Item::Lifecycle(LifecycleEvent {
                    subscription_id: n.subscription_id,
                    event,
                }));
            } else if kind == "users" {
                out.push(Item::Directory);
            } else if n.encrypted_content.is_some() {
                let plain = opened.next().expect("one result per rich item");
                match observation(plain) {
                    Ok(obs) => out.push(Item::Observation(obs)),
                    Err(reason) => self.drop_one(reason),
                }
            } else {
                match basic_user_id(&n) {
                    Some(id) => out.push(Item::Refresh(id)),
                    None => self.drop_one("no_user_id"),
                }
            }
        }
        out
    }

    /// Writes the items, then updates the in-memory state (only after the commit).
    async fn commit(&self, items: Vec<Item>) -> Result<usize, Rejection> {
        let inner = &self.inner;
        let mut inbox_items: Vec<InboxPayload> = Vec::new();
        let mut observed = Vec::new();
        let mut refresh: Vec<String> = Vec::new();
        let mut lifecycle = Vec::new();
        let mut directory = false;
        for item in items {
            match item {
                Item::Observation(o) => {
                    let Status::Teams(p) = &o.status else {
                        continue;
                    };
                    let dup = observed
                        .iter()
                        .any(|(u, q): &(String, TeamsPresence)| *u == o.user && q.same_state(p));
                    if dup || !inner.memory.is_news(&o.user, p) {
                        self.drop_one("duplicate");
                        continue;
                    }
                    observed.push((o.user.clone(), p.clone()));
                    inbox_items.push(InboxPayload::Observation(o));
                }
                Item::Refresh(u) => {
                    if !refresh.contains(&u) {
                        refresh.push(u);
                    }
                }
                Item::Directory => directory = true,
                Item::Lifecycle(e) => lifecycle.push(e),
            }
        }
        if !refresh.is_empty() {
            inbox_items.push(InboxPayload::TeamsRefresh(TeamsRefresh {
                user_ids: refresh,
            }));
        }
        let written = inbox_items.len();
        if let Err(e) = inner.inbox.push(inbox_items).await {
            tracing::error!(error = %e, "notifications not stored; asking Graph to retry");
            return Err(Rejection::Unavailable);
        }
        for (user, p) in &observed {
            inner.memory.record(user, p);
        }
        for e in lifecycle {
            // The manager may be absent (poll mode); then nobody needs the event.
            let _ = inner.lifecycle_tx.send(e);
        }
        if directory {
            inner.directory_changed.notify_one();
        }
        inner
            .metrics
            .counter("graph_notifications_accepted_total", &[])
            .increment(written as u64);
        Ok(written)
    }

    /// The subscription's kind when the notification is ours and its clientState matches.
    /// Looks the subscription up in the cache, then (for a plausible id not recently found
    /// missing) in the store.
    async fn subscription_kind(&self, n: &ChangeNotification) -> Result<Option<String>, Rejection> {
        let inner = &self.inner;
        let id = &n.subscription_id;
        let cached = inner.subscriptions.read().await.get(id).cloned();
        let (state, kind) = match cached {
            Some(v) => v,
            None if !plausible_id(id) || inner.unknown.contains(id) => {
                self.warn_unknown(id);
                return Ok(None);
            }
            None => match inner.store.get_subscription(id).await {
                Ok(sub) => {
                    self.count_lookup("found");
                    self.remember(&sub).await;
                    (sub.client_state, sub.kind)
                }
                Err(StoreError::NotFound) => {
                    self.count_lookup("unknown");
                    inner.unknown.insert(id);
                    self.warn_unknown(id);
                    return Ok(None);
                }
                Err(e) => {
                    self.count_lookup("error");
                    tracing::error!(error = %e, "subscription lookup failed");
                    return Err(Rejection::Unavailable);
                }
            },
        };
        let given = n.client_state.as_deref().unwrap_or("");
        if bool::from(given.as_bytes().ct_eq(state.as_bytes())) {
            Ok(Some(kind))
        } else {
            if let Some(suppressed) = inner.warn_client_state.due() {
                tracing::warn!(
                    subscription_id = %id,
                    not_logged_since_last_line = suppressed,
                    "notification with a wrong clientState dropped (logged at most once a minute)"
                );
            }
            Ok(None)
        }
    }

    fn warn_unknown(&self, id: &str) {
        if let Some(suppressed) = self.inner.warn_unknown.due() {
            let shown = if plausible_id(id) { id } else { "(not an id)" };
            tracing::warn!(
                subscription_id = %shown,
                not_logged_since_last_line = suppressed,
                "notification for an unknown subscription dropped (logged at most once a minute)"
            );
        }
    }

    fn count_lookup(&self, result: &'static str) {
        self.inner
            .metrics
            .counter(
                "graph_subscription_lookups_total",
                &[("result", result.to_owned())],
            )
            .increment(1);
    }

    fn drop_one(&self, reason: &'static str) {
        self.drop_batch(reason, 1);
    }

    fn drop_batch(&self, reason: &'static str, n: usize) {
        self.inner
            .metrics
            .counter(
                "graph_notifications_dropped_total",
                &[("reason", reason.to_owned())],
            )
            .increment(n as u64);
    }
}

/// The observation in one decrypted rich item, or why it is dropped.
fn observation(plain: Result<Vec<u8>, CryptoError>) -> Result<Observation, &'static str> {
    let plain = plain.map_err(|e| match e {
        CryptoError::UnknownCertificate => "unknown_certificate",
        CryptoError::Signature => "bad_signature",
        _ => "undecryptable",
    })?;
    let p: DecryptedPresence = serde_json::from_slice(&plain).map_err(|_| "undecryptable")?;
    if !valid_user_id(&p.id) {
        return Err("no_user_id");
    }
    Ok(Observation {
        user: p.id,
        status: Status::Teams(TeamsPresence {
            availability: p.availability,
            activity: p.activity,
            sequence: p.sequence_number,
        }),
        observed_at: Utc::now(),
        source: Source::GraphWebhook,
        activity: None,
    })
}

//! Reading the agent event stream, and the optional contact-record stream, from their
//! Kinesis data streams (`events = "kinesis"`). One [`KinesisSource`] per stream; the
//! contact-record stream's cursor keys carry the prefix `ctr/`, and it is read only in
//! rounds after which the agent event stream was at its tip ([`KinesisSource::after`]), so
//! a contact's `recording_available` follows the `ended` the agent stream reported for it.
//! (A contact record is written once the contact, after-contact work included, is over.)
//!
//! The stream's shards are listed (ListShards) and each is read with GetShardIterator and
//! GetRecords, following `NextShardIterator`:
//! <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListShards.html>,
//! <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html>,
//! <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html>.
//!
//! - **Resharding.** A split or merge closes its parent shard(s); GetRecords on a closed
//!   shard read to its end returns no `NextShardIterator` and lists the `ChildShards`. A
//!   shard is read only once each parent it names (`ParentShardId`, `AdjacentParentShardId`
//!   from ListShards, `ParentShards` from GetRecords) has been read to its end, or is gone
//!   from the stream (past its retention): as Connect's partition key is the agent ARN, one
//!   agent's records then come in order across the split. New shards are found from
//!   `ChildShards` at once and by ListShards every `shard_refresh_secs`.
//! - **Resuming.** Per shard, a cursor in the store ([`crate::store::Store::put_cursors`]):
//!   `seq:<n>` (resume AFTER_SEQUENCE_NUMBER), `at:<epoch ms>` (a shard first read from
//!   "latest", resumed AT_TIMESTAMP), `end` (read to its end). A cursor is written only
//!   after the runtime has reported every event sent before it stored
//!   ([`crate::connectors::ContactCenter::events_stored`], counted by [`Progress`]), so a
//!   restart repeats the records whose events were sent but not yet stored, whether still
//!   in the channel or in an inbox transaction that did not commit (their event ids make the
//!   ingest path drop the repeats). Shards without a cursor found after the first start are
//!   read from TRIM_HORIZON: they were created while the bridge ran or was down, so
//!   everything in them is new.
//! - An iterator expires after 5 minutes (ExpiredIteratorException): a new one is taken
//!   from the cursor. ProvisionedThroughputExceededException is throttling.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::types::ShardIteratorType;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::{InitialPosition, KinesisConfig};
use crate::connectors::retry::Resilience;
use crate::connectors::{ConnectorError, ConnectorEvent};
use crate::store::Store;

/// Pause between two reads of a shard that is behind: Kinesis allows 5 GetRecords calls per
/// second per shard, and a shard read faster answers ProvisionedThroughputExceeded.
const BEHIND_READ_SPACING: Duration = Duration::from_millis(200);

/// The cursor value of a shard read to its end.
const END: &str = "end";

/// Where reading a shard (re)starts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    After(String),
    AtMillis(i64),
    TrimHorizon,
}

impl Position {
    fn cursor(&self) -> Option<String> {
        match self {
            Position::After(s) => Some(format!("seq:{s}")),
            Position::AtMillis(ms) => Some(format!("at:{ms}")),
            Position::TrimHorizon => None,
        }
    }
}

/// A saved cursor: a position, or `None` for a shard read to its end.
fn parse_cursor(v: &str) -> Option<Option<Position>> {
    if v == END {
        return Some(None);
    }
    if let Some(s) = v.strip_prefix("seq:") {
        return Some(Some(Position::After(s.to_owned())));
    }
    v.strip_prefix("at:")?
        .parse()
        .ok()
        .map(|ms| Some(Position::AtMillis(ms)))
}

#[derive(Debug)]
struct Shard {
    parents: Vec<String>,
    position: Position,
    iterator: Option<String>,
    done: bool,
}

/// A shard as ListShards describes it.
struct Listed {
    id: String,
    parents: Vec<String>,
    closed: bool,
}

/// The events a connector's stream readers sent into its event channel, and how many of them
/// the runtime has reported stored. Shared by the connector's readers (they send into one
/// channel, which the runtime drains in order).
#[derive(Debug, Default)]
pub struct Progress {
    /// Events sent; held while sending, so the count orders the channel.
    sent: tokio::sync::Mutex<u64>,
    stored: tokio::sync::watch::Sender<u64>,
}

impl Progress {
    /// Sends one event and counts it. Err: the channel is closed.
    async fn send(
        &self,
        events: &mpsc::Sender<ConnectorEvent>,
        e: ConnectorEvent,
    ) -> Result<(), ()> {
        let mut sent = self.sent.lock().await;
        events.send(e).await.map_err(drop)?;
        *sent += 1;
        Ok(())
    }

    /// The number of events sent so far.
    async fn sent(&self) -> u64 {
        *self.sent.lock().await
    }

    /// The runtime stored the next `n` events.
    pub fn stored(&self, n: usize) {
        self.stored.send_modify(|s| *s += n as u64);
    }

    /// Waits until the first `mark` events are stored.
    async fn wait_stored(&self, mark: u64) {
        let mut rx = self.stored.subscribe();
        // The sender lives in `self`: the wait ends only when the count is reached.
        let _ = rx.wait_for(|s| *s >= mark).await;
    }
}

/// Kinesis errors callers branch on, then the connector's shared mapping.
fn map_err<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: SdkError<E, aws_sdk_kinesis::config::http::HttpResponse>,
) -> ConnectorError {
    match e.code() {
        Some("ExpiredIteratorException") => ConnectorError::NotFound(EXPIRED.to_owned()),
        Some("ProvisionedThroughputExceededException") => {
            ConnectorError::Throttled { retry_after: None }
        }
        _ => super::map_err(e),
    }
}

const EXPIRED: &str = "ExpiredIteratorException";

/// One Kinesis stream of an Amazon Connect connector (the agent event stream, or the
/// contact-record stream).
pub struct KinesisSource {
    client: aws_sdk_kinesis::Client,
    cfg: KinesisConfig,
    stream_name: Option<String>,
    stream_arn: Option<String>,
    /// Prepended to shard ids to make this stream's cursor keys (shard ids hold no `/`).
    prefix: &'static str,
    resilience: Resilience,
    store: Option<Arc<dyn Store>>,
    connector: String,
    /// Set after each round: whether every shard was read to the stream's tip.
    caught_up: Arc<AtomicBool>,
    /// Read a round only while this other stream is caught up.
    after: Option<Arc<AtomicBool>>,
    /// The connector's count of events sent and stored.
    progress: Arc<Progress>,
}

impl KinesisSource {
    /// The stream named by `name`/`arn`; its cursors are stored under `prefix` + shard id.
    /// `progress` is shared by every reader sending into the same event channel.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: aws_sdk_kinesis::Client,
        cfg: KinesisConfig,
        (name, arn): (Option<String>, Option<String>),
        prefix: &'static str,
        resilience: Resilience,
        store: Option<Arc<dyn Store>>,
        connector: String,
        progress: Arc<Progress>,
    ) -> Self {
        Self {
            progress,
            client,
            cfg,
            stream_name: name,
            stream_arn: arn,
            prefix,
            resilience,
            store,
            connector,
            caught_up: Arc::new(AtomicBool::new(false)),
            after: None,
        }
    }

    /// Reads only while `other` has read its stream to the tip, so that what this stream
    /// says about a contact comes after what `other` said before it.
    pub fn after(mut self, other: &KinesisSource) -> Self {
        self.after = Some(other.caught_up.clone());
        self
    }

    pub fn resilience(&self) -> &Resilience {
        &self.resilience
    }

    /// Ends every stream request, in flight or to come, when `token` is cancelled.
    pub fn set_shutdown(&mut self, token: CancellationToken) {
        self.resilience.set_shutdown(token);
    }

    async fn list_shards(&self) -> Result<Vec<Listed>, ConnectorError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .resilience
                .call("ListShards", || async {
                    let mut req = self.client.list_shards();
                    // NextToken carries the stream: the API refuses both together.
                    req = match &token {
                        Some(t) => req.next_token(t),
                        None => req
                            .set_stream_name(self.stream_name.clone())
                            .set_stream_arn(self.stream_arn.clone()),
                    };
                    req.send().await.map_err(map_err)
                })
                .await?;
            for s in page.shards() {
                out.push(Listed {
                    id: s.shard_id().to_owned(),
                    parents: [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                        .into_iter()
                        .flatten()
                        .map(str::to_owned)
                        .collect(),
                    closed: s
                        .sequence_number_range()
                        .and_then(|r| r.ending_sequence_number())
                        .is_some(),
                });
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn iterator(&self, shard: &str, at: &Position) -> Result<String, ConnectorError> {
        let out = self
            .resilience
            .call("GetShardIterator", || async {
                let req = self
                    .client
                    .get_shard_iterator()
                    .set_stream_name(self.stream_name.clone())
                    .set_stream_arn(self.stream_arn.clone())
                    .shard_id(shard);
                let req = match at {
                    Position::After(seq) => req
                        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                        .starting_sequence_number(seq),
                    Position::AtMillis(ms) => req
                        .shard_iterator_type(ShardIteratorType::AtTimestamp)
                        .timestamp(aws_sdk_kinesis::primitives::DateTime::from_millis(*ms)),
                    Position::TrimHorizon => {
                        req.shard_iterator_type(ShardIteratorType::TrimHorizon)
                    }
                };
                req.send().await.map_err(map_err)
            })
            .await?;
        out.shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| ConnectorError::Decode("GetShardIterator without ShardIterator".into()))
    }

    async fn load_cursors(&self) -> Result<HashMap<String, String>, ConnectorError> {
        let Some(store) = &self.store else {
            return Ok(HashMap::new());
        };
        let saved = store
            .get_cursors(&self.connector)
            .await
            .map_err(|e| ConnectorError::Transport(format!("reading stream positions: {e}")))?;
        // This stream's keys only, without the prefix.
        Ok(saved
            .into_iter()
            .filter_map(|(k, v)| {
                let id = k.strip_prefix(self.prefix)?;
                (!id.contains('/')).then(|| (id.to_owned(), v))
            })
            .collect())
    }

    /// Adds the listed shards not known yet. `first`: the first listing since start, whose
    /// shards resume from `saved` (or start as configured when nothing was saved at all).
    fn adopt(
        &self,
        shards: &mut BTreeMap<String, Shard>,
        listed: &[Listed],
        saved: Option<&HashMap<String, String>>,
        dirty: &mut Vec<(String, String)>,
    ) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        for l in listed {
            if shards.contains_key(&l.id) {
                continue;
            }
            let (position, done) = match saved {
                Some(saved) => match saved.get(&l.id).map(|v| (v, parse_cursor(v))) {
                    Some((_, Some(Some(p)))) => (p, false),
                    Some((_, Some(None))) => (Position::TrimHorizon, true),
                    Some((v, None)) => {
                        tracing::warn!(connector = %self.connector, shard = %l.id, cursor = %v, "unreadable stream position; reading the shard from its start");
                        (Position::TrimHorizon, false)
                    }
                    None if !saved.is_empty() => (Position::TrimHorizon, false),
                    None => match self.cfg.initial_position {
                        InitialPosition::TrimHorizon => (Position::TrimHorizon, false),
                        InitialPosition::Latest if l.closed => {
                            dirty.push((l.id.clone(), END.to_owned()));
                            (Position::TrimHorizon, true)
                        }
                        InitialPosition::Latest => {
                            let p = Position::AtMillis(now_ms);
                            dirty.extend(p.cursor().map(|c| (l.id.clone(), c)));
                            (p, false)
                        }
                    },
                },
                None => (Position::TrimHorizon, false),
            };
            shards.insert(
                l.id.clone(),
                Shard {
                    parents: l.parents.clone(),
                    position,
                    iterator: None,
                    done,
                },
            );
        }
    }

    /// Reads the stream until `cancel` fires, sending what `decode` makes of each record.
    pub async fn run(
        &self,
        events: &mpsc::Sender<ConnectorEvent>,
        cancel: &CancellationToken,
        decode: impl Fn(&[u8]) -> Vec<ConnectorEvent>,
    ) -> Result<(), ConnectorError> {
        if self.store.is_none() {
            tracing::warn!(connector = %self.connector, "no store: stream positions are not kept across restarts");
        }
        let saved = self.load_cursors().await?;
        let mut shards: BTreeMap<String, Shard> = BTreeMap::new();
        let mut dirty: Vec<(String, String)> = Vec::new();
        let mut first = true;
        let mut next_listing = Instant::now();
        let refresh = Duration::from_secs(self.cfg.shard_refresh_secs);
        loop {
            if Instant::now() >= next_listing {
                let listed = self.list_shards().await?;
                self.adopt(&mut shards, &listed, first.then_some(&saved), &mut dirty);
                if first {
                    let gone: Vec<String> = saved
                        .keys()
                        .filter(|k| !listed.iter().any(|l| &l.id == *k))
                        .cloned()
                        .collect();
                    self.forget(&gone).await;
                } else {
                    let listed: HashSet<&str> = listed.iter().map(|l| l.id.as_str()).collect();
                    let gone: Vec<String> = shards
                        .iter()
                        .filter(|(id, s)| s.done && !listed.contains(id.as_str()))
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in &gone {
                        shards.remove(id);
                    }
                    self.forget(&gone).await;
                }
                first = false;
                next_listing = Instant::now() + refresh;
            }
            let mut behind = false;
            if self
                .after
                .as_ref()
                .is_some_and(|a| !a.load(Ordering::Acquire))
            {
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_millis(self.cfg.poll_interval_ms)) => {}
                }
                continue;
            }
            let readable: Vec<String> = shards
                .iter()
                .filter(|(_, s)| {
                    !s.done
                        && s.parents
                            .iter()
                            .all(|p| shards.get(p).is_none_or(|p| p.done))
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in readable {
                if cancel.is_cancelled() {
                    return Ok(());
                }
                behind |= self
                    .read_shard(&id, &mut shards, &mut dirty, events, &decode)
                    .await?;
            }
            if !dirty.is_empty() && !self.persist(&mut dirty, cancel).await {
                return Ok(());
            }
            self.caught_up.store(!behind, Ordering::Release);
            let pause = if behind {
                BEHIND_READ_SPACING
            } else {
                Duration::from_millis(self.cfg.poll_interval_ms)
            };
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One GetRecords on a shard: sends its events, moves its position, adopts the children
    /// of a shard read to its end. Returns whether the shard is behind the stream's tip.
    async fn read_shard(
        &self,
        id: &str,
        shards: &mut BTreeMap<String, Shard>,
        dirty: &mut Vec<(String, String)>,
        events: &mpsc::Sender<ConnectorEvent>,
        decode: &impl Fn(&[u8]) -> Vec<ConnectorEvent>,
    ) -> Result<bool, ConnectorError> {
        let shard = shards.get_mut(id).expect("readable shard is known");
        let iterator = match shard.iterator.take() {
            Some(it) => it,
            None => self.iterator(id, &shard.position).await?,
        };
        let out = match self
            .resilience
            .call("GetRecords", || async {
                self.client
                    .get_records()
                    .shard_iterator(&iterator)
                    .limit(self.cfg.max_records as i32)
                    .set_stream_arn(self.stream_arn.clone())
                    .send()
                    .await
                    .map_err(map_err)
            })
            .await
        {
            Ok(out) => out,
            Err(ConnectorError::NotFound(code)) if code == EXPIRED => {
                // A new iterator from the saved position on the next round.
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        for r in out.records() {
            for e in decode(r.data().as_ref()) {
                if self.progress.send(events, e).await.is_err() {
                    return Ok(false);
                }
            }
            shard.position = Position::After(r.sequence_number().to_owned());
        }
        if !out.records().is_empty()
            && let Some(c) = shard.position.cursor()
        {
            dirty.push((id.to_owned(), c));
        }
        match out.next_shard_iterator() {
            Some(next) => {
                shard.iterator = Some(next.to_owned());
                Ok(out.millis_behind_latest().unwrap_or(0) > 0)
            }
            None => {
                shard.done = true;
                dirty.push((id.to_owned(), END.to_owned()));
                for child in out.child_shards() {
                    shards
                        .entry(child.shard_id().to_owned())
                        .or_insert_with(|| Shard {
                            parents: child.parent_shards().to_vec(),
                            position: Position::TrimHorizon,
                            iterator: None,
                            done: false,
                        });
                }
                tracing::info!(connector = %self.connector, shard = %id, children = out.child_shards().len(), "shard read to its end");
                Ok(true)
            }
        }
    }

    /// Saves the changed positions once every event sent so far has been stored by the
    /// runtime. Returns false when cancelled first (the positions are then not saved: the
    /// records are read again after a restart).
    async fn persist(&self, dirty: &mut Vec<(String, String)>, cancel: &CancellationToken) -> bool {
        let Some(store) = &self.store else {
            dirty.clear();
            return true;
        };
        let mark = self.progress.sent().await;
        tokio::select! {
            _ = cancel.cancelled() => return false,
            _ = self.progress.wait_stored(mark) => {}
        }
        let keyed: Vec<(String, String)> = dirty
            .iter()
            .map(|(id, v)| (format!("{}{id}", self.prefix), v.clone()))
            .collect();
        match store.put_cursors(&self.connector, &keyed).await {
            Ok(()) => dirty.clear(),
            Err(e) => {
                tracing::warn!(connector = %self.connector, error = %e, "saving stream positions failed; retrying after the next read")
            }
        }
        true
    }

    /// Drops the cursors of shards gone from the stream.
    async fn forget(&self, gone: &[String]) {
        if gone.is_empty() {
            return;
        }
        let keys: Vec<String> = gone
            .iter()
            .map(|id| format!("{}{id}", self.prefix))
            .collect();
        if let Some(store) = &self.store
            && let Err(e) = store.delete_cursors(&self.connector, &keys).await
        {
            tracing::warn!(connector = %self.connector, error = %e, "forgetting positions of expired shards failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse() {
        assert_eq!(
            parse_cursor("seq:4960"),
            Some(Some(Position::After("4960".into())))
        );
        assert_eq!(parse_cursor("at:17"), Some(Some(Position::AtMillis(17))));
        assert_eq!(parse_cursor("end"), Some(None));
        assert_eq!(parse_cursor("junk"), None);
        assert_eq!(
            Position::After("1".into()).cursor().as_deref(),
            Some("seq:1")
        );
        assert_eq!(Position::TrimHorizon.cursor(), None);
    }
}

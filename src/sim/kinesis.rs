//! A fake Amazon Kinesis Data Streams endpoint for tests: named streams, the three read
//! operations a consumer uses (ListShards, GetShardIterator, GetRecords), shard splits, and
//! iterator expiry on request. Written from the Kinesis API reference:
//!
//! - Protocol: AWS JSON 1.1, `POST /` with `X-Amz-Target: Kinesis_20131202.<Operation>`,
//!   `Content-Type: application/x-amz-json-1.1`; errors are HTTP 400 with
//!   `{"__type": "<Exception>", "message": …}`; blobs are base64, timestamps epoch seconds
//!   (<https://docs.aws.amazon.com/kinesis/latest/APIReference/CommonParameters.html>,
//!   <https://docs.aws.amazon.com/kinesis/latest/APIReference/CommonErrors.html>).
//! - ListShards: `StreamName`/`StreamARN`, `NextToken` (which may not be combined with
//!   `StreamName`), `MaxResults`; returns `Shards[{ShardId, ParentShardId,
//!   AdjacentParentShardId, HashKeyRange, SequenceNumberRange{Starting, Ending}}]`, the
//!   ending sequence number only for closed shards
//!   (<https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListShards.html>).
//! - GetShardIterator: `ShardIteratorType` `AT_SEQUENCE_NUMBER | AFTER_SEQUENCE_NUMBER |
//!   TRIM_HORIZON | LATEST | AT_TIMESTAMP` with `StartingSequenceNumber` / `Timestamp`
//!   (<https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html>).
//! - GetRecords: `Records[{SequenceNumber, ApproximateArrivalTimestamp, Data,
//!   PartitionKey}]`, `NextShardIterator` ("if set to null, the shard has been closed and the
//!   requested iterator does not return any more data"), `MillisBehindLatest` (0 = caught
//!   up), `ChildShards` ("returned … only when the end of the current shard is reached"),
//!   `ExpiredIteratorException`
//!   (<https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html>).
//! - A record goes to the shard whose hash key range holds the MD5 of its partition key, as
//!   a 128-bit integer; SplitShard closes the parent and opens two children that name it as
//!   `ParentShardId`
//!   (<https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecord.html>,
//!   <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SplitShard.html>).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use md5::{Digest, Md5};
use serde_json::{Value, json};

/// The stream's region and account, for its ARN.
pub const KINESIS_ACCOUNT: &str = "123456789012";

struct Rec {
    seq: String,
    pk: String,
    data: Vec<u8>,
    arrival_ms: i64,
}

struct Shard {
    id: String,
    parent: Option<String>,
    adjacent_parent: Option<String>,
    start_hash: u128,
    end_hash: u128,
    start_seq: String,
    end_seq: Option<String>,
    records: Vec<Rec>,
}

struct Stream {
    name: String,
    shards: Vec<Shard>,
    next_shard: usize,
}

#[derive(Default)]
struct Fake {
    region: String,
    streams: Vec<Stream>,
    next_seq: u128,
    /// Iterators of an older generation are expired.
    generation: u64,
    list_page: usize,
    calls: Vec<String>,
    iterator_requests: Vec<(String, String)>,
}

impl Fake {
    fn arn(&self, stream: &str) -> String {
        format!(
            "arn:aws:kinesis:{}:{KINESIS_ACCOUNT}:stream/{stream}",
            self.region
        )
    }

    fn seq(&mut self) -> String {
        self.next_seq += 1;
        format!("{:056}", self.next_seq)
    }

    fn stream(&mut self, name: &str) -> &mut Stream {
        self.streams
            .iter_mut()
            .find(|s| s.name == name)
            .expect("a stream of the fake")
    }

    /// The stream a request names by `StreamName` and/or `StreamARN` (both must agree).
    fn named(&self, body: &Value) -> Option<usize> {
        let by_name = body["StreamName"].as_str();
        let by_arn = body["StreamARN"].as_str();
        if by_name.is_none() && by_arn.is_none() {
            return None;
        }
        self.streams.iter().position(|s| {
            by_name.is_none_or(|n| n == s.name) && by_arn.is_none_or(|a| a == self.arn(&s.name))
        })
    }

    /// A stream of `shards` open shards splitting the hash key space evenly.
    fn add_stream(&mut self, name: &str, shards: usize) {
        self.streams.push(Stream {
            name: name.to_owned(),
            shards: Vec::new(),
            next_shard: 0,
        });
        let n = shards.max(1) as u128;
        let width = u128::MAX / n;
        for i in 0..n {
            let start = i * width;
            let end = if i + 1 == n {
                u128::MAX
            } else {
                (i + 1) * width - 1
            };
            let shard = self.new_shard(name, start, end, None);
            self.stream(name).shards.push(shard);
        }
    }

    fn new_shard(&mut self, stream: &str, start: u128, end: u128, parent: Option<String>) -> Shard {
        let st = self.stream(stream);
        let id = format!("shardId-{:012}", st.next_shard);
        st.next_shard += 1;
        let start_seq = self.seq();
        Shard {
            id,
            parent,
            adjacent_parent: None,
            start_hash: start,
            end_hash: end,
            start_seq,
            end_seq: None,
            records: Vec::new(),
        }
    }
}

/// The fake endpoint and its control API.
#[derive(Clone)]
pub struct FakeKinesis {
    addr: SocketAddr,
    /// The stream `spawn` created, which the short control methods act on.
    first: String,
    state: Arc<Mutex<Fake>>,
}

/// The MD5 of a partition key as a 128-bit integer: the hash key that picks its shard.
pub fn hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

fn error(kind: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.1")],
        json!({"__type": kind, "message": message}).to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

/// Starts the fake on loopback with one stream of `shards` open shards splitting the hash
/// key space evenly.
pub async fn spawn(stream: &str, region: &str, shards: usize) -> std::io::Result<FakeKinesis> {
    let mut s = Fake {
        region: region.to_owned(),
        list_page: 1000,
        ..Fake::default()
    };
    s.add_stream(stream, shards);
    let state = Arc::new(Mutex::new(s));
    let app = Router::new()
        .route("/", post(handle))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(FakeKinesis {
        addr,
        first: stream.to_owned(),
        state,
    })
}

impl FakeKinesis {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stream_arn(&self) -> String {
        self.state.lock().expect("fake kinesis").arn(&self.first)
    }

    /// Adds another stream of `shards` open shards.
    pub fn add_stream(&self, name: &str, shards: usize) {
        self.state
            .lock()
            .expect("fake kinesis")
            .add_stream(name, shards);
    }

    /// Appends a record to the first stream (see [`FakeKinesis::put_record_to`]).
    pub fn put_record(&self, partition_key: &str, data: &[u8]) -> (String, String) {
        self.put_record_to(&self.first, partition_key, data)
    }

    /// Appends a record to the open shard of `stream` its partition key hashes to; returns
    /// its sequence number and shard id.
    pub fn put_record_to(
        &self,
        stream: &str,
        partition_key: &str,
        data: &[u8],
    ) -> (String, String) {
        let mut s = self.state.lock().expect("fake kinesis");
        let h = hash_key(partition_key);
        let seq = s.seq();
        let shard = s
            .stream(stream)
            .shards
            .iter_mut()
            .find(|x| x.end_seq.is_none() && x.start_hash <= h && h <= x.end_hash)
            .expect("the open shards cover the hash key space");
        shard.records.push(Rec {
            seq: seq.clone(),
            pk: partition_key.to_owned(),
            data: data.to_vec(),
            arrival_ms: chrono::Utc::now().timestamp_millis(),
        });
        (seq, shard.id.clone())
    }

    /// Splits an open shard of the first stream in the middle of its hash key range: the
    /// parent closes, two children open. Returns the children's ids.
    pub fn split_shard(&self, shard_id: &str) -> (String, String) {
        let first = self.first.clone();
        let mut s = self.state.lock().expect("fake kinesis");
        let end_seq = s.seq();
        let parent = s
            .stream(&first)
            .shards
            .iter_mut()
            .find(|x| x.id == shard_id && x.end_seq.is_none())
            .expect("an open shard");
        parent.end_seq = Some(end_seq);
        let (lo, hi) = (parent.start_hash, parent.end_hash);
        let mid = lo + (hi - lo) / 2;
        let a = s.new_shard(&first, lo, mid, Some(shard_id.to_owned()));
        let b = s.new_shard(&first, mid + 1, hi, Some(shard_id.to_owned()));
        let ids = (a.id.clone(), b.id.clone());
        s.stream(&first).shards.extend([a, b]);
        ids
    }

    /// Every iterator handed out so far expires.
    pub fn expire_iterators(&self) {
        self.state.lock().expect("fake kinesis").generation += 1;
    }

    /// Shards per ListShards page.
    pub fn set_list_page(&self, n: usize) {
        self.state.lock().expect("fake kinesis").list_page = n.max(1);
    }

    /// The operations called, in order.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().expect("fake kinesis").calls.clone()
    }

    /// (shard id, ShardIteratorType) of each GetShardIterator call.
    pub fn iterator_requests(&self) -> Vec<(String, String)> {
        self.state
            .lock()
            .expect("fake kinesis")
            .iterator_requests
            .clone()
    }
}

fn shard_json(x: &Shard) -> Value {
    let mut v = json!({
        "ShardId": x.id,
        "HashKeyRange": {"StartingHashKey": x.start_hash.to_string(), "EndingHashKey": x.end_hash.to_string()},
        "SequenceNumberRange": {"StartingSequenceNumber": x.start_seq},
    });
    if let Some(p) = &x.parent {
        v["ParentShardId"] = json!(p);
    }
    if let Some(p) = &x.adjacent_parent {
        v["AdjacentParentShardId"] = json!(p);
    }
    if let Some(e) = &x.end_seq {
        v["SequenceNumberRange"]["EndingSequenceNumber"] = json!(e);
    }
    v
}

async fn handle(
    State(state): State<Arc<Mutex<Fake>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let signed = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 "));
    if !signed {
        return error("MissingAuthenticationTokenException", "request not signed");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error("SerializationException", "body is not JSON");
    };
    let mut s = state.lock().expect("fake kinesis");
    let op = target.strip_prefix("Kinesis_20131202.").unwrap_or_default();
    s.calls.push(op.to_owned());
    match op {
        "ListShards" => list_shards(&s, &body),
        "GetShardIterator" => get_shard_iterator(&mut s, &body),
        "GetRecords" => get_records(&s, &body),
        _ => error("UnknownOperationException", &target),
    }
}

fn list_shards(s: &Fake, body: &Value) -> Response {
    let (stream, start) = match body["NextToken"].as_str() {
        Some(_) if body.get("StreamName").is_some() => {
            return error(
                "InvalidArgumentException",
                "NextToken and StreamName cannot be provided together",
            );
        }
        Some(t) => {
            let parsed = t
                .split_once('|')
                .and_then(|(st, n)| Some((st.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
            match parsed {
                Some((st, n)) if st < s.streams.len() => (st, n),
                _ => return error("InvalidArgumentException", "bad NextToken"),
            }
        }
        None => match s.named(body) {
            Some(st) => (st, 0),
            None => return error("ResourceNotFoundException", "stream not found"),
        },
    };
    let page = body["MaxResults"]
        .as_u64()
        .map_or(s.list_page, |m| (m as usize).min(s.list_page));
    let all = &s.streams[stream].shards;
    let shards: Vec<Value> = all.iter().skip(start).take(page).map(shard_json).collect();
    let mut out = json!({"Shards": shards});
    if start + page < all.len() {
        out["NextToken"] = json!(format!("{stream}|{}", start + page));
    }
    ok(out)
}

fn get_shard_iterator(s: &mut Fake, body: &Value) -> Response {
    let Some(stream) = s.named(body) else {
        return error("ResourceNotFoundException", "stream not found");
    };
    let id = body["ShardId"].as_str().unwrap_or_default().to_owned();
    let kind = body["ShardIteratorType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    s.iterator_requests.push((id.clone(), kind.clone()));
    let Some(shard) = s.streams[stream].shards.iter().find(|x| x.id == id) else {
        return error("ResourceNotFoundException", "shard not found");
    };
    let seq_index = || {
        let want = body["StartingSequenceNumber"].as_str()?;
        shard.records.iter().position(|r| r.seq == want)
    };
    let pos = match kind.as_str() {
        "TRIM_HORIZON" => 0,
        "LATEST" => shard.records.len(),
        "AT_SEQUENCE_NUMBER" => match seq_index() {
            Some(i) => i,
            None => return error("InvalidArgumentException", "unknown sequence number"),
        },
        "AFTER_SEQUENCE_NUMBER" => match seq_index() {
            Some(i) => i + 1,
            None => return error("InvalidArgumentException", "unknown sequence number"),
        },
        "AT_TIMESTAMP" => {
            let Some(ts) = body["Timestamp"].as_f64() else {
                return error("InvalidArgumentException", "AT_TIMESTAMP needs Timestamp");
            };
            let ms = (ts * 1000.0).round() as i64;
            shard
                .records
                .iter()
                .position(|r| r.arrival_ms >= ms)
                .unwrap_or(shard.records.len())
        }
        _ => return error("InvalidArgumentException", "bad ShardIteratorType"),
    };
    let iterator = B64.encode(format!("{}|{stream}|{id}|{pos}", s.generation));
    ok(json!({"ShardIterator": iterator}))
}

fn get_records(s: &Fake, body: &Value) -> Response {
    let decoded = body["ShardIterator"]
        .as_str()
        .and_then(|i| B64.decode(i).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let Some(decoded) = decoded else {
        return error("InvalidArgumentException", "bad ShardIterator");
    };
    let mut parts = decoded.splitn(4, '|');
    let (Some(generation), Some(stream), Some(id), Some(pos)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return error("InvalidArgumentException", "bad ShardIterator");
    };
    if generation.parse::<u64>().ok() != Some(s.generation) {
        return error("ExpiredIteratorException", "Iterator expired");
    }
    let Some(st) = stream.parse::<usize>().ok().and_then(|i| s.streams.get(i)) else {
        return error("InvalidArgumentException", "bad ShardIterator");
    };
    let (Some(shard), Ok(pos)) = (st.shards.iter().find(|x| x.id == id), pos.parse::<usize>())
    else {
        return error("ResourceNotFoundException", "shard not found");
    };
    let limit = body["Limit"].as_u64().unwrap_or(10_000).clamp(1, 10_000) as usize;
    let end = (pos + limit).min(shard.records.len());
    let records: Vec<Value> = shard.records[pos.min(end)..end]
        .iter()
        .map(|r| {
            json!({"SequenceNumber": r.seq, "ApproximateArrivalTimestamp": r.arrival_ms as f64 / 1000.0,
                   "Data": B64.encode(&r.data), "PartitionKey": r.pk})
        })
        .collect();
    let at_end = end == shard.records.len();
    let mut out = json!({"Records": records, "MillisBehindLatest": if at_end { 0 } else { 1000 }});
    if at_end && shard.end_seq.is_some() {
        let children: Vec<Value> = st
            .shards
            .iter()
            .filter(|c| {
                c.parent.as_deref() == Some(id) || c.adjacent_parent.as_deref() == Some(id)
            })
            .map(|c| {
                let parents: Vec<&String> = c.parent.iter().chain(&c.adjacent_parent).collect();
                json!({"ShardId": c.id, "ParentShards": parents,
                       "HashKeyRange": {"StartingHashKey": c.start_hash.to_string(), "EndingHashKey": c.end_hash.to_string()}})
            })
            .collect();
        out["ChildShards"] = json!(children);
    } else {
        out["NextShardIterator"] =
            json!(B64.encode(format!("{}|{stream}|{id}|{end}", s.generation)));
    }
    ok(out)
}

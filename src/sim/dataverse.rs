//! A simulated Dataverse environment (Web API) with its token endpoint, written from
//! Microsoft's pages:
//! - create: `POST /api/data/v9.2/{entityset}` answers `204 No Content` with the new record's
//!   URI in `OData-EntityId`:
//!   <https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-entity-web-api>;
//!   with `Prefer: return=representation` it answers `201 Created` with the record (columns of
//!   `$select`) and `Preference-Applied`, and no `OData-EntityId`
//!   (the "create with data returned" section of that page, as quoted in
//!   <https://xrmdynamicscrm.wordpress.com/2020/08/26/dynamics-365-web-api-create-entity-record-with-data-returned/>);
//! - update: `PATCH {entityset}({id})` answers 204; without `If-Match` a PATCH of a missing
//!   record creates it (upsert), `If-Match: *` makes it an update only (404 when missing),
//!   `If-None-Match: *` a create only (412 when it exists):
//!   <https://learn.microsoft.com/power-apps/developer/data-platform/webapi/update-delete-entities-using-web-api>,
//!   <https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api>;
//!   every record carries a weak `@odata.etag` that `If-Match` may also name;
//! - service protection: `429 Too Many Requests` with `Retry-After` (seconds):
//!   <https://learn.microsoft.com/power-apps/developer/data-platform/api-limits>;
//! - token: client credentials at `/{tenant}/oauth2/v2.0/token` with
//!   `scope={environment}/.default`:
//!   <https://learn.microsoft.com/power-apps/developer/data-platform/authenticate-oauth>.
//!
//! Assumed (not on those pages, so the client does not depend on them): a create whose body
//! names an existing primary key is refused with `412` and the OData error code `0x80040237`;
//! the primary key of an entity set is `{set without the final s}id` except for activities
//! (`phonecalls`, `emails`, `tasks`, `appointments`: `activityid`); the error body of a 429
//! (its code and message); `GET {entityset}` lists every record without paging.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Form, Json, Router};
use serde_json::{Map, Value, json};

/// Credentials the simulated identity platform accepts.
pub const DATAVERSE_TENANT: &str = "dataverse-tenant";
pub const DATAVERSE_CLIENT_ID: &str = "dataverse-client";
pub const DATAVERSE_CLIENT_SECRET: &str = "dataverse-secret";

/// One request the simulator answered.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    pub method: String,
    /// Path under `/api/data/{version}/`, e.g. `phonecalls(…)`.
    pub path: String,
    pub query: Option<String>,
    /// Request headers the Web API gives meaning to (`If-Match`, `Prefer`, …), by lower-case name.
    pub headers: BTreeMap<String, String>,
    pub body: Option<Value>,
    pub status: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

#[derive(Default)]
struct SimState {
    /// Entity set → id → record.
    sets: BTreeMap<String, BTreeMap<String, Map<String, Value>>>,
    requests: Vec<LoggedRequest>,
    tokens_issued: u64,
    /// The next `throttle` data requests answer 429 with `Retry-After: throttle_secs`.
    throttle: u32,
    throttle_secs: u64,
    version: u64,
}

/// A running simulator; dropped = stopped.
pub struct SimDataverse {
    /// The environment URL (also the identity platform's), with a trailing `/`.
    pub url: String,
    state: Arc<Mutex<SimState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SimDataverse {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = Arc<Mutex<SimState>>;

/// Starts the simulator on a loopback port.
pub async fn spawn() -> std::io::Result<SimDataverse> {
    spawn_on(tokio::net::TcpListener::bind("127.0.0.1:0").await?).await
}

/// Starts the simulator on `listener` (a restarted test keeps its port).
pub async fn spawn_on(listener: tokio::net::TcpListener) -> std::io::Result<SimDataverse> {
    let state: Shared = Arc::default();
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/api/data/{version}/{*rest}", any(data))
        .with_state(state.clone());
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(SimDataverse {
        url: format!("http://{addr}/"),
        state,
        task,
    })
}

impl SimDataverse {
    /// A `[[dynamics]]` entry named `name` for this simulator, with the phone-call recipe
    /// (created on first sight: phonenumber, actualstart, subject; category and end on
    /// `ended`; the recording URL in the description) and the screen-pop link of app `app-1`.
    pub fn environment_toml(&self, name: &str) -> String {
        format!(
            r#"
[[dynamics]]
name = "{name}"
url = "{url}"
authority_url = "{url}"
tenant_id = "{DATAVERSE_TENANT}"
client_id = "{DATAVERSE_CLIENT_ID}"
client_secret = "{DATAVERSE_CLIENT_SECRET}"
app_id = "app-1"
channels = ["voice"]
screen_pop_url = "{{{{ environment.url }}}}main.aspx?appid={{{{ environment.app_id }}}}&pagetype=entityrecord&etn=phonecall&id={{{{ steps.created.activityid }}}}"

[dynamics.steps.created]
method = "POST"
path = "phonecalls"
query = "$select=activityid"
headers = {{ Prefer = "return=representation" }}
body = '{{"activityid": {{{{ contact.record_id | tojson }}}}, "subject": {{{{ ("Call from " ~ (contact.customer_endpoint or "unknown")) | tojson }}}}, "phonenumber": {{{{ contact.customer_endpoint | tojson }}}}, "directioncode": false, "actualstart": {{{{ contact.at | tojson }}}}}}'
captures = [{{ name = "activityid", json_pointer = "/activityid" }}]

[dynamics.steps.ended]
method = "PATCH"
path = "phonecalls({{{{ steps.created.activityid }}}})"
headers = {{ "If-Match" = "*" }}
body = '{{"category": "contact center", "actualend": {{{{ contact.at | tojson }}}}}}'

[dynamics.steps.recording_available]
method = "PATCH"
path = "phonecalls({{{{ steps.created.activityid }}}})"
headers = {{ "If-Match" = "*" }}
body = '{{"description": {{{{ ("Recording: " ~ contact.recording_url) | tojson }}}}}}'
"#,
            url = self.url
        )
    }

    /// The records of an entity set, by id.
    pub fn records(&self, set: &str) -> BTreeMap<String, Map<String, Value>> {
        self.lock().sets.get(set).cloned().unwrap_or_default()
    }

    /// Every data request answered so far, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().requests.clone()
    }

    /// Tokens issued so far.
    pub fn tokens_issued(&self) -> u64 {
        self.lock().tokens_issued
    }

    /// The next `n` data requests answer `429` with `Retry-After: {secs}`.
    pub fn throttle(&self, n: u32, secs: u64) {
        let mut st = self.lock();
        st.throttle = n;
        st.throttle_secs = secs;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.state.lock().expect("dataverse state")
    }
}

#[derive(serde::Deserialize)]
struct TokenForm {
    grant_type: String,
    client_id: String,
    client_secret: Option<String>,
    scope: Option<String>,
}

async fn token(
    State(state): State<Shared>,
    Path(tenant): Path<String>,
    Form(f): Form<TokenForm>,
) -> Response {
    let ok = tenant == DATAVERSE_TENANT
        && f.grant_type == "client_credentials"
        && f.client_id == DATAVERSE_CLIENT_ID
        && f.client_secret.as_deref() == Some(DATAVERSE_CLIENT_SECRET)
        && f.scope.as_deref().is_some_and(|s| s.ends_with("/.default"));
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "unknown client, secret or scope"})),
        )
            .into_response();
    }
    let n = {
        let mut st = state.lock().expect("dataverse state");
        st.tokens_issued += 1;
        st.tokens_issued
    };
    Json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": format!("dataverse-token-{n}")}))
        .into_response()
}

fn odata_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("OData-Version", "4.0")],
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// The primary key column of an entity set (assumed naming; see the module comment).
fn primary_key(set: &str) -> String {
    match set {
        "phonecalls" | "emails" | "tasks" | "appointments" | "activitypointers" => {
            "activityid".into()
        }
        _ => format!("{}id", set.strip_suffix('s').unwrap_or(set)),
    }
}

/// `phonecalls(00aa…)` → (`phonecalls`, Some(`00aa…`)); `phonecalls` → (`phonecalls`, None).
fn split_target(rest: &str) -> Option<(String, Option<String>)> {
    match rest.find('(') {
        None => (!rest.is_empty() && !rest.contains('/')).then(|| (rest.to_owned(), None)),
        Some(open) => {
            let id = rest[open + 1..].strip_suffix(')')?;
            Some((
                rest[..open].to_owned(),
                Some(id.trim_matches('\'').to_lowercase()),
            ))
        }
    }
}

fn select(record: &Map<String, Value>, query: Option<&str>) -> Map<String, Value> {
    let cols: Option<Vec<String>> = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "$select")
            .map(|(_, v)| v.split(',').map(|c| c.trim().to_owned()).collect())
    });
    match cols {
        None => record.clone(),
        Some(cols) => record
            .iter()
            .filter(|(k, _)| k.starts_with('@') || cols.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

async fn data(
    State(state): State<Shared>,
    Path((version, rest)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let body_json: Option<Value> = serde_json::from_slice(&body).ok();
    let mut logged = LoggedRequest {
        method: method.to_string(),
        path: rest.clone(),
        query: query.clone(),
        headers: [
            "if-match",
            "if-none-match",
            "prefer",
            "mscrm.suppressduplicatedetection",
            "odata-version",
            "odata-maxversion",
        ]
        .iter()
        .filter_map(|n| Some((n.to_string(), header(n)?)))
        .collect(),
        body: body_json.clone(),
        status: 0,
        at: std::time::Instant::now(),
    };
    let mut st = state.lock().expect("dataverse state");
    let resp = answer(
        &mut st,
        &version,
        &rest,
        query.as_deref(),
        &method,
        &header,
        body_json,
    );
    logged.status = resp.status().as_u16();
    st.requests.push(logged);
    resp
}

fn answer(
    st: &mut SimState,
    version: &str,
    rest: &str,
    query: Option<&str>,
    method: &Method,
    header: &dyn Fn(&str) -> Option<String>,
    body: Option<Value>,
) -> Response {
    let authorized = header("authorization").is_some_and(|a| {
        a.strip_prefix("Bearer ")
            .and_then(|t| t.strip_prefix("dataverse-token-"))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= 1 && n <= st.tokens_issued)
    });
    if !authorized {
        return odata_error(
            StatusCode::UNAUTHORIZED,
            "0x80072560",
            "The user is not authenticated.",
        );
    }
    if st.throttle > 0 {
        st.throttle -= 1;
        let mut r = odata_error(
            StatusCode::TOO_MANY_REQUESTS,
            "0x80072322",
            "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
        );
        r.headers_mut().insert(
            "Retry-After",
            st.throttle_secs.to_string().parse().expect("digits"),
        );
        return r;
    }
    let Some((set, id)) = split_target(rest) else {
        return odata_error(
            StatusCode::NOT_FOUND,
            "0x8006088a",
            "Resource not found for the segment.",
        );
    };
    let host = header("host").unwrap_or_else(|| "localhost".into());
    let entity_uri = |id: &str| format!("http://{host}/api/data/{version}/{set}({id})");
    let prefer_repr = header("prefer").is_some_and(|p| p.contains("return=representation"));
    st.version += 1;
    let etag = format!("W/\"{}\"", st.version);
    let key = primary_key(&set);
    let records = st.sets.entry(set.clone()).or_default();
    match (method.as_str(), id) {
        ("GET", None) => {
            let value: Vec<Value> = records
                .values()
                .map(|r| Value::Object(select(r, query)))
                .collect();
            Json(json!({ "value": value })).into_response()
        }
        ("GET", Some(id)) => match records.get(&id) {
            Some(r) => Json(Value::Object(select(r, query))).into_response(),
            None => odata_error(StatusCode::NOT_FOUND, "0x80040217", "Entity Does Not Exist"),
        },
        ("POST", None) => {
            let Some(Value::Object(mut fields)) = body else {
                return odata_error(
                    StatusCode::BAD_REQUEST,
                    "0x80048d19",
                    "The request body is not a JSON object.",
                );
            };
            let id = fields
                .get(&key)
                .and_then(Value::as_str)
                .map(str::to_lowercase)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            if records.contains_key(&id) {
                return odata_error(
                    StatusCode::PRECONDITION_FAILED,
                    "0x80040237",
                    "A record with matching key values already exists.",
                );
            }
            fields.insert(key.clone(), Value::String(id.clone()));
            fields.insert("@odata.etag".into(), Value::String(etag));
            fields.insert(
                "createdon".into(),
                Value::String(chrono::Utc::now().to_rfc3339()),
            );
            let created = select(&fields, query);
            records.insert(id.clone(), fields);
            tracing::info!(set = %set, id = %id, "simulated Dataverse: record created");
            if prefer_repr {
                (
                    StatusCode::CREATED,
                    [
                        ("OData-Version", "4.0"),
                        ("Preference-Applied", "return=representation"),
                    ],
                    Json(Value::Object(created)),
                )
                    .into_response()
            } else {
                (
                    StatusCode::NO_CONTENT,
                    [
                        ("OData-Version".to_owned(), "4.0".to_owned()),
                        ("OData-EntityId".to_owned(), entity_uri(&id)),
                    ],
                )
                    .into_response()
            }
        }
        ("PATCH", Some(id)) => {
            let Some(Value::Object(fields)) = body else {
                return odata_error(
                    StatusCode::BAD_REQUEST,
                    "0x80048d19",
                    "The request body is not a JSON object.",
                );
            };
            let if_match = header("if-match");
            let if_none_match = header("if-none-match");
            let existing = records.get(&id);
            match (&if_match, existing) {
                (Some(_), None) => {
                    return odata_error(
                        StatusCode::NOT_FOUND,
                        "0x80040217",
                        "Entity Does Not Exist",
                    );
                }
                (Some(m), Some(r))
                    if m != "*" && r.get("@odata.etag").and_then(Value::as_str) != Some(m) =>
                {
                    return odata_error(
                        StatusCode::PRECONDITION_FAILED,
                        "0x80060882",
                        "The version of the existing record doesn't match the RowVersion property provided.",
                    );
                }
                _ => {}
            }
            if if_none_match.as_deref() == Some("*") && existing.is_some() {
                return odata_error(
                    StatusCode::PRECONDITION_FAILED,
                    "0x80060882",
                    "A record with matching key values already exists.",
                );
            }
            let record = records.entry(id.clone()).or_insert_with(|| {
                let mut m = Map::new();
                m.insert(key.clone(), Value::String(id.clone()));
                m
            });
            for (k, v) in fields {
                record.insert(k, v);
            }
            record.insert("@odata.etag".into(), Value::String(etag));
            let updated = select(record, query);
            tracing::info!(set = %set, id = %id, "simulated Dataverse: record updated");
            if prefer_repr {
                (StatusCode::OK, Json(Value::Object(updated))).into_response()
            } else {
                (
                    StatusCode::NO_CONTENT,
                    [
                        ("OData-Version".to_owned(), "4.0".to_owned()),
                        ("OData-EntityId".to_owned(), entity_uri(&id)),
                    ],
                )
                    .into_response()
            }
        }
        ("DELETE", Some(id)) => match records.remove(&id) {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => odata_error(StatusCode::NOT_FOUND, "0x80040217", "Entity Does Not Exist"),
        },
        _ => odata_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "0x8006088a",
            "Method not allowed on this resource.",
        ),
    }
}

//! The variables of step and screen-pop templates, rendering a step into the exact request,
//! and the check at start. Templates use the connectors' minijinja environment (strict
//! undefined, a path-safe `urlencode`), so a typo fails at `check-config` with its key path.
//!
//! Variables: `environment` (`name`, `url` with a trailing `/`, `api_version`, `app_id`),
//! `contact` (`id`, `connector`, `event` (the kind of the event at hand), `at`, `channel`,
//! `agent_id`, `queue`, `customer_endpoint`, `recording_url`, `event_id`, `attributes` (the
//! platform's own, as sent), `record_id` (a UUID stable per environment and contact)), `steps`
//! (values captured by earlier steps: `steps.created.activityid`) and `now` (RFC 3339).

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::{Object, Value};

use super::config::{DynamicsConfig, Step, StepName};
use crate::connectors::ContactEvent;
pub use crate::connectors::http::template::{RenderedRequest, TemplateError};

/// Values captured per step: `{"created": {"activityid": "…"}}`.
pub type Captured = BTreeMap<String, BTreeMap<String, String>>;

/// Value given to every captured variable when templates are checked.
const SAMPLE_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The `contact.attributes` of the check: any name is defined (the platform decides which
/// attributes exist), so only the variables the bridge itself defines are checked.
#[derive(Debug)]
struct AnyAttributes;

impl Object for AnyAttributes {
    fn get_value(self: &Arc<Self>, _key: &Value) -> Option<Value> {
        Some(Value::from("sample"))
    }
}

/// A UUID derived from the environment, connector and contact: the same for every attempt
/// of every step of one contact, so a create can carry its record's own id (Dataverse
/// accepts a primary key value on create) and a repeated create is refused instead of
/// duplicated.
pub fn record_id(env: &str, connector: &str, contact: &str) -> String {
    use sha1::Digest as _;
    let digest = sha1::Sha1::digest(format!("{env}\u{1f}{connector}\u{1f}{contact}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn environment_value(env: &DynamicsConfig) -> Value {
    minijinja::context! {
        name => env.name,
        url => env.url.as_str(),
        api_version => env.api_version,
        app_id => env.app_id,
    }
}

/// The variables of one step for one contact event.
pub fn context(
    env: &DynamicsConfig,
    connector: &str,
    event: &ContactEvent,
    captured: &Captured,
) -> Value {
    let contact = minijinja::context! {
        id => event.contact_id,
        connector => connector,
        event => event.kind.as_str(),
        at => event.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        channel => event.channel.map(|c| c.as_str()),
        agent_id => event.agent_id,
        queue => event.queue,
        customer_endpoint => event.customer_endpoint,
        recording_url => event.recording_url,
        event_id => event.event_id,
        attributes => Value::from_serialize(&event.attributes),
        record_id => record_id(&env.name, connector, &event.contact_id),
    };
    minijinja::context! {
        environment => environment_value(env),
        contact => contact,
        steps => captured,
        now => chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

/// The variables the check renders with: sample contact values, any attribute, and a sample
/// value for every capture of the steps in `before`.
fn sample_context(env: &DynamicsConfig, before: &[StepName]) -> Value {
    let mut captured = Captured::new();
    for name in before {
        if let Some(step) = env.steps.get(*name) {
            captured.insert(
                name.as_str().to_owned(),
                step.captures
                    .iter()
                    .map(|c| (c.name.clone(), SAMPLE_ID.to_owned()))
                    .collect(),
            );
        }
    }
    let contact = minijinja::context! {
        id => "contact-1",
        connector => "connector",
        event => "connected",
        at => "2026-01-01T00:00:00Z",
        channel => "voice",
        agent_id => "agent-1",
        queue => "queue",
        customer_endpoint => "+15550100",
        recording_url => "https://recordings.example/1",
        event_id => "event-1",
        attributes => Value::from_object(AnyAttributes),
        record_id => SAMPLE_ID,
    };
    minijinja::context! {
        environment => environment_value(env),
        contact => contact,
        steps => captured,
        now => "2026-01-01T00:00:00Z",
    }
}

fn env() -> minijinja::Environment<'static> {
    crate::connectors::http::template::environment()
}

/// The fields of `environment` and `contact`.
const ENVIRONMENT_FIELDS: &[&str] = &["name", "url", "api_version", "app_id"];
const CONTACT_FIELDS: &[&str] = &[
    "id",
    "connector",
    "event",
    "at",
    "channel",
    "agent_id",
    "queue",
    "customer_endpoint",
    "recording_url",
    "event_id",
    "attributes",
    "record_id",
];

/// The variables a template uses that are not defined (strict mode alone lets an undefined
/// value through a filter such as `tojson`); `steps.*` is checked by the caller.
fn unknown_variables(src: &str) -> Vec<String> {
    let env = env();
    let Ok(t) = env.template_from_str(src) else {
        return Vec::new();
    };
    let mut out: Vec<String> = t
        .undeclared_variables(true)
        .into_iter()
        .filter(|v| {
            let mut parts = v.split('.');
            let field = |fields: &[&str], f: Option<&str>| f.is_none_or(|f| fields.contains(&f));
            match parts.next() {
                Some("environment") => !field(ENVIRONMENT_FIELDS, parts.next()),
                Some("contact") => !field(CONTACT_FIELDS, parts.next()),
                Some("steps") => false,
                Some("now") => parts.next().is_some(),
                _ => true,
            }
        })
        .collect();
    out.sort();
    out
}

fn unknown_message(unknown: &[String]) -> String {
    format!(
        "unknown variable {} (available: environment.{{{}}}, contact.{{{}}}, contact.attributes.*, steps.STEP.CAPTURE, now)",
        unknown.join(", "),
        ENVIRONMENT_FIELDS.join(", "),
        CONTACT_FIELDS.join(", ")
    )
}

/// The `steps.{step}.{name}` variables a template uses.
fn step_refs(src: &str) -> Vec<(String, String)> {
    let env = env();
    let Ok(t) = env.template_from_str(src) else {
        return Vec::new();
    };
    t.undeclared_variables(true)
        .into_iter()
        .filter_map(|v| {
            let mut parts = v.splitn(3, '.');
            (parts.next() == Some("steps"))
                .then(|| Some((parts.next()?.to_owned(), parts.next()?.to_owned())))
                .flatten()
        })
        .collect()
}

fn sources(step: &Step) -> Vec<(String, &str)> {
    let mut out = vec![("path".to_owned(), step.path.as_str())];
    if let Some(q) = &step.query {
        out.push(("query".into(), q));
    }
    if let Some(b) = &step.body {
        out.push(("body".into(), b));
    }
    for (k, v) in &step.headers {
        out.push((format!("headers.{k}"), v));
    }
    out
}

/// The captured values `step` uses that `captured` does not hold yet (`steps.created.activityid`).
pub fn missing_inputs(step: &Step, captured: &Captured) -> Vec<String> {
    let mut out = Vec::new();
    for (_, src) in sources(step) {
        for (s, name) in step_refs(src) {
            let have = captured.get(&s).is_some_and(|m| m.contains_key(&name));
            let shown = format!("steps.{s}.{name}");
            if !have && !out.contains(&shown) {
                out.push(shown);
            }
        }
    }
    out
}

fn render_field(field: &str, src: &str, ctx: &Value) -> Result<String, TemplateError> {
    let rendered = crate::connectors::http::template::render_bounded(&env(), src, ctx);
    rendered.map_err(|e| TemplateError {
        field: field.to_owned(),
        message: format!("template error: {e}"),
    })
}

/// The exact request of `step` (without the `Authorization` header, added when sent).
pub fn render_step(
    env_cfg: &DynamicsConfig,
    step: &Step,
    ctx: &Value,
) -> Result<RenderedRequest, TemplateError> {
    let fail = |field: &str, message: String| TemplateError {
        field: field.to_owned(),
        message,
    };
    let method = reqwest::Method::from_bytes(step.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| fail("method", format!("{:?} is not an HTTP method", step.method)))?;
    let base = format!("{}api/data/{}/", env_cfg.url, env_cfg.api_version);
    let path = render_field("path", &step.path, ctx)?;
    let mut text = format!("{base}{}", path.trim().trim_start_matches('/'));
    if let Some(q) = &step.query {
        let q = render_field("query", q, ctx)?;
        let q = q.trim().trim_start_matches('?');
        if !q.is_empty() {
            text.push('?');
            text.push_str(q);
        }
    }
    let url = url::Url::parse(&text)
        .map_err(|e| fail("path", format!("renders to {text:?}, not a URL: {e}")))?;
    if !url.as_str().starts_with(&base) {
        return Err(fail(
            "path",
            format!("renders to {text:?}, outside the Web API at {base}"),
        ));
    }
    // Every Web API request names the OData version and asks for JSON:
    // https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-entity-web-api
    let mut headers: Vec<(String, String)> = vec![
        ("OData-MaxVersion".into(), "4.0".into()),
        ("OData-Version".into(), "4.0".into()),
        ("Accept".into(), "application/json".into()),
    ];
    if let Some(v) = env_cfg.suppress_duplicate_detection
        && (method == reqwest::Method::POST || method == reqwest::Method::PATCH)
    {
        // https://learn.microsoft.com/power-apps/developer/data-platform/webapi/manage-duplicate-detection-create-update
        headers.push(("MSCRM.SuppressDuplicateDetection".into(), v.to_string()));
    }
    for (name, value) in &step.headers {
        let field = format!("headers.{name}");
        reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| fail(&field, "not a valid header name".into()))?;
        let v = render_field(&field, value, ctx)?;
        reqwest::header::HeaderValue::from_str(&v)
            .map_err(|_| fail(&field, "renders to an invalid header value".into()))?;
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        headers.push((name.clone(), v));
    }
    let body = match &step.body {
        Some(src) => {
            let text = render_field("body", src, ctx)?;
            serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| fail("body", format!("does not render to JSON: {e}")))?;
            Some(text)
        }
        None => None,
    };
    Ok(RenderedRequest {
        method,
        url,
        headers,
        content_type: body.as_ref().map(|_| "application/json".to_owned()),
        body,
    })
}

/// The screen-pop link of a contact, once every value it uses has been captured.
pub fn render_screen_pop(
    env_cfg: &DynamicsConfig,
    connector: &str,
    contact_id: &str,
    captured: &Captured,
) -> Option<Result<String, TemplateError>> {
    let tpl = env_cfg.screen_pop_url.as_ref()?;
    for (s, name) in step_refs(tpl) {
        if !captured.get(&s).is_some_and(|m| m.contains_key(&name)) {
            return None;
        }
    }
    let event = ContactEvent {
        contact_id: contact_id.to_owned(),
        kind: crate::connectors::ContactEventKind::Connected,
        at: chrono::Utc::now(),
        channel: None,
        agent_id: None,
        queue: None,
        customer_endpoint: None,
        recording_url: None,
        event_id: None,
        attributes: Default::default(),
    };
    let ctx = context(env_cfg, connector, &event, captured);
    Some(render_field("screen_pop_url", tpl, &ctx).map(|s| s.trim().to_owned()))
}

/// Every template problem of one environment, each named by its key under the entry
/// (`steps.connected.path`, `screen_pop_url`).
pub fn check(env_cfg: &DynamicsConfig) -> Vec<TemplateError> {
    let mut out = Vec::new();
    for (i, name) in StepName::ALL.iter().enumerate() {
        let Some(step) = env_cfg.steps.get(*name) else {
            continue;
        };
        let prefix = format!("steps.{}", name.as_str());
        let before = &StepName::ALL[..i];
        let ctx = sample_context(env_cfg, before);
        let captured_before = |s: &str, n: &str| {
            StepName::parse(s).is_some_and(|sn| {
                before.contains(&sn)
                    && env_cfg
                        .steps
                        .get(sn)
                        .is_some_and(|st| st.captures.iter().any(|c| c.name == n))
            })
        };
        let mut refs_ok = true;
        for (field, src) in sources(step) {
            let unknown = unknown_variables(src);
            if !unknown.is_empty() {
                refs_ok = false;
                out.push(TemplateError {
                    field: format!("{prefix}.{field}"),
                    message: unknown_message(&unknown),
                });
            }
            for (s, n) in step_refs(src) {
                if !captured_before(&s, &n) {
                    refs_ok = false;
                    out.push(TemplateError {
                        field: format!("{prefix}.{field}"),
                        message: format!(
                            "steps.{s}.{n} is not captured by an earlier step (a step may use \
                             the captures of the steps before it: {})",
                            before
                                .iter()
                                .map(|b| b.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
            }
        }
        if refs_ok && let Err(e) = render_step(env_cfg, step, &ctx) {
            out.push(TemplateError {
                field: format!("{prefix}.{}", e.field),
                message: e.message,
            });
        }
    }
    if let Some(tpl) = &env_cfg.screen_pop_url {
        let unknown = unknown_variables(tpl);
        if !unknown.is_empty() {
            out.push(TemplateError {
                field: "screen_pop_url".into(),
                message: unknown_message(&unknown),
            });
            return out;
        }
        let ctx = sample_context(env_cfg, &StepName::ALL);
        match render_field("screen_pop_url", tpl, &ctx) {
            Ok(text) => {
                if let Err(e) = url::Url::parse(text.trim()) {
                    out.push(TemplateError {
                        field: "screen_pop_url".into(),
                        message: format!("renders to {text:?}, not a URL: {e}"),
                    });
                }
            }
            Err(e) => out.push(e),
        }
    }
    out
}

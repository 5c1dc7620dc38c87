//! Request templates: minijinja with strict undefined variables, so a typo in a variable name
//! fails at `check-config` (templates are rendered once against sample values at start).

use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};

use super::config::{BodyKind, RequestTemplate};
use crate::connectors::rest::{component, path_segment};

/// A request ready to send (or to print with `connectors render`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedRequest {
    pub method: reqwest::Method,
    pub url: url::Url,
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub body: Option<String>,
}

impl std::fmt::Display for RenderedRequest {
    /// The request as an HTTP/1.1-style listing: request line, headers, blank line, body.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} {}", self.method, self.url)?;
        if let Some(ct) = &self.content_type {
            writeln!(f, "Content-Type: {ct}")?;
        }
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {v}")?;
        }
        if let Some(b) = &self.body {
            writeln!(f)?;
            writeln!(f, "{b}")?;
        }
        Ok(())
    }
}

/// Which part of a template failed, named like its config key (`url`, `headers.X-Id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub field: String,
    pub message: String,
}

/// Instructions one render of one field may execute. A request template is a few dozen
/// instructions, a loop over a contact's attributes a few thousand; a loop nested out of all
/// proportion (`{% for a in range(99) %}{% for b in range(99) %}…`) runs out instead of
/// running for minutes, and is refused at `check-config`, which renders every template once.
pub const TEMPLATE_FUEL: u64 = 200_000;

/// Bytes one rendered field may hold: far beyond any request a connector or Dataverse takes,
/// small enough that a runaway template cannot fill the memory.
pub const TEMPLATE_OUTPUT_MAX_BYTES: usize = 1 << 20;

/// The environment every connector renders with.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.add_filter("urlencode", urlencode);
    env
}

/// Renders `src` within [`TEMPLATE_FUEL`] and [`TEMPLATE_OUTPUT_MAX_BYTES`]; either limit
/// reached is an error that says which.
pub fn render_bounded(
    env: &Environment<'_>,
    src: &str,
    ctx: &Value,
) -> Result<String, minijinja::Error> {
    /// A sink that refuses to grow past the limit.
    struct Bounded(Vec<u8>);
    impl std::io::Write for Bounded {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0.len() + buf.len() > TEMPLATE_OUTPUT_MAX_BYTES {
                return Err(std::io::Error::other("output limit"));
            }
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let limit = |message: String| minijinja::Error::new(ErrorKind::InvalidOperation, message);
    let mut out = Bounded(Vec::new());
    match env
        .template_from_str(src)?
        .render_captured_to(ctx, &mut out)
    {
        // minijinja writes whole UTF-8 strings, so a complete output is UTF-8.
        Ok(_) => Ok(String::from_utf8_lossy(&out.0).into_owned()),
        Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(limit(format!(
            "the template runs past {TEMPLATE_FUEL} steps (a loop too long or nested too deep?)"
        ))),
        Err(e) if e.kind() == ErrorKind::WriteFailure => Err(limit(format!(
            "the template renders to more than {TEMPLATE_OUTPUT_MAX_BYTES} bytes"
        ))),
        Err(e) => Err(e),
    }
}

/// `urlencode`, safe for path segments: minijinja's own keeps `/`, so an agent id such as
/// `a/../../x` would leave its segment. Strings are encoded as one segment (only unreserved
/// characters kept; `.` and `..` refused); a map becomes a query string of encoded pairs.
fn urlencode(value: &Value) -> Result<String, minijinja::Error> {
    let encode = |v: &Value| -> Result<String, minijinja::Error> {
        let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        path_segment(&text).ok_or_else(|| {
            minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("{text:?} cannot be encoded as a URL path segment"),
            )
        })
    };
    if value.is_none() || value.is_undefined() {
        return Ok(String::new());
    }
    if value.kind() == minijinja::value::ValueKind::Map {
        let mut pairs = Vec::new();
        for k in value.try_iter()? {
            let v = value.get_item(&k)?;
            if !(v.is_none() || v.is_undefined()) {
                let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                pairs.push(format!("{}={}", component(&text(&k)), component(&text(&v))));
            }
        }
        return Ok(pairs.join("&"));
    }
    encode(value)
}

fn render_one(
    env: &Environment<'_>,
    field: &str,
    src: &str,
    ctx: &Value,
) -> Result<String, TemplateError> {
    render_bounded(env, src, ctx).map_err(|e| {
        let known: Vec<String> = ctx
            .try_iter()
            .map(|keys| keys.map(|k| k.to_string()).collect())
            .unwrap_or_default();
        // Only an undefined value is worth naming the variables for; the template's own
        // names that are not variables (functions such as `range`) are not unknown.
        let unknown: Vec<String> = if e.kind() == ErrorKind::UndefinedError {
            env.template_from_str(src)
                .map(|t| t.undeclared_variables(false))
                .unwrap_or_default()
                .into_iter()
                .filter(|v| !known.contains(v) && env.globals().all(|(g, _)| g != v))
                .collect()
        } else {
            Vec::new()
        };
        let message = if unknown.is_empty() {
            format!("template error: {e}")
        } else {
            format!(
                "unknown variable {} (available: {})",
                unknown.join(", "),
                known.join(", ")
            )
        };
        TemplateError {
            field: field.to_owned(),
            message,
        }
    })
}

/// Renders every part of a request template.
pub fn render_request(
    env: &Environment<'_>,
    tpl: &RequestTemplate,
    ctx: &Value,
) -> Result<RenderedRequest, TemplateError> {
    let fail = |field: &str, message: String| TemplateError {
        field: field.to_owned(),
        message,
    };
    let method = reqwest::Method::from_bytes(tpl.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| fail("method", format!("{:?} is not an HTTP method", tpl.method)))?;
    let url_text = render_one(env, "url", &tpl.url, ctx)?;
    let url = url::Url::parse(url_text.trim())
        .map_err(|e| fail("url", format!("renders to {url_text:?}, not a URL: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(fail("url", "must be an http(s) URL".into()));
    }
    let mut headers = Vec::new();
    for (name, value) in &tpl.headers {
        let field = format!("headers.{name}");
        reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| fail(&field, "not a valid header name".into()))?;
        let v = render_one(env, &field, value, ctx)?;
        reqwest::header::HeaderValue::from_str(&v)
            .map_err(|_| fail(&field, "renders to an invalid header value".into()))?;
        headers.push((name.clone(), v));
    }
    let (content_type, body) = match tpl.body_kind {
        BodyKind::Json => match &tpl.body {
            Some(src) => {
                let text = render_one(env, "body", src, ctx)?;
                serde_json::from_str::<serde_json::Value>(&text)
                    .map_err(|e| fail("body", format!("does not render to JSON: {e}")))?;
                (Some("application/json".to_owned()), Some(text))
            }
            None => (None, None),
        },
        BodyKind::Form => {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &tpl.form {
                ser.append_pair(k, &render_one(env, &format!("form.{k}"), v, ctx)?);
            }
            (
                Some("application/x-www-form-urlencoded".to_owned()),
                Some(ser.finish()),
            )
        }
        BodyKind::Raw => match &tpl.body {
            Some(src) => (
                tpl.content_type.clone(),
                Some(render_one(env, "body", src, ctx)?),
            ),
            None => (None, None),
        },
    };
    Ok(RenderedRequest {
        method,
        url,
        headers,
        content_type,
        body,
    })
}

/// Variables of the `set_status` request.
pub struct SetStatusVars<'a> {
    pub base_url: &'a str,
    pub agent_id: &'a str,
    pub status_id: &'a str,
    pub status_name: &'a str,
    /// Graph object id and UPN of the matched Teams user ("" when unknown).
    pub teams_user_id: &'a str,
    pub teams_upn: &'a str,
    /// Values captured from earlier responses about this agent.
    pub captures: &'a std::collections::BTreeMap<String, String>,
}

impl SetStatusVars<'_> {
    pub fn context(&self) -> Value {
        let now = chrono::Utc::now();
        minijinja::context! {
            base_url => self.base_url,
            agent_id => self.agent_id,
            status_id => self.status_id,
            status_name => self.status_name,
            teams_user_id => self.teams_user_id,
            teams_upn => self.teams_upn,
            captures => self.captures,
            request_id => uuid::Uuid::new_v4().to_string(),
            now => now.to_rfc3339(),
            now_unix => now.timestamp(),
        }
    }
}

/// Variables of list and poll requests: `cursor` is "" on the first page.
pub fn paged_context(base_url: &str, cursor: &str, page: u32) -> Value {
    let now = chrono::Utc::now();
    minijinja::context! {
        base_url => base_url,
        cursor => cursor,
        page => page,
        now => now.to_rfc3339(),
        now_unix => now.timestamp(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpl(toml_text: &str) -> RequestTemplate {
        toml::from_str(toml_text).expect("template parses")
    }

    #[test]
    fn renders_json_form_and_headers() {
        let env = environment();
        let ctx = minijinja::context! { base_url => "http://cc.test/", agent_id => "a 1", status_id => "busy" };
        let r = render_request(
            &env,
            &tpl(r#"method = "put"
url = "{{ base_url }}agents/{{ agent_id | urlencode }}"
headers = { "X-Agent" = "{{ agent_id }}" }
body = '{"status": {{ status_id | tojson }}}'"#),
            &ctx,
        )
        .unwrap();
        assert_eq!(r.method, reqwest::Method::PUT);
        assert_eq!(r.url.as_str(), "http://cc.test/agents/a%201");
        assert_eq!(r.headers, vec![("X-Agent".to_owned(), "a 1".to_owned())]);
        assert_eq!(r.body.as_deref(), Some(r#"{"status": "busy"}"#));
        let f = render_request(
            &env,
            &tpl(r#"method = "POST"
url = "{{ base_url }}w"
body_kind = "form"
form = { ActivitySid = "{{ status_id }}", Who = "{{ agent_id }}" }"#),
            &ctx,
        )
        .unwrap();
        assert_eq!(f.body.as_deref(), Some("ActivitySid=busy&Who=a+1"));
        assert_eq!(
            f.content_type.as_deref(),
            Some("application/x-www-form-urlencoded")
        );
    }

    #[test]
    fn urlencode_keeps_a_value_in_one_path_segment() {
        let env = environment();
        let ctx = minijinja::context! { base_url => "http://cc.test/", agent_id => "a/../../x" };
        let r = render_request(
            &env,
            &tpl(r#"url = "{{ base_url }}agents/{{ agent_id | urlencode }}/status""#),
            &ctx,
        )
        .unwrap();
        assert_eq!(r.url.path(), "/agents/a%2F..%2F..%2Fx/status");
        let ctx = minijinja::context! { base_url => "http://cc.test/", agent_id => ".." };
        let e = render_request(
            &env,
            &tpl(r#"url = "{{ base_url }}agents/{{ agent_id | urlencode }}/status""#),
            &ctx,
        )
        .unwrap_err();
        assert_eq!(e.field, "url");
    }

    /// Found by the `template` fuzz target: nested loops ran for millions of steps and filled
    /// the memory with output. Both are bounded now, and the error names the field and why.
    #[test]
    fn a_runaway_template_is_an_error_not_a_hang() {
        let env = environment();
        let ctx = minijinja::context! { base_url => "http://cc.test/" };
        let nested = "{% for a in range(61) %}{% for b in range(61) %}{% for c in range(61) %}\
                      {% for d in range(61) %}{{ base_url }}{% endfor %}{% endfor %}{% endfor %}{% endfor %}";
        let e = render_request(&env, &tpl(&format!("url = \"{nested}\"")), &ctx).unwrap_err();
        assert_eq!(e.field, "url");
        assert!(e.message.contains("steps"), "{}", e.message);
        let e = render_request(
            &env,
            &tpl(r#"url = "{{ base_url }}"
body = '{% for a in range(3) %}{{ "x" * 1000000 }}{% endfor %}'"#),
            &ctx,
        )
        .unwrap_err();
        assert_eq!(e.field, "body");
        assert!(e.message.contains("bytes"), "{}", e.message);
        // A loop of ordinary size is not refused.
        let ok = render_request(
            &env,
            &tpl(r#"url = "{{ base_url }}"
body = '[{% for a in range(2000) %}{{ a }}{% if not loop.last %},{% endif %}{% endfor %}]'"#),
            &ctx,
        )
        .unwrap();
        assert!(ok.body.unwrap().ends_with(",1999]"));
    }

    #[test]
    fn unknown_variable_and_bad_json_are_errors_naming_the_field() {
        let env = environment();
        let ctx = minijinja::context! { base_url => "http://cc.test/" };
        let e =
            render_request(&env, &tpl(r#"url = "{{ base_url }}{{ agnt_id }}""#), &ctx).unwrap_err();
        assert_eq!(e.field, "url");
        let e = render_request(
            &env,
            &tpl(r#"url = "{{ base_url }}"
body = "{ not json""#),
            &ctx,
        )
        .unwrap_err();
        assert_eq!(e.field, "body");
        let e = render_request(
            &env,
            &tpl(r#"url = "{{ base_url }}"
headers = { "X" = "{% if %}" }"#),
            &ctx,
        )
        .unwrap_err();
        assert_eq!(e.field, "headers.X");
    }
}

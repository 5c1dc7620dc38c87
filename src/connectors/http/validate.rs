//! Start-time checks of a `kind = "http"` connector; every error names its key path.

use std::collections::BTreeMap;

use super::config::{
    AuthConfig, BodyKind, HmacConfig, HttpConnectorConfig, RequestTemplate, SignedString,
    VerifyConfig,
};
use super::template::{self, SetStatusVars};
use crate::config::ConfigErrors;
use crate::connectors::config::require_secret;

/// Base URL used to render templates at validation when none is configured.
const SAMPLE_BASE_URL: &str = "http://platform.invalid/";

impl HttpConnectorConfig {
    pub(crate) fn validate(&mut self, path: &str, errs: &mut ConfigErrors) {
        self.validate_auth(path, errs);
        let base = self
            .base_url
            .as_ref()
            .map_or(SAMPLE_BASE_URL.to_owned(), |u| u.to_string());
        let env = template::environment();
        if let Some(t) = &self.set_status {
            let captures: BTreeMap<String, String> = t
                .captures
                .iter()
                .map(|c| (c.name.clone(), "sample".to_owned()))
                .collect();
            let ctx = SetStatusVars {
                base_url: &base,
                agent_id: "agent-1",
                status_id: "status-1",
                status_name: "Available",
                teams_user_id: "00000000-0000-0000-0000-000000000000",
                teams_upn: "user@example.com",
                captures: &captures,
            }
            .context();
            check_request(&env, &format!("{path}.set_status"), t, &ctx, errs);
        }
        let paged = [
            (
                "list_statuses",
                self.list_statuses.as_ref().map(|l| l.paging()),
            ),
            ("list_agents", self.list_agents.as_ref().map(|l| l.paging())),
            ("poll", self.poll.as_ref().map(|l| l.paging())),
        ];
        for (key, p) in paged {
            let Some(p) = p else { continue };
            let ctx = template::paged_context(&base, "", 0);
            check_request(&env, &format!("{path}.{key}"), p.request, &ctx, errs);
            if !p.request.captures.is_empty() {
                errs.push(
                    format!("{path}.{key}.request.captures"),
                    "captures are only used by set_status",
                );
            }
            for (k, ptr) in [
                ("items_pointer", Some(p.items_pointer)),
                ("next_pointer", p.next_pointer),
            ] {
                check_pointer(&format!("{path}.{key}.{k}"), ptr, errs);
            }
            if p.max_pages == 0 {
                errs.push(format!("{path}.{key}.max_pages"), "must be at least 1");
            }
        }
        if !self.statuses.is_empty() && self.list_statuses.is_some() {
            errs.push(
                format!("{path}.statuses"),
                "give either statuses or list_statuses, not both",
            );
        }
        if self.statuses.is_empty() && self.list_statuses.is_none() {
            errs.push(
                format!("{path}.statuses"),
                "a status catalog is required: statuses or list_statuses",
            );
        }
        if !self.agents.is_empty() && self.list_agents.is_some() {
            errs.push(
                format!("{path}.agents"),
                "give either agents or list_agents, not both",
            );
        }
        if let Some(l) = &self.list_statuses {
            for (k, p) in [
                ("id_pointer", Some(&l.id_pointer)),
                ("name_pointer", Some(&l.name_pointer)),
                ("kind_pointer", l.kind_pointer.as_ref()),
            ] {
                check_pointer(
                    &format!("{path}.list_statuses.{k}"),
                    p.map(String::as_str),
                    errs,
                );
            }
        }
        if let Some(l) = &self.list_agents {
            for (k, p) in [
                ("id_pointer", Some(&l.id_pointer)),
                ("email_pointer", l.email_pointer.as_ref()),
                ("username_pointer", l.username_pointer.as_ref()),
                ("display_name_pointer", l.display_name_pointer.as_ref()),
            ] {
                check_pointer(
                    &format!("{path}.list_agents.{k}"),
                    p.map(String::as_str),
                    errs,
                );
            }
        }
        if let Some(p) = &self.poll {
            for (k, ptr) in [
                ("agent_id_pointer", Some(&p.agent_id_pointer)),
                ("status_pointer", Some(&p.status_pointer)),
                ("timestamp_pointer", p.timestamp_pointer.as_ref()),
            ] {
                check_pointer(&format!("{path}.poll.{k}"), ptr.map(String::as_str), errs);
            }
        }
        if let Some(a) = self.poll.as_ref().and_then(|p| p.activity.as_ref()) {
            let ap = format!("{path}.poll.activity");
            check_pointer(&format!("{ap}.pointer"), Some(&a.pointer), errs);
            check_pointer(
                &format!("{ap}.channel_pointer"),
                a.channel_pointer.as_deref(),
                errs,
            );
            a.validate(&ap, errs);
        }
        if let Some(c) = &mut self.contact_events {
            let cp = format!("{path}.contact_events");
            for (k, ptr) in c.pointers() {
                check_pointer(&format!("{cp}.{k}"), ptr.map(String::as_str), errs);
            }
            c.validate(&cp, errs);
            validate_verify(&format!("{cp}.verify"), &mut c.verify, errs);
        }
        if let Some(i) = &mut self.inbound {
            let ip = format!("{path}.inbound");
            for (k, ptr) in [
                ("events_pointer", i.events_pointer.as_ref()),
                ("agent_id_pointer", Some(&i.agent_id_pointer)),
                ("status_pointer", Some(&i.status_pointer)),
                ("timestamp_pointer", i.timestamp_pointer.as_ref()),
                ("event_id_pointer", i.event_id_pointer.as_ref()),
                ("activity.pointer", i.activity.as_ref().map(|a| &a.pointer)),
                (
                    "activity.channel_pointer",
                    i.activity.as_ref().and_then(|a| a.channel_pointer.as_ref()),
                ),
            ] {
                check_pointer(&format!("{ip}.{k}"), ptr.map(String::as_str), errs);
            }
            if let Some(a) = &i.activity {
                a.validate(&format!("{ip}.activity"), errs);
            }
            validate_verify(&format!("{ip}.verify"), &mut i.verify, errs);
        }
    }

    fn validate_auth(&mut self, path: &str, errs: &mut ConfigErrors) {
        let ap = format!("{path}.auth");
        match &mut self.auth {
            AuthConfig::None => {}
            AuthConfig::Header {
                name,
                value,
                value_file,
            } => {
                check_header_name(&format!("{ap}.name"), name, errs);
                require_secret(errs, &format!("{ap}.value"), value, value_file.as_deref());
            }
            AuthConfig::Basic {
                password,
                password_file,
                ..
            } => {
                require_secret(
                    errs,
                    &format!("{ap}.password"),
                    password,
                    password_file.as_deref(),
                );
            }
            AuthConfig::Bearer { token, token_file } => {
                require_secret(errs, &format!("{ap}.token"), token, token_file.as_deref());
            }
            AuthConfig::Oauth2(o) => o.validate(&ap, errs),
        }
    }
}

/// A replay window must be covered by the signature: with `signed = "body"` the timestamp
/// header is not signed, so a captured request refused as too old would be accepted again
/// once its timestamp header is rewritten.
fn check_replay_window(vp: &str, h: &HmacConfig, errs: &mut ConfigErrors) {
    const WHY: &str = "with signed = \"body\" the timestamp header is not covered by the \
        signature, so a captured request refused as too old is accepted again once its \
        timestamp header is rewritten; use signed = \"timestamp_body\" when the platform signs \
        \"{timestamp}.{body}\", otherwise remove timestamp_header and replay_window_secs and \
        rely on event_id_pointer and [connectors.event_time] against replays";
    match h.signed {
        SignedString::Body => {
            if h.timestamp_header.is_some() {
                errs.push(
                    format!("{vp}.timestamp_header"),
                    format!("cannot bound replays: {WHY}"),
                );
            }
            if h.replay_window_secs.is_some_and(|w| w > 0) {
                errs.push(
                    format!("{vp}.replay_window_secs"),
                    format!("a replay window needs a signed timestamp: {WHY}"),
                );
            }
        }
        SignedString::TimestampBody => match &h.timestamp_header {
            Some(t) => check_header_name(&format!("{vp}.timestamp_header"), t, errs),
            None => errs.push(
                format!("{vp}.timestamp_header"),
                "is required when signed = \"timestamp_body\"",
            ),
        },
    }
}

fn check_request(
    env: &minijinja::Environment<'_>,
    path: &str,
    t: &RequestTemplate,
    ctx: &minijinja::Value,
    errs: &mut ConfigErrors,
) {
    if let Err(e) = template::render_request(env, t, ctx) {
        errs.push(format!("{path}.{}", e.field), e.message);
    }
    match t.body_kind {
        BodyKind::Form if t.body.is_some() => errs.push(
            format!("{path}.body"),
            "a form body is given by `form`, not `body`",
        ),
        BodyKind::Json | BodyKind::Raw if !t.form.is_empty() => errs.push(
            format!("{path}.form"),
            "only used with body_kind = \"form\"",
        ),
        _ => {}
    }
    if t.accepted_status_codes
        .iter()
        .any(|c| !(100..=599).contains(c))
        || t.accepted_status_codes.is_empty()
    {
        errs.push(
            format!("{path}.accepted_status_codes"),
            "must list HTTP status codes (100-599)",
        );
    }
    for (i, c) in t.captures.iter().enumerate() {
        let cp = format!("{path}.captures[{i}]");
        match (&c.header, &c.json_pointer) {
            (Some(h), None) => check_header_name(&format!("{cp}.header"), h, errs),
            (None, Some(p)) => check_pointer(&format!("{cp}.json_pointer"), Some(p), errs),
            _ => errs.push(cp, "give exactly one of header or json_pointer"),
        }
    }
}

fn check_pointer(path: &str, p: Option<&str>, errs: &mut ConfigErrors) {
    if let Some(p) = p
        && !p.is_empty()
        && !p.starts_with('/')
    {
        errs.push(
            path,
            format!("{p:?} is not a JSON pointer (it must start with '/')"),
        );
    }
}

fn check_header_name(path: &str, name: &str, errs: &mut ConfigErrors) {
    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
        errs.push(path, format!("{name:?} is not a valid header name"));
    }
}

/// Checks an inbound verification section (`…inbound.verify`, `…contact_events.verify`)
/// and resolves its secret.
fn validate_verify(vp: &str, verify: &mut VerifyConfig, errs: &mut ConfigErrors) {
    match verify {
        VerifyConfig::SharedSecret {
            header,
            secret,
            secret_file,
        } => {
            check_header_name(&format!("{vp}.header"), header, errs);
            require_secret(
                errs,
                &format!("{vp}.secret"),
                secret,
                secret_file.as_deref(),
            );
        }
        VerifyConfig::Hmac(h) => {
            check_header_name(&format!("{vp}.header"), &h.header, errs);
            require_secret(
                errs,
                &format!("{vp}.secret"),
                &mut h.secret,
                h.secret_file.as_deref(),
            );
            check_replay_window(vp, h, errs);
        }
    }
}

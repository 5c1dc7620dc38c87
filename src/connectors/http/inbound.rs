//! Inbound webhook verification (shared secret or HMAC, constant-time, replay window) and
//! extraction of events by JSON pointer.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::config::{HmacAlgorithm, InboundConfig, SignatureEncoding, SignedString, VerifyConfig};
use super::extract::{parse_timestamp, pointer_str};
use crate::connectors::{AgentEvent, InboundError};
use crate::model::{CcStatus, Source};

/// HMAC of the concatenated `parts`.
pub fn hmac_sign(alg: HmacAlgorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut m = <M as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }
    match alg {
        HmacAlgorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        HmacAlgorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, InboundError> {
    headers
        .get(name)
        .ok_or_else(|| InboundError::Unauthorized(format!("missing {name} header")))?
        .to_str()
        .map_err(|_| InboundError::Unauthorized(format!("unreadable {name} header")))
}

/// Checks that the request comes from the platform.
pub fn verify(
    cfg: &VerifyConfig,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), InboundError> {
    let bad = |m: &str| InboundError::Unauthorized(m.to_owned());
    match cfg {
        VerifyConfig::SharedSecret {
            header: h, secret, ..
        } => {
            let given = header(headers, h)?;
            let want = secret
                .as_ref()
                .map(ExposeSecret::expose_secret)
                .unwrap_or_default();
            if bool::from(given.as_bytes().ct_eq(want.as_bytes())) && !want.is_empty() {
                Ok(())
            } else {
                Err(bad("shared secret does not match"))
            }
        }
        VerifyConfig::Hmac(h) => {
            // Only a timestamp inside the signature can bound replays: with `body` the
            // timestamp header is never read.
            let ts = match h.signed {
                SignedString::TimestampBody => {
                    let name = h
                        .timestamp_header
                        .as_deref()
                        .ok_or_else(|| bad("timestamp header not configured"))?;
                    Some(header(headers, name)?)
                }
                SignedString::Body => None,
            };
            let window = h.replay_window();
            if let Some(ts) = ts
                && window > 0
            {
                let t = ts
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| bad("timestamp header is not a Unix time"))?;
                let t = if t > 100_000_000_000 { t / 1000 } else { t };
                if (now.timestamp().saturating_sub(t)).unsigned_abs() > window {
                    return Err(bad("timestamp outside the replay window"));
                }
            }
            let given = header(headers, &h.header)?.trim();
            let given = given
                .strip_prefix(h.prefix.as_str())
                .ok_or_else(|| bad("signature prefix missing"))?;
            let given = match h.encoding {
                SignatureEncoding::Hex => hex::decode(given).ok(),
                SignatureEncoding::Base64 => {
                    base64::engine::general_purpose::STANDARD.decode(given).ok()
                }
            }
            .ok_or_else(|| bad("signature is not valid hex/base64"))?;
            let key = h
                .secret
                .as_ref()
                .map(SecretString::expose_secret)
                .unwrap_or_default();
            let expected = match ts {
                None => hmac_sign(h.algorithm, key.as_bytes(), &[body]),
                Some(t) => hmac_sign(h.algorithm, key.as_bytes(), &[t.as_bytes(), b".", body]),
            };
            if bool::from(given.ct_eq(&expected)) {
                Ok(())
            } else {
                Err(bad("signature does not match"))
            }
        }
    }
}

/// The body as JSON; a form-urlencoded body (by its content type) becomes an object of its
/// fields, so pointers like `/WorkerSid` work on Twilio-style callbacks.
pub(super) fn document(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, InboundError> {
    let is_form = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let fields: serde_json::Map<String, serde_json::Value> = url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect();
        return Ok(serde_json::Value::Object(fields));
    }
    serde_json::from_slice(body)
        .map_err(|e| InboundError::Malformed(format!("body is not JSON: {e}")))
}

/// Extracts events from a verified body (JSON, or form-urlencoded by content type).
/// `resolve` maps the extracted status to the catalog.
pub fn extract(
    cfg: &InboundConfig,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    resolve: impl Fn(&str) -> CcStatus,
) -> Result<Vec<AgentEvent>, InboundError> {
    let doc = document(headers, body)?;
    let items: Vec<&serde_json::Value> = match &cfg.events_pointer {
        Some(p) => doc
            .pointer(p)
            .and_then(|v| v.as_array())
            .ok_or_else(|| InboundError::Malformed(format!("no array at {p}")))?
            .iter()
            .collect(),
        None => vec![&doc],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let missing = |what: &str, p: &str| {
                InboundError::Malformed(format!("event {i}: no {what} at {p}"))
            };
            let agent_id = pointer_str(item, &cfg.agent_id_pointer)
                .ok_or_else(|| missing("agent id", &cfg.agent_id_pointer))?;
            let status = pointer_str(item, &cfg.status_pointer)
                .ok_or_else(|| missing("status", &cfg.status_pointer))?;
            let at = match &cfg.timestamp_pointer {
                Some(p) => item
                    .pointer(p)
                    .and_then(parse_timestamp)
                    .ok_or_else(|| missing("timestamp", p))?,
                None => now,
            };
            Ok(AgentEvent {
                agent_id,
                status: resolve(&status),
                at,
                event_id: cfg
                    .event_id_pointer
                    .as_ref()
                    .and_then(|p| pointer_str(item, p)),
                source: Source::ConnectorPush,
                activity: cfg.activity.as_ref().and_then(|a| a.extract(item)),
            })
        })
        .collect()
}

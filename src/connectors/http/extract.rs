//! Reading values out of platform JSON by RFC 6901 pointer.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

/// The string at `pointer` (numbers and booleans as text); `None` when absent, null or "".
pub fn pointer_str(v: &Value, pointer: &str) -> Option<String> {
    let s = match v.pointer(pointer)? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

/// An RFC 3339 string, or Unix seconds / milliseconds (numbers above 10^11 are milliseconds).
/// `NaN` and infinities are no time at all (not 1970). Whether the time is plausible is
/// checked later against the connector's `[connectors.event_time]` bounds.
pub fn parse_timestamp(v: &Value) -> Option<DateTime<Utc>> {
    let n = match v {
        Value::String(s) => {
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.with_timezone(&Utc));
            }
            s.trim().parse::<f64>().ok()?
        }
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    if !n.is_finite() {
        return None;
    }
    let ms = if n > 1e11 { n } else { n * 1000.0 };
    Utc.timestamp_millis_opt(ms as i64).single()
}

/// The array at `pointer` ("" = the document itself).
pub fn items<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Vec<Value>> {
    if pointer.is_empty() {
        doc.as_array()
    } else {
        doc.pointer(pointer)?.as_array()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_in_three_forms() {
        let want = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(parse_timestamp(&json!("2026-01-02T03:04:05Z")), Some(want));
        assert_eq!(parse_timestamp(&json!(want.timestamp())), Some(want));
        assert_eq!(parse_timestamp(&json!(want.timestamp_millis())), Some(want));
        assert_eq!(parse_timestamp(&json!({})), None);
        assert_eq!(parse_timestamp(&json!("NaN")), None);
        assert_eq!(parse_timestamp(&json!("inf")), None);
    }

    #[test]
    fn pointer_values() {
        let v = json!({"a": {"b": 7, "c": "", "d": "x"}});
        assert_eq!(pointer_str(&v, "/a/b").as_deref(), Some("7"));
        assert_eq!(pointer_str(&v, "/a/c"), None);
        assert_eq!(pointer_str(&v, "/a/d").as_deref(), Some("x"));
    }
}

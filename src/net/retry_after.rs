//! The one `Retry-After` parser (RFC 9110 §10.2.3): either delta-seconds or an HTTP-date.
//! A date in the past means "now" (zero); anything else that is not one of the two forms is
//! ignored (`None`), so the caller falls back to its own backoff.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The wait a `Retry-After` header in `headers` asks for.
pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Duration> {
    parse(headers.get(RETRY_AFTER)?.to_str().ok()?)
}

/// The wait a `Retry-After` value asks for, measured from the current wall-clock time.
pub(crate) fn parse(value: &str) -> Option<Duration> {
    parse_at(value, Utc::now())
}

/// The wait a `Retry-After` value asks for, measured from `now`.
pub(crate) fn parse_at(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // delta-seconds = 1*DIGIT; a value too large for u64 still means "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = http_date(value, now)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// An HTTP-date in any of the three forms a recipient must accept (RFC 9110 §5.6.7).
fn http_date(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
    if let Ok(t) = NaiveDateTime::parse_from_str(value, "%a, %d %b %Y %H:%M:%S GMT") {
        return Some(t.and_utc());
    }
    // asctime: `Sun Nov  6 08:49:37 1994`
    if let Ok(t) = NaiveDateTime::parse_from_str(value, "%a %b %e %H:%M:%S %Y") {
        return Some(t.and_utc());
    }
    // obsolete RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`. The weekday is not checked, since
    // the century is not known yet.
    let (_weekday, rest) = value.split_once(", ")?;
    let t = NaiveDateTime::parse_from_str(rest, "%d-%b-%y %H:%M:%S GMT").ok()?;
    // A two-digit year that would lie more than 50 years ahead is the most recent past year
    // with the same last two digits.
    let mut year = now.year() - now.year().rem_euclid(100) + t.year().rem_euclid(100);
    if year > now.year() + 50 {
        year -= 100;
    }
    Some(t.with_year(year)?.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(parse_at("120", now()), Some(Duration::from_secs(120)));
        assert_eq!(parse_at(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_at("99999999999999999999999", now()),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn imf_fixdate_in_the_future_is_the_time_until_it() {
        assert_eq!(
            parse_at("Sun, 01 Mar 2026 12:00:30 GMT", now()),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn obsolete_date_forms_are_accepted() {
        assert_eq!(
            parse_at("Sunday, 01-Mar-26 12:01:00 GMT", now()),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_at("Sun Mar  1 12:00:05 2026", now()),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn rfc850_years_more_than_50_years_ahead_are_in_the_past() {
        // "94" is 1994, not 2094: the date is long past, so the wait is zero.
        assert_eq!(
            parse_at("Sunday, 06-Nov-94 08:49:37 GMT", now()),
            Some(Duration::ZERO)
        );
        let t = http_date("Sunday, 06-Nov-94 08:49:37 GMT", now()).unwrap();
        assert_eq!(t.year(), 1994);
        let t = http_date("Monday, 06-Nov-60 08:49:37 GMT", now()).unwrap();
        assert_eq!(t.year(), 2060);
    }

    #[test]
    fn past_dates_mean_no_wait() {
        assert_eq!(
            parse_at("Sun, 06 Nov 1994 08:49:37 GMT", now()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_is_ignored() {
        for v in [
            "",
            "soon",
            "-5",
            "1.5",
            "+3",
            "0x10",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Mon, 06 Nov 1994 08:49:37 GMT", // wrong weekday
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "2026-03-01T12:00:30Z",
        ] {
            assert_eq!(parse_at(v, now()), None, "{v:?}");
        }
    }

    #[test]
    fn reads_the_header() {
        let mut h = HeaderMap::new();
        assert_eq!(from_headers(&h), None);
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(from_headers(&h), Some(Duration::from_secs(7)));
    }
}

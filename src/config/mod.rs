//! The toolkit every configuration section uses: collected validation errors with key paths,
//! range checks, secrets given inline or by file, and redaction when printed. It knows no
//! section: each part owns its section's type and `validate`, and the whole file is assembled
//! and loaded by [`crate::app::config`].

use std::fmt;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

/// One validation error: the key path and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub path: String,
    pub message: String,
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigIssue>);

impl ConfigErrors {
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigIssue {
            path: path.into(),
            message: message.into(),
        });
    }

    /// `{prefix}.{name}`, or `name` at the top level.
    pub fn key(prefix: &str, name: &str) -> String {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        }
    }

    /// Pushes "must be at least {min}" under `{prefix}.{name}` when `value < min`.
    pub fn at_least<T: PartialOrd + fmt::Display>(
        &mut self,
        prefix: &str,
        name: &str,
        value: T,
        min: T,
    ) {
        if value < min {
            self.push(Self::key(prefix, name), format!("must be at least {min}"));
        }
    }

    /// Pushes "must be between {min} and {max}" when `value` is outside `min..=max`.
    pub fn between<T: PartialOrd + fmt::Display>(
        &mut self,
        prefix: &str,
        name: &str,
        value: T,
        min: T,
        max: T,
    ) {
        if value < min || value > max {
            self.push(
                Self::key(prefix, name),
                format!("must be between {min} and {max}"),
            );
        }
    }

    /// Pushes "must be an http(s) URL" when `url` has another scheme.
    pub fn http_url(&mut self, path: impl Into<String>, url: &url::Url) {
        if url.scheme() != "https" && url.scheme() != "http" {
            self.push(path, "must be an http(s) URL");
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ConfigIssue> {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {}", issue.path, issue.message)?;
        }
        Ok(())
    }
}

/// Reads a secret given inline or by file (not both). A file's trailing newline is trimmed.
/// Errors are pushed under `path` / `{path}_file`; returns the secret when one was found.
pub fn resolve_secret(
    errs: &mut ConfigErrors,
    path: &str,
    inline: Option<SecretString>,
    file: Option<&Path>,
) -> Option<SecretString> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            errs.push(path, format!("give either {path} or {path}_file, not both"));
            None
        }
        (Some(s), None) => {
            if s.expose_secret().is_empty() {
                errs.push(path, "is empty");
                None
            } else {
                Some(s)
            }
        }
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(text) => {
                let trimmed = text.trim_end_matches(['\n', '\r']);
                if trimmed.is_empty() {
                    errs.push(format!("{path}_file"), format!("{} is empty", f.display()));
                    None
                } else {
                    Some(SecretString::from(trimmed.to_owned()))
                }
            }
            Err(e) => {
                errs.push(
                    format!("{path}_file"),
                    format!("cannot read {}: {e}", f.display()),
                );
                None
            }
        },
        (None, None) => None,
    }
}

/// Hides every password a database URL or connection string can carry, so that printing it
/// (`check-config`, start-up errors) never shows one:
/// - the userinfo password of `scheme://user:pw@host/db`, even when it holds `/`, `#`, `?` or
///   `@` unencoded (everything before the last `@` is taken as userinfo, so a URL whose query
///   holds an `@` may show less than it could, never more);
/// - `password=` and `sslpassword=` parameters, in a URL's query or in a libpq
///   `key=value` string, quoted or not.
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut from = 0;
    for span in password_spans(url) {
        out.push_str(&url[from..span.start]);
        out.push_str("[redacted]");
        from = span.end;
    }
    out.push_str(&url[from..]);
    out
}

/// Removes from a message (a driver's error, say) every password `url` carries.
pub fn scrub_url_passwords(message: &str, url: &str) -> String {
    password_spans(url)
        .into_iter()
        .map(|span| &url[span])
        .filter(|pw| !pw.is_empty())
        .fold(message.to_owned(), |m, pw| m.replace(pw, "[redacted]"))
}

/// Where the passwords of a database URL or connection string are (see [`redact_url`]), in
/// order and not overlapping.
fn password_spans(url: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut params_from = 0;
    if let Some(i) = url.find("://") {
        let authority = i + 3;
        if let Some(at) = url[authority..].rfind('@').map(|at| authority + at) {
            if let Some(colon) = url[authority..at].find(':') {
                spans.push(authority + colon + 1..at);
            }
            params_from = at;
        }
    }
    const KEYS: [&str; 2] = ["sslpassword", "password"];
    let lower = url.to_ascii_lowercase();
    let bytes = url.as_bytes();
    let mut i = params_from;
    while i < url.len() {
        let at_boundary = i == 0
            || matches!(bytes[i - 1], b'?' | b'&' | b';' | b'/')
            || bytes[i - 1].is_ascii_whitespace();
        let key_end = KEYS
            .iter()
            .find(|k| at_boundary && lower[i..].starts_with(*k))
            .map(|k| i + k.len())
            .filter(|&end| lower[end..].trim_start().starts_with('='));
        let Some(key_end) = key_end else {
            i += url[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let eq = key_end + (url[key_end..].len() - url[key_end..].trim_start().len());
        let start = eq + 1 + (url[eq + 1..].len() - url[eq + 1..].trim_start().len());
        let end = start + value_len(&url[start..]);
        spans.push(start..end);
        i = end.max(i + 1);
    }
    spans
}

/// Length of a parameter value: a quoted libpq value (`'…'`, with `\'` escapes) up to its
/// closing quote, otherwise up to the next `&` or whitespace.
fn value_len(v: &str) -> usize {
    let bytes = v.as_bytes();
    if bytes.first() == Some(&b'\'') {
        let mut j = 1;
        while j < bytes.len() {
            match bytes[j] {
                b'\\' => j += 2,
                b'\'' => return j + 1,
                _ => j += 1,
            }
        }
        return v.len();
    }
    v.find(|c: char| c == '&' || c.is_whitespace())
        .unwrap_or(v.len())
}

/// Serializes an optional secret as `[redacted]` when present.
pub fn serialize_redacted_opt<S: serde::Serializer>(
    v: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("[redacted]"),
        None => s.serialize_none(),
    }
}

/// Serializes a URL that may carry a password with the password redacted.
pub fn serialize_redacted_url<S: serde::Serializer>(
    v: &SecretString,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(v.expose_secret()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://bridge:pw@db:5432/pb"),
            "postgres://bridge:[redacted]@db:5432/pb"
        );
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
        assert_eq!(
            redact_url("postgres://bridge@db/pb?sslmode=require"),
            "postgres://bridge@db/pb?sslmode=require"
        );
    }

    /// Every form a password can take in `store.url`: unencoded `/`, `#`, `?` and `@` in the
    /// userinfo, query parameters, libpq key/value strings (quoted or not).
    #[test]
    fn database_passwords_are_redacted_in_every_form() {
        let cases = [
            (
                "postgres://u:s3cr/et@db/pb",
                "postgres://u:[redacted]@db/pb",
            ),
            (
                "postgres://u:s3cr#et@db/pb",
                "postgres://u:[redacted]@db/pb",
            ),
            (
                "postgres://u:a?b@c@db:5432/pb",
                "postgres://u:[redacted]@db:5432/pb",
            ),
            (
                "postgres://u@db/pb?sslmode=require&password=s3cret",
                "postgres://u@db/pb?sslmode=require&password=[redacted]",
            ),
            (
                "postgres://db/pb?PASSWORD=s3cret&application_name=x",
                "postgres://db/pb?PASSWORD=[redacted]&application_name=x",
            ),
            (
                "postgres://db/pb?sslpassword=s3cret",
                "postgres://db/pb?sslpassword=[redacted]",
            ),
            (
                "host=db user=u password=s3cret dbname=pb",
                "host=db user=u password=[redacted] dbname=pb",
            ),
            (
                "host=db password = 's3 c\\'ret' dbname=pb",
                "host=db password = [redacted] dbname=pb",
            ),
        ];
        for (url, shown) in cases {
            let got = redact_url(url);
            assert_eq!(got, shown, "{url}");
            assert!(!got.contains("s3"), "{got}");
        }
        let message = "authentication failed for s3cr/et";
        assert_eq!(
            scrub_url_passwords(message, "postgres://u:s3cr/et@db/pb"),
            "authentication failed for [redacted]"
        );
        // Look-alikes are left alone.
        assert_eq!(
            redact_url("postgres://u@db/pb?passwordless=1"),
            "postgres://u@db/pb?passwordless=1"
        );
    }

    #[test]
    fn range_checks_name_the_key() {
        let mut errs = ConfigErrors::default();
        errs.at_least("graph", "budget", 0u32, 1);
        errs.at_least("graph", "fine", 3u32, 1);
        errs.between("", "shard_size", 651u32, 1, 650);
        let shown = errs.to_string();
        assert_eq!(
            shown,
            "graph.budget: must be at least 1\nshard_size: must be between 1 and 650"
        );
    }

    #[test]
    fn inline_and_file_secret_together_is_an_error() {
        let mut errs = ConfigErrors::default();
        let got = resolve_secret(
            &mut errs,
            "api.bearer_token",
            Some(SecretString::from("a")),
            Some(Path::new("/tmp/x")),
        );
        assert!(got.is_none());
        assert!(errs.to_string().contains("not both"), "{errs}");
    }
}

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

/// `postgres://user:pw@host/db` → `postgres://user:[redacted]@host/db`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string().replacen(":REDACTED@", ":[redacted]@", 1)
        }
        _ => url.to_owned(),
    }
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

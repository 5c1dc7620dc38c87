//! Re-hosted attachments: files fetched from one side are kept in `messaging.attachment_dir`
//! and served by the daemon at `/messaging/files/{token}/{name}?expires=…&sig=…`, where the
//! other side fetches them.
//!
//! The token is an HMAC of the file's origin under `messaging.url_signing_key` (unguessable
//! without the key, and the same for a retried hop, so a retry rewrites instead of piling up
//! copies); `sig` is an HMAC of token and expiry, checked in constant time; a link past its
//! expiry is refused, and so is the file once its own expiry passed (pruned on a timer). Every
//! refusal looks the same (`404`), so a prober learns nothing.
//!
//! Files live on the local disk: with several replicas, the directory must be shared (or
//! the replica Genesys reaches must be the one that fetched). No S3-compatible store is built.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What is kept beside each file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileMeta {
    pub filename: String,
    pub content_type: String,
    pub expires_at: DateTime<Utc>,
}

/// Why a file cannot be kept or served.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Wrong or expired link, or no such file (served as a plain 404).
    #[error("no such file")]
    NotFound,
    #[error("attachment storage: {0}")]
    Io(#[from] std::io::Error),
}

/// The attachment store.
#[derive(Clone)]
pub struct FileHost {
    dir: PathBuf,
    key: Vec<u8>,
    /// `{server.public_url}/messaging/files`
    base: String,
    ttl: chrono::Duration,
}

impl std::fmt::Debug for FileHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileHost")
            .field("dir", &self.dir)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Tokens are 43 base64url characters (a whole HMAC-SHA256).
const TOKEN_LEN: usize = 43;

impl FileHost {
    /// `key` is the validated base64 signing key; `public_url` the daemon's public URL.
    pub fn new(
        dir: PathBuf,
        key: &SecretString,
        public_url: &str,
        ttl: std::time::Duration,
    ) -> Result<Self, FileError> {
        let key = base64::engine::general_purpose::STANDARD
            .decode(key.expose_secret().trim())
            .map_err(|_| std::io::Error::other("messaging.url_signing_key is not base64"))?;
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            key,
            base: format!("{}/messaging/files", public_url.trim_end_matches('/')),
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1)),
        })
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        for p in parts {
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        m
    }

    /// Keeps `bytes` (from `origin`, e.g. a message and content id) and returns the signed
    /// link, valid until `now + ttl`.
    pub async fn put(
        &self,
        origin: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<String, FileError> {
        let token = B64URL.encode(
            self.mac(&[b"file", origin.as_bytes()])
                .finalize()
                .into_bytes(),
        );
        let meta = FileMeta {
            filename: safe_name(filename),
            content_type: content_type.to_owned(),
            expires_at: now + self.ttl,
        };
        let path = self.dir.join(&token);
        let tmp = self.dir.join(format!("{token}.tmp"));
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::rename(&tmp, &path).await?;
        let meta_json = serde_json::to_vec(&meta).map_err(std::io::Error::other)?;
        tokio::fs::write(self.dir.join(format!("{token}.json")), meta_json).await?;
        Ok(self.link(&token, &meta))
    }

    fn link(&self, token: &str, meta: &FileMeta) -> String {
        let expires = meta.expires_at.timestamp();
        let sig = self.signature(token, expires);
        let name: String = url::form_urlencoded::byte_serialize(meta.filename.as_bytes()).collect();
        format!("{}/{token}/{name}?expires={expires}&sig={sig}", self.base)
    }

    fn signature(&self, token: &str, expires: i64) -> String {
        B64URL.encode(
            self.mac(&[b"link", token.as_bytes(), expires.to_string().as_bytes()])
                .finalize()
                .into_bytes(),
        )
    }

    /// The file behind a link, when the link is genuine and neither it nor the file expired.
    pub async fn open(
        &self,
        token: &str,
        expires: i64,
        sig: &str,
        now: DateTime<Utc>,
    ) -> Result<(FileMeta, Vec<u8>), FileError> {
        let well_formed = token.len() == TOKEN_LEN
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(FileError::NotFound);
        }
        let given = B64URL.decode(sig).map_err(|_| FileError::NotFound)?;
        self.mac(&[b"link", token.as_bytes(), expires.to_string().as_bytes()])
            .verify_slice(&given)
            .map_err(|_| FileError::NotFound)?;
        if expires <= now.timestamp() {
            return Err(FileError::NotFound);
        }
        let meta: FileMeta = match tokio::fs::read(self.dir.join(format!("{token}.json"))).await {
            Ok(b) => serde_json::from_slice(&b).map_err(|_| FileError::NotFound)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FileError::NotFound),
            Err(e) => return Err(e.into()),
        };
        if meta.expires_at <= now {
            return Err(FileError::NotFound);
        }
        match tokio::fs::read(self.dir.join(token)).await {
            Ok(bytes) => Ok((meta, bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(FileError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes files whose expiry passed; returns how many.
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<usize, FileError> {
        let mut gone = 0;
        let mut dir = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = dir.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(token) = name.strip_suffix(".json") else {
                continue;
            };
            let expired = match tokio::fs::read(entry.path()).await {
                Ok(b) => {
                    serde_json::from_slice::<FileMeta>(&b).map_or(true, |m| m.expires_at <= now)
                }
                Err(_) => false,
            };
            if expired {
                let _ = tokio::fs::remove_file(self.dir.join(token)).await;
                let _ = tokio::fs::remove_file(entry.path()).await;
                gone += 1;
            }
        }
        Ok(gone)
    }
}

/// A file name safe to show and to put in a header: no path, no control or quote characters.
fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(200)
        .collect();
    if clean.trim().is_empty() {
        "attachment".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(dir: &tempfile::TempDir) -> FileHost {
        let key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
        FileHost::new(
            dir.path().to_owned(),
            &key,
            "https://bridge.example/",
            std::time::Duration::from_secs(600),
        )
        .unwrap()
    }

    fn parts(link: &str) -> (String, i64, String) {
        let u = url::Url::parse(link).unwrap();
        let token = u.path_segments().unwrap().nth(2).unwrap().to_owned();
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        (token, q["expires"].parse().unwrap(), q["sig"].clone())
    }

    #[tokio::test]
    async fn a_link_opens_until_it_expires_and_only_as_signed() {
        let dir = tempfile::tempdir().unwrap();
        let h = host(&dir);
        let now = Utc::now();
        let link = h
            .put("m1/a", "../x\".png", "image/png", b"PNG", now)
            .await
            .unwrap();
        assert!(link.starts_with("https://bridge.example/messaging/files/"));
        let (token, expires, sig) = parts(&link);
        let (meta, bytes) = h.open(&token, expires, &sig, now).await.unwrap();
        assert_eq!(
            (meta.filename.as_str(), bytes.as_slice()),
            ("x.png", &b"PNG"[..])
        );
        // a later expiry with the old signature, another token, a bad signature: refused
        assert!(h.open(&token, expires + 3600, &sig, now).await.is_err());
        let last = if token.ends_with('A') { 'B' } else { 'A' };
        let other = format!("{}{last}", &token[..TOKEN_LEN - 1]);
        assert!(h.open(&other, expires, &sig, now).await.is_err());
        assert!(h.open(&token, expires, "AAAA", now).await.is_err());
        assert!(
            h.open("../../etc/passwd", expires, &sig, now)
                .await
                .is_err()
        );
        // expired
        let later = now + chrono::Duration::seconds(601);
        assert!(h.open(&token, expires, &sig, later).await.is_err());
        assert_eq!(h.prune(later).await.unwrap(), 1);
        assert!(h.open(&token, expires, &sig, now).await.is_err());
    }

    #[tokio::test]
    async fn the_same_origin_gets_the_same_token() {
        let dir = tempfile::tempdir().unwrap();
        let h = host(&dir);
        let now = Utc::now();
        let a = parts(&h.put("m1/a", "a", "text/plain", b"1", now).await.unwrap()).0;
        let b = parts(&h.put("m1/a", "a", "text/plain", b"1", now).await.unwrap()).0;
        let c = parts(&h.put("m1/b", "a", "text/plain", b"1", now).await.unwrap()).0;
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}

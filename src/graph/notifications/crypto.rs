//! Rich-notification crypto: Graph encrypts each item's resource data with a fresh AES key and
//! encrypts that key with the public key of a certificate we uploaded. Decryption order
//! (reference/graph.md §3.7): pick the private key by `encryptionCertificateId`, RSA-OAEP-SHA1
//! the `dataKey`, verify HMAC-SHA256(key, data) in constant time, and only then AES-256-CBC
//! (PKCS7, IV = first 16 key bytes) the `data`. The RSA private-key operation (the cost of a
//! rich notification: about 1 ms of CPU in pure Rust) is done by `aws-lc-rs`, the library
//! rustls already links, about 3.5 times faster; keys and certificates are read and checked
//! with the RustCrypto crates, which also do HMAC and AES.
//!
//! [`Decryptor::decrypt_batch`] opens a whole batch: items sharing an encrypted `dataKey` cost
//! one RSA operation, and the rest are spread over the machine's cores.

use std::collections::HashMap;
use std::path::Path;

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use x509_cert::der::{Decode, DecodePem, Encode};

type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Why an encrypted item could not be opened. Callers drop the item and count the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("no private key for encryption certificate id")]
    UnknownCertificate,
    #[error("field is not valid base64")]
    Base64,
    #[error("data key cannot be decrypted")]
    DataKey,
    #[error("data signature does not match")]
    Signature,
    #[error("data cannot be decrypted")]
    Data,
}

/// Why a certificate or key file could not be loaded (reported at start).
#[derive(Debug, thiserror::Error)]
pub enum KeyLoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Parse { path: String, reason: PemError },
}

/// What is wrong with the content of a PEM key or certificate.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("not an RSA private key: {0}")]
    PrivateKey(rsa::pkcs8::Error),
    #[error("not a PEM certificate: {0}")]
    Certificate(x509_cert::der::Error),
    #[error("the certificate holds no RSA public key")]
    PublicKey,
    #[error("private key does not belong to the certificate")]
    KeyMismatch,
    #[error("unsupported RSA key (2,048 to 8,192 bits are accepted)")]
    Unsupported,
}

/// The `encryptedContent` object of a rich notification.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptedContent {
    pub data: String,
    pub data_key: String,
    pub data_signature: String,
    pub encryption_certificate_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_certificate_thumbprint: Option<String>,
}

/// One certificate we hand to Graph: its id, the public certificate (base64 DER, as Graph
/// wants it in `encryptionCertificate`) and the private key that opens what Graph sends.
pub struct NotificationKey {
    pub id: String,
    pub certificate_b64: String,
    private_key: OaepPrivateDecryptingKey,
}

impl std::fmt::Debug for NotificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl NotificationKey {
    /// Loads a PEM certificate and its PEM private key (PKCS#8 or PKCS#1).
    pub fn load(id: &str, certificate: &Path, private_key: &Path) -> Result<Self, KeyLoadError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| KeyLoadError::Read {
                path: p.display().to_string(),
                source,
            })
        };
        let parse_err = |p: &Path| {
            let path = p.display().to_string();
            move |reason| KeyLoadError::Parse { path, reason }
        };
        let cert_pem = read(certificate)?;
        let key_pem = read(private_key)?;
        let key = parse_private_key(&key_pem).map_err(parse_err(private_key))?;
        let cert_der = certificate_der(&cert_pem).map_err(parse_err(certificate))?;
        let public = public_key_from_certificate_der(&cert_der)
            .map_err(|_| PemError::PublicKey)
            .map_err(parse_err(certificate))?;
        if public != key.to_public_key() {
            return Err(parse_err(private_key)(PemError::KeyMismatch));
        }
        Self::new(id, B64.encode(cert_der), &key).map_err(parse_err(private_key))
    }

    pub fn new(
        id: &str,
        certificate_b64: String,
        private_key: &RsaPrivateKey,
    ) -> Result<Self, PemError> {
        let der = private_key
            .to_pkcs8_der()
            .map_err(|_| PemError::Unsupported)?;
        let key = PrivateDecryptingKey::from_pkcs8(der.as_bytes())
            .ok()
            .and_then(|k| OaepPrivateDecryptingKey::new(k).ok())
            .ok_or(PemError::Unsupported)?;
        Ok(Self {
            id: id.to_owned(),
            certificate_b64,
            private_key: key,
        })
    }

    /// RSA-OAEP-SHA1 (MGF1-SHA1, no label) of an encrypted `dataKey`: the AES/HMAC key.
    fn unwrap_data_key(&self, data_key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = vec![0u8; self.private_key.min_output_size()];
        let n = self
            .private_key
            .decrypt(&OAEP_SHA1_MGF1SHA1, data_key, &mut out, None)
            .map_err(|_| CryptoError::DataKey)?
            .len();
        out.truncate(n);
        Ok(out)
    }
}

/// Parses a PEM RSA private key, PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA ...`).
pub fn parse_private_key(pem: &str) -> Result<RsaPrivateKey, PemError> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    RsaPrivateKey::from_pkcs8_pem(pem).or_else(|pkcs8| {
        // Report the PKCS#8 reason: that is the format `openssl req -newkey` writes.
        RsaPrivateKey::from_pkcs1_pem(pem).map_err(|_| PemError::PrivateKey(pkcs8))
    })
}

fn certificate_der(pem: &str) -> Result<Vec<u8>, PemError> {
    x509_cert::Certificate::from_pem(pem.as_bytes())
        .and_then(|cert| cert.to_der())
        .map_err(PemError::Certificate)
}

/// The RSA public key inside a DER X.509 certificate.
pub fn public_key_from_certificate_der(der: &[u8]) -> Result<RsaPublicKey, CryptoError> {
    let cert =
        x509_cert::Certificate::from_der(der).map_err(|_| CryptoError::UnknownCertificate)?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| CryptoError::UnknownCertificate)?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|_| CryptoError::UnknownCertificate)
}

/// The configured certificates (at most two, for rotation), chosen by id.
#[derive(Debug, Default)]
pub struct Decryptor {
    keys: Vec<NotificationKey>,
}

impl Decryptor {
    pub fn new(keys: Vec<NotificationKey>) -> Self {
        Self { keys }
    }

    /// The certificate new subscriptions use (the first configured).
    pub fn current(&self) -> Option<&NotificationKey> {
        self.keys.first()
    }

    fn key_for(&self, content: &EncryptedContent) -> Result<&NotificationKey, CryptoError> {
        self.keys
            .iter()
            .find(|k| {
                bool::from(
                    k.id.as_bytes()
                        .ct_eq(content.encryption_certificate_id.as_bytes()),
                )
            })
            .ok_or(CryptoError::UnknownCertificate)
    }

    /// Verifies and decrypts one item; returns the plaintext (UTF-8 JSON of the resource).
    pub fn decrypt(&self, content: &EncryptedContent) -> Result<Vec<u8>, CryptoError> {
        let key = self.key_for(content)?;
        let data_key = B64
            .decode(&content.data_key)
            .map_err(|_| CryptoError::Base64)?;
        let sym = key.unwrap_data_key(&data_key)?;
        open_data(&sym, content)
    }

    /// Verifies and decrypts a batch, in order. An encrypted `dataKey` that several items
    /// carry is decrypted once (only within the batch: nothing secret outlives it), and the
    /// distinct keys are decrypted on up to `threads` threads (of the calling blocking
    /// context: call it off the async runtime).
    pub fn decrypt_batch(
        &self,
        contents: &[&EncryptedContent],
        threads: usize,
    ) -> Vec<Result<Vec<u8>, CryptoError>> {
        // The distinct (certificate, dataKey) pairs, each with the key that opens it.
        let mut slot_of: HashMap<(&str, &str), usize> = HashMap::new();
        let mut jobs: Vec<(&NotificationKey, &str)> = Vec::new();
        let slots: Vec<Result<usize, CryptoError>> = contents
            .iter()
            .map(|c| {
                let key = self.key_for(c)?;
                let id = (c.encryption_certificate_id.as_str(), c.data_key.as_str());
                Ok(*slot_of.entry(id).or_insert_with(|| {
                    jobs.push((key, c.data_key.as_str()));
                    jobs.len() - 1
                }))
            })
            .collect();
        let unwrap = |(key, data_key): &(&NotificationKey, &str)| {
            let bytes = B64.decode(data_key).map_err(|_| CryptoError::Base64)?;
            key.unwrap_data_key(&bytes)
        };
        let threads = threads.clamp(1, jobs.len().max(1));
        let syms: Vec<Result<Vec<u8>, CryptoError>> = if threads == 1 {
            jobs.iter().map(unwrap).collect()
        } else {
            let per = jobs.len().div_ceil(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = jobs
                    .chunks(per)
                    .map(|part| s.spawn(move || part.iter().map(unwrap).collect::<Vec<_>>()))
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().expect("decryption thread"))
                    .collect()
            })
        };
        contents
            .iter()
            .zip(slots)
            .map(|(c, slot)| {
                let sym = syms[slot?].as_ref().map_err(Clone::clone)?;
                open_data(sym, c)
            })
            .collect()
    }
}

/// Checks the item's HMAC-SHA256 with the unwrapped key, then AES-256-CBC decrypts its data.
fn open_data(sym: &[u8], content: &EncryptedContent) -> Result<Vec<u8>, CryptoError> {
    let data = B64.decode(&content.data).map_err(|_| CryptoError::Base64)?;
    let signature = B64
        .decode(&content.data_signature)
        .map_err(|_| CryptoError::Base64)?;
    if sym.len() != 32 {
        return Err(CryptoError::DataKey);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(sym).map_err(|_| CryptoError::DataKey)?;
    mac.update(&data);
    // verify_slice compares in constant time.
    mac.verify_slice(&signature)
        .map_err(|_| CryptoError::Signature)?;
    let dec = Aes256CbcDec::new_from_slices(sym, &sym[..16]).map_err(|_| CryptoError::Data)?;
    dec.decrypt_padded_vec_mut::<Pkcs7>(&data)
        .map_err(|_| CryptoError::Data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::notifications::NotificationCollection;

    /// Made with the openssl CLI alone; `make.sh` and README.md there say how.
    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/rich-notification")
            .join(name)
    }

    fn key(name: &str) -> NotificationKey {
        NotificationKey::load(
            &format!("fixture-{name}"),
            &fixture(&format!("{name}.cert.pem")),
            &fixture(&format!("{name}.key.pem")),
        )
        .expect("fixture key loads")
    }

    /// The two `encryptedContent` objects of the fixture batch (for `current`, then `next`).
    fn contents() -> [EncryptedContent; 2] {
        let text = std::fs::read_to_string(fixture("notification.json")).unwrap();
        let batch: NotificationCollection = serde_json::from_str(&text).unwrap();
        let mut items = batch
            .value
            .into_iter()
            .map(|n| n.encrypted_content.unwrap());
        [items.next().unwrap(), items.next().unwrap()]
    }

    fn plaintext(i: usize) -> Vec<u8> {
        std::fs::read(fixture(&format!("item-{i}.plaintext.json"))).unwrap()
    }

    #[test]
    fn known_answer_from_openssl_decrypts_with_either_rotation_key() {
        let d = Decryptor::new(vec![key("current"), key("next")]);
        let [current, next] = contents();
        assert_eq!(d.decrypt(&current).unwrap(), plaintext(0));
        assert_eq!(d.decrypt(&next).unwrap(), plaintext(1));
    }

    #[test]
    fn known_answer_with_a_tampered_hmac_is_refused() {
        let d = Decryptor::new(vec![key("current")]);
        let [good, _] = contents();
        let mut signature = B64.decode(&good.data_signature).unwrap();
        signature[31] ^= 0x01;
        let c = EncryptedContent {
            data_signature: B64.encode(&signature),
            ..good.clone()
        };
        assert_eq!(d.decrypt(&c), Err(CryptoError::Signature));
        let c = EncryptedContent {
            data_signature: B64.encode(&signature[..16]),
            ..good.clone()
        };
        assert_eq!(d.decrypt(&c), Err(CryptoError::Signature), "truncated");
        let mut data = B64.decode(&good.data).unwrap();
        data[0] ^= 0x01;
        let c = EncryptedContent {
            data: B64.encode(&data),
            ..good
        };
        assert_eq!(
            d.decrypt(&c),
            Err(CryptoError::Signature),
            "the signature covers the ciphertext"
        );
    }

    #[test]
    fn known_answer_with_a_wrong_key_or_bad_field_is_refused() {
        let d = Decryptor::new(vec![key("current")]);
        let [current, next] = contents();
        assert_eq!(
            d.decrypt(&next),
            Err(CryptoError::UnknownCertificate),
            "the next certificate is not configured"
        );
        let c = EncryptedContent {
            encryption_certificate_id: current.encryption_certificate_id.clone(),
            ..next
        };
        assert_eq!(
            d.decrypt(&c),
            Err(CryptoError::DataKey),
            "encrypted to another key"
        );
        let c = EncryptedContent {
            data: "***".into(),
            ..current
        };
        assert_eq!(d.decrypt(&c), Err(CryptoError::Base64));
    }

    #[test]
    fn a_batch_opens_like_single_items_in_order_with_repeated_keys_and_failures_in_place() {
        let d = Decryptor::new(vec![key("current"), key("next")]);
        let [current, next] = contents();
        let unknown = EncryptedContent {
            encryption_certificate_id: "nobody".into(),
            ..current.clone()
        };
        let mut signature = B64.decode(&current.data_signature).unwrap();
        signature[0] ^= 0x01;
        let tampered = EncryptedContent {
            data_signature: B64.encode(&signature),
            ..current.clone()
        };
        let batch = [&current, &next, &unknown, &current, &tampered, &next];
        for threads in [1, 2, 8] {
            let got = d.decrypt_batch(&batch, threads);
            assert_eq!(
                got,
                vec![
                    Ok(plaintext(0)),
                    Ok(plaintext(1)),
                    Err(CryptoError::UnknownCertificate),
                    Ok(plaintext(0)),
                    Err(CryptoError::Signature),
                    Ok(plaintext(1)),
                ],
                "{threads} threads"
            );
        }
        assert!(d.decrypt_batch(&[], 2).is_empty());
    }

    #[test]
    fn key_must_match_certificate() {
        let err =
            NotificationKey::load("x", &fixture("current.cert.pem"), &fixture("next.key.pem"))
                .unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
        let err = NotificationKey::load(
            "x",
            &fixture("current.key.pem"),
            &fixture("current.key.pem"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not a PEM certificate"), "{err}");
    }
}

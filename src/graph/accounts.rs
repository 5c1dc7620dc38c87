//! Delegated sync accounts: the device-code sign-in, refresh tokens encrypted at rest
//! (AES-256-GCM) and rotated on every use, and delegated access tokens for the subscription
//! manager.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

/// Encrypts refresh tokens with `graph.token_encryption_key`. The account id is bound as
/// associated data, so a ciphertext cannot be moved to another account.
#[derive(Clone)]
pub struct TokenCipher {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCipher")
    }
}

/// Nonce length of AES-GCM; the nonce is stored before the ciphertext.
const NONCE_LEN: usize = 12;

impl TokenCipher {
    /// From the base64 of a 32-byte key.
    pub fn from_secret(key: &SecretString) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(key.expose_secret().trim())
            .map_err(|_| "not base64".to_owned())?;
        if bytes.len() != 32 {
            return Err("not 32 bytes".into());
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| "bad key".to_owned())?;
        Ok(Self { cipher })
    }

    pub fn encrypt(&self, account_id: &str, token: &SecretString) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: token.expose_secret().as_bytes(),
                    aad: account_id.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short token cannot fail");
        let mut out = nonce.to_vec();
        out.extend(ct);
        out
    }

    pub fn decrypt(&self, account_id: &str, data: &[u8]) -> Result<SecretString, String> {
        if data.len() <= NONCE_LEN {
            return Err("ciphertext too short".into());
        }
        let (nonce, ct) = data.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: account_id.as_bytes(),
                },
            )
            .map_err(|_| "cannot decrypt (wrong key or tampered data)".to_owned())?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| "decrypted token is not UTF-8".into())
    }
}

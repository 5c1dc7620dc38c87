//! Rich-notification encryption as Graph applies it (reference/graph.md §3.7), for the
//! simulated tenant and the benchmarks: a fresh AES-256 key per item, AES-256-CBC with PKCS7
//! padding and IV = the key's first 16 bytes, HMAC-SHA256 of the ciphertext under the same
//! key, and the key itself RSA-OAEP(SHA-1) encrypted to the subscription's certificate.
//!
//! The production decryption is not checked against this function but against a fixture made
//! with the `openssl` CLI (`tests/fixtures/rich-notification/`); the unit test here only shows
//! that what the simulator sends, production can open.

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rsa::{Oaep, RsaPublicKey};
use sha2::Sha256;

use crate::graph::notifications::crypto::EncryptedContent;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;

/// Encrypts `plaintext` for the holder of `public_key`'s private key, as Graph does.
pub fn encrypt_for_notification(
    public_key: &RsaPublicKey,
    certificate_id: &str,
    plaintext: &[u8],
) -> Result<EncryptedContent, rsa::Error> {
    let mut sym = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut sym);
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&sym[..16]);
    let data =
        Aes256CbcEnc::new(&sym.into(), &iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut mac = Hmac::<Sha256>::new_from_slice(&sym).expect("HMAC takes a key of any length");
    mac.update(&data);
    let signature = mac.finalize().into_bytes();
    let data_key = public_key.encrypt(&mut rand::thread_rng(), Oaep::new::<sha1::Sha1>(), &sym)?;
    Ok(EncryptedContent {
        data: B64.encode(data),
        data_key: B64.encode(data_key),
        data_signature: B64.encode(signature),
        encryption_certificate_id: certificate_id.to_owned(),
        encryption_certificate_thumbprint: None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::graph::notifications::crypto::{
        CryptoError, Decryptor, NotificationKey, public_key_from_certificate_der,
    };

    fn key(n: u8, id: &str) -> NotificationKey {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph");
        NotificationKey::load(
            id,
            &dir.join(format!("notify-cert-{n}.pem")),
            &dir.join(format!("notify-key-{n}.pem")),
        )
        .expect("fixture loads")
    }

    fn public(k: &NotificationKey) -> RsaPublicKey {
        public_key_from_certificate_der(&B64.decode(&k.certificate_b64).unwrap()).unwrap()
    }

    #[test]
    fn production_opens_what_the_simulator_sends() {
        let (a, b) = (key(1, "cert-a"), key(2, "cert-b"));
        let (pa, pb) = (public(&a), public(&b));
        let d = Decryptor::new(vec![a, b]);
        let ca = encrypt_for_notification(&pa, "cert-a", b"{\"x\":1}").unwrap();
        let cb = encrypt_for_notification(&pb, "cert-b", b"{\"y\":2}").unwrap();
        assert_eq!(d.decrypt(&ca).unwrap(), b"{\"x\":1}");
        assert_eq!(d.decrypt(&cb).unwrap(), b"{\"y\":2}");
        assert_ne!(
            ca.data_key,
            encrypt_for_notification(&pa, "cert-a", b"{}")
                .unwrap()
                .data_key
        );
        let mut wrong = cb;
        wrong.encryption_certificate_id = "cert-a".into();
        assert_eq!(d.decrypt(&wrong), Err(CryptoError::DataKey));
    }
}

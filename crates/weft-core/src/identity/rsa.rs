//! An actor's RSA-2048 key for HTTP signatures (docs/architecture.md §9): what the
//! fediverse verifies today (draft-cavage `rsa-sha256`, RFC 9421
//! `rsa-v1_5-sha256`). It signs requests only, never the log: an actor's
//! Ed25519 keys sign its activities.
//!
//! Backed by aws-lc-rs (constant-time, maintained); not the `rsa` crate
//! (RUSTSEC-2023-0071). Secret material never leaves this type except as
//! PKCS#8 for the key store.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;

/// Why an RSA key cannot be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum RsaError {
    #[error("cannot generate an RSA key")]
    Generate,
    #[error("the stored RSA key is not valid PKCS#8: {0}")]
    Rejected(String),
    #[error("cannot sign with the RSA key")]
    Sign,
}

/// The fragment of an actor's HTTP-signature key id (`{actor}#main-key`,
/// as Mastodon names its keys).
pub const FRAGMENT: &str = "main-key";

/// The HTTP-signature key id of `actor`.
pub fn key_id(actor: &str) -> String {
    format!("{actor}#{FRAGMENT}")
}

/// A secret RSA key. `Debug` shows only its size.
pub struct RsaKey {
    pair: KeyPair,
    pkcs8: Vec<u8>,
    spki: Vec<u8>,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKey")
            .field("bits", &(self.pair.public_modulus_len() * 8))
            .finish_non_exhaustive()
    }
}

impl RsaKey {
    /// A new RSA-2048 key.
    pub fn generate() -> Result<Self, RsaError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| RsaError::Generate)?;
        Self::from_pair(pair)
    }

    /// Reads an unencrypted PKCS#8 RSA key (2048 to 8192 bits).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, RsaError> {
        let pair = KeyPair::from_pkcs8(der).map_err(|e| RsaError::Rejected(e.to_string()))?;
        Self::from_pair(pair)
    }

    fn from_pair(pair: KeyPair) -> Result<Self, RsaError> {
        let encode = |_| RsaError::Rejected("cannot encode the key".into());
        let pkcs8 = pair.as_der().map_err(encode)?.as_ref().to_vec();
        let spki = pair
            .public_key()
            .as_der()
            .map_err(encode)?
            .as_ref()
            .to_vec();
        Ok(Self { pair, pkcs8, spki })
    }

    /// The secret key as PKCS#8 DER, for the key store only.
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        self.pkcs8.clone()
    }

    /// The public key as SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    /// The public key as an actor document's `publicKeyPem`: a PEM
    /// `PUBLIC KEY` (SubjectPublicKeyInfo) in 64-character lines, as
    /// Mastodon publishes it.
    pub fn public_key_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki)
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, RsaError> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| RsaError::Sign)?;
        Ok(signature)
    }
}

/// `der` as PEM with `label`, in 64-character lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    let text = data_encoding::BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_pkcs8_and_verifies() {
        let key = RsaKey::generate().expect("a key");
        let again = RsaKey::from_pkcs8_der(&key.to_pkcs8_der()).expect("parsed");
        assert_eq!(key.public_key_der(), again.public_key_der());
        let signature = again.sign(b"hello").expect("signed");
        let public = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            key.public_key_der(),
        );
        assert!(public.verify(b"hello", &signature).is_ok());
        assert!(public.verify(b"hellp", &signature).is_err());
        let pem = key.public_key_pem();
        assert!(pem.starts_with(
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
        ));
        assert!(pem.ends_with("-----END PUBLIC KEY-----\n"));
        assert!(!format!("{key:?}").contains("BEGIN"));
    }
}

//! Ed25519 public keys as Multikey (`z` + base58btc(0xed 0x01 ‖ key)), with
//! weak-key rejection.
//!
//! Parsing is where a key enters the node, so this is the one place that
//! refuses small-order and non-canonical points.

use ed25519_dalek::VerifyingKey;

const ED25519_PUB: [u8; 2] = [0xed, 0x01];

/// Why a public key is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("publicKeyMultibase must start with `z` (base58btc)")]
    Multibase,
    #[error("publicKeyMultibase is not valid base58btc")]
    Base58,
    #[error("publicKeyMultibase must be an Ed25519 Multikey (0xed01 prefix and 32 key bytes)")]
    NotEd25519,
    #[error("the Ed25519 key is not a valid curve point")]
    Invalid,
    #[error("the Ed25519 key is weak (a small-order point); use a freshly generated key")]
    Weak,
}

/// Encodes a key as Multikey.
pub fn encode(key: &VerifyingKey) -> String {
    let mut bytes = Vec::with_capacity(34);
    bytes.extend_from_slice(&ED25519_PUB);
    bytes.extend_from_slice(key.as_bytes());
    format!("z{}", bs58::encode(bytes).into_string())
}

/// Decodes a Multikey, refusing weak keys.
pub fn decode(text: &str) -> Result<VerifyingKey, KeyError> {
    let body = text.strip_prefix('z').ok_or(KeyError::Multibase)?;
    let bytes = bs58::decode(body)
        .into_vec()
        .map_err(|_| KeyError::Base58)?;
    if bytes.len() != 34 || bytes[..2] != ED25519_PUB {
        return Err(KeyError::NotEd25519);
    }
    let mut raw = [0u8; 32];
    raw.copy_from_slice(&bytes[2..]);
    from_bytes(&raw)
}

/// Builds a key from its 32 bytes, refusing invalid and weak points.
pub fn from_bytes(raw: &[u8; 32]) -> Result<VerifyingKey, KeyError> {
    let key = VerifyingKey::from_bytes(raw).map_err(|_| KeyError::Invalid)?;
    if key.is_weak() {
        return Err(KeyError::Weak);
    }
    Ok(key)
}

/// The key as an SPKI PEM, for ActivityPub software that reads `publicKeyPem`.
pub fn to_pem(key: &VerifyingKey) -> String {
    // DER prefix of SubjectPublicKeyInfo for id-Ed25519 (RFC 8410).
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(key.as_bytes());
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        data_encoding::BASE64.encode(&der)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    #[test]
    fn round_trips() {
        let key = SigningKey::from_bytes(&[7u8; 32]).verifying_key();
        let text = encode(&key);
        assert!(text.starts_with("z6Mk"), "{text}");
        assert_eq!(decode(&text), Ok(key));
    }

    #[test]
    fn refuses_small_order_points() {
        // The identity point (encoded y = 1) and a point of order 8.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(from_bytes(&identity), Err(KeyError::Weak));
        let order8 = [
            0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
            0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
            0x92, 0xac, 0x03, 0x7a,
        ];
        assert_eq!(from_bytes(&order8), Err(KeyError::Weak));
        let mut multikey = vec![0xed, 0x01];
        multikey.extend_from_slice(&identity);
        let text = format!("z{}", bs58::encode(multikey).into_string());
        assert_eq!(decode(&text), Err(KeyError::Weak));
    }

    #[test]
    fn refuses_other_encodings() {
        assert_eq!(decode("m6Mk"), Err(KeyError::Multibase));
        assert_eq!(decode("z0OIl"), Err(KeyError::Base58));
        let secp = format!("z{}", bs58::encode([0xe7, 0x01, 1, 2, 3]).into_string());
        assert_eq!(decode(&secp), Err(KeyError::NotEd25519));
    }
}

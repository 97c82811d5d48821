//! The node's secret keys: one JSON file, mode 0600, rewritten atomically.
//! It holds each actor's Ed25519 keys (key id → hex seed) and its RSA key
//! for HTTP signatures (key id → `rsa:` and base64 PKCS#8).
//!
//! Secret keys never enter the log, the database or any response; this file
//! is the only place they exist. It is not an HSM and does not encrypt at
//! rest: protect the data folder.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

/// Why the key store cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("cannot {action} key store {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key store {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("key store {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions { path: PathBuf, mode: u32 },
}

/// Secret keys by key id.
pub struct KeyStore {
    path: PathBuf,
    keys: BTreeMap<String, SigningKey>,
    /// HTTP-signature keys (RSA, PKCS#8 DER) by key id.
    http_keys: BTreeMap<String, Vec<u8>>,
    dirty: bool,
}

/// How an RSA key's entry in the file starts.
const RSA_PREFIX: &str = "rsa:";

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secret material.
        f.debug_struct("KeyStore")
            .field("path", &self.path)
            .field("keys", &self.keys.len())
            .field("http_keys", &self.http_keys.len())
            .finish()
    }
}

impl KeyStore {
    /// Opens the store at `path`, creating an empty one if it does not exist.
    pub fn open(path: &Path) -> Result<Self, KeyStoreError> {
        let io = |action, source| KeyStoreError::Io {
            action,
            path: path.to_owned(),
            source,
        };
        let mut keys = BTreeMap::new();
        let mut http_keys = BTreeMap::new();
        match fs::read(path) {
            Ok(bytes) => {
                let mode = fs::metadata(path)
                    .map_err(|e| io("stat", e))?
                    .permissions()
                    .mode()
                    & 0o777;
                if mode & 0o077 != 0 {
                    return Err(KeyStoreError::Permissions {
                        path: path.to_owned(),
                        mode,
                    });
                }
                let hex: BTreeMap<String, String> =
                    serde_json::from_slice(&bytes).map_err(|e| KeyStoreError::Corrupt {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })?;
                for (id, seed) in hex {
                    if let Some(der) = seed.strip_prefix(RSA_PREFIX) {
                        let der = data_encoding::BASE64.decode(der.as_bytes()).map_err(|_| {
                            KeyStoreError::Corrupt {
                                path: path.to_owned(),
                                reason: format!("the RSA key of {id} is not base64"),
                            }
                        })?;
                        http_keys.insert(id, der);
                        continue;
                    }
                    let seed = data_encoding::HEXLOWER
                        .decode(seed.as_bytes())
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .ok_or_else(|| KeyStoreError::Corrupt {
                            path: path.to_owned(),
                            reason: format!("the seed of {id} is not 32 bytes of hex"),
                        })?;
                    keys.insert(id, SigningKey::from_bytes(&seed));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("read", e)),
        }
        Ok(Self {
            path: path.to_owned(),
            keys,
            http_keys,
            dirty: false,
        })
    }

    pub fn get(&self, key_id: &str) -> Option<&SigningKey> {
        self.keys.get(key_id)
    }

    /// The HTTP-signature key (PKCS#8 DER) with `key_id`.
    pub fn http_key(&self, key_id: &str) -> Option<&[u8]> {
        self.http_keys.get(key_id).map(Vec::as_slice)
    }

    /// Adds an HTTP-signature key in memory; [`KeyStore::flush`] makes it
    /// durable.
    pub fn insert_http_key(&mut self, key_id: String, pkcs8: Vec<u8>) {
        self.http_keys.insert(key_id, pkcs8);
        self.dirty = true;
    }

    /// Adds a key in memory; [`KeyStore::flush`] makes it durable.
    pub fn insert(&mut self, key_id: String, key: SigningKey) {
        self.keys.insert(key_id, key);
        self.dirty = true;
    }

    /// Writes the store if anything was added since the last flush.
    pub fn flush(&mut self) -> Result<(), KeyStoreError> {
        if self.dirty {
            self.write(&self.keys)?;
            self.dirty = false;
        }
        Ok(())
    }

    fn write(&self, keys: &BTreeMap<String, SigningKey>) -> Result<(), KeyStoreError> {
        let io = |action, source| KeyStoreError::Io {
            action,
            path: self.path.clone(),
            source,
        };
        let hex: BTreeMap<&String, String> = keys
            .iter()
            .map(|(id, k)| (id, data_encoding::HEXLOWER.encode(k.as_bytes())))
            .chain(self.http_keys.iter().map(|(id, der)| {
                (
                    id,
                    format!("{RSA_PREFIX}{}", data_encoding::BASE64.encode(der)),
                )
            }))
            .collect();
        let body =
            serde_json::to_vec_pretty(&hex).map_err(|e| io("encode", std::io::Error::other(e)))?;
        let tmp = self.path.with_extension("tmp");
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io("create", e))?;
        file.write_all(&body).map_err(|e| io("write", e))?;
        file.sync_all().map_err(|e| io("sync", e))?;
        fs::rename(&tmp, &self.path).map_err(|e| io("replace", e))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io("sync the folder of", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_with_owner_only_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.json");
        let mut store = KeyStore::open(&path).expect("open");
        let made = [SigningKey::from_bytes(&[9; 32])];
        store.insert("a#key-1".into(), made[0].clone());
        store.flush().expect("flush");
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = KeyStore::open(&path).expect("reopen");
        assert_eq!(
            again.get("a#key-1").map(SigningKey::to_bytes),
            Some(made[0].to_bytes())
        );
        assert!(
            !format!("{again:?}").contains(&data_encoding::HEXLOWER.encode(made[0].as_bytes()))
        );
    }

    #[test]
    fn keeps_http_keys_beside_the_log_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.json");
        let mut store = KeyStore::open(&path).expect("open");
        store.insert("a#key-1".into(), SigningKey::from_bytes(&[9; 32]));
        store.insert_http_key("a#main-key".into(), vec![1, 2, 3, 250]);
        store.flush().expect("flush");
        let again = KeyStore::open(&path).expect("reopen");
        assert_eq!(again.http_key("a#main-key"), Some(&[1u8, 2, 3, 250][..]));
        assert!(again.get("a#key-1").is_some());
        assert!(again.get("a#main-key").is_none());
    }

    #[test]
    fn refuses_a_world_readable_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.json");
        let mut store = KeyStore::open(&path).expect("open");
        store.insert("a#key-1".into(), SigningKey::from_bytes(&[9; 32]));
        store.flush().expect("flush");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            KeyStore::open(&path),
            Err(KeyStoreError::Permissions { .. })
        ));
    }
}

//! Keys entering the node: Multikey strings (`identity::multikey`), actor
//! documents (`identity::actor::keys_from_document`, the peer reading of
//! `federation::peers::parse`) and `publicKeyPem` (`httpsig::PublicKey`).
//!
//! Checks: a Multikey that decodes encodes back to the same text and is
//! not weak; every key read from a document decodes, is not weak and is
//! named `{actor}#…`; a peer read from a document has its inbox on the
//! actor's origin, and reading its kept document again gives the same
//! peer; a PEM key read once reads the same from its DER (RSA) or its
//! PEM re-encoding (Ed25519). It does not fetch anything.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use weft_core::identity::multikey;
use weft_core::wire::actor::keys_from_document;
use weft_federation::httpsig::PublicKey;
use weft_federation::peers;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match serde_json::from_str::<Value>(text) {
        Ok(doc) => document(&doc),
        Err(_) => {
            multibase(text);
            pem(text);
        }
    }
});

fn multibase(text: &str) {
    if let Ok(key) = multikey::decode(text) {
        assert_eq!(
            multikey::encode(&key),
            text,
            "a Multikey with two spellings"
        );
        assert!(!key.is_weak());
        assert_eq!(multikey::from_bytes(key.as_bytes()), Ok(key));
    }
}

fn pem(text: &str) {
    match PublicKey::from_pem(text) {
        Ok(PublicKey::Rsa(spki)) => {
            assert_eq!(
                PublicKey::from_spki_der(&spki),
                Ok(PublicKey::Rsa(spki.clone())),
                "an RSA key reads differently from its own DER"
            );
        }
        Ok(PublicKey::Ed25519(bytes)) => {
            if let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&bytes) {
                let again = PublicKey::from_pem(&multikey::to_pem(&key));
                assert_eq!(again, Ok(PublicKey::Ed25519(bytes)));
            }
        }
        Err(_) => {}
    }
}

fn document(doc: &Value) {
    // Every string member that looks like a key is tried on its own too.
    for field in ["publicKeyMultibase", "publicKeyPem"] {
        for_each_string(doc, field, &mut |s| {
            multibase(s);
            pem(s);
        });
    }
    if let Ok(keys) = keys_from_document(doc) {
        let actor = doc["id"].as_str().expect("a document with keys has an id");
        for key in &keys {
            assert!(
                key.id.starts_with(&format!("{actor}#")),
                "{} is not {actor}'s",
                key.id
            );
            let public = key
                .verifying_key()
                .expect("a key read from a document is valid");
            assert!(!public.is_weak());
            assert!(!key.purposes.is_empty());
        }
    }
    let Some(url) = doc.get("id").and_then(Value::as_str) else {
        return;
    };
    if let Ok(peer) = peers::parse(url, doc) {
        assert_eq!(peer.id, url);
        let origin = weft_core::model::origin(url);
        assert!(origin.is_some(), "a peer without an origin");
        assert_eq!(
            weft_core::model::origin(&peer.inbox),
            origin,
            "an inbox on another origin"
        );
        let kept: Value = serde_json::from_str(&peer.document).expect("the kept document is JSON");
        let again = peers::parse(url, &kept).expect("the kept document reads again");
        assert_eq!((&again.inbox, &again.keys), (&peer.inbox, &peer.keys));
    }
}

fn for_each_string(value: &Value, field: &str, f: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            for (name, member) in map {
                match member {
                    Value::String(s) if name == field => f(s),
                    other => for_each_string(other, field, f),
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| for_each_string(item, field, f)),
        _ => {}
    }
}

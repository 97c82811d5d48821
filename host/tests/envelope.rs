//! The envelope against the independent test vectors (byte for byte), and
//! property tests of canonicalisation, ids and signatures.

use anyhow::Context;
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use weft_core::identity::multikey;
use weft_core::model::envelope::EnvelopeError;
use weft_core::model::{Signed, cid, jcs};

fn vectors() -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/envelope.json"
    ))?;
    Ok(serde_json::from_str(&text)?)
}

fn vector_key(v: &Value) -> anyhow::Result<SigningKey> {
    let seed = data_encoding::HEXLOWER
        .decode(v["key"]["seed_hex"].as_str().context("seed")?.as_bytes())?;
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| anyhow::anyhow!("seed length"))?;
    Ok(SigningKey::from_bytes(&seed))
}

fn object(v: &Value) -> anyhow::Result<Map<String, Value>> {
    v.as_object().cloned().context("expected an object")
}

#[test]
fn the_vector_key_encodes_as_its_multikey() -> anyhow::Result<()> {
    let v = vectors()?;
    let key = vector_key(&v)?.verifying_key();
    assert_eq!(
        data_encoding::HEXLOWER.encode(key.as_bytes()),
        v["key"]["public_hex"]
    );
    assert_eq!(multikey::encode(&key), v["key"]["publicKeyMultibase"]);
    assert_eq!(
        multikey::decode(v["key"]["publicKeyMultibase"].as_str().context("mk")?)?,
        key
    );
    Ok(())
}

#[test]
fn canonical_bytes_ids_and_signatures_match_byte_for_byte() -> anyhow::Result<()> {
    let v = vectors()?;
    let key = vector_key(&v)?;
    let key_id = v["key"]["id"].as_str().context("key id")?;
    let valid = v["valid"].as_array().context("valid")?;
    assert_eq!(valid.len(), 4);
    for case in valid {
        let name = &case["name"];
        let canonical = jcs::object_to_vec(&object(&case["unsigned"])?, &["id", "proof"])?;
        assert_eq!(
            data_encoding::HEXLOWER.encode(&canonical),
            case["canonical_hex"],
            "{name}"
        );
        assert_eq!(
            std::str::from_utf8(&canonical)?,
            case["canonical_utf8"],
            "{name}"
        );
        assert_eq!(cid::activity_id(&canonical), case["id"], "{name}");
        // Ed25519 is deterministic: signing the same bytes gives the same signature.
        let signed = Signed::sign(object(&case["unsigned"])?, key_id, &key)?;
        assert_eq!(signed.id, case["id"], "{name}");
        assert_eq!(Value::Object(signed.json.clone()), case["signed"], "{name}");
    }
    Ok(())
}

#[test]
fn valid_vectors_parse_and_verify() -> anyhow::Result<()> {
    let v = vectors()?;
    let key = vector_key(&v)?.verifying_key();
    let mut prev: Option<String> = None;
    for case in v["valid"].as_array().context("valid")? {
        let signed = Signed::parse(case["signed"].clone())?;
        assert_eq!(signed.id, case["id"]);
        signed.verify_with(&key)?;
        // The vectors form one chain.
        assert_eq!(signed.header.prev, prev);
        prev = Some(signed.id.clone());
    }
    Ok(())
}

#[test]
fn invalid_vectors_fail_for_the_stated_reason() -> anyhow::Result<()> {
    let v = vectors()?;
    let key = vector_key(&v)?.verifying_key();
    let mut seen = 0;
    for case in v["invalid"].as_array().context("invalid")? {
        let name = case["name"].as_str().context("name")?;
        let outcome = Signed::parse(case["signed"].clone()).and_then(|s| s.verify_with(&key));
        match name {
            "tampered-content" | "claimed-id-wrong" => {
                assert!(
                    matches!(outcome, Err(EnvelopeError::IdMismatch { .. })),
                    "{name}: {outcome:?}"
                );
            }
            "signature-of-other-activity" => {
                assert!(
                    matches!(outcome, Err(EnvelopeError::BadSignature(_))),
                    "{name}: {outcome:?}"
                );
            }
            other => anyhow::bail!("unexpected vector {other}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 3);
    Ok(())
}

#[test]
fn a_receiver_recomputes_the_id_and_never_trusts_the_claim() -> anyhow::Result<()> {
    let v = vectors()?;
    let mut forged = object(&v["valid"][1]["signed"])?;
    forged.insert(
        "id".into(),
        json!("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"),
    );
    assert!(matches!(
        Signed::parse(Value::Object(forged)),
        Err(EnvelopeError::BadId(_))
    ));
    Ok(())
}

#[test]
fn structural_errors_name_the_field() -> anyhow::Result<()> {
    let v = vectors()?;
    let base = object(&v["valid"][1]["signed"])?;
    let cases: [(&str, Value, &str); 6] = [
        ("seq", json!(0), "seq"),
        ("seq", json!("2"), "seq"),
        ("prev", Value::Null, "prev"),
        ("published", json!("yesterday"), "published"),
        ("actor", json!(""), "actor"),
        ("type", json!(7), "type"),
    ];
    for (field, value, named) in cases {
        let mut bad = base.clone();
        bad.insert(field.into(), value);
        let err = Signed::parse(Value::Object(bad)).expect_err("must fail");
        assert!(err.to_string().contains(named), "{field}: {err}");
    }
    let mut no_proof = base.clone();
    no_proof.remove("proof");
    assert_eq!(
        Signed::parse(Value::Object(no_proof)).err(),
        Some(EnvelopeError::Missing("proof"))
    );
    let mut padded = base;
    padded["proof"]["signature"] = json!(format!(
        "{}==",
        padded["proof"]["signature"].as_str().unwrap_or_default()
    ));
    assert_eq!(
        Signed::parse(Value::Object(padded)).err(),
        Some(EnvelopeError::SignatureEncoding)
    );
    Ok(())
}

/// Arbitrary JSON values whose numbers JCS can represent.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53) + 1..(1i64 << 53)).prop_map(Value::from),
        (-1e15f64..1e15).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Serialises `value` with object members in reverse order and with
/// whitespace everywhere JSON allows it.
fn scrambled(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let members: Vec<String> = map
                .iter()
                .rev()
                .map(|(k, v)| format!("\n {} :\t{} ", Value::String(k.clone()), scrambled(v)))
                .collect();
            format!("{{ {} }}", members.join(" ,\r\n"))
        }
        Value::Array(items) => format!(
            "[ {} ]",
            items.iter().map(scrambled).collect::<Vec<_>>().join(" , ")
        ),
        other => other.to_string(),
    }
}

fn activity(object: Value, seq: u64) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("type".into(), json!("Create"));
    map.insert("actor".into(), json!("http://127.0.0.1:9999/actors/alice"));
    map.insert("object".into(), object);
    map.insert("published".into(), json!("2026-11-21T05:00:00.000Z"));
    map.insert("seq".into(), json!(seq));
    map.insert(
        "prev".into(),
        if seq == 1 {
            Value::Null
        } else {
            json!(cid::activity_id(b"previous"))
        },
    );
    map
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn canonical_bytes_ignore_member_order_and_whitespace(value in json_value()) {
        let canonical = jcs::to_vec(&value).expect("representable");
        let reparsed: Value = serde_json::from_str(&scrambled(&value)).expect("scrambled JSON parses");
        prop_assert_eq!(jcs::to_vec(&reparsed).expect("representable"), canonical.clone());
        // Canonical bytes are themselves JSON that canonicalises to itself.
        let again: Value = serde_json::from_slice(&canonical).expect("canonical bytes are JSON");
        prop_assert_eq!(jcs::to_vec(&again).expect("representable"), canonical);
    }

    #[test]
    fn any_change_to_a_signed_field_breaks_verification(
        object in json_value(),
        seq in 1u64..1000,
        field in 0usize..6,
        replacement in json_value(),
    ) {
        let key = SigningKey::from_bytes(&[42; 32]);
        let signed = Signed::sign(activity(object, seq), "http://127.0.0.1:9999/actors/alice#key-1", &key)
            .expect("signs");
        let mut tampered = signed.json.clone();
        let name = ["type", "actor", "object", "published", "seq", "to"][field];
        if tampered.get(name) == Some(&replacement) {
            return Ok(());
        }
        tampered.insert(name.into(), replacement);
        // Keep the claimed id: the receiver must notice by recomputing it.
        let outcome = Signed::parse(Value::Object(tampered)).and_then(|s| s.verify_with(&key.verifying_key()));
        prop_assert!(outcome.is_err(), "a change to `{}` went unnoticed", name);
    }

    #[test]
    fn signed_activities_round_trip_through_json_text(object in json_value(), seq in 1u64..1000) {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = Signed::sign(activity(object, seq), "http://127.0.0.1:9999/actors/alice#key-1", &key)
            .expect("signs");
        let text = signed.to_json_string();
        let parsed = Signed::parse(serde_json::from_str(&text).expect("json")).expect("parses");
        prop_assert_eq!(&parsed.id, &signed.id);
        prop_assert!(parsed.verify_with(&key.verifying_key()).is_ok());
        prop_assert_eq!(cid::parse(&parsed.id).expect("id parses"), *blake3::hash(&parsed.canonical).as_bytes());
    }
}

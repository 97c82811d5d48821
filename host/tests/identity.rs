//! Identity rules on crafted, properly signed activities: genesis, chain
//! position, key rotation and supersession, purposes, Move and profile
//! updates — everything `identity::actor::apply` decides.

use ed25519_dalek::SigningKey;
use serde_json::{Map, Value, json};
use weft_core::identity::actor::{self, IdentityError, Signature};
use weft_core::identity::{ActorState, multikey};
use weft_core::model::Signed;
use weft_core::wire;

const ALICE: &str = "http://127.0.0.1:9999/actors/alice";

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn key_entry(fragment: &str, secret: &SigningKey, purposes: &[&str]) -> Value {
    json!({
        "id": format!("{ALICE}#{fragment}"),
        "type": "Multikey",
        "controller": ALICE,
        "publicKeyMultibase": multikey::encode(&secret.verifying_key()),
        "purposes": purposes,
    })
}

fn sign(json: Value, fragment: &str, secret: &SigningKey) -> Signed {
    let Value::Object(map) = json else {
        panic!("activities are objects")
    };
    Signed::sign(map, &format!("{ALICE}#{fragment}"), secret).expect("signs")
}

fn genesis_with(keys: Vec<Value>, signer: &str, secret: &SigningKey) -> Signed {
    sign(
        json!({
            "type": "Create", "actor": ALICE, "seq": 1, "prev": null,
            "published": "2026-11-21T05:00:00.000Z",
            "object": {"type": "Person", "id": ALICE, "preferredUsername": "alice", "name": "alice", "keys": {"add": keys}},
        }),
        signer,
        secret,
    )
}

/// Alice with key-1 (sign-activity and rotate-key).
fn alice() -> ActorState {
    let g = genesis_with(
        vec![key_entry(
            "key-1",
            &key(1),
            &["sign-activity", "rotate-key"],
        )],
        "key-1",
        &key(1),
    );
    actor::apply(None, &g, Signature::Verify).expect("genesis applies")
}

/// The next activity of `state` with `fields`, signed by `fragment`.
fn next(state: &ActorState, fields: Value, fragment: &str, secret: &SigningKey) -> Signed {
    let mut json = json!({
        "actor": state.id, "seq": state.tip_seq + 1, "prev": state.tip_id,
        "published": format!("2026-11-21T05:00:{:02}.000Z", state.tip_seq.min(59)),
    });
    for (k, v) in fields.as_object().cloned().unwrap_or_default() {
        json[k] = v;
    }
    sign(json, fragment, secret)
}

fn note() -> Value {
    json!({"type": "Create", "object": {"type": "Note", "content": "hi"}})
}

fn rotation(add: Vec<Value>, supersede: &[&str]) -> Value {
    let supersede: Vec<String> = supersede.iter().map(|f| format!("{ALICE}#{f}")).collect();
    json!({"type": "Update", "object": {"type": "Person", "id": ALICE, "keys": {"add": add, "supersede": supersede}}})
}

fn apply(state: &ActorState, act: &Signed) -> Result<ActorState, IdentityError> {
    actor::apply(Some(state), act, Signature::Verify)
}

#[test]
fn genesis_introduces_the_first_key_and_starts_the_chain() {
    let state = alice();
    assert_eq!(state.tip_seq, 1);
    assert_eq!(state.username, "alice");
    assert_eq!(state.keys.len(), 1);
    assert_eq!(state.keys[0].valid_from_seq, 1);
    assert!(state.keys[0].superseded_seq.is_none());
}

#[test]
fn a_log_must_start_with_the_actors_create() {
    let note = sign(
        json!({"type": "Create", "actor": ALICE, "seq": 1, "prev": null, "published": "2026-11-21T05:00:00.000Z",
               "object": {"type": "Note", "content": "first"}}),
        "key-1",
        &key(1),
    );
    assert_eq!(
        actor::apply(None, &note, Signature::Verify),
        Err(IdentityError::NotGenesis)
    );
}

#[test]
fn genesis_must_be_signed_by_a_key_it_introduces() {
    let g = genesis_with(
        vec![key_entry(
            "key-1",
            &key(1),
            &["sign-activity", "rotate-key"],
        )],
        "key-9",
        &key(9),
    );
    assert!(matches!(
        actor::apply(None, &g, Signature::Verify),
        Err(IdentityError::UnknownKey(_))
    ));
    // Right key id, wrong secret: the signature fails.
    let g = genesis_with(
        vec![key_entry(
            "key-1",
            &key(1),
            &["sign-activity", "rotate-key"],
        )],
        "key-1",
        &key(2),
    );
    assert!(matches!(
        actor::apply(None, &g, Signature::Verify),
        Err(IdentityError::BadSignature(_))
    ));
}

#[test]
fn weak_keys_are_refused_at_registration() {
    let mut identity = vec![0xed, 0x01, 1];
    identity.extend_from_slice(&[0; 31]);
    let mut entry = key_entry("key-1", &key(1), &["sign-activity", "rotate-key"]);
    entry["publicKeyMultibase"] = json!(format!("z{}", bs58::encode(identity).into_string()));
    let g = genesis_with(vec![entry], "key-1", &key(1));
    let err = actor::apply(None, &g, Signature::Verify).expect_err("weak key");
    assert!(err.to_string().contains("weak"), "{err}");
}

#[test]
fn keys_must_belong_to_the_actor_and_have_known_purposes() {
    let mut foreign = key_entry("key-1", &key(1), &["sign-activity", "rotate-key"]);
    foreign["id"] = json!("http://127.0.0.1:9998/actors/mallory#key-1");
    let g = genesis_with(vec![foreign], "key-1", &key(1));
    assert!(matches!(
        actor::apply(None, &g, Signature::Verify),
        Err(IdentityError::Object { .. })
    ));
    let g = genesis_with(
        vec![key_entry(
            "key-1",
            &key(1),
            &["sign-activity", "launch-missiles"],
        )],
        "key-1",
        &key(1),
    );
    let err = actor::apply(None, &g, Signature::Verify).expect_err("unknown purpose");
    assert!(err.to_string().contains("launch-missiles"), "{err}");
}

#[test]
fn an_actor_without_a_rotation_key_is_refused() {
    let g = genesis_with(
        vec![key_entry("key-1", &key(1), &["sign-activity"])],
        "key-1",
        &key(1),
    );
    assert_eq!(
        actor::apply(None, &g, Signature::Verify),
        Err(IdentityError::Lockout("rotate-key"))
    );
}

#[test]
fn the_chain_must_continue_at_the_tip() {
    let state = alice();
    let good = next(&state, note(), "key-1", &key(1));
    assert!(apply(&state, &good).is_ok());

    let mut json = good.json.clone();
    json.remove("id");
    json.remove("proof");
    let mut skip = json.clone();
    skip.insert("seq".into(), json!(3));
    let skip = Signed::sign(skip, &format!("{ALICE}#key-1"), &key(1)).expect("signs");
    assert_eq!(
        apply(&state, &skip),
        Err(IdentityError::Seq {
            expected: 2,
            got: 3
        })
    );

    let mut fork = json.clone();
    fork.insert(
        "prev".into(),
        json!(weft_core::model::cid::activity_id(b"elsewhere")),
    );
    let fork = Signed::sign(fork, &format!("{ALICE}#key-1"), &key(1)).expect("signs");
    assert!(matches!(
        apply(&state, &fork),
        Err(IdentityError::Prev { .. })
    ));

    let mut other = json;
    other.insert("actor".into(), json!("http://127.0.0.1:9999/actors/bob"));
    let other = Signed::sign(other, &format!("{ALICE}#key-1"), &key(1)).expect("signs");
    assert!(matches!(
        apply(&state, &other),
        Err(IdentityError::WrongActor { .. })
    ));
}

#[test]
fn a_second_create_of_the_actor_is_refused() {
    let state = alice();
    let again = next(
        &state,
        json!({"type": "Create", "object": {"type": "Person", "id": ALICE, "preferredUsername": "alice"}}),
        "key-1",
        &key(1),
    );
    assert_eq!(apply(&state, &again), Err(IdentityError::AlreadyCreated));
}

#[test]
fn rotation_supersedes_the_old_key_and_activates_the_new_one_after_it() -> Result<(), IdentityError>
{
    let mut state = alice();
    let before = next(&state, note(), "key-1", &key(1));
    state = apply(&state, &before)?;
    let rot = next(
        &state,
        rotation(
            vec![key_entry(
                "key-2",
                &key(2),
                &["sign-activity", "rotate-key"],
            )],
            &["key-1"],
        ),
        "key-1",
        &key(1),
    );
    state = apply(&state, &rot)?;
    let (k1, k2) = (&state.keys[0], &state.keys[1]);
    assert_eq!(
        (k1.superseded_seq, k2.valid_from_seq, k2.added_seq),
        (Some(3), 4, 3)
    );
    assert!(k1.valid_at(3) && !k1.valid_at(4));
    assert!(!k2.valid_at(3) && k2.valid_at(4));

    // After the rotation the old key can sign nothing…
    let stale = next(&state, note(), "key-1", &key(1));
    assert!(matches!(
        apply(&state, &stale),
        Err(IdentityError::KeyNotValid { .. })
    ));
    // …and the new one can.
    let fresh = next(&state, note(), "key-2", &key(2));
    let after = apply(&state, &fresh)?;

    // The pre-rotation activity still verifies under the full key history.
    actor::verify_with_history(&after.keys, &before)?;
    actor::verify_with_history(&after.keys, &fresh)?;
    assert!(actor::verify_with_history(&after.keys, &stale).is_err());
    Ok(())
}

#[test]
fn a_rotation_needs_a_rotate_key_signature() -> Result<(), IdentityError> {
    let g = genesis_with(
        vec![
            key_entry("sign", &key(1), &["sign-activity"]),
            key_entry("rotate", &key(3), &["rotate-key"]),
        ],
        "sign",
        &key(1),
    );
    let state = actor::apply(None, &g, Signature::Verify)?;
    let add = vec![key_entry("sign-2", &key(2), &["sign-activity"])];
    let by_sign_key = next(&state, rotation(add.clone(), &["sign"]), "sign", &key(1));
    assert_eq!(
        apply(&state, &by_sign_key),
        Err(IdentityError::Purpose {
            key: format!("{ALICE}#sign"),
            purpose: "rotate-key"
        })
    );
    let by_rotate_key = next(&state, rotation(add, &["sign"]), "rotate", &key(3));
    let rotated = apply(&state, &by_rotate_key)?;
    // A rotate-only key cannot sign ordinary activities.
    let note_by_rotate = next(&rotated, note(), "rotate", &key(3));
    assert!(matches!(
        apply(&rotated, &note_by_rotate),
        Err(IdentityError::Purpose { .. })
    ));
    Ok(())
}

#[test]
fn a_rotation_that_would_lock_the_actor_out_is_refused() {
    let state = alice();
    let no_signer = next(&state, rotation(vec![], &["key-1"]), "key-1", &key(1));
    assert_eq!(
        apply(&state, &no_signer),
        Err(IdentityError::Lockout("sign-activity"))
    );
    let no_rotator = next(
        &state,
        rotation(
            vec![key_entry("key-2", &key(2), &["sign-activity"])],
            &["key-1"],
        ),
        "key-1",
        &key(1),
    );
    assert_eq!(
        apply(&state, &no_rotator),
        Err(IdentityError::Lockout("rotate-key"))
    );
}

#[test]
fn supersession_must_name_a_current_key_of_the_actor() -> Result<(), IdentityError> {
    let state = alice();
    let unknown = next(
        &state,
        rotation(
            vec![key_entry(
                "key-2",
                &key(2),
                &["sign-activity", "rotate-key"],
            )],
            &["key-7"],
        ),
        "key-1",
        &key(1),
    );
    assert!(matches!(
        apply(&state, &unknown),
        Err(IdentityError::UnknownKey(_))
    ));
    let dup = next(
        &state,
        rotation(
            vec![key_entry(
                "key-1",
                &key(2),
                &["sign-activity", "rotate-key"],
            )],
            &[],
        ),
        "key-1",
        &key(1),
    );
    assert!(matches!(
        apply(&state, &dup),
        Err(IdentityError::Object { .. })
    ));
    let rotated = apply(
        &state,
        &next(
            &state,
            rotation(
                vec![key_entry(
                    "key-2",
                    &key(2),
                    &["sign-activity", "rotate-key"],
                )],
                &["key-1"],
            ),
            "key-1",
            &key(1),
        ),
    )?;
    let twice = next(
        &rotated,
        rotation(
            vec![key_entry(
                "key-3",
                &key(3),
                &["sign-activity", "rotate-key"],
            )],
            &["key-1"],
        ),
        "key-2",
        &key(2),
    );
    assert!(matches!(
        apply(&rotated, &twice),
        Err(IdentityError::Object { .. })
    ));
    Ok(())
}

#[test]
fn move_records_the_target() -> Result<(), IdentityError> {
    let state = alice();
    let moved = apply(
        &state,
        &next(
            &state,
            json!({"type": "Move", "object": ALICE, "target": "http://127.0.0.1:7000/actors/alice"}),
            "key-1",
            &key(1),
        ),
    )?;
    assert_eq!(
        moved.moved_to.as_deref(),
        Some("http://127.0.0.1:7000/actors/alice")
    );
    for (object, target) in [
        (
            json!("http://127.0.0.1:9999/actors/bob"),
            json!("http://127.0.0.1:7000/actors/alice"),
        ),
        (json!(ALICE), json!(ALICE)),
        (json!(ALICE), json!("mailto:alice@example.invalid")),
        (json!(ALICE), Value::Null),
    ] {
        let bad = next(
            &state,
            json!({"type": "Move", "object": object, "target": target}),
            "key-1",
            &key(1),
        );
        assert!(
            matches!(apply(&state, &bad), Err(IdentityError::Object { .. })),
            "{object} → {target}"
        );
    }
    Ok(())
}

#[test]
fn profile_updates_merge_and_protect_derived_fields() -> Result<(), IdentityError> {
    let state = alice();
    let update = |object: Value| {
        next(
            &state,
            json!({"type": "Update", "object": object}),
            "key-1",
            &key(1),
        )
    };
    let updated = apply(
        &state,
        &update(json!({"type": "Person", "id": ALICE, "name": "Alice A.", "summary": "hello"})),
    )?;
    let profile: Map<String, Value> = updated.profile_map();
    assert_eq!(profile["name"], "Alice A.");
    assert_eq!(profile["summary"], "hello");
    let cleared = apply(
        &updated,
        &next(
            &updated,
            json!({"type": "Update", "object": {"type": "Person", "id": ALICE, "summary": null}}),
            "key-1",
            &key(1),
        ),
    )?;
    assert!(!cleared.profile_map().contains_key("summary"));

    for bad in [
        json!({"type": "Person", "id": ALICE, "inbox": "http://127.0.0.1:1/x"}),
        json!({"type": "Person", "id": ALICE, "preferredUsername": "mallory"}),
        json!({"type": "Group", "id": ALICE, "name": "x"}),
        json!({"type": "Person", "id": "http://127.0.0.1:9999/actors/bob", "name": "x"}),
    ] {
        assert!(
            matches!(
                apply(&state, &update(bad.clone())),
                Err(IdentityError::Object { .. })
            ),
            "{bad}"
        );
    }
    Ok(())
}

#[test]
fn the_actor_document_carries_the_key_history() -> Result<(), IdentityError> {
    let state = alice();
    let rot = next(
        &state,
        rotation(
            vec![key_entry(
                "key-2",
                &key(2),
                &["sign-activity", "rotate-key"],
            )],
            &["key-1"],
        ),
        "key-1",
        &key(1),
    );
    let rotated = apply(&state, &rot)?;
    let doc = wire::actor::document(&rotated, None);
    let keys = wire::actor::keys_from_document(&doc)?;
    assert_eq!(keys, rotated.keys);
    // The current log key is the last one not superseded.
    let current = doc["assertionMethod"]
        .as_array()
        .and_then(|keys| keys.iter().rfind(|k| k.get("supersededAtSeq").is_none()));
    assert_eq!(
        current.map(|k| &k["id"]),
        Some(&json!(format!("{ALICE}#key-2")))
    );
    assert_eq!(
        doc["assertionMethod"].as_array().and_then(|k| k.last()),
        current
    );
    // Without an HTTP-signature key there is no `publicKey`; with one it is
    // that key (an RSA key, not a log key), which a rotation leaves alone.
    assert!(doc.get("publicKey").is_none(), "{doc}");
    let pem = "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----\n";
    let with_key = wire::actor::document(&rotated, Some(pem));
    assert_eq!(
        with_key["publicKey"],
        json!({"id": format!("{ALICE}#main-key"), "owner": ALICE, "publicKeyPem": pem})
    );
    assert_eq!(
        wire::actor::document(&state, Some(pem))["publicKey"],
        with_key["publicKey"]
    );
    assert_eq!(with_key["assertionMethod"], doc["assertionMethod"]);
    actor::verify_with_history(&keys, &rot)?;
    // A document whose key ids point at another actor is refused.
    let mut forged = doc.clone();
    forged["assertionMethod"][0]["id"] = json!("http://127.0.0.1:9998/actors/mallory#key-1");
    assert!(wire::actor::keys_from_document(&forged).is_err());
    Ok(())
}

#[test]
fn trusted_application_skips_only_the_signature_check() {
    let state = alice();
    let mut act = next(&state, note(), "key-1", &key(1));
    act.signature = ed25519_dalek::Signature::from_bytes(&[0; 64]);
    assert!(matches!(
        apply(&state, &act),
        Err(IdentityError::BadSignature(_))
    ));
    assert!(actor::apply(Some(&state), &act, Signature::Trusted).is_ok());
    // Position and purpose are still checked when trusted.
    let stale = next(&state, note(), "key-9", &key(9));
    assert!(actor::apply(Some(&state), &stale, Signature::Trusted).is_err());
}

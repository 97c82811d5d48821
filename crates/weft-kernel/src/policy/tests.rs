//! Tests of policy specs, evaluation and status: each kind's schema and
//! the field its refusals name, each kind's obligations, and evaluation's
//! independence from the order of its inputs (property tests).
//!
//! Not the storage or the HTTP side (`host/tests/api/policies.rs`).

use proptest::prelude::*;
use serde_json::json;

use super::*;

const NOW: u64 = 1_800_000_000_000;

fn policy(name: &str, kind: &str, spec: Value, position: u64) -> Policy {
    let spec = check(kind, &spec).expect("a valid spec");
    Policy {
        name: name.into(),
        version: 1,
        id: format!("b{name}"),
        actor: "https://n.example/actors/node".into(),
        published: "2026-01-01T00:00:00.000Z".into(),
        position,
        kind: spec.kind(),
        spec,
    }
}

fn head(seq: u64) -> Head {
    Head {
        seq,
        id: format!("b{seq}"),
    }
}

fn actor(url: &str, followed: bool, held: Option<u64>, remote: Option<u64>) -> RemoteActor {
    RemoteActor {
        actor: url.into(),
        followed,
        held: held.map(head),
        remote: remote.map(|seq| RemoteHead {
            head: head(seq),
            seen_ms: NOW - 60_000,
        }),
        oldest_held_ms: None,
    }
}

fn field(kind: &str, spec: Value) -> String {
    check(kind, &spec)
        .map(|_| String::new())
        .unwrap_or_else(|e| e.field)
}

#[test]
fn each_kind_checks_its_schema_and_names_the_field() {
    assert_eq!(
        field(
            "replication",
            json!({"mirror": ["https://a.example", "https://b.example/actors/x", "not a url"]})
        ),
        "spec.mirror[2]"
    );
    assert_eq!(
        field("replication", json!({"mirror": ["https://a.example/?q"]})),
        "spec.mirror[0]"
    );
    assert_eq!(
        field(
            "replication",
            json!({"keep": [{"actors": ["https://a.example"], "days": 0}]})
        ),
        "spec.keep[0].days"
    );
    assert_eq!(
        field("replication", json!({"keep": [{"actors": [3], "days": 1}]})),
        "spec.keep[0].actors[0]"
    );
    assert_eq!(field("replication", json!({})), "spec");
    assert_eq!(field("replication", json!({"mirrors": []})), "spec.mirrors");
    assert_eq!(field("modules", json!({"policy": "open"})), "spec.policy");
    assert_eq!(
        field(
            "modules",
            json!({"policy": "allow", "allow": ["https://a.example"]})
        ),
        "spec.allow[0]",
        "an origin is not a definer"
    );
    assert_eq!(field("follows", json!({"accept": "maybe"})), "spec.accept");
    assert_eq!(field("sync", json!({"interval": "soon"})), "spec.interval");
    assert_eq!(field("sync", json!({"maxLag": "0s"})), "spec.maxLag");
    assert_eq!(
        field("sync", json!({"budget": {"bytesPerRound": -1}})),
        "spec.budget.bytesPerRound"
    );
    assert_eq!(field("sync", json!([])), "spec");
    assert_eq!(field("gossip", json!({})), "kind");

    let Ok(Spec::Sync(sync)) = check(
        "sync",
        &json!({"interval": "5m", "maxLag": "1h", "budget": {"bytesPerRound": 1000, "roundsPerHour": 12}}),
    ) else {
        panic!("a valid sync spec");
    };
    assert_eq!(sync.interval, std::time::Duration::from_secs(300));
    assert_eq!(sync.max_lag, std::time::Duration::from_secs(3600));
    assert_eq!(sync.budget.and_then(|b| b.rounds_per_hour), Some(12));
    assert!(check("modules", &json!({"policy": "manual"})).is_ok());
    assert!(
        check(
            "modules",
            &json!({"policy": "allow", "allow": ["https://a.example/actors/eve"]})
        )
        .is_ok()
    );
    assert!(check("follows", &json!({"accept": "followed"})).is_ok());
}

#[test]
fn a_draft_is_named_kinded_and_never_addressed() {
    let draft = |v: Value| v.as_object().cloned().unwrap_or_default();
    let field_of = |v: Value| {
        check_draft(&draft(v))
            .map(|_| String::new())
            .unwrap_or_else(|e| e.field)
    };
    assert_eq!(field_of(json!({"kind": "sync", "spec": {}})), "name");
    assert_eq!(
        field_of(json!({"name": "9x", "kind": "sync", "spec": {}})),
        "name"
    );
    assert_eq!(field_of(json!({"name": "s", "spec": {}})), "kind");
    assert_eq!(field_of(json!({"name": "s", "kind": "sync"})), "spec");
    assert_eq!(
        field_of(
            json!({"name": "s", "kind": "sync", "spec": {}, "to": ["https://www.w3.org/ns/activitystreams#Public"]})
        ),
        "to"
    );
    let (name, spec) = check_draft(&draft(json!({"name": "s", "kind": "sync", "spec": {}})))
        .expect("a valid draft");
    assert_eq!(name, "s");
    assert_eq!(spec.kind(), Kind::Sync);
}

#[test]
fn replication_mirrors_in_full_and_prunes_what_it_keeps_for_days() {
    let p = policy(
        "r",
        "replication",
        json!({
            "mirror": ["https://a.example", "https://b.example/actors/bob", "https://new.example"],
            "keep": [
                {"actors": ["https://c.example"], "days": 7},
                {"actors": ["https://c.example/actors/carol"], "days": 30}
            ]
        }),
        1,
    );
    let mut carol = actor("https://c.example/actors/carol", false, Some(5), Some(5));
    carol.oldest_held_ms = Some(NOW - 10 * DAY_MS);
    let mut dave = actor("https://c.example/actors/dave", false, Some(5), Some(5));
    dave.oldest_held_ms = Some(NOW - 10 * DAY_MS);
    let observed = Observed {
        now_ms: NOW,
        actors: vec![
            actor("https://a.example/actors/amy", false, Some(3), Some(7)),
            actor("https://b.example/actors/bob", false, None, Some(2)),
            actor("https://b.example/actors/ben", false, None, Some(9)),
            carol,
            dave,
        ],
        peers: vec![],
        dead_letters: vec![],
    };
    assert_eq!(
        evaluate(&[p], &observed),
        vec![
            Obligation::Sync {
                actor: "https://a.example/actors/amy".into(),
                from_seq: 4,
                to_seq: 7,
                lag_ms: 60_000
            },
            Obligation::Sync {
                actor: "https://b.example/actors/bob".into(),
                from_seq: 1,
                to_seq: 2,
                lag_ms: 60_000
            },
            Obligation::Mirror {
                origin: "https://new.example".into()
            },
            // carol is kept 30 days (the longest rule naming her), dave 7.
            Obligation::Prune {
                actor: "https://c.example/actors/dave".into(),
                before_ms: NOW - 7 * DAY_MS
            },
        ]
    );
}

#[test]
fn sync_keeps_followed_actors_and_redelivers_dead_letters() {
    let p = policy("s", "sync", json!({"maxLag": "1h"}), 1);
    let observed = Observed {
        now_ms: NOW,
        actors: vec![
            actor("https://a.example/actors/amy", true, Some(3), Some(4)),
            actor("https://a.example/actors/ann", true, Some(4), Some(4)),
            actor("https://a.example/actors/abe", false, Some(1), Some(4)),
        ],
        peers: vec![],
        dead_letters: vec![DeadLetter {
            id: 7,
            activity: "bx".into(),
            recipient: "https://z.example/actors/zed".into(),
            origin: "https://z.example".into(),
        }],
    };
    let got = evaluate(&[p], &observed);
    assert_eq!(
        got,
        vec![
            Obligation::Sync {
                actor: "https://a.example/actors/amy".into(),
                from_seq: 4,
                to_seq: 4,
                lag_ms: 60_000
            },
            Obligation::Redeliver {
                dead_letter: 7,
                origin: "https://z.example".into()
            },
        ]
    );
    assert_eq!(got[0].lag_ms(), Some(60_000));
    // As the status shows it: tagged by type, fields in camelCase.
    let json = serde_json::to_value(&got[0]).expect("serialises");
    assert_eq!(json["type"], "Sync");
    assert_eq!(json["fromSeq"], 4);
    assert_eq!(json["lagMs"], 60_000);
    // Admission rules oblige nothing.
    let rules = [
        policy("m", "modules", json!({"policy": "manual"}), 2),
        policy("f", "follows", json!({"accept": "manual"}), 3),
    ];
    assert!(evaluate(&rules, &observed).is_empty());
}

#[test]
fn a_condition_moves_its_transition_time_only_when_its_status_changes() {
    let p = policy("s", "sync", json!({}), 1);
    let mut status = PolicyStatus::not_evaluated(&p, "t0");
    assert_eq!(status.conditions.len(), 2);
    assert!(
        status
            .conditions
            .iter()
            .all(|c| c.status == ConditionStatus::Unknown
                && c.reason == "NotEvaluated"
                && c.last_transition_time == "t0")
    );
    let condition = |status, reason: &str, at: &str| Condition {
        kind: IN_SYNC.into(),
        status,
        reason: reason.into(),
        message: String::new(),
        last_transition_time: at.into(),
    };
    status.set_condition(condition(ConditionStatus::True, "CaughtUp", "t1"));
    status.set_condition(condition(ConditionStatus::True, "StillCaughtUp", "t2"));
    let in_sync = |s: &PolicyStatus| {
        s.conditions
            .iter()
            .find(|c| c.kind == IN_SYNC)
            .cloned()
            .expect("InSync")
    };
    assert_eq!(in_sync(&status).last_transition_time, "t1");
    assert_eq!(in_sync(&status).reason, "StillCaughtUp");
    status.set_condition(condition(ConditionStatus::False, "Lagging", "t3"));
    assert_eq!(in_sync(&status).last_transition_time, "t3");
    assert_eq!(status.conditions.len(), 2);

    let statuses = PolicyStatuses::default();
    assert!(statuses.get("s").is_none());
    statuses.set("s", status.clone());
    assert_eq!(statuses.get("s"), Some(status));
    let wire = statuses.get("s").map(|s| s.to_wire()).expect("a status");
    assert_eq!(wire.conditions.len(), 2);
}

#[test]
fn a_status_follows_evaluation_and_keeps_transition_times() {
    let p = policy("s", "sync", json!({"maxLag": "1m"}), 1);
    let mut observed = Observed {
        now_ms: NOW,
        actors: vec![actor(
            "https://a.example/actors/amy",
            true,
            Some(4),
            Some(4),
        )],
        ..Observed::default()
    };
    let condition = |s: &PolicyStatus, kind: &str| {
        s.conditions
            .iter()
            .find(|c| c.kind == kind)
            .cloned()
            .expect("the condition")
    };
    let first = status(&p, &observed, "t1", None);
    assert_eq!(condition(&first, COMPLIANT).status, ConditionStatus::True);
    assert_eq!(condition(&first, IN_SYNC).reason, "WithinMaxLag");
    assert_eq!(condition(&first, IN_SYNC).last_transition_time, "t1");
    assert!(first.obligations.is_empty());

    // Behind by one, seen 2 minutes ago: past maxLag.
    observed.actors[0].remote = Some(RemoteHead {
        head: head(5),
        seen_ms: NOW - 120_000,
    });
    let second = status(&p, &observed, "t2", Some(&first));
    assert_eq!(condition(&second, COMPLIANT).status, ConditionStatus::False);
    assert_eq!(condition(&second, IN_SYNC).reason, "Lagging");
    assert_eq!(condition(&second, IN_SYNC).last_transition_time, "t2");
    assert_eq!(second.obligations.len(), 1);
    assert_eq!(second.obligations[0].lag_ms, Some(120_000));

    // Still behind: the transition time stays.
    let third = status(&p, &observed, "t3", Some(&second));
    assert_eq!(condition(&third, IN_SYNC).last_transition_time, "t2");
    assert_eq!(third, status(&p, &observed, "t3", Some(&second)), "pure");

    let rule = policy("m", "modules", json!({"policy": "manual"}), 2);
    let admission = status(&rule, &observed, "t4", None);
    assert!(
        admission
            .conditions
            .iter()
            .all(|c| c.status == ConditionStatus::True && c.reason == "AdmissionRule")
    );
}

// Property tests: evaluation depends on its inputs, not their order.

fn url() -> impl Strategy<Value = String> {
    (0..3u8, 0..4u8).prop_map(|(o, a)| format!("https://o{o}.example/actors/a{a}"))
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        url(),
        (0..4u8).prop_map(|o| format!("https://o{o}.example"))
    ]
}

fn remote_actor() -> impl Strategy<Value = RemoteActor> {
    (
        url(),
        any::<bool>(),
        proptest::option::of(0..20u64),
        proptest::option::of((0..20u64, 0..1_000_000u64)),
        proptest::option::of(0..100u64),
    )
        .prop_map(|(actor, followed, held, remote, oldest)| RemoteActor {
            actor,
            followed,
            held: held.map(head),
            remote: remote.map(|(seq, ago)| RemoteHead {
                head: head(seq),
                seen_ms: NOW - ago,
            }),
            oldest_held_ms: oldest.map(|days| NOW - days * DAY_MS),
        })
}

fn any_policy() -> impl Strategy<Value = Policy> {
    let replication = (
        proptest::collection::vec(target(), 0..4),
        proptest::collection::vec((proptest::collection::vec(target(), 1..3), 1..60u64), 0..3),
    )
        .prop_filter("something to replicate", |(m, k)| !m.is_empty() || !k.is_empty())
        .prop_map(|(mirror, keep)| {
            json!({
                "mirror": mirror,
                "keep": keep.into_iter().map(|(actors, days)| json!({"actors": actors, "days": days})).collect::<Vec<_>>(),
            })
        })
        .prop_map(|spec| ("replication", spec));
    let sync = Just(("sync", json!({"maxLag": "1h"})));
    let modules = Just(("modules", json!({"policy": "followed"})));
    (prop_oneof![replication, sync, modules], 0..1000u64)
        .prop_map(|((kind, spec), position)| policy(&format!("p{position}"), kind, spec, position))
}

fn observed() -> impl Strategy<Value = Observed> {
    (
        proptest::collection::vec(remote_actor(), 0..8),
        proptest::collection::vec(
            (
                (0..5u8).prop_map(|o| format!("https://o{o}.example")),
                proptest::collection::vec(url(), 0..3),
            ),
            0..3,
        ),
        proptest::collection::vec((0..10u64, 0..4u8), 0..4),
    )
        .prop_map(|(actors, peers, letters)| Observed {
            now_ms: NOW,
            actors,
            peers: peers
                .into_iter()
                .map(|(origin, actors)| PeerOrigin { origin, actors })
                .collect(),
            dead_letters: letters
                .into_iter()
                .map(|(id, o)| DeadLetter {
                    id,
                    activity: format!("b{id}"),
                    recipient: format!("https://o{o}.example/actors/a0"),
                    origin: format!("https://o{o}.example"),
                })
                .collect(),
        })
}

/// Reverses and rotates every list of `observed` and `policies`.
fn shuffled(policies: &[Policy], observed: &Observed, turn: usize) -> (Vec<Policy>, Observed) {
    fn mix<T: Clone>(items: &[T], turn: usize) -> Vec<T> {
        let mut out: Vec<T> = items.iter().rev().cloned().collect();
        if !out.is_empty() {
            let n = turn % out.len();
            out.rotate_left(n);
        }
        out
    }
    let mut observed = observed.clone();
    observed.actors = mix(&observed.actors, turn);
    observed.peers = mix(&observed.peers, turn + 1)
        .into_iter()
        .map(|mut p| {
            p.actors = mix(&p.actors, turn);
            p
        })
        .collect();
    observed.dead_letters = mix(&observed.dead_letters, turn + 2);
    (mix(policies, turn), observed)
}

proptest! {
    #[test]
    fn evaluation_ignores_the_order_of_its_inputs(
        policies in proptest::collection::vec(any_policy(), 0..5),
        observed in observed(),
        turn in 0..16usize,
    ) {
        let once = evaluate(&policies, &observed);
        let (policies2, observed2) = shuffled(&policies, &observed, turn);
        prop_assert_eq!(&once, &evaluate(&policies2, &observed2));
        // Sorted and without duplicates; evaluating twice gives the same.
        prop_assert!(once.windows(2).all(|w| w[0] < w[1]));
        prop_assert_eq!(&once, &evaluate(&policies, &observed));
        // Duplicated inputs add nothing.
        let mut doubled = policies.clone();
        doubled.extend(policies.iter().cloned());
        prop_assert_eq!(&once, &evaluate(&doubled, &observed));
    }
}

#[test]
fn a_prune_is_due_a_day_past_the_keep_and_takes_every_kept_actor_at_once() {
    let keep = policy(
        "k",
        "replication",
        json!({"keep": [{"actors": ["https://c.example"], "days": 7}]}),
        1,
    );
    let with_oldest = |name: &str, days_ago_ms: u64| {
        let mut a = actor(
            &format!("https://c.example/actors/{name}"),
            false,
            Some(5),
            Some(5),
        );
        a.oldest_held_ms = Some(NOW - days_ago_ms);
        a
    };
    let observed = Observed {
        now_ms: NOW,
        actors: vec![
            // Nine days back: a day and more past the keep.
            with_oldest("dave", 9 * DAY_MS),
            // Seven and a half: past the keep, within the grace.
            with_oldest("ed", 7 * DAY_MS + DAY_MS / 2),
            // Six: within the keep.
            with_oldest("flo", 6 * DAY_MS),
        ],
        peers: vec![],
        dead_letters: vec![],
    };
    let week = NOW - 7 * DAY_MS;
    assert_eq!(
        evaluate(std::slice::from_ref(&keep), &observed),
        vec![Obligation::Prune {
            actor: "https://c.example/actors/dave".into(),
            before_ms: week
        }]
    );
    // Acting prunes ed too (past his keep), so both are pruned by one
    // rebuild; flo has nothing to lose.
    assert_eq!(
        prunes(std::slice::from_ref(&keep), &observed),
        vec![
            ("https://c.example/actors/dave".to_owned(), week),
            ("https://c.example/actors/ed".to_owned(), week),
        ]
    );
    // Another policy keeping dave longer, and one mirroring ed: the
    // longest keep wins, and a mirror wins over any keep.
    let longer = policy(
        "l",
        "replication",
        json!({"keep": [{"actors": ["https://c.example/actors/dave"], "days": 30}]}),
        2,
    );
    let mirror = policy(
        "m",
        "replication",
        json!({"mirror": ["https://c.example/actors/ed"]}),
        3,
    );
    assert!(prunes(&[keep, longer, mirror], &observed).is_empty());
    // Nothing held long ago, nothing to do.
    let fresh = Observed {
        actors: vec![with_oldest("dave", DAY_MS)],
        ..observed
    };
    assert!(
        prunes(
            &[policy(
                "k",
                "replication",
                json!({"keep": [{"actors": ["https://c.example"], "days": 7}]}),
                1
            )],
            &fresh
        )
        .is_empty()
    );
}

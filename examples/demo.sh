#!/usr/bin/env bash
# The quickest way to see weft work: two nodes on loopback federate a follow,
# a note, an Announce and a verb that only one of them knew, and this script
# says what happens at each step.
#
#   examples/demo.sh            # builds weft (release) and the Rsvp example first
#
# Set WEFT=path/to/weft to use another binary. Nodes run in a temporary
# folder on ports 18701 and 18702 and stop when the script ends.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
if [ -z "${WEFT:-}" ]; then
    cargo build --release -q -p weft
    WEFT="$ROOT/target/release/weft"
fi
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
cargo build --release -q --target wasm32-unknown-unknown -p weft-example-rsvp
RSVP="$ROOT/target/wasm32-unknown-unknown/release/weft_example_rsvp.wasm"

TMP="$(mktemp -d)"
A=http://127.0.0.1:18701 B=http://127.0.0.1:18702
PUBLIC=https://www.w3.org/ns/activitystreams#Public
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {'d': d}))" "$1"; }
post() { curl -sf -X POST "$1/activity" -H "Authorization: Bearer $2" -d "$3"; }
token() { grep -o 'weft_[A-Za-z0-9_-]*' | head -1; }
wait_for() { # description, command
    for _ in $(seq 1 100); do if eval "$2" >/dev/null 2>&1; then say "✓ $1"; return; fi; sleep 0.2; done
    say "✗ timed out waiting for: $1"; exit 1
}

step "Two nodes: A on $A, B on $B"
for n in a:18701 b:18702; do
    "$WEFT" --data "$TMP/${n%%:*}" init --listen "127.0.0.1:${n##*:}" >/dev/null
    "$WEFT" --data "$TMP/${n%%:*}" run 2>"$TMP/${n%%:*}.log" &
done
wait_for "both nodes answer" "curl -sf $A/health && curl -sf $B/health"

step "Actors: alice on A; bob and carol on B"
ALICE=$("$WEFT" --data "$TMP/a" actor create alice | token)
BOB=$("$WEFT" --data "$TMP/b" actor create bob | token)
CAROL=$("$WEFT" --data "$TMP/b" actor create carol | token)
say "each has an Ed25519 key and a hash-chained log; the tokens are only printed once"
say "$("$WEFT" --data "$TMP/a" resolve acct:bob@127.0.0.1:18702 | head -1)   ← A found bob by WebFinger"

step "alice follows bob (across nodes)"
post $A "$ALICE" "{\"type\":\"Follow\",\"object\":\"$B/actors/bob\",\"to\":[\"$B/actors/bob\"]}" >/dev/null
say "A delivers the Follow to bob's inbox on B; B's Follow verb reacts with an Accept; A receives it"
wait_for "alice follows bob" "curl -sf $A/actors/alice/following | grep -q actors/bob"

step "bob publishes a note"
NOTE=$(post $B "$BOB" "{\"type\":\"Create\",\"object\":{\"type\":\"Note\",\"content\":\"party on friday?\"},\"to\":[\"$PUBLIC\"]}" | json "d['id']")
say "note $NOTE"
wait_for "it is in alice's feed on A (delivered, verified, folded)" \
    "curl -sf -H 'Authorization: Bearer $ALICE' '$A/projections/feed?actor=$A/actors/alice' | grep -q $NOTE"

step "carol (not followed by anyone) posts; bob announces her post"
CNOTE=$(post $B "$CAROL" "{\"type\":\"Create\",\"object\":{\"type\":\"Note\",\"content\":\"I bring cake\"},\"to\":[\"$PUBLIC\"]}" | json "d['id']")
post $B "$BOB" "{\"type\":\"Announce\",\"object\":\"$CNOTE\",\"to\":[\"$PUBLIC\"]}" >/dev/null
say "A gets the Announce, lacks carol's note, fetches it from B and verifies it"
wait_for "alice's feed shows carol's note inside bob's Announce" \
    "curl -sf -H 'Authorization: Bearer $ALICE' '$A/projections/feed?actor=$A/actors/alice' | grep -q 'I bring cake'"

step "B learns a new verb, Rsvp, defined by bob (a Rust component built from examples/rust-rsvp)"
"$WEFT" --data "$TMP/b" module add verb Rsvp "$RSVP" --as bob --language rust \
    --description "answer an invitation" 2>/dev/null | sed 's/^/   /'
say "A does not know Rsvp: alice cannot use it there yet"
say "$(curl -s -X POST $A/activity -H "Authorization: Bearer $ALICE" -d '{"type":"Rsvp"}' | json "d['detail']")"

step "bob answers his own invitation with an Rsvp"
RSVP_ID=$(post $B "$BOB" "{\"type\":\"Rsvp\",\"object\":\"$NOTE\",\"answer\":\"yes\",\"to\":[\"$PUBLIC\"]}" | json "d['id']")
say "A parks it (verb unknown), reads B's registry, fetches bob's DefineActivity and the artifact,"
say "checks the signature and the artifact's hash, and — alice follows bob, the definer — admits it"
wait_for "the Rsvp folded into alice's feed on A" \
    "curl -sf -H 'Authorization: Bearer $ALICE' '$A/projections/feed?actor=$A/actors/alice' | grep -q $RSVP_ID"
say "A's registry now lists:"
"$WEFT" --data "$TMP/a" module list | grep -A1 Rsvp | sed 's/^/   /'
post $A "$ALICE" "{\"type\":\"Rsvp\",\"object\":\"$NOTE\",\"answer\":\"maybe\",\"to\":[\"$PUBLIC\"]}" >/dev/null
say "✓ and alice can answer too"

step "Done: every activity above is signed, content-addressed and verifiable offline (weft verify)"

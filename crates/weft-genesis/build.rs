//! Builds the genesis bundle from source: each built-in verb and projection
//! is compiled to `wasm32-unknown-unknown` with the `guest` profile, made
//! into a component and embedded in this crate (`GENESIS`).

use weft_guest_build::build_guests;

/// (world, module name, crate) of every genesis module.
const GENESIS: &[(&str, &str, &str)] = &[
    ("verb", "Note", "weft-verb-note"),
    ("verb", "Announce", "weft-verb-announce"),
    ("verb", "Endorse", "weft-verb-endorse"),
    ("verb", "Follow", "weft-verb-follow"),
    ("verb", "Accept", "weft-verb-accept"),
    ("verb", "Reject", "weft-verb-reject"),
    ("verb", "Undo", "weft-verb-undo"),
    ("verb", "Like", "weft-verb-like"),
    ("verb", "Delete", "weft-verb-delete"),
    ("projection", "feed", "weft-projection-feed"),
    (
        "projection",
        "follower-graph",
        "weft-projection-follower-graph",
    ),
    ("projection", "endorsements", "weft-projection-endorsements"),
];

fn main() {
    let guests: Vec<(&str, &str)> = GENESIS.iter().map(|g| (g.0, g.2)).collect();
    let (out, components) = build_guests(
        // The Follow verb's duration parser is a guest's source too.
        &["verbs", "projections", "crates/weft-duration"],
        &guests,
    );
    let mut table = String::from(
        "/// (world, name, component) of each genesis module, built from source by build.rs.\npub const GENESIS: &[(&str, &str, &[u8])] = &[\n",
    );
    for ((world, name, _), path) in GENESIS.iter().zip(&components) {
        table.push_str(&format!(
            "    ({world:?}, {name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    table.push_str("];\n");
    weft_guest_build::write_if_changed(&out.join("genesis.rs"), table.as_bytes());
}

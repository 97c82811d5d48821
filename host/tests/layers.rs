//! The layering of the workspace's crates (docs/architecture.md §2), checked
//! from `cargo metadata`: each layer depends only on layers below it, redb and
//! postcard are named by the store alone and wasmtime by the runtime alone.
//!
//! This guards the shape of the code, not behaviour: a new edge that breaks
//! the one-way flow fails here with the edge named.

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::Value;

/// The layers, lowest first. A crate may depend on crates of a lower rank.
const LAYERS: &[(&str, u32)] = &[
    ("weft-duration", 0),
    ("weft-guest-build", 0),
    ("weft-test-guests", 0),
    ("weft-core", 1),
    ("weft-genesis", 2),
    ("weft-store", 2),
    ("weft-runtime", 3),
    ("weft-kernel", 4),
    ("weft-federation", 5),
    ("weft-http", 6),
    // Test helpers sit above every layer but never on the binary.
    ("weft-test-support", 7),
    ("weft", 8),
];

/// Third-party crates only one layer may name (outside tests).
const OWNED: &[(&str, &str)] = &[
    ("redb", "weft-store"),
    ("postcard", "weft-store"),
    ("wasmtime", "weft-runtime"),
];

/// Each workspace package's normal (not dev, not build) dependencies.
fn dependencies() -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .context("run cargo metadata")?;
    anyhow::ensure!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout)?;
    let mut found = BTreeMap::new();
    for package in metadata["packages"].as_array().context("packages")? {
        let name = package["name"].as_str().context("a package name")?;
        let deps = package["dependencies"]
            .as_array()
            .context("dependencies")?
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str().map(str::to_owned))
            .collect();
        found.insert(name.to_owned(), deps);
    }
    Ok(found)
}

#[test]
fn every_layer_depends_only_on_layers_below_it() -> anyhow::Result<()> {
    let packages = dependencies()?;
    let rank: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    for (layer, _) in LAYERS {
        anyhow::ensure!(
            packages.contains_key(*layer),
            "the workspace has no crate `{layer}`"
        );
    }
    let mut upward = Vec::new();
    for (package, deps) in &packages {
        let Some(own) = rank.get(package.as_str()) else {
            continue;
        };
        for dep in deps {
            if let Some(theirs) = rank.get(dep.as_str())
                && theirs >= own
            {
                upward.push(format!("{package} → {dep}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "dependencies that do not point down the layers: {upward:?}"
    );
    Ok(())
}

#[test]
fn storage_and_wasm_engines_are_named_by_one_crate_each() -> anyhow::Result<()> {
    let packages = dependencies()?;
    for (library, owner) in OWNED {
        let users: Vec<&String> = packages
            .iter()
            .filter(|(_, deps)| deps.iter().any(|d| d == library))
            .map(|(package, _)| package)
            .collect();
        assert_eq!(
            users,
            [owner],
            "`{library}` must be a dependency of `{owner}` alone"
        );
    }
    Ok(())
}

//! The published WIT contract never changes. Every version lives in its own
//! directory under `sdk/wit/`, named after its package (`weft-module@0.1.0`
//! holds `package weft:module@0.1.0;`), and its content is pinned here.

use std::path::{Path, PathBuf};

/// BLAKE3 of each published version directory, as [`digest`] computes it.
const PUBLISHED: &[(&str, &str)] = &[
    (
        "weft-module@0.1.0",
        "c9f4331db831a26ea288bbf3a2598217df1d225a36957fdfa7221fca808f68c0",
    ),
    (
        "weft-module@0.2.0",
        "98d16167a79a39938c71ee886a31717cd08dd4afd2cfbb1b5fe070b8c856571f",
    ),
    (
        "weft-module@0.3.0",
        "03ce7c609bc76fd31f12675339d413b389a8cb9f5b4a895f66239179a6bf3019",
    ),
];

fn wit_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

/// Every file under `dir`, as (path relative to `dir` with `/` separators,
/// content), sorted by path.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .expect("under the root")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                let content =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                out.push((relative, content));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The hash of a version directory: each file's path and content, in path
/// order, each length-prefixed.
fn digest(dir: &Path) -> String {
    let mut hasher = blake3::Hasher::new();
    for (path, content) in files(dir) {
        for part in [path.as_bytes(), &content] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }
    hasher.finalize().to_hex().to_string()
}

/// The `ns:name@version` of a WIT file's `package` line, if it has one.
fn package_line(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("package ")?.strip_suffix(';'))
        .map(str::trim)
}

/// Is `v` a semantic version (`1.2.3`, optionally `-pre` and `+build`)?
fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        })
}

fn version_dirs() -> Vec<(String, PathBuf)> {
    let root = wit_root();
    let mut dirs: Vec<(String, PathBuf)> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("read {}: {e}", root.display()))
        .map(|entry| {
            let entry = entry.expect("a directory entry");
            (
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            )
        })
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn published_versions_are_never_edited() {
    for (name, pinned) in PUBLISHED {
        let dir = wit_root().join(name);
        assert!(dir.is_dir(), "sdk/wit/{name} is published and must stay");
        let actual = digest(&dir);
        assert_eq!(
            actual, *pinned,
            "sdk/wit/{name} changed. Published WIT versions are never edited: restore it \
             (git checkout sdk/wit/{name}) and put changes in a new version directory beside \
             it, e.g. sdk/wit/weft-module@0.2.0, with its own `package` line"
        );
    }
}

#[test]
fn every_entry_is_a_pinned_version_directory() {
    for (name, path) in version_dirs() {
        assert!(
            path.is_dir(),
            "sdk/wit/{name}: sdk/wit holds only version directories named <namespace>-<package>@<semver>"
        );
        let (_, version) = name.split_once('@').unwrap_or_else(|| {
            panic!("sdk/wit/{name}: a version directory is named <namespace>-<package>@<semver>")
        });
        assert!(
            is_semver(version),
            "sdk/wit/{name}: `{version}` is not a semantic version"
        );
        // Every file that declares a package declares this one: the
        // directory's name is `ns:name@version` with `-` for `:`.
        let mut declared = 0;
        for (file, content) in files(&path) {
            if !file.ends_with(".wit") {
                continue;
            }
            let text = String::from_utf8(content)
                .unwrap_or_else(|_| panic!("sdk/wit/{name}/{file} is not UTF-8"));
            if let Some(line) = package_line(&text) {
                assert_eq!(
                    line.replacen(':', "-", 1),
                    name,
                    "sdk/wit/{name}/{file} declares `package {line};`: the directory's name must \
                     be its package with `-` for `:`"
                );
                declared += 1;
            }
        }
        assert!(
            declared > 0,
            "sdk/wit/{name} holds no .wit file with a `package` line"
        );
        assert!(
            PUBLISHED.iter().any(|(pinned, _)| *pinned == name),
            "sdk/wit/{name} is not pinned: a version directory here is a published contract; \
             add (\"{name}\", \"{}\") to PUBLISHED in sdk/rust/tests/wit_published.rs",
            digest(&path)
        );
    }
}

#[test]
fn semver_and_package_lines() {
    assert!(is_semver("0.1.0") && is_semver("1.20.3-rc.1") && is_semver("1.0.0+build"));
    assert!(!is_semver("0.1") && !is_semver("01.0.0") && !is_semver("a.b.c"));
    assert_eq!(
        package_line("/// doc\npackage weft:module@0.1.0;\n"),
        Some("weft:module@0.1.0")
    );
    assert_eq!(package_line("interface x {}"), None);
}

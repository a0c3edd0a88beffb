//! The MSRV in `Cargo.toml` (`rust-version`) is true of the dependencies:
//! no package in `Cargo.lock` declares a newer `rust-version` than ours.
//! (Our own code is held to it by clippy's `incompatible_msrv` lint, which
//! reads the same field; only one toolchain exists where CI runs, so the
//! MSRV itself is never compiled with.)

use std::process::Command;

/// `1.89`, `1.85.0` → comparable (major, minor, patch).
fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| {
        p.parse::<u64>()
            .unwrap_or_else(|_| panic!("rust-version `{text}` is not a version"))
    });
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

#[test]
fn no_locked_dependency_needs_a_newer_rust_than_ours() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--locked",
            "--format-version",
            "1",
            "--manifest-path",
            manifest,
        ])
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo metadata failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let ours = packages
        .iter()
        .find(|p| p["name"] == "meshgen")
        .and_then(|p| p["rust_version"].as_str())
        .expect("Cargo.toml sets rust-version");
    assert_eq!(ours, env!("CARGO_PKG_RUST_VERSION"));
    let too_new: Vec<String> = packages
        .iter()
        .filter(|p| p["name"] != "meshgen")
        .filter_map(|p| {
            let needs = p["rust_version"].as_str()?;
            let (name, at) = (p["name"].as_str()?, p["version"].as_str()?);
            (version(needs) > version(ours)).then(|| format!("{name} {at} needs Rust {needs}"))
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "rust-version = \"{ours}\" in Cargo.toml is not true: {too_new:?}; raise it (and the README's MSRV) or pin an older version"
    );
    // The check reads every locked package, not a handful.
    assert!(packages.len() > 50, "{} packages", packages.len());
}

#[test]
fn versions_compare_numerically() {
    assert!(version("1.100") > version("1.89"));
    assert!(version("1.89.1") > version("1.89"));
    assert_eq!(version("1.89"), version("1.89.0"));
}

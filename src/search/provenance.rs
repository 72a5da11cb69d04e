//! Provenance stored with a sweep's results (`meta` of the results store): quantscape version,
//! git revision of the source tree it was built from, and the machine (host, OS, arch, threads).

use std::collections::BTreeMap;

/// Git revision, machine and version, stored with the results.
pub fn provenance() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert(
        "quantscape_version".into(),
        env!("CARGO_PKG_VERSION").into(),
    );
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    m.insert(
        "git_revision".into(),
        rev.unwrap_or_else(|| "unknown".into()),
    );
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    m.insert(
        "machine".into(),
        format!(
            "{} ({} {}, {cores} threads)",
            host.trim(),
            std::env::consts::OS,
            std::env::consts::ARCH
        ),
    );
    m
}

//! Which certificate authorities programs inside the sandbox trust (SPEC §4,
//! DESIGN "Secrets and TLS"): the system's roots, plus the sandbox's own CA
//! when the egress proxy terminates TLS to inject SECRET values, plus
//! `network.extraCaCerts` when given.
//!
//! Two files are written into the state dir and bound read-only inside:
//! - [`CA_FILE`]: only the added roots (for `NODE_EXTRA_CA_CERTS`, which
//!   adds to Node's and Bun's own list);
//! - [`BUNDLE_FILE`]: the system bundle of the FROM tree followed by the added
//!   roots (for the variables that *replace* the trust store: `SSL_CERT_FILE`,
//!   `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`, `GIT_SSL_CAINFO`).
//!
//! The bundle is also bound over every system bundle file the FROM tree has
//! (Debian's, Fedora's, openSUSE's, Alpine's), so programs that ignore the
//! variables and read the system bundle (curl, git, Python's ssl, OpenSSL)
//! trust the same roots. Only regular files are covered: a symlink bundle
//! points at one of the others.

use crate::protocol::Mount;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The added roots, inside the sandbox.
pub const CA_FILE: &str = "/run/bun-sandbox/ca.pem";
/// The system roots and the added ones, inside the sandbox.
pub const BUNDLE_FILE: &str = "/run/bun-sandbox/ca-bundle.pem";

/// Where distributions keep the system's PEM bundle, most common first.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
];

/// The mounts and variables that make the sandbox trust the added roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    pub mounts: Vec<Mount>,
    pub env: BTreeMap<String, String>,
}

/// Writes the two files into `state_dir` and plans their mounts. `base_dir`
/// is the FROM tree as the host sees it (`/` for FROM host); `added_pem` the
/// added roots, PEM.
pub fn install(state_dir: &Path, base_dir: &Path, added_pem: &str) -> io::Result<Trust> {
    let dir = state_dir.join("trust");
    fs::create_dir_all(&dir)?;
    // Certificates are public, and the sandbox's user may be another uid
    // than ours (a root host user's): readable by all, whatever the umask.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    let ca = dir.join("ca.pem");
    let bundle = dir.join("ca-bundle.pem");
    let mut added = added_pem.trim_end().to_string();
    added.push('\n');
    write_public(&ca, &added)?;
    let system = system_bundles(base_dir);
    let mut all =
        system.first().and_then(|p| fs::read_to_string(base_dir.join(strip_root(p))).ok()).unwrap_or_default();
    if !all.is_empty() && !all.ends_with('\n') {
        all.push('\n');
    }
    all.push_str(&added);
    write_public(&bundle, &all)?;

    let mut mounts: Vec<Mount> =
        system.into_iter().map(|target| Mount::RoBind { source: bundle.clone(), target }).collect();
    mounts.push(Mount::RoBind { source: ca, target: CA_FILE.into() });
    mounts.push(Mount::RoBind { source: bundle, target: BUNDLE_FILE.into() });
    let mut env = BTreeMap::new();
    for name in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"] {
        env.insert(name.to_string(), BUNDLE_FILE.to_string());
    }
    env.insert("NODE_EXTRA_CA_CERTS".into(), CA_FILE.into());
    Ok(Trust { mounts, env })
}

fn write_public(path: &Path, contents: &str) -> io::Result<()> {
    fs::write(path, contents)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
}

/// The system bundle paths (as seen inside) that are regular files in the
/// FROM tree, with their parents real directories: a bind never follows a
/// symlink the tree controls.
fn system_bundles(base_dir: &Path) -> Vec<PathBuf> {
    SYSTEM_BUNDLES
        .iter()
        .map(PathBuf::from)
        .filter(|inside| {
            let mut at = base_dir.to_path_buf();
            let parts: Vec<_> = strip_root(inside).components().collect();
            parts.iter().enumerate().all(|(i, part)| {
                at.push(part);
                match fs::symlink_metadata(&at) {
                    Ok(m) if i + 1 == parts.len() => m.file_type().is_file(),
                    Ok(m) => m.file_type().is_dir(),
                    Err(_) => false,
                }
            })
        })
        .collect()
}

fn strip_root(p: &Path) -> &Path {
    p.strip_prefix("/").unwrap_or(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "-----BEGIN CERTIFICATE-----\nADDED\n-----END CERTIFICATE-----\n";

    #[test]
    fn bundles_are_covered_and_the_variables_point_inside() {
        let base = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        fs::create_dir_all(base.path().join("etc/ssl/certs")).unwrap();
        fs::write(base.path().join("etc/ssl/certs/ca-certificates.crt"), "SYSTEM").unwrap();
        // A symlinked bundle is not bound over (it points at the real one).
        std::os::unix::fs::symlink("certs/ca-certificates.crt", base.path().join("etc/ssl/cert.pem")).unwrap();
        // Nor is a bundle behind a symlinked directory.
        fs::create_dir_all(base.path().join("elsewhere/tls/certs")).unwrap();
        fs::write(base.path().join("elsewhere/tls/certs/ca-bundle.crt"), "X").unwrap();
        fs::create_dir_all(base.path().join("etc/pki")).unwrap();
        std::os::unix::fs::symlink("../../elsewhere/tls", base.path().join("etc/pki/tls")).unwrap();

        let t = install(state.path(), base.path(), ROOT).unwrap();
        let bundle = state.path().join("trust/ca-bundle.pem");
        assert_eq!(fs::read_to_string(&bundle).unwrap(), format!("SYSTEM\n{ROOT}"));
        assert_eq!(fs::read_to_string(state.path().join("trust/ca.pem")).unwrap(), ROOT);
        let targets: Vec<_> = t
            .mounts
            .iter()
            .map(|m| match m {
                Mount::RoBind { target, .. } => target.to_string_lossy().into_owned(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(targets, ["/etc/ssl/certs/ca-certificates.crt", CA_FILE, BUNDLE_FILE]);
        assert_eq!(t.env["SSL_CERT_FILE"], BUNDLE_FILE);
        assert_eq!(t.env["GIT_SSL_CAINFO"], BUNDLE_FILE);
        assert_eq!(t.env["NODE_EXTRA_CA_CERTS"], CA_FILE);
    }

    #[test]
    fn a_tree_without_a_system_bundle_still_gets_the_files() {
        let base = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let t = install(state.path(), base.path(), ROOT).unwrap();
        assert_eq!(fs::read_to_string(state.path().join("trust/ca-bundle.pem")).unwrap(), ROOT);
        assert_eq!(t.mounts.len(), 2);
    }
}

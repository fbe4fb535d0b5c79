//! Each sandbox's state (uppers, work dirs) lives in one directory under a
//! per-user root; `stop()` removes it, and directories left by a process that
//! died are removed when the next sandbox starts.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// `$BUN_SANDBOX_STATE_DIR`, else `/tmp/bun-sandbox-<uid>`. `/tmp` is never
/// overlaid from the host, so the uppers never sit inside a lower layer.
pub fn root() -> PathBuf {
    match std::env::var_os("BUN_SANDBOX_STATE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(format!("/tmp/bun-sandbox-{}", nix::unistd::getuid())),
    }
}

/// Creates a fresh state dir for this process's next sandbox. With `owner`
/// (a root host user's sandbox user outside, `super::remap`), the state dir
/// is that uid's, and the root is `0711` so that it may reach it and the
/// scratch mount point (but list nothing); so must every directory above.
pub fn create(root: &Path, owner: Option<(u32, u32)>) -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    fs::DirBuilder::new().recursive(true).mode(0o700).create(root)?;
    let meta = fs::symlink_metadata(root)?;
    // A root host user's root may be 0711 (its sandbox user may be host
    // root or not, from one sandbox to the next).
    let others = if nix::unistd::getuid().is_root() { 0o066 } else { 0o077 };
    // Another user's directory (or a link planted in /tmp) is never used.
    if !meta.is_dir() || meta.uid() != nix::unistd::getuid().as_raw() || meta.mode() & others != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not a private directory of this user", root.display()),
        ));
    }
    if let Some((uid, _)) = owner {
        if meta.mode() & 0o777 != 0o711 {
            fs::set_permissions(root, fs::Permissions::from_mode(0o711))?;
        }
        if let Some((dir, mode)) = super::remap::closed_above(root) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} (mode {mode:04o}) is closed to the sandbox's user (host uid {uid}), which must reach its state directory: set BUN_SANDBOX_STATE_DIR to a directory below none that is closed to other users",
                    dir.display()
                ),
            ));
        }
    }
    clean_stale(root);
    match fs::DirBuilder::new().mode(0o700).create(scratch(root)) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    // Taken already: a dir a process of the same pid left (a pid that a new
    // container's processes get every time), or another copy of this addon
    // in the same process, which counts on its own.
    let names = std::iter::repeat_with(|| {
        root.join(format!("sb-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)))
    });
    let dir = make_first_free(names, |dir| fs::DirBuilder::new().mode(0o700).create(dir))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
    }
    Ok(dir)
}

/// Makes the first of `names` not taken already with `make`; gives up (with
/// "File exists") once 1000 were.
pub fn make_first_free(
    names: impl Iterator<Item = PathBuf>,
    make: impl Fn(&Path) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let mut taken = None;
    for dir in names.take(1001) {
        match make(&dir) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => taken = Some(e),
            made => return made.map(|()| dir),
        }
    }
    Err(taken.unwrap_or_else(|| io::Error::other("no name to make")))
}

/// The mount point of every sandbox's scratch tmpfs: each mounts its own
/// over it in its mount namespace, so on the host it stays an empty
/// directory that lives as long as the state root.
pub fn scratch(root: &Path) -> PathBuf {
    root.join("scratch")
}

/// A state dir's name (`sb-<pid>-<n>`), which its cgroups take too.
pub fn name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Whether `name` is a sandbox's (`sb-<pid>-<n>`, as `create` names state
/// dirs and the pids cgroups named after them, or `gone-sb-<pid>-<n>` once
/// `discard` renamed it) whose process is gone.
pub fn left_by_dead_process(name: &std::ffi::OsStr) -> bool {
    let name = name.to_str().map(|n| n.strip_prefix(GONE).unwrap_or(n));
    let pid = name.and_then(|n| n.strip_prefix("sb-")).and_then(|n| n.split('-').next());
    let Some(pid) = pid.and_then(|p| p.parse::<i32>().ok()) else { return false };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
}

/// What a state dir is renamed to by `discard`.
const GONE: &str = "gone-";

/// Removes the state dirs of processes that no longer exist.
pub fn clean_stale(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else { return };
    for entry in entries.filter_map(Result::ok) {
        if left_by_dead_process(&entry.file_name()) {
            let _ = remove(&entry.path());
        }
    }
}

/// Takes a state dir out of use at once: renamed to `gone-<name>`, which
/// the caller removes (`remove`) when it likes. Deleting a tree on disk
/// costs a fraction of a millisecond per directory; `stop()` need not wait
/// for it. A process that exits first leaves it to the next one's
/// `clean_stale`. Falls back to removing it here.
pub fn discard(dir: &Path) -> io::Result<Option<PathBuf>> {
    let gone = dir.file_name().map(|n| {
        let mut name = std::ffi::OsString::from(GONE);
        name.push(n);
        dir.with_file_name(name)
    });
    match gone {
        Some(gone) if fs::rename(dir, &gone).is_ok() => Ok(Some(gone)),
        _ => remove(dir).map(|()| None),
    }
}

/// Removes a state dir, including overlay work dirs the kernel left with no
/// permissions (made writable as they are met: one pass).
pub fn remove(dir: &Path) -> io::Result<()> {
    match remove_tree(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn remove_tree(dir: &Path) -> io::Result<()> {
    // Its entries can be listed and unlinked only if it is ours to write.
    if fs::symlink_metadata(dir)?.mode() & 0o700 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        // Not following links: a link is removed, never what it points to.
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
    }
    fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name taken already (here by dirs a process of the same pid left) is
    /// passed over: the start does not fail, and nothing taken is reused.
    #[test]
    fn a_state_dir_name_taken_already_is_passed_over() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().join("state");
        let first = create(&root, None).unwrap();
        let n: u64 = name(&first).rsplit('-').next().unwrap().parse().unwrap();
        let taken: Vec<PathBuf> =
            (n + 1..n + 20).map(|i| root.join(format!("sb-{}-{i}", std::process::id()))).collect();
        for dir in &taken {
            fs::create_dir(dir).unwrap();
        }
        let next = create(&root, None).unwrap();
        assert!(next.is_dir() && next != first && !taken.contains(&next), "{next:?}");
    }
}

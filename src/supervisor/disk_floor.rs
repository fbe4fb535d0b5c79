//! The safe default for the disk a sandbox writes. Its WORKDIR's changes
//! collect on the host's disk, in the state dir, and without
//! `limits.diskBytes` (which moves every layer onto a tmpfs of that size)
//! nothing caps them but the filesystem's size: a runaway write would fill
//! the host's disk. So a task looks at the free space of the state dir's
//! filesystem every quarter second, and once it is below the sandbox's
//! floor, kills every process in the sandbox (PID 1 serves on) and reports
//! it as a `limit` violation. The sandbox and its changes stay, for `diff`,
//! extraction, or a command that deletes what filled the disk; once there
//! is more room than the floor again, the floor is watched again.
//!
//! The floor is the least of 4 GiB, a twentieth of the filesystem, and half
//! of what was free when the sandbox started: a host with little room left
//! still runs sandboxes, and each may take half of it. Free space is what
//! an ordinary user may still write (`f_bavail`), which the root-reserved
//! blocks are not part of. A write faster than the check can pass the
//! floor by up to a quarter second's worth before its process is killed.

use super::connection::Sender;
use super::jobs::{Hooks, Violation};
use crate::protocol::Request;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often the free space is looked at.
const POLL: Duration = Duration::from_millis(250);

/// A filesystem's size and what an ordinary user may still write there, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    pub size: u64,
    pub available: u64,
}

/// The room on the filesystem that holds `dir`.
pub fn room(dir: &Path) -> io::Result<Room> {
    let st = nix::sys::statvfs::statvfs(dir)?;
    let unit = st.fragment_size();
    Ok(Room { size: st.blocks().saturating_mul(unit), available: st.blocks_available().saturating_mul(unit) })
}

/// The floor of a sandbox that started with `at_start` on its state dir's filesystem.
pub fn floor(at_start: Room) -> u64 {
    (4u64 << 30).min(at_start.size / 20).min(at_start.available / 2)
}

/// Watches `state_dir`'s filesystem until the state dir is gone (the
/// sandbox stopped, which also aborts this task) or init is found gone when
/// told to kill; `root` is the state root, named in reports.
pub async fn watch(state_dir: PathBuf, root: PathBuf, floor: u64, init: Sender, hooks: Hooks) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + POLL, POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut armed = true;
    loop {
        tick.tick().await;
        let Ok(now) = room(&state_dir) else { return };
        let below = now.available < floor;
        if armed && below {
            armed = false;
            if init.send(&Request::KillAll).await.is_err() {
                return;
            }
            let detail = format!(
                "the disk that holds the sandbox's changes (the filesystem of {}) has {} bytes free, less than the \
                 sandbox's floor of {floor} bytes: every process in the sandbox was killed so that the host keeps \
                 room; the changes are kept (limits.diskBytes caps what a sandbox may write instead)",
                root.display(),
                now.available
            );
            hooks.violation(Violation { kind: "limit", detail, host: None }).await;
        } else if !armed && !below {
            armed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn the_floor_is_the_least_of_4_gib_a_twentieth_and_half_of_what_was_free() {
        // A large disk with plenty free: 4 GiB.
        assert_eq!(floor(Room { size: 1000 * GIB, available: 500 * GIB }), 4 * GIB);
        // A small one: a twentieth of it.
        assert_eq!(floor(Room { size: 20 * GIB, available: 15 * GIB }), GIB);
        // Little left: half of that, so the sandbox may still write the other half.
        assert_eq!(floor(Room { size: 1000 * GIB, available: 2 * GIB }), GIB);
        // Full: nothing to keep, and nothing a sandbox could write either.
        assert_eq!(floor(Room { size: 1000 * GIB, available: 0 }), 0);
    }

    #[test]
    fn room_is_read_off_the_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let r = room(dir.path()).unwrap();
        assert!(r.size > 0 && r.available <= r.size, "{r:?}");
        assert!(room(&dir.path().join("missing")).is_err());
    }
}

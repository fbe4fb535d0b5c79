//! A pids cgroup per sandbox when the host user is root.
//!
//! `RLIMIT_NPROC` does not bind the host's root user (the kernel exempts
//! `INIT_USER` at fork), and a root host user is root's uid outside the
//! sandbox: without a cgroup a fork bomb would reach the host.

use std::fs;
use std::io;
use crate::protocol::CgroupJoin;
use std::path::{Path, PathBuf};

/// The cgroup v1 pids hierarchy.
const V1: &str = "/sys/fs/cgroup/pids";

pub struct PidsCgroup {
    dir: PathBuf,
}

/// Where pids cgroups can be made: the v1 pids hierarchy, or a cgroup2 root
/// that offers the pids controller.
fn parent() -> Option<PathBuf> {
    let v1 = Path::new(V1);
    if v1.join("cgroup.procs").exists() {
        return Some(v1.join("bun-sandbox"));
    }
    let v2 = Path::new("/sys/fs/cgroup");
    let controllers = fs::read_to_string(v2.join("cgroup.controllers")).ok()?;
    controllers.split_whitespace().any(|c| c == "pids").then(|| v2.join("bun-sandbox"))
}

impl PidsCgroup {
    pub fn create(name: &str, max: u64) -> io::Result<PidsCgroup> {
        let parent = parent().ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no pids cgroup controller is mounted"))?;
        fs::create_dir_all(&parent)?;
        if parent.starts_with("/sys/fs/cgroup") && !parent.starts_with(V1) {
            // cgroup2: the controller must be enabled for the children.
            let _ = fs::write(parent.parent().unwrap_or(&parent).join("cgroup.subtree_control"), "+pids");
            let _ = fs::write(parent.join("cgroup.subtree_control"), "+pids");
        }
        // Left by processes that died (named like their state dirs); a live
        // process's cgroups are its own business.
        if let Ok(entries) = fs::read_dir(&parent) {
            for e in entries.filter_map(Result::ok) {
                if super::state::left_by_dead_process(&e.file_name()) {
                    let _ = fs::remove_dir(e.path());
                }
            }
        }
        let dir = parent.join(name);
        fs::create_dir(&dir)?;
        let cg = PidsCgroup { dir };
        cg.set_max(max)?;
        Ok(cg)
    }

    /// Its process limit.
    pub fn set_max(&self, max: u64) -> io::Result<()> {
        fs::write(self.dir.join("pids.max"), max.to_string())
    }

    /// The file a process about to start writes "0" into to join, opened:
    /// on cgroup v1 `tasks` (a single-threaded writer moves at once; a
    /// write to `cgroup.procs` waited 5–16 ms here for an RCU grace
    /// period), on cgroup2 `cgroup.procs`.
    pub fn join_file(&self) -> io::Result<(fs::File, CgroupJoin)> {
        let how = if self.dir.starts_with(V1) { CgroupJoin::Tasks } else { CgroupJoin::Procs };
        let name = match how {
            CgroupJoin::Tasks => "tasks",
            CgroupJoin::Procs => "cgroup.procs",
        };
        Ok((fs::OpenOptions::new().write(true).open(self.dir.join(name))?, how))
    }

    /// Removes the cgroup once its processes are gone.
    pub fn remove(&self) {
        for _ in 0..50 {
            if fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

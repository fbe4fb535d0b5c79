//! A root host user's sandbox gets cgroups of its own: pids always, memory
//! when it has `limits.memoryBytes`.
//!
//! `RLIMIT_NPROC` does not bind the host's root user (the kernel exempts
//! `INIT_USER` at fork), and a root host user is root's uid outside the
//! sandbox: without a cgroup a fork bomb would reach the host. `RLIMIT_DATA`
//! binds each process alone; a memory cgroup binds them together, tmpfs
//! pages they write included.
//!
//! On cgroup v1 each controller has its own hierarchy, and the sandbox's
//! cgroups are made below the calling process's own in each (a container's
//! or a CI job's limits still count the sandbox). On cgroup2 one cgroup
//! holds both controllers.

use crate::protocol::CgroupJoin;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where the cgroup hierarchies are mounted.
const CGROUP_FS: &str = "/sys/fs/cgroup";
/// The directory below which a process's sandboxes' cgroups are made.
const OURS: &str = "bun-sandbox";

pub struct SandboxCgroups {
    /// The pids cgroup (v1), or the sandbox's one cgroup (cgroup2).
    dir: PathBuf,
    v2: bool,
    /// The v1 memory cgroup, once made by [`SandboxCgroups::limit_memory`].
    memory: Option<PathBuf>,
    /// Where the kernel counts the OOM kills of a memory limit, once set.
    oom_events: Option<PathBuf>,
    /// PID 1 is in `dir` already (a spare's joined it when it was made).
    pub joined: bool,
}

/// The directory of this process's own cgroup in the v1 hierarchy of
/// `controller`, when that hierarchy is mounted at its usual place: where
/// `/proc/self/cgroup` says, or the mount's root when that path is not
/// below it (a container's own cgroup mounted as the root).
fn own_v1(controller: &str) -> Option<PathBuf> {
    let mount = Path::new(CGROUP_FS).join(controller);
    if !mount.join("cgroup.procs").exists() {
        return None;
    }
    let table = fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = table.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers.split(',').any(|c| c == controller).then(|| mount.join(path.trim_start_matches('/')))
    });
    Some(own.filter(|d| d.join("cgroup.procs").exists()).unwrap_or(mount))
}

/// Where pids cgroups can be made: below this process's own in the v1 pids
/// hierarchy, or in a cgroup2 root that offers the pids controller. The
/// second is cgroup2.
fn parent() -> Option<(PathBuf, bool)> {
    if let Some(own) = own_v1("pids") {
        return Some((own.join(OURS), false));
    }
    let v2 = Path::new(CGROUP_FS);
    let controllers = fs::read_to_string(v2.join("cgroup.controllers")).ok()?;
    controllers.split_whitespace().any(|c| c == "pids").then(|| (v2.join(OURS), true))
}

/// Whether a root host user's sandboxes can have a pids cgroup, and a
/// memory one.
pub fn available() -> (bool, bool) {
    match parent() {
        Some((_, false)) => (true, own_v1("memory").is_some()),
        Some((_, true)) => (
            true,
            fs::read_to_string(Path::new(CGROUP_FS).join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "memory")),
        ),
        None => (false, false),
    }
}

/// Makes `parent/name` (and `parent`), first removing the cgroups left in
/// `parent` by processes that died (named like their state dirs); a live
/// process's cgroups are its own business. A name taken already (a live
/// process of the same pid as one that died, or another copy of this addon
/// in the same process) gets a suffix: `name-1`, `name-2`, ….
fn make_in(parent: &Path, name: &str) -> io::Result<PathBuf> {
    fs::create_dir_all(parent)?;
    if let Ok(entries) = fs::read_dir(parent) {
        for e in entries.filter_map(Result::ok) {
            if super::state::left_by_dead_process(&e.file_name()) {
                let _ = fs::remove_dir(e.path());
            }
        }
    }
    let names = (0..).map(|n| match n {
        0 => parent.join(name),
        n => parent.join(format!("{name}-{n}")),
    });
    super::state::make_first_free(names, |dir| fs::create_dir(dir))
}

/// Writes `value` into the cgroup file `dir/file`.
fn set(dir: &Path, file: &str, value: impl ToString) -> io::Result<()> {
    fs::write(dir.join(file), value.to_string())
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.join(file).display())))
}

impl SandboxCgroups {
    pub fn create(name: &str, max: u64) -> io::Result<SandboxCgroups> {
        let (parent, v2) = parent()
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no pids cgroup controller is mounted"))?;
        if v2 {
            // The controllers must be enabled for the children; memory
            // where the host offers it.
            for dir in [Path::new(CGROUP_FS), &parent] {
                fs::create_dir_all(dir)?;
                let _ = fs::write(dir.join("cgroup.subtree_control"), "+pids");
                let _ = fs::write(dir.join("cgroup.subtree_control"), "+memory");
            }
        }
        let dir = make_in(&parent, name)?;
        let cg = SandboxCgroups { dir, v2, memory: None, oom_events: None, joined: false };
        cg.set_max(max)?;
        Ok(cg)
    }

    /// Its process limit.
    pub fn set_max(&self, max: u64) -> io::Result<()> {
        set(&self.dir, "pids.max", max)
    }

    /// The file a process about to start writes "0" into to join, opened:
    /// on cgroup v1 `tasks` (a single-threaded writer moves at once; a
    /// write to `cgroup.procs` waited 5–16 ms here for an RCU grace
    /// period), on cgroup2 `cgroup.procs`.
    pub fn join_file(&self) -> io::Result<(fs::File, CgroupJoin)> {
        join_file(&self.dir, self.v2)
    }

    /// Limits the memory of the sandbox's processes together to `bytes`,
    /// swap included; named `name` on cgroup v1, where it is a cgroup of
    /// its own in the memory hierarchy that PID 1 then joins: its file
    /// comes back. Unsupported where the host has no memory controller.
    pub fn limit_memory(&mut self, name: &str, bytes: u64) -> io::Result<Option<(fs::File, CgroupJoin)>> {
        let unsupported = || io::Error::new(io::ErrorKind::Unsupported, "no memory cgroup controller is available");
        if self.v2 {
            if !self.dir.join("memory.max").exists() {
                return Err(unsupported());
            }
            set(&self.dir, "memory.max", bytes)?;
            self.oom_events = Some(self.dir.join("memory.events"));
            // Absent without swap accounting: then there is no swap to use.
            if self.dir.join("memory.swap.max").exists() {
                set(&self.dir, "memory.swap.max", 0)?;
            }
            return Ok(None);
        }
        let parent = own_v1("memory").ok_or_else(unsupported)?.join(OURS);
        let dir = make_in(&parent, name)?;
        self.memory = Some(dir.clone());
        set(&dir, "memory.limit_in_bytes", bytes)?;
        self.oom_events = Some(dir.join("memory.oom_control"));
        // Memory and swap together (after the memory limit, which it may
        // not be below); absent without swap accounting.
        if dir.join("memory.memsw.limit_in_bytes").exists() {
            set(&dir, "memory.memsw.limit_in_bytes", bytes)?;
        }
        join_file(&dir, false).map(Some)
    }

    /// Where the OOM kills of its memory limit are counted, once it has one.
    pub fn oom_kills(&self) -> Option<OomKills> {
        self.oom_events.clone().map(OomKills)
    }

    /// Removes the cgroups once their processes are gone.
    pub fn remove(&self) {
        for dir in std::iter::once(&self.dir).chain(&self.memory) {
            for _ in 0..50 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

fn join_file(dir: &Path, v2: bool) -> io::Result<(fs::File, CgroupJoin)> {
    let (name, how) = match v2 {
        false => ("tasks", CgroupJoin::Tasks),
        true => ("cgroup.procs", CgroupJoin::Procs),
    };
    Ok((fs::OpenOptions::new().write(true).open(dir.join(name))?, how))
}

/// The count of a memory cgroup's OOM kills: `oom_kill N` in v1's
/// `memory.oom_control` and cgroup2's `memory.events`.
pub struct OomKills(PathBuf);

impl OomKills {
    /// How many processes the kernel's OOM killer has killed for the limit.
    pub fn read(&self) -> Option<u64> {
        let text = fs::read_to_string(&self.0).ok()?;
        text.lines().find_map(|l| l.strip_prefix("oom_kill ")).and_then(|n| n.trim().parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name taken already gets the first free suffix.
    #[test]
    fn a_taken_name_gets_a_suffix() {
        let parent = tempfile::tempdir().unwrap();
        fs::create_dir(parent.path().join("sb-1-7")).unwrap();
        fs::create_dir(parent.path().join("sb-1-7-1")).unwrap();
        assert_eq!(make_in(parent.path(), "sb-1-7").unwrap(), parent.path().join("sb-1-7-2"));
        assert_eq!(make_in(parent.path(), "sb-1-8").unwrap(), parent.path().join("sb-1-8"));
    }

    /// A root host user's sandbox cgroups sit below the calling process's
    /// own (v1: in each hierarchy), carry their limits, and go.
    #[test]
    fn made_below_our_own_with_their_limits() {
        if !nix::unistd::getuid().is_root() || own_v1("memory").is_none() || own_v1("pids").is_none() {
            eprintln!("skipped: needs root and the v1 pids and memory hierarchies");
            return;
        }
        let name = format!("sb-{}-unit-{}", std::process::id(), line!());
        let mut cg = SandboxCgroups::create(&name, 77).unwrap();
        assert_eq!(cg.dir, own_v1("pids").unwrap().join(OURS).join(&name));
        assert_eq!(fs::read_to_string(cg.dir.join("pids.max")).unwrap().trim(), "77");
        assert!(cg.oom_kills().is_none(), "no memory limit yet");
        let (_, how) = cg.limit_memory(&name, 64 << 20).unwrap().expect("v1 memory is a cgroup of its own");
        assert_eq!(how, CgroupJoin::Tasks);
        let memory = own_v1("memory").unwrap().join(OURS).join(&name);
        assert_eq!(cg.memory.as_ref(), Some(&memory));
        assert_eq!(fs::read_to_string(memory.join("memory.limit_in_bytes")).unwrap().trim(), (64u64 << 20).to_string());
        assert_eq!(cg.oom_kills().and_then(|k| k.read()), Some(0));
        cg.remove();
        assert!(!cg.dir.exists() && !memory.exists());
    }
}

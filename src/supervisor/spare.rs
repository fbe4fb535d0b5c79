//! A spare: the next sandbox's init, started ahead of time, with the part of
//! its root that depends on the host alone already mounted. Starting the
//! helper, making the namespaces and mounting a dozen overlays, `/proc`,
//! `/dev` and the masks is most of a cold start; a sandbox that takes a
//! spare sends its plan and waits only for the WORKDIR's layer, unless the
//! spare built that too.
//!
//! A spare is made for the next sandbox like one (same init binary, same
//! ids) from the host part of that sandbox's plan (`RootPlan::shared`),
//! unless [`CAPACITY`] spares are made or being made already: once that
//! sandbox is ready when it took a spare itself (a series; in a burst,
//! [`in_burst`], as soon as its plan is sent), else once its first command
//! is done. In a series on one project it builds the
//! WORKDIR's layer as well, in a state dir of its own that the sandbox
//! taking it inherits. A new sandbox takes the oldest only if a fresh init
//! would have built exactly the same: its own plan begins with the spare's
//! mounts, the host's mount table has not changed since the spare's
//! namespaces were made (`poll` on `/proc/self/mountinfo`), the host paths
//! of its mounts are still the same files (device and inode), and the spare
//! is alive. Anything else discards it (with its state dir), and the sandbox
//! starts without. A spare runs nothing, is discarded after [`TTL`] unused,
//! and dies with the host process like every init. A sandbox started with
//! `spare: false` makes none, and `BUN_SANDBOX_SPARE=0` makes that the
//! default.

use super::cgroup::SandboxCgroups;
use super::launcher::{self, Helper, Launched};
use super::{reaper, remap, state};
use crate::policy::plan;
use crate::protocol::{self, Ids, Mount, Prebuild, RootPlan, Setup};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a spare waits for a sandbox before it is discarded.
pub const TTL: Duration = Duration::from_secs(30);

/// What a spare was made for: a sandbox of this init binary and these ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub init: PathBuf,
    pub ids: Ids,
}

/// A started init whose PID 1 has built `prefix` and waits for its plan.
pub struct Spare {
    key: Key,
    launched: Launched,
    /// What PID 1 was sent to build: the host part of the plan, and the
    /// WORKDIR's layer when `state_dir` is set.
    prefix: RootPlan,
    /// The state dir whose directories hold the prebuilt WORKDIR layer, for
    /// the sandbox that takes the spare (made with `state::create`).
    state_dir: Option<PathBuf>,
    /// The WORKDIR of the sandbox whose plan the spare was made from.
    origin: PathBuf,
    /// The device and inode of each of `prefix`'s host paths, when made.
    identities: Vec<Option<(u64, u64)>>,
    /// Opened before the spare's namespaces were made: polls with an event
    /// once the host's mount table has changed since.
    mountinfo: File,
    /// A root host user's spare has joined its pids cgroup already.
    cgroup: Option<SandboxCgroups>,
    made: Instant,
}

/// The spares: those being made, and those ready, oldest first.
struct Pool {
    launching: usize,
    ready: Vec<(Spare, u64)>,
}

static POOL: Mutex<Pool> = Mutex::new(Pool { launching: 0, ready: Vec::new() });
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// How many spares there may be at once, made or being made. One is begun
/// for each sandbox of a series, so it has most of that sandbox's life to be
/// built; a second would keep a second idle init after every burst, and in
/// a burst it made a tight loop 0–2% faster (`bench/ab.js`, three runs).
const CAPACITY: usize = 1;

/// How soon after a stop a start is one of a burst ([`in_burst`]).
const BURST: Duration = Duration::from_millis(5);

/// When a sandbox last began to stop, in microseconds since [`clock`]'s
/// start, plus one (0: none has).
static LAST_STOP: AtomicU64 = AtomicU64::new(0);

fn clock() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64 + 1
}

/// Notes that a sandbox is stopping.
pub fn stopped() {
    LAST_STOP.store(clock(), Ordering::Relaxed);
}

/// Whether a start now is one of a burst: a sandbox began to stop less than
/// [`BURST`] ago. Then the next sandbox will come as soon as this one is
/// gone, and its spare is begun as early as may be, beside this start; else
/// once this sandbox is ready, so as not to slow its start.
pub fn in_burst() -> bool {
    let last = LAST_STOP.load(Ordering::Relaxed);
    last != 0 && clock().saturating_sub(last) < BURST.as_micros() as u64
}

/// Whether spares are made when a sandbox does not say: unless
/// `BUN_SANDBOX_SPARE=0`.
pub fn enabled() -> bool {
    std::env::var_os("BUN_SANDBOX_SPARE").is_none_or(|v| v != "0")
}

/// The spare made for `key`, if there is one that may be used: alive, not
/// older than [`TTL`], and made with the host's mount table as it is now.
/// Any other spare is discarded.
pub fn take(key: &Key) -> Option<Spare> {
    loop {
        let spare = {
            let mut pool = POOL.lock().ok()?;
            if pool.ready.is_empty() {
                return None;
            }
            pool.ready.remove(0).0
        };
        if spare.key == *key && spare.made.elapsed() < TTL && spare.alive() && !spare.mounts_changed() {
            return Some(spare);
        }
        spare.discard();
    }
}

impl Spare {
    /// Whether `root` begins with exactly what this spare built, from the
    /// same host paths, and the spare is still alive (asked again here, once
    /// the plan is made, right before it is sent): then the plan is sent
    /// with `prebuilt` set to [`Spare::prebuilt`] and PID 1 adds the rest.
    pub fn fits(&self, root: &RootPlan) -> bool {
        let n = self.prefix.mounts.len();
        self.alive()
            && (root.shared == n || root.shared + 1 == n && self.state_dir.is_some())
            && root.scratch == self.prefix.scratch
            && root.scratch_size == self.prefix.scratch_size
            && root.root_size == self.prefix.root_size
            && root.mounts.get(..n) == Some(&self.prefix.mounts[..])
            && identities(&root.mounts[..n]) == self.identities
    }

    /// How many of the plan's mounts PID 1 has made.
    pub fn prebuilt(&self) -> usize {
        self.prefix.mounts.len()
    }

    /// The state dir its WORKDIR layer is in, if it has one.
    pub fn state_dir(&self) -> Option<&Path> {
        self.state_dir.as_deref()
    }

    /// The state dir its WORKDIR layer is in, if it has one: from here on
    /// the caller's, to use as the sandbox's (once its plan fits).
    pub fn take_state_dir(&mut self) -> Option<PathBuf> {
        self.state_dir.take()
    }

    /// The WORKDIR of the sandbox that offered it.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// The started init, and the pids cgroup it is in (limited to `pids`).
    pub fn into_parts(self, pids: u64) -> io::Result<(Launched, Option<SandboxCgroups>)> {
        if let Some(cg) = &self.cgroup
            && let Err(e) = cg.set_max(pids)
        {
            self.discard();
            return Err(e);
        }
        Ok((self.launched, self.cgroup))
    }

    /// Kills it; its cgroup and state dir (unless taken) go once it is gone.
    pub fn discard(self) {
        let mut child = self.launched.child;
        let _ = child.kill();
        finish(Some(child), self.cgroup, self.state_dir);
    }

    /// The helper has not exited (its PID 1 dies with it, a moment later:
    /// the socket alone would not tell yet), nothing came from PID 1 (a
    /// spare only ever reports a failure), and it has not closed its end.
    fn alive(&self) -> bool {
        let mut fds = [PollFd::new(self.launched.control.as_fd(), PollFlags::POLLIN)];
        !self.launched.child.has_exited() && matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
    }

    /// Whether anything was mounted or unmounted on the host since.
    fn mounts_changed(&self) -> bool {
        let mut fds = [PollFd::new(self.mountinfo.as_fd(), PollFlags::POLLPRI)];
        !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
    }
}

/// The device and inode of each mount's host path (an overlay's lower, a
/// bind's source): a directory replaced since the spare mounted it would
/// have a new one.
fn identities(mounts: &[Mount]) -> Vec<Option<(u64, u64)>> {
    mounts
        .iter()
        .filter_map(|m| match m {
            Mount::Overlay { lower: path, .. } | Mount::RoBind { source: path, .. } => Some(path.as_path()),
            Mount::HostRoot { .. } => Some(Path::new("/")),
            _ => None,
        })
        .map(|path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino())))
        .collect()
}

/// What a sandbox of `key`, sent `root` (its whole plan), offers to make
/// the next one's spare from: the part of `root` that a spare builds.
/// `pids` is the sandbox's process limit, which a root host user's spare's
/// cgroup starts with. The sandbox makes it ([`Offer::make`]) once it is
/// ready if it took a spare itself (in a burst, right after its plan is
/// sent: [`in_burst`]); else once its first command
/// is done, or at its stop: a spare made while the first sandbox of a
/// process starts would take the CPU and the kernel's mount lock from the
/// start that has no spare to help it.
pub struct Offer {
    key: Key,
    prefix: RootPlan,
    pids: u64,
    workdir: PathBuf,
}

impl Offer {
    /// Keeps the sent plan's root, cut to its shared part (no copy); with
    /// `layer`, and a WORKDIR layer on the host's disk, that layer too (in
    /// a state dir of the spare's own: [`make`]).
    pub fn new(key: Key, mut root: RootPlan, pids: u64, workdir: PathBuf, layer: bool) -> Option<Offer> {
        if root.shared == 0 || root.shared > root.mounts.len() {
            return None;
        }
        let on_disk =
            matches!(root.mounts.get(root.shared), Some(Mount::Overlay { project: true, pass_upper: false, .. }));
        root.mounts.truncate(root.shared + usize::from(layer && on_disk));
        root.detached.clear();
        Some(Offer { key, prefix: root, pids, workdir })
    }

    /// Makes `offer`'s spare now if `now`, and then leaves none to make
    /// later; else gives the offer back.
    pub fn make_if(offer: Option<Offer>, now: bool) -> Option<Offer> {
        match offer {
            Some(offer) if now => {
                offer.make();
                None
            }
            offer => offer,
        }
    }

    /// Starts the spare, unless there are enough already.
    pub fn make(self) {
        match POOL.lock() {
            Ok(mut pool) if pool.launching + pool.ready.len() < CAPACITY => pool.launching += 1,
            _ => return,
        }
        // Its cgroup is removed when the process exits.
        reaper::prepare();
        tokio::spawn(async move {
            // Counted as launching until stored, also if making it panics.
            let launching = Launching;
            let made = make(self.key, self.prefix, self.pids, self.workdir).await;
            if let Some(generation) = launching.store(made) {
                tokio::time::sleep(TTL).await;
                discard_waiting(Some(generation));
            }
        });
    }
}

/// A spare being made: it leaves the pool's count when stored or dropped.
struct Launching;

impl Launching {
    /// Puts the spare in the pool, if one could be made, and says which it
    /// is.
    fn store(self, made: io::Result<Spare>) -> Option<u64> {
        let spare = made.ok()?;
        let mut pool = POOL.lock().ok()?;
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        pool.ready.push((spare, generation));
        Some(generation)
    }
}

impl Drop for Launching {
    fn drop(&mut self) {
        if let Ok(mut pool) = POOL.lock() {
            pool.launching = pool.launching.saturating_sub(1);
        }
    }
}

/// Discards the waiting spares (only the one of `generation`, when given:
/// the one whose time is up).
pub fn discard_waiting(generation: Option<u64>) {
    let gone: Vec<Spare> = {
        let Ok(mut pool) = POOL.lock() else { return };
        let (gone, kept) =
            std::mem::take(&mut pool.ready).into_iter().partition(|(_, g)| generation.is_none_or(|want| want == *g));
        pool.ready = kept;
        gone.into_iter().map(|(spare, _)| spare).collect()
    };
    for spare in gone {
        spare.discard();
    }
}

async fn make(key: Key, mut prefix: RootPlan, pids: u64, origin: PathBuf) -> io::Result<Spare> {
    // First: a change of the mount table from here on discards the spare.
    let mountinfo = File::open("/proc/self/mountinfo")?;
    // Without its WORKDIR layer (none offered, or it cannot be made) the
    // spare is the host part alone.
    let (state_dir, project) = workdir_layer(&key, &mut prefix, &origin).unwrap_or_else(|_| {
        prefix.mounts.truncate(prefix.shared);
        (None, None)
    });
    let mut cgroup = None;
    let first = (|| {
        let mut fds: Vec<OwnedFd> = match key.ids.remap {
            Some(_) => remap::detach(&mut prefix, project, 0)?,
            None => Vec::new(),
        };
        let mut cgroups = Vec::new();
        if key.ids.outer_uid == 0 {
            let cg = cgroup.insert(SandboxCgroups::create(&cgroup_name(), pids)?);
            let (file, how) = cg.join_file()?;
            fds.push(file.into());
            cgroups.push(how);
            cg.joined = true;
        }
        let ids = protocol::encode(&key.ids)?;
        let prebuild = protocol::encode(&Setup::Prebuild(Prebuild { root: prefix.clone(), cgroups }))?;
        Ok::<_, io::Error>(vec![(ids, Vec::new()), (prebuild, fds)])
    })();
    // Taken before PID 1 mounts them: a path replaced meanwhile differs.
    let identities = identities(&prefix.mounts);
    let made = Instant::now();
    let launched = match first {
        Ok(first) => launcher::launch(key.init.clone(), first).await,
        Err(e) => Err(e),
    };
    match launched {
        Ok(launched) => Ok(Spare { key, launched, prefix, state_dir, origin, identities, mountinfo, cgroup, made }),
        Err(e) => {
            finish(None, cgroup, state_dir);
            Err(e)
        }
    }
}

/// Reaps what is left of a spare off the caller's path: its state dir is
/// out of use at once, and deleted once the helper is gone.
fn finish(child: Option<Helper>, cgroup: Option<SandboxCgroups>, state_dir: Option<PathBuf>) {
    let gone = state_dir.and_then(|dir| state::discard(&dir).ok().flatten());
    reaper::finish(child, cgroup, gone);
}

/// When `prefix` ends with the WORKDIR's layer: a state dir of the spare's
/// own that the layer's directories move into (the offering sandbox's are
/// its own), and for a root host user's spare the idmapped WORKDIR
/// (`remap`).
fn workdir_layer(key: &Key, prefix: &mut RootPlan, workdir: &Path) -> io::Result<(Option<PathBuf>, Option<OwnedFd>)> {
    let Some(Mount::Overlay { upper, work, .. }) = prefix.mounts.get_mut(prefix.shared) else {
        return Ok((None, None));
    };
    let project = match key.ids.remap {
        Some(_) => Some(remap::idmapped(workdir).map_err(io::Error::other)?),
        None => None,
    };
    let dir = state::create(&state::root(), key.ids.remap.as_ref().map(|r| (r.uid, r.gid)))?;
    (*upper, *work) = (plan::workdir_upper(&dir), plan::workdir_work(&dir));
    Ok((Some(dir), project))
}

/// Named like a state dir (`sb-<pid>-…`), so that the cgroup of a process
/// that died is removed by the next one (`state::left_by_dead_process`).
fn cgroup_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("sb-{}-spare-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

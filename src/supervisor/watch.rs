//! Watching WORKDIR as the sandbox sees it (SPEC §1.2 WATCH=, LOGS): the
//! host's WORKDIR (the overlay's lower layer, changed by the host) and the
//! upper directory (where whatever the sandbox writes lands), and restarting
//! a DEV or SERVICE process when a file its WATCH glob matches changes.
//!
//! - [`PathSet`]: WATCH or LOGS globs relative to WORKDIR, compiled once,
//!   with the directories a match can lie in (so a watch on `src/**` never
//!   walks `node_modules/`).
//! - [`TreeWatch`]: changed paths (relative to WORKDIR) under both layers, by
//!   inotify on every directory that can hold a match (directories that
//!   appear later are added as they appear), or by polling when inotify is
//!   not available (no instance or no watch left for this user).
//! - [`Debounce`] and [`Backoff`]: when a restart happens; pure, unit-tested.
//! - [`watch_process`]: the restart loop of one process.

use super::jobs::{Job, Stream};
use super::sandbox::Sandbox;
use crate::fs::outputs::{GLOB_CHARS, GlobLine, compile_line};
use globset::{GlobSet, GlobSetBuilder};
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

// ------------------------------------------------------------------ globs

/// A WATCH or LOGS glob that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{glob}\" {problem}")]
pub struct PatternError {
    pub glob: String,
    pub problem: String,
}

/// Which directories one glob can match below.
#[derive(Debug, Clone)]
struct Reach {
    /// The directories before the first glob character.
    base: Vec<String>,
    /// How many components a match has; `None` when `**` (or a whole
    /// directory) makes it unbounded.
    depth: Option<usize>,
}

/// Directories a walk never enters unless a glob names them before its
/// first wildcard: they are big, and nobody means them by `**`.
const SKIPPED_DIRS: &[&str] = &[".git", "node_modules"];

/// Globs relative to WORKDIR, with the same rules as OUTPUT: `*` and `?`
/// stop at `/`, `**` crosses directories, a trailing `/` or a literal
/// directory name means everything below it, a leading `./` is dropped.
#[derive(Debug, Clone)]
pub struct PathSet {
    globs: GlobSet,
    reaches: Vec<Reach>,
}

impl PathSet {
    pub fn new<I, S>(lines: I) -> Result<PathSet, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut builder = GlobSetBuilder::new();
        let mut reaches = Vec::new();
        for line in lines {
            let line = line.as_ref();
            let compiled =
                compile_line(line, &mut builder).map_err(|problem| PatternError { glob: line.to_string(), problem })?;
            let GlobLine { parts, whole_dir, literal, .. } = compiled;
            let base: Vec<String> = parts.iter().take_while(|p| !p.contains(GLOB_CHARS)).cloned().collect();
            let unbounded = whole_dir || literal || parts.iter().any(|p| p.contains("**"));
            reaches.push(Reach { base, depth: (!unbounded).then_some(parts.len()) });
        }
        let globs = builder.build().map_err(|e| PatternError { glob: String::new(), problem: e.to_string() })?;
        Ok(PathSet { globs, reaches })
    }

    /// No globs at all.
    pub fn is_empty(&self) -> bool {
        self.reaches.is_empty()
    }

    /// Whether `rel` (relative to WORKDIR, `/`-separated) matches.
    pub fn matches(&self, rel: &str) -> bool {
        self.globs.is_match(rel)
    }

    /// Whether a match can lie below the directory `dir` (`""` is WORKDIR):
    /// a walk or a watch skips the directories this says no to.
    pub fn descend(&self, dir: &str) -> bool {
        let comps: Vec<&str> = if dir.is_empty() { Vec::new() } else { dir.split('/').collect() };
        self.reaches.iter().any(|r| {
            let shared = comps.len().min(r.base.len());
            if comps[..shared].iter().zip(&r.base[..shared]).any(|(a, b)| a != b) {
                return false;
            }
            if comps.len() < r.base.len() {
                return true;
            }
            if comps[r.base.len()..].iter().any(|c| SKIPPED_DIRS.contains(c)) {
                return false;
            }
            r.depth.is_none_or(|d| comps.len() < d)
        })
    }
}

fn join_rel(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
}

// ------------------------------------------------------------- the watch

/// Which layer of the WORKDIR overlay a root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// The host's WORKDIR.
    Lower,
    /// The sandbox's changes.
    Upper,
}

/// How often the fallback polls.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How many entries one polling walk looks at before it stops.
const POLL_MAX_ENTRIES: usize = 200_000;
/// How many inotify events one batch takes before it is handed out.
const BATCH_EVENTS: usize = 4096;

const MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::MODIFY)
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE)
    .union(WatchMask::ONLYDIR)
    .union(WatchMask::DONT_FOLLOW)
    .union(WatchMask::EXCL_UNLINK);

/// What a polled entry looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    mode: u32,
}

enum Mode {
    Inotify { stream: inotify::EventStream<Vec<u8>>, watches: Watches, dirs: HashMap<WatchDescriptor, (usize, String)> },
    Poll { seen: BTreeMap<(usize, String), Seen> },
}

/// Changed paths under the layers of WORKDIR that a [`PathSet`] matches.
pub struct TreeWatch {
    roots: Vec<(Layer, PathBuf)>,
    set: Arc<PathSet>,
    mode: Mode,
    /// Found while adding watches: handed out by the next `changes()`.
    pending: BTreeSet<String>,
}

/// Why inotify gave up: the user's instances or watches are used up.
fn exhausted(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOMEM))
}

impl TreeWatch {
    /// Starts watching `roots` (missing ones are skipped). Falls back to
    /// polling when inotify is not available. Needs a tokio runtime.
    pub fn new(roots: Vec<(Layer, PathBuf)>, set: Arc<PathSet>) -> TreeWatch {
        let mut tw = TreeWatch { roots, set, mode: Mode::Poll { seen: BTreeMap::new() }, pending: BTreeSet::new() };
        match Inotify::init().and_then(|i| i.into_event_stream(vec![0u8; 64 * 1024])) {
            Ok(stream) => {
                let watches = stream.watches();
                tw.mode = Mode::Inotify { stream, watches, dirs: HashMap::new() };
                for i in 0..tw.roots.len() {
                    if tw.add_tree(i, String::new(), false).is_err() {
                        tw.fall_back();
                        break;
                    }
                }
            }
            Err(_) => tw.fall_back(),
        }
        tw
    }

    /// A watch that polls, as when inotify is not available.
    #[cfg(test)]
    pub(crate) fn polling(roots: Vec<(Layer, PathBuf)>, set: Arc<PathSet>) -> TreeWatch {
        let mut tw = TreeWatch { roots, set, mode: Mode::Poll { seen: BTreeMap::new() }, pending: BTreeSet::new() };
        tw.fall_back();
        tw
    }

    /// Whether events come from inotify (else from polling).
    pub fn uses_inotify(&self) -> bool {
        matches!(self.mode, Mode::Inotify { .. })
    }

    /// Switches to polling, from what the trees hold now.
    fn fall_back(&mut self) {
        let seen = self.snapshot();
        self.mode = Mode::Poll { seen };
    }

    /// Watches `dir` of root `root` and every directory below it that can
    /// hold a match. With `report`, the matching files found are pending
    /// changes (they may have been written before the watch existed). Errs
    /// only when inotify is out of watches.
    fn add_tree(&mut self, root: usize, dir: String, report: bool) -> io::Result<()> {
        let mut stack = vec![(dir, 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            if !self.set.descend(&dir) || depth > crate::fs::MAX_DEPTH {
                continue;
            }
            let abs = if dir.is_empty() { self.roots[root].1.clone() } else { self.roots[root].1.join(&dir) };
            // A root's own path is the caller's and may be a link
            // (`/proc/self/fd/<n>` with a disk limit); nothing below it is followed.
            let mask = if dir.is_empty() { MASK.difference(WatchMask::DONT_FOLLOW) } else { MASK };
            if let Mode::Inotify { watches, dirs, .. } = &mut self.mode {
                match watches.add(&abs, mask) {
                    Ok(wd) => {
                        dirs.insert(wd, (root, dir.clone()));
                    }
                    Err(e) if exhausted(&e) => return Err(e),
                    // Gone already, or not a directory any more.
                    Err(_) => continue,
                }
            }
            let Ok(entries) = std::fs::read_dir(&abs) else { continue };
            for entry in entries.flatten() {
                let Ok(name) = entry.file_name().into_string() else { continue };
                let rel = join_rel(&dir, &name);
                match entry.file_type() {
                    Ok(t) if t.is_dir() => stack.push((rel, depth + 1)),
                    Ok(_) if report && self.set.matches(&rel) => {
                        self.pending.insert(rel);
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Every non-directory entry below the roots that can match, as polling sees it.
    fn snapshot(&self) -> BTreeMap<(usize, String), Seen> {
        let mut seen = BTreeMap::new();
        for (i, (_, root)) in self.roots.iter().enumerate() {
            let mut stack = vec![(String::new(), 0usize)];
            while let Some((dir, depth)) = stack.pop() {
                if !self.set.descend(&dir) || depth > crate::fs::MAX_DEPTH || seen.len() >= POLL_MAX_ENTRIES {
                    continue;
                }
                let abs = if dir.is_empty() { root.clone() } else { root.join(&dir) };
                let Ok(entries) = std::fs::read_dir(&abs) else { continue };
                for entry in entries.flatten() {
                    let Ok(name) = entry.file_name().into_string() else { continue };
                    let rel = join_rel(&dir, &name);
                    let Ok(meta) = entry.metadata() else { continue };
                    if meta.is_dir() {
                        stack.push((rel, depth + 1));
                    } else if self.set.matches(&rel) {
                        let s = Seen {
                            ino: meta.ino(),
                            size: meta.size(),
                            mtime: (meta.mtime(), meta.mtime_nsec()),
                            ctime: (meta.ctime(), meta.ctime_nsec()),
                            mode: meta.mode(),
                        };
                        seen.insert((i, rel), s);
                    }
                }
            }
        }
        seen
    }

    /// Every path that matches now, in either layer (after a lost event).
    fn everything(&self) -> BTreeSet<String> {
        self.snapshot().into_keys().map(|(_, rel)| rel).collect()
    }

    /// Waits for changes and returns the matching paths that changed
    /// (created, written, deleted, renamed, touched), each once.
    pub async fn changes(&mut self) -> BTreeSet<String> {
        use futures::StreamExt;
        loop {
            if !self.pending.is_empty() {
                return std::mem::take(&mut self.pending);
            }
            let mut events = Vec::new();
            match &mut self.mode {
                Mode::Poll { seen } => {
                    tokio::time::sleep(POLL_INTERVAL).await;
                    let old = std::mem::take(seen);
                    let now = self.snapshot();
                    let mut changed: BTreeSet<String> = BTreeSet::new();
                    for (key, s) in &now {
                        if old.get(key) != Some(s) {
                            changed.insert(key.1.clone());
                        }
                    }
                    for key in old.keys() {
                        if !now.contains_key(key) {
                            changed.insert(key.1.clone());
                        }
                    }
                    if let Mode::Poll { seen } = &mut self.mode {
                        *seen = now;
                    }
                    if !changed.is_empty() {
                        return changed;
                    }
                    continue;
                }
                Mode::Inotify { stream, .. } => {
                    match stream.next().await {
                        Some(Ok(ev)) => events.push(ev),
                        // The instance broke: poll from here on.
                        Some(Err(_)) | None => {
                            self.fall_back();
                            continue;
                        }
                    }
                    // Take what else is queued, without waiting.
                    while events.len() < BATCH_EVENTS {
                        match futures::FutureExt::now_or_never(stream.next()) {
                            Some(Some(Ok(ev))) => events.push(ev),
                            _ => break,
                        }
                    }
                }
            }
            let mut out = BTreeSet::new();
            let mut rescan = false;
            let mut new_dirs = Vec::new();
            if let Mode::Inotify { watches, dirs, .. } = &mut self.mode {
                for ev in events {
                    if ev.mask.contains(EventMask::Q_OVERFLOW) {
                        rescan = true;
                        continue;
                    }
                    if ev.mask.contains(EventMask::IGNORED) {
                        dirs.remove(&ev.wd);
                        continue;
                    }
                    let Some((root, dir)) = dirs.get(&ev.wd).cloned() else { continue };
                    let Some(name) = ev.name.as_ref().and_then(|n| n.to_str()) else { continue };
                    let rel = join_rel(&dir, name);
                    if ev.mask.contains(EventMask::ISDIR) {
                        if ev.mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
                            new_dirs.push((root, rel.clone()));
                        }
                        if ev.mask.contains(EventMask::MOVED_FROM) {
                            // Its watches now name the wrong paths.
                            let below = format!("{rel}/");
                            let gone: Vec<WatchDescriptor> = dirs
                                .iter()
                                .filter(|(_, (r, d))| *r == root && (*d == rel || d.starts_with(&below)))
                                .map(|(wd, _)| wd.clone())
                                .collect();
                            for wd in gone {
                                dirs.remove(&wd);
                                let _ = watches.remove(wd);
                            }
                        }
                    }
                    if self.set.matches(&rel) {
                        out.insert(rel);
                    }
                }
            }
            for (root, dir) in new_dirs {
                if self.add_tree(root, dir, true).is_err() {
                    self.fall_back();
                    rescan = true;
                    break;
                }
            }
            if rescan {
                out.extend(self.everything());
            }
            out.append(&mut self.pending);
            if !out.is_empty() {
                return out;
            }
        }
    }
}

// ------------------------------------------------------ debounce, backoff

/// Collects changes until they stop for `quiet` (or have gone on for
/// `longest`), then hands them out as one batch.
#[derive(Debug, Clone)]
pub struct Debounce {
    quiet: Duration,
    longest: Duration,
    first: Option<Instant>,
    last: Option<Instant>,
    paths: BTreeSet<String>,
    /// Changes beyond the paths kept (memory stays bounded).
    more: usize,
}

/// How many paths one batch names.
const DEBOUNCE_PATHS: usize = 64;

impl Debounce {
    pub fn new(quiet: Duration, longest: Duration) -> Debounce {
        Debounce { quiet, longest, first: None, last: None, paths: BTreeSet::new(), more: 0 }
    }

    pub fn add(&mut self, path: String, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
        if self.paths.len() < DEBOUNCE_PATHS || self.paths.contains(&path) {
            self.paths.insert(path);
        } else {
            self.more += 1;
        }
    }

    /// When the batch is due, if anything is pending.
    pub fn deadline(&self) -> Option<Instant> {
        Some((self.last? + self.quiet).min(self.first? + self.longest))
    }

    /// The batch (paths, and how many more changed), once it is due.
    pub fn take(&mut self, now: Instant) -> Option<(Vec<String>, usize)> {
        if self.deadline()? > now {
            return None;
        }
        self.first = None;
        self.last = None;
        let more = std::mem::take(&mut self.more);
        Some((std::mem::take(&mut self.paths).into_iter().collect(), more))
    }
}

/// How long to wait before a restart, so that a process that keeps dying
/// soon after it starts (or keeps changing its own watched files) is not
/// restarted in a busy loop: `min`, doubling up to `max`; back to nothing
/// once a run lasted.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    /// Restarts in a row of runs that were alive but younger than
    /// [`QUICK_RUN`].
    quick: u32,
}

/// A run younger than this at its restart was restarted quickly.
const QUICK_RUN: Duration = Duration::from_secs(1);
/// Quick restarts in a row of a live process before it is backed off (an
/// edit right after a start is normal; a process that changes its own
/// watched files every time it starts is not).
const QUICK_STREAK: u32 = 3;

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max, next: min, quick: 0 }
    }

    /// The wait before restarting a run that started `ran` ago and is
    /// `alive` (else it exited by itself).
    pub fn before_restart(&mut self, alive: bool, ran: Duration) -> Duration {
        let failing = if !alive && ran < self.max {
            true
        } else if alive && ran < QUICK_RUN {
            self.quick += 1;
            self.quick >= QUICK_STREAK
        } else {
            self.quick = 0;
            self.next = self.min;
            false
        };
        if !failing {
            return Duration::ZERO;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

// ------------------------------------------------------------ restarting

/// The restart wait after the last change.
pub const DEBOUNCE: Duration = Duration::from_millis(200);
/// A stream of changes restarts at least this often.
const DEBOUNCE_LONGEST: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// SIGTERM, then this long, then SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// One DEV or SERVICE process under WATCH.
#[derive(Debug, Clone)]
pub struct WatchedProcess {
    pub name: String,
    pub kind: String,
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// The WATCH glob.
    pub glob: String,
}

/// A running watcher; stopping it (or dropping it) ends it at once.
pub struct WatchHandle(tokio::task::AbortHandle);

impl WatchHandle {
    pub fn stop(&self) {
        self.0.abort();
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The line a restart writes to the process's stderr.
pub fn restart_message(name: &str, paths: &[String], more: usize, wait: Duration) -> String {
    let total = paths.len() + more;
    let what = match (paths.first(), total) {
        (None, _) => "a watched file".to_string(),
        (Some(p), 1) => p.clone(),
        (Some(p), 2) => format!("{p} and 1 other file"),
        (Some(p), n) => format!("{p} and {} other files", n - 1),
    };
    if wait.is_zero() {
        format!("bun-sandbox: {what} changed; restarting {name}\n")
    } else {
        format!(
            "bun-sandbox: {what} changed; restarting {name} in {} ms (it keeps exiting or changing files soon after it starts)\n",
            wait.as_millis()
        )
    }
}

/// Restarts `job` whenever a file matching `proc.glob` changes in WORKDIR,
/// on the host or inside the sandbox. Crashes are not restarted.
pub fn watch_process(sandbox: &Arc<Sandbox>, job: Arc<Job>, proc: WatchedProcess) -> Result<WatchHandle, PatternError> {
    let set = Arc::new(PathSet::new([&proc.glob])?);
    let sandbox = sandbox.clone();
    let task = tokio::spawn(async move {
        let roots = vec![(Layer::Lower, sandbox.workdir().to_path_buf()), (Layer::Upper, sandbox.workdir_upper())];
        let mut tree = TreeWatch::new(roots, set);
        let mut debounce = Debounce::new(DEBOUNCE, DEBOUNCE_LONGEST);
        let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        let mut job = job;
        let mut started = Instant::now();
        loop {
            let deadline = debounce.deadline();
            tokio::select! {
                changed = tree.changes() => {
                    let now = Instant::now();
                    for p in changed {
                        debounce.add(p, now);
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
            }
            let Some((paths, more)) = debounce.take(Instant::now()) else { continue };
            let alive = job.exited().is_none();
            let wait = backoff.before_restart(alive, started.elapsed());
            if let Some(out) = &sandbox.hooks().output {
                out(proc.name.clone(), Stream::Stderr, restart_message(&proc.name, &paths, more, wait)).await;
            }
            end(&sandbox, &job).await;
            if !wait.is_zero() {
                // Changes meanwhile are part of this restart.
                let until = Instant::now() + wait;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => break,
                        _ = tree.changes() => {}
                    }
                }
            }
            match sandbox.spawn_job(&proc.name, &proc.kind, proc.argv.clone(), proc.env.clone()).await {
                Ok(j) => {
                    job = j;
                    started = Instant::now();
                }
                // Stopped, or the sandbox died: nothing left to restart.
                Err(_) => return,
            }
        }
    });
    Ok(WatchHandle(task.abort_handle()))
}

/// SIGTERM to the job's process group, SIGKILL after the grace period, and
/// waits until it has exited.
async fn end(sandbox: &Sandbox, job: &Job) {
    if job.exited().is_some() || job.id == 0 {
        return;
    }
    sandbox.signal(job.id, libc::SIGTERM).await;
    if tokio::time::timeout(GRACE, job.wait()).await.is_err() {
        sandbox.signal(job.id, libc::SIGKILL).await;
        job.wait().await;
    }
}

#[cfg(test)]
mod tests;

//! What `stop()` leaves for later, off the caller's path: waiting for the
//! helper (its exit tears the namespaces down, which takes a while on a busy
//! host), removing its pids cgroup, deleting the state dir `stop()` renamed
//! away. One long-lived thread does them in turn; when the process exits it
//! waits for them (a bounded time), so a CLI run leaves nothing behind. What
//! a killed process leaves, the next start cleans up (`state::clean_stale`).

use super::cgroup::SandboxCgroups;
use super::launcher::Helper;
use super::state;
use std::path::PathBuf;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an exiting process waits for unfinished teardowns.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// Teardowns handed over and not yet done.
static PENDING: Mutex<usize> = Mutex::new(0);
static DONE: Condvar = Condvar::new();

/// One sandbox's leftovers.
struct Teardown {
    child: Option<Helper>,
    cgroup: Option<SandboxCgroups>,
    state_dir: Option<PathBuf>,
}

impl Teardown {
    fn run(self) {
        if let Some(mut c) = self.child {
            let _ = c.wait();
        }
        if let Some(cg) = self.cgroup {
            cg.remove();
        }
        if let Some(dir) = self.state_dir {
            let _ = state::remove(&dir);
        }
        if let Ok(mut n) = PENDING.lock() {
            *n -= 1;
            DONE.notify_all();
        }
    }
}

/// Ends a helper whose sandbox will not be (PID 1 goes with it, by its
/// parent-death signal), and reaps it off the caller's path.
pub fn abandon(mut child: Helper, cgroup: Option<SandboxCgroups>) {
    let _ = child.kill();
    finish(Some(child), cgroup, None);
}

/// Reaps `child`, then removes `cgroup` and the discarded state dir.
pub fn finish(child: Option<Helper>, cgroup: Option<SandboxCgroups>, state_dir: Option<PathBuf>) {
    if let Ok(mut n) = PENDING.lock() {
        *n += 1;
    }
    let job = Teardown { child, cgroup, state_dir };
    // Without the thread (none could be started), it is done here.
    match worker().and_then(|w| w.lock().ok()) {
        Some(tx) => {
            if let Err(unsent) = tx.send(job) {
                unsent.0.run();
            }
        }
        None => job.run(),
    }
}

/// Starts the reaper thread now (and so its wait at exit), where it is
/// about to be needed at exit.
pub fn prepare() {
    let _ = worker();
}

/// The reaper thread's queue, started on first use.
fn worker() -> Option<&'static Mutex<Sender<Teardown>>> {
    static WORKER: OnceLock<Option<Mutex<Sender<Teardown>>>> = OnceLock::new();
    WORKER
        .get_or_init(|| {
            let (tx, rx) = channel::<Teardown>();
            std::thread::Builder::new()
                .name("bun-sandbox-reaper".into())
                .spawn(move || rx.into_iter().for_each(Teardown::run))
                .ok()?;
            // SAFETY: registers a plain extern "C" function that lives as
            // long as the process (an addon is never unloaded). Bun ends
            // with quick_exit, Node with exit: both are covered.
            unsafe {
                libc::atexit(wait_at_exit);
                at_quick_exit(wait_at_exit);
            }
            Some(Mutex::new(tx))
        })
        .as_ref()
}

unsafe extern "C" {
    /// C11, in glibc and musl; the libc crate does not declare it for Linux.
    fn at_quick_exit(f: extern "C" fn()) -> libc::c_int;
}

extern "C" fn wait_at_exit() {
    // A spare would die with the process anyway; this way its cgroup goes too.
    super::spare::discard_waiting(None);
    let deadline = Instant::now() + EXIT_WAIT;
    let Ok(mut n) = PENDING.lock() else { return };
    while *n > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        match DONE.wait_timeout(n, left) {
            Ok((guard, _)) => n = guard,
            Err(_) => return,
        }
    }
}

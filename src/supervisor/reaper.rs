//! What `stop()` leaves for later, off the caller's path: waiting for the
//! helper (its exit tears the namespaces down, which takes a while on a busy
//! host), removing its pids cgroup, deleting the state dir `stop()` renamed
//! away. Each runs on a thread of its own; when the process exits it waits
//! for them (a bounded time), so a CLI run leaves nothing behind. What a
//! killed process leaves, the next start cleans up (`state::clean_stale`).

use super::cgroup::PidsCgroup;
use super::launcher::Helper;
use super::state;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::{Duration, Instant};

/// How long an exiting process waits for unfinished teardowns.
const EXIT_WAIT: Duration = Duration::from_secs(2);

static PENDING: Mutex<usize> = Mutex::new(0);
static DONE: Condvar = Condvar::new();

/// Reaps `child`, then removes `cgroup` and the discarded state dir.
pub fn finish(child: Option<Helper>, cgroup: Option<PidsCgroup>, state_dir: Option<PathBuf>) {
    static AT_EXIT: Once = Once::new();
    // SAFETY: registers a plain extern "C" function that lives as long as
    // the process (an addon is never unloaded).
    // Bun ends with quick_exit, Node with exit: both are covered.
    AT_EXIT.call_once(|| unsafe {
        libc::atexit(wait_at_exit);
        at_quick_exit(wait_at_exit);
    });
    let work = move || {
        if let Some(mut c) = child {
            let _ = c.wait();
        }
        if let Some(cg) = cgroup {
            cg.remove();
        }
        if let Some(dir) = state_dir {
            let _ = state::remove(&dir);
        }
    };
    if let Ok(mut n) = PENDING.lock() {
        *n += 1;
    }
    let job = move || {
        work();
        if let Ok(mut n) = PENDING.lock() {
            *n -= 1;
            DONE.notify_all();
        }
    };
    // The thread takes the job; if no thread can be had, it runs here.
    let job = Arc::new(Mutex::new(Some(job)));
    let theirs = job.clone();
    let spawned = std::thread::Builder::new().name("bun-sandbox-reaper".into()).spawn(move || take_and_run(&theirs));
    if spawned.is_err() {
        take_and_run(&job);
    }
}

fn take_and_run(job: &Mutex<Option<impl FnOnce()>>) {
    if let Some(job) = job.lock().ok().and_then(|mut j| j.take()) {
        job();
    }
}

unsafe extern "C" {
    /// C11, in glibc and musl; the libc crate does not declare it for Linux.
    fn at_quick_exit(f: extern "C" fn()) -> libc::c_int;
}

extern "C" fn wait_at_exit() {
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

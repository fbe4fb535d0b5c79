//! What `bun-sandbox-init` does: started once per host process as the
//! [`zygote`], it forks a helper for each sandbox, which enters the
//! namespaces, maps ids, builds the root filesystem, then serves the
//! supervisor as PID 1. Linux only; single-threaded throughout, so
//! `unshare(CLONE_NEWUSER)` and `fork` are safe to call.
//!
//! The order follows bubblewrap's: pdeathsig · (a root host user's helper:
//! become the sandbox user's unprivileged uid) · unshare · id maps · fork
//! PID 1 · mounts on a tmpfs (a spare's PID 1 makes the host's part of them
//! before its plan comes: `supervisor::spare`) · pivot_root · detach the old root · hostname · `lo` up ·
//! then, last of setup, what every command inherits: bounding set emptied,
//! securebits locked, no_new_privs, seccomp (PID 1 never calls `execve`, and
//! nothing after this needs a call the filter refuses); per command: setsid ·
//! fds · signals · rlimits · chdir · capabilities dropped · `execve`. One step
//! runs beside another: the helper makes the network namespace while PID 1
//! mounts, and PID 1 joins it.

mod caps;
mod filter;
pub(crate) mod mount_api;
mod net;
mod oom;
mod rootfs;
mod server;
mod spawn;
mod userns;
pub mod zygote;

use crate::protocol::{self, CONTROL_FD, Event, Ids};
use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, getppid};
use std::fmt;

/// A setup step that failed, with what it was doing.
#[derive(Debug)]
pub struct SetupError {
    pub step: String,
    pub source: std::io::Error,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.source)
    }
}

/// Wraps an error with the step it happened in.
pub(crate) trait Step<T> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T, SetupError>;
}

impl<T, E: Into<std::io::Error>> Step<T> for Result<T, E> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T, SetupError> {
        self.map_err(|e| SetupError { step: what(), source: e.into() })
    }
}

/// The whole life of a helper, forked by the zygote. `parent` is the
/// zygote's pid, to close the race in setting the parent-death signal.
pub fn main(parent: i32) -> ! {
    match run(parent) {
        Ok(code) => std::process::exit(code),
        Err(e) => fail(e),
    }
}

/// Tells the supervisor why setup failed, and exits.
fn fail(e: SetupError) -> ! {
    let _ = protocol::send(CONTROL_FD, &Event::SetupFailed { message: e.to_string() }, &[]);
    std::process::exit(70)
}

/// Waits for the supervisor's next message, `what` (the ids, the plan), into
/// `buf`, with the fds that came with it; `None` when the supervisor closed
/// the socket instead.
fn read<T: for<'de> serde::Deserialize<'de>>(
    buf: &mut Vec<u8>,
    what: &str,
) -> Result<Option<(T, Vec<std::os::fd::OwnedFd>)>, SetupError> {
    match protocol::recv(CONTROL_FD, buf, false).step(|| format!("read the {what}"))? {
        Some(msg) => Ok(Some((msg.parse().step(|| format!("decode the {what}"))?, msg.fds))),
        None => Ok(None),
    }
}

fn run(parent: i32) -> Result<i32, SetupError> {
    // Die with the zygote, which dies with the host process.
    prctl::set_pdeathsig(Signal::SIGKILL).step(|| "set the parent-death signal".into())?;
    if getppid().as_raw() != parent {
        // The zygote died before the signal was armed (bubblewrap #730).
        return Ok(1);
    }
    let Some((ids, _)): Option<(Ids, _)> = read(&mut Vec::new(), "ids")? else { return Ok(0) };
    let (outer_uid, outer_gid) = match &ids.remap {
        Some(remap) => {
            userns::become_unprivileged(remap)?;
            // As above: the signal, armed again, came too late if the host
            // process is gone.
            if getppid().as_raw() != parent {
                return Ok(1);
            }
            (remap.uid, remap.gid)
        }
        None => (ids.outer_uid, ids.outer_gid),
    };

    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    // The network namespace costs the most to make (~0.8 ms): this process
    // makes it while PID 1 builds the root, which joins it after.
    let netns = net::Deferred::prepare();
    let flags = if netns.is_some() { flags } else { flags | CloneFlags::CLONE_NEWNET };
    unshare(flags).step(|| "create the namespaces (unshare)".into())?;
    userns::write_maps(&ids, outer_uid, outer_gid)?;

    // SAFETY: single-threaded process; the child goes on to be PID 1.
    match unsafe { fork() }.step(|| "fork PID 1".into())? {
        ForkResult::Child => server::pid1(netns.map(net::Deferred::into_joiner)),
        ForkResult::Parent { child } => {
            // Only PID 1 talks to the supervisor from here on.
            let _ = nix::unistd::close(CONTROL_FD);
            if let Some(netns) = netns {
                netns.make();
            }
            loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                    Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
                    Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return Ok(1),
                }
            }
        }
    }
}

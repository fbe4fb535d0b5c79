//! What `bun-sandbox-init` does: enter the namespaces, map ids, build the root
//! filesystem, then serve the supervisor as PID 1. Linux only; single-threaded
//! throughout, so `unshare(CLONE_NEWUSER)` and `fork` are safe to call.
//!
//! The order follows bubblewrap's: pdeathsig · unshare · id maps · fork PID 1 ·
//! mounts on a tmpfs · pivot_root · detach the old root · hostname · `lo` up ·
//! then, last of setup, what every command inherits: bounding set emptied,
//! securebits locked, no_new_privs, seccomp (PID 1 never calls `execve`, and
//! nothing after this needs a call the filter refuses); per command: setsid ·
//! fds · signals · rlimits · chdir · capabilities dropped · `execve`. One step
//! runs beside another: the helper makes the network namespace while PID 1
//! mounts, and PID 1 joins it.

mod caps;
mod filter;
mod net;
mod remap;
mod rootfs;
mod server;
mod spawn;
mod userns;

use crate::protocol::{self, CONTROL_FD, CgroupJoin, Event, Ids};
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

/// The whole life of init. `parent` is the pid of the host process that
/// started it, to close the race in setting the parent-death signal.
pub fn main(parent: i32, cgroup: Option<CgroupJoin>) -> ! {
    match run(parent, cgroup) {
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
/// `buf`; `None` when the supervisor closed the socket instead.
fn read<T: for<'de> serde::Deserialize<'de>>(buf: &mut Vec<u8>, what: &str) -> Result<Option<T>, SetupError> {
    match protocol::recv(CONTROL_FD, buf, false).step(|| format!("read the {what}"))? {
        Some(msg) => msg.parse().step(|| format!("decode the {what}")).map(Some),
        None => Ok(None),
    }
}

/// The fd of the pids cgroup's `cgroup.procs` (see the supervisor's launcher).
const CGROUP_FD: std::os::fd::RawFd = 4;

fn run(parent: i32, cgroup: Option<CgroupJoin>) -> Result<i32, SetupError> {
    // PID 1 joins the pids cgroup (the helper only waits): everything the
    // sandbox starts descends from it.
    // SAFETY: fd 4 was laid out by the launcher; it is ours to close.
    let cgroup = cgroup.map(|how| (unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(CGROUP_FD) }, how));
    // Die with the host process. The signal fires when the parent *thread*
    // exits: the supervisor starts init from one long-lived thread.
    prctl::set_pdeathsig(Signal::SIGKILL).step(|| "set the parent-death signal".into())?;
    if getppid().as_raw() != parent {
        // The parent died before the signal was armed (bubblewrap #730).
        return Ok(1);
    }
    let Some(ids): Option<Ids> = read(&mut Vec::new(), "ids")? else { return Ok(0) };

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
    let mapping = match &ids.remap {
        // A root host user: the maps are written from outside, by a mapper
        // that works on while PID 1 starts and waits for its plan (`remap`).
        Some(remap) => Some((remap::unshare_mapping(&ids, remap, flags)?, remap)),
        None => {
            unshare(flags).step(|| "create the namespaces (unshare)".into())?;
            userns::write_maps("/proc/self", &ids, ids.outer_uid, ids.outer_gid)?;
            None
        }
    };

    // SAFETY: single-threaded process; the child goes on to be PID 1.
    match unsafe { fork() }.step(|| "fork PID 1".into())? {
        ForkResult::Child => {
            let mapping = mapping.map(|(m, _)| m.into_pid1());
            server::pid1(netns.map(net::Deferred::into_joiner), cgroup, mapping)
        }
        ForkResult::Parent { child } => {
            // Only PID 1 talks to the supervisor from here on.
            let _ = nix::unistd::close(CONTROL_FD);
            drop(cgroup);
            if let Some((mapping, remap)) = mapping {
                mapping.hand_over(&ids, remap)?;
                // As at the start: the parent-death signal, armed again by
                // `become_user`, came too late if the host process is gone.
                if getppid().as_raw() != parent {
                    return Ok(1);
                }
            }
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

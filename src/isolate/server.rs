//! PID 1 of the sandbox: builds the world, then serves the supervisor's
//! requests and reaps every process until the supervisor goes away.

use super::oom::OomScore;
use super::{SetupError, Step, fail, net, read, rootfs, spawn};
use crate::protocol::{self, CONTROL_FD, CgroupJoin, Event, Plan, Received, Request, Setup, Spawn};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

pub fn pid1(netns: Option<net::Joiner>) -> ! {
    // PID 1 dies with the helper that forked it (which dies with the host),
    // armed before it waits for anything.
    if let Err(e) = prctl::set_pdeathsig(Signal::SIGKILL) {
        fail(SetupError { step: "set the parent-death signal".into(), source: e.into() });
    }
    let mut netns = netns;
    let (plan, building, cgroup, detached, buf) = match receive(&mut netns) {
        Ok(got) => got,
        Err(e) => fail(e),
    };
    let (upper, oom) = match setup(&plan, building, detached, netns, cgroup) {
        Ok(set_up) => set_up,
        Err(e) => fail(e),
    };
    // The WORKDIR's upper (with a disk limit) goes to the supervisor;
    // PID 1 itself needs no copy.
    let fds: Vec<_> = upper.iter().map(|fd| fd.as_raw_fd()).collect();
    let _ = protocol::send(CONTROL_FD, &Event::Ready, &fds);
    drop(upper);
    // Building the root freed what it used; give it back, since
    // PID 1 lives as long as the sandbox.
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe { libc::malloc_trim(0) };
    std::process::exit(serve(&plan, buf, oom))
}

/// Reads the plan, which follows the ids in the socket once the supervisor
/// has made it, with the detached mounts it names. A spare's PID 1 gets a
/// `Prebuild` first, and builds it while it waits: it also joins the
/// network namespace then (taking `netns`), makes what waited for it and
/// brings `lo` up, which a start would otherwise wait for. Gives back what
/// was built, how far PID 1 is in joining its cgroups, and the buffer PID 1
/// serves with.
#[allow(clippy::type_complexity)]
fn receive(
    netns: &mut Option<net::Joiner>,
) -> Result<(Plan, Option<rootfs::Building>, Cgroup, Vec<OwnedFd>, Vec<u8>), SetupError> {
    let mut buf = Vec::new();
    let mut building = None;
    let mut cgroup = Cgroup::default();
    loop {
        match read(&mut buf, "plan")? {
            Some((Setup::Prebuild(pre), mut fds)) if building.is_none() => {
                cgroup.join(&pre.cgroups, &mut fds)?;
                let mut prebuilt = rootfs::Building::prebuild(pre.root, fds)?;
                if let Some(joiner) = netns.take() {
                    joiner.join().step(|| "create the network namespace".into())?;
                }
                prebuilt.settle()?;
                net::loopback_up().step(|| "bring up the loopback interface".into())?;
                building = Some(prebuilt);
            }
            Some((Setup::Prebuild(_), _)) => {
                return Err(std::io::Error::other("a second one came"))
                    .step(|| "read the prebuilt part of the plan".into());
            }
            Some((Setup::Plan(plan), mut fds)) => {
                cgroup.join(&plan.cgroups, &mut fds)?;
                return Ok((plan, building, cgroup, fds, buf));
            }
            // The supervisor gave up before sending it.
            None => std::process::exit(0),
        }
    }
}

/// Where PID 1 is in joining the sandbox's cgroups.
#[derive(Default)]
struct Cgroup {
    /// Any at all (none: the host user is not root, RLIMIT_NPROC binds).
    any: bool,
    /// Threads writing `cgroup.procs`.
    joining: Vec<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Cgroup {
    /// Joins the cgroups whose files are the last of `fds`, one for each of
    /// `ways`; before anything is forked: "0" names the writer.
    fn join(&mut self, ways: &[CgroupJoin], fds: &mut Vec<OwnedFd>) -> Result<(), SetupError> {
        let step = || "join the sandbox's cgroups".to_string();
        let files = fds
            .len()
            .checked_sub(ways.len())
            .map(|first| fds.split_off(first))
            .ok_or_else(|| std::io::Error::other("their files did not come"))
            .step(step)?;
        for (how, file) in ways.iter().zip(files) {
            let file = std::fs::File::from(file);
            self.any = true;
            match how {
                // cgroup v1 `tasks` moves this thread, the only one, at once.
                CgroupJoin::Tasks => std::io::Write::write_all(&mut &file, b"0").step(step)?,
                // `cgroup.procs` waits out an RCU grace period (milliseconds):
                // a thread writes it while this one builds the root.
                CgroupJoin::Procs => {
                    self.joining.push(std::thread::spawn(move || std::io::Write::write_all(&mut &file, b"0")))
                }
            }
        }
        Ok(())
    }

    /// Waits for the threads still joining, then makes a fresh cgroup
    /// namespace rooted where PID 1 is now (the helper made one before PID
    /// 1 was in the sandbox's cgroups).
    fn finish(self) -> Result<(), SetupError> {
        for thread in self.joining {
            let joined = thread.join().unwrap_or_else(|_| Err(std::io::Error::other("the joining thread panicked")));
            joined.step(|| "join the sandbox's cgroups".into())?;
        }
        if self.any {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
                .step(|| "create the cgroup namespace".into())?;
        }
        Ok(())
    }
}

fn setup(
    plan: &Plan,
    building: Option<rootfs::Building>,
    detached: Vec<OwnedFd>,
    netns: Option<net::Joiner>,
    cgroup: Cgroup,
) -> Result<(Option<OwnedFd>, Option<OomScore>), SetupError> {
    let mut building = match building {
        Some(b) if b.is_start_of(&plan.root, plan.prebuilt) => b,
        None if plan.prebuilt == 0 => rootfs::Building::begin(&plan.root)?,
        // The supervisor checks this before it sends the plan.
        _ => {
            return Err(std::io::Error::other("the plan does not begin with what was built"))
                .step(|| "finish the prebuilt root".into());
        }
    };
    building.apply(&plan.root, plan.prebuilt, detached)?;
    if let Some(netns) = netns {
        netns.join().step(|| "create the network namespace".into())?;
    }
    let (root, upper) = building.finish(&plan.root)?;
    rootfs::enter(&root)?;
    nix::unistd::sethostname(&plan.hostname).step(|| "set the hostname".into())?;
    net::loopback_up().step(|| "bring up the loopback interface".into())?;
    cgroup.finish()?;
    // While PID 1 is still dumpable; without it, commands keep PID 1's score.
    let oom = OomScore::open().ok();
    // Last of setup: what every command inherits, the seccomp filter too.
    spawn::lock_down(plan).step(|| "apply the sandbox's restrictions (capabilities, seccomp)".into())?;
    Ok((upper, oom))
}

struct Server<'a> {
    plan: &'a Plan,
    /// Running commands: pid inside → request id.
    children: HashMap<i32, u64>,
    /// Each command's process group (its pid, after setsid) until the
    /// supervisor forgets it: signals reach what a command left behind.
    groups: HashMap<u64, i32>,
    /// Where a command's child runs until its `execve`.
    stack: spawn::Stack,
    /// Once `stop()` has begun: when what is left gets SIGKILL.
    stopping: Option<std::time::Instant>,
    /// Raises each command's OOM score above PID 1's.
    oom: Option<OomScore>,
}

fn serve(plan: &Plan, mut buf: Vec<u8>, oom: Option<OomScore>) -> i32 {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    if sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).is_err() {
        return 71;
    }
    let Ok(sfd) = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) else {
        return 71;
    };
    // SAFETY: the control socket is fd 3 for the whole life of init.
    let ctl = unsafe { BorrowedFd::borrow_raw(CONTROL_FD) };
    let Ok(stack) = spawn::Stack::new() else { return 71 };
    let mut server = Server { plan, children: HashMap::new(), groups: HashMap::new(), stack, stopping: None, oom };
    loop {
        let mut fds = [PollFd::new(ctl, PollFlags::POLLIN), PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let timeout = match server.stopping {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                PollTimeout::try_from(left.as_millis().min(1 << 30) as i32 + 1).unwrap_or(PollTimeout::ZERO)
            }
            None => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return shutdown(),
        }
        let ctl_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let child_ready = fds[1].revents().is_some_and(|r| !r.is_empty());
        if child_ready {
            while let Ok(Some(_)) = sfd.read_signal() {}
            server.reap();
        }
        if ctl_ready {
            match protocol::recv(CONTROL_FD, &mut buf, true) {
                Ok(Some(msg)) => server.handle(msg),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                // The supervisor is gone: so is the sandbox.
                Ok(None) | Err(_) => return shutdown(),
            }
        }
        if let Some(deadline) = server.stopping
            && (!has_children() || std::time::Instant::now() >= deadline)
        {
            return shutdown();
        }
    }
}

/// Whether any process but PID 1 is left (alive, or dead and not reaped):
/// every process in the sandbox descends from PID 1, which adopts orphans,
/// so it has a child while any is.
fn has_children() -> bool {
    // SAFETY: a zeroed siginfo_t is valid; waitid only writes into it, and
    // WNOWAIT leaves a dead child to be reaped as usual.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) == 0 }
}

/// Kills every process in the sandbox and reaps them all, so that when PID 1
/// closes the control socket (by exiting) nothing of the sandbox runs.
fn shutdown() -> i32 {
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 0,
        }
    }
}

impl Server<'_> {
    fn reap(&mut self) {
        loop {
            let (pid, code, signal) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Some(code), None),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, None, Some(sig as i32)),
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return,
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            // Orphans reparented to PID 1 are reaped and forgotten.
            if let Some(id) = self.children.remove(&pid.as_raw()) {
                let _ = protocol::send(CONTROL_FD, &Event::Exited { id, code, signal }, &[]);
            }
        }
    }

    /// Handles one request.
    fn handle(&mut self, msg: Received) {
        let Ok(request) = msg.parse::<Request>() else { return };
        match request {
            Request::Spawn(s) => self.spawn(s, msg.fds),
            Request::Signal { id, signal } => {
                if let (Some(&pid), Ok(sig)) = (self.groups.get(&id), Signal::try_from(signal)) {
                    // Its process group (setsid made it the leader), then the
                    // leader itself in case it left the group.
                    let _ = kill(Pid::from_raw(-pid), sig);
                    if self.children.contains_key(&pid) {
                        let _ = kill(Pid::from_raw(pid), sig);
                    }
                }
            }
            Request::Forget { id } => {
                self.groups.remove(&id);
            }
            Request::Connect { id, port } => self.socket(id, port, net::connect_loopback(port)),
            Request::Listen { id, port } => self.socket(id, port, net::listen_loopback(port)),
            Request::KillAll => {
                let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
            }
            Request::Stop { grace_ms } => {
                // Every process but PID 1 itself: what the commands started
                // too. The serving loop ends once they are gone, or at the
                // deadline.
                let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
                self.stopping = Some(std::time::Instant::now() + std::time::Duration::from_millis(grace_ms));
            }
        }
    }

    fn socket(&self, id: u64, port: u16, made: std::io::Result<OwnedFd>) {
        let _ = match made {
            Ok(fd) => protocol::send(CONTROL_FD, &Event::Socket { id, port, error: None }, &[fd.as_raw_fd()]),
            Err(e) => protocol::send(CONTROL_FD, &Event::Socket { id, port, error: Some(e.to_string()) }, &[]),
        };
    }

    fn spawn(&mut self, s: Spawn, fds: Vec<OwnedFd>) {
        let failed = |errno: i32, message: String| {
            let _ = protocol::send(CONTROL_FD, &Event::SpawnFailed { id: s.id, errno, message }, &[]);
        };
        if fds.len() != 3 {
            return failed(libc::EINVAL, "a spawn request needs stdin, stdout and stderr".into());
        }
        let stdio = [fds[0].as_raw_fd(), fds[1].as_raw_fd(), fds[2].as_raw_fd()];
        let program = s.argv.first().cloned().unwrap_or_default();
        let Some(mut command) = spawn::Command::new(self.plan, &s, stdio) else {
            let message = match s.argv.is_empty() {
                true => "an empty command".to_string(),
                false => format!("{program}: an argument, a variable or the directory holds a NUL byte"),
            };
            return failed(libc::EINVAL, message);
        };
        let started = match &self.oom {
            Some(oom) => oom.around(|| command.start(&mut self.stack)),
            None => command.start(&mut self.stack),
        };
        drop(fds);
        match started {
            Ok(pid) => {
                self.children.insert(pid, s.id);
                self.groups.insert(s.id, pid);
                let _ = protocol::send_with_pid(CONTROL_FD, &Event::Spawned { id: s.id, pid }, pid);
            }
            Err(e) => failed(e.errno, describe(&e, &program)),
        }
    }
}

/// A person's reading of a failure to start.
fn describe(e: &spawn::NotStarted, program: &str) -> String {
    let err = std::io::Error::from_raw_os_error(e.errno);
    if e.stage == spawn::Stage::Exec {
        match e.errno {
            libc::ENOENT => format!("{program}: command not found"),
            libc::EACCES => format!("{program}: permission denied"),
            _ => format!("{program}: cannot run: {err}"),
        }
    } else {
        format!("{program}: cannot prepare the sandboxed process: {err}")
    }
}

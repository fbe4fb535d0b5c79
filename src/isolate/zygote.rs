//! The zygote: the one `bun-sandbox-init` process a host process starts
//! (`supervisor::launcher`), which forks each sandbox's helper. An `execve`
//! of the helper costs more than its fork from a small process: the kernel
//! builds a new address space and faults the binary in, and the C library's
//! start-up asks the CPU for its features and caches, which a virtual
//! machine answers slowly; a fork copies a few page tables.
//!
//! It serves one request, on its control socket (fd 3): a message carrying
//! one fd, the new helper's control socket. It forks; the child puts that
//! socket on fd 3, drops everything else the zygote holds and goes on as
//! [`super::main`]; the zygote answers with the child's pid (4 bytes, native
//! order) and a pidfd for it, through which the supervisor signals it and
//! learns that it exited; or with a negative errno and no fd. The zygote
//! reaps its children, holds nothing else, runs nothing, is in a session of
//! its own (away from the terminal's signals), and dies with the thread that
//! started it; each helper dies with the zygote (its parent-
//! death signal), so a host process that dies leaves none.

use crate::protocol::{self, CONTROL_FD};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, getpid, getppid};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// The life of the zygote; `parent` is the host process's pid.
pub fn main(parent: i32) -> ! {
    // The host thread that started it, gone: so is the zygote, and by their
    // own parent-death signal every helper and sandbox.
    if prctl::set_pdeathsig(Signal::SIGKILL).is_err() || getppid().as_raw() != parent {
        std::process::exit(1);
    }
    // A session of its own, which its helpers inherit: a terminal's Ctrl-C
    // (SIGINT to the host's process group) reaches the host process, whose
    // supervisor stops each sandbox with its grace period, and not the
    // sandboxes' processes, which it would kill on the spot.
    let _ = nix::unistd::setsid();
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    if sigprocmask(SigmaskHow::SIG_BLOCK, Some(&chld), None).is_err() {
        std::process::exit(71);
    }
    let Ok(reaped) = SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) else {
        std::process::exit(71)
    };
    // SAFETY: the control socket is fd 3 for the whole life of the zygote.
    let ctl = unsafe { BorrowedFd::borrow_raw(CONTROL_FD) };
    let mut buf = Vec::new();
    loop {
        let mut fds = [PollFd::new(ctl, PollFlags::POLLIN), PollFd::new(reaped.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => std::process::exit(71),
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            while let Ok(Some(_)) = reaped.read_signal() {}
            while matches!(waitpid(None, Some(WaitPidFlag::WNOHANG)), Ok(s) if s != WaitStatus::StillAlive) {}
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            match protocol::recv(CONTROL_FD, &mut buf, true) {
                Ok(Some(msg)) => serve(msg.fds, &chld, reaped.as_raw_fd()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                // The supervisor is gone.
                Ok(None) | Err(_) => std::process::exit(0),
            }
        }
    }
}

/// Forks a helper whose control socket is the one fd of `fds`, and answers.
fn serve(mut fds: Vec<OwnedFd>, chld: &SigSet, reaped: i32) {
    let answer = |code: i32, fds: &[i32]| {
        let _ = protocol::send_raw(CONTROL_FD, &code.to_ne_bytes(), fds);
    };
    let (Some(control), true) = (fds.pop(), fds.is_empty()) else {
        return answer(-libc::EINVAL, &[]);
    };
    let zygote = getpid().as_raw();
    // SAFETY: single-threaded process; the child goes on to be a helper.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // Nothing of the zygote's own goes along: its signal mask, its
            // signalfd, its socket. fd 3 is the helper's control socket.
            let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(chld), None);
            // SAFETY: dup2 and close of fds this process owns; `control`
            // is closed once it sits on fd 3.
            unsafe {
                libc::close(reaped);
                if libc::dup2(control.as_raw_fd(), CONTROL_FD) != CONTROL_FD {
                    libc::_exit(71);
                }
            }
            drop(control);
            super::main(zygote)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(control);
            // The child is not reaped before this: only this thread reaps.
            // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
            let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.as_raw(), 0) } as i32;
            if pidfd < 0 {
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
                let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                return answer(-errno, &[]);
            }
            answer(child.as_raw(), &[pidfd]);
            // SAFETY: ours, sent above (the receiver has its own copy).
            unsafe { libc::close(pidfd) };
        }
        Err(e) => answer(-(e as i32), &[]),
    }
}

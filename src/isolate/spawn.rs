//! The child side of a spawn: everything between `fork` and `execve`.
//!
//! init is single-threaded, so the child may allocate; it still does as little
//! as it can, and reports a failure to start through `err_fd` (close-on-exec:
//! a successful `execve` closes it, and init reads EOF).

use super::caps;
use crate::protocol::{Plan, Rlimit, RlimitKind, Spawn};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;

/// Where a failure to start happened, reported to init with the errno.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    Setup = 1,
    Exec = 2,
}

/// Runs in the forked child: never returns.
pub fn exec_child(plan: &Plan, spawn: &Spawn, stdio: [RawFd; 3], err_fd: RawFd) -> ! {
    let (stage, err) = match prepare(plan, spawn, stdio, err_fd) {
        Ok(()) => (Stage::Exec, exec(spawn)),
        Err(e) => (Stage::Setup, e),
    };
    let errno = err.raw_os_error().unwrap_or(libc::EIO);
    let mut pipe = unsafe_file(super::spawn::ERR_FD);
    let _ = pipe.write_all(&[stage as u8, 0, 0, 0]);
    let _ = pipe.write_all(&errno.to_ne_bytes());
    std::mem::forget(pipe);
    // SAFETY: leaving the forked child without running init's destructors.
    unsafe { libc::_exit(127) }
}

/// The fd the error pipe has in the child, once the fds are laid out.
pub const ERR_FD: RawFd = 3;

fn unsafe_file(fd: RawFd) -> std::fs::File {
    use std::os::fd::FromRawFd;
    // SAFETY: fd 3 is the error pipe in the child; forgotten after use.
    unsafe { std::fs::File::from_raw_fd(fd) }
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

fn prepare(plan: &Plan, spawn: &Spawn, stdio: [RawFd; 3], err_fd: RawFd) -> io::Result<()> {
    // Its own session: a command cannot reach the terminal of another.
    nix::unistd::setsid()?;
    // SAFETY: fd shuffling with plain integers, in the single-threaded child.
    unsafe {
        // Lay out 0, 1, 2 and the error pipe at 3; close everything else, so
        // no descriptor of init (the control socket above all) leaks in.
        let err_tmp = libc::fcntl(err_fd, libc::F_DUPFD_CLOEXEC, 10);
        check(err_tmp)?;
        let mut moved = [0; 3];
        for (i, fd) in stdio.iter().enumerate() {
            moved[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
            check(moved[i])?;
        }
        for (i, fd) in moved.iter().enumerate() {
            check(libc::dup2(*fd, i as RawFd))?;
        }
        check(libc::dup3(err_tmp, ERR_FD, libc::O_CLOEXEC))?;
        check(libc::syscall(libc::SYS_close_range, (ERR_FD + 1) as u32, u32::MAX, 0u32) as libc::c_int)?;
    }
    // init blocks signals to read them from a signalfd; a command starts clean.
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    for sig in Signal::iterator() {
        if !matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            // SAFETY: restoring the default disposition.
            unsafe { libc::signal(sig as libc::c_int, libc::SIG_DFL) };
        }
    }
    for limit in &plan.rlimits {
        set_rlimit(limit)?;
    }
    std::env::set_current_dir(&spawn.cwd)?;
    caps::drop_all()?;
    // SAFETY: plain prctl.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    // Last, right before execve: nothing after this needs a blocked call.
    super::filter::install(&plan.seccomp)
}

fn set_rlimit(limit: &Rlimit) -> io::Result<()> {
    let resource = match limit.resource {
        RlimitKind::As => libc::RLIMIT_AS,
        RlimitKind::Data => libc::RLIMIT_DATA,
        RlimitKind::Nproc => libc::RLIMIT_NPROC,
        RlimitKind::Cpu => libc::RLIMIT_CPU,
        RlimitKind::Fsize => libc::RLIMIT_FSIZE,
        RlimitKind::Nofile => libc::RLIMIT_NOFILE,
        RlimitKind::Core => libc::RLIMIT_CORE,
    };
    let value = libc::rlimit { rlim_cur: limit.soft, rlim_max: limit.hard };
    // SAFETY: setrlimit with a valid struct.
    check(unsafe { libc::setrlimit(resource, &value) })
}

/// `execve` with a PATH search in the command's own environment (glibc's
/// `execvpe` searches init's PATH instead).
fn exec(spawn: &Spawn) -> io::Error {
    let Some(program) = spawn.argv.first() else {
        return io::Error::from_raw_os_error(libc::ENOENT);
    };
    let Ok(argv) = spawn.argv.iter().map(|a| CString::new(a.as_bytes())).collect::<Result<Vec<_>, _>>() else {
        return io::Error::from_raw_os_error(libc::EINVAL);
    };
    let Ok(envp) = spawn.env.iter().map(|(k, v)| CString::new(format!("{k}={v}"))).collect::<Result<Vec<_>, _>>()
    else {
        return io::Error::from_raw_os_error(libc::EINVAL);
    };
    let candidates: Vec<std::path::PathBuf> = if program.contains('/') {
        vec![program.into()]
    } else {
        let path = spawn.env.get("PATH").map(String::as_str).unwrap_or("/usr/local/bin:/usr/bin:/bin");
        path.split(':').filter(|d| !d.is_empty()).map(|d| std::path::Path::new(d).join(program)).collect()
    };
    let mut best = io::Error::from_raw_os_error(libc::ENOENT);
    for candidate in candidates {
        let Ok(file) = CString::new(candidate.as_os_str().as_bytes()) else { continue };
        let err = match nix::unistd::execve(&file, &argv, &envp) {
            Err(e) => io::Error::from(e),
            Ok(never) => match never {},
        };
        // Like a shell: "permission denied" beats "not found" further on.
        if err.raw_os_error() != Some(libc::ENOENT) && err.raw_os_error() != Some(libc::ENOTDIR) {
            best = err;
            if best.raw_os_error() != Some(libc::EACCES) {
                break;
            }
        }
    }
    best
}

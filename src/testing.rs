//! Helpers for the tests that make namespaces and mounts: each runs in a
//! forked child, so nothing it does reaches the test process.

use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

/// Runs `f` in a forked child and asserts it succeeded; the child prints
/// what went wrong.
pub(crate) fn in_child(what: &str, f: impl FnOnce() -> Result<(), String>) {
    // SAFETY: the child only makes syscalls and leaves with _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = match f() {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("{what}: {e}");
                    1
                }
            };
            // SAFETY: leaving the forked child without the harness's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            assert_eq!(waitpid(child, None).expect("waitpid"), WaitStatus::Exited(child, 0), "{what}")
        }
    }
}

/// Enters a new user namespace (with `also`) in which the caller's uid and
/// gid are 0.
pub(crate) fn enter_user_namespace(also: CloneFlags) -> Result<(), String> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    unshare(CloneFlags::CLONE_NEWUSER | also).map_err(|e| format!("unshare: {e}"))?;
    let write = |file: &str, text: String| std::fs::write(file, text).map_err(|e| format!("{file}: {e}"));
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))
}

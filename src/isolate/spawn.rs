//! Starting a command: everything between `clone` and `execve`.
//!
//! The child shares init's memory (`CLONE_VM | CLONE_VFORK`, as
//! `posix_spawn` does) and init waits until it has called `execve` or
//! exited. No page table is copied and none torn down at `execve`, which
//! with a plain `fork` cost more than the rest of a start together. The
//! price is the usual one of a vfork child: it only makes system calls on
//! what [`Command::new`] prepared beforehand, allocates nothing, and reports
//! a failure to start by writing into that shared struct.
//!
//! What every command shares was set once in PID 1 and is inherited
//! ([`lock_down`]): securebits, the empty bounding set, no_new_privs and the
//! seccomp filter. The child adds what is its own: a new session, its stdio
//! and no other fd, the signal mask and dispositions reset, rlimits, the
//! working directory, and no capability left.

use super::{caps, filter};
use crate::protocol::{Plan, Rlimit, RlimitKind, Spawn};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::ptr;

/// Where a failure to start happened, reported to init with the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Setup,
    Exec,
}

/// Why a command did not start.
#[derive(Debug)]
pub struct NotStarted {
    pub stage: Stage,
    pub errno: i32,
}

/// What every command of the sandbox shares, set once in PID 1 before it
/// serves: nothing PID 1 or its children do can gain a capability through
/// `execve` (securebits, bounding set, ambient), no_new_privs, and the
/// seccomp filter, which every child inherits at `clone` and keeps across
/// `execve`. PID 1 itself never calls `execve`; it keeps its capabilities,
/// so a command (same uid, none) cannot open `/proc/1/mem` or trace it,
/// and it is not dumpable besides. The filter refuses `mount`, `setns`,
/// `unshare` with namespaces, so this comes after all of setup.
pub fn lock_down(plan: &Plan) -> io::Result<()> {
    caps::limit_bounding()?;
    // SAFETY: plain prctl calls with integer arguments.
    unsafe {
        check(libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0))?;
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
    }
    filter::install(&plan.seccomp)
}

/// A command ready to start: every string and table the child needs, made
/// in init's own memory before the clone.
pub struct Command {
    /// `execve`'s candidates: the program itself when it names a path, else
    /// each directory of the command's PATH joined with it.
    candidates: Vec<CString>,
    /// The arguments and `NAME=value` strings the pointer arrays point into.
    _strings: (Vec<CString>, Vec<CString>),
    /// NULL-terminated pointer arrays for `execve`.
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    cwd: CString,
    rlimits: Vec<(libc::__rlimit_resource_t, libc::rlimit)>,
    stdio: [RawFd; 3],
    /// Written by the child when it cannot start; read after `clone` returns.
    failure: Option<NotStarted>,
}

impl Command {
    /// `None` when an argument, a variable or the directory holds a NUL byte.
    pub fn new(plan: &Plan, spawn: &Spawn, stdio: [RawFd; 3]) -> Option<Command> {
        let program = spawn.argv.first()?;
        let argv = spawn.argv.iter().map(|a| CString::new(a.as_bytes()).ok()).collect::<Option<Vec<_>>>()?;
        let envp = spawn.env.iter().map(|(k, v)| CString::new(format!("{k}={v}")).ok()).collect::<Option<Vec<_>>>()?;
        let candidates = if program.contains('/') {
            vec![CString::new(program.as_bytes()).ok()?]
        } else {
            // The command's own PATH, not init's.
            let path = spawn.env.get("PATH").map(String::as_str).unwrap_or("/usr/local/bin:/usr/bin:/bin");
            path.split(':')
                .filter(|d| !d.is_empty())
                .filter_map(|d| CString::new(std::path::Path::new(d).join(program).as_os_str().as_bytes()).ok())
                .collect()
        };
        let pointers = |strings: &[CString]| strings.iter().map(|s| s.as_ptr()).chain([ptr::null()]).collect();
        Some(Command {
            argv_ptrs: pointers(&argv),
            envp_ptrs: pointers(&envp),
            candidates,
            _strings: (argv, envp),
            cwd: CString::new(spawn.cwd.as_os_str().as_bytes()).ok()?,
            rlimits: plan.rlimits.iter().map(rlimit).collect(),
            stdio,
            failure: None,
        })
    }

    /// Starts the command on `stack`; returns its pid once it has called
    /// `execve`, or why it did not start (the child is reaped then).
    pub fn start(&mut self, stack: &mut Stack) -> Result<i32, NotStarted> {
        self.failure = None;
        let arg = (self as *mut Command).cast::<libc::c_void>();
        // SAFETY: CLONE_VFORK suspends init until the child has called
        // execve or exited, so `self` and the stack outlive its use of
        // them; the child touches nothing else of init's memory.
        let pid = unsafe { libc::clone(child, stack.top(), libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD, arg) };
        if pid < 0 {
            let errno = io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
            return Err(NotStarted { stage: Stage::Setup, errno });
        }
        match self.failure.take() {
            None => Ok(pid),
            Some(failed) => {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                Err(failed)
            }
        }
    }
}

/// The child's stack: mapped once, with a guard page below it, and reused
/// (a vfork child runs one at a time).
pub struct Stack {
    base: *mut libc::c_void,
}

/// Far more than the child's few calls need; only touched pages cost.
const STACK_SIZE: usize = 256 * 1024;
const GUARD: usize = 4096;

impl Stack {
    pub fn new() -> io::Result<Stack> {
        // SAFETY: a fresh private anonymous mapping, then its lowest page
        // made inaccessible so an overflow faults instead of writing below.
        unsafe {
            let base = libc::mmap(
                ptr::null_mut(),
                STACK_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            if libc::mprotect(base, GUARD, libc::PROT_NONE) < 0 {
                let e = io::Error::last_os_error();
                libc::munmap(base, STACK_SIZE);
                return Err(e);
            }
            Ok(Stack { base })
        }
    }

    fn top(&mut self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping; stacks grow down.
        unsafe { self.base.cast::<u8>().add(STACK_SIZE).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used.
        unsafe { libc::munmap(self.base, STACK_SIZE) };
    }
}

/// The child: system calls on prepared data only, then `execve`.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Command` init is suspended in `start` with.
    let cmd = unsafe { &mut *arg.cast::<Command>() };
    let failure = match prepare(cmd) {
        Ok(()) => NotStarted { stage: Stage::Exec, errno: exec(cmd) },
        Err(errno) => NotStarted { stage: Stage::Setup, errno },
    };
    cmd.failure = Some(failure);
    // SAFETY: leaving the child without running anything of init's.
    unsafe { libc::_exit(127) }
}

/// The errno of the last failed call.
fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

fn ok(r: libc::c_int) -> Result<(), i32> {
    if r < 0 { Err(errno()) } else { Ok(()) }
}

fn prepare(cmd: &Command) -> Result<(), i32> {
    // SAFETY: system calls with plain integers and pointers into `cmd`.
    unsafe {
        // Its own session: a command cannot reach the terminal of another.
        ok(libc::setsid())?;
        // Lay out 0, 1, 2 and close everything else, so no descriptor of
        // init (the control socket above all) leaks in. The stdio fds are
        // moved out of the way first: one of them may be 0, 1 or 2 already.
        let mut moved = [0; 3];
        for (slot, fd) in moved.iter_mut().zip(cmd.stdio) {
            *slot = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
            ok(*slot)?;
        }
        for (target, fd) in moved.into_iter().enumerate() {
            ok(libc::dup2(fd, target as RawFd))?;
        }
        ok(libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) as libc::c_int)?;
    }
    // init blocks signals to read them from a signalfd; a command starts clean.
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).map_err(|e| e as i32)?;
    for sig in Signal::iterator() {
        if !matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            // SAFETY: restoring the default disposition.
            unsafe { libc::signal(sig as libc::c_int, libc::SIG_DFL) };
        }
    }
    // SAFETY: setrlimit with valid structs, chdir with a C string.
    unsafe {
        for (resource, value) in &cmd.rlimits {
            ok(libc::setrlimit(*resource, value))?;
        }
        ok(libc::chdir(cmd.cwd.as_ptr()))?;
    }
    caps::clear().map_err(|e| e.raw_os_error().unwrap_or(libc::EPERM))
}

/// `execve` of each candidate in turn; the errno to report when none ran.
/// Like a shell: "permission denied" beats "not found" further on.
fn exec(cmd: &Command) -> i32 {
    let mut best = libc::ENOENT;
    for file in &cmd.candidates {
        // SAFETY: NUL-terminated strings and NULL-terminated arrays of them.
        unsafe { libc::execve(file.as_ptr(), cmd.argv_ptrs.as_ptr(), cmd.envp_ptrs.as_ptr()) };
        let e = errno();
        if e != libc::ENOENT && e != libc::ENOTDIR {
            best = e;
            if e != libc::EACCES {
                break;
            }
        }
    }
    best
}

fn rlimit(limit: &Rlimit) -> (libc::__rlimit_resource_t, libc::rlimit) {
    let resource = match limit.resource {
        RlimitKind::As => libc::RLIMIT_AS,
        RlimitKind::Data => libc::RLIMIT_DATA,
        RlimitKind::Nproc => libc::RLIMIT_NPROC,
        RlimitKind::Cpu => libc::RLIMIT_CPU,
        RlimitKind::Fsize => libc::RLIMIT_FSIZE,
        RlimitKind::Nofile => libc::RLIMIT_NOFILE,
        RlimitKind::Core => libc::RLIMIT_CORE,
    };
    (resource, libc::rlimit { rlim_cur: limit.soft, rlim_max: limit.hard })
}

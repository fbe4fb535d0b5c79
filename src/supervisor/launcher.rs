//! Starts `bun-sandbox-init` processes from one long-lived thread.
//!
//! The host process is multi-threaded, and `PR_SET_PDEATHSIG` fires when the
//! *thread* that forked a child exits: so every helper is started by this one
//! thread, which lives as long as the process. It starts them with
//! `posix_spawn` (a vfork-style clone): copying the page tables of a large
//! JavaScript process with `fork` took longer than building the sandbox.

use crate::protocol::CONTROL_FD;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, setsockopt, socketpair, sockopt};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// A running helper process.
pub struct Helper {
    pid: libc::pid_t,
    reaped: bool,
}

impl Helper {
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    pub fn kill(&mut self) -> io::Result<()> {
        if self.reaped {
            return Ok(());
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), nix::sys::signal::Signal::SIGKILL)?;
        Ok(())
    }

    /// Whether it has exited, without reaping it.
    pub fn has_exited(&self) -> bool {
        use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        self.reaped
            || !matches!(waitid(Id::Pid(nix::unistd::Pid::from_raw(self.pid)), flags), Ok(WaitStatus::StillAlive))
    }

    /// Waits for it to exit (blocking).
    pub fn wait(&mut self) -> io::Result<()> {
        while !self.reaped {
            match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None) {
                Ok(nix::sys::wait::WaitStatus::Exited(..) | nix::sys::wait::WaitStatus::Signaled(..)) => {
                    self.reaped = true
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// A started helper: our end of its control socket and its process.
pub struct Launched {
    pub control: OwnedFd,
    pub child: Helper,
}

/// An encoded message and the fds that ride on it.
pub type Message = (Vec<u8>, Vec<OwnedFd>);

type Job = (PathBuf, Vec<Message>, tokio::sync::oneshot::Sender<io::Result<Launched>>);

fn launcher() -> &'static Mutex<mpsc::Sender<Job>> {
    static LAUNCHER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    LAUNCHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("bun-sandbox-launcher".into())
            .spawn(move || {
                for (init, first, reply) in rx {
                    let _ = reply.send(start(&init, &first));
                }
            })
            .expect("the launcher thread starts");
        Mutex::new(tx)
    })
}

/// Starts a helper with its first messages (the ids; a spare's prebuild)
/// waiting in its control socket. The launcher thread has the job when this
/// returns; the future resolves once the helper runs (the caller works
/// meanwhile).
pub fn launch(init: PathBuf, first: Vec<Message>) -> impl Future<Output = io::Result<Launched>> {
    let gone = || io::Error::other("the launcher thread is gone");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let queued = launcher().lock().map_err(|_| gone()).and_then(|l| l.send((init, first, tx)).map_err(|_| gone()));
    async move {
        queued?;
        rx.await.map_err(|_| gone())?
    }
}

/// A close-on-exec copy of `fd` numbered 10 or above, so that laying out 3
/// in the child can never overwrite a source.
fn high(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd we own.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just created.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn check(r: libc::c_int, what: &str) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::new(
            io::Error::from_raw_os_error(r).kind(),
            format!("{what}: {}", io::Error::from_raw_os_error(r)),
        ))
    }
}

fn start(init: &Path, first: &[Message]) -> io::Result<Launched> {
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
    // Spawned events carry credentials naming the process; the kernel
    // translates that pid into ours.
    setsockopt(&ours, sockopt::PassCred, &true)?;
    // The first messages wait in the socket: init reads them the moment it starts.
    for (bytes, fds) in first {
        let fds: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        crate::protocol::send_raw(ours.as_raw_fd(), bytes, &fds)?;
    }
    let control = high(theirs.as_raw_fd())?;
    drop(theirs);

    let path = CString::new(init.as_os_str().as_bytes()).map_err(|_| io::Error::other("init path has a NUL byte"))?;
    let ppid = CString::new(std::process::id().to_string()).expect("digits");
    let argv = [path.as_ptr(), ppid.as_ptr(), std::ptr::null()];
    let env = CString::new("BUN_SANDBOX_INIT=1").expect("ascii");
    let envp = [env.as_ptr(), std::ptr::null()];
    let dev_null = CString::new("/dev/null").expect("ascii");

    // SAFETY: posix_spawn with file actions built and destroyed here; every
    // pointer outlives the call.
    unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        check(libc::posix_spawn_file_actions_init(&mut actions), "posix_spawn_file_actions_init")?;
        let result = (|| -> io::Result<libc::pid_t> {
            check(
                libc::posix_spawn_file_actions_addopen(&mut actions, 0, dev_null.as_ptr(), libc::O_RDONLY, 0),
                "stdin",
            )?;
            check(
                libc::posix_spawn_file_actions_addopen(&mut actions, 1, dev_null.as_ptr(), libc::O_WRONLY, 0),
                "stdout",
            )?;
            check(libc::posix_spawn_file_actions_adddup2(&mut actions, control.as_raw_fd(), CONTROL_FD), "control fd")?;
            let mut pid: libc::pid_t = 0;
            check(
                libc::posix_spawn(
                    &mut pid,
                    path.as_ptr(),
                    &actions,
                    std::ptr::null(),
                    argv.as_ptr() as *const *mut _,
                    envp.as_ptr() as *const *mut _,
                ),
                &format!("cannot start {}", init.display()),
            )?;
            Ok(pid)
        })();
        libc::posix_spawn_file_actions_destroy(&mut actions);
        let pid = result?;
        Ok(Launched { control: ours, child: Helper { pid, reaped: false } })
    }
}

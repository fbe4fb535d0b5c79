//! Starts `bun-sandbox-init` processes from one long-lived thread.
//!
//! The host process is multi-threaded, and `PR_SET_PDEATHSIG` fires when the
//! *thread* that forked a child exits: so the init binary is started by this
//! one thread, which lives as long as the process, and only once (per init
//! path) as the zygote (`isolate::zygote`), with `posix_spawn` (a vfork-style
//! clone: copying the page tables of a large JavaScript process with `fork`
//! took longer than building the sandbox). Each sandbox's helper is a fork of
//! the zygote: cheaper than an `execve` of the binary. A helper is not our
//! child: the zygote reaps it, and we know it by a pidfd.
//!
//! A zygote that is gone (killed from outside) is started again at the next
//! launch; its helpers went with it (their parent-death signal), and their
//! sandboxes report that their init ended. One that does not answer within
//! [`ANSWER`] is killed and started again.

use crate::protocol::{self, CONTROL_FD};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, setsockopt, socketpair, sockopt};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How long the zygote may take to fork a helper and answer.
const ANSWER: Duration = Duration::from_secs(5);

/// A running helper process, forked by the zygote.
pub struct Helper {
    pid: libc::pid_t,
    pidfd: OwnedFd,
}

impl Helper {
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    pub fn kill(&mut self) -> io::Result<()> {
        // SAFETY: pidfd_send_signal with a pidfd we own and no siginfo.
        let r = unsafe {
            libc::syscall(libc::SYS_pidfd_send_signal, self.pidfd.as_raw_fd(), libc::SIGKILL, std::ptr::null::<()>(), 0)
        };
        match r {
            0 => Ok(()),
            // Gone already.
            _ if io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// Whether it has exited (its pidfd polls readable from then on).
    pub fn has_exited(&self) -> bool {
        let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
        !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
    }

    /// Waits for it to exit (blocking).
    pub fn wait(&mut self) -> io::Result<()> {
        loop {
            let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
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
                // Started on first use, one per init binary: a zygote lives as
                // long as its helpers may, so the whole process's life.
                let mut zygotes: Vec<Zygote> = Vec::new();
                for (init, first, reply) in rx {
                    let _ = reply.send(start(&mut zygotes, &init, &first));
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

fn start(zygotes: &mut Vec<Zygote>, init: &Path, first: &[Message]) -> io::Result<Launched> {
    let mut retried = false;
    loop {
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
        // Spawned events carry credentials naming the process; the kernel
        // translates that pid into ours.
        setsockopt(&ours, sockopt::PassCred, &true)?;
        // The first messages wait in the socket: init reads them the moment it starts.
        for (bytes, fds) in first {
            let fds: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
            protocol::send_raw(ours.as_raw_fd(), bytes, &fds)?;
        }
        let i = match zygotes.iter().position(|z| z.init == init) {
            Some(i) => i,
            None => {
                zygotes.push(Zygote::start(init)?);
                zygotes.len() - 1
            }
        };
        match zygotes[i].fork(&theirs) {
            Ok(child) => return Ok(Launched { control: ours, child: child? }),
            // Killed from outside, say: a new one, once, with a new socket
            // (a helper forked before the zygote went may have read from it).
            Err(Gone(e)) => {
                zygotes.swap_remove(i).end();
                if std::mem::replace(&mut retried, true) {
                    return Err(e);
                }
            }
        }
    }
}

/// The zygote of one init binary: our child, and our end of its socket.
struct Zygote {
    init: PathBuf,
    pid: libc::pid_t,
    control: OwnedFd,
}

/// The zygote did not answer: it is gone, or hangs.
struct Gone(io::Error);

impl Zygote {
    fn start(init: &Path) -> io::Result<Zygote> {
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
        setsockopt(&ours, sockopt::ReceiveTimeout, &nix::sys::time::TimeVal::new(ANSWER.as_secs() as i64, 0))?;
        let pid = spawn(init, &high(theirs.as_raw_fd())?)?;
        Ok(Zygote { init: init.into(), pid, control: ours })
    }

    /// A helper whose control socket is `control`: the zygote's answer, an
    /// error it reports (a failed fork), or [`Gone`].
    fn fork(&self, control: &OwnedFd) -> Result<io::Result<Helper>, Gone> {
        let gone = |e: io::Error| Gone(io::Error::other(format!("the init zygote did not answer: {e}")));
        protocol::send_raw(self.control.as_raw_fd(), &[0], &[control.as_raw_fd()]).map_err(gone)?;
        let mut buf = Vec::new();
        let answer = protocol::recv(self.control.as_raw_fd(), &mut buf, false)
            .and_then(|m| m.ok_or_else(|| io::ErrorKind::UnexpectedEof.into()))
            .map_err(gone)?;
        let code = answer.bytes.get(..4).and_then(|b| b.try_into().ok()).map(i32::from_ne_bytes);
        Ok(match (code, answer.fds.into_iter().next()) {
            (Some(pid), Some(pidfd)) if pid > 0 => Ok(Helper { pid, pidfd }),
            (Some(errno), _) if errno < 0 => Err(io::Error::from_raw_os_error(-errno)),
            _ => Err(io::Error::other("the init zygote's answer is malformed")),
        })
    }

    /// Kills and reaps it (and so every helper it forked).
    fn end(self) {
        // SAFETY: our own child, not reaped yet (only this thread reaps it).
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            while libc::waitpid(self.pid, std::ptr::null_mut(), 0) < 0
                && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
        }
    }
}

/// Starts the init binary (as the zygote) with `control` on its fd 3.
fn spawn(init: &Path, control: &OwnedFd) -> io::Result<libc::pid_t> {
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
        result
    }
}

//! Starts `bun-sandbox-init` processes from one long-lived thread.
//!
//! The host process is multi-threaded, and `PR_SET_PDEATHSIG` fires when the
//! *thread* that forked a child exits: so every helper is forked by this one
//! thread, which lives as long as the process.

use crate::protocol::CONTROL_FD;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, setsockopt, socketpair, sockopt};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// A started helper: our end of its control socket and its process.
pub struct Launched {
    pub control: OwnedFd,
    pub child: Child,
}

type Job = (PathBuf, Vec<u8>, Option<std::fs::File>, mpsc::Sender<io::Result<Launched>>);

fn launcher() -> &'static Mutex<mpsc::Sender<Job>> {
    static LAUNCHER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    LAUNCHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("bun-sandbox-launcher".into())
            .spawn(move || {
                for (init, plan, cgroup, reply) in rx {
                    let _ = reply.send(start(&init, &plan, cgroup));
                }
            })
            .expect("the launcher thread starts");
        Mutex::new(tx)
    })
}

/// Starts a helper with its plan (blocking: call it off the async threads).
/// `cgroup_procs`, an open `cgroup.procs`, is joined by the child before it
/// runs anything, so nothing of the sandbox ever runs outside that cgroup.
pub fn launch(init: PathBuf, plan: Vec<u8>, cgroup_procs: Option<std::fs::File>) -> io::Result<Launched> {
    let (tx, rx) = mpsc::channel();
    launcher()
        .lock()
        .map_err(|_| io::Error::other("the launcher thread is gone"))?
        .send((init, plan, cgroup_procs, tx))
        .map_err(|_| io::Error::other("the launcher thread is gone"))?;
    rx.recv().map_err(|_| io::Error::other("the launcher thread is gone"))?
}

fn start(init: &PathBuf, plan: &[u8], cgroup_procs: Option<std::fs::File>) -> io::Result<Launched> {
    let (ours, theirs) =
        socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
    // The plan waits in the socket, so init reads it the moment it starts.
    crate::protocol::send_raw(ours.as_raw_fd(), plan)?;
    // Spawned events carry credentials naming the process; the kernel
    // translates that pid into ours.
    setsockopt(&ours, sockopt::PassCred, &true)?;
    let fd = theirs.as_raw_fd();
    let procs = cgroup_procs.as_ref().map(|f| f.as_raw_fd());
    let mut cmd = Command::new(init);
    cmd.arg(std::process::id().to_string())
        .env_clear()
        .env("BUN_SANDBOX_INIT", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // "0" moves the writer itself into the cgroup.
            if let Some(procs) = procs {
                if libc::write(procs, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(io::Error::last_os_error());
                }
            }
            if fd == CONTROL_FD {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(fd, CONTROL_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| io::Error::new(e.kind(), format!("cannot start {}: {e}", init.display())))?;
    drop(theirs);
    Ok(Launched { control: ours, child })
}

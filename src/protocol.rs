//! The typed messages between the supervisor (in the host process) and
//! `bun-sandbox-init`, and their framing.
//!
//! One message is one packet on a `SOCK_SEQPACKET` socketpair: JSON bytes, with
//! file descriptors attached by `SCM_RIGHTS` where a message says so. Packets
//! keep message boundaries, so there is no length prefix to get wrong, and fds
//! travel with the message they belong to.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// The largest message either side sends or accepts.
pub const MAX_MESSAGE: usize = 1 << 20;
/// At most this many fds ride on one message.
pub const MAX_FDS: usize = 128;
/// The fd number the control socket has in `bun-sandbox-init`.
pub const CONTROL_FD: RawFd = 3;

/// How the sandbox's PID 1 joins one of its cgroups (root host users): the
/// files it writes "0" into come as the last fds of the message that names
/// the ways (`Prebuild` or `Plan`), in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupJoin {
    /// cgroup v1 `tasks`: moves the writing thread alone, at once. PID 1
    /// writes it while single-threaded, which moves all of it.
    Tasks,
    /// `cgroup.procs`: moves the whole process, but waits out an RCU grace
    /// period first (milliseconds); PID 1 writes it from a thread while it
    /// builds the root.
    Procs,
}

/// The helper's first message, waiting in the socket when it starts: who
/// the invoking user is inside, all it needs to make the user namespace.
/// The plan follows once the supervisor has built it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ids {
    /// uid/gid outside (the invoking user) and inside.
    pub outer_uid: u32,
    pub outer_gid: u32,
    pub inner_uid: u32,
    pub inner_gid: u32,
    /// For a root host user: the unprivileged host uid/gid the sandbox user
    /// is outside.
    #[serde(default)]
    pub remap: Option<Remap>,
}

/// A root host user's sandbox user is `uid`/`gid` outside, not root
/// (`supervisor::remap`): the helper becomes them before it makes its user
/// namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remap {
    pub uid: u32,
    pub gid: u32,
}

/// What PID 1 reads after the ids: a plan, or first what it can build of
/// one ahead of time (a spare, `supervisor::spare`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "setup", rename_all = "snake_case")]
pub enum Setup {
    Prebuild(Prebuild),
    Plan(Plan),
}

/// The part of a root that depends on the host alone, built by a spare's
/// PID 1 before it has a sandbox: the mounts of `root` (its `detached` ones
/// come with the message, then the files of the cgroups `cgroups` joins).
/// The plan that follows must begin with exactly these mounts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prebuild {
    pub root: RootPlan,
    #[serde(default)]
    pub cgroups: Vec<CgroupJoin>,
}

/// Everything PID 1 needs to build the sandbox: computed and checked on the
/// host side (`crate::policy`), applied by init.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub hostname: String,
    pub root: RootPlan,
    /// The seccomp program applied to every command, as `sock_filter` words.
    pub seccomp: Vec<u64>,
    /// Resource limits applied to every command.
    pub rlimits: Vec<Rlimit>,
    /// How many of `root.mounts` a `Prebuild` already made (0 without one).
    /// Only the rest's `detached` fds come with the plan.
    #[serde(default)]
    pub prebuilt: usize,
    /// How PID 1 joins the cgroups it is not in yet (a spare's joined its
    /// pids cgroup with the `Prebuild`): their files are the message's
    /// last fds.
    #[serde(default)]
    pub cgroups: Vec<CgroupJoin>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootPlan {
    /// Where the scratch tmpfs is mounted: a host directory that stays empty
    /// on the host (each sandbox mounts over it in its own mount namespace).
    /// It holds the layers nobody reads back (the uppers of `/usr`, `/etc`,
    /// ...) and the directory the new root is mounted on, so building and
    /// tearing down a sandbox touches the host disk only for the WORKDIR.
    pub scratch: PathBuf,
    /// The scratch tmpfs's size (`limits.diskBytes`); unlimited when unset.
    #[serde(default)]
    pub scratch_size: Option<u64>,
    /// Mounts in order, each relative to the new root.
    pub mounts: Vec<Mount>,
    /// The size of the tmpfs that becomes `/` (64 MiB when unset).
    #[serde(default)]
    pub root_size: Option<u64>,
    /// How many of `mounts`, from the first, depend on the host alone (not
    /// on the WORKDIR's layer or the state dir): what a spare can build.
    #[serde(skip)]
    pub shared: usize,
    /// The mounts (indices into `mounts`) whose lower or source is not a
    /// host path but a detached mount sent with the plan, in this order: a
    /// root host user's idmapped WORKDIR, and host paths its unprivileged
    /// uid may not reach (`supervisor::remap`).
    #[serde(default)]
    pub detached: Vec<usize>,
}

/// One step of building the root filesystem. Targets are absolute paths as the
/// sandbox will see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mount {
    /// The host's root filesystem (its mount alone, without what is mounted
    /// on it) as the sandbox's `/`, copy-on-write; first in a plan, instead
    /// of the tmpfs root. Its lower is a detached mount the supervisor of a
    /// root host user sends (`supervisor::remap`); when the kernel refuses
    /// the overlay, that mount stays, read-only.
    HostRoot {
        upper: PathBuf,
        work: PathBuf,
    },
    /// A copy-on-write view of a host directory; `upper` and `work` are host
    /// paths in the state dir. When the kernel refuses the overlay,
    /// `fallback_ro_bind` says whether a read-only bind may stand in. With
    /// `pass_upper`, init opens `upper` once the overlay is mounted and sends
    /// that fd to the supervisor on `Ready` (the WORKDIR's upper when it lives
    /// on the scratch tmpfs, which the host cannot reach by path). With
    /// `volatile` (an upper on the host disk), the overlay never syncs it:
    /// the layer is thrown away with the sandbox.
    Overlay {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
        fallback_ro_bind: bool,
        #[serde(default)]
        pass_upper: bool,
        #[serde(default)]
        volatile: bool,
        /// The WORKDIR's overlay: for a root host user its lower is an
        /// idmapped mount of it (`supervisor::remap`).
        #[serde(default)]
        project: bool,
    },
    /// A read-only recursive bind of a host path.
    RoBind {
        source: PathBuf,
        target: PathBuf,
    },
    Tmpfs {
        target: PathBuf,
        mode: u32,
        size: Option<u64>,
    },
    Symlink {
        link: PathBuf,
        target: PathBuf,
    },
    Proc {
        target: PathBuf,
    },
    /// A read-only sysfs of the sandbox's own network namespace (its `lo`
    /// alone under `/sys/class/net`, nothing mounted below it), or, where
    /// the kernel refuses one, a read-only bind of the host's `/sys`.
    Sysfs {
        target: PathBuf,
    },
    /// A minimal `/dev`: null, zero, full, random, urandom, tty, pts, shm
    /// (a tmpfs of `shm_size` bytes when set).
    Dev {
        target: PathBuf,
        #[serde(default)]
        shm_size: Option<u64>,
    },
    /// Hides a host file: an empty read-only file bound over it.
    Mask {
        target: PathBuf,
    },
    /// Hides a host directory: an empty read-only tmpfs over it.
    MaskDir {
        target: PathBuf,
    },
    /// A directory inside the new root owned by the inner user (the home).
    Dir {
        target: PathBuf,
        mode: u32,
    },
}

impl Mount {
    /// Where it appears in the sandbox.
    pub fn target(&self) -> &Path {
        match self {
            Mount::Overlay { target, .. }
            | Mount::RoBind { target, .. }
            | Mount::Tmpfs { target, .. }
            | Mount::Proc { target }
            | Mount::Sysfs { target }
            | Mount::Dev { target, .. }
            | Mount::Mask { target }
            | Mount::MaskDir { target }
            | Mount::Dir { target, .. } => target,
            Mount::Symlink { link, .. } => link,
            Mount::HostRoot { .. } => Path::new("/"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub resource: RlimitKind,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RlimitKind {
    As,
    /// Private writable memory (heap, anonymous mappings) per process.
    Data,
    Nproc,
    Cpu,
    Fsize,
    Nofile,
    Core,
}

/// Supervisor → init.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start a command. Three fds ride along: its stdin, stdout and stderr.
    Spawn(Spawn),
    /// Send a signal to a command's process group (also after the command
    /// itself exited: what it left running in its group is still reached).
    Signal { id: u64, signal: i32 },
    /// The supervisor is done with a command: init forgets its group.
    Forget { id: u64 },
    /// A TCP socket inside the sandbox connected to `127.0.0.1:port`; the fd
    /// comes back on `Socket`.
    Connect { id: u64, port: u16 },
    /// A TCP socket inside the sandbox listening on `127.0.0.1:port` (0 = any).
    Listen { id: u64, port: u16 },
    /// SIGKILL to every process in the sandbox but PID 1, which serves on
    /// (the disk floor was crossed: `supervisor::disk_floor`).
    KillAll,
    /// `stop()`: SIGTERM to every process in the sandbox; once none is left,
    /// or `grace_ms` has passed, SIGKILL to the rest; then init reaps them
    /// all and exits (the socket closing says it is done).
    Stop { grace_ms: u64 },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spawn {
    pub id: u64,
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
}

/// init → supervisor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The sandbox is built; commands may be spawned. When an overlay of the
    /// plan has `pass_upper`, the fd of its upper directory rides on this
    /// message.
    Ready,
    /// Setup failed; init exits after this.
    SetupFailed { message: String },
    /// A command started. Sent with `SCM_CREDENTIALS` naming the process, so
    /// the supervisor reads its pid as the host sees it.
    Spawned { id: u64, pid: i32 },
    /// A command could not be started (not found, not executable, ...).
    SpawnFailed { id: u64, errno: i32, message: String },
    /// A command ended: `code` when it exited, `signal` when it was killed.
    Exited { id: u64, code: Option<i32>, signal: Option<i32> },
    /// The fd of a `Connect` or `Listen` rides on this message, or `error` says why not.
    Socket { id: u64, port: u16, error: Option<String> },
}

/// Sends one already-encoded message with fds attached.
pub fn send_raw(sock: RawFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    send_bytes(sock, bytes, fds)
}

/// Encodes a message (as `send` would send it).
pub fn encode<T: Serialize>(msg: &T) -> io::Result<Vec<u8>> {
    serde_json::to_vec(msg).map_err(io::Error::other)
}

/// Sends one message with fds attached.
pub fn send<T: Serialize>(sock: RawFd, msg: &T, fds: &[RawFd]) -> io::Result<()> {
    send_bytes(sock, &encode(msg)?, fds)
}

fn send_bytes(sock: RawFd, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    if bytes.len() > MAX_MESSAGE {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "message too large"));
    }
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("more than {MAX_FDS} fds on one message")));
    }
    let iov = [io::IoSlice::new(bytes)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(sock, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// A received message: its bytes, fds and, when the sender attached
/// credentials, the pid they name (translated into the receiver's pid
/// namespace by the kernel).
pub struct Received {
    pub bytes: Vec<u8>,
    pub fds: Vec<OwnedFd>,
    pub cred_pid: Option<i32>,
}

impl Received {
    pub fn parse<T: for<'de> Deserialize<'de>>(&self) -> io::Result<T> {
        serde_json::from_slice(&self.bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// Receives one message into `buf` (grown to the largest message yet and
/// reused). `Ok(None)` is the peer closing the socket.
pub fn recv(sock: RawFd, buf: &mut Vec<u8>, nonblocking: bool) -> io::Result<Option<Received>> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let wait = if nonblocking { MsgFlags::MSG_DONTWAIT } else { MsgFlags::empty() };
    // The next packet's length first (MSG_TRUNC reports all of it): a
    // buffer of `MAX_MESSAGE` for every message was a megabyte to zero and
    // fault in on each side of every sandbox.
    let next = loop {
        match nix::sys::socket::recv(sock, &mut [0u8; 1], wait | MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other?,
        }
    };
    if next > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message of {next} bytes, more than {MAX_MESSAGE}"),
        ));
    }
    if buf.len() < next.max(1) {
        buf.resize(next.max(1), 0);
    }
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS], libc::ucred);
    let flags = MsgFlags::MSG_CMSG_CLOEXEC | wait;
    let (len, fds, cred_pid, truncated) = loop {
        let mut iov = [io::IoSliceMut::new(buf.as_mut_slice())];
        match recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), flags) {
            Ok(msg) => {
                let mut fds = Vec::new();
                let mut cred_pid = None;
                for c in msg.cmsgs().map_err(io::Error::from)? {
                    match c {
                        // SAFETY: the kernel just gave us these fds; we own them now.
                        ControlMessageOwned::ScmRights(raw) => {
                            fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }))
                        }
                        ControlMessageOwned::ScmCredentials(c) => cred_pid = Some(c.pid()),
                        _ => {}
                    }
                }
                let truncated = msg.flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
                break (msg.bytes, fds, cred_pid, truncated);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if truncated {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "message or its fds truncated"));
    }
    if len == 0 && fds.is_empty() {
        return Ok(None);
    }
    Ok(Some(Received { bytes: buf[..len].to_vec(), fds, cred_pid }))
}

/// Sends `msg` with credentials naming `pid` (which init may do for its own
/// children: it holds CAP_SYS_ADMIN over its pid namespace).
pub fn send_with_pid<T: Serialize>(sock: RawFd, msg: &T, pid: i32) -> io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, UnixCredentials, sendmsg};
    let bytes = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let iov = [io::IoSlice::new(&bytes)];
    let cred = libc::ucred { pid, uid: nix::unistd::getuid().as_raw(), gid: nix::unistd::getgid().as_raw() };
    let creds = UnixCredentials::from(cred);
    let cmsgs = [ControlMessage::ScmCredentials(&creds)];
    loop {
        match sendmsg::<()>(sock, &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The raw fd of anything that has one (for `send`).
pub fn raw<T: AsRawFd>(x: &T) -> RawFd {
    x.as_raw_fd()
}

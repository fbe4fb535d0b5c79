//! A root host user's sandbox runs as an unprivileged host uid. Outside, uid 0
//! without any capability still owns every file only root may read (owner
//! checks need no capability), and no list of such files to hide is ever
//! complete. So the sandbox user (1000 inside) is `Remap::uid` outside, and
//! the WORKDIR, which that user must be able to write, is shown through an
//! idmapped mount on which its owner is that uid (overlay takes idmapped
//! lower layers since Linux 5.19).
//!
//! Two steps need host root after the helper has entered its user namespace,
//! where it is root no longer: writing id maps that name a uid other than its
//! own, and idmapping a mount of a host filesystem. A child forked before
//! `unshare` does both. It shares the helper's fd table (`CLONE_FILES`), so
//! the idmapped mount it makes in the helper's mount namespace is the
//! helper's to hand to PID 1. When the WORKDIR's filesystem cannot be
//! idmapped (overlayfs, kernels before 5.12), the sandbox user is host uid 0
//! as before, root's credential stores are masked, and the supervisor warns.

use super::{SetupError, Step};
use crate::protocol::{Ids, Remap};
use nix::sched::{CloneFlags, unshare};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::{Gid, Uid, setresgid, setresuid};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

/// What the helper's user namespace turned out to be.
pub enum Mapped {
    /// The sandbox user is the unprivileged uid outside.
    Unprivileged(Remapped),
    /// The WORKDIR could not be idmapped (why): the sandbox user is uid 0 outside.
    HostRoot(String),
}

/// The idmapped WORKDIR (a detached mount) and who to become once the
/// host paths the plan names are open.
pub struct Remapped {
    pub project: OwnedFd,
    pub uid: u32,
    pub gid: u32,
}

/// The mapper at work: `unshare` is done, the maps are being written.
pub struct Mapping {
    mapper: i32,
    /// Every pipe end stays open until the mapper is gone: it shares this
    /// fd table, so closing one here would close it under the mapper.
    go: (OwnedFd, OwnedFd),
    back_r: OwnedFd,
    back_w: OwnedFd,
    /// PID 1's end of the hand-over socket (`Mapping::hand_over`).
    pid1: OwnedFd,
    helper: OwnedFd,
    link: OwnedFd,
}

/// `unshare(flags)` with the id maps written from outside (see the module),
/// by a mapper that goes on while the helper forks PID 1.
pub fn unshare_mapping(ids: &Ids, remap: &Remap, flags: CloneFlags) -> Result<Mapping, SetupError> {
    // Root's own supplementary groups (group 0 among them) go first.
    nix::unistd::setgroups(&[]).step(|| "drop root's supplementary groups".into())?;
    let (go_r, go_w) = pipe().step(|| "make the id mapper's pipes".into())?;
    let (back_r, back_w) = pipe().step(|| "make the id mapper's pipes".into())?;
    let (link, pid1) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .step(|| "make the hand-over socket".into())?;
    let me = nix::unistd::getpid().as_raw();
    // SAFETY: pidfd_open of our own pid; the result is checked.
    let helper = unsafe { libc::syscall(libc::SYS_pidfd_open, me, 0) };
    if helper < 0 {
        return Err(io::Error::last_os_error()).step(|| "open a pidfd of the helper".into());
    }
    // SAFETY: a new fd, ours.
    let helper = unsafe { OwnedFd::from_raw_fd(helper as RawFd) };
    // SAFETY: a fork-like clone of a single-threaded process; the child
    // reports through a pipe and leaves with `_exit`.
    let child = unsafe { libc::syscall(libc::SYS_clone, libc::CLONE_FILES | libc::SIGCHLD, 0, 0, 0, 0) };
    if child < 0 {
        return Err(io::Error::last_os_error()).step(|| "fork the id mapper".into());
    }
    if child == 0 {
        let mut go = [0u8];
        let report = match nix::unistd::read(&go_r, &mut go) {
            Ok(1) if go[0] == 1 => mapper(me, ids, remap),
            _ => Report::Failed(Stage::Aborted, 0),
        };
        let _ = nix::unistd::write(&back_w, &report.encode());
        // SAFETY: leaves without running anything of the helper's.
        unsafe { libc::_exit(0) }
    }
    let unshared = unshare(flags);
    let _ = nix::unistd::write(&go_w, &[u8::from(unshared.is_ok())]);
    let mapping = Mapping { mapper: child as i32, go: (go_r, go_w), back_r, back_w, pid1, helper, link };
    match unshared {
        Ok(()) => Ok(mapping),
        Err(e) => {
            let _ = mapping.finish(ids, remap);
            Err(e).step(|| "create the namespaces (unshare)".into())
        }
    }
}

/// What the helper tells PID 1 once the mapper is done; the idmapped
/// WORKDIR rides along.
#[derive(serde::Serialize, serde::Deserialize)]
enum HandOver {
    Unprivileged { uid: u32, gid: u32 },
    HostRoot { why: String },
    Failed { step: String, errno: i32 },
}

impl Mapping {
    /// In PID 1 (a copy of the helper's fds): its side only.
    pub fn into_pid1(self) -> Pid1Side {
        Pid1Side { link: self.pid1, helper: self.helper }
    }

    /// Waits for the mapper's report.
    fn finish(self, ids: &Ids, remap: &Remap) -> Result<Mapped, SetupError> {
        let Mapping { mapper, go, back_r, back_w, .. } = self;
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(mapper), None);
        drop(go);
        // The mapper is gone: with the last write end closed, a mapper that
        // died without a word reads as the end of the pipe.
        drop(back_w);
        let mut bytes = [0u8; 12];
        read_all(&back_r, &mut bytes).step(|| "hear from the id mapper".into())?;
        match Report::decode(&bytes) {
            // SAFETY: the mapper opened it in the fd table we share, for us.
            Report::Mapped(fd) => Ok(Mapped::Unprivileged(Remapped {
                project: unsafe { OwnedFd::from_raw_fd(fd) },
                uid: ids.inner_uid,
                gid: ids.inner_gid,
            })),
            Report::HostRoot(stage, errno) => Ok(Mapped::HostRoot(format!(
                "{}: {}",
                stage.describe(&remap.project),
                io::Error::from_raw_os_error(errno)
            ))),
            Report::Failed(stage, errno) => {
                Err(io::Error::from_raw_os_error(errno)).step(|| stage.describe(&remap.project))
            }
        }
    }

    /// In the helper, after forking PID 1: waits for the mapper, tells PID 1
    /// how it went, and becomes the sandbox user too when there is one.
    pub fn hand_over(self, ids: &Ids, remap: &Remap) -> Result<(), SetupError> {
        let link = self.link.try_clone().step(|| "keep the hand-over socket".into())?;
        let (msg, fds, user) = match self.finish(ids, remap) {
            Ok(Mapped::Unprivileged(r)) => {
                (HandOver::Unprivileged { uid: r.uid, gid: r.gid }, Some(r.project), Some((r.uid, r.gid)))
            }
            Ok(Mapped::HostRoot(why)) => (HandOver::HostRoot { why }, None, None),
            Err(e) => {
                let errno = e.source.raw_os_error().unwrap_or(libc::EIO);
                (HandOver::Failed { step: e.step, errno }, None, None)
            }
        };
        let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        crate::protocol::send(link.as_raw_fd(), &msg, &raw).step(|| "hand the mapping to PID 1".into())?;
        match user {
            Some((uid, gid)) => become_user(uid, gid),
            None => Ok(()),
        }
    }
}

/// PID 1's side of a `Mapping`: the hand-over socket, and a pidfd of the
/// helper, to see whether it died while PID 1 had no parent-death signal
/// (`exited`).
pub struct Pid1Side {
    link: OwnedFd,
    pub helper: OwnedFd,
}

impl Pid1Side {
    /// Waits for the helper's word on the mapping.
    pub fn receive(&self) -> Result<Mapped, SetupError> {
        let link = &self.link;
        let mut buf = Vec::new();
        let got = crate::protocol::recv(link.as_raw_fd(), &mut buf, false).step(|| "hear how the ids were mapped".into())?;
        let Some(mut got) = got else {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the helper exited")).step(|| "hear how the ids were mapped".into());
        };
        let msg: HandOver = got.parse().step(|| "decode the mapping".into())?;
        match msg {
            HandOver::Unprivileged { uid, gid } => {
                let project = got.fds.pop().ok_or_else(|| io::Error::other("no WORKDIR mount came with it")).step(|| "hear how the ids were mapped".into())?;
                Ok(Mapped::Unprivileged(Remapped { project, uid, gid }))
            }
            HandOver::HostRoot { why } => Ok(Mapped::HostRoot(why)),
            HandOver::Failed { step, errno } => Err(SetupError { step, source: io::Error::from_raw_os_error(errno) }),
        }
    }
}

/// Becomes the sandbox user, the unprivileged uid outside. The namespace has
/// no uid 0, so the kernel's setuid fix-up (which drops the capabilities of
/// a root that leaves uid 0) does not apply: what is left of setup may still
/// mount.
pub fn become_user(uid: u32, gid: u32) -> Result<(), SetupError> {
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    setresgid(gid, gid, gid).step(|| "become the sandbox's group".into())?;
    setresuid(uid, uid, uid).step(|| "become the sandbox's user".into())?;
    // A change of uid leaves the process not dumpable, and PID 1 opens the
    // helper's network namespace through /proc (both are that uid now).
    nix::sys::prctl::set_dumpable(true).step(|| "stay reachable to PID 1".into())?;
    // It also clears the parent-death signal: the caller checks the race.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).step(|| "set the parent-death signal".into())
}

/// Whether the process of `pidfd` has exited (its pidfd reads as ready).
pub fn exited(pidfd: &OwnedFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(std::os::fd::AsFd::as_fd(pidfd), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Where the mapper was, for the error or the warning.
#[derive(Clone, Copy)]
enum Stage {
    Aborted,
    Stat,
    IdmapNamespace,
    EnterMounts,
    Clone,
    Idmap,
    Maps,
}

impl Stage {
    const ALL: [Stage; 7] =
        [Stage::Aborted, Stage::Stat, Stage::IdmapNamespace, Stage::EnterMounts, Stage::Clone, Stage::Idmap, Stage::Maps];

    fn describe(self, project: &std::path::Path) -> String {
        let p = project.display();
        match self {
            Stage::Aborted => "the id mapper was not asked to map".into(),
            Stage::Stat => format!("read the owner of {p}"),
            Stage::IdmapNamespace => format!("make the user namespace that idmaps {p}"),
            Stage::EnterMounts => "enter the sandbox's mount namespace".into(),
            Stage::Clone => format!("take a mount of {p}"),
            Stage::Idmap => format!("idmap the mount of {p} (its filesystem or this kernel may not support idmapped mounts)"),
            Stage::Maps => "write the sandbox's id maps".into(),
        }
    }
}

enum Report {
    Mapped(RawFd),
    HostRoot(Stage, i32),
    Failed(Stage, i32),
}

impl Report {
    fn encode(&self) -> [u8; 12] {
        let (kind, stage, value) = match *self {
            Report::Mapped(fd) => (0, 0, fd),
            Report::HostRoot(stage, errno) => (1, stage as i32, errno),
            Report::Failed(stage, errno) => (2, stage as i32, errno),
        };
        let mut out = [0u8; 12];
        for (chunk, v) in out.chunks_mut(4).zip([kind, stage, value]) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        out
    }

    fn decode(bytes: &[u8; 12]) -> Report {
        let word = |i: usize| i32::from_ne_bytes([bytes[i * 4], bytes[i * 4 + 1], bytes[i * 4 + 2], bytes[i * 4 + 3]]);
        let stage = Stage::ALL.get(word(1) as usize).copied().unwrap_or(Stage::Aborted);
        match word(0) {
            0 => Report::Mapped(word(2)),
            1 => Report::HostRoot(stage, word(2)),
            _ => Report::Failed(stage, word(2)),
        }
    }
}

/// The mapper's work, as host root, once the helper has unshared: idmap the
/// WORKDIR, then write the helper's maps — to the unprivileged uid, or to
/// uid 0 when idmapping failed (the state dir is root's again then).
fn mapper(helper: i32, ids: &Ids, remap: &Remap) -> Report {
    let proc = format!("/proc/{helper}");
    let write_maps = |uid, gid| super::userns::write_maps(&proc, ids, uid, gid).map_err(|e| e.source);
    match idmapped_project(helper, remap) {
        Ok(fd) => match write_maps(remap.uid, remap.gid) {
            Ok(()) => Report::Mapped(fd),
            Err(e) => Report::Failed(Stage::Maps, errno(&e)),
        },
        Err((stage, e)) => {
            let given_back = std::os::unix::fs::chown(&remap.state_dir, Some(ids.outer_uid), Some(ids.outer_gid));
            match given_back.and_then(|()| write_maps(ids.outer_uid, ids.outer_gid)) {
                Ok(()) => Report::HostRoot(stage, errno(&e)),
                Err(e) => Report::Failed(Stage::Maps, errno(&e)),
            }
        }
    }
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// A detached mount of the WORKDIR, made in the helper's mount namespace,
/// on which the WORKDIR's owner is the unprivileged uid.
fn idmapped_project(helper: i32, remap: &Remap) -> Result<RawFd, (Stage, io::Error)> {
    let meta = fs::metadata(&remap.project).map_err(|e| (Stage::Stat, e))?;
    let userns = idmap_namespace(meta.uid(), meta.gid(), remap.uid, remap.gid).map_err(|e| (Stage::IdmapNamespace, e))?;
    let mounts = open(&format!("/proc/{helper}/ns/mnt")).map_err(|e| (Stage::EnterMounts, e))?;
    nix::sched::setns(&mounts, CloneFlags::CLONE_NEWNS).map_err(|e| (Stage::EnterMounts, e.into()))?;
    let path = std::ffi::CString::new(remap.project.as_os_str().as_encoded_bytes())
        .map_err(|e| (Stage::Clone, io::Error::other(e)))?;
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    // SAFETY: a C string; the result is a new fd or -1.
    let tree = unsafe {
        libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint)
    };
    if tree < 0 {
        return Err((Stage::Clone, io::Error::last_os_error()));
    }
    // SAFETY: open_tree returned a new fd.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    super::rootfs::set_mount_attr(tree.as_raw_fd(), c"", libc::AT_EMPTY_PATH as libc::c_uint, MOUNT_ATTR_IDMAP, userns.as_raw_fd() as u64)
        .map_err(|e| (Stage::Idmap, e))?;
    Ok(tree.into_raw_fd())
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// A user namespace whose only mapping is `owner` → `uid` (and the same for
/// groups), as the idmapping of a mount: a child made in it waits while its
/// maps are written and its namespace is opened, then is killed. (Not told
/// by closing a pipe: PID 1, forked meanwhile from the table the mapper
/// shares, may hold a copy of any fd the mapper has open.)
fn idmap_namespace(owner: u32, group: u32, uid: u32, gid: u32) -> io::Result<OwnedFd> {
    // SAFETY: fork-like; the child only waits to be killed.
    let child = unsafe { libc::syscall(libc::SYS_clone, libc::CLONE_NEWUSER | libc::SIGCHLD, 0, 0, 0, 0) };
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    if child == 0 {
        loop {
            // SAFETY: waits for a signal; SIGKILL ends it.
            unsafe { libc::pause() };
        }
    }
    let proc = format!("/proc/{child}");
    let ns = fs::write(format!("{proc}/uid_map"), format!("{owner} {uid} 1\n"))
        .and_then(|()| fs::write(format!("{proc}/gid_map"), format!("{group} {gid} 1\n")))
        .and_then(|()| open(&format!("{proc}/ns/user")));
    let child = nix::unistd::Pid::from_raw(child as i32);
    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(child, None);
    ns
}

fn open(path: &str) -> io::Result<OwnedFd> {
    fs::OpenOptions::new().read(true).custom_flags(libc::O_CLOEXEC).open(path).map(OwnedFd::from)
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

fn read_all(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        match nix::unistd::read(fd, &mut buf[at..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the id mapper exited without a word")),
            Ok(n) => at += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

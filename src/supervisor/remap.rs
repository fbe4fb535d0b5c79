//! A root host user's sandbox runs as an unprivileged host uid. Outside, uid 0
//! without any capability still owns every file only root may read (owner
//! checks need no capability), and no list of such files to hide is ever
//! complete. So the sandbox user (1000 inside) is [`ROOT_SANDBOX_ID`]
//! outside: the helper becomes that uid before it makes its user namespace
//! and maps it as any user maps its own (`isolate::userns`).
//!
//! What needs root is done here, on the host, before the plan is sent, as
//! detached mounts (`open_tree`) that PID 1 attaches: the WORKDIR, which the
//! sandbox user must be able to write, idmapped so that its owner is that
//! uid (overlay takes an idmapped lower layer since Linux 5.19); and each
//! host path of the plan below a directory that uid may not pass through
//! (tools under `/root`), read-only. Each is made private first: a copy of
//! a shared host mount would otherwise share with the host what the sandbox
//! mounts on it.
//!
//! Where the WORKDIR cannot be idmapped (overlayfs, as a container's root
//! often is; an older kernel) the sandbox user is host uid 0 instead, as an
//! ordinary user's is that user: root's credential stores are masked, and
//! a warning says so, once per process.

use crate::isolate::mount_api::{
    self, Attrs, MOUNT_ATTR_IDMAP, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
};
use crate::protocol::{MAX_FDS, Mount, RootPlan};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A root host user's sandbox user, outside: an unprivileged uid and gid
/// that no account uses, below 2^31 (some tools take uid_t as signed).
pub const ROOT_SANDBOX_ID: u32 = 2_147_483_645;

/// Who a root host user's sandbox user is outside.
pub enum RootUser {
    /// [`ROOT_SANDBOX_ID`]. `project` is the idmapped WORKDIR when it was
    /// made to learn whether it can be (the first time for this WORKDIR);
    /// after that it is made only for a plan whose WORKDIR layer is not
    /// prebuilt by a spare ([`project_for`]): an unused detached mount
    /// would cost its close, an RCU grace period on the start's path.
    Unprivileged { project: Option<OwnedFd> },
    /// Host uid 0: the WORKDIR could not be idmapped (the warning said why).
    HostRoot,
}

/// Chooses for a sandbox of `workdir`, idmapping it when it can.
pub fn choose(workdir: &Path) -> RootUser {
    // The same directory (device, inode, owner) idmapped before: it can be.
    static IDMAPPED: Mutex<Vec<(PathBuf, [u64; 4])>> = Mutex::new(Vec::new());
    let identity = fs::metadata(workdir).ok().map(|m| [m.dev(), m.ino(), u64::from(m.uid()), u64::from(m.gid())]);
    let mut known = IDMAPPED.lock().unwrap_or_else(|e| e.into_inner());
    if identity.is_some_and(|id| known.iter().any(|(dir, was)| dir == workdir && *was == id)) {
        return RootUser::Unprivileged { project: None };
    }
    match idmapped(workdir) {
        Ok(project) => {
            if let Some(id) = identity {
                known.retain(|(dir, _)| dir != workdir);
                if known.len() >= 64 {
                    known.remove(0);
                }
                known.push((workdir.to_path_buf(), id));
            }
            RootUser::Unprivileged { project: Some(project) }
        }
        Err(why) => {
            warn_once(format!(
                "this sandbox's user is host uid 0 (root), not an unprivileged uid: {why}; only a list of root's credential files is hidden from it"
            ));
            RootUser::HostRoot
        }
    }
}

/// The idmapped WORKDIR for a plan whose mounts from `from` on are still
/// to be made: `made` (from [`choose`]) or a new one when its overlay is
/// among them, none when a spare has built it.
pub fn project_for(plan: &RootPlan, from: usize, made: Option<OwnedFd>, workdir: &Path) -> io::Result<Option<OwnedFd>> {
    if !plan.mounts.iter().skip(from).any(|m| matches!(m, Mount::Overlay { project: true, .. })) {
        return Ok(None);
    }
    match made {
        Some(fd) => Ok(Some(fd)),
        None => idmapped(workdir).map(Some).map_err(io::Error::other),
    }
}

/// Why a root host user's sandbox of `workdir` would be host uid 0, not
/// [`ROOT_SANDBOX_ID`], if it would (`checkIsolationSupport()` says so).
pub fn host_root_reason(workdir: &Path) -> Option<String> {
    idmapped(workdir).err()
}

/// The host paths of the plan's mounts from `from` on that
/// [`ROOT_SANDBOX_ID`] may not reach become detached mounts, and the
/// WORKDIR's overlay gets `project` as its lower (a spare's prebuild has
/// none): returns them in the order `plan.detached` names their mounts.
pub fn detach(plan: &mut RootPlan, mut project: Option<OwnedFd>, from: usize) -> io::Result<Vec<OwnedFd>> {
    let mut fds = Vec::new();
    for (i, m) in plan.mounts.iter().enumerate().skip(from) {
        let fd = match m {
            Mount::HostRoot { .. } => Some(copy(Path::new("/"), false, read_only())?),
            Mount::Overlay { project: true, .. } => project.take(),
            Mount::Overlay { lower, .. } if closed_above(lower).is_some() => {
                Some(copy(lower, false, Attrs { propagation: MS_PRIVATE, ..Attrs::default() })?)
            }
            Mount::RoBind { source, .. } if closed_above(source).is_some() => Some(copy(source, true, read_only())?),
            _ => None,
        };
        if let Some(fd) = fd {
            plan.detached.push(i);
            fds.push(fd);
        }
    }
    if fds.len() > MAX_FDS {
        return Err(io::Error::other(format!(
            "{} host paths lie where uid {ROOT_SANDBOX_ID} may not reach them; at most {MAX_FDS} can be passed in",
            fds.len()
        )));
    }
    Ok(fds)
}

const MS_PRIVATE: u64 = libc::MS_PRIVATE;

/// Read-only, nosuid, nodev and private.
fn read_only() -> Attrs {
    Attrs { set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, propagation: MS_PRIVATE, ..Attrs::default() }
}

/// Whether this process can take the mount of the host's root filesystem
/// alone, without the mounts on it (`open_tree` without `AT_RECURSIVE`):
/// then one overlay of it stands for all the top-level directories on that
/// filesystem (`Mount::HostRoot`), where each would otherwise be an overlay
/// of its own. Real root in the host's mount namespace can; where the mounts
/// on `/` are locked (a container's root in a user namespace) the kernel
/// refuses. Asked once per process.
pub fn whole_root() -> bool {
    static CAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAN.get_or_init(|| mount_api::open_tree(Path::new("/"), false).is_ok())
}

/// A detached, private copy of the mount at `path` with `attrs`.
fn copy(path: &Path, recursive: bool, attrs: Attrs) -> io::Result<OwnedFd> {
    let with = |e: io::Error| {
        io::Error::new(e.kind(), format!("take a mount of {} for uid {ROOT_SANDBOX_ID}: {e}", path.display()))
    };
    let tree = mount_api::open_tree(path, recursive).map_err(with)?;
    mount_api::set_tree_attrs(&tree, recursive, attrs).map_err(with)?;
    Ok(tree)
}

/// The nearest directory above `path` (its real path) that
/// [`ROOT_SANDBOX_ID`], in no group of the host, may not pass through, and
/// its mode. `None` as well for a path that does not resolve: PID 1 says
/// what is wrong with it.
pub fn closed_above(path: &Path) -> Option<(PathBuf, u32)> {
    let real = fs::canonicalize(path).ok()?;
    for dir in real.ancestors().skip(1) {
        let meta = fs::metadata(dir).ok()?;
        let search = match (meta.uid(), meta.gid()) {
            (ROOT_SANDBOX_ID, _) => 0o100,
            (_, ROOT_SANDBOX_ID) => 0o010,
            _ => 0o001,
        };
        if meta.mode() & search == 0 {
            return Some((dir.to_path_buf(), meta.mode() & 0o7777));
        }
    }
    None
}

/// A detached mount of the WORKDIR on which its owner is
/// [`ROOT_SANDBOX_ID`], or why there is none.
pub(super) fn idmapped(workdir: &Path) -> Result<OwnedFd, String> {
    let p = workdir.display();
    if let Some(release) = kernel_before(5, 19) {
        return Err(format!(
            "Linux {release} cannot use an idmapped mount as an overlay's lower layer (5.19 and later can)"
        ));
    }
    let meta = fs::metadata(workdir).map_err(|e| format!("read the owner of {p}: {e}"))?;
    let userns =
        idmap_namespace(meta.uid(), meta.gid()).map_err(|e| format!("make the user namespace that idmaps {p}: {e}"))?;
    let tree = mount_api::open_tree(workdir, false).map_err(|e| format!("take a mount of {p}: {e}"))?;
    let attrs = Attrs { set: MOUNT_ATTR_IDMAP, propagation: MS_PRIVATE, userns: Some(userns) };
    mount_api::set_tree_attrs(&tree, false, attrs).map_err(|e| {
        format!("idmap the mount of {p} (its filesystem or this kernel may not support idmapped mounts): {e}")
    })?;
    Ok(tree)
}

/// The kernel's release when it is older than `major.minor`.
fn kernel_before(major: u32, minor: u32) -> Option<String> {
    // SAFETY: uname fills the zeroed struct; its fields are NUL-terminated.
    let release = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return None;
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr()).to_string_lossy().into_owned()
    };
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>().ok());
    let (Some(Some(have_major)), Some(Some(have_minor))) = (parts.next(), parts.next()) else { return None };
    ((have_major, have_minor) < (major, minor)).then_some(release)
}

/// The user namespace whose only mapping is `owner` → [`ROOT_SANDBOX_ID`]
/// (and `group` the same), as an idmapping: made once per owner and kept
/// for the life of the process (the fd stays open, so the raw fd returned
/// stays valid).
fn idmap_namespace(owner: u32, group: u32) -> io::Result<RawFd> {
    static MADE: Mutex<Vec<((u32, u32), OwnedFd)>> = Mutex::new(Vec::new());
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, ns)) = made.iter().find(|(ids, _)| *ids == (owner, group)) {
        return Ok(ns.as_raw_fd());
    }
    let ns = new_idmap_namespace(owner, group)?;
    let raw = ns.as_raw_fd();
    made.push(((owner, group), ns));
    Ok(raw)
}

/// A child made in a new user namespace waits while its maps are written
/// and its namespace is opened, then is killed. It shares this process's
/// memory (copying a JavaScript process's page tables would cost more than
/// the rest) and runs on its own stack; every signal is blocked in it, and
/// it makes one raw system call, so it touches nothing of the thread that
/// made it. No signal tells this process of its end.
fn new_idmap_namespace(owner: u32, group: u32) -> io::Result<OwnedFd> {
    extern "C" fn wait_to_be_killed(_: *mut libc::c_void) -> libc::c_int {
        loop {
            // SAFETY: ppoll on no fds, forever; only SIGKILL ends it.
            unsafe { libc::syscall(libc::SYS_ppoll, 0usize, 0usize, 0usize, 0usize, 0usize) };
        }
    }
    use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
    let mut stack = vec![0u8; 64 * 1024];
    // The stack grows down from its (16-byte aligned) end.
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    let mut mask = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), Some(&mut mask))?;
    // SAFETY: the child runs `wait_to_be_killed` on `stack`, which outlives
    // it (it is reaped below before the stack is freed).
    let child = unsafe {
        libc::clone(
            wait_to_be_killed,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_NEWUSER,
            std::ptr::null_mut(),
        )
    };
    let made = if child < 0 { Err(io::Error::last_os_error()) } else { Ok(child) };
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&mask), None)?;
    let child = made?;
    let proc = format!("/proc/{child}");
    let ns = fs::write(format!("{proc}/uid_map"), format!("{owner} {ROOT_SANDBOX_ID} 1\n"))
        .and_then(|()| fs::write(format!("{proc}/gid_map"), format!("{group} {ROOT_SANDBOX_ID} 1\n")))
        .and_then(|()| fs::OpenOptions::new().read(true).custom_flags(libc::O_CLOEXEC).open(format!("{proc}/ns/user")));
    // SAFETY: our child, not yet reaped.
    unsafe { libc::kill(child, libc::SIGKILL) };
    loop {
        // SAFETY: waits for our own child; __WALL, as it sends no SIGCHLD.
        let r = unsafe { libc::waitpid(child, std::ptr::null_mut(), libc::__WALL) };
        if r == child || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    drop(stack);
    // SAFETY: a new fd from `open`, ours.
    ns.map(|file| unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(file)) })
}

/// Prints a warning once per process for the same words: every sandbox of a
/// run that makes many would say the same.
fn warn_once(message: String) {
    static SAID: Mutex<std::collections::BTreeSet<String>> = Mutex::new(std::collections::BTreeSet::new());
    let first = SAID.lock().map(|mut said| said.insert(message.clone())).unwrap_or(true);
    if first {
        eprintln!("bun-sandbox: warning: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_below_a_directory_closed_to_others_is_found_closed() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private");
        let open = dir.path().join("open");
        for d in [&private, &open] {
            fs::create_dir_all(d.join("tools")).unwrap();
        }
        fs::set_permissions(&private, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        assert_eq!(closed_above(&private.join("tools")), Some((fs::canonicalize(&private).unwrap(), 0o700)));
        assert_eq!(closed_above(&open.join("tools")), None);
        // Through a link, the real path's directories count.
        std::os::unix::fs::symlink(private.join("tools"), open.join("link")).unwrap();
        assert_eq!(closed_above(&open.join("link")), Some((fs::canonicalize(&private).unwrap(), 0o700)));
        assert_eq!(closed_above(&dir.path().join("missing")), None);
    }

    #[test]
    fn the_idmapped_workdir_is_made_only_for_a_layer_still_to_be_built() {
        let layer = |project| Mount::Overlay {
            lower: "/p".into(),
            upper: "/u".into(),
            work: "/w".into(),
            target: "/p".into(),
            fallback_ro_bind: false,
            pass_upper: false,
            volatile: true,
            project,
        };
        let plan = RootPlan {
            scratch: "/s".into(),
            scratch_size: None,
            mounts: vec![layer(false), layer(true)],
            root_size: None,
            shared: 1,
            detached: Vec::new(),
        };
        let missing = Path::new("/nonexistent/workdir");
        // A spare built it (both mounts prebuilt): nothing made, nothing kept.
        let fd = || OwnedFd::from(fs::File::open("/").unwrap());
        assert!(project_for(&plan, 2, Some(fd()), missing).unwrap().is_none());
        assert!(project_for(&plan, 2, None, missing).unwrap().is_none());
        // Still to be built: the one made already goes to it...
        assert!(project_for(&plan, 1, Some(fd()), missing).unwrap().is_some());
        // ...or a new one is made, which for a missing directory fails.
        assert!(project_for(&plan, 1, None, missing).is_err());
    }

    #[test]
    fn kernel_versions_compare_by_major_then_minor() {
        assert!(kernel_before(0, 1).is_none());
        assert!(kernel_before(999, 0).is_some());
    }
}

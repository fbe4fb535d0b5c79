//! The new mount API's calls the sandbox uses: `open_tree` (a detached copy
//! of a mount), `mount_setattr` (its attributes: read-only, an idmapping,
//! propagation) and `move_mount` (attaching a detached mount). Used by PID 1
//! and, for a root host user, by the supervisor, which prepares detached
//! mounts on the host for PID 1 to attach (`supervisor::remap`).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
pub const AT_RECURSIVE: libc::c_uint = 0x8000;

/// A path as a C string (a path with a NUL byte names no file).
pub fn c_path(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(io::Error::other)
}

/// A detached copy of the mount at `path` (with every mount below it when
/// `recursive`), close-on-exec.
pub fn open_tree(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let path = c_path(path)?;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: a C string; the result is a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open_tree returned a new fd, ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// What `mount_setattr` sets.
#[derive(Default, Clone, Copy)]
pub struct Attrs {
    pub set: u64,
    /// `MS_PRIVATE` and the like; 0 leaves propagation as it is.
    pub propagation: u64,
    /// With `MOUNT_ATTR_IDMAP`: the user namespace whose maps idmap it.
    pub userns: Option<RawFd>,
}

/// `mount_setattr(2)` on the mount at `dirfd`/`path`.
pub fn set_attrs(dirfd: RawFd, path: &CStr, flags: libc::c_uint, attrs: Attrs) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let userns_fd = attrs.userns.map_or(0, |fd| fd as u64);
    let attr = MountAttr { attr_set: attrs.set, attr_clr: 0, propagation: attrs.propagation, userns_fd };
    // SAFETY: a C string and a mount_attr of the size passed.
    let r =
        unsafe { libc::syscall(libc::SYS_mount_setattr, dirfd, path.as_ptr(), flags, &attr, size_of::<MountAttr>()) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `mount_setattr` on the detached mount `tree` itself (and every mount
/// below it when `recursive`).
pub fn set_tree_attrs(tree: &OwnedFd, recursive: bool, attrs: Attrs) -> io::Result<()> {
    let flags = libc::AT_EMPTY_PATH as libc::c_uint | if recursive { AT_RECURSIVE } else { 0 };
    set_attrs(tree.as_raw_fd(), c"", flags, attrs)
}

/// Attaches the detached mount `tree` at `at`.
pub fn attach(tree: &OwnedFd, at: &Path) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    let to = c_path(at)?;
    // SAFETY: C strings and an fd we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

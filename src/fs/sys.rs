//! The few system calls the fs module needs, each behind a safe wrapper that
//! works relative to an open directory and never follows a symbolic link.
//! Every `unsafe` block of the module lives in this file.
//!
//! Why fds and not paths: the upper dir is written by the sandbox, possibly
//! while we read it, and the destination may hold links planted to lead out of
//! it. Resolving a path string again for each step would follow whatever link
//! was swapped in meanwhile; a chain of `openat(.., O_NOFOLLOW)` cannot be
//! redirected (DESIGN.md "Filesystem").

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `-1` from a libc call becomes the `errno` error.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// A file name (one path component, or a whole path for the roots) as a C
/// string; a NUL byte cannot name any file.
pub(crate) fn c_name(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the name contains a NUL byte"))
}

/// What `lstat` says about one entry: enough to tell kinds, modes and sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub mode: u32,
    pub size: u64,
    pub rdev: u64,
}

/// The file type bits of a [`Stat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    /// A file type bit pattern Linux does not define.
    Unknown,
}

impl Kind {
    /// The kind's name in error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Dir => "directory",
            Kind::File => "regular file",
            Kind::Symlink => "symbolic link",
            Kind::CharDevice => "character device",
            Kind::BlockDevice => "block device",
            Kind::Fifo => "FIFO",
            Kind::Socket => "socket",
            Kind::Unknown => "file of unknown type",
        }
    }
}

impl Stat {
    fn from_raw(st: libc::stat) -> Stat {
        Stat { mode: st.st_mode, size: st.st_size as u64, rdev: st.st_rdev }
    }

    pub fn kind(&self) -> Kind {
        match self.mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFCHR => Kind::CharDevice,
            libc::S_IFBLK => Kind::BlockDevice,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFREG => Kind::File,
            _ => Kind::Unknown,
        }
    }

    /// Read/write/execute bits for user, group and other; setuid, setgid and
    /// sticky are never carried over.
    pub fn permissions(&self) -> u32 {
        self.mode & 0o777
    }
}

fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a valid out-pointer for one `struct stat`; the fd is open.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so it filled `st`.
    Ok(Stat::from_raw(unsafe { st.assume_init() }))
}

/// `fstat` of an open file.
pub(crate) fn stat_file(file: &File) -> io::Result<Stat> {
    fstat(file.as_fd())
}

/// `fchmod`: exact permission bits, independent of the umask.
pub(crate) fn chmod_file(file: &File, mode: u32) -> io::Result<()> {
    // SAFETY: plain syscall on an open fd.
    cvt(unsafe { libc::fchmod(file.as_raw_fd(), mode as libc::mode_t) }).map(drop)
}

/// Names of the extended attributes of an open file or directory. A file
/// system without xattrs has none.
pub(crate) fn xattr_names(fd: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes of writes.
        let n = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf.split(|&b| b == 0).filter(|s| !s.is_empty()).map(<[u8]>::to_vec).collect());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(err),
        }
    }
}

/// The value of one extended attribute, `None` when it is not set.
pub(crate) fn xattr_value(fd: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let name = c_name(name)?;
    let mut buf = vec![0u8; 64];
    loop {
        // SAFETY: `name` is NUL-terminated; `buf` is valid for `buf.len()` bytes.
        let n = unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
            _ => return Err(err),
        }
    }
}

/// An open directory. Every method names a single entry of it, and none of
/// them follows a symbolic link in that entry.
#[derive(Debug)]
pub(crate) struct Dir(OwnedFd);

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Dir {
    /// Opens a root the caller named (the upper, lower or destination
    /// directory). Links in *this* path are followed: it is the caller's own.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let path = c_name(path.as_os_str().as_bytes())?;
        // SAFETY: `path` is NUL-terminated; the returned fd is owned below.
        let fd = cvt(unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Dir(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn open_at(&self, name: &CStr, flags: libc::c_int, mode: libc::c_uint) -> io::Result<OwnedFd> {
        // SAFETY: `name` is NUL-terminated; the returned fd is owned below.
        let fd = cvt(unsafe { libc::openat(self.0.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// The subdirectory `name`; fails (ELOOP or ENOTDIR) when it is a link or
    /// not a directory.
    pub fn open_dir(&self, name: &CStr) -> io::Result<Dir> {
        self.open_at(name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0).map(Dir)
    }

    /// The entry `name` opened for reading, whatever it is but a link (ELOOP).
    /// `O_NONBLOCK` so that a FIFO swapped in cannot hang us, `O_NOCTTY` so
    /// that a terminal cannot become ours; callers check the type with
    /// [`stat_file`] on the result.
    pub fn open_file(&self, name: &CStr) -> io::Result<File> {
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
        self.open_at(name, flags, 0).map(File::from)
    }

    /// Creates `name` for writing; fails when anything (even a dangling link)
    /// is already there.
    pub fn create_new(&self, name: &CStr, mode: u32) -> io::Result<File> {
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        self.open_at(name, flags, mode as libc::c_uint).map(File::from)
    }

    /// `lstat` of the entry `name`.
    pub fn stat_at(&self, name: &CStr) -> io::Result<Stat> {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `name` is NUL-terminated and `st` a valid out-pointer.
        cvt(unsafe { libc::fstatat(self.0.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) })?;
        // SAFETY: fstatat succeeded, so it filled `st`.
        Ok(Stat::from_raw(unsafe { st.assume_init() }))
    }

    /// The target of the link `name`, as bytes.
    pub fn read_link(&self, name: &CStr) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 256];
        loop {
            // SAFETY: `name` is NUL-terminated; `buf` is valid for `buf.len()` bytes.
            let n = unsafe { libc::readlinkat(self.0.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            if n < buf.len() {
                buf.truncate(n);
                return Ok(buf);
            }
            if buf.len() >= 1 << 16 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "the link target is longer than 64 KiB"));
            }
            buf.resize(buf.len() * 4, 0);
        }
    }

    /// The names in the directory, without `.` and `..`, in readdir order.
    pub fn names(&self) -> io::Result<Vec<Vec<u8>>> {
        // A fresh open file description, so that the offset is our own.
        let fd = self.open_at(c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        let raw = fd.as_raw_fd();
        // SAFETY: `raw` is an open directory fd; on success the DIR stream
        // owns it, so ownership is given up with `into_raw_fd` semantics below.
        let dirp = unsafe { libc::fdopendir(raw) };
        if dirp.is_null() {
            return Err(io::Error::last_os_error()); // `fd` is closed on drop
        }
        std::mem::forget(fd);
        struct Stream(*mut libc::DIR);
        impl Drop for Stream {
            fn drop(&mut self) {
                // SAFETY: the stream is open and closed exactly once, here.
                unsafe { libc::closedir(self.0) };
            }
        }
        let stream = Stream(dirp);
        let mut names = Vec::new();
        loop {
            // SAFETY: resetting errno distinguishes the end from an error.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: `stream.0` is an open DIR stream used by this thread only.
            let ent = unsafe { libc::readdir(stream.0) };
            if ent.is_null() {
                let err = io::Error::last_os_error();
                if err.raw_os_error().unwrap_or(0) != 0 {
                    return Err(err);
                }
                return Ok(names);
            }
            // SAFETY: readdir returned a valid dirent whose d_name is NUL-terminated;
            // it stays valid until the next readdir on this stream.
            let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }.to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
    }

    /// `mkdirat`; the umask applies, as for any new directory.
    pub fn mkdir(&self, name: &CStr, mode: u32) -> io::Result<()> {
        // SAFETY: `name` is NUL-terminated.
        cvt(unsafe { libc::mkdirat(self.0.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) }).map(drop)
    }

    /// Creates the link `name` → `target`; fails when `name` exists.
    pub fn symlink(&self, target: &CStr, name: &CStr) -> io::Result<()> {
        // SAFETY: both strings are NUL-terminated.
        cvt(unsafe { libc::symlinkat(target.as_ptr(), self.0.as_raw_fd(), name.as_ptr()) }).map(drop)
    }

    /// Atomically renames `from` to `to` in this directory, replacing `to`
    /// (a link at `to` is replaced, never followed).
    pub fn rename(&self, from: &CStr, to: &CStr) -> io::Result<()> {
        let fd = self.0.as_raw_fd();
        // SAFETY: both strings are NUL-terminated.
        cvt(unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) }).map(drop)
    }

    /// Removes the non-directory `name` (a link itself, never its target).
    pub fn unlink(&self, name: &CStr) -> io::Result<()> {
        // SAFETY: `name` is NUL-terminated.
        cvt(unsafe { libc::unlinkat(self.0.as_raw_fd(), name.as_ptr(), 0) }).map(drop)
    }

    /// Removes the empty directory `name`.
    pub fn rmdir(&self, name: &CStr) -> io::Result<()> {
        // SAFETY: `name` is NUL-terminated.
        cvt(unsafe { libc::unlinkat(self.0.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) }).map(drop)
    }
}

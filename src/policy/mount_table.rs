//! The mount points of this process's mount namespace, from
//! `/proc/self/mountinfo`: read afresh ([`read`]) or, for the supervisor's
//! plan of every sandbox, kept until the kernel says the table changed
//! ([`current`]).

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::fs::File;
use std::io::{Read, Seek};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The mount points now, read from the file.
pub fn read() -> Vec<PathBuf> {
    std::fs::read_to_string(MOUNTINFO).map(|info| parse(&info)).unwrap_or_default()
}

/// The mount points now, as [`read`] gives them, without reading the file
/// again while nothing was mounted or unmounted in this namespace since the
/// last read (the supervisor's table, which every plan looks at).
pub fn current() -> Arc<[PathBuf]> {
    static TABLE: Mutex<MountTable> = Mutex::new(MountTable { file: None, points: None });
    TABLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).points()
}

/// A read of the table and the open file that tells when it is stale:
/// `poll` on an open mountinfo file reports `POLLPRI` once for any change
/// after the previous `poll` on it (the kernel compares the namespace's
/// event count with the one the file saw last). The table is read after
/// that `poll`, so a change during the read is reported by the next one.
struct MountTable {
    file: Option<File>,
    points: Option<Arc<[PathBuf]>>,
}

impl MountTable {
    fn points(&mut self) -> Arc<[PathBuf]> {
        if self.file.is_none() {
            self.file = File::open(MOUNTINFO).ok();
        }
        let Some(file) = self.file.as_mut() else { return read().into() };
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLPRI)];
        let unchanged = matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0));
        if let (true, Some(points)) = (unchanged, &self.points) {
            return points.clone();
        }
        let mut info = String::new();
        let points: Arc<[PathBuf]> = match file.rewind().and_then(|()| file.read_to_string(&mut info)) {
            Ok(_) => parse(&info).into(),
            Err(_) => {
                self.file = None;
                return read().into();
            }
        };
        self.points = Some(points.clone());
        points
    }
}

fn parse(info: &str) -> Vec<PathBuf> {
    info.lines().filter_map(|line| line.split(' ').nth(4)).map(unescape).collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
pub(crate) fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .and_then(|d| u8::try_from(d.iter().fold(0u32, |n, b| n * 8 + u32::from(b - b'0'))).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mount made after the table was kept is in the next one: in a
    /// mount namespace of the test's own (root, or a user namespace).
    #[test]
    fn a_change_is_seen_by_the_next_call() {
        use nix::mount::{MsFlags, mount, umount};
        use nix::sched::{CloneFlags, unshare};
        let dir = tempfile::tempdir().expect("tempdir");
        crate::testing::in_child("the mount table", || {
            let err = |what: &'static str| move |e: nix::Error| format!("{what}: {e}");
            match nix::unistd::getuid().is_root() {
                true => unshare(CloneFlags::CLONE_NEWNS).map_err(err("unshare"))?,
                false => crate::testing::enter_user_namespace(CloneFlags::CLONE_NEWNS)?,
            }
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                .map_err(err("private"))?;
            let mut table = MountTable { file: None, points: None };
            let before = table.points();
            if before.iter().any(|p| p == dir.path()) || table.points() != before || *before != *read() {
                return Err(format!("before: {before:?}"));
            }
            mount(Some("tmpfs"), dir.path(), Some("tmpfs"), MsFlags::empty(), None::<&str>).map_err(err("tmpfs"))?;
            let after = table.points();
            if !after.iter().any(|p| p == dir.path()) || after.len() != before.len() + 1 {
                return Err(format!("after the mount: {after:?}"));
            }
            umount(dir.path()).map_err(err("umount"))?;
            match *table.points() == *before {
                true => Ok(()),
                false => Err("after the unmount: not as before".into()),
            }
        });
    }
}

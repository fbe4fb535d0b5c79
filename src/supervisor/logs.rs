//! LOGS (SPEC §1.2, §2 `getLogFiles`, `tailLogs`): the log files of WORKDIR
//! as the sandbox sees them, and their new lines as they are written.
//!
//! Inside the sandbox WORKDIR is an overlay: a file the sandbox wrote or
//! changed is in the upper directory, any other in the host's WORKDIR, and a
//! deleted one is a whiteout in the upper (a character device 0/0, or a
//! zero-size file with `overlay.whiteout`), or hidden under an opaque upper
//! directory (`overlay.opaque` = `y`). [`open_as_seen`] follows those rules.
//!
//! Files are opened one component at a time with `O_NOFOLLOW`: a symbolic
//! link is never followed, so a link the sandbox plants in its upper (say
//! `logs/app.log -> /root/.ssh/id_rsa`) is not read on the host. FIFOs and
//! devices are never opened for reading (`O_NONBLOCK`, regular files only).

use super::watch::{Layer, PathSet, TreeWatch};
use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::fs::File;
use std::future::Future;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, fstat, fstatat};

/// The longest line handed out: a longer one comes in pieces of this size.
pub const MAX_LINE: usize = 64 * 1024;
/// How much of one file a tail reads before it looks at the others.
const READ_BUDGET: u64 = 1024 * 1024;
const CHUNK: usize = 64 * 1024;

// ------------------------------------------------------------------ lines

/// Splits a byte stream into lines: complete lines (without `\n` or `\r\n`)
/// come out, a partial last line waits for its newline, and a line longer
/// than the cap comes out in pieces of at most `cap` bytes, never cutting a
/// UTF-8 character. Invalid UTF-8 becomes U+FFFD.
#[derive(Debug, Clone)]
pub struct LineSplitter {
    buf: Vec<u8>,
    cap: usize,
}

impl LineSplitter {
    pub fn new(cap: usize) -> LineSplitter {
        LineSplitter { buf: Vec::new(), cap: cap.max(4) }
    }

    /// Forgets a partial line (the file was truncated or replaced).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The bytes of a partial line held.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let room = self.cap - self.buf.len();
            // A newline right after a full buffer still ends that line.
            let window = &bytes[..bytes.len().min(room + 1)];
            if let Some(i) = window.iter().position(|&b| b == b'\n') {
                self.buf.extend_from_slice(&window[..i]);
                if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                out.push(String::from_utf8_lossy(&self.buf).into_owned());
                self.buf.clear();
                bytes = &bytes[i + 1..];
                continue;
            }
            let take = bytes.len().min(room);
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() == self.cap && !bytes.is_empty() {
                // Full, and the line goes on: hand out a piece.
                let cut = cut_point(&self.buf);
                let rest = self.buf.split_off(cut);
                out.push(String::from_utf8_lossy(&self.buf).into_owned());
                self.buf = rest;
            }
        }
        out
    }
}

/// Where to cut `buf` so that a multi-byte character at its end is not split.
fn cut_point(buf: &[u8]) -> usize {
    let n = buf.len();
    for back in 1..=n.min(4) {
        let b = buf[n - back];
        if b & 0xC0 != 0x80 {
            let need = match b {
                0x00..=0x7F => 1,
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            return if back < need && back < n { n - back } else { n };
        }
    }
    n
}

// ------------------------------------------------- the overlay, as seen

/// A file as the sandbox sees it, open for reading.
#[derive(Debug)]
pub struct Opened {
    pub layer: Layer,
    pub file: File,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
}

/// What the upper says about a path.
enum UpperLook {
    File(Opened),
    /// Deleted, or not a regular file, inside the sandbox.
    Hidden,
    /// Not in the upper: the lower shows through unless an opaque
    /// directory on the way hides it.
    Absent {
        lower_hidden: bool,
    },
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);
const FILE_FLAGS: OFlag = OFlag::O_RDONLY.union(OFlag::O_NOFOLLOW).union(OFlag::O_NONBLOCK).union(OFlag::O_CLOEXEC);

fn components(rel: &str) -> Option<Vec<&str>> {
    let comps: Vec<&str> = rel.split('/').collect();
    if comps.iter().any(|c| c.is_empty() || *c == "." || *c == ".." || c.contains('\0')) {
        return None;
    }
    Some(comps)
}

fn is_type(st: &FileStat, kind: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == kind
}

/// The value of `user.overlay.<suffix>` or `trusted.overlay.<suffix>`.
fn overlay_xattr(fd: BorrowedFd<'_>, suffix: &str) -> Option<Vec<u8>> {
    for prefix in ["user.overlay.", "trusted.overlay."] {
        let Ok(name) = CString::new(format!("{prefix}{suffix}")) else { continue };
        let mut buf = [0u8; 16];
        // SAFETY: a valid fd, a NUL-terminated name and a buffer of that size.
        let n = unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Some(buf[..n as usize].to_vec());
        }
        if Errno::last() == Errno::ERANGE {
            return Some(Vec::new());
        }
    }
    None
}

fn open_file(dir: &OwnedFd, name: &str, layer: Layer) -> Option<Opened> {
    let fd = openat(dir, name, FILE_FLAGS, Mode::empty()).ok()?;
    let st = fstat(&fd).ok()?;
    if !is_type(&st, libc::S_IFREG) {
        return None;
    }
    if layer == Layer::Upper && st.st_size == 0 && overlay_xattr(fd.as_fd(), "whiteout").is_some() {
        return None;
    }
    Some(Opened { layer, file: File::from(fd), dev: st.st_dev, ino: st.st_ino, size: st.st_size as u64 })
}

fn look_upper(upper: &Path, comps: &[&str]) -> UpperLook {
    // The upper's own path may be a link (`/proc/self/fd/<n>` with a disk
    // limit): it is ours, so it is followed; nothing below it is.
    let Ok(mut dir) = nix::fcntl::open(upper, DIR_FLAGS.difference(OFlag::O_NOFOLLOW), Mode::empty()) else {
        return UpperLook::Absent { lower_hidden: false };
    };
    let mut lower_hidden = false;
    for (i, name) in comps.iter().enumerate() {
        let st = match fstatat(&dir, *name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return UpperLook::Absent { lower_hidden },
            Err(_) => return UpperLook::Hidden,
        };
        if is_type(&st, libc::S_IFCHR) && st.st_rdev == 0 {
            return UpperLook::Hidden;
        }
        if i + 1 == comps.len() {
            return match open_file(&dir, name, Layer::Upper) {
                Some(o) => UpperLook::File(o),
                None => UpperLook::Hidden,
            };
        }
        if !is_type(&st, libc::S_IFDIR) {
            return UpperLook::Hidden;
        }
        let Ok(sub) = openat(&dir, *name, DIR_FLAGS, Mode::empty()) else { return UpperLook::Hidden };
        if overlay_xattr(sub.as_fd(), "opaque").as_deref() == Some(b"y") {
            lower_hidden = true;
        }
        dir = sub;
    }
    UpperLook::Hidden
}

fn look_lower(workdir: &Path, comps: &[&str]) -> Option<Opened> {
    let mut dir = nix::fcntl::open(workdir, DIR_FLAGS, Mode::empty()).ok()?;
    for (i, name) in comps.iter().enumerate() {
        if i + 1 == comps.len() {
            return open_file(&dir, name, Layer::Lower);
        }
        dir = openat(&dir, *name, DIR_FLAGS, Mode::empty()).ok()?;
    }
    None
}

/// The regular file at `rel` (relative to WORKDIR) as the sandbox sees it:
/// from the upper when the sandbox wrote it, else from WORKDIR; `None` when
/// it is deleted inside, not a regular file, or reached through a link.
/// Without an upper (no sandbox yet), WORKDIR's.
pub fn open_as_seen(workdir: &Path, upper: Option<&Path>, rel: &str) -> Option<Opened> {
    let comps = components(rel)?;
    if let Some(upper) = upper {
        match look_upper(upper, &comps) {
            UpperLook::File(o) => return Some(o),
            UpperLook::Hidden | UpperLook::Absent { lower_hidden: true } => return None,
            UpperLook::Absent { lower_hidden: false } => {}
        }
    }
    look_lower(workdir, &comps)
}

/// The host path of a file [`open_as_seen`] found.
pub fn host_path(workdir: &Path, upper: Option<&Path>, layer: Layer, rel: &str) -> PathBuf {
    match (layer, upper) {
        (Layer::Upper, Some(upper)) => upper.join(rel),
        _ => workdir.join(rel),
    }
}

/// Every path below the roots that `set` matches and that is not a
/// directory, relative to WORKDIR, sorted. Links are not followed.
fn candidates(roots: &[&Path], set: &PathSet) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for root in roots {
        let mut stack = vec![(String::new(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            if !set.descend(&dir) || depth > crate::fs::MAX_DEPTH {
                continue;
            }
            let abs = if dir.is_empty() { root.to_path_buf() } else { root.join(&dir) };
            let Ok(entries) = std::fs::read_dir(&abs) else { continue };
            for entry in entries.flatten() {
                let Ok(name) = entry.file_name().into_string() else { continue };
                let rel = if dir.is_empty() { name } else { format!("{dir}/{name}") };
                match entry.file_type() {
                    Ok(t) if t.is_dir() => stack.push((rel, depth + 1)),
                    Ok(_) if set.matches(&rel) => {
                        found.insert(rel);
                    }
                    _ => {}
                }
            }
        }
    }
    found
}

/// The log files (`getLogFiles()`): for each path `set` matches as the
/// sandbox sees WORKDIR, its path relative to WORKDIR and the host path to
/// read it at, sorted by the relative path.
pub fn log_files(workdir: &Path, upper: Option<&Path>, set: &PathSet) -> Vec<(String, PathBuf)> {
    if set.is_empty() {
        return Vec::new();
    }
    let roots: Vec<&Path> = std::iter::once(workdir).chain(upper).collect();
    candidates(&roots, set)
        .into_iter()
        .filter_map(|rel| {
            let o = open_as_seen(workdir, upper, &rel)?;
            let path = host_path(workdir, upper, o.layer, &rel);
            Some((rel, path))
        })
        .collect()
}

// ------------------------------------------------------------------ tail

pub type LineFuture = Pin<Box<dyn Future<Output = bool> + Send>>;
/// Takes one line of one file (relative path, line); resolves to false when
/// nobody takes lines any more, which ends the tail. Awaited, so a slow
/// consumer slows the tail, not memory.
pub type LineSink = Arc<dyn Fn(String, String) -> LineFuture + Send + Sync>;

/// Where a tail is in one file.
#[derive(Debug)]
struct Tailed {
    layer: Layer,
    dev: u64,
    ino: u64,
    offset: u64,
    lines: LineSplitter,
}

enum Read {
    Done,
    /// The budget ran out with more to read.
    More,
    /// The sink is gone.
    Stop,
}

/// A running tail; stopping it (or dropping it) ends it at once.
pub struct TailHandle(tokio::task::AbortHandle);

impl TailHandle {
    pub fn stop(&self) {
        self.0.abort();
    }
}

impl Drop for TailHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Tail {
    workdir: PathBuf,
    upper: Option<PathBuf>,
    files: HashMap<String, Tailed>,
    sink: LineSink,
}

impl Tail {
    /// Reads what was appended to `rel` since last time and hands out its
    /// complete lines.
    async fn update(&mut self, rel: &str) -> Read {
        let Some(o) = open_as_seen(&self.workdir, self.upper.as_deref(), rel) else {
            self.files.remove(rel);
            return Read::Done;
        };
        // A file that was not there when the tail started: all of it is new.
        let t = self.files.entry(rel.to_string()).or_insert_with(|| Tailed {
            layer: o.layer,
            dev: o.dev,
            ino: o.ino,
            offset: 0,
            lines: LineSplitter::new(MAX_LINE),
        });
        if t.layer == o.layer && (t.dev, t.ino) != (o.dev, o.ino) {
            // Replaced by another file: read the new one from its start.
            t.offset = 0;
            t.lines.clear();
        }
        // From WORKDIR to the upper is a copy-up: the same bytes, so the
        // offset holds.
        (t.layer, t.dev, t.ino) = (o.layer, o.dev, o.ino);
        if o.size < t.offset {
            // Truncated.
            t.offset = 0;
            t.lines.clear();
        }
        let mut buf = vec![0u8; CHUNK];
        let mut read = 0u64;
        loop {
            if read >= READ_BUDGET {
                return Read::More;
            }
            let n = match o.file.read_at(&mut buf, t.offset) {
                Ok(0) | Err(_) => return Read::Done,
                Ok(n) => n,
            };
            t.offset += n as u64;
            read += n as u64;
            for line in t.lines.push(&buf[..n]) {
                if !(self.sink)(rel.to_string(), line).await {
                    return Read::Stop;
                }
            }
        }
    }
}

/// Starts tailing the files `set` matches (as the sandbox sees them):
/// lines appended from now on, and every line of files that appear later.
/// Needs a tokio runtime. Watching starts before this returns, so nothing
/// written after it is missed.
pub fn tail(workdir: PathBuf, upper: Option<PathBuf>, set: Arc<PathSet>, sink: LineSink) -> TailHandle {
    let mut roots = vec![(Layer::Lower, workdir.clone())];
    if let Some(u) = &upper {
        roots.push((Layer::Upper, u.clone()));
    }
    let mut tree = TreeWatch::new(roots, set.clone());
    let mut files = HashMap::new();
    let roots: Vec<&Path> = std::iter::once(workdir.as_path()).chain(upper.as_deref()).collect();
    for rel in candidates(&roots, &set) {
        if let Some(o) = open_as_seen(&workdir, upper.as_deref(), &rel) {
            let t =
                Tailed { layer: o.layer, dev: o.dev, ino: o.ino, offset: o.size, lines: LineSplitter::new(MAX_LINE) };
            files.insert(rel, t);
        }
    }
    let mut tail = Tail { workdir, upper, files, sink };
    let task = tokio::spawn(async move {
        let mut pending: BTreeSet<String> = BTreeSet::new();
        loop {
            if pending.is_empty() {
                pending = tree.changes().await;
            }
            for rel in std::mem::take(&mut pending) {
                match tail.update(&rel).await {
                    Read::Done => {}
                    Read::More => {
                        pending.insert(rel);
                    }
                    Read::Stop => return,
                }
            }
        }
    });
    TailHandle(task.abort_handle())
}

#[cfg(test)]
mod tests;

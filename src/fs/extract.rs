//! `extractOutputs(dest)`: applies the changes `diff()` reports to a
//! destination directory — usually the host WORKDIR itself.
//!
//! In two phases:
//! 1. **Check** every change before writing anything: each added or modified
//!    entry must be a regular file, or a link whose target is relative, has
//!    `..` only at its start, stays inside the destination and does not point
//!    into a protected path; no directory on the way in the destination may be
//!    a link or a non-directory (unless this extraction deletes it first). Any
//!    refusal fails the whole extraction, listing the paths, with nothing
//!    written.
//! 2. **Apply**: deletions, then directories the sandbox removed (once empty,
//!    deepest first), then files and links in path order. Each file is
//!    written to a temporary name (`.bun-sandbox-<pid>-<n>.tmp`) in its
//!    directory, given the upper file's permission bits without setuid,
//!    setgid or sticky, and renamed over the target, so no reader ever sees a
//!    partial file; on any error the temporary is removed. Every directory is
//!    opened from the destination root with `O_NOFOLLOW`, so a link planted
//!    in the destination (`dest/src -> /etc`) is refused, not followed, even
//!    if it appears after the check. Upper files are re-checked as they are
//!    opened, so a sandbox still running cannot swap in a link or a device.
//!
//! Directories the extraction creates get `0o777` minus the umask, like
//! `mkdir -p`. Owners, timestamps and xattrs are not carried over. Files are
//! not fsync'ed: the rename makes them appear whole, not durable.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::diff::{ChangeKind, Scan, scan};
use super::outputs::OutputMatcher;
use super::protected::protected;
use super::sys::{self, Dir, Kind, c_name};
use super::upper;
use super::{FsError, Refusal, RefusalReason, TEMP_PREFIX, io_at};
use crate::secrets::{RedactStream, Redactor};

/// What an extraction did: sorted paths relative to WORKDIR.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Extraction {
    /// Files and links written (added or modified in the sandbox).
    pub written: Vec<String>,
    /// Files and links deleted from the destination.
    pub deleted: Vec<String>,
    /// Changed paths under OUTPUT left alone because they are protected.
    pub withheld: Vec<String>,
}

impl Extraction {
    /// Every path written or deleted, sorted.
    pub fn paths(&self) -> Vec<String> {
        let mut all: Vec<String> = self.written.iter().chain(&self.deleted).cloned().collect();
        all.sort();
        all
    }
}

/// Applies the OUTPUT changes of the overlay (`upper` over `lower`) to
/// `dest`, created if missing. Returns the relative paths written or deleted.
pub fn extract(upper: &Path, lower: &Path, outputs: &OutputMatcher, dest: &Path) -> io::Result<Vec<String>> {
    Ok(extract_report(upper, lower, outputs, dest)?.paths())
}

/// [`extract`], telling written, deleted and withheld paths apart.
pub fn extract_report(upper: &Path, lower: &Path, outputs: &OutputMatcher, dest: &Path) -> io::Result<Extraction> {
    extract_redacted(upper, lower, outputs, dest, None)
}

/// [`extract_report`], with every SECRET value in the files written replaced
/// by `[secret NAME]` (SPEC §4: extracted files are something the agent
/// reads).
pub fn extract_redacted(
    upper: &Path,
    lower: &Path,
    outputs: &OutputMatcher,
    dest: &Path,
    redactor: Option<&Arc<Redactor>>,
) -> io::Result<Extraction> {
    let scan = scan(upper, lower, outputs)?;
    Ok(apply(scan, upper, dest, redactor)?)
}

/// One planned step.
enum Op {
    Write,
    /// Re-read and re-checked when written.
    Link,
    Delete,
}

fn apply(
    scan: Scan,
    upper_root: &Path,
    dest_root: &Path,
    redactor: Option<&Arc<Redactor>>,
) -> Result<Extraction, FsError> {
    let root = Dir::open(upper_root).map_err(io_at("open the sandbox's upper directory", upper_root))?;
    let mut upper = Tree { root, root_path: upper_root.to_path_buf(), cache: None };
    // A destination that does not exist yet is made after the check, so that
    // a refusal leaves nothing behind.
    let dest = match Dir::open(dest_root) {
        Ok(root) => Some(Tree { root, root_path: dest_root.to_path_buf(), cache: None }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_at("open the destination", dest_root)(e)),
    };

    // Phase 1: check everything.
    let mut refusals = Vec::new();
    let mut ops: Vec<(String, Op)> = Vec::new();
    for change in &scan.changes {
        let refuse = |reason| Refusal { path: change.path.clone(), reason };
        if check_relative_path(&change.path).is_err() {
            refusals.push(refuse(RefusalReason::BadPath));
            continue;
        }
        let op = match (change.kind, change.upper) {
            (ChangeKind::Deleted, _) => Op::Delete,
            (_, Some(Kind::File)) => Op::Write,
            (_, Some(Kind::Symlink)) => {
                let (parent, name) = split(&change.path);
                let read_err = err_at(upper_root, "read the link", &change.path);
                let cname = c_name(name.as_bytes()).map_err(err_at(upper_root, "read", &change.path))?;
                let target = upper.open(parent, Missing::Fail)?.read_link(&cname).map_err(read_err)?;
                match check_link_target(&change.path, &target) {
                    Ok(()) => Op::Link,
                    Err(reason) => {
                        refusals.push(refuse(reason));
                        continue;
                    }
                }
            }
            (_, kind) => {
                refusals.push(refuse(RefusalReason::Special(kind.unwrap_or(Kind::Unknown).describe())));
                continue;
            }
        };
        ops.push((change.path.clone(), op));
    }
    let deleting: HashSet<&str> =
        scan.changes.iter().filter(|c| c.kind == ChangeKind::Deleted).map(|c| c.path.as_str()).collect();
    let paths = ops.iter().map(|(p, _)| p.as_str()).chain(scan.removed_dirs.iter().map(String::as_str));
    if let Some(dest) = &dest {
        refusals.extend(dest.check_parents(paths, &deleting)?);
    }
    if !refusals.is_empty() {
        return Err(FsError::Refused(refusals));
    }
    let mut dest = match dest {
        Some(dest) => dest,
        None => {
            std::fs::create_dir_all(dest_root).map_err(io_at("create the destination", dest_root))?;
            let root = Dir::open(dest_root).map_err(io_at("open the destination", dest_root))?;
            Tree { root, root_path: dest_root.to_path_buf(), cache: None }
        }
    };

    // Phase 2: apply.
    let mut done = Extraction { withheld: scan.withheld, ..Extraction::default() };
    for (path, op) in &ops {
        if let Op::Delete = op
            && dest.delete(path)?
        {
            done.deleted.push(path.clone());
        }
    }
    let mut removed = scan.removed_dirs.clone();
    removed.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for dir in &removed {
        dest.remove_empty_dir(dir)?;
    }
    for (path, op) in &ops {
        match op {
            Op::Delete => continue,
            Op::Write => write_file(&mut upper, &mut dest, path, redactor)?,
            Op::Link => write_link(&mut upper, &mut dest, path)?,
        }
        done.written.push(path.clone());
    }
    done.written.sort();
    done.deleted.sort();
    Ok(done)
}

/// `a/b/c` → (`a/b`, `c`); `c` → (``, `c`).
fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// Checks that `path` is a plain relative path: not empty, not absolute, no
/// empty, `.` or `..` component, no NUL byte. Paths from a directory walk are
/// always plain; this guards every path extraction writes all the same.
pub fn check_relative_path(path: &str) -> Result<(), RefusalReason> {
    let plain = !path.is_empty()
        && !path.contains('\0')
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
    if plain { Ok(()) } else { Err(RefusalReason::BadPath) }
}

/// Checks the target of a link at `link_path` (relative to the destination):
/// relative, `..` only as leading components, never above the destination
/// root, and not into a protected path.
///
/// Why leading `..` only: the directories a link sits in are real directories
/// (extraction opened each with `O_NOFOLLOW`), so climbing from there is what
/// it looks like; a `..` after a name could climb out of a linked directory
/// instead (`a -> ..`, then `a/../x` is the destination's parent).
pub fn check_link_target(link_path: &str, target: &[u8]) -> Result<(), RefusalReason> {
    let shown = || String::from_utf8_lossy(target).into_owned();
    if target.is_empty() {
        return Err(RefusalReason::EmptyTarget);
    }
    if target.starts_with(b"/") {
        return Err(RefusalReason::AbsoluteTarget(shown()));
    }
    let mut resolved: Vec<&[u8]> = link_path.split('/').map(str::as_bytes).collect();
    resolved.pop(); // the link's own name
    let mut seen_name = false;
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." if seen_name => return Err(RefusalReason::DotDotAfterName(shown())),
            b".." => {
                if resolved.pop().is_none() {
                    return Err(RefusalReason::EscapingTarget(shown()));
                }
            }
            name => {
                seen_name = true;
                resolved.push(name);
            }
        }
    }
    let resolved = String::from_utf8_lossy(&resolved.join(&b'/')).into_owned();
    if let Some(entry) = protected(&resolved) {
        return Err(RefusalReason::ProtectedTarget(shown(), entry.path));
    }
    Ok(())
}

/// An I/O error about `rel` below `root`.
fn err_at(root: &Path, action: &'static str, rel: &str) -> impl FnOnce(io::Error) -> FsError + use<> {
    io_at(action, &root.join(rel))
}

/// What to do when a directory on the way does not exist.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// An error (the upper changed under us).
    Fail,
    /// Create it (writing into the destination).
    Create,
    /// Stop: there is nothing to delete below it.
    Stop,
}

/// A root directory and the last parent opened in it (paths come sorted, so
/// consecutive files mostly share one).
struct Tree {
    root: Dir,
    root_path: PathBuf,
    cache: Option<(String, Dir)>,
}

impl Tree {
    fn err(&self, action: &'static str, rel: &str) -> impl FnOnce(io::Error) -> FsError + use<> {
        err_at(&self.root_path, action, rel)
    }

    /// [`Tree::walk`] for a directory that must be there (or be created).
    fn open(&mut self, rel: &str, missing: Missing) -> Result<&Dir, FsError> {
        let root_path = self.root_path.clone();
        match self.walk(rel, missing)? {
            Some(dir) => Ok(dir),
            None => Err(err_at(&root_path, "open", rel)(io::ErrorKind::NotFound.into())),
        }
    }

    /// Opens the directory `rel` ("" = the root) one component at a time,
    /// never following a link. `None` only with [`Missing::Stop`].
    fn walk(&mut self, rel: &str, missing: Missing) -> Result<Option<&Dir>, FsError> {
        if self.cache.as_ref().is_some_and(|(path, _)| path == rel) {
            return Ok(self.cache.as_ref().map(|(_, dir)| dir));
        }
        if rel.is_empty() {
            return Ok(Some(&self.root));
        }
        let mut current: Option<Dir> = None;
        let mut end = 0;
        for part in rel.split('/') {
            end += part.len();
            let prefix = &rel[..end];
            end += 1;
            let parent = current.as_ref().unwrap_or(&self.root);
            let name = c_name(part.as_bytes()).map_err(self.err("open", prefix))?;
            let opened = match parent.open_dir(&name) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => match missing {
                    Missing::Stop => return Ok(None),
                    Missing::Fail => return Err(self.err("open", prefix)(e)),
                    Missing::Create => match parent.mkdir(&name, 0o777) {
                        Ok(()) => parent.open_dir(&name),
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => parent.open_dir(&name),
                        Err(e) => return Err(self.err("create the directory", prefix)(e)),
                    },
                },
                other => other,
            };
            let dir = match opened {
                Ok(dir) => dir,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
                    let reason = match parent.stat_at(&name).map(|st| st.kind()) {
                        Ok(Kind::Symlink) => "is a symbolic link; extraction never follows links".to_string(),
                        Ok(kind) => format!("is a {}, not a directory", kind.describe()),
                        Err(_) => "is not a directory".to_string(),
                    };
                    return Err(FsError::Unsafe { path: self.root_path.join(prefix), reason });
                }
                Err(e) => return Err(self.err("open", prefix)(e)),
            };
            current = Some(dir);
        }
        self.cache = current.map(|dir| (rel.to_string(), dir));
        Ok(self.cache.as_ref().map(|(_, dir)| dir))
    }

    /// Phase-1 check of the destination: no directory on the way to `paths`
    /// may be a link or a non-directory, unless it is being deleted.
    fn check_parents<'a>(
        &self,
        paths: impl Iterator<Item = &'a str>,
        deleting: &HashSet<&str>,
    ) -> Result<Vec<Refusal>, FsError> {
        let mut refusals = Vec::new();
        // Each parent directory is checked once; its verdict holds for all.
        let mut checked: HashMap<String, Option<RefusalReason>> = HashMap::new();
        for path in paths {
            let (parent, _) = split(path);
            if parent.is_empty() {
                continue;
            }
            if !checked.contains_key(parent) {
                let verdict = self.check_dir(parent, deleting)?;
                checked.insert(parent.to_string(), verdict);
            }
            if let Some(Some(reason)) = checked.get(parent) {
                refusals.push(Refusal { path: path.to_string(), reason: reason.clone() });
            }
        }
        Ok(refusals)
    }

    /// Why the directory `rel` cannot be written into, if it cannot: a link
    /// or a non-directory on the way that is not being deleted. A missing
    /// component is fine (it will be created).
    fn check_dir(&self, rel: &str, deleting: &HashSet<&str>) -> Result<Option<RefusalReason>, FsError> {
        let mut current: Option<Dir> = None;
        let mut end = 0;
        for part in rel.split('/') {
            end += part.len();
            let prefix = &rel[..end];
            end += 1;
            let dir = current.as_ref().unwrap_or(&self.root);
            let name = c_name(part.as_bytes()).map_err(self.err("read", prefix))?;
            let st = match dir.stat_at(&name) {
                Ok(st) => st,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
                Err(e) => return Err(self.err("read", prefix)(e)),
            };
            match st.kind() {
                Kind::Dir => {}
                // Gone before anything is written below it.
                _ if deleting.contains(prefix) => return Ok(None),
                Kind::Symlink => return Ok(Some(RefusalReason::DestinationLink(prefix.to_string()))),
                kind => return Ok(Some(RefusalReason::DestinationNotDir(prefix.to_string(), kind.describe()))),
            }
            current = Some(dir.open_dir(&name).map_err(self.err("open", prefix))?);
        }
        Ok(None)
    }

    /// Deletes the non-directory `rel`; `false` when it was not there.
    fn delete(&mut self, rel: &str) -> Result<bool, FsError> {
        let (parent, name) = split(rel);
        let cname = c_name(name.as_bytes()).map_err(self.err("delete", rel))?;
        let Some(dir) = self.walk(parent, Missing::Stop)? else { return Ok(false) };
        match dir.unlink(&cname) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => Err(FsError::Unsafe {
                path: self.root_path.join(rel),
                reason: "the sandbox deleted a file here, but the destination has a directory".into(),
            }),
            Err(e) => Err(self.err("delete", rel)(e)),
        }
    }

    /// Removes the directory `rel` if it is empty; anything else stays.
    fn remove_empty_dir(&mut self, rel: &str) -> Result<(), FsError> {
        let (parent, name) = split(rel);
        let cname = c_name(name.as_bytes()).map_err(self.err("remove", rel))?;
        let Some(dir) = self.walk(parent, Missing::Stop)? else { return Ok(()) };
        let result = dir.rmdir(&cname);
        // The directory is gone: a cached handle on it or below must not be reused.
        self.cache = None;
        match result {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT) | Some(libc::ENOTEMPTY) | Some(libc::EEXIST) | Some(libc::ENOTDIR)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(self.err("remove", rel)(e)),
        }
    }
}

/// The refusal for an upper entry that is no longer what the check saw.
fn changed(path: &str, kind: Kind) -> FsError {
    FsError::Refused(vec![Refusal { path: path.to_string(), reason: RefusalReason::Special(kind.describe()) }])
}

fn write_file(upper: &mut Tree, dest: &mut Tree, rel: &str, redactor: Option<&Arc<Redactor>>) -> Result<(), FsError> {
    let (parent, name) = split(rel);
    let cname = c_name(name.as_bytes()).map_err(upper.err("open", rel))?;
    let open_err = upper.err("open", rel);
    let mut source = match upper.open(parent, Missing::Fail)?.open_file(&cname) {
        Ok(file) => file,
        // A link swapped in since the check.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(changed(rel, Kind::Symlink)),
        Err(e) => return Err(open_err(e)),
    };
    let st = sys::stat_file(&source).map_err(upper.err("read", rel))?;
    if st.kind() != Kind::File {
        return Err(changed(rel, st.kind()));
    }
    upper::check_data(&source)
        .map_err(upper.err("read the overlay attributes of", rel))?
        .map_err(|upper::Unsupported(feature)| FsError::Unsupported { path: upper.root_path.join(rel), feature })?;
    let target = dest.open(parent, Missing::Create)?;
    let copy = |tmp: &mut File| match redactor {
        None => io::copy(&mut source, tmp).map(drop),
        Some(r) => copy_redacted(&mut source, tmp, r),
    };
    write_atomic(target, &cname, st.permissions(), copy).map_err(|e| in_the_way(dest, rel, e))
}

fn copy_redacted(from: &mut impl io::Read, to: &mut impl io::Write, redactor: &Arc<Redactor>) -> io::Result<()> {
    let mut stream = RedactStream::new(redactor.clone());
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return to.write_all(&stream.finish());
        }
        to.write_all(&stream.push(&buf[..n]))?;
    }
}

fn write_link(upper: &mut Tree, dest: &mut Tree, rel: &str) -> Result<(), FsError> {
    let (parent, name) = split(rel);
    let cname = c_name(name.as_bytes()).map_err(upper.err("open", rel))?;
    let upper_root = upper.root_path.clone();
    let dir = upper.open(parent, Missing::Fail)?;
    // Read again: the check in phase 1 may be stale if the sandbox still runs.
    let target = match dir.read_link(&cname) {
        Ok(target) => target,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let kind = dir.stat_at(&cname).map(|st| st.kind()).unwrap_or(Kind::Unknown);
            return Err(changed(rel, kind));
        }
        Err(e) => return Err(err_at(&upper_root, "read the link", rel)(e)),
    };
    check_link_target(rel, &target)
        .map_err(|reason| FsError::Refused(vec![Refusal { path: rel.to_string(), reason }]))?;
    let target = c_name(&target).map_err(err_at(&upper_root, "read the link", rel))?;
    let into = dest.open(parent, Missing::Create)?;
    link_atomic(into, &cname, &target).map_err(|e| in_the_way(dest, rel, e))
}

/// A write error, saying so when a directory holds the place.
fn in_the_way(dest: &Tree, rel: &str, e: io::Error) -> FsError {
    if matches!(e.raw_os_error(), Some(libc::EISDIR) | Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) {
        return FsError::Unsafe {
            path: dest.root_path.join(rel),
            reason: "a directory is in the way in the destination".into(),
        };
    }
    dest.err("write", rel)(e)
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary name in `dir`, passed to `create`, retried on EEXIST.
fn with_temp_name<T>(mut create: impl FnMut(&CStr) -> io::Result<T>) -> io::Result<(CString, T)> {
    for _ in 0..1000 {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = CString::new(format!("{TEMP_PREFIX}{}-{n}.tmp", std::process::id()))
            .map_err(|_| io::Error::other("temporary name with a NUL byte"))?;
        match create(&name) {
            Ok(value) => return Ok((name, value)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary name"))
}

/// Writes `name` in `dir` atomically: `fill` writes a temporary file, which
/// gets `mode` and is renamed over `name`. On any error the temporary is
/// removed and `name` is untouched.
pub(crate) fn write_atomic(
    dir: &Dir,
    name: &CStr,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let (tmp, mut file) = with_temp_name(|tmp| dir.create_new(tmp, 0o600))?;
    let result = fill(&mut file).and_then(|()| sys::chmod_file(&file, mode));
    drop(file);
    let result = result.and_then(|()| dir.rename(&tmp, name));
    if result.is_err() {
        let _ = dir.unlink(&tmp);
    }
    result
}

/// Creates the link `name` → `target` in `dir` atomically.
fn link_atomic(dir: &Dir, name: &CStr, target: &CStr) -> io::Result<()> {
    let (tmp, ()) = with_temp_name(|tmp| dir.symlink(target, tmp))?;
    let result = dir.rename(&tmp, name);
    if result.is_err() {
        let _ = dir.unlink(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;

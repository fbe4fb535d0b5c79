//! `diff()`: what the sandbox changed under OUTPUT, read from the overlay
//! upper and compared with the lower (the host WORKDIR).
//!
//! Reported are files, links and other non-directories, never directories
//! themselves: a new directory shows as the files in it, a deleted one as the
//! files it held, an empty new directory not at all (like git). A path is
//! - **added** when the lower has nothing there (or a directory: then the
//!   lower's files below it are deleted);
//! - **modified** when the lower has a non-directory there that differs in
//!   type, permission bits (`0o777`), size, bytes or link target — a file the
//!   overlay merely copied up (opened for writing, touched, chowned) is not;
//! - **deleted** when a whiteout hides it, an opaque directory hides it, or a
//!   new non-directory replaced a lower directory holding it.
//!
//! Both trees are walked with `openat(O_NOFOLLOW)` from their roots, so no
//! link in either is followed, even one the sandbox swaps in while we read.
//! Subtrees no OUTPUT line can reach are skipped unread.

use std::collections::HashSet;
use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use serde::Serialize;

use super::outputs::{OutputMatch, OutputMatcher};
use super::sys::{self, Dir, Kind, Stat, c_name};
use super::upper::{self, Node};
use super::{FsError, MAX_DEPTH, RelPath, io_at};

/// The changes under OUTPUT: sorted paths relative to WORKDIR, `/`-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub deleted: Vec<String>,
    /// Changed paths that OUTPUT covers but that are protected and not named
    /// literally: never extracted (the caller may warn about them).
    pub withheld: Vec<String>,
}

/// Compares the overlay `upper` with its `lower` and reports the changes that
/// `outputs` lets out.
pub fn diff(upper: &Path, lower: &Path, outputs: &OutputMatcher) -> io::Result<Diff> {
    let scan = scan(upper, lower, outputs)?;
    let mut diff = Diff { withheld: scan.withheld, ..Diff::default() };
    for change in scan.changes {
        match change.kind {
            ChangeKind::Added => diff.added.push(change.path),
            ChangeKind::Modified => diff.modified.push(change.path),
            ChangeKind::Deleted => diff.deleted.push(change.path),
        }
    }
    Ok(diff)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One reportable change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub path: String,
    pub kind: ChangeKind,
    /// The upper entry's type, for added and modified paths.
    pub upper: Option<Kind>,
}

/// Everything a walk found, sorted by path.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub changes: Vec<Change>,
    pub withheld: Vec<String>,
    /// Lower directories that are gone entirely (a whiteout, or a file in
    /// their place), covered by OUTPUT: extraction removes them once empty.
    pub removed_dirs: Vec<String>,
}

pub(crate) fn scan(upper: &Path, lower: &Path, outputs: &OutputMatcher) -> Result<Scan, FsError> {
    let upper_dir = Dir::open(upper).map_err(io_at("open the sandbox's upper directory", upper))?;
    let lower_dir = Dir::open(lower).map_err(io_at("open WORKDIR", lower))?;
    let mut walker = Walker { outputs, upper_root: upper, lower_root: lower, scan: Scan::default() };
    walker.upper_dir(&RelPath::root(), &upper_dir, Some(&lower_dir), 0)?;
    let mut scan = walker.scan;
    scan.changes.sort_by(|a, b| a.path.cmp(&b.path));
    scan.changes.dedup_by(|a, b| a.path == b.path && a.kind == b.kind);
    scan.withheld.sort();
    scan.withheld.dedup();
    scan.removed_dirs.sort();
    scan.removed_dirs.dedup();
    Ok(scan)
}

struct Walker<'a> {
    outputs: &'a OutputMatcher,
    upper_root: &'a Path,
    lower_root: &'a Path,
    scan: Scan,
}

/// `lstat` that reads "nothing there" (gone, or a parent swapped for a
/// non-directory) as `None`.
fn stat_opt(dir: &Dir, name: &CStr) -> io::Result<Option<Stat>> {
    match dir.stat_at(name) {
        Ok(st) => Ok(Some(st)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `open_dir` that reads "not a directory any more" (the sandbox raced us) as
/// `None`.
fn open_dir_opt(dir: &Dir, name: &CStr) -> io::Result<Option<Dir>> {
    match dir.open_dir(name) {
        Ok(d) => Ok(Some(d)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Walker<'_> {
    fn upper_err(&self, action: &'static str, rel: &RelPath) -> impl FnOnce(io::Error) -> FsError + use<> {
        io_at(action, &self.upper_root.join(&rel.text))
    }

    fn lower_err(&self, action: &'static str, rel: &RelPath) -> impl FnOnce(io::Error) -> FsError + use<> {
        io_at(action, &self.lower_root.join(&rel.text))
    }

    fn check_depth(&self, rel: &RelPath, depth: usize) -> Result<(), FsError> {
        if depth > MAX_DEPTH {
            return Err(FsError::TooDeep { path: self.upper_root.join(&rel.text) });
        }
        Ok(())
    }

    /// Records a change at `rel` if OUTPUT lets it out.
    fn report(&mut self, rel: &RelPath, kind: ChangeKind, upper: Option<Kind>) -> Result<(), FsError> {
        match self.outputs.classify(&rel.text) {
            OutputMatch::Outside => {}
            OutputMatch::Withheld(_) => self.scan.withheld.push(rel.text.clone()),
            OutputMatch::Included if !rel.utf8 => {
                let root = if kind == ChangeKind::Deleted { self.lower_root } else { self.upper_root };
                return Err(FsError::NotUtf8 { path: root.join(&rel.text) });
            }
            OutputMatch::Included => self.scan.changes.push(Change { path: rel.text.clone(), kind, upper }),
        }
        Ok(())
    }

    /// Walks the upper directory `rel` (open as `upper`) against the lower
    /// directory at the same path, if the lower has a directory there.
    fn upper_dir(&mut self, rel: &RelPath, upper: &Dir, lower: Option<&Dir>, depth: usize) -> Result<(), FsError> {
        self.check_depth(rel, depth)?;
        let opaque =
            upper::dir_is_opaque(upper).map_err(self.upper_err("read the overlay attributes of", rel))?.map_err(
                |upper::Unsupported(feature)| FsError::Unsupported { path: self.upper_root.join(&rel.text), feature },
            )?;
        let names = upper.names().map_err(self.upper_err("list", rel))?;
        let mut seen = HashSet::new();
        for name in names {
            let child = rel.join(&name);
            if !self.outputs.may_cover(&child.text) {
                continue; // the opaque pass below skips it too
            }
            let cname = c_name(&name).map_err(self.upper_err("read", &child))?;
            let Some(st) = stat_opt(upper, &cname).map_err(self.upper_err("read", &child))? else { continue };
            let lower_st = match lower {
                Some(lower) => stat_opt(lower, &cname).map_err(self.lower_err("read", &child))?,
                None => None,
            };
            let node = upper::node(upper, &cname, &st).map_err(self.upper_err("read", &child))?;
            self.upper_entry(&child, upper, lower, &cname, node, &st, lower_st, depth)?;
            seen.insert(name);
        }
        if let (true, Some(lower)) = (opaque, lower) {
            // Everything the lower has here and the upper does not is hidden.
            for name in lower.names().map_err(self.lower_err("list", rel))? {
                if seen.contains(&name) {
                    continue;
                }
                let child = rel.join(&name);
                if !self.outputs.may_cover(&child.text) {
                    continue;
                }
                let cname = c_name(&name).map_err(self.lower_err("read", &child))?;
                if let Some(st) = stat_opt(lower, &cname).map_err(self.lower_err("read", &child))? {
                    self.lower_gone(&child, lower, &cname, st, depth + 1)?;
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn upper_entry(
        &mut self,
        rel: &RelPath,
        upper: &Dir,
        lower: Option<&Dir>,
        name: &CStr,
        node: Node,
        upper_st: &Stat,
        lower_st: Option<Stat>,
        depth: usize,
    ) -> Result<(), FsError> {
        let lower_is_dir = lower_st.is_some_and(|st| st.kind() == Kind::Dir);
        match node {
            Node::Dir => {
                if lower_st.is_some() && !lower_is_dir {
                    // A lower file or link replaced by a directory.
                    self.report(rel, ChangeKind::Deleted, None)?;
                }
                let Some(upper_child) = open_dir_opt(upper, name).map_err(self.upper_err("open", rel))? else {
                    return Ok(());
                };
                let lower_child = match (lower, lower_is_dir) {
                    (Some(lower), true) => open_dir_opt(lower, name).map_err(self.lower_err("open", rel))?,
                    _ => None,
                };
                self.upper_dir(rel, &upper_child, lower_child.as_ref(), depth + 1)
            }
            Node::Whiteout => match (lower, lower_st) {
                (Some(lower), Some(st)) => self.lower_gone(rel, lower, name, st, depth + 1),
                _ => Ok(()),
            },
            Node::Entry(kind) => match (lower, lower_st) {
                (Some(lower), Some(st)) if st.kind() == Kind::Dir => {
                    // A lower directory replaced by a file, link or the like.
                    self.lower_gone(rel, lower, name, st, depth + 1)?;
                    self.report(rel, ChangeKind::Added, Some(kind))
                }
                (Some(lower), Some(st)) => {
                    if self.outputs.classify(&rel.text) == OutputMatch::Outside {
                        return Ok(());
                    }
                    if self.differs(rel, upper, lower, name, kind, upper_st, &st)? {
                        self.report(rel, ChangeKind::Modified, Some(kind))?;
                    }
                    Ok(())
                }
                _ => self.report(rel, ChangeKind::Added, Some(kind)),
            },
        }
    }

    /// Reports everything the lower had at `rel` as deleted: the entry itself,
    /// or for a directory every non-directory below it.
    fn lower_gone(&mut self, rel: &RelPath, parent: &Dir, name: &CStr, st: Stat, depth: usize) -> Result<(), FsError> {
        if st.kind() != Kind::Dir {
            return self.report(rel, ChangeKind::Deleted, None);
        }
        if !self.outputs.may_cover(&rel.text) {
            return Ok(());
        }
        self.check_depth(rel, depth)?;
        let Some(dir) = open_dir_opt(parent, name).map_err(self.lower_err("open", rel))? else { return Ok(()) };
        for child_name in dir.names().map_err(self.lower_err("list", rel))? {
            let child = rel.join(&child_name);
            if !self.outputs.may_cover(&child.text) {
                continue;
            }
            let cname = c_name(&child_name).map_err(self.lower_err("read", &child))?;
            if let Some(st) = stat_opt(&dir, &cname).map_err(self.lower_err("read", &child))? {
                self.lower_gone(&child, &dir, &cname, st, depth + 1)?;
            }
        }
        if self.outputs.classify(&rel.text) == OutputMatch::Included && rel.utf8 {
            self.scan.removed_dirs.push(rel.text.clone());
        }
        Ok(())
    }

    /// Whether the upper non-directory `name` differs from the lower one.
    #[allow(clippy::too_many_arguments)]
    fn differs(
        &self,
        rel: &RelPath,
        upper: &Dir,
        lower: &Dir,
        name: &CStr,
        kind: Kind,
        upper_st: &Stat,
        lower_st: &Stat,
    ) -> Result<bool, FsError> {
        if kind != lower_st.kind() || upper_st.permissions() != lower_st.permissions() {
            return Ok(true);
        }
        match kind {
            Kind::File => {
                if upper_st.size != lower_st.size {
                    return Ok(true);
                }
                let upper_file = upper.open_file(name).map_err(self.upper_err("open", rel))?;
                upper::check_data(&upper_file)
                    .map_err(self.upper_err("read the overlay attributes of", rel))?
                    .map_err(|upper::Unsupported(feature)| FsError::Unsupported {
                        path: self.upper_root.join(&rel.text),
                        feature,
                    })?;
                let lower_file = lower.open_file(name).map_err(self.lower_err("open", rel))?;
                let is_file = |f: &File| sys::stat_file(f).is_ok_and(|st| st.kind() == Kind::File);
                if !is_file(&upper_file) || !is_file(&lower_file) {
                    return Ok(true); // swapped while we looked: report it
                }
                let same = same_bytes(upper_file, lower_file).map_err(self.upper_err("compare", rel))?;
                Ok(!same)
            }
            Kind::Symlink => {
                let a = upper.read_link(name).map_err(self.upper_err("read the link", rel))?;
                let b = lower.read_link(name).map_err(self.lower_err("read the link", rel))?;
                Ok(a != b)
            }
            _ => Ok(false),
        }
    }
}

/// Reads until `buf` is full or the file ends.
fn fill(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn same_bytes(mut a: File, mut b: File) -> io::Result<bool> {
    const CHUNK: usize = 64 * 1024;
    let mut buf_a = vec![0u8; CHUNK];
    let mut buf_b = vec![0u8; CHUNK];
    loop {
        let n = fill(&mut a, &mut buf_a)?;
        let m = fill(&mut b, &mut buf_b)?;
        if n != m || buf_a[..n] != buf_b[..m] {
            return Ok(false);
        }
        if n < CHUNK {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests;

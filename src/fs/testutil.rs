//! Hand-built overlay layers for the diff and extraction tests: a lower, an
//! upper with whiteouts and opaque directories, and a destination.
//!
//! Whiteouts come in both forms the module reads: a character device 0/0
//! (made with mknod, which Linux allows without CAP_MKNOD for 0/0 since 5.8;
//! used whenever it works here) and a zero-size file with
//! `user.overlay.whiteout` (always available on ext4/tmpfs), so every test
//! that needs a whiteout runs with each form the machine supports — never
//! with none.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::OutputMatcher;

/// How a test makes a whiteout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhiteoutForm {
    CharDevice,
    Xattr,
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("test paths have no NUL")
}

fn mknod(path: &Path, mode: libc::mode_t, dev: libc::dev_t) -> std::io::Result<()> {
    let path = c_path(path);
    // SAFETY: `path` is NUL-terminated.
    if unsafe { libc::mknod(path.as_ptr(), mode, dev) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

pub(crate) fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let (p, n) = (c_path(path), CString::new(name).unwrap());
    // SAFETY: both strings are NUL-terminated; `value` is valid for its length.
    let rc = unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    assert_eq!(rc, 0, "setxattr {name} on {}: {}", path.display(), std::io::Error::last_os_error());
}

/// The whiteout forms this machine can make: the xattr form always, the
/// device form when mknod of 0/0 is allowed.
pub(crate) fn whiteout_forms() -> Vec<WhiteoutForm> {
    let probe = TempDir::new().unwrap();
    let mut forms = vec![WhiteoutForm::Xattr];
    if mknod(&probe.path().join("w"), libc::S_IFCHR | 0o600, 0).is_ok() {
        forms.insert(0, WhiteoutForm::CharDevice);
    }
    forms
}

/// Makes a character device other than 0/0, when allowed (CAP_MKNOD).
pub(crate) fn try_char_device(path: &Path) -> bool {
    mknod(path, libc::S_IFCHR | 0o600, libc::makedev(1, 3)).is_ok()
}

pub(crate) fn fifo(path: &Path) {
    mknod(path, libc::S_IFIFO | 0o600, 0).expect("mkfifo");
}

/// A lower, an upper and a destination in one temporary directory.
pub(crate) struct Layers {
    _tmp: TempDir,
    pub root: PathBuf,
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub dest: PathBuf,
}

fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn link(path: &Path, target: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    symlink(target, path).unwrap();
}

impl Layers {
    pub fn new() -> Layers {
        let tmp = TempDir::new().unwrap();
        let root = tmp.path().to_path_buf();
        let (lower, upper, dest) = (root.join("lower"), root.join("upper"), root.join("dest"));
        for dir in [&lower, &upper] {
            fs::create_dir(dir).unwrap();
        }
        Layers { _tmp: tmp, root, lower, upper, dest }
    }

    pub fn lower_file(&self, rel: &str, content: &str) -> &Self {
        write(&self.lower.join(rel), content);
        self
    }

    pub fn lower_link(&self, rel: &str, target: &str) -> &Self {
        link(&self.lower.join(rel), target);
        self
    }

    pub fn upper_file(&self, rel: &str, content: &str) -> &Self {
        write(&self.upper.join(rel), content);
        self
    }

    pub fn upper_mode(&self, rel: &str, mode: u32) -> &Self {
        fs::set_permissions(self.upper.join(rel), fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    pub fn upper_link(&self, rel: &str, target: &str) -> &Self {
        link(&self.upper.join(rel), target);
        self
    }

    pub fn upper_dir(&self, rel: &str) -> &Self {
        fs::create_dir_all(self.upper.join(rel)).unwrap();
        self
    }

    pub fn whiteout(&self, rel: &str, form: WhiteoutForm) -> &Self {
        let path = self.upper.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        match form {
            WhiteoutForm::CharDevice => mknod(&path, libc::S_IFCHR, 0).expect("mknod 0/0"),
            WhiteoutForm::Xattr => {
                fs::write(&path, "").unwrap();
                set_xattr(&path, "user.overlay.whiteout", b"");
                // The parent says it holds xwhiteouts ("x"), which is not opaque.
                set_xattr(path.parent().unwrap(), "user.overlay.opaque", b"x");
            }
        }
        self
    }

    pub fn opaque(&self, rel: &str) -> &Self {
        let path = self.upper.join(rel);
        fs::create_dir_all(&path).unwrap();
        set_xattr(&path, "user.overlay.opaque", b"y");
        self
    }

    pub fn diff(&self, outputs: &[&str]) -> super::Diff {
        super::diff(&self.upper, &self.lower, &OutputMatcher::new(outputs).unwrap()).expect("diff")
    }

    pub fn extract_to(&self, outputs: &[&str], dest: &Path) -> std::io::Result<Vec<String>> {
        super::extract(&self.upper, &self.lower, &OutputMatcher::new(outputs).unwrap(), dest)
    }

    pub fn extract(&self, outputs: &[&str]) -> std::io::Result<Vec<String>> {
        self.extract_to(outputs, &self.dest)
    }
}

/// One non-directory of a tree, as tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    File { content: Vec<u8>, mode: u32 },
    Link(String),
    Other,
}

/// Every non-directory below `root`, by relative path; links are not followed.
pub(crate) fn tree(root: &Path) -> BTreeMap<String, Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            let ft = meta.file_type();
            if ft.is_dir() {
                walk(root, &path, out);
            } else if ft.is_symlink() {
                out.insert(rel, Entry::Link(fs::read_link(&path).unwrap().to_string_lossy().into_owned()));
            } else if ft.is_file() {
                out.insert(
                    rel,
                    Entry::File { content: fs::read(&path).unwrap(), mode: meta.permissions().mode() & 0o7777 },
                );
            } else {
                out.insert(rel, Entry::Other);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Copies a tree of plain files, links and directories (modes kept).
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&src).unwrap();
        if meta.file_type().is_dir() {
            copy_tree(&src, &dst);
        } else if meta.file_type().is_symlink() {
            symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The names in a directory, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// The `FsError` inside an `io::Error` from `diff` or `extract`.
pub(crate) fn fs_error(err: &std::io::Error) -> &super::FsError {
    err.get_ref().and_then(|e| e.downcast_ref::<super::FsError>()).unwrap_or_else(|| panic!("not an FsError: {err:?}"))
}

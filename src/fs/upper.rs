//! Reading an overlay upper directory: what each entry means.
//!
//! - a character device 0/0 is a whiteout: the lower entry was deleted;
//! - a zero-size regular file with `overlay.whiteout` is a whiteout too (the
//!   "xwhiteout" form newer kernels read in layers);
//! - a directory with `overlay.opaque` = `y` hides everything the lower had
//!   there (`x` only says that the directory holds xwhiteouts);
//! - `overlay.redirect` (renamed directories) and `overlay.metacopy`
//!   (metadata-only copy-up, data still in the lower) cannot be read as plain
//!   trees; a `userxattr` mount never makes them, so meeting one is an error
//!   rather than a wrong answer.
//!
//! Each attribute is looked up under `user.` (unprivileged mounts with
//! `userxattr`) and `trusted.` (privileged mounts).

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::AsFd;

use super::sys::{self, Dir, Kind, Stat};

const PREFIXES: [&[u8]; 2] = [b"user.overlay.", b"trusted.overlay."];

/// What one upper entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Node {
    Dir,
    Whiteout,
    /// A file, a link, or something extraction refuses.
    Entry(Kind),
}

/// An overlay feature this module cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsupported(pub &'static str);

/// The full names (`user.overlay.opaque`, `trusted.overlay.opaque`) of the
/// overlay attribute `suffix` present in `names`.
fn overlay_attrs<'a>(names: &'a [Vec<u8>], suffix: &'a [u8]) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
    names.iter().filter(move |name| PREFIXES.iter().any(|p| name.strip_prefix(*p) == Some(suffix)))
}

/// Whether an upper directory is opaque.
pub(crate) fn dir_is_opaque(dir: &Dir) -> std::io::Result<Result<bool, Unsupported>> {
    let names = sys::xattr_names(dir.as_fd())?;
    if overlay_attrs(&names, b"redirect").next().is_some() {
        return Ok(Err(Unsupported("redirect_dir")));
    }
    for name in overlay_attrs(&names, b"opaque") {
        if sys::xattr_value(dir.as_fd(), name)?.as_deref() == Some(b"y") {
            return Ok(Ok(true));
        }
    }
    Ok(Ok(false))
}

/// What the upper entry `name` of `parent`, with `lstat` result `st`, means.
pub(crate) fn node(parent: &Dir, name: &CStr, st: &Stat) -> std::io::Result<Node> {
    Ok(match st.kind() {
        Kind::Dir => Node::Dir,
        Kind::CharDevice if st.rdev == 0 => Node::Whiteout,
        Kind::File if st.size == 0 => {
            let file = parent.open_file(name)?;
            let names = sys::xattr_names(file.as_fd())?;
            if overlay_attrs(&names, b"whiteout").next().is_some() { Node::Whiteout } else { Node::Entry(Kind::File) }
        }
        kind => Node::Entry(kind),
    })
}

/// Whether an open upper file holds its own data (no metacopy).
pub(crate) fn check_data(file: &File) -> std::io::Result<Result<(), Unsupported>> {
    let names = sys::xattr_names(file.as_fd())?;
    if overlay_attrs(&names, b"metacopy").next().is_some() {
        return Ok(Err(Unsupported("metacopy")));
    }
    Ok(Ok(()))
}

//! The sandbox's files on the host side: which changes the sandbox made to
//! WORKDIR (`diff()`), and bringing those under OUTPUT back safely
//! (`extractOutputs()`). SPEC §1.2 (OUTPUT), §2; DESIGN.md "Filesystem";
//! the rules and the protected list are explained in `docs/EXTRACTION.md`.
//!
//! Inside the sandbox WORKDIR is an overlay: the host WORKDIR is the *lower*
//! layer, and every change lands in the *upper* directory in the sandbox's
//! state dir — new and changed files, directories, links, whiteouts for
//! deletions (a character device 0/0, or a zero-size file with the
//! `user.overlay.whiteout` xattr) and opaque directories
//! (`user.overlay.opaque` = `y`) that hide everything the lower had there.
//! `trusted.overlay.*` (privileged mounts) is read too.
//!
//! - [`OutputMatcher`]: the OUTPUT lines, compiled once.
//! - [`diff`]: added, modified and deleted files under OUTPUT, by comparing
//!   the upper with the lower.
//! - [`extract`]: applies that diff to a destination, never following a link
//!   there, refusing anything that is not a plain file or a link that stays
//!   inside the destination.

pub mod outputs;
pub mod protected;

#[cfg(target_os = "linux")]
mod diff;
#[cfg(target_os = "linux")]
mod extract;
#[cfg(target_os = "linux")]
mod sys;
#[cfg(target_os = "linux")]
mod upper;

#[cfg(test)]
#[cfg(target_os = "linux")]
mod testutil;

#[cfg(target_os = "linux")]
pub use diff::{Diff, diff};
#[cfg(target_os = "linux")]
pub use extract::{Extraction, check_link_target, check_relative_path, extract, extract_redacted, extract_report};
pub use outputs::{OutputMatch, OutputMatcher, OutputPatternError};
pub use protected::{PROTECTED, Protected, protected};

use std::io;
use std::path::PathBuf;

/// How deep a walk goes below WORKDIR. One open directory per level is held
/// on each side, and recursion is bounded by it; real trees stay far below.
pub const MAX_DEPTH: usize = 256;

/// The prefix of the temporary names extraction writes before renaming.
pub const TEMP_PREFIX: &str = ".bun-sandbox-";

/// Why one upper entry is not extracted. Each message is a clause after the
/// entry's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusalReason {
    #[error("a {0} is not a regular file, directory or symbolic link")]
    Special(&'static str),
    #[error("its link target \"{0}\" is absolute; only relative links that stay inside the destination are extracted")]
    AbsoluteTarget(String),
    #[error("its link target \"{0}\" leads out of the destination")]
    EscapingTarget(String),
    #[error("its link target \"{0}\" has \"..\" after a name; only leading \"..\" components are allowed")]
    DotDotAfterName(String),
    #[error("its link target \"{0}\" points into the protected path {1}")]
    ProtectedTarget(String, &'static str),
    #[error("its link target is empty")]
    EmptyTarget,
    #[error("it is not a plain relative path (empty, absolute, \".\" or \"..\" components, or a NUL byte)")]
    BadPath,
    #[error("{0} in the destination is a symbolic link; extraction never follows links there")]
    DestinationLink(String),
    #[error("{0} in the destination is a {1}, not a directory")]
    DestinationNotDir(String, &'static str),
}

/// One refused entry: its path relative to WORKDIR, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct Refusal {
    pub path: String,
    pub reason: RefusalReason,
}

/// Everything `diff` and `extract` can fail with. Each message names the path
/// it is about. It reaches callers inside an `io::Error` (with a kind that
/// fits); `get_ref()` / `into_inner()` give it back.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: nested more than {MAX_DEPTH} directories deep", path.display())]
    TooDeep { path: PathBuf },
    #[error("{}: the name is not valid UTF-8; rename it inside the sandbox, or narrow OUTPUT", path.display())]
    NotUtf8 { path: PathBuf },
    #[error(
        "{}: the overlay uses {feature}, which bun-sandbox does not read; the workdir overlay must be mounted with userxattr (redirect_dir and metacopy off)",
        path.display()
    )]
    Unsupported { path: PathBuf, feature: &'static str },
    /// Found before anything was written: nothing was.
    #[error("{}", refused_message(.0))]
    Refused(Vec<Refusal>),
    /// Found while writing (the sandbox or the destination changed since the
    /// check): files before this one are in place, this one is not.
    #[error("refusing to extract {}: {reason}", path.display())]
    Unsafe { path: PathBuf, reason: String },
}

/// How many refusals one message lists before it says "and N more".
const LISTED_REFUSALS: usize = 10;

fn refused_message(refusals: &[Refusal]) -> String {
    let listed: Vec<String> = refusals.iter().take(LISTED_REFUSALS).map(Refusal::to_string).collect();
    let more = refusals.len().saturating_sub(LISTED_REFUSALS);
    let more = if more > 0 { format!("; and {more} more") } else { String::new() };
    let noun = if refusals.len() == 1 { "entry" } else { "entries" };
    format!(
        "refusing to extract {} {noun} (nothing was written; remove them inside the sandbox or narrow OUTPUT): {}{more}",
        refusals.len(),
        listed.join("; ")
    )
}

impl From<FsError> for io::Error {
    fn from(err: FsError) -> io::Error {
        let kind = match &err {
            FsError::Io { source, .. } => source.kind(),
            FsError::TooDeep { .. } | FsError::NotUtf8 { .. } => io::ErrorKind::InvalidData,
            FsError::Unsupported { .. } => io::ErrorKind::Unsupported,
            FsError::Refused(_) | FsError::Unsafe { .. } => io::ErrorKind::PermissionDenied,
        };
        io::Error::new(kind, err)
    }
}

/// The error for an I/O failure of `action` on `path`.
pub(crate) fn io_at(action: &'static str, path: &std::path::Path) -> impl FnOnce(io::Error) -> FsError + use<> {
    let path = path.to_path_buf();
    move |source| FsError::Io { action, path, source }
}

/// A path relative to WORKDIR, built while walking. A name that is not UTF-8
/// is kept lossily for matching and messages; it fails only when it would be
/// reported.
#[derive(Debug, Clone, Default)]
pub(crate) struct RelPath {
    pub text: String,
    pub utf8: bool,
}

impl RelPath {
    pub fn root() -> RelPath {
        RelPath { text: String::new(), utf8: true }
    }

    pub fn join(&self, name: &[u8]) -> RelPath {
        let (part, ok) = match std::str::from_utf8(name) {
            Ok(s) => (std::borrow::Cow::Borrowed(s), true),
            Err(_) => (String::from_utf8_lossy(name), false),
        };
        let text = if self.text.is_empty() { part.into_owned() } else { format!("{}/{part}", self.text) };
        RelPath { text, utf8: self.utf8 && ok }
    }
}

//! Installs the seccomp program the supervisor built (`crate::policy::seccomp`).

use crate::policy::seccomp;
use std::io;

/// Installs the program given as words. An empty program is refused: a
/// sandbox never runs a command without its filter.
pub fn install(words: &[u64]) -> io::Result<()> {
    if words.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no seccomp program in the plan"));
    }
    seccomp::apply(&seccomp::from_words(words))
}

//! The kernel's OOM killer takes a command before PID 1: a sandbox's memory
//! cgroup counts tmpfs pages, which no process's size shows, and PID 1's
//! death would end the sandbox. Every command starts at `oom_score_adj`
//! 500 (which adds half the memory it may use to its size; a sandbox's
//! commands also go before the host's own processes), PID 1 keeps its own.
//!
//! A command inherits its score at `clone`, so PID 1 raises its own around
//! the `clone` of each command and lowers it again once the child has
//! called `execve` (`CLONE_VFORK`: the child no longer shares its memory,
//! whose sharers a write would also change). Nothing the command forks,
//! however soon, starts below it. The child could not set its own: until
//! its `execve` it is not dumpable, so its `/proc` files are not its own.
//! PID 1 opens its file while it still is.
//!
//! For those microseconds PID 1 is at the commands' score too, and no more
//! exposed than it is anyway: until its `execve` the child shares PID 1's
//! memory, and the OOM killer takes every process that shares its victim's.
//!
//! Raising needs no privilege; lowering needs one only below the lowest a
//! privileged process set for it, which PID 1's own value never is.

use std::fs::File;
use std::io::{self, Read, Write};

/// What a command's score is at least.
const COMMAND: i32 = 500;

pub struct OomScore {
    /// PID 1's `/proc/self/oom_score_adj`, open for writing.
    file: File,
    /// PID 1's own score, inherited from the host process.
    own: i32,
    /// Its commands': the higher of [`COMMAND`] and `own`.
    commands: i32,
}

impl OomScore {
    /// Reads PID 1's score and opens its file; before PID 1 stops being
    /// dumpable.
    pub fn open() -> io::Result<OomScore> {
        let mut file = std::fs::OpenOptions::new().read(true).write(true).open("/proc/self/oom_score_adj")?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        let own: i32 = text.trim().parse().map_err(|_| io::Error::other(format!("oom_score_adj reads {text:?}")))?;
        Ok(OomScore { file, own, commands: own.max(COMMAND) })
    }

    /// Runs `start` (the `clone` of a command, which returns once the child
    /// has called `execve` or exited) with PID 1's score at the commands'.
    /// A score that cannot be written leaves the command at PID 1's.
    pub fn around<T>(&self, start: impl FnOnce() -> T) -> T {
        if self.commands == self.own || self.set(self.commands).is_err() {
            return start();
        }
        let started = start();
        let _ = self.set(self.own);
        started
    }

    fn set(&self, score: i32) -> io::Result<()> {
        // The kernel parses each write from its start, whatever the offset.
        (&self.file).write_all(score.to_string().as_bytes())
    }
}

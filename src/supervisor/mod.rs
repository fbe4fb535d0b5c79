//! The host side of a sandbox: starts init, talks to it, runs commands, tears
//! it down. Knows nothing about JavaScript (`src/binding/` does).

pub mod cgroup;
mod connection;
mod disk_floor;
pub mod jobs;
pub mod launcher;
pub mod logs;
mod reaper;
pub mod remap;
mod sandbox;
mod spare;
pub mod state;
pub mod watch;

pub use jobs::{Hooks, Job, Stream, Violation};
pub use sandbox::{ExecOptions, ExecOutput, FirstCommand, Pending, Sandbox, SandboxError, StartOptions};

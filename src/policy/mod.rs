//! Policies built and unit-tested on the host side, then enforced by the
//! supervisor and the egress proxy or serialised to init (DESIGN.md).

pub mod mount_table;
pub mod net;
pub mod plan;
#[cfg(target_os = "linux")]
pub mod seccomp;
pub mod trust;

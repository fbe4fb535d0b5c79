//! bun-sandbox: isolated, disposable environments for AI coding agents.
//!
//! The crate is the whole product: the Sandboxfile engine, the isolation
//! runtime and, behind the default `binding` feature, the Node/Bun addon.

pub mod fs;
#[cfg(target_os = "linux")]
pub mod isolate;
pub mod net;
pub mod policy;
pub mod protocol;
pub mod sandboxfile;
pub mod secrets;
#[cfg(target_os = "linux")]
pub mod supervisor;

#[cfg(feature = "binding")]
mod binding;
#[cfg(all(test, target_os = "linux"))]
mod testing;

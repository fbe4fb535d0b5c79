//! bun-sandbox: isolated, disposable environments for AI coding agents.
//!
//! The crate is the whole product: the Sandboxfile engine, the isolation
//! runtime and, behind the default `binding` feature, the Node/Bun addon.

pub mod sandboxfile;

#[cfg(feature = "binding")]
mod binding;

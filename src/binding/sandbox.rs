//! The `Sandbox` class, `runSandbox`, `runIsolated` and
//! `checkIsolationSupport`: they need the isolation runtime, which this
//! version does not have yet, so each says so instead of pretending.

use super::errors::not_available;
use napi::bindgen_prelude::*;
use napi_derive::napi;

#[napi]
pub struct Sandbox {}

#[napi]
impl Sandbox {
    #[napi(constructor, ts_args_type = "config: Sandboxfile, options?: SandboxOptions")]
    pub fn new() -> Result<Self> {
        Err(not_available("new Sandbox()"))
    }
}

#[napi(ts_args_type = "path: string, options?: SandboxOptions", ts_return_type = "Promise<Sandbox>")]
pub async fn run_sandbox() -> Result<()> {
    Err(not_available("runSandbox()"))
}

#[napi(
    ts_args_type = "command: string[], config: Sandboxfile, options?: SandboxOptions",
    ts_return_type = "Promise<RunIsolatedResult>"
)]
pub async fn run_isolated() -> Result<()> {
    Err(not_available("runIsolated()"))
}

#[napi(ts_return_type = "Promise<IsolationSupport>")]
pub async fn check_isolation_support() -> Result<()> {
    Err(not_available("checkIsolationSupport()"))
}

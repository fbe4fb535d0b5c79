//! The `Sandbox` class, `runSandbox`, `runIsolated` and
//! `checkIsolationSupport`: they need the isolation runtime, which this
//! version does not have yet, so each says so (code
//! `ERR_SANDBOX_NOT_AVAILABLE`) instead of pretending.

use super::errors::{NotAvailable, throw_not_available};
use napi::Env;
use napi::bindgen_prelude::*;
use napi_derive::napi;

#[napi]
pub struct Sandbox {}

#[napi]
impl Sandbox {
    #[napi(constructor, ts_args_type = "config: Sandboxfile, options?: SandboxOptions")]
    pub fn new(env: Env) -> Result<Self> {
        Err(throw_not_available(&env, "new Sandbox()"))
    }
}

#[napi(ts_args_type = "path: string, options?: SandboxOptions", ts_return_type = "Promise<Sandbox>")]
pub fn run_sandbox() -> AsyncTask<NotAvailable> {
    AsyncTask::new(NotAvailable("runSandbox()"))
}

#[napi(
    ts_args_type = "command: string[], config: Sandboxfile, options?: SandboxOptions",
    ts_return_type = "Promise<RunIsolatedResult>"
)]
pub fn run_isolated() -> AsyncTask<NotAvailable> {
    AsyncTask::new(NotAvailable("runIsolated()"))
}

#[napi(ts_return_type = "Promise<IsolationSupport>")]
pub fn check_isolation_support() -> AsyncTask<NotAvailable> {
    AsyncTask::new(NotAvailable("checkIsolationSupport()"))
}

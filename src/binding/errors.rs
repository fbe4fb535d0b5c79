//! Errors as JavaScript sees them: an `Error` (or `TypeError`) with a `code`
//! and, where useful, more properties.

use napi::bindgen_prelude::*;
use napi::{Env, Status, ValueType};

/// Codes on the errors this package throws, for programs that branch on them.
pub const PARSE: &str = "ERR_SANDBOXFILE_PARSE";
pub const FORMAT: &str = "ERR_SANDBOXFILE_FORMAT";
pub const READ: &str = "ERR_SANDBOXFILE_READ";
pub const INFER: &str = "ERR_SANDBOXFILE_INFER";
pub const NOT_AVAILABLE: &str = "ERR_SANDBOX_NOT_AVAILABLE";

/// Builds an `Error` object with `message`, `code` and extra properties.
pub fn error_object<'e>(
    env: &'e Env,
    message: &str,
    code: &str,
    props: Vec<(&str, Unknown<'e>)>,
) -> Result<Object<'e>> {
    let mut obj = env.create_error(Error::new(Status::GenericFailure, message))?;
    obj.set_named_property("code", code)?;
    for (name, value) in props {
        obj.set_named_property(name, value)?;
    }
    Ok(obj)
}

/// An error for a rejected promise or a `Result` return, carrying the object.
pub fn into_error(obj: Object<'_>) -> Error {
    Error::from(obj.to_unknown())
}

/// Throws a `TypeError` now and returns the error that tells napi it is thrown.
pub fn type_error(env: &Env, message: &str) -> Error {
    match env.throw_type_error(message, Some("ERR_INVALID_ARG_TYPE")) {
        Ok(()) => Error::new(Status::PendingException, message),
        Err(e) => e,
    }
}

/// The argument as a string, or a `TypeError` naming what was expected.
pub fn expect_string(env: &Env, value: Unknown<'_>, what: &str) -> Result<String> {
    if value.get_type()? != ValueType::String {
        return Err(type_error(env, &format!("{what} must be a string")));
    }
    // SAFETY: checked to be a string just above.
    unsafe { value.cast::<String>() }
}

/// What a feature this build does not have yet says.
pub fn not_available_message(what: &str) -> String {
    format!(
        "{what} is not available in this version of bun-sandbox: the RUN/DEV/SERVICE/TEST lifecycle, published \
         ports, secrets and the egress proxy have not landed yet. Sandbox.exec(), diff(), extractOutputs(), \
         runIsolated() and checkIsolationSupport() work."
    )
}

/// A promise that rejects with the not-available error.
pub struct NotAvailable(pub &'static str);

impl Task for NotAvailable {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<()> {
        Ok(())
    }

    fn resolve(&mut self, env: Env, _: ()) -> Result<()> {
        let message = not_available_message(self.0);
        Err(into_error(error_object(&env, &message, NOT_AVAILABLE, vec![])?))
    }
}

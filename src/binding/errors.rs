//! Errors as JavaScript sees them: an `Error` (or `TypeError`) with a `code`
//! and, where useful, more properties.

use napi::bindgen_prelude::*;
use napi::{Env, Status, ValueType};

/// Codes on the errors this package throws, for programs that branch on them.
pub const PARSE: &str = "ERR_SANDBOXFILE_PARSE";
pub const FORMAT: &str = "ERR_SANDBOXFILE_FORMAT";
pub const READ: &str = "ERR_SANDBOXFILE_READ";
pub const INFER: &str = "ERR_SANDBOXFILE_INFER";

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

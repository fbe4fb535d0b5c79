//! `parseSandboxfile`, `parseSandboxfileFromPath`, `formatSandboxfile`,
//! `validateSandboxfile`, `inferSandboxfile`.

use super::errors::{self, expect_string, into_error, type_error};
use crate::sandboxfile::{self as sf, ParseError, Sandboxfile};
use napi::bindgen_prelude::*;
use napi::{Env, JsValue};
use napi_derive::napi;
use std::path::PathBuf;

/// The `Error` a parse failure throws: `Line N: ...` with `line`, `directive`
/// and `code`.
fn parse_error<'e>(env: &'e Env, e: &ParseError) -> Result<Object<'e>> {
    let line = env.create_uint32(e.line.min(u32::MAX as usize) as u32)?.to_unknown();
    let directive = env.create_string(&e.directive)?.to_unknown();
    errors::error_object(env, &e.to_string(), errors::PARSE, vec![("line", line), ("directive", directive)])
}

/// A Sandboxfile object from JS, or a `TypeError` that says what is wrong.
pub(super) fn config_from_js(env: &Env, value: Unknown<'_>, what: &str) -> Result<Sandboxfile> {
    if value.get_type()? != ValueType::Object {
        return Err(type_error(env, &format!("{what} must be a Sandboxfile object")));
    }
    env.from_js_value::<Sandboxfile, _>(value)
        .map_err(|e| type_error(env, &format!("{what} is not a valid Sandboxfile: {}", e.reason)))
}

#[napi(ts_args_type = "src: string", ts_return_type = "Sandboxfile")]
pub fn parse_sandboxfile<'e>(env: &'e Env, src: Unknown<'e>) -> Result<Unknown<'e>> {
    let src = expect_string(env, src, "parseSandboxfile(src): src")?;
    match sf::parse(&src) {
        Ok(file) => json_to_js(env, Json::of(&file)),
        Err(e) => {
            env.throw(parse_error(env, &e)?)?;
            Err(Error::new(Status::PendingException, e.to_string()))
        }
    }
}

/// A Sandboxfile on its way to JS, as JSON text.
///
/// A large file holds tens of thousands of values, and creating each of them
/// through napi costs far more than parsing: one string handed to the engine's
/// own `JSON.parse` builds the same plain object several times faster
/// (bench/parse.js, 1 MB under Node: about 70 ms through napi, under 20 ms this way).
pub struct Json(String);

impl Json {
    fn of(file: &Sandboxfile) -> Self {
        Json(serde_json::to_string(file).expect("a Sandboxfile always serialises"))
    }
}

/// `JSON.parse(json)`, with the global `JSON` of this environment.
fn json_to_js<'e>(env: &'e Env, json: Json) -> Result<Unknown<'e>> {
    let parse: Function<'_, String, Unknown<'e>> =
        env.get_global()?.get_named_property::<Object<'_>>("JSON")?.get_named_property("parse")?;
    parse.call(json.0)
}

impl TypeName for Json {
    fn type_name() -> &'static str {
        "Object"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for Json {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        let env = Env::from_raw(env);
        json_to_js(&env, val).map(|value| value.raw())
    }
}

pub struct ParseFile {
    path: PathBuf,
}

impl Task for ParseFile {
    type Output = std::result::Result<Json, ParseError>;
    type JsValue = Json;

    fn compute(&mut self) -> Result<Self::Output> {
        let bytes = std::fs::read(&self.path).map_err(|e| {
            Error::new(Status::GenericFailure, format!("Cannot read Sandboxfile {}: {e}", self.path.display()))
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::new(Status::InvalidArg, format!("Sandboxfile {} is not UTF-8 text", self.path.display()))
        })?;
        Ok(sf::parse(&text).map(|file| Json::of(&file)))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Self::JsValue> {
        output.or_else(|e| Err(into_error(parse_error(&env, &e)?)))
    }

    fn reject(&mut self, env: Env, err: Error) -> Result<Self::JsValue> {
        Err(into_error(errors::error_object(&env, &err.reason, errors::READ, vec![])?))
    }
}

#[napi(ts_args_type = "path: string", ts_return_type = "Promise<Sandboxfile>")]
pub fn parse_sandboxfile_from_path(env: &Env, path: Unknown<'_>) -> Result<AsyncTask<ParseFile>> {
    let path = expect_string(env, path, "parseSandboxfileFromPath(path): path")?;
    Ok(AsyncTask::new(ParseFile { path: path.into() }))
}

#[napi(ts_args_type = "config: Sandboxfile", ts_return_type = "string")]
pub fn format_sandboxfile(env: &Env, config: Unknown<'_>) -> Result<String> {
    let file = config_from_js(env, config, "formatSandboxfile(config): config")?;
    sf::format(&file).map_err(|e| {
        match errors::error_object(env, &format!("Cannot format Sandboxfile: {e}"), errors::FORMAT, vec![]) {
            Ok(obj) => into_error(obj),
            Err(err) => err,
        }
    })
}

#[napi(object)]
pub struct ValidationResult {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

#[napi(ts_args_type = "config: Sandboxfile")]
pub fn validate_sandboxfile(env: &Env, config: Unknown<'_>) -> Result<ValidationResult> {
    let file = config_from_js(env, config, "validateSandboxfile(config): config")?;
    let report = sf::validate(&file);
    Ok(ValidationResult { errors: report.errors, warnings: report.warnings })
}

pub struct Infer {
    dir: PathBuf,
}

impl Task for Infer {
    type Output = Json;
    type JsValue = Json;

    fn compute(&mut self) -> Result<Self::Output> {
        let file = sf::infer::infer(&self.dir).map_err(|e| {
            Error::new(Status::GenericFailure, format!("Cannot infer a Sandboxfile from {}: {e}", self.dir.display()))
        })?;
        Ok(Json::of(&file))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output)
    }

    fn reject(&mut self, env: Env, err: Error) -> Result<Self::JsValue> {
        Err(into_error(errors::error_object(&env, &err.reason, errors::INFER, vec![])?))
    }
}

#[napi(ts_args_type = "dir?: string", ts_return_type = "Promise<Sandboxfile>")]
pub fn infer_sandboxfile(env: &Env, dir: Option<Unknown<'_>>) -> Result<AsyncTask<Infer>> {
    let dir = match dir {
        Some(d) if !matches!(d.get_type()?, ValueType::Undefined) => {
            PathBuf::from(expect_string(env, d, "inferSandboxfile(dir): dir")?)
        }
        _ => std::env::current_dir()?,
    };
    Ok(AsyncTask::new(Infer { dir }))
}

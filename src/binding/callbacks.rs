//! JS callbacks (`onStdout`, `onStderr`, `onExit`) as supervisor hooks.
//!
//! Each is a weak threadsafe function (it never keeps the event loop alive)
//! called with the catching variant: a callback that throws is reported on
//! stderr and the sandbox goes on; the host process does not die. Output
//! calls are awaited, so a slow callback slows the process, not memory.

use super::errors::type_error;
use crate::supervisor::jobs::{BoxFuture, Hooks, Stream, Violation};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;
use std::sync::Arc;

/// A weak, catching threadsafe function taking the arguments in `Args`.
type Callback<Args> = ThreadsafeFunction<FnArgs<Args>, (), FnArgs<Args>, Status, false, true>;

fn callback<Args: 'static>(env: &Env, obj: &Object, name: &str) -> Result<Option<Arc<Callback<Args>>>>
where
    FnArgs<Args>: napi::bindgen_prelude::JsValuesTupleIntoVec,
{
    let Some(value) = obj.get::<Unknown>(name)? else { return Ok(None) };
    match value.get_type()? {
        ValueType::Undefined | ValueType::Null => Ok(None),
        ValueType::Function => {
            // SAFETY: checked to be a function just above.
            let f: Function<FnArgs<Args>, ()> = unsafe { value.cast()? };
            Ok(Some(Arc::new(f.build_threadsafe_function().weak::<true>().callee_handled::<false>().build()?)))
        }
        _ => Err(type_error(env, &format!("options.{name} must be a function"))),
    }
}

/// What `onViolation` receives.
#[napi(object)]
pub struct ViolationEvent {
    #[napi(ts_type = "'net' | 'fs' | 'limit'")]
    pub kind: String,
    pub detail: String,
    pub host: Option<String>,
}

fn report(which: &str, e: napi::Error) {
    eprintln!("bun-sandbox: options.{which} threw: {}", e.reason);
}

/// The hooks for the callbacks in `options` (an object, already checked).
pub fn hooks(env: &Env, obj: &Object) -> Result<Hooks> {
    let stdout = callback::<(String, String)>(env, obj, "onStdout")?;
    let stderr = callback::<(String, String)>(env, obj, "onStderr")?;
    let exit = callback::<(String, Option<i32>)>(env, obj, "onExit")?;
    let output = (stdout.is_some() || stderr.is_some()).then(|| {
        // The call is queued at once (the JS thread takes calls in order);
        // the future says when JavaScript has taken it.
        let f: crate::supervisor::jobs::OutputHook =
            Arc::new(move |name: String, stream: Stream, text: String| -> BoxFuture {
                let (cb, which) = match stream {
                    Stream::Stdout => (stdout.as_ref(), "onStdout"),
                    Stream::Stderr => (stderr.as_ref(), "onStderr"),
                };
                let Some(cb) = cb else { return Box::pin(async {}) };
                let (taken, done) = tokio::sync::oneshot::channel::<()>();
                let status = cb.call_with_return_value(
                    (name, text).into(),
                    ThreadsafeFunctionCallMode::NonBlocking,
                    move |r: Result<()>, _| {
                        if let Err(e) = r {
                            report(which, e);
                        }
                        let _ = taken.send(());
                        Ok(())
                    },
                );
                Box::pin(async move {
                    // Not queued (the environment is going): nothing to wait for.
                    if status == Status::Ok {
                        let _ = done.await;
                    }
                })
            });
        f
    });
    let exit = exit.map(|cb| {
        let f: crate::supervisor::jobs::ExitHook = Arc::new(move |name: String, code: Option<i32>| -> BoxFuture {
            let cb = cb.clone();
            Box::pin(async move {
                if let Err(e) = cb.call_async_catch((name, code).into()).await {
                    report("onExit", e);
                }
            })
        });
        f
    });
    let violation = callback::<(ViolationEvent,)>(env, obj, "onViolation")?.map(|cb| {
        let f: crate::supervisor::jobs::ViolationHook = Arc::new(move |v: Violation| -> BoxFuture {
            let cb = cb.clone();
            Box::pin(async move {
                let event = ViolationEvent { kind: v.kind.to_string(), detail: v.detail, host: v.host };
                if let Err(e) = cb.call_async_catch((event,).into()).await {
                    report("onViolation", e);
                }
            })
        });
        f
    });
    Ok(Hooks { output, exit, violation })
}

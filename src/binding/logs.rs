//! `getLogFiles()`, `tailLogs()` (SPEC §2, LOGS) and WATCH restarts
//! (SPEC §1.2) on the `Sandbox` class, over `crate::supervisor::{logs, watch}`.
//!
//! The `tailLogs` callback is a weak threadsafe function (it never keeps the
//! event loop alive) called with the catching variant: a callback that
//! throws is reported on stderr and the tail goes on. It calls the user's
//! function through a small wrapper that checks, on the JS thread, whether
//! the tail was stopped: a line already queued when the stop function (or
//! `stop()`) ran is dropped, so no line arrives after either returned.

use super::errors::type_error;
use super::sandbox::{Inner, Sandbox};
use crate::supervisor::{self as sv, logs, watch};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, Status};
use napi_derive::napi;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What runs in the background of one Sandbox (tails, WATCH restarters):
/// each can be ended on its own, and `stop()` ends them all, before the
/// sandbox goes.
#[derive(Default)]
pub(super) struct Background(Mutex<BackgroundState>);

#[derive(Default)]
struct BackgroundState {
    stopped: bool,
    next: u64,
    items: HashMap<u64, Box<dyn FnOnce() + Send>>,
}

impl Background {
    /// Registers how to end something; after `stop_all` it is ended at once.
    fn add(&self, end: Box<dyn FnOnce() + Send>) -> Option<u64> {
        let Ok(mut s) = self.0.lock() else {
            end();
            return None;
        };
        if s.stopped {
            drop(s);
            end();
            return None;
        }
        s.next += 1;
        let id = s.next;
        s.items.insert(id, end);
        Some(id)
    }

    /// Ends one (idempotent).
    fn end(&self, id: u64) {
        let end = self.0.lock().ok().and_then(|mut s| s.items.remove(&id));
        if let Some(end) = end {
            end();
        }
    }

    /// Ends everything, now and from now on.
    pub(super) fn stop_all(&self) {
        let items = match self.0.lock() {
            Ok(mut s) => {
                s.stopped = true;
                std::mem::take(&mut s.items)
            }
            Err(_) => return,
        };
        for (_, end) in items {
            end();
        }
    }
}

fn invalid(message: String) -> napi::Error {
    napi::Error::new(Status::InvalidArg, message)
}

impl Inner {
    /// The LOGS globs, compiled.
    fn log_set(&self) -> Result<watch::PathSet> {
        watch::PathSet::new(&self.config.logs).map_err(|e| invalid(format!("LOGS {e}")))
    }

    /// WORKDIR on the host: the sandbox's, or resolved as the sandbox will.
    fn host_workdir(&self) -> Result<PathBuf> {
        if let Some(sandbox) = self.sandbox.get() {
            return Ok(sandbox.workdir().to_path_buf());
        }
        let base = match &self.options.cwd {
            Some(cwd) => cwd.clone(),
            None => std::env::current_dir().map_err(|e| napi::Error::new(Status::GenericFailure, e.to_string()))?,
        };
        crate::policy::plan::resolve_workdir(self.config.workdir.as_deref(), &base, &sv::state::root())
            .map_err(|e| napi::Error::new(Status::GenericFailure, e.to_string()))
    }

    /// Restarts a DEV or SERVICE process that has WATCH= when a matching
    /// file changes, until `stop()`. Called once the process has started.
    pub(super) fn watch_background(
        &self,
        sandbox: &Arc<sv::Sandbox>,
        job: &Arc<sv::Job>,
        name: &str,
        kind: &str,
        argv: Vec<String>,
        env: BTreeMap<String, String>,
    ) -> Result<()> {
        let glob = match kind {
            "dev" => self.config.dev.as_ref().and_then(|d| d.watch.clone()),
            "service" => self.config.services.iter().find(|s| s.name == name).and_then(|s| s.watch.clone()),
            _ => None,
        };
        let Some(glob) = glob else { return Ok(()) };
        let proc = watch::WatchedProcess { name: name.into(), kind: kind.into(), argv, env, glob };
        let handle =
            watch::watch_process(sandbox, job.clone(), proc).map_err(|e| invalid(format!("{name} WATCH={e}")))?;
        self.background.add(Box::new(move || handle.stop()));
        Ok(())
    }
}

type LineCallback = ThreadsafeFunction<FnArgs<(String, String)>, (), FnArgs<(String, String)>, Status, false, true>;

#[napi]
impl Sandbox {
    /// Host paths of the files LOGS matches, as the sandbox sees WORKDIR: a
    /// file the sandbox wrote is read from its changes, a file it deleted is
    /// absent. Before the sandbox exists, WORKDIR's own files.
    #[napi]
    pub fn get_log_files(&self) -> Result<Vec<String>> {
        let set = self.inner.log_set()?;
        if set.is_empty() {
            return Ok(Vec::new());
        }
        let workdir = self.inner.host_workdir()?;
        let upper = self.inner.sandbox.get().map(|s| s.workdir_upper());
        Ok(logs::log_files(&workdir, upper.as_deref(), &set)
            .into_iter()
            .map(|(_, path)| path.to_string_lossy().into_owned())
            .collect())
    }

    /// Calls `cb(file, line)` for every complete line appended to a LOGS
    /// file from now on (`file` relative to WORKDIR), including files that
    /// appear later. Creates the sandbox if needed. Resolves with a function
    /// that stops it; `stop()` stops every tail.
    #[napi(ts_args_type = "cb: (file: string, line: string) => void", ts_return_type = "Promise<() => void>")]
    pub fn tail_logs<'e>(&self, env: &'e Env, cb: Unknown<'e>) -> Result<PromiseRaw<'e, Function<'e, (), ()>>> {
        if cb.get_type()? != ValueType::Function {
            return Err(type_error(env, "tailLogs(cb): cb must be a function"));
        }
        // SAFETY: checked to be a function just above.
        let cb: Function<FnArgs<(String, String)>, Unknown> = unsafe { cb.cast()? };
        let set = Arc::new(self.inner.log_set()?);
        // Set on the JS thread by the stop function, read there by the wrapper.
        let stopped = Arc::new(AtomicBool::new(false));
        let cb_ref = cb.create_ref()?;
        let gate = stopped.clone();
        let wrapper =
            env.create_function_from_closure::<FnArgs<(String, String)>, (), _>("bunSandboxTailLogs", move |ctx| {
                if gate.load(Ordering::SeqCst) {
                    return Ok(());
                }
                let (file, line): (String, String) = (ctx.get(0)?, ctx.get(1)?);
                cb_ref.borrow_back(ctx.env)?.call((file, line).into())?;
                Ok(())
            })?;
        let tsfn: LineCallback =
            wrapper.build_threadsafe_function().weak::<true>().callee_handled::<false>().build()?;
        let tsfn = Arc::new(tsfn);
        // A SECRET value in a log line reaches the callback as `[secret NAME]`.
        self.inner.read_secrets(env)?;
        let redactor = self.inner.secrets().ok().map(|s| s.redactor());
        let sink: logs::LineSink = Arc::new(move |file: String, line: String| -> logs::LineFuture {
            let tsfn = tsfn.clone();
            let line = match &redactor {
                Some(r) => r.redact_str(&line).into_owned(),
                None => line,
            };
            Box::pin(async move {
                match tsfn.call_async_catch((file, line).into()).await {
                    Ok(()) => true,
                    Err(e) if e.status == Status::PendingException => {
                        eprintln!("bun-sandbox: the tailLogs callback threw: {}", e.reason);
                        true
                    }
                    // The function is released (the environment is going).
                    Err(_) => false,
                }
            })
        });
        let inner = self.inner.clone();
        let inner_for_stop = self.inner.clone();
        let gate = stopped.clone();
        env.spawn_future_with_callback(
            async move {
                if set.is_empty() {
                    return Ok(None);
                }
                let sandbox = inner.sandbox().await?;
                let handle = logs::tail(sandbox.workdir().to_path_buf(), Some(sandbox.workdir_upper()), set, sink);
                Ok(inner.background.add(Box::new(move || {
                    gate.store(true, Ordering::SeqCst);
                    handle.stop();
                })))
            },
            move |env, id: Option<u64>| {
                env.create_function_from_closure::<(), (), _>("stopTailLogs", move |_| {
                    stopped.store(true, Ordering::SeqCst);
                    if let Some(id) = id {
                        inner_for_stop.background.end(id);
                    }
                    Ok(())
                })
            },
        )
    }
}

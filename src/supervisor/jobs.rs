//! Long-running and streamed commands: RUN, DEV, SERVICE and TEST processes
//! whose output goes to the hooks as it is produced, readiness on a PORT, and
//! ports published on the host.

use super::connection::{Exit, SocketFailure};
use super::sandbox::{Launch, Sandbox, SandboxError};
use crate::protocol::Request;
use crate::secrets::{RedactStream, Redactor};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
/// Delivers text a process wrote; the future resolves once it was taken, so
/// a slow consumer slows the process (its pipe fills) instead of growing memory.
pub type OutputHook = Arc<dyn Fn(String, Stream, String) -> BoxFuture + Send + Sync>;
/// A process ended: its exit code, or None when a signal ended it. Runs
/// after all its output was delivered.
pub type ExitHook = Arc<dyn Fn(String, Option<i32>) -> BoxFuture + Send + Sync>;

/// A breach: `kind` is `net`, `fs` or `limit`; `host` for `net`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub kind: &'static str,
    pub detail: String,
    pub host: Option<String>,
}

pub type ViolationHook = Arc<dyn Fn(Violation) -> BoxFuture + Send + Sync>;

#[derive(Clone, Default)]
pub struct Hooks {
    pub output: Option<OutputHook>,
    pub exit: Option<ExitHook>,
    pub violation: Option<ViolationHook>,
}

impl Hooks {
    pub async fn violation(&self, v: Violation) {
        if let Some(hook) = &self.violation {
            hook(v).await;
        }
    }
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("output", &self.output.is_some())
            .field("exit", &self.exit.is_some())
            .field("violation", &self.violation.is_some())
            .finish()
    }
}

/// How many lines of a process's output are kept for error messages.
const TAIL_LINES: usize = 20;
const CHUNK: usize = 64 * 1024;
/// How long output that could be the start of a SECRET value is held back
/// waiting for the rest.
const HOLD_BACK: Duration = Duration::from_millis(100);

/// A started process.
pub struct Job {
    pub id: u64,
    pub name: String,
    pub pid: i32,
    exit: watch::Receiver<Option<Exit>>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Job {
    /// Waits for the process to end (and its output to be delivered).
    pub async fn wait(&self) -> Exit {
        let mut rx = self.exit.clone();
        loop {
            if let Some(exit) = *rx.borrow_and_update() {
                return exit;
            }
            if rx.changed().await.is_err() {
                return Exit { code: None, signal: Some(libc::SIGKILL) };
            }
        }
    }

    pub fn exited(&self) -> Option<Exit> {
        *self.exit.borrow()
    }

    /// The last lines it wrote, for error messages.
    pub fn tail(&self) -> String {
        self.tail.lock().map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap_or_default()
    }
}

/// Text from a byte stream, never splitting a UTF-8 character across chunks.
struct Utf8Stream(Vec<u8>);

impl Utf8Stream {
    fn push(&mut self, bytes: &[u8]) -> String {
        self.0.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.0) {
            Ok(_) => self.0.len(),
            // An incomplete character at the end waits for the next chunk.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.0.len(),
        };
        let text = String::from_utf8_lossy(&self.0[..valid]).into_owned();
        self.0.drain(..valid);
        text
    }

    fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.0).into_owned();
        self.0.clear();
        text
    }
}

fn remember(tail: &Mutex<VecDeque<String>>, text: &str) {
    let Ok(mut t) = tail.lock() else { return };
    for line in text.lines() {
        if t.len() == TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line.to_string());
    }
}

async fn pump(
    fd: OwnedFd,
    name: String,
    stream: Stream,
    hooks: Hooks,
    tail: Arc<Mutex<VecDeque<String>>>,
    redactor: Option<Arc<Redactor>>,
) -> io::Result<()> {
    /// What a read gave.
    enum Read {
        Data(usize),
        End,
        /// Nothing for a while, with bytes held back.
        Quiet,
    }
    let mut rx = tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?;
    let mut buf = vec![0u8; CHUNK];
    let mut text = Utf8Stream(Vec::new());
    // SECRET values become `[secret NAME]` before anything sees the text.
    let mut redact = redactor.map(RedactStream::new);
    loop {
        // Bytes held back because they could begin a value go out when the
        // process has said nothing more for a moment (a prompt must show).
        let read = if redact.as_ref().is_some_and(|r| r.held() > 0) {
            tokio::time::timeout(HOLD_BACK, rx.read(&mut buf)).await
        } else {
            Ok(rx.read(&mut buf).await)
        };
        let read = match read {
            Err(_) => Read::Quiet,
            Ok(n) => match n? {
                0 => Read::End,
                n => Read::Data(n),
            },
        };
        let chunk = match (&mut redact, &read) {
            (None, Read::Data(n)) => text.push(&buf[..*n]),
            (Some(r), Read::Data(n)) => text.push(&r.push(&buf[..*n])),
            (Some(r), Read::Quiet) => text.push(&r.finish()),
            (None, Read::Quiet) => String::new(),
            (r, Read::End) => {
                let rest = r.as_mut().map(RedactStream::finish).unwrap_or_default();
                let mut t = text.push(&rest);
                t.push_str(&text.finish());
                t
            }
        };
        if !chunk.is_empty() {
            remember(&tail, &chunk);
            if let Some(out) = &hooks.output {
                out(name.clone(), stream, chunk).await;
            }
        }
        if matches!(read, Read::End) {
            return Ok(());
        }
    }
}

impl Sandbox {
    /// Starts `argv` as process `name`, streaming its output to the hooks and
    /// reporting its exit once (after its output). A command that cannot
    /// start still reports: 127 with a message naming it.
    pub async fn spawn_job(
        self: &Arc<Self>,
        name: &str,
        kind: &str,
        argv: Vec<String>,
        env: BTreeMap<String, String>,
    ) -> Result<Arc<Job>, SandboxError> {
        let hooks = self.hooks().clone();
        let (tx, rx) = watch::channel(None);
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let started = match self.launch(name, kind, argv, env).await? {
            Launch::Started(s) => s,
            Launch::NotStarted { code, message } => {
                remember(&tail, &message);
                if let Some(out) = &hooks.output {
                    out(name.to_string(), Stream::Stderr, message).await;
                }
                if let Some(exit) = &hooks.exit {
                    exit(name.to_string(), Some(code)).await;
                }
                let _ = tx.send(Some(Exit { code: Some(code), signal: None }));
                return Ok(Arc::new(Job { id: 0, name: name.into(), pid: 0, exit: rx, tail }));
            }
        };
        drop(started.stdin); // background processes read no input
        let job = Arc::new(Job { id: started.id, name: name.into(), pid: started.pid, exit: rx, tail: tail.clone() });
        let this = self.clone();
        let name = name.to_string();
        let redactor = self.redactor().cloned();
        let task = tokio::spawn(async move {
            let out = pump(started.stdout, name.clone(), Stream::Stdout, hooks.clone(), tail.clone(), redactor.clone());
            let err = pump(started.stderr, name.clone(), Stream::Stderr, hooks.clone(), tail.clone(), redactor);
            let (_, _, exit) = tokio::join!(out, err, started.exited);
            let exit = exit.unwrap_or(Exit { code: None, signal: Some(libc::SIGKILL) });
            this.forget(started.id).await;
            if let Some(hook) = &hooks.exit {
                hook(name, exit.code).await;
            }
            let _ = tx.send(Some(exit));
        });
        self.track(task);
        Ok(job)
    }

    /// Waits until `port` accepts a TCP connection inside the sandbox, with
    /// back-off; fails when the job exits first or the time runs out.
    pub async fn wait_ready(&self, job: &Job, port: u16, timeout: Duration) -> Result<(), SandboxError> {
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            if let Some(exit) = job.exited() {
                return Err(SandboxError::NotReady(format!(
                    "{} exited with {} before port {port} accepted a connection{}",
                    job.name,
                    describe_exit(exit),
                    tail_block(job)
                )));
            }
            if self.connect_inside(port).await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SandboxError::NotReady(format!(
                    "{} did not accept connections on port {port} within {} s{}",
                    job.name,
                    timeout.as_secs_f32(),
                    tail_block(job)
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = job.wait() => {}
            }
            // Most servers listen within a second: probe every 5 ms until
            // then (a probe is one request to init), then back off.
            if started.elapsed() > Duration::from_secs(1) {
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        }
    }

    /// A TCP socket connected to `127.0.0.1:port` inside the sandbox.
    pub async fn connect_inside(&self, port: u16) -> Result<OwnedFd, SandboxError> {
        self.conn().socket(|id| Request::Connect { id, port }).await.map_err(|e| match e {
            SocketFailure::Refused(why) => SandboxError::NotReady(why),
            SocketFailure::Gone(why) => SandboxError::Died(why),
            SocketFailure::Send(e) => SandboxError::Died(e.to_string()),
        })
    }

    /// Publishes `port` inside on a free port of the host's 127.0.0.1: each
    /// connection there is spliced to a socket init makes inside.
    pub async fn publish(self: &Arc<Self>, port: u16) -> Result<u16, SandboxError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| SandboxError::Io { context: "cannot listen on 127.0.0.1".into(), source: e })?;
        let host_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let this = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let Some(sandbox) = this.upgrade() else { return };
                tokio::spawn(async move {
                    // Nobody listening inside: the client's connection just closes.
                    let Ok(fd) = sandbox.connect_inside(port).await else { return };
                    drop(sandbox);
                    let std = std::net::TcpStream::from(fd);
                    if std.set_nonblocking(true).is_err() {
                        return;
                    }
                    let Ok(mut inside) = tokio::net::TcpStream::from_std(std) else { return };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut inside).await;
                });
            }
        });
        self.track_listener(task);
        Ok(host_port)
    }
}

pub fn describe_exit(exit: Exit) -> String {
    match (exit.code, exit.signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => "an unknown status".into(),
    }
}

fn tail_block(job: &Job) -> String {
    let tail = job.tail();
    if tail.is_empty() { String::new() } else { format!("; its last output:\n{tail}") }
}

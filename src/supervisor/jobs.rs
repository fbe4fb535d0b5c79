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
/// a slow consumer slows the process (its pipe fills) instead of growing
/// memory. A hook may start the delivery when called (before the future is
/// polled): the output pump keeps a few deliveries in flight, in order.
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
const TAIL_LINE_CHARS: usize = 500;
const CHUNK: usize = 64 * 1024;
/// Output chunks of one stream that may be on their way to the consumer at
/// once (each at most CHUNK bytes of text).
const IN_FLIGHT: usize = 4;
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
/// Holds at most the 3 bytes of a character cut at the end of a read.
struct Utf8Stream(Vec<u8>);

impl Utf8Stream {
    fn push(&mut self, bytes: &[u8]) -> String {
        if self.0.is_empty() {
            return self.decode(bytes);
        }
        let mut joined = std::mem::take(&mut self.0);
        joined.extend_from_slice(bytes);
        self.decode(&joined)
    }

    /// `bytes` as text, keeping an incomplete character at the end for the
    /// next chunk. Valid text (the usual case) is validated once, copied once.
    fn decode(&mut self, bytes: &[u8]) -> String {
        match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            Err(e) if e.error_len().is_none() => {
                let (text, cut) = bytes.split_at(e.valid_up_to());
                self.0.extend_from_slice(cut);
                // Valid up to the cut, by the error's own account.
                std::str::from_utf8(text).map(str::to_owned).unwrap_or_default()
            }
            Err(_) => {
                // Invalid bytes become U+FFFD; a character cut at the very
                // end still waits for its rest.
                let keep = incomplete_tail(bytes);
                let (text, cut) = bytes.split_at(bytes.len() - keep);
                self.0.extend_from_slice(cut);
                String::from_utf8_lossy(text).into_owned()
            }
        }
    }

    fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.0).into_owned();
        self.0.clear();
        text
    }
}

/// How many bytes at the end of `bytes` are the start of a character whose
/// rest has not arrived (0 to 3).
fn incomplete_tail(bytes: &[u8]) -> usize {
    let start = bytes.len().saturating_sub(3);
    for (i, &b) in bytes[start..].iter().enumerate().rev() {
        let at = start + i;
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            0x80..=0xBF => continue,
            _ => return 0,
        };
        let have = bytes.len() - at;
        return if have < need && std::str::from_utf8(&bytes[at..]).is_err_and(|e| e.error_len().is_none()) {
            have
        } else {
            0
        };
    }
    0
}

/// Keeps the last TAIL_LINES lines of a process's output (each cut to
/// TAIL_LINE_CHARS) for error messages; looks only at the end of `text`.
fn remember(tail: &Mutex<VecDeque<String>>, text: &str) {
    let Ok(mut t) = tail.lock() else { return };
    let last: Vec<&str> = text.lines().rev().take(TAIL_LINES).collect();
    for line in last.into_iter().rev() {
        if t.len() == TAIL_LINES {
            t.pop_front();
        }
        let cut = line.char_indices().nth(TAIL_LINE_CHARS).map_or(line.len(), |(i, _)| i);
        t.push_back(line[..cut].to_string());
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
    // Deliveries started and not yet taken: reading goes on while the
    // consumer works on the last chunks, but never more than IN_FLIGHT ahead.
    let mut in_flight: VecDeque<BoxFuture> = VecDeque::new();
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
                in_flight.push_back(out(name.clone(), stream, chunk));
                if in_flight.len() > IN_FLIGHT
                    && let Some(oldest) = in_flight.pop_front()
                {
                    oldest.await;
                }
            }
        }
        if matches!(read, Read::End) {
            for delivery in in_flight {
                delivery.await;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the cuts, the text is what lossy decoding of the whole gives.
    #[test]
    fn utf8_stream_matches_lossy_decoding_at_every_cut() {
        let inputs: [&[u8]; 4] =
            ["aé€😀z".as_bytes(), b"ok \xff bad \xe2\x82 cut \xf0\x9f\x98\x80", b"\xe2\x82", b"\x80\x80\x80abc\xc3"];
        for input in inputs {
            let want = String::from_utf8_lossy(input).into_owned();
            for i in 0..=input.len() {
                for j in i..=input.len() {
                    let mut s = Utf8Stream(Vec::new());
                    let mut got = s.push(&input[..i]);
                    got.push_str(&s.push(&input[i..j]));
                    got.push_str(&s.push(&input[j..]));
                    got.push_str(&s.finish());
                    assert_eq!(got, want, "cuts {i} {j} of {input:?}");
                }
            }
        }
    }

    #[test]
    fn the_tail_keeps_the_last_lines_cut_short() {
        let tail = Mutex::new(VecDeque::new());
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        remember(&tail, &text);
        remember(&tail, &"x".repeat(10_000));
        let t = tail.lock().unwrap();
        assert_eq!(t.len(), TAIL_LINES);
        assert_eq!(t[0], "line 81");
        assert_eq!(t[TAIL_LINES - 1].len(), TAIL_LINE_CHARS);
    }
}

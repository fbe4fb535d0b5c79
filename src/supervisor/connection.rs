//! The supervisor's end of the control socket: requests out, events in,
//! each event routed to whoever waits for it.

use crate::protocol::{self, Event, Request};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

pub type Started = Result<i32, (i32, String)>;

/// init's first word: built (with the WORKDIR upper's fd when it passed
/// one), or why setup failed.
pub type Ready = Result<Option<OwnedFd>, String>;

/// Why `socket` returned no socket.
#[derive(Debug)]
pub enum SocketFailure {
    /// init is gone (the reason it went).
    Gone(String),
    /// The request could not be sent.
    Send(io::Error),
    /// init tried and says why it failed (connection refused, ...).
    Refused(String),
}

/// Sends requests on a sandbox's control socket (`Connection::sender`).
#[derive(Clone)]
pub struct Sender(Arc<AsyncFd<OwnedFd>>);

impl Sender {
    pub async fn send<T: serde::Serialize>(&self, req: &T) -> io::Result<()> {
        send(&self.0, req, &[]).await
    }
}

async fn send<T: serde::Serialize>(fd: &AsyncFd<OwnedFd>, req: &T, fds: &[RawFd]) -> io::Result<()> {
    loop {
        let mut guard = fd.writable().await?;
        match protocol::send(fd.get_ref().as_raw_fd(), req, fds) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
            other => return other,
        }
    }
}

/// A socket asked of init, its answer still to come.
pub struct AskedSocket(oneshot::Receiver<Result<OwnedFd, String>>);

#[derive(Default)]
struct Waiters {
    ready: Option<oneshot::Sender<Ready>>,
    started: HashMap<u64, oneshot::Sender<Started>>,
    exited: HashMap<u64, oneshot::Sender<Exit>>,
    sockets: HashMap<u64, oneshot::Sender<Result<OwnedFd, String>>>,
    /// Why the connection ended, once it has.
    closed: Option<String>,
}

pub struct Connection {
    /// Becomes true when init closed its end: it has exited.
    gone: tokio::sync::watch::Receiver<bool>,
    fd: Arc<AsyncFd<OwnedFd>>,
    waiters: Arc<Mutex<Waiters>>,
    next_id: AtomicU64,
}

impl Connection {
    /// Takes over the socket and starts routing events; resolves `ready` with
    /// init's first word: Ready (with the fd of the WORKDIR's upper when init
    /// passed one), or why setup failed.
    pub fn new(sock: OwnedFd) -> io::Result<(Connection, oneshot::Receiver<Ready>)> {
        nix::fcntl::fcntl(&sock, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))?;
        // SAFETY: the AsyncFd owns the socket, which stays open while registered.
        let fd = Arc::new(unsafe { AsyncFd::register(sock) }.map_err(io::Error::from)?);
        let (tx, rx) = oneshot::channel();
        let waiters = Arc::new(Mutex::new(Waiters { ready: Some(tx), ..Default::default() }));
        let (fd2, waiters2) = (fd.clone(), waiters.clone());
        let (gone_tx, gone) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            route(fd.clone(), waiters.clone()).await;
            let _ = gone_tx.send(true);
        });
        Ok((Connection { gone, fd: fd2, waiters: waiters2, next_id: AtomicU64::new(1) }, rx))
    }

    /// Waits until init has closed the control socket.
    pub async fn wait_gone(&self) {
        let mut gone = self.gone.clone();
        let _ = gone.wait_for(|g| *g).await;
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn closed(&self) -> Option<String> {
        self.waiters.lock().ok()?.closed.clone()
    }

    pub async fn send<T: serde::Serialize>(&self, req: &T, fds: &[RawFd]) -> io::Result<()> {
        send(&self.fd, req, fds).await
    }

    /// A handle that sends requests, for a task of the sandbox's own.
    pub fn sender(&self) -> Sender {
        Sender(self.fd.clone())
    }

    /// Registers interest in a spawn's start and exit before sending it.
    pub fn expect_spawn(&self, id: u64) -> io::Result<(oneshot::Receiver<Started>, oneshot::Receiver<Exit>)> {
        let (stx, srx) = oneshot::channel();
        let (etx, erx) = oneshot::channel();
        self.register(|w| {
            w.started.insert(id, stx);
            w.exited.insert(id, etx);
        })?;
        Ok((srx, erx))
    }

    /// Sends a `Connect` or `Listen` (made with the request id) and waits for
    /// the socket init makes inside.
    pub async fn socket(&self, request: impl FnOnce(u64) -> Request) -> Result<OwnedFd, SocketFailure> {
        let asked = self.ask_socket(request).await?;
        self.socket_made(asked).await
    }

    /// Sends a `Connect` or `Listen`; `socket_made` waits for the answer.
    pub async fn ask_socket(&self, request: impl FnOnce(u64) -> Request) -> Result<AskedSocket, SocketFailure> {
        let id = self.next_id();
        let rx = self.expect_socket(id).map_err(|e| SocketFailure::Gone(e.to_string()))?;
        self.send(&request(id), &[]).await.map_err(SocketFailure::Send)?;
        Ok(AskedSocket(rx))
    }

    /// The socket init made for an `ask_socket`, or why there is none.
    pub async fn socket_made(&self, asked: AskedSocket) -> Result<OwnedFd, SocketFailure> {
        match asked.0.await {
            Ok(Ok(fd)) => Ok(fd),
            Ok(Err(why)) => Err(SocketFailure::Refused(why)),
            Err(_) => Err(SocketFailure::Gone(self.closed().unwrap_or_default())),
        }
    }

    /// Registers interest in a `Connect`/`Listen` answer before sending it.
    fn expect_socket(&self, id: u64) -> io::Result<oneshot::Receiver<Result<OwnedFd, String>>> {
        let (tx, rx) = oneshot::channel();
        self.register(|w| {
            w.sockets.insert(id, tx);
        })?;
        Ok(rx)
    }

    /// Adds waiters, unless init is already gone (then nothing would answer).
    fn register(&self, add: impl FnOnce(&mut Waiters)) -> io::Result<()> {
        let mut w = self.waiters.lock().map_err(|_| io::Error::other("poisoned"))?;
        if let Some(why) = &w.closed {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, why.clone()));
        }
        add(&mut w);
        Ok(())
    }
}

/// Reads events until init goes away, then fails everything still waiting.
async fn route(fd: Arc<AsyncFd<OwnedFd>>, waiters: Arc<Mutex<Waiters>>) {
    let mut buf = Vec::new();
    let why = loop {
        let mut guard = match fd.readable().await {
            Ok(g) => g,
            Err(e) => break format!("control socket failed: {e}"),
        };
        let msg = match protocol::recv(fd.get_ref().as_raw_fd(), &mut buf, true) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                guard.clear_ready();
                continue;
            }
            // init exited with a request of ours unread (setup failed as a
            // command came in): the socket reports that before the messages
            // still queued, why setup failed among them, and only once.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => continue,
            Err(e) => break format!("control socket failed: {e}"),
            Ok(None) => break "the sandbox's init process exited".to_string(),
            Ok(Some(msg)) => msg,
        };
        let event: Event = match msg.parse() {
            Ok(e) => e,
            Err(e) => break format!("init sent an unreadable message: {e}"),
        };
        let Ok(mut w) = waiters.lock() else { return };
        match event {
            Event::Ready => {
                if let Some(tx) = w.ready.take() {
                    let _ = tx.send(Ok(msg.fds.into_iter().next()));
                }
            }
            Event::SetupFailed { message } => {
                if let Some(tx) = w.ready.take() {
                    let _ = tx.send(Err(message.clone()));
                }
                break message;
            }
            Event::Spawned { id, pid } => {
                if let Some(tx) = w.started.remove(&id) {
                    let _ = tx.send(Ok(msg.cred_pid.unwrap_or(pid)));
                }
            }
            Event::SpawnFailed { id, errno, message } => {
                w.exited.remove(&id);
                if let Some(tx) = w.started.remove(&id) {
                    let _ = tx.send(Err((errno, message)));
                }
            }
            Event::Exited { id, code, signal } => {
                if let Some(tx) = w.exited.remove(&id) {
                    let _ = tx.send(Exit { code, signal });
                }
            }
            Event::Socket { id, error, .. } => {
                if let Some(tx) = w.sockets.remove(&id) {
                    let result = match (error, msg.fds.into_iter().next()) {
                        (None, Some(fd)) => Ok(fd),
                        (Some(e), _) => Err(e),
                        (None, None) => Err("init sent no socket".into()),
                    };
                    let _ = tx.send(result);
                }
            }
        }
    };
    if let Ok(mut w) = waiters.lock() {
        w.closed = Some(why.clone());
        if let Some(tx) = w.ready.take() {
            let _ = tx.send(Err(why.clone()));
        }
        for (_, tx) in w.started.drain() {
            let _ = tx.send(Err((libc::ECHILD, why.clone())));
        }
        // Still-running commands died with the sandbox: killed.
        for (_, tx) in w.exited.drain() {
            let _ = tx.send(Exit { code: None, signal: Some(libc::SIGKILL) });
        }
        w.sockets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

    /// init's setup failed while a request of ours sat unread in its
    /// socket (the first command goes right behind the plan): its exit makes
    /// the socket report a reset first, and why setup failed must still
    /// arrive.
    #[tokio::test]
    async fn why_setup_failed_arrives_behind_a_reset() {
        let (ours, init) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).unwrap();
        protocol::send_raw(ours.as_raw_fd(), b"{\"a request\":\"init never reads\"}", &[]).unwrap();
        let failed = Event::SetupFailed { message: "mount the scratch tmpfs: Permission denied".into() };
        protocol::send(init.as_raw_fd(), &failed, &[]).unwrap();
        drop(init);
        let (_conn, ready) = Connection::new(ours).unwrap();
        let why = ready.await.unwrap().err();
        assert_eq!(why.as_deref(), Some("mount the scratch tmpfs: Permission denied"));
    }
}

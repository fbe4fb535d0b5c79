//! The egress proxy (SPEC §3 "Network", DESIGN "Sockets across the namespace
//! wall"): the only way out of a sandbox. init creates its listening socket
//! inside the sandbox's network namespace and hands the fd over; [`serve`]
//! accepts on it on the host's tokio runtime and dials the outside world
//! itself, after the NET check.
//!
//! One listener speaks both protocols; the first byte decides:
//! - `0x05`: SOCKS5 ([`socks5`]): no authentication, CONNECT only, names
//!   resolved here (ATYP domain, IPv4 and IPv6 accepted);
//! - anything else: HTTP/1.x ([`http_proxy`]): `CONNECT host:port` tunnels and
//!   absolute-form forward requests (`GET http://host/path HTTP/1.1`).
//!
//! Every destination goes through [`policy`]: NET must allow the host and port
//! (the NET line that did is kept), the name is resolved here, never by the
//! client, and a name that resolves only to a loopback, private, link-local,
//! CGNAT, unspecified, multicast or broadcast address is refused unless
//! `network.resolve` maps it. The proxy connects to exactly the address it
//! checked. A refusal is answered in the client's protocol ([`responses`],
//! with the text from [`reasons`]) and reported once through `on_violation`.
//!
//! [`RequestHook`] is where requests are changed before they leave and
//! responses before the sandbox sees them (SECRET placeholders, SPEC §4), one
//! [`Exchange`] per request ([`exchange`]). For the destinations it asks for,
//! the proxy terminates TLS with a certificate from the sandbox's own CA
//! ([`SandboxCa`]), verifies the upstream itself ([`UpstreamTrust`]) and
//! speaks HTTP/1.1 on both sides ([`intercept`]).

mod body;
mod exchange;
mod http_proxy;
mod intercept;
pub mod policy;
pub mod reasons;
mod responses;
mod socks5;
mod tls;
mod tunnel;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::policy::net::{Host, NetPolicy};

pub use policy::ResolveKeyError;
pub use tls::{SandboxCa, TlsError, UpstreamTrust, check_extra_pem};

/// A refused connection, reported once per refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The host as the client named it, normalised (lower case, no trailing
    /// dot; IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// One line for a person: what was refused and what to do about it.
    pub detail: String,
}

/// A destination NET allowed, as the proxy is about to connect to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub host: Host,
    pub port: u16,
    /// The NET line that allowed it, as written in the Sandboxfile.
    pub line: String,
    /// The address connected to (from `network.resolve` or DNS, checked).
    pub addr: SocketAddr,
}

/// The head of a request as it will be sent upstream, for [`Exchange`].
/// `target` is in origin form (`/path?query`). `headers` holds only
/// end-to-end headers: the proxy removes hop-by-hop headers, `Host` and the
/// body framing (`Content-Length`, `Transfer-Encoding`) before the hook runs
/// and writes its own after it, so a hook can neither redirect the request to
/// another virtual host nor break the framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// The head of a response as the client will see it: end-to-end headers only
/// (the proxy writes the framing and `Connection` itself), for [`Exchange`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Rewrites a message body as it streams. The proxy feeds the body's bytes
/// (de-chunked) in order and sends what the rewriter appends to `out`. The
/// rewriter may hold bytes back between calls (a placeholder split across two
/// reads) but must give them all back by `finish`, and must keep the total
/// length: a `Content-Length` body whose length changed is not sent (the
/// connection is closed). SECRET placeholders have the length of the value.
pub trait BodyRewrite: Send {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>);
    fn finish(&mut self, out: &mut Vec<u8>);
}

/// How a request reached the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP: an absolute-form request, or HTTP inside a CONNECT or
    /// SOCKS5 tunnel that was not TLS.
    Plain,
    /// HTTPS whose TLS the proxy terminated ([`RequestHook::intercept`]).
    Tls,
}

/// The seam where requests NET allowed can be changed before they leave, and
/// their responses before the sandbox sees them (SPEC §4: SECRET injection
/// and echo removal). Every method defaults to leaving things as they are.
pub trait RequestHook: Send + Sync {
    /// Whether TLS to `dest` is terminated here (with a certificate from the
    /// sandbox's CA) so that its requests pass through [`RequestHook::exchange`].
    /// Connections it answers `false` for are tunnelled untouched.
    fn intercept(&self, _dest: &Destination) -> bool {
        false
    }
    /// One request and its response, seen as plain HTTP: an absolute-form
    /// request, a request inside an intercepted TLS connection, or plain HTTP
    /// inside a tunnel. `None` leaves the exchange as it is.
    fn exchange(&self, _dest: &Destination, _transport: Transport) -> Option<Box<dyn Exchange>> {
        None
    }
}

/// The rewriting of one request and its response, in this order: the request
/// head, its body, the response head (after the interim 1xx responses), the
/// response body. Each method defaults to leaving things as they are.
pub trait Exchange: Send {
    fn request_head(&mut self, _head: &mut RequestHead) {}
    fn request_body(&mut self) -> Option<Box<dyn BodyRewrite>> {
        None
    }
    /// `head` holds only end-to-end headers: the proxy writes the framing
    /// and `Connection: close` itself. `Err(reason)` withholds the response:
    /// the client gets a 502 whose body is `bun-sandbox: <reason>`, and the
    /// connection closes.
    fn response_head(&mut self, _head: &mut ResponseHead) -> Result<(), String> {
        Ok(())
    }
    fn response_body(&mut self) -> Option<Box<dyn BodyRewrite>> {
        None
    }
}

/// Longer timeouts are cut to this (deadlines are computed by addition).
const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

pub type ViolationFn = Arc<dyn Fn(Violation) + Send + Sync>;

/// Everything one proxy needs. Build it with [`ProxyConfig::new`].
#[derive(Clone)]
pub struct ProxyConfig {
    policy: Arc<NetPolicy>,
    resolve: policy::ResolveMap,
    on_violation: ViolationFn,
    hook: Option<Arc<dyn RequestHook>>,
    /// The CA that signs intercepted hosts' certificates, and what upstreams
    /// are verified with ([`ProxyConfig::intercept_with`]).
    intercept: Option<(Arc<SandboxCa>, Arc<UpstreamTrust>)>,
    request_timeout: Duration,
    connect_timeout: Duration,
    max_connections: usize,
}

impl ProxyConfig {
    /// `resolve` is `network.resolve` (like `curl --resolve`): a key is
    /// `"host"` (every port) or `"host:port"` (that port only; it wins over
    /// `"host"`), matched case-insensitively without a trailing dot, IPv6 in
    /// brackets. The value is used as is, port included: `api.example.com`
    /// -> `127.0.0.1:8443` sends `api.example.com:443` to `127.0.0.1:8443`.
    /// A mapping allows nothing by itself (NET still decides) but is explicit
    /// consent to reach that address even when it is loopback or private.
    pub fn new(
        policy: Arc<NetPolicy>,
        resolve: HashMap<String, SocketAddr>,
        on_violation: ViolationFn,
    ) -> Result<ProxyConfig, ResolveKeyError> {
        Ok(ProxyConfig {
            policy,
            resolve: policy::ResolveMap::new(&resolve)?,
            on_violation,
            hook: None,
            intercept: None,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_connections: 4096,
        })
    }

    /// How long a client may take to send a complete request head (or SOCKS5
    /// handshake), and the longest pause allowed while it sends a request
    /// body. Default 30 s; past it the connection is closed (HTTP: 408 first).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout.clamp(Duration::from_millis(1), MAX_TIMEOUT);
        self
    }

    /// How long name resolution plus connecting upstream may take. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.clamp(Duration::from_millis(1), MAX_TIMEOUT);
        self
    }

    /// At most this many client connections are served at once (each costs
    /// the host process two file descriptors); further ones wait in the
    /// listen backlog. Default 4096.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    pub fn hook(mut self, hook: Arc<dyn RequestHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Lets the proxy terminate TLS for the destinations the hook asks for
    /// ([`RequestHook::intercept`]): the client is shown a certificate from
    /// `ca` (which the sandbox must trust), and the proxy connects to the
    /// upstream with TLS verified by `trust`. Without it, or without a hook,
    /// every CONNECT and SOCKS5 connection is a plain byte tunnel.
    pub fn intercept_with(mut self, ca: Arc<SandboxCa>, trust: Arc<UpstreamTrust>) -> Self {
        self.intercept = Some((ca, trust));
        self
    }

    /// Reports a refusal; a panicking callback is contained.
    fn report(&self, violation: Violation) {
        let on_violation = &self.on_violation;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| on_violation(violation)));
    }
}

/// Serves the proxy on `listener`, a TCP socket already bound and listening
/// (inside the sandbox's network namespace). Must be called within a tokio
/// runtime. The returned task runs until aborted; aborting it also ends every
/// connection it serves.
pub fn serve(listener: OwnedFd, config: ProxyConfig) -> io::Result<JoinHandle<()>> {
    let handle = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
    let listening =
        nix::sys::socket::getsockopt(&listener, nix::sys::socket::sockopt::AcceptConn).map_err(io::Error::from)?;
    if !listening {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the proxy socket is not listening"));
    }
    let std_listener = std::net::TcpListener::from(listener);
    std_listener.set_nonblocking(true)?;
    let listener = {
        let _guard = handle.enter();
        TcpListener::from_std(std_listener)?
    };
    Ok(handle.spawn(accept_loop(listener, Arc::new(config))))
}

async fn accept_loop(listener: TcpListener, config: Arc<ProxyConfig>) {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    // Owned here so that aborting this task aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit,
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                count_panic(done);
                continue;
            }
        };
        let Ok(permit) = permit else { return };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                count_panic(done);
                continue;
            }
        };
        match accepted {
            Ok((stream, _)) => {
                let config = config.clone();
                connections.spawn(async move {
                    handle_connection(stream, &config).await;
                    drop(permit);
                });
            }
            // Out of descriptors or a connection reset before accept: wait a
            // little instead of spinning, then go on.
            Err(e) if is_transient(&e) => tokio::time::sleep(Duration::from_millis(20)).await,
            // The listener itself is broken (closed, not a socket): stop.
            Err(_) => return,
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    matches!(e.kind(), K::ConnectionAborted | K::ConnectionReset | K::Interrupted | K::WouldBlock | K::OutOfMemory)
        || matches!(
            e.raw_os_error(),
            Some(
                libc::EMFILE
                    | libc::ENFILE
                    | libc::ENOBUFS
                    | libc::ENOMEM
                    | libc::EPROTO
                    | libc::EPERM
                    | libc::ETIMEDOUT
            )
        )
}

/// A panic in a connection task ends only that connection (the JoinSet
/// contains it); tests count them, since there should be none.
#[cfg(test)]
static CONNECTION_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_panic(done: Result<(), tokio::task::JoinError>) {
    #[cfg(test)]
    if done.as_ref().is_err_and(|e| e.is_panic()) {
        CONNECTION_PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    drop(done);
}

async fn handle_connection(stream: TcpStream, config: &ProxyConfig) {
    let _ = stream.set_nodelay(true);
    let mut client = body::Buffered::new(stream);
    let first = match tokio::time::timeout(config.request_timeout, client.fill()).await {
        Ok(Ok(n)) if n > 0 => client.pending()[0],
        _ => return,
    };
    if first == socks5::VERSION {
        socks5::serve(client, config).await;
    } else {
        http_proxy::serve(client, config).await;
    }
}

#[cfg(test)]
mod tests;

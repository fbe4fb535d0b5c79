//! Interception of tunnels (SPEC §4, DESIGN "Secrets and TLS"): for the
//! destinations the hook asks for ([`RequestHook::intercept`]), a CONNECT or
//! SOCKS5 tunnel ends here instead of being a byte pipe, so that its requests
//! pass through the hook's [`Exchange`](super::Exchange) like forward ones.
//!
//! The tunnel is already open to the checked address and the client has been
//! told so; what it sends first decides:
//! - a TLS handshake record: TLS is terminated with a certificate for the
//!   destination signed by the sandbox's CA, and the proxy makes its own TLS
//!   connection to the upstream over the same TCP connection, verified by
//!   [`UpstreamTrust`] with the destination's name (SNI) — never with a name
//!   the client chose. An upstream that fails verification is answered with
//!   a 502 inside the client's TLS.
//! - an HTTP request line: served as plain HTTP ([`Transport::Plain`]).
//! - anything else, or an upstream that speaks first (SSH, SMTP): the
//!   tunnel is a byte pipe, as for destinations that are not intercepted.
//!
//! Either way one request is served per connection, with `Connection:
//! close`, as for forward requests; a client opens a new tunnel for the next.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::{TlsAcceptor, TlsConnector, client};

use super::body::{self, Buffered};
use super::exchange::{self, HeadError, Request};
use super::http_proxy::{clip, origin_form};
use super::policy::split_host_port;
use super::tls::{SandboxCa, UpstreamTrust};
use super::{Destination, ProxyConfig, RequestHead, RequestHook, Transport, responses, tunnel};
use crate::policy::net::Host;

/// The first byte of a TLS handshake record (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;
/// The longest method token looked for before a tunnel is judged not HTTP.
const MAX_METHOD: usize = 32;

/// What interception of one destination uses.
pub(crate) struct Interception<'a> {
    ca: &'a SandboxCa,
    trust: &'a UpstreamTrust,
    hook: &'a dyn RequestHook,
}

/// Whether the tunnel to `dest` is intercepted: only with a CA, upstream
/// trust and a hook, and when the hook asks for it. No I/O: the tunnels that
/// are not intercepted start exactly as they would without it.
pub(crate) fn wanted<'a>(config: &'a ProxyConfig, dest: &Destination) -> Option<Interception<'a>> {
    let (Some(hook), Some((ca, trust))) = (&config.hook, &config.intercept) else { return None };
    hook.intercept(dest).then(|| Interception { ca, trust, hook: hook.as_ref() })
}

/// Serves a tunnel to `dest` whose success reply the client has been sent.
/// `client` may already hold bytes the client sent early.
pub(crate) async fn serve(
    mut client: Buffered<TcpStream>,
    upstream: TcpStream,
    dest: &Destination,
    how: Interception<'_>,
    config: &ProxyConfig,
) {
    match sniff(&mut client, &upstream, config).await {
        Sniffed::Tls => tls(client, upstream, dest, &how, config).await,
        Sniffed::Http => {
            let (mut client_read, mut client_write) = exchange::split(client);
            let (mut upstream_read, mut upstream_write) = exchange::split(Buffered::new(upstream));
            let client = (&mut client_read, &mut client_write);
            let upstream = (&mut upstream_read, &mut upstream_write);
            serve_request(client, upstream, dest, Transport::Plain, &how, config).await;
        }
        Sniffed::Other => {
            let (client, early) = client.into_parts();
            tunnel::relay(client, early, upstream).await;
        }
        Sniffed::Gone => {}
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sniffed {
    Tls,
    Http,
    /// Neither: tunnelled as bytes.
    Other,
    /// The client closed, failed or stayed silent past the request timeout.
    Gone,
}

/// What `bytes`, the start of what the client sent, are; `None` until that
/// can be told.
fn classify(bytes: &[u8]) -> Option<Sniffed> {
    if *bytes.first()? == TLS_HANDSHAKE {
        return Some(Sniffed::Tls);
    }
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b' ' if i > 0 => return Some(Sniffed::Http),
            _ if i < MAX_METHOD && is_tchar(b) => {}
            _ => return Some(Sniffed::Other),
        }
    }
    None
}

/// A token character (RFC 9110 §5.6.2), as in a method name.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Waits for the client's first bytes, within the request timeout. An
/// upstream that sends (or closes) before the client has said enough is a
/// protocol where the server speaks first: not for interception.
async fn sniff(client: &mut Buffered<TcpStream>, upstream: &TcpStream, config: &ProxyConfig) -> Sniffed {
    let deadline = Instant::now() + config.request_timeout;
    let mut probe = [0u8; 1];
    loop {
        if let Some(kind) = classify(client.pending()) {
            return kind;
        }
        tokio::select! {
            filled = tokio::time::timeout_at(deadline, client.fill()) => match filled {
                Ok(Ok(0)) if !client.pending().is_empty() => return Sniffed::Other,
                Ok(Ok(0) | Err(_)) | Err(_) => return Sniffed::Gone,
                Ok(Ok(_)) => {}
            },
            _ = upstream.peek(&mut probe) => return Sniffed::Other,
        }
    }
}

/// TLS from the client, terminated here; TLS to the upstream, made here.
async fn tls(
    client: Buffered<TcpStream>,
    upstream: TcpStream,
    dest: &Destination,
    how: &Interception<'_>,
    config: &ProxyConfig,
) {
    // Without a certificate there is nothing to offer the client: close.
    let Ok(server_config) = how.ca.server_config(&dest.host) else { return };
    let (client, early) = client.into_parts();
    let accept = tokio::time::timeout(
        config.request_timeout,
        TlsAcceptor::from(server_config).accept(Rewound { early, at: 0, inner: client }),
    );
    // Both handshakes at once. A client that refuses the certificate (or is
    // not speaking TLS after all, or too slow) ends everything; an upstream
    // that fails is answered once the client's TLS is up.
    let accepted = async {
        match accept.await {
            Ok(Ok(stream)) => Ok(stream),
            _ => Err(()),
        }
    };
    let connected = async { Ok(connect_upstream(upstream, dest, how, config).await) };
    let Ok((client, upstream)) = tokio::try_join!(accepted, connected) else { return };

    let (client_read, mut client_write) = tokio::io::split(client);
    let mut client_read = Buffered::new(client_read);
    match upstream {
        Ok(upstream) => {
            let (upstream_read, mut upstream_write) = tokio::io::split(upstream);
            let mut upstream_read = Buffered::new(upstream_read);
            let client = (&mut client_read, &mut client_write);
            let upstream = (&mut upstream_read, &mut upstream_write);
            serve_request(client, upstream, dest, Transport::Tls, how, config).await;
        }
        Err(message) => {
            // The request is read first: a client still sending it might not
            // read an answer that came before it was done.
            if let Err(HeadError::Closed) = exchange::read_request(&mut client_read, config.request_timeout).await {
                return;
            }
            let answer = responses::text(502, &message);
            responses::send_and_close_halves(client_read.get_mut(), &mut client_write, &answer).await;
        }
    }
}

/// TLS to the upstream over the connection already made, for the name the
/// destination was checked under. `Err` is the body of the client's 502.
async fn connect_upstream(
    upstream: TcpStream,
    dest: &Destination,
    how: &Interception<'_>,
    config: &ProxyConfig,
) -> Result<client::TlsStream<TcpStream>, String> {
    let server = format!("{}:{}", dest.host, dest.port);
    let name = match &dest.host {
        Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
        Host::Name(name) => ServerName::try_from(name.clone())
            .map_err(|_| format!("bun-sandbox: {server}: \"{name}\" cannot be used as a TLS server name\n"))?,
    };
    let connect = TlsConnector::from(how.trust.client_config()).connect(name, upstream);
    match tokio::time::timeout(config.connect_timeout, connect).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) if is_certificate_error(&e) => Err(format!(
            "bun-sandbox: the TLS certificate of {server} is not trusted ({e}); \
             if the server uses a private CA, add it to network.extraCaCerts\n"
        )),
        Ok(Err(e)) => Err(format!("bun-sandbox: could not make a TLS connection to {server} ({e})\n")),
        Err(_) => Err(format!(
            "bun-sandbox: the TLS handshake with {server} did not finish within {:?}\n",
            config.connect_timeout
        )),
    }
}

fn is_certificate_error(e: &io::Error) -> bool {
    let rustls_error = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    matches!(rustls_error, Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented))
}

/// Reads one request from inside the tunnel and serves it through the hook.
async fn serve_request<CR, CW, UR, UW>(
    (client_read, client_write): (&mut Buffered<CR>, &mut CW),
    upstream: (&mut Buffered<UR>, &mut UW),
    dest: &Destination,
    transport: Transport,
    how: &Interception<'_>,
    config: &ProxyConfig,
) where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    UR: AsyncRead + Unpin,
    UW: AsyncWrite + Unpin,
{
    let head = match exchange::read_request(client_read, config.request_timeout).await {
        Ok(head) => head,
        Err(e) => {
            if let Some(answer) = e.response() {
                responses::send_and_close_halves(client_read.get_mut(), client_write, &answer).await;
            }
            return;
        }
    };
    let checked = tunnel_target(&head.target, dest)
        .and_then(|target| Ok((target, body::framing(exchange::header_pairs(&head.headers), true)?)));
    let (target, framing) = match checked {
        Ok(checked) => checked,
        Err(message) => {
            let answer = responses::text(400, &format!("bun-sandbox: {message}\n"));
            return responses::send_and_close_halves(client_read.get_mut(), client_write, &answer).await;
        }
    };
    let default_port = match transport {
        Transport::Plain => 80,
        Transport::Tls => 443,
    };
    let authority =
        if dest.port == default_port { dest.host.to_string() } else { format!("{}:{}", dest.host, dest.port) };
    let hooked = how.hook.exchange(dest, transport);
    let request = Request { head: RequestHead { target, ..head }, framing, authority };
    exchange::run((client_read, client_write), upstream, request, hooked, config.request_timeout).await;
}

/// The origin-form target of a request inside a tunnel to `dest`. Absolute
/// form (which some clients send to anything they think is a proxy) is
/// accepted when it names the tunnel's own host, never another one: the
/// tunnel was checked for `dest` alone.
fn tunnel_target(target: &str, dest: &Destination) -> Result<String, String> {
    if target.starts_with('/') || target == "*" {
        return Ok(target.to_string());
    }
    let elsewhere = || {
        format!(
            "this connection is a tunnel to {}:{}; the request target \"{}\" names another destination",
            dest.host,
            dest.port,
            clip(target)
        )
    };
    let uri: Uri = target.parse().map_err(|_| format!("\"{}\" is not a valid request target", clip(target)))?;
    let web = uri.scheme_str().is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if !web || authority.contains('@') {
        return Err(elsewhere());
    }
    let (host, port) = split_host_port(authority).ok_or_else(elsewhere)?;
    if Host::parse(host).as_ref() != Some(&dest.host) || port.is_some_and(|p| p != dest.port) {
        return Err(elsewhere());
    }
    Ok(origin_form(&uri))
}

/// A stream whose first reads return `early`: bytes already read from it
/// (the start of the ClientHello that told TLS from HTTP).
struct Rewound<S> {
    early: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewound<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.early.len() {
            let n = (this.early.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.early[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewound<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes() {
        assert_eq!(classify(b""), None);
        assert_eq!(classify(b"\x16\x03\x01"), Some(Sniffed::Tls));
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Sniffed::Http));
        assert_eq!(classify(b"M-SEARCH * HTTP/1.1"), Some(Sniffed::Http));
        assert_eq!(classify(b"GE"), None);
        assert_eq!(classify(b" GET"), Some(Sniffed::Other));
        assert_eq!(classify(b"SSH-2.0-x\r\n"), Some(Sniffed::Other));
        assert_eq!(classify(b"\x00\x01"), Some(Sniffed::Other));
        assert_eq!(classify(&[b'A'; MAX_METHOD]), None);
        assert_eq!(classify(&[b'A'; MAX_METHOD + 1]), Some(Sniffed::Other));
    }

    #[test]
    fn targets_inside_a_tunnel() {
        let dest = Destination {
            host: Host::parse("api.example.com").unwrap(),
            port: 443,
            line: "api.example.com".into(),
            addr: "127.0.0.1:443".parse().unwrap(),
        };
        assert_eq!(tunnel_target("/a?b", &dest).unwrap(), "/a?b");
        assert_eq!(tunnel_target("*", &dest).unwrap(), "*");
        assert_eq!(tunnel_target("https://API.example.com./x?y", &dest).unwrap(), "/x?y");
        assert_eq!(tunnel_target("https://api.example.com:443", &dest).unwrap(), "/");
        assert_eq!(tunnel_target("http://api.example.com/", &dest).unwrap(), "/");
        for other in [
            "https://evil.test/x",
            "https://api.example.com:8443/x",
            "https://user@api.example.com/",
            "ftp://api.example.com/",
            "api.example.com:443",
        ] {
            let message = tunnel_target(other, &dest).unwrap_err();
            assert!(message.contains("names another destination"), "{other}: {message}");
        }
    }
}

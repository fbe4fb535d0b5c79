//! The proxy end to end over loopback: a local upstream HTTP server, the
//! proxy on an ordinary 127.0.0.1 listener, and raw clients.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::*;
use crate::policy::net::NetPolicy;

mod tls;

const LIMIT: Duration = Duration::from_secs(20);

// ---------- the upstream: a small HTTP/1.1 echo server ----------

/// Reads more into `buf`; false at end of stream or on error.
async fn read_more<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match s.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// Decodes a chunked body at the start of `buf`; `None` until it is complete.
fn dechunk(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let httparse::Status::Complete((n, size)) = httparse::parse_chunk_size(&buf[pos..]).ok()? else {
            return None;
        };
        pos += n;
        if size == 0 {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let httparse::Status::Complete((n, _)) = httparse::parse_headers(&buf[pos..], &mut headers).ok()? else {
                return None;
            };
            return Some((pos + n, body));
        }
        let end = pos + size as usize;
        if buf.len() < end + 2 {
            return None;
        }
        body.extend_from_slice(&buf[pos..end]);
        pos = end + 2;
    }
}

/// A connection the echo server can end with a reset.
trait Reset {
    fn reset_on_close(&self);
}

impl Reset for TcpStream {
    fn reset_on_close(&self) {
        let _ = self.set_zero_linger();
    }
}

/// Serves requests on one connection until the client closes; it ignores
/// `Connection: close` on purpose, so the proxy must end responses itself.
/// The response body echoes the request; `/chunked*` answers chunked,
/// `/reset` sends part of a body and resets the connection.
async fn echo<S: AsyncRead + AsyncWrite + Unpin + Reset>(mut s: S) {
    let mut buf = Vec::new();
    loop {
        let (n, method, target, headers) = loop {
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut hs);
            if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect();
                break (n, req.method.unwrap().to_string(), req.path.unwrap().to_string(), headers);
            }
            if !read_more(&mut s, &mut buf).await {
                return;
            }
        };
        buf.drain(..n);
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let body = if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
            loop {
                if let Some((n, body)) = dechunk(&buf) {
                    buf.drain(..n);
                    break body;
                }
                if !read_more(&mut s, &mut buf).await {
                    return;
                }
            }
        } else {
            let len: usize = header("content-length").map(|v| v.parse().unwrap()).unwrap_or(0);
            while buf.len() < len {
                if !read_more(&mut s, &mut buf).await {
                    return;
                }
            }
            buf.drain(..len).collect()
        };
        if target == "/reset" {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n0123456789").await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            s.reset_on_close();
            return; // dropped with SO_LINGER 0: a reset
        }
        let mut reply = format!("{method} {target}\nhost: {}\n", header("host").unwrap_or_default());
        for (name, value) in &headers {
            if name.starts_with("x-") || name.starts_with("proxy-") || name == "connection" {
                reply.push_str(&format!("{name}: {value}\n"));
            }
        }
        reply.push('\n');
        let mut reply = reply.into_bytes();
        reply.extend_from_slice(&body);
        let response = if target.starts_with("/chunked") {
            let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nX-Echo: 1\r\n\r\n"
                .to_vec();
            for part in reply.chunks(7) {
                r.extend_from_slice(format!("{:x};ext=1\r\n", part.len()).as_bytes());
                r.extend_from_slice(part);
                r.extend_from_slice(b"\r\n");
            }
            r.extend_from_slice(b"0\r\nx-trailer: yes\r\n\r\n");
            r
        } else {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nKeep-Alive: timeout=5\r\nX-Echo: 1\r\n\r\n",
                reply.len()
            )
            .into_bytes();
            r.extend_from_slice(&reply);
            r
        };
        if s.write_all(&response).await.is_err() {
            return;
        }
    }
}

async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            if let Ok((s, _)) = listener.accept().await {
                tokio::spawn(echo(s));
            }
        }
    });
    addr
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

// ---------- the proxy ----------

struct Proxy {
    addr: SocketAddr,
    violations: Arc<Mutex<Vec<Violation>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    fn violations(&self) -> Vec<Violation> {
        self.violations.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn listening_socket() -> OwnedFd {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(2048).unwrap();
    OwnedFd::from(listener.into_std().unwrap())
}

async fn start_with(
    net: &[&str],
    resolve: &[(&str, SocketAddr)],
    tweak: impl FnOnce(ProxyConfig) -> ProxyConfig,
) -> Proxy {
    let lines: Vec<String> = net.iter().map(|s| s.to_string()).collect();
    let policy = Arc::new(NetPolicy::new(&lines).unwrap());
    let resolve: HashMap<String, SocketAddr> = resolve.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let violations = Arc::new(Mutex::new(Vec::new()));
    let sink = violations.clone();
    let on_violation: ViolationFn = Arc::new(move |v| sink.lock().unwrap().push(v));
    let config = tweak(ProxyConfig::new(policy, resolve, on_violation).unwrap());
    let fd = listening_socket();
    let addr = std::net::TcpListener::from(fd.try_clone().unwrap()).local_addr().unwrap();
    let task = serve(fd, config).unwrap();
    Proxy { addr, violations, task }
}

async fn start(net: &[&str], resolve: &[(&str, SocketAddr)]) -> Proxy {
    start_with(net, resolve, |c| c).await
}

// ---------- clients ----------

/// Everything the peer sends until it closes (or resets: what came before).
async fn read_all<S: AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(LIMIT, s.read(&mut chunk)).await.expect("the proxy did not close in time") {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn send(proxy: &Proxy, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(request).await.unwrap();
    read_all(&mut s).await
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn parse(raw: &[u8]) -> Reply {
    let mut hs = [httparse::EMPTY_HEADER; 64];
    let mut res = httparse::Response::new(&mut hs);
    let n = match res.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("not a response ({other:?}): {:?}", String::from_utf8_lossy(raw)),
    };
    let headers: Vec<(String, String)> = res
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(&raw[n..]).expect("a complete chunked body").1 } else { raw[n..].to_vec() };
    Reply { status: res.code.unwrap(), headers, body: String::from_utf8_lossy(&body).into_owned() }
}

// ---------- HTTP forward ----------

#[tokio::test]
async fn forward_to_an_allowed_host() {
    let up = upstream().await;
    let proxy = start(&["api.example.com"], &[("api.example.com", up)]).await;
    let raw = send(
        &proxy,
        b"GET http://API.example.com/hello?x=1 HTTP/1.1\r\nHost: elsewhere.test\r\nProxy-Connection: keep-alive\r\n\
          Proxy-Authorization: Basic eA==\r\nConnection: keep-alive, x-drop\r\nX-Drop: 1\r\nX-Keep: 2\r\n\r\n",
    )
    .await;
    let reply = parse(&raw);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(reply.header("keep-alive"), None);
    // Origin form, Host from the URL, hop-by-hop headers gone.
    assert_eq!(reply.body, "GET /hello?x=1\nhost: API.example.com\nx-keep: 2\nconnection: close\n\n");
    assert!(proxy.violations().is_empty());
}

#[tokio::test]
async fn forward_streams_request_bodies() {
    let up = upstream().await;
    let proxy = start(&["*.test"], &[("a.test:80", up)]).await;
    let raw = send(&proxy, b"POST http://a.test/p HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world").await;
    assert_eq!(parse(&raw).body, "POST /p\nhost: a.test\nconnection: close\n\nhello world");

    let raw = send(
        &proxy,
        b"PUT http://a.test/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
    )
    .await;
    assert_eq!(parse(&raw).body, "PUT /c\nhost: a.test\nconnection: close\n\nhello world");

    // A large body in pieces, answered with a chunked response.
    let body = vec![b'z'; 300_000];
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(format!("POST http://a.test/chunked HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes())
        .await
        .unwrap();
    for piece in body.chunks(50_000) {
        s.write_all(piece).await.unwrap();
    }
    let reply = parse(&read_all(&mut s).await);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(reply.body.ends_with(&"z".repeat(300_000)));
}

#[tokio::test]
async fn forward_refuses_what_it_cannot_forward_safely() {
    let up = upstream().await;
    let proxy = start(&["a.test"], &[("a.test", up)]).await;
    for (request, expected) in [
        (&b"GET /local HTTP/1.1\r\nHost: a.test\r\n\r\n"[..], "absolute form"),
        (b"GET https://a.test/ HTTP/1.1\r\n\r\n", "CONNECT"),
        (b"GET ftp://a.test/ HTTP/1.1\r\n\r\n", "scheme"),
        (b"GET http://user@a.test/ HTTP/1.1\r\n\r\n", "user information"),
        (b"POST http://a.test/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "both"),
        (b"POST http://a.test/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", "conflicting"),
        (b"POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "chunked"),
        (b"CONNECT a.test HTTP/1.1\r\n\r\n", "port"),
    ] {
        let reply = parse(&send(&proxy, request).await);
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(request));
        assert!(reply.body.contains(expected), "{}", reply.body);
    }
    assert!(proxy.violations().is_empty());
}

// ---------- CONNECT ----------

#[tokio::test]
async fn connect_tunnels_to_an_allowed_host() {
    let up = upstream().await;
    let proxy = start(&["api.example.com:443"], &[("api.example.com", up)]).await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    // The tunnelled request is sent right behind CONNECT, before the answer.
    s.write_all(b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\nGET /t HTTP/1.1\r\nHost: in.test\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("host: in.test") {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(LIMIT, s.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK\r\n"), "{text}");
    assert!(proxy.violations().is_empty());
}

#[tokio::test]
async fn connect_to_a_closed_port_is_502() {
    let closed = closed_port().await;
    let proxy = start(&["api.example.com"], &[("api.example.com", closed)]).await;
    let reply = parse(&send(&proxy, b"CONNECT api.example.com:443 HTTP/1.1\r\n\r\n").await);
    assert_eq!(reply.status, 502);
    assert!(reply.body.contains("could not connect to api.example.com:443"), "{}", reply.body);
    assert!(reply.body.to_lowercase().contains("refused"), "{}", reply.body);
    let reply = parse(&send(&proxy, b"GET http://api.example.com/ HTTP/1.1\r\n\r\n").await);
    assert_eq!(reply.status, 502);
    assert!(proxy.violations().is_empty(), "a failure is not a violation");
}

// ---------- refusals ----------

#[tokio::test]
async fn a_denied_host_gets_403_with_the_net_line() {
    let up = upstream().await;
    let proxy = start(&["api.example.com:443"], &[("api.example.com", up), ("evil.test", up)]).await;

    let reply = parse(&send(&proxy, b"GET http://evil.test/x HTTP/1.1\r\n\r\n").await);
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.body,
        "bun-sandbox: evil.test:80 is not allowed by the Sandboxfile. Add this line to allow it:\n\nNET evil.test\n"
    );
    let reply = parse(&send(&proxy, b"CONNECT EVIL.test.:443 HTTP/1.1\r\n\r\n").await);
    assert_eq!(reply.status, 403);
    assert!(reply.body.ends_with("\n\nNET evil.test\n"), "{}", reply.body);
    // The host is in NET for another port: the hint names the port.
    let reply = parse(&send(&proxy, b"CONNECT api.example.com:8443 HTTP/1.1\r\n\r\n").await);
    assert_eq!(reply.status, 403);
    assert!(reply.body.ends_with("\n\nNET api.example.com:8443\n"), "{}", reply.body);

    let violations = proxy.violations();
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert_eq!((violations[0].host.as_str(), violations[0].port), ("evil.test", 80));
    assert_eq!(
        violations[0].detail,
        "evil.test:80 is not allowed by the Sandboxfile; add \"NET evil.test\" to allow it"
    );
    assert_eq!((violations[1].host.as_str(), violations[1].port), ("evil.test", 443));
    assert_eq!((violations[2].host.as_str(), violations[2].port), ("api.example.com", 8443));
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused() {
    let up = upstream().await;
    let proxy = start(&["localhost"], &[]).await;
    let request = format!("GET http://localhost:{}/ HTTP/1.1\r\n\r\n", up.port());
    let reply = parse(&send(&proxy, request.as_bytes()).await);
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(reply.body.contains("allowed by the Sandboxfile line \"NET localhost\""), "{}", reply.body);
    assert!(reply.body.contains("a loopback address"), "{}", reply.body);
    assert!(reply.body.contains("network.resolve"), "{}", reply.body);
    let violations = proxy.violations();
    assert_eq!(violations.len(), 1);
    assert_eq!((violations[0].host.as_str(), violations[0].port), ("localhost", up.port()));
    assert!(violations[0].detail.contains("loopback"), "{}", violations[0].detail);

    // Mapped explicitly, the same name goes through.
    let proxy = start(&["localhost"], &[("localhost", up)]).await;
    assert_eq!(parse(&send(&proxy, request.as_bytes()).await).status, 200);
    assert!(proxy.violations().is_empty());
}

#[tokio::test]
async fn ip_literals_need_a_net_line_of_their_own() {
    let up = upstream().await;
    let request = format!("GET http://127.0.0.1:{}/ip HTTP/1.1\r\n\r\n", up.port());

    let proxy = start(&["*", "api.example.com"], &[]).await;
    let reply = parse(&send(&proxy, request.as_bytes()).await);
    assert_eq!(reply.status, 403);
    assert!(reply.body.contains("an IP address is allowed only when a NET line lists it"), "{}", reply.body);
    assert!(reply.body.ends_with("\n\nNET 127.0.0.1\n"), "{}", reply.body);
    assert_eq!(proxy.violations()[0].host, "127.0.0.1");

    // Listed literally: explicit consent, even for loopback.
    let proxy = start(&["127.0.0.1"], &[]).await;
    let reply = parse(&send(&proxy, request.as_bytes()).await);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.starts_with("GET /ip\n"));

    let proxy = start(&["api.example.com"], &[]).await;
    let reply = parse(&send(&proxy, b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n").await);
    assert_eq!(reply.status, 403);
    assert!(reply.body.ends_with("\n\nNET [::1]\n"), "{}", reply.body);
    assert_eq!(proxy.violations()[0].host, "::1");
}

// ---------- SOCKS5 ----------

/// Greets, sends a request with `command` and the address bytes (ATYP
/// first), returns the stream and the reply code.
async fn socks(proxy: &Proxy, command: u8, address: &[u8], port: u16) -> (TcpStream, u8) {
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(&[5, 2, 0x02, 0x00]).await.unwrap();
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await.unwrap();
    assert_eq!(choice, [5, 0]);
    let mut request = vec![5, command, 0];
    request.extend_from_slice(address);
    request.extend_from_slice(&port.to_be_bytes());
    s.write_all(&request).await.unwrap();
    let mut reply = [0u8; 10];
    tokio::time::timeout(LIMIT, s.read_exact(&mut reply)).await.unwrap().unwrap();
    assert_eq!(&reply[..4], &[5, reply[1], 0, 1]);
    (s, reply[1])
}

fn domain(name: &str) -> Vec<u8> {
    let mut a = vec![3, name.len() as u8];
    a.extend_from_slice(name.as_bytes());
    a
}

#[tokio::test]
async fn socks5_connects_by_name() {
    let up = upstream().await;
    let proxy = start(&["api.example.com"], &[("api.example.com", up)]).await;
    let (mut s, code) = socks(&proxy, 1, &domain("api.example.com"), 443).await;
    assert_eq!(code, 0);
    s.write_all(b"GET /s HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 0\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("host: api.example.com\n") {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(LIMIT, s.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0);
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(proxy.violations().is_empty());
}

#[tokio::test]
async fn socks5_refusal_codes() {
    let up = upstream().await;
    let closed = closed_port().await;
    let proxy =
        start(&["api.example.com", "down.test", "localhost"], &[("api.example.com", up), ("down.test", closed)]).await;
    // Not in NET: 0x02, reported.
    assert_eq!(socks(&proxy, 1, &domain("evil.test"), 443).await.1, 0x02);
    // An IPv4 or IPv6 address NET does not list: 0x02.
    assert_eq!(socks(&proxy, 1, &[1, 127, 0, 0, 1], up.port()).await.1, 0x02);
    let mut v6 = vec![4];
    v6.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    assert_eq!(socks(&proxy, 1, &v6, 443).await.1, 0x02);
    // A name that resolves to loopback: 0x02.
    assert_eq!(socks(&proxy, 1, &domain("localhost"), up.port()).await.1, 0x02);
    // BIND and UDP ASSOCIATE: command not supported; unknown address type.
    assert_eq!(socks(&proxy, 2, &domain("api.example.com"), 443).await.1, 0x07);
    assert_eq!(socks(&proxy, 3, &domain("api.example.com"), 443).await.1, 0x07);
    assert_eq!(socks(&proxy, 1, &[9, 0, 0, 0, 0], 443).await.1, 0x08);
    // Allowed but closed: connection refused.
    assert_eq!(socks(&proxy, 1, &domain("down.test"), 443).await.1, 0x05);

    let hosts: Vec<(String, u16)> = proxy.violations().into_iter().map(|v| (v.host, v.port)).collect();
    assert_eq!(
        hosts,
        [
            ("evil.test".to_string(), 443),
            ("127.0.0.1".to_string(), up.port()),
            ("::1".to_string(), 443),
            ("localhost".to_string(), up.port())
        ]
    );

    // Only username/password offered: no acceptable method.
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(&[5, 1, 0x02]).await.unwrap();
    assert_eq!(read_all(&mut s).await, [5, 0xff]);
}

// ---------- hostile and broken clients and upstreams ----------

#[tokio::test]
async fn garbage_gets_400() {
    let proxy = start(&["a.test"], &[]).await;
    for garbage in [&b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..], b"hello\r\n\r\n", b"GET\0 / HTTP/1.1\r\n\r\n"]
    {
        let reply = parse(&send(&proxy, garbage).await);
        assert_eq!(reply.status, 400);
        assert!(reply.body.starts_with("bun-sandbox: not an HTTP request"), "{}", reply.body);
    }
    // A client that connects and closes: nothing to answer.
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.shutdown().await.unwrap();
    assert!(read_all(&mut s).await.is_empty());
}

#[tokio::test]
async fn an_oversized_head_gets_431() {
    let proxy = start(&["a.test"], &[]).await;
    let mut request = b"GET http://a.test/ HTTP/1.1\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 70 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    let reply = parse(&send(&proxy, &request).await);
    assert_eq!(reply.status, 431);

    let mut request = b"GET http://a.test/".to_vec();
    request.extend(std::iter::repeat_n(b'a', 70 * 1024));
    let reply = parse(&send(&proxy, &request).await);
    assert_eq!(reply.status, 431);

    let mut request = b"GET http://a.test/ HTTP/1.1\r\n".to_vec();
    for i in 0..200 {
        request.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    assert_eq!(parse(&send(&proxy, &request).await).status, 431);
}

#[tokio::test]
async fn a_slow_client_is_closed_after_the_timeout() {
    let up = upstream().await;
    let proxy = start_with(&["a.test"], &[("a.test", up)], |c| c.request_timeout(Duration::from_millis(300))).await;
    let started = tokio::time::Instant::now();
    let raw = send(&proxy, b"GET http://a.test/ HTTP/1.1\r\nX-Never: ").await;
    assert_eq!(parse(&raw).status, 408);
    assert!(started.elapsed() < Duration::from_secs(5));

    // Silent from the start: closed without a word.
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    assert!(read_all(&mut s).await.is_empty());

    // A body that stalls half way: the connection is closed.
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"POST http://a.test/ HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").await.unwrap();
    let raw = read_all(&mut s).await;
    assert!(raw.is_empty(), "{:?}", String::from_utf8_lossy(&raw));

    // A SOCKS5 handshake that stops half way.
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(&[5, 1]).await.unwrap();
    assert!(read_all(&mut s).await.is_empty());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn an_upstream_reset_mid_body_closes_only_that_connection() {
    let up = upstream().await;
    let proxy = start(&["a.test"], &[("a.test", up)]).await;
    let mut slow = TcpStream::connect(proxy.addr).await.unwrap();
    slow.write_all(b"POST http://a.test/slow HTTP/1.1\r\nContent-Length: 5\r\n\r\nab").await.unwrap();

    let raw = send(&proxy, b"GET http://a.test/reset HTTP/1.1\r\n\r\n").await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n0123456789"), "{text}");

    // The other connection is still being served, and new ones are too.
    slow.write_all(b"cde").await.unwrap();
    assert!(parse(&read_all(&mut slow).await).body.ends_with("\n\nabcde"));
    assert_eq!(parse(&send(&proxy, b"GET http://a.test/after HTTP/1.1\r\n\r\n").await).status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_connections() {
    const N: usize = 1000;
    raise_fd_limit(8 * N as u64);
    let up = upstream().await;
    let proxy = start(&["api.example.com"], &[("api.example.com", up)]).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..N {
        let barrier = barrier.clone();
        let addr = proxy.addr;
        clients.spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            // Every connection is open before any request is sent.
            barrier.wait().await;
            let request = format!("GET http://api.example.com/n{i} HTTP/1.1\r\n\r\n");
            s.write_all(request.as_bytes()).await.unwrap();
            let reply = parse(&read_all(&mut s).await);
            assert_eq!(reply.status, 200);
            assert!(reply.body.starts_with(&format!("GET /n{i}\n")));
        });
    }
    let done = tokio::time::timeout(Duration::from_secs(60), async {
        let mut done = 0;
        while let Some(result) = clients.join_next().await {
            result.unwrap();
            done += 1;
        }
        done
    })
    .await
    .unwrap();
    assert_eq!(done, N);
}

fn raise_fd_limit(want: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < want
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, want.min(hard), hard);
    }
}

// ---------- the seam for SECRET ----------

/// Replaces `from` with `to` (same length) in a stream, across reads.
struct Replace {
    from: &'static [u8],
    to: &'static [u8],
    carry: Vec<u8>,
}

impl BodyRewrite for Replace {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.carry.extend_from_slice(input);
        let mut i = 0;
        while i + self.from.len() <= self.carry.len() {
            if &self.carry[i..i + self.from.len()] == self.from {
                self.carry[i..i + self.from.len()].copy_from_slice(self.to);
                i += self.from.len();
            } else {
                i += 1;
            }
        }
        let keep = (self.from.len() - 1).min(self.carry.len());
        let emit = self.carry.len() - keep;
        out.extend(self.carry.drain(..emit));
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.carry);
    }
}

/// The hook of the tests: replaces PLACEHOLDER1 with real-value-1 in request
/// headers and bodies; for targets containing "mask", replaces real-value-1
/// with `#` in response bodies; withholds the responses to "/withhold*";
/// and tells in an `X-Hooked` response header which response headers it saw.
/// It intercepts the hosts in `intercepted`.
struct Inject {
    seen: Arc<Mutex<Vec<String>>>,
    intercepted: Vec<&'static str>,
}

impl Inject {
    fn new(intercepted: &[&'static str]) -> Arc<Inject> {
        Arc::new(Inject { seen: Arc::default(), intercepted: intercepted.to_vec() })
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl RequestHook for Inject {
    fn intercept(&self, dest: &Destination) -> bool {
        self.intercepted.contains(&dest.host.to_string().as_str())
    }

    fn exchange(&self, dest: &Destination, transport: Transport) -> Option<Box<dyn Exchange>> {
        let label = format!("{}:{} via {} {transport:?}", dest.host, dest.port, dest.line);
        Some(Box::new(InjectExchange { label, target: String::new(), seen: self.seen.clone() }))
    }
}

struct InjectExchange {
    label: String,
    target: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Exchange for InjectExchange {
    fn request_head(&mut self, head: &mut RequestHead) {
        self.seen.lock().unwrap().push(format!("{} -> {}", self.label, head.target));
        self.target = head.target.clone();
        for (_, value) in head.headers.iter_mut() {
            if value == b"PLACEHOLDER1" {
                *value = b"real-value-1".to_vec();
            }
        }
    }

    fn request_body(&mut self) -> Option<Box<dyn BodyRewrite>> {
        Some(Box::new(Replace { from: b"PLACEHOLDER1", to: b"real-value-1", carry: Vec::new() }))
    }

    fn response_head(&mut self, head: &mut ResponseHead) -> Result<(), String> {
        if self.target.starts_with("/withhold") {
            return Err("the response would show a secret".into());
        }
        let names: Vec<String> = head.headers.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
        head.headers.push(("X-Hooked".into(), names.join(",").into_bytes()));
        Ok(())
    }

    fn response_body(&mut self) -> Option<Box<dyn BodyRewrite>> {
        let mask = self.target.contains("mask");
        mask.then(|| Box::new(Replace { from: b"real-value-1", to: b"############", carry: Vec::new() }) as _)
    }
}

#[tokio::test]
async fn a_hook_rewrites_heads_and_bodies() {
    let up = upstream().await;
    let hook = Inject::new(&[]);
    let with_hook = hook.clone();
    let proxy = start_with(&["*.example.com"], &[("api.example.com", up)], move |c| c.hook(with_hook)).await;

    let raw = send(
        &proxy,
        b"POST http://api.example.com/k HTTP/1.1\r\nX-Key: PLACEHOLDER1\r\nTransfer-Encoding: chunked\r\n\r\n\
          8\r\nk=PLACEH\r\n8\r\nOLDER1;x\r\n0\r\n\r\n",
    )
    .await;
    let reply = parse(&raw);
    assert_eq!(
        reply.body,
        "POST /k\nhost: api.example.com\nx-key: real-value-1\nconnection: close\n\nk=real-value-1;x"
    );

    let raw = send(&proxy, b"POST http://api.example.com/l HTTP/1.1\r\nContent-Length: 14\r\n\r\nPLACEHOLDER1!!").await;
    assert!(parse(&raw).body.ends_with("\n\nreal-value-1!!"));
    assert_eq!(
        hook.seen(),
        ["api.example.com:80 via *.example.com Plain -> /k", "api.example.com:80 via *.example.com Plain -> /l"]
    );
}

#[tokio::test]
async fn a_hook_rewrites_and_withholds_responses() {
    let up = upstream().await;
    let hook = Inject::new(&[]);
    let with_hook = hook.clone();
    let proxy = start_with(&["*.example.com"], &[("api.example.com", up)], move |c| c.hook(with_hook)).await;

    // A Content-Length response: the hook sees only end-to-end headers.
    let raw =
        send(&proxy, b"POST http://api.example.com/mask HTTP/1.1\r\nContent-Length: 14\r\n\r\nPLACEHOLDER1!!").await;
    let reply = parse(&raw);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-hooked"), Some("x-echo"));
    assert_eq!(reply.header("keep-alive"), None);
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(reply.header("content-length"), Some(reply.body.len().to_string().as_str()));
    assert_eq!(reply.body, "POST /mask\nhost: api.example.com\nconnection: close\n\n############!!");

    // A chunked response, rewritten across chunk boundaries (7-byte chunks).
    let raw = send(
        &proxy,
        b"GET http://api.example.com/chunked/mask HTTP/1.1\r\nX-Key: PLACEHOLDER1\r\nConnection: x-gone\r\nX-Gone: 1\r\n\r\n",
    )
    .await;
    let reply = parse(&raw);
    assert_eq!(reply.header("x-hooked"), Some("x-echo"));
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
    assert_eq!(reply.body, "GET /chunked/mask\nhost: api.example.com\nx-key: ############\nconnection: close\n\n");

    // Withheld: a 502 with the hook's reason, whatever the upstream said.
    let reply = parse(&send(&proxy, b"GET http://api.example.com/withhold HTTP/1.1\r\n\r\n").await);
    assert_eq!(reply.status, 502);
    assert_eq!(reply.body, "bun-sandbox: the response would show a secret\n");
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(proxy.violations().is_empty());
}

// ---------- serve() itself ----------

#[test]
fn serve_needs_a_runtime_and_a_listening_socket() {
    let config = || {
        let on_violation: ViolationFn = Arc::new(|_| {});
        ProxyConfig::new(Arc::new(NetPolicy::default()), HashMap::new(), on_violation).unwrap()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(serve(OwnedFd::from(listener), config()).is_err(), "outside a runtime");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _guard = runtime.enter();
    let unconnected = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(serve(OwnedFd::from(unconnected), config()).is_err(), "not a listening socket");

    let bad = HashMap::from([("not a host".to_string(), "127.0.0.1:1".parse().unwrap())]);
    let on_violation: ViolationFn = Arc::new(|_| {});
    let error = ProxyConfig::new(Arc::new(NetPolicy::default()), bad, on_violation).err().unwrap();
    assert!(error.to_string().starts_with("network.resolve key \"not a host\""));
}

#[tokio::test]
async fn no_net_lines_means_no_network() {
    let up = upstream().await;
    let proxy = start(&[], &[("api.example.com", up)]).await;
    let reply = parse(&send(&proxy, b"GET http://api.example.com/ HTTP/1.1\r\n\r\n").await);
    assert_eq!(reply.status, 403);
    assert_eq!(proxy.violations().len(), 1);
}

// ---------- any input ----------

/// Random bytes and mangled requests of every kind: each connection ends
/// (the client half-closes, so nothing waits for a timeout), no connection
/// task panics, and the proxy still serves afterwards.
#[test]
fn any_input_ends_cleanly() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (proxy, up) = runtime.block_on(async {
        let up = upstream().await;
        let proxy = start_with(&["api.example.com", "127.0.0.1"], &[("api.example.com", up)], |c| {
            c.request_timeout(Duration::from_secs(5)).connect_timeout(Duration::from_secs(2))
        })
        .await;
        (proxy, up)
    });
    let templates: Vec<Vec<u8>> = vec![
        b"GET http://api.example.com/a HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"POST http://api.example.com/b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
        b"POST http://api.example.com/chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            .to_vec(),
        b"CONNECT api.example.com:443 HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n".to_vec(),
        format!("GET http://127.0.0.1:{}/ip HTTP/1.0\r\n\r\n", up.port()).into_bytes(),
        [&[5u8, 1, 0, 5, 1, 0, 3, 15][..], b"api.example.com", &[1, 187]].concat(),
        vec![5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80],
    ];
    let mangled = (0..templates.len(), any::<usize>(), prop::collection::vec((any::<usize>(), any::<u8>()), 0..4))
        .prop_map(move |(t, cut, flips)| {
            let mut bytes = templates[t].clone();
            for (at, byte) in flips {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            bytes
        });
    let input = prop_oneof![prop::collection::vec(any::<u8>(), 0..600), mangled];
    let mut runner = TestRunner::new(Config { cases: 400, failure_persistence: None, ..Config::default() });
    runner
        .run(&input, |bytes| {
            runtime.block_on(async {
                let mut s = TcpStream::connect(proxy.addr).await.unwrap();
                let _ = s.write_all(&bytes).await;
                let _ = s.shutdown().await;
                read_all(&mut s).await;
            });
            Ok(())
        })
        .unwrap();
    runtime.block_on(async {
        let reply = parse(&send(&proxy, b"GET http://api.example.com/still HTTP/1.1\r\n\r\n").await);
        assert_eq!(reply.status, 200);
    });
    assert_eq!(CONNECTION_PANICS.load(std::sync::atomic::Ordering::Relaxed), 0);
}

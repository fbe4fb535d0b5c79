//! TLS interception end to end: a test CA and TLS upstreams made here with
//! rcgen, the proxy with a [`SandboxCa`] and an [`UpstreamTrust`] that
//! trusts the test CA, and rustls clients that trust the sandbox's CA.

use std::io;
use std::net::IpAddr;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

use super::*;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Reset for server::TlsStream<TcpStream> {
    fn reset_on_close(&self) {
        self.get_ref().0.reset_on_close();
    }
}

/// The upstreams' CA (what `network.extraCaCerts` would hold) and the
/// server configuration of an upstream it vouches for.
struct TestPki {
    ca_pem: String,
    upstream: Arc<ServerConfig>,
}

fn server_config(cert: CertificateDer<'static>, key: &KeyPair) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    Arc::new(config)
}

fn test_pki() -> TestPki {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, "bun-sandbox test upstream CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_cert = params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(params, ca_key);
    let names = ["api.example.com", "plain.example.com", "127.0.0.1"].map(String::from).to_vec();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = CertificateParams::new(names).unwrap().signed_by(&key, &issuer).unwrap();
    TestPki { ca_pem: ca_cert.pem(), upstream: server_config(cert.der().clone(), &key) }
}

/// An upstream with a certificate nobody vouches for.
fn self_signed(name: &str) -> Arc<ServerConfig> {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    server_config(certified.cert.der().clone(), &certified.signing_key)
}

/// The echo server behind TLS.
async fn tls_upstream(config: Arc<ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            if let Ok((s, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(s).await {
                        echo(tls).await;
                    }
                });
            }
        }
    });
    addr
}

fn client_config(root_pem: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

fn name(host: &str) -> ServerName<'static> {
    match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_string()).unwrap(),
    }
}

/// Opens a CONNECT tunnel and reads the proxy's answer.
async fn tunnel(proxy: &Proxy, authority: &str) -> TcpStream {
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(LIMIT, s.read(&mut byte)).await.unwrap().unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&answer));
        answer.push(byte[0]);
    }
    assert_eq!(answer, responses::CONNECTED);
    s
}

async fn handshake(s: TcpStream, root_pem: &str, host: &str) -> io::Result<client::TlsStream<TcpStream>> {
    let connect = TlsConnector::from(client_config(root_pem)).connect(name(host), s);
    tokio::time::timeout(LIMIT, connect).await.expect("the handshake did not end in time")
}

/// Sends one request over TLS and reads until the proxy closes.
async fn exchange_over(mut tls: client::TlsStream<TcpStream>, request: &[u8]) -> Reply {
    tls.write_all(request).await.unwrap();
    parse(&read_all(&mut tls).await)
}

/// Reads one response with a Content-Length body from a connection that
/// stays open (an untouched tunnel to the keep-alive echo server).
async fn read_one<S: AsyncRead + Unpin>(s: &mut S) -> Reply {
    let mut buf = Vec::new();
    loop {
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut res = httparse::Response::new(&mut hs);
        if let Ok(httparse::Status::Complete(n)) = res.parse(&buf) {
            let len = res.headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length")).unwrap();
            let len: usize = std::str::from_utf8(len.value).unwrap().parse().unwrap();
            if buf.len() >= n + len {
                return parse(&buf);
            }
        }
        let more = tokio::time::timeout(LIMIT, read_more(s, &mut buf)).await.unwrap();
        assert!(more, "closed early: {:?}", String::from_utf8_lossy(&buf));
    }
}

struct Setup {
    pki: TestPki,
    ca: Arc<SandboxCa>,
    hook: Arc<Inject>,
    proxy: Proxy,
}

/// A proxy that intercepts `intercepted`, with the sandbox CA and trust in
/// the test CA; `resolve` points names at the test's upstreams.
async fn setup(net: &[&str], resolve: &[(&str, SocketAddr)], intercepted: &[&'static str], pki: TestPki) -> Setup {
    let ca = Arc::new(SandboxCa::generate().unwrap());
    let trust = Arc::new(UpstreamTrust::new(Some(&pki.ca_pem)).unwrap());
    let hook = Inject::new(intercepted);
    let (with_ca, with_hook) = (ca.clone(), hook.clone());
    let proxy = start_with(net, resolve, move |c| c.hook(with_hook).intercept_with(with_ca, trust)).await;
    Setup { pki, ca, hook, proxy }
}

#[tokio::test]
async fn connect_tls_is_intercepted_and_rewritten_both_ways() {
    let pki = test_pki();
    let up = tls_upstream(pki.upstream.clone()).await;
    let Setup { ca, hook, proxy, .. } =
        setup(&["*.example.com"], &[("api.example.com", up)], &["api.example.com"], pki).await;
    let ca_pem = ca.cert_pem();

    let tls = handshake(tunnel(&proxy, "api.example.com:443").await, &ca_pem, "api.example.com").await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]), "h2 is not offered");
    let reply = exchange_over(
        tls,
        b"POST /k HTTP/1.1\r\nHost: elsewhere.test\r\nX-Key: PLACEHOLDER1\r\nConnection: keep-alive\r\n\
          Content-Length: 14\r\n\r\nPLACEHOLDER1!!",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(reply.header("x-hooked"), Some("x-echo"));
    // Host is the checked destination's; the placeholder was replaced.
    assert_eq!(reply.body, "POST /k\nhost: api.example.com\nx-key: real-value-1\nconnection: close\n\nreal-value-1!!");

    // The response body is rewritten before the client sees it (chunked).
    let tls = handshake(tunnel(&proxy, "api.example.com:443").await, &ca_pem, "api.example.com").await.unwrap();
    let reply = exchange_over(tls, b"GET /chunked/mask HTTP/1.1\r\nX-Key: PLACEHOLDER1\r\n\r\n").await;
    assert_eq!(reply.body, "GET /chunked/mask\nhost: api.example.com\nx-key: ############\nconnection: close\n\n");

    // A withheld response: a 502 inside TLS.
    let tls = handshake(tunnel(&proxy, "api.example.com:443").await, &ca_pem, "api.example.com").await.unwrap();
    let reply = exchange_over(tls, b"GET /withhold HTTP/1.1\r\n\r\n").await;
    assert_eq!((reply.status, reply.body.as_str()), (502, "bun-sandbox: the response would show a secret\n"));

    // Absolute form inside the tunnel: the same host only.
    let tls = handshake(tunnel(&proxy, "api.example.com:443").await, &ca_pem, "api.example.com").await.unwrap();
    let reply = exchange_over(tls, b"GET https://api.example.com/abs HTTP/1.1\r\n\r\n").await;
    assert!(reply.body.starts_with("GET /abs\nhost: api.example.com\n"), "{}", reply.body);
    let tls = handshake(tunnel(&proxy, "api.example.com:443").await, &ca_pem, "api.example.com").await.unwrap();
    let reply = exchange_over(tls, b"GET https://evil.test/x HTTP/1.1\r\n\r\n").await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("tunnel to api.example.com:443"), "{}", reply.body);

    let via = "api.example.com:443 via *.example.com Tls";
    assert_eq!(
        hook.seen(),
        [
            format!("{via} -> /k"),
            format!("{via} -> /chunked/mask"),
            format!("{via} -> /withhold"),
            format!("{via} -> /abs")
        ]
    );
    assert!(proxy.violations().is_empty());
}

#[tokio::test]
async fn socks5_tls_is_intercepted() {
    let pki = test_pki();
    let up = tls_upstream(pki.upstream.clone()).await;
    let Setup { ca, hook, proxy, .. } =
        setup(&["api.example.com"], &[("api.example.com", up)], &["api.example.com"], pki).await;
    let (s, code) = socks(&proxy, 1, &domain("api.example.com"), 443).await;
    assert_eq!(code, 0);
    let tls = handshake(s, &ca.cert_pem(), "api.example.com").await.unwrap();
    let reply = exchange_over(
        tls,
        b"PUT /s HTTP/1.1\r\nX-Key: PLACEHOLDER1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nPLACEH\r\n6\r\nOLDER1\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(reply.body, "PUT /s\nhost: api.example.com\nx-key: real-value-1\nconnection: close\n\nreal-value-1");
    assert_eq!(hook.seen(), ["api.example.com:443 via api.example.com Tls -> /s"]);
}

#[tokio::test]
async fn a_host_the_hook_does_not_intercept_is_tunnelled_untouched() {
    let pki = test_pki();
    let up = tls_upstream(pki.upstream.clone()).await;
    let Setup { pki, ca, hook, proxy } =
        setup(&["*.example.com"], &[("plain.example.com", up)], &["api.example.com"], pki).await;

    // The upstream's own certificate: the test CA verifies it...
    let mut tls =
        handshake(tunnel(&proxy, "plain.example.com:443").await, &pki.ca_pem, "plain.example.com").await.unwrap();
    tls.write_all(b"GET /u HTTP/1.1\r\nHost: mine.test\r\nX-Key: PLACEHOLDER1\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let reply = read_one(&mut tls).await;
    // ...and nothing was changed: the client's Host, no Connection: close.
    assert_eq!(reply.body, "GET /u\nhost: mine.test\nx-key: PLACEHOLDER1\n\n");
    assert_eq!(reply.header("keep-alive"), Some("timeout=5"));

    // ...and the sandbox CA does not.
    let refused = handshake(tunnel(&proxy, "plain.example.com:443").await, &ca.cert_pem(), "plain.example.com").await;
    assert!(refused.unwrap_err().to_string().contains("UnknownIssuer"));
    assert!(hook.seen().is_empty());
}

#[tokio::test]
async fn an_untrusted_upstream_gets_the_client_a_502_inside_tls() {
    let pki = test_pki();
    let stranger = tls_upstream(self_signed("bad.example.com")).await;
    let Setup { ca, hook, proxy, .. } =
        setup(&["*.example.com"], &[("bad.example.com", stranger)], &["bad.example.com"], pki).await;
    let tls = handshake(tunnel(&proxy, "bad.example.com:443").await, &ca.cert_pem(), "bad.example.com").await.unwrap();
    let reply = exchange_over(tls, b"GET / HTTP/1.1\r\nX-Key: PLACEHOLDER1\r\n\r\n").await;
    assert_eq!(reply.status, 502);
    assert!(reply.body.starts_with("bun-sandbox: the TLS certificate of bad.example.com:443 is not trusted ("));
    assert!(reply.body.contains("UnknownIssuer"), "{}", reply.body);
    assert!(reply.body.contains("network.extraCaCerts"), "{}", reply.body);
    assert!(hook.seen().is_empty(), "nothing was sent");
    assert!(proxy.violations().is_empty(), "a failure is not a violation");
}

#[tokio::test]
async fn plain_http_inside_an_intercepted_tunnel_goes_through_the_hook() {
    let up = upstream().await;
    let Setup { hook, proxy, .. } =
        setup(&["api.example.com"], &[("api.example.com", up)], &["api.example.com"], test_pki()).await;

    // The request right behind CONNECT, before the answer.
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        b"CONNECT api.example.com:80 HTTP/1.1\r\n\r\nGET /p HTTP/1.1\r\nHost: x.test\r\nX-Key: PLACEHOLDER1\r\n\r\n",
    )
    .await
    .unwrap();
    let raw = read_all(&mut s).await;
    let raw = raw.strip_prefix(responses::CONNECTED).expect("the CONNECT answer first");
    let reply = parse(raw);
    assert_eq!(reply.body, "GET /p\nhost: api.example.com\nx-key: real-value-1\nconnection: close\n\n");

    // Absolute form naming another host is refused.
    let mut s = tunnel(&proxy, "api.example.com:80").await;
    s.write_all(b"GET http://evil.test/ HTTP/1.1\r\n\r\n").await.unwrap();
    let reply = parse(&read_all(&mut s).await);
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("names another destination"), "{}", reply.body);
    assert_eq!(hook.seen(), ["api.example.com:80 via api.example.com Plain -> /p"]);
}

#[tokio::test]
async fn an_ip_literal_gets_a_certificate_for_the_ip() {
    let pki = test_pki();
    let up = tls_upstream(pki.upstream.clone()).await;
    let Setup { ca, hook, proxy, .. } = setup(&["127.0.0.1"], &[], &["127.0.0.1"], pki).await;
    let authority = format!("127.0.0.1:{}", up.port());
    let tls = handshake(tunnel(&proxy, &authority).await, &ca.cert_pem(), "127.0.0.1").await.unwrap();
    let reply = exchange_over(tls, b"GET /ip HTTP/1.1\r\n\r\n").await;
    // The upstream was verified for its IP address too; Host has the port.
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.starts_with(&format!("GET /ip\nhost: {authority}\n")), "{}", reply.body);
    assert_eq!(hook.seen(), [format!("{authority} via 127.0.0.1 Tls -> /ip")]);
}

/// A handshake between a client trusting `ca` and the configuration the CA
/// gives for `host`, in memory.
async fn leaf_handshake(ca: &SandboxCa, host: &str, expect: &str) -> io::Result<()> {
    let server = ca.server_config(&crate::policy::net::Host::parse(host).unwrap()).unwrap();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let accept = TlsAcceptor::from(server).accept(a);
    let connect = TlsConnector::from(client_config(&ca.cert_pem())).connect(name(expect), b);
    let (_, connected) = tokio::join!(accept, connect);
    connected.map(drop)
}

#[tokio::test]
async fn leaf_certificates_name_exactly_their_host() {
    let ca = SandboxCa::generate().unwrap();
    leaf_handshake(&ca, "API.example.com.", "api.example.com").await.unwrap();
    let wrong = leaf_handshake(&ca, "api.example.com", "other.example.com").await.unwrap_err();
    assert!(wrong.to_string().contains("not valid for name"), "{wrong}");
    leaf_handshake(&ca, "127.0.0.1", "127.0.0.1").await.unwrap();
    leaf_handshake(&ca, "[::1]", "::1").await.unwrap();
    assert!(leaf_handshake(&ca, "127.0.0.1", "127.0.0.2").await.is_err());
    // Another sandbox's CA is not trusted for this one's certificates.
    let other = SandboxCa::generate().unwrap();
    let server = ca.server_config(&crate::policy::net::Host::parse("api.example.com").unwrap()).unwrap();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (_, connected) = tokio::join!(
        TlsAcceptor::from(server).accept(a),
        TlsConnector::from(client_config(&other.cert_pem())).connect(name("api.example.com"), b)
    );
    assert!(connected.is_err());
}

/// The first bytes of a real ClientHello.
fn client_hello(host: &str) -> Vec<u8> {
    let mut conn =
        rustls::ClientConnection::new(client_config(&SandboxCa::generate().unwrap().cert_pem()), name(host)).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

#[tokio::test]
async fn broken_clients_and_speaking_servers_do_not_hurt_other_connections() {
    let pki = test_pki();
    let up = tls_upstream(pki.upstream.clone()).await;
    // A server that speaks first (like SSH), then closes.
    let banner = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let banner_addr = banner.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = banner.accept().await {
            let _ = s.write_all(b"SSH-2.0-test\r\n").await;
        }
    });
    let Setup { pki, ca, proxy, .. } = setup(
        &["*.example.com"],
        &[("api.example.com", up), ("ssh.example.com", banner_addr)],
        &["api.example.com", "ssh.example.com"],
        pki,
    )
    .await;

    // Garbage after the TLS record type: closed.
    let mut s = tunnel(&proxy, "api.example.com:443").await;
    s.write_all(b"\x16\x03\x01\x00\x05hello, this is not TLS").await.unwrap();
    read_all(&mut s).await;

    // Half a ClientHello, then the client goes away.
    let mut s = tunnel(&proxy, "api.example.com:443").await;
    s.write_all(&client_hello("api.example.com")[..20]).await.unwrap();
    drop(s);

    // Half a ClientHello, then silence until the client gives up on its side.
    let mut s = tunnel(&proxy, "api.example.com:443").await;
    s.write_all(&client_hello("api.example.com")[..20]).await.unwrap();
    s.shutdown().await.unwrap();
    read_all(&mut s).await;

    // A client that does not trust the sandbox CA refuses the certificate.
    let refused = handshake(tunnel(&proxy, "api.example.com:443").await, &pki.ca_pem, "api.example.com").await;
    assert!(refused.unwrap_err().to_string().contains("UnknownIssuer"));

    // Bytes that are neither TLS nor HTTP are tunnelled as they are: the
    // upstream TLS server answers them with an alert and closes.
    let mut s = tunnel(&proxy, "api.example.com:443").await;
    s.write_all(b"\x00\x01\x02\x03").await.unwrap();
    read_all(&mut s).await;

    // The server speaks first: tunnelled, the client reads the banner.
    let mut s = tunnel(&proxy, "ssh.example.com:22").await;
    assert_eq!(read_all(&mut s).await, b"SSH-2.0-test\r\n");

    // Everything still works.
    let tls = handshake(tunnel(&proxy, "api.example.com:443").await, &ca.cert_pem(), "api.example.com").await.unwrap();
    let reply = exchange_over(tls, b"GET /after HTTP/1.1\r\n\r\n").await;
    assert_eq!(reply.status, 200);
    assert!(proxy.violations().is_empty());
    assert_eq!(CONNECTION_PANICS.load(std::sync::atomic::Ordering::Relaxed), 0);
}

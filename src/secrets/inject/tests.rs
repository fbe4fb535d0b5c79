use std::sync::Mutex;

use super::*;
use crate::secrets::SecretSpec;

const KEY: &str = "sk-live-0123456789";
const OTHER: &str = "gh-token-abcdefghij";

fn spec(name: &str, value: &str, hosts: &[&str]) -> SecretSpec {
    SecretSpec { name: name.into(), value: value.into(), hosts: hosts.iter().map(|h| h.to_string()).collect() }
}

fn dest(host: &str, port: u16) -> Destination {
    Destination {
        host: Host::parse(host).expect("a host"),
        port,
        line: host.to_string(),
        addr: "192.0.2.1:443".parse().expect("an address"),
    }
}

/// A sandbox's secrets with the hook, and the violations it reported.
struct Setup {
    secrets: Arc<Secrets>,
    hook: Arc<dyn RequestHook>,
    violations: Arc<Mutex<Vec<Violation>>>,
}

fn setup(specs: Vec<SecretSpec>, mode: SecretMode, plaintext_allowed: bool) -> Setup {
    let secrets = Arc::new(Secrets::new(specs, mode).expect("valid secrets"));
    let violations = Arc::new(Mutex::new(Vec::new()));
    let seen = violations.clone();
    let hook = secrets.hook(plaintext_allowed, Arc::new(move |v| seen.lock().unwrap().push(v)));
    Setup { secrets, hook, violations }
}

/// The usual sandbox: API_KEY for api.example.com, GH for *.github.test.
fn usual() -> Setup {
    setup(
        vec![spec("API_KEY", KEY, &["api.example.com"]), spec("GH", OTHER, &["*.github.test"])],
        SecretMode::Proxy,
        false,
    )
}

impl Setup {
    fn placeholder(&self, name: &str) -> String {
        self.secrets.env().into_iter().find(|(n, _)| n == name).expect("a secret of that name").1
    }

    fn violations(&self) -> Vec<Violation> {
        std::mem::take(&mut *self.violations.lock().unwrap())
    }

    fn exchange(&self, host: &str, port: u16, transport: Transport) -> Box<dyn Exchange> {
        self.hook.exchange(&dest(host, port), transport).expect("an exchange")
    }
}

fn request(target: &str, headers: &[(&str, &str)]) -> RequestHead {
    RequestHead {
        method: "POST".into(),
        target: target.into(),
        version: 1,
        headers: headers.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect(),
    }
}

fn response(headers: &[(&str, &str)]) -> ResponseHead {
    ResponseHead {
        status: 200,
        reason: "OK".into(),
        headers: headers.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect(),
    }
}

fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| std::str::from_utf8(v).expect("UTF-8"))
        .collect()
}

/// Runs `body` through `rewrite` cut at `cuts`.
fn rewrite(mut rewrite: Box<dyn BodyRewrite>, body: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain([&body.len()]) {
        let cut = cut.clamp(start, body.len());
        rewrite.feed(&body[start..cut], &mut out);
        start = cut;
    }
    rewrite.finish(&mut out);
    out
}

/// Every way of cutting `body` in two and in three.
fn every_cut(body: &[u8]) -> Vec<Vec<usize>> {
    let n = body.len();
    let mut cuts = vec![vec![]];
    for a in 0..=n {
        cuts.push(vec![a]);
        for b in (a..=n).step_by(3) {
            cuts.push(vec![a, b]);
        }
    }
    cuts
}

#[test]
fn intercepts_only_where_a_secret_may_go() {
    let s = setup(
        vec![
            spec("API_KEY", KEY, &["api.example.com:443"]),
            spec("WILD", OTHER, &["*.example.org"]),
            spec("EMPTY", "", &["empty.example.net"]),
        ],
        SecretMode::Proxy,
        false,
    );
    let intercepts = |host: &str, port: u16| s.hook.intercept(&dest(host, port));
    assert!(intercepts("api.example.com", 443));
    assert!(intercepts("API.Example.com.", 443));
    assert!(!intercepts("api.example.com", 8443));
    assert!(!intercepts("example.com", 443));
    assert!(intercepts("a.example.org", 443));
    assert!(intercepts("a.b.example.org", 8443));
    assert!(!intercepts("example.org", 443));
    assert!(!intercepts("evilexample.org", 443));
    // A secret with an empty value goes nowhere.
    assert!(!intercepts("empty.example.net", 443));

    let everywhere = setup(vec![spec("ANY", KEY, &[])], SecretMode::Proxy, false);
    assert!(everywhere.hook.intercept(&dest("anything.test", 443)));
    assert!(everywhere.hook.intercept(&dest("192.0.2.7", 443)));

    // Env mode: the sandbox has the value; nothing to inject, nothing to intercept.
    let env = setup(vec![spec("ANY", KEY, &[])], SecretMode::Env, false);
    assert!(!env.hook.intercept(&dest("anything.test", 443)));
}

#[test]
fn no_exchange_without_a_value() {
    let empty = setup(vec![spec("EMPTY", "", &[])], SecretMode::Proxy, false);
    assert!(empty.hook.exchange(&dest("api.example.com", 443), Transport::Tls).is_none());
    let none = setup(Vec::new(), SecretMode::Proxy, false);
    assert!(none.hook.exchange(&dest("api.example.com", 443), Transport::Tls).is_none());
    // With a value there is one, in scope or not, TLS or not, either mode.
    let s = usual();
    assert!(s.hook.exchange(&dest("elsewhere.test", 80), Transport::Plain).is_some());
    let env = setup(vec![spec("K", "v", &[])], SecretMode::Env, false);
    assert!(env.hook.exchange(&dest("elsewhere.test", 80), Transport::Plain).is_some());
}

#[test]
fn injects_into_the_target_headers_and_body() {
    let s = usual();
    let p = s.placeholder("API_KEY");
    let mut ex = s.exchange("api.example.com", 443, Transport::Tls);
    let mut head = request(
        &format!("/v1/items?key={p}&again={p}"),
        &[("Authorization", &format!("Bearer {p}")), ("accept-encoding", "gzip, br"), ("X-Other", "plain")],
    );
    ex.request_head(&mut head);
    assert_eq!(head.target, format!("/v1/items?key={KEY}&again={KEY}"));
    assert_eq!(header(&head.headers, "authorization"), [format!("Bearer {KEY}")]);
    assert_eq!(header(&head.headers, "x-other"), ["plain"]);
    assert_eq!(header(&head.headers, "accept-encoding"), ["identity"]);

    let body = format!("{{\"key\":\"{p}\",\"n\":1,\"k2\":\"{p}\"}}");
    let want = format!("{{\"key\":\"{KEY}\",\"n\":1,\"k2\":\"{KEY}\"}}");
    for cuts in every_cut(body.as_bytes()) {
        let rewriter = ex.request_body().expect("a body rewriter");
        let got = rewrite(rewriter, body.as_bytes(), &cuts);
        assert_eq!(String::from_utf8_lossy(&got), want, "cut at {cuts:?}");
    }
    assert!(s.violations().is_empty());
}

#[test]
fn injects_into_basic_credentials() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let s = usual();
    let p = s.placeholder("API_KEY");
    let mut ex = s.exchange("api.example.com", 443, Transport::Tls);
    let sent = format!("Basic {}", b64.encode(format!("x-access-token:{p}")));
    let mut head = request("/repo.git/info/refs", &[("Authorization", &sent)]);
    ex.request_head(&mut head);
    let want = format!("Basic {}", b64.encode(format!("x-access-token:{KEY}")));
    assert_eq!(header(&head.headers, "authorization"), [want]);

    // Out of scope, the credentials go as they are, and that is reported.
    let mut ex = s.exchange("elsewhere.test", 443, Transport::Tls);
    let mut head = request("/", &[("authorization", &sent)]);
    ex.request_head(&mut head);
    assert_eq!(header(&head.headers, "authorization"), [sent.as_str()]);
    assert_eq!(s.violations().len(), 1);

    // Not base64, or another scheme: untouched.
    for odd in ["Basic !!!notbase64", "Digest username=\"x\""] {
        let mut ex = s.exchange("api.example.com", 443, Transport::Tls);
        let mut head = request("/", &[("authorization", odd)]);
        ex.request_head(&mut head);
        assert_eq!(header(&head.headers, "authorization"), [odd]);
    }
}

#[test]
fn asks_for_identity_even_without_accept_encoding() {
    let s = usual();
    let mut ex = s.exchange("x.github.test", 443, Transport::Tls);
    let mut head = request("/", &[("Accept-Encoding", "gzip"), ("ACCEPT-ENCODING", "br")]);
    ex.request_head(&mut head);
    assert_eq!(header(&head.headers, "accept-encoding"), ["identity"]);
    let mut head = request("/", &[]);
    s.exchange("x.github.test", 443, Transport::Tls).request_head(&mut head);
    assert_eq!(header(&head.headers, "accept-encoding"), ["identity"]);
}

#[test]
fn leaves_accept_encoding_alone_where_nothing_is_injected() {
    let s = usual();
    for (host, transport) in [("elsewhere.test", Transport::Tls), ("api.example.com", Transport::Plain)] {
        let mut head = request("/", &[("Accept-Encoding", "gzip")]);
        s.exchange(host, 443, transport).request_head(&mut head);
        assert_eq!(header(&head.headers, "accept-encoding"), ["gzip"], "{host}");
    }
}

#[test]
fn a_placeholder_out_of_scope_goes_as_is_and_is_reported_once() {
    let s = usual();
    let p = s.placeholder("API_KEY");
    let mut ex = s.exchange("other.example.com", 443, Transport::Tls);
    let mut head = request(&format!("/?k={p}"), &[("X-Key", &p)]);
    ex.request_head(&mut head);
    assert_eq!(head.target, format!("/?k={p}"));
    assert_eq!(header(&head.headers, "x-key"), [p.as_str()]);
    let body = format!("a {p} b {p}");
    assert_eq!(rewrite(ex.request_body().expect("a rewriter"), body.as_bytes(), &[5]), body.as_bytes());
    assert_eq!(
        s.violations(),
        [Violation {
            host: "other.example.com".into(),
            port: 443,
            detail: "SECRET API_KEY was not sent to other.example.com: it is only for api.example.com; the placeholder went instead".into(),
        }]
    );
    // Once per exchange: the next exchange reports again.
    let mut head = request("/", &[("X-Key", &p)]);
    s.exchange("other.example.com", 443, Transport::Tls).request_head(&mut head);
    assert_eq!(s.violations().len(), 1);
    // A request without placeholders reports nothing.
    let mut head = request("/", &[("X-Key", "nothing")]);
    s.exchange("other.example.com", 443, Transport::Tls).request_head(&mut head);
    assert!(s.violations().is_empty());
}

#[test]
fn out_of_scope_names_the_port_when_it_matters() {
    let s = setup(vec![spec("API_KEY", KEY, &["api.example.com:443", "*.example.net"])], SecretMode::Proxy, false);
    let p = s.placeholder("API_KEY");
    let mut head = request("/", &[("X-Key", &p)]);
    s.exchange("api.example.com", 8443, Transport::Tls).request_head(&mut head);
    assert_eq!(header(&head.headers, "x-key"), [p.as_str()]);
    assert_eq!(
        s.violations()[0].detail,
        "SECRET API_KEY was not sent to api.example.com:8443: it is only for api.example.com:443, *.example.net; the placeholder went instead"
    );
}

#[test]
fn reports_an_ipv6_host_without_brackets() {
    let s = usual();
    let p = s.placeholder("API_KEY");
    let mut head = request("/", &[("X-Key", &p)]);
    s.exchange("[2001:db8::1]", 443, Transport::Tls).request_head(&mut head);
    let v = s.violations();
    assert_eq!(v[0].host, "2001:db8::1");
    assert!(v[0].detail.contains("not sent to [2001:db8::1]:"), "{}", v[0].detail);
}

#[test]
fn plain_http_gets_no_value_unless_allowed() {
    let s = usual();
    let p = s.placeholder("API_KEY");
    let mut ex = s.exchange("api.example.com", 80, Transport::Plain);
    let mut head = request("/", &[("Authorization", &p)]);
    ex.request_head(&mut head);
    assert_eq!(header(&head.headers, "authorization"), [p.as_str()]);
    let body = format!("key={p}");
    assert_eq!(rewrite(ex.request_body().expect("a rewriter"), body.as_bytes(), &[]), body.as_bytes());
    assert_eq!(
        s.violations(),
        [Violation {
            host: "api.example.com".into(),
            port: 80,
            detail: "SECRET API_KEY was not sent to api.example.com over plain http: secrets are only injected over https; the placeholder went instead (network.allowPlaintextSecrets allows it)".into(),
        }]
    );

    let allowed = setup(vec![spec("API_KEY", KEY, &["api.example.com"])], SecretMode::Proxy, true);
    let p = allowed.placeholder("API_KEY");
    let mut ex = allowed.exchange("api.example.com", 80, Transport::Plain);
    let mut head = request("/", &[("Authorization", &p)]);
    ex.request_head(&mut head);
    assert_eq!(header(&head.headers, "authorization"), [KEY]);
    assert_eq!(header(&head.headers, "accept-encoding"), ["identity"]);
    assert!(allowed.violations().is_empty());
    // Out of scope stays out of scope, plaintext allowed or not.
    let mut head = request("/", &[("Authorization", &p)]);
    allowed.exchange("other.test", 80, Transport::Plain).request_head(&mut head);
    assert_eq!(header(&head.headers, "authorization"), [p.as_str()]);
    assert_eq!(allowed.violations().len(), 1);
}

#[test]
fn a_value_with_a_line_break_goes_only_in_the_body() {
    let pem = "-----BEGIN KEY-----\nabcdef\n-----END KEY-----\n";
    let s = setup(vec![spec("PEM", pem, &["api.example.com"])], SecretMode::Proxy, false);
    let p = s.placeholder("PEM");
    let mut ex = s.exchange("api.example.com", 443, Transport::Tls);
    let mut head = request(&format!("/{p}"), &[("X-Key", &p)]);
    ex.request_head(&mut head);
    assert_eq!(head.target, format!("/{p}"));
    assert_eq!(header(&head.headers, "x-key"), [p.as_str()]);
    let body = format!("key={p}");
    assert_eq!(rewrite(ex.request_body().expect("a rewriter"), body.as_bytes(), &[7]), format!("key={pem}").as_bytes());
    let v = s.violations();
    assert_eq!(v.len(), 1);
    assert_eq!(
        v[0].detail,
        "SECRET PEM was not sent to api.example.com in the request line: its value contains a blank or control character, which a request target cannot hold; the placeholder went instead"
    );
}

#[test]
fn withholds_compressed_responses_to_injected_requests() {
    let s = usual();
    let mut ex = s.exchange("api.example.com", 443, Transport::Tls);
    ex.request_head(&mut request("/", &[]));
    assert_eq!(
        ex.response_head(&mut response(&[("Content-Encoding", "gzip")])),
        Err("the response from api.example.com is compressed (Content-Encoding: gzip) although identity was asked for; bun-sandbox cannot check it for SECRET values, so it is withheld".into())
    );
    let mut ex = s.exchange("api.example.com", 443, Transport::Tls);
    assert!(ex.response_head(&mut response(&[("content-encoding", "identity")])).is_ok());
    let mut ex = s.exchange("api.example.com", 443, Transport::Tls);
    assert!(ex.response_head(&mut response(&[("Content-Type", "text/plain")])).is_ok());
    let mut ex = s.exchange("api.example.com", 443, Transport::Tls);
    assert!(ex.response_head(&mut response(&[("Content-Encoding", "identity, br")])).is_err());
    // Where nothing could be injected, a compressed response passes.
    let mut ex = s.exchange("elsewhere.test", 443, Transport::Tls);
    assert!(ex.response_head(&mut response(&[("Content-Encoding", "gzip")])).is_ok());
    let mut ex = s.exchange("api.example.com", 80, Transport::Plain);
    assert!(ex.response_head(&mut response(&[("Content-Encoding", "gzip")])).is_ok());
}

#[test]
fn the_withholding_reason_never_carries_a_value() {
    let s = usual();
    let p = s.placeholder("API_KEY");
    let mut ex = s.exchange("api.example.com", 443, Transport::Tls);
    let err = ex.response_head(&mut response(&[("Content-Encoding", &format!("x-{KEY}"))])).expect_err("withheld");
    assert!(err.contains(&format!("Content-Encoding: x-{p})")), "{err}");
}

#[test]
fn echoed_values_become_placeholders_in_responses() {
    let s = usual();
    let (p, g) = (s.placeholder("API_KEY"), s.placeholder("GH"));
    for (host, transport) in [("api.example.com", Transport::Tls), ("elsewhere.test", Transport::Plain)] {
        let mut ex = s.exchange(host, 443, transport);
        let mut head = response(&[("X-Echo", &format!("key {KEY}")), ("Set-Cookie", &format!("t={OTHER}; Secure"))]);
        head.reason = format!("OK {KEY}");
        ex.response_head(&mut head).expect("passes");
        assert_eq!(header(&head.headers, "x-echo"), [format!("key {p}")]);
        assert_eq!(header(&head.headers, "set-cookie"), [format!("t={g}; Secure")]);
        assert_eq!(head.reason, format!("OK {p}"));

        let body = format!("{{\"you sent\":\"{KEY}\",\"and\":\"{OTHER}{KEY}\"}}");
        let want = format!("{{\"you sent\":\"{p}\",\"and\":\"{g}{p}\"}}");
        for cuts in every_cut(body.as_bytes()) {
            let got = rewrite(ex.response_body().expect("a rewriter"), body.as_bytes(), &cuts);
            assert_eq!(got.len(), body.len());
            assert_eq!(String::from_utf8_lossy(&got), want, "{host} cut at {cuts:?}");
        }
    }
}

#[test]
fn env_mode_only_removes_echoes() {
    let s = setup(vec![spec("API_KEY", KEY, &["api.example.com"])], SecretMode::Env, false);
    let placeholder = s.secrets.list[0].placeholder.clone();
    let mut ex = s.exchange("api.example.com", 80, Transport::Plain);
    let mut head = request(&format!("/?k={placeholder}"), &[("Accept-Encoding", "gzip"), ("X-Key", KEY)]);
    let before = head.clone();
    ex.request_head(&mut head);
    assert_eq!(head, before);
    assert!(ex.request_body().is_none());
    assert!(ex.response_head(&mut response(&[("Content-Encoding", "gzip")])).is_ok());
    let body = format!("echo {KEY}");
    let got = rewrite(ex.response_body().expect("a rewriter"), body.as_bytes(), &[9]);
    assert_eq!(String::from_utf8_lossy(&got), format!("echo {placeholder}"));
    assert!(s.violations().is_empty());
}

#[test]
fn a_panicking_callback_is_contained() {
    let secrets = Arc::new(Secrets::new(vec![spec("K", KEY, &["a.test"])], SecretMode::Proxy).expect("valid"));
    let hook = secrets.hook(false, Arc::new(|_| panic!("callback failed")));
    let p = secrets.env()[0].1.clone();
    let mut head = request("/", &[("X-Key", &p)]);
    hook.exchange(&dest("b.test", 443), Transport::Tls).expect("an exchange").request_head(&mut head);
    assert_eq!(header(&head.headers, "x-key"), [p.as_str()]);
}

//! HTTP/1.x proxying: `CONNECT host:port` tunnels and absolute-form forward
//! requests (`GET http://host[:port]/path HTTP/1.1`). Syntax is httparse's
//! (heads, chunk sizes) and the `http` crate's (request targets).
//!
//! A forward request is checked, connected and handed to [`exchange`]: sent
//! in origin form with `Host` set to the checked authority, one request per
//! connection (keep-alive clients see `Connection: close` and open a new
//! connection for the next request). A tunnel is a plain byte pipe unless the
//! hook asks for its destination to be intercepted ([`intercept`]).

use http::Uri;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::body::{self, Buffered};
use super::policy::{self, split_host_port};
use super::{ProxyConfig, RequestHead, Transport};
use super::{exchange, intercept, responses, tunnel};

pub(crate) async fn serve(mut client: Buffered<TcpStream>, config: &ProxyConfig) {
    let head = match exchange::read_request(&mut client, config.request_timeout).await {
        Ok(head) => head,
        Err(e) => match e.response() {
            Some(answer) => return responses::send_and_close(client.get_mut(), &answer).await,
            None => return,
        },
    };
    if head.method == "CONNECT" { connect(client, head, config).await } else { forward(client, head, config).await }
}

fn bad_request(message: &str) -> Vec<u8> {
    responses::text(400, &format!("bun-sandbox: {message}\n"))
}

/// `CONNECT host:port`: check, connect, `200`, then bytes both ways (or
/// interception, when the hook asks for it).
async fn connect(mut client: Buffered<TcpStream>, head: RequestHead, config: &ProxyConfig) {
    let Some((host, Some(port))) = split_host_port(&head.target) else {
        let message = "CONNECT needs a host and a port, e.g. \"CONNECT api.example.com:443 HTTP/1.1\"";
        return responses::send_and_close(client.get_mut(), &bad_request(message)).await;
    };
    let (upstream, dest) = match policy::connect(config, host, port).await {
        Ok(connected) => connected,
        Err(refusal) => return responses::send_and_close(client.get_mut(), &responses::refusal(&refusal)).await,
    };
    if let Some(interception) = intercept::wanted(config, &dest) {
        if client.get_mut().write_all(responses::CONNECTED).await.is_ok() {
            intercept::serve(client, upstream, &dest, interception, config).await;
        }
        return;
    }
    let (mut client, early) = client.into_parts();
    if client.write_all(responses::CONNECTED).await.is_ok() {
        tunnel::relay(client, early, upstream).await;
    }
}

/// An absolute-form request: check, rewrite to origin form, send, relay.
async fn forward(mut client: Buffered<TcpStream>, head: RequestHead, config: &ProxyConfig) {
    let target = match parse_target(&head.target) {
        Ok(target) => target,
        Err(message) => return responses::send_and_close(client.get_mut(), &bad_request(&message)).await,
    };
    let framing = match body::framing(exchange::header_pairs(&head.headers), true) {
        Ok(framing) => framing,
        Err(message) => return responses::send_and_close(client.get_mut(), &bad_request(message)).await,
    };
    let (upstream, dest) = match policy::connect(config, &target.host, target.port).await {
        Ok(connected) => connected,
        Err(refusal) => return responses::send_and_close(client.get_mut(), &responses::refusal(&refusal)).await,
    };
    let hooked = config.hook.as_ref().and_then(|hook| hook.exchange(&dest, Transport::Plain));
    let request = exchange::Request {
        head: RequestHead { target: target.origin_form, ..head },
        framing,
        authority: target.authority,
    };

    let (mut client_read, mut client_write) = exchange::split(client);
    let (mut upstream_read, mut upstream_write) = exchange::split(Buffered::new(upstream));
    let client = (&mut client_read, &mut client_write);
    exchange::run(client, (&mut upstream_read, &mut upstream_write), request, hooked, config.request_timeout).await;
}

struct Target {
    host: String,
    port: u16,
    /// `host[:port]` as the client wrote it, for the `Host` header.
    authority: String,
    origin_form: String,
}

fn parse_target(target: &str) -> Result<Target, String> {
    let proxy_only = || {
        "this is the sandbox's egress proxy: send requests in absolute form \
         (\"GET http://api.example.com/ HTTP/1.1\"), or use CONNECT for https"
            .to_string()
    };
    if target.starts_with('/') || target == "*" {
        return Err(proxy_only());
    }
    let uri: Uri = target.parse().map_err(|_| format!("\"{}\" is not a valid URL", clip(target)))?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") => {}
        Some(s) if s.eq_ignore_ascii_case("https") => {
            return Err("https URLs go through CONNECT; this proxy does not speak TLS to forward requests".into());
        }
        Some(s) => return Err(format!("unsupported URL scheme \"{}\"; only http is proxied", clip(s))),
        None => return Err(proxy_only()),
    }
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if authority.contains('@') {
        return Err("URLs with user information (user@host) are not proxied; send an Authorization header".into());
    }
    let (host, port) = split_host_port(authority)
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| format!("\"{}\" has no valid host", clip(target)))?;
    let port = port.unwrap_or(80);
    Ok(Target { host: host.to_string(), port, authority: authority.to_string(), origin_form: origin_form(&uri) })
}

/// The origin form (`/path?query`) of an absolute URL.
pub(crate) fn origin_form(uri: &Uri) -> String {
    match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("") => "/".to_string(),
        Some(p) if p.starts_with('?') => format!("/{p}"),
        Some(p) => p.to_string(),
    }
}

pub(crate) fn clip(s: &str) -> String {
    let mut clipped: String = s.chars().take(200).collect();
    if clipped.len() < s.len() {
        clipped.push('…');
    }
    clipped
}

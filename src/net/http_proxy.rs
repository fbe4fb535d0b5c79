//! HTTP/1.x proxying: `CONNECT host:port` tunnels and absolute-form forward
//! requests (`GET http://host[:port]/path HTTP/1.1`). Syntax is httparse's
//! (heads, chunk sizes) and the `http` crate's (request targets).
//!
//! A forward request is sent upstream in origin form with `Host` set to the
//! checked authority (a client cannot name one host to NET and another to a
//! shared front end), without hop-by-hop headers, and with `Connection:
//! close`: one request per connection, to the client as to the upstream.
//! Keep-alive clients see `Connection: close` and open a new connection for
//! the next request. Bodies stream both ways (Content-Length and chunked);
//! the response is relayed while the request body is still being sent, so
//! `Expect: 100-continue` and early answers work.

use std::io;
use std::time::Duration;

use http::Uri;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::body::{self, Buffered, Framing, MAX_HEAD, MAX_HEADERS};
use super::policy::{self, split_host_port};
use super::responses;
use super::{ProxyConfig, RequestHead};

/// Why no request head could be read.
#[derive(Debug, thiserror::Error)]
enum HeadError {
    #[error("the request head is larger than 64 KiB")]
    TooLarge,
    #[error("the request has more than {MAX_HEADERS} header lines")]
    TooManyHeaders,
    #[error("not an HTTP request ({0})")]
    Malformed(httparse::Error),
    #[error("the request was not complete after {0:?}")]
    TimedOut(Duration),
    /// The client went away; nothing to answer.
    #[error("closed")]
    Closed,
}

pub(crate) async fn serve(mut client: Buffered<TcpStream>, config: &ProxyConfig) {
    let head = match read_request(&mut client, config.request_timeout).await {
        Ok(head) => head,
        Err(HeadError::Closed) => return,
        Err(e) => {
            let status = match e {
                HeadError::TooLarge | HeadError::TooManyHeaders => 431,
                HeadError::TimedOut(_) => 408,
                _ => 400,
            };
            let message = format!("bun-sandbox: {e}\n");
            return responses::send_and_close(client.get_mut(), &responses::text(status, &message)).await;
        }
    };
    if head.method == "CONNECT" { connect(client, head, config).await } else { forward(client, head, config).await }
}

async fn read_request(client: &mut Buffered<TcpStream>, timeout: Duration) -> Result<RequestHead, HeadError> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(client.pending()) {
            Ok(httparse::Status::Complete(n)) => {
                let head = RequestHead {
                    method: request.method.unwrap_or_default().to_string(),
                    target: request.path.unwrap_or_default().to_string(),
                    version: request.version.unwrap_or(1),
                    headers: request.headers.iter().map(|h| (h.name.to_string(), h.value.to_vec())).collect(),
                };
                client.consume(n);
                return Ok(head);
            }
            Ok(httparse::Status::Partial) if client.pending().len() >= MAX_HEAD => return Err(HeadError::TooLarge),
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
            Err(e) => return Err(HeadError::Malformed(e)),
        }
        match tokio::time::timeout_at(deadline, client.fill()).await {
            Err(_) => return Err(HeadError::TimedOut(timeout)),
            Ok(Ok(0) | Err(_)) => return Err(HeadError::Closed),
            Ok(Ok(_)) => {}
        }
    }
}

fn bad_request(message: &str) -> Vec<u8> {
    responses::text(400, &format!("bun-sandbox: {message}\n"))
}

/// `CONNECT host:port`: check, connect, `200`, then bytes both ways.
async fn connect(mut client: Buffered<TcpStream>, head: RequestHead, config: &ProxyConfig) {
    let Some((host, Some(port))) = split_host_port(&head.target) else {
        let message = "CONNECT needs a host and a port, e.g. \"CONNECT api.example.com:443 HTTP/1.1\"";
        return responses::send_and_close(client.get_mut(), &bad_request(message)).await;
    };
    let (mut upstream, _dest) = match policy::connect(config, host, port).await {
        Ok(connected) => connected,
        Err(refusal) => return responses::send_and_close(client.get_mut(), &responses::refusal(&refusal)).await,
    };
    // TLS interception (SECRET over HTTPS) will replace this plain tunnel for
    // the destinations that need it.
    let (mut client, early) = client.into_parts();
    let tunnel = async {
        client.write_all(responses::CONNECTED).await?;
        upstream.write_all(&early).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await
    };
    let _: io::Result<_> = tunnel.await;
}

/// An absolute-form request: check, rewrite to origin form, send, relay.
async fn forward(mut client: Buffered<TcpStream>, head: RequestHead, config: &ProxyConfig) {
    let target = match parse_target(&head.target) {
        Ok(target) => target,
        Err(message) => return responses::send_and_close(client.get_mut(), &bad_request(&message)).await,
    };
    let headers = || head.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
    let framing = match body::framing(headers(), true) {
        Ok(framing) => framing,
        Err(message) => return responses::send_and_close(client.get_mut(), &bad_request(message)).await,
    };
    let (upstream, dest) = match policy::connect(config, &target.host, target.port).await {
        Ok(connected) => connected,
        Err(refusal) => return responses::send_and_close(client.get_mut(), &responses::refusal(&refusal)).await,
    };

    let connection = body::connection_names(headers());
    let mut outgoing = RequestHead {
        method: head.method.clone(),
        target: target.origin_form,
        version: head.version.min(1),
        headers: head
            .headers
            .iter()
            .filter(|(n, _)| {
                !n.eq_ignore_ascii_case("host") && !body::is_framing(n) && !body::is_hop_by_hop(n, &connection)
            })
            .cloned()
            .collect(),
    };
    let mut rewrite = None;
    if let Some(hook) = &config.hook {
        hook.rewrite_head(&dest, &mut outgoing);
        rewrite = hook.rewrite_body(&dest, &outgoing);
    }
    let mut wire = format!("{} {} HTTP/1.{}\r\n", outgoing.method, outgoing.target, outgoing.version).into_bytes();
    body::push_header(&mut wire, "Host", target.authority.as_bytes());
    for (name, value) in &outgoing.headers {
        body::push_header(&mut wire, name, value);
    }
    match framing {
        Framing::Length(n) => body::push_header(&mut wire, "Content-Length", n.to_string().as_bytes()),
        Framing::Chunked => {
            for (name, value) in head.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding")) {
                body::push_header(&mut wire, name, value);
            }
        }
        Framing::None | Framing::Close => {}
    }
    body::push_header(&mut wire, "Connection", b"close");
    wire.extend_from_slice(b"\r\n");

    let (client, early) = client.into_parts();
    let (client_read, mut client_write) = client.into_split();
    let mut client_read = Buffered::with(client_read, early);
    let (upstream_read, mut upstream_write) = upstream.into_split();
    let mut upstream_read = Buffered::new(upstream_read);
    let idle = Some(config.request_timeout);
    let head_only = head.method == "HEAD";

    let upload = async {
        upstream_write.write_all(&wire).await?;
        let rewriter = rewrite.as_mut().map(|r| &mut **r as &mut dyn super::BodyRewrite);
        body::copy(&mut client_read, &mut upstream_write, framing, rewriter, idle).await?;
        discard_until_error(&mut client_read).await
    };
    let download = relay_response(&mut upstream_read, &mut client_write, head_only);
    let finished = tokio::select! {
        // Only an error ends the upload: the client or the upstream failed.
        Err::<(), io::Error>(_) = upload => false,
        result = download => result.is_ok(),
    };
    if finished {
        let _ = client_write.shutdown().await;
        responses::drain(client_read.get_mut()).await;
    }
}

/// After the request: whatever else the client sends (a pipelined request)
/// is dropped, it is answered by the close. Returns only when the client
/// fails; a client that half-closes still gets its response.
async fn discard_until_error<R: AsyncRead + Unpin>(client: &mut Buffered<R>) -> io::Result<()> {
    loop {
        match client.fill().await {
            Ok(0) => std::future::pending::<()>().await,
            Ok(_) => client.consume(client.pending().len()),
            Err(e) => return Err(e),
        }
    }
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
    let origin_form = match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("") => "/".to_string(),
        Some(p) if p.starts_with('?') => format!("/{p}"),
        Some(p) => p.to_string(),
    };
    Ok(Target { host: host.to_string(), port, authority: authority.to_string(), origin_form })
}

fn clip(s: &str) -> String {
    let mut clipped: String = s.chars().take(200).collect();
    if clipped.len() < s.len() {
        clipped.push('…');
    }
    clipped
}

/// Relays one response: interim (1xx) heads, then the final head rewritten
/// (hop-by-hop headers dropped, `Connection: close`) and its body.
async fn relay_response<R, W>(upstream: &mut Buffered<R>, client: &mut W, head_only: bool) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut sent_any = false;
    loop {
        let head = match read_response_head(upstream).await {
            Ok(head) => head,
            Err(e) => {
                if !sent_any {
                    let message = format!("bun-sandbox: the upstream server {e}\n");
                    let _ = client.write_all(&responses::text(502, &message)).await;
                }
                return Err(e);
            }
        };
        let (code, reason, headers) = head;
        let interim = (100..200).contains(&code) && code != 101;
        let pairs = || headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
        let framing = if head_only || (100..200).contains(&code) || code == 204 || code == 304 {
            Framing::None
        } else {
            match body::framing(pairs(), false) {
                Ok(framing) => framing,
                Err(e) => {
                    if !sent_any {
                        let message = format!("bun-sandbox: the upstream server sent a bad response ({e})\n");
                        let _ = client.write_all(&responses::text(502, &message)).await;
                    }
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
        };
        let connection = body::connection_names(pairs());
        // With a Transfer-Encoding, a Content-Length is wrong (RFC 9112 §6.3).
        let chunked = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"));
        let mut wire = format!("HTTP/1.1 {code} {reason}\r\n").into_bytes();
        for (name, value) in &headers {
            let stale_length = chunked && name.eq_ignore_ascii_case("content-length");
            if !body::is_hop_by_hop(name, &connection) && !stale_length {
                body::push_header(&mut wire, name, value);
            }
        }
        if !interim {
            body::push_header(&mut wire, "Connection", b"close");
        }
        wire.extend_from_slice(b"\r\n");
        client.write_all(&wire).await?;
        sent_any = true;
        if interim {
            client.flush().await?;
            continue;
        }
        return body::copy(upstream, client, framing, None, None).await;
    }
}

type ResponseHead = (u16, String, Vec<(String, Vec<u8>)>);

async fn read_response_head<R: AsyncRead + Unpin>(upstream: &mut Buffered<R>) -> io::Result<ResponseHead> {
    let fail = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(upstream.pending()) {
            Ok(httparse::Status::Complete(n)) => {
                let code = response.code.unwrap_or(502);
                let reason = response.reason.unwrap_or_default().to_string();
                let headers = response.headers.iter().map(|h| (h.name.to_string(), h.value.to_vec())).collect();
                upstream.consume(n);
                return Ok((code, reason, headers));
            }
            Ok(httparse::Status::Partial) if upstream.pending().len() >= MAX_HEAD => {
                return Err(fail("sent a response head larger than 64 KiB"));
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(fail(&format!("sent an invalid response ({e})"))),
        }
        match upstream.fill().await {
            Ok(0) => return Err(fail("closed the connection without a complete response")),
            Ok(_) => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("reset the connection ({e})"))),
        }
    }
}

//! One HTTP/1.1 request and its response, between a client and an upstream
//! connection that is already open, through the [`Exchange`] the hook gives
//! for it. The same code serves absolute-form forward requests, requests
//! inside an intercepted TLS connection and plain HTTP inside a tunnel, so it
//! is written over any pair of stream halves (TCP or TLS).
//!
//! The request goes upstream in origin form with `Host` set to the checked
//! authority (a client cannot name one host to NET and another to a shared
//! front end), without hop-by-hop headers, with framing the proxy writes
//! itself and `Connection: close`: one request per connection, to the client
//! as to the upstream. The response comes back the same way. Bodies stream
//! both ways; the response is relayed while the request body is still being
//! sent, so `Expect: 100-continue` and early answers work.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

use super::body::{self, Buffered, Framing, MAX_HEAD, MAX_HEADERS};
use super::{BodyRewrite, Exchange, RequestHead, ResponseHead, responses};

/// Why no request head could be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeadError {
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

impl HeadError {
    /// What the client is told (`None`: it went away).
    pub(crate) fn response(&self) -> Option<Vec<u8>> {
        let status = match self {
            HeadError::Closed => return None,
            HeadError::TooLarge | HeadError::TooManyHeaders => 431,
            HeadError::TimedOut(_) => 408,
            HeadError::Malformed(_) => 400,
        };
        Some(responses::text(status, &format!("bun-sandbox: {self}\n")))
    }
}

/// Reads one request head; the whole head must arrive within `timeout`.
pub(crate) async fn read_request<R: AsyncRead + Unpin>(
    client: &mut Buffered<R>,
    timeout: Duration,
) -> Result<RequestHead, HeadError> {
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

/// A request read from the client, checked and ready to go upstream.
pub(crate) struct Request {
    /// As the client sent it, except `target`, which is in origin form.
    pub(crate) head: RequestHead,
    /// The framing of its body, from the client's headers.
    pub(crate) framing: Framing,
    /// `host[:port]` for the `Host` header: the destination NET checked.
    pub(crate) authority: String,
}

/// A TCP connection split for an exchange: its reading half buffered (with
/// what was already read from it) and its writing half.
pub(crate) fn split(stream: Buffered<TcpStream>) -> (Buffered<OwnedReadHalf>, OwnedWriteHalf) {
    let (stream, early) = stream.into_parts();
    let (read, write) = stream.into_split();
    (Buffered::with(read, early), write)
}

pub(crate) fn header_pairs(headers: &[(String, Vec<u8>)]) -> impl Iterator<Item = (&str, &[u8])> + Clone {
    headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
}

/// Sends `request` upstream and relays its response, through `exchange`.
/// `idle` bounds each wait for the client's request body. Afterwards the
/// client side is closed (gracefully when it got a complete response); the
/// upstream halves are left to the caller to drop.
pub(crate) async fn run<CR, CW, UR, UW>(
    (client_read, client_write): (&mut Buffered<CR>, &mut CW),
    (upstream_read, upstream_write): (&mut Buffered<UR>, &mut UW),
    request: Request,
    mut exchange: Option<Box<dyn Exchange>>,
    idle: Duration,
) where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    UR: AsyncRead + Unpin,
    UW: AsyncWrite + Unpin,
{
    let Request { head, framing, authority } = request;
    let connection = body::connection_names(header_pairs(&head.headers));
    let mut outgoing = RequestHead {
        method: head.method.clone(),
        target: head.target.clone(),
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
    if let Some(exchange) = exchange.as_mut() {
        exchange.request_head(&mut outgoing);
        rewrite = exchange.request_body();
    }
    let mut wire = format!("{} {} HTTP/1.{}\r\n", outgoing.method, outgoing.target, outgoing.version).into_bytes();
    body::push_header(&mut wire, "Host", authority.as_bytes());
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
    // The framing of the response depends on what the upstream was asked.
    let head_only = outgoing.method == "HEAD";

    let upload = async {
        upstream_write.write_all(&wire).await?;
        let rewriter = rewrite.as_deref_mut().map(|r| r as &mut dyn BodyRewrite);
        body::copy(client_read, upstream_write, framing, rewriter, Some(idle)).await?;
        discard_until_error(client_read).await
    };
    let download = relay_response(upstream_read, client_write, head_only, exchange.as_deref_mut());
    let complete = tokio::select! {
        // Only an error ends the upload: the client or the upstream failed.
        Err::<(), io::Error>(_) = upload => false,
        complete = download => complete,
    };
    if complete {
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

/// Relays one response: interim (1xx) heads as they are (less hop-by-hop
/// headers), then the final head through the exchange, with the proxy's own
/// framing and `Connection: close`, and its body. True when the client got a
/// complete response: the upstream's, or a 502 from here (an upstream that
/// failed before its final head, or an exchange that withheld it; a final
/// response may follow interim ones).
async fn relay_response<R, W>(
    upstream: &mut Buffered<R>,
    client: &mut W,
    head_only: bool,
    mut exchange: Option<&mut (dyn Exchange + 'static)>,
) -> bool
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let (code, reason, headers) = match read_response_head(upstream).await {
            Ok(head) => head,
            Err(e) => return answer(client, &format!("bun-sandbox: the upstream server {e}\n")).await,
        };
        let pairs = || header_pairs(&headers);
        let connection = body::connection_names(pairs());
        if (100..200).contains(&code) && code != 101 {
            let mut wire = format!("HTTP/1.1 {code} {reason}\r\n").into_bytes();
            for (name, value) in headers.iter().filter(|(n, _)| !body::is_hop_by_hop(n, &connection)) {
                body::push_header(&mut wire, name, value);
            }
            wire.extend_from_slice(b"\r\n");
            if client.write_all(&wire).await.is_err() || client.flush().await.is_err() {
                return false;
            }
            continue;
        }
        let framing = if head_only || (100..200).contains(&code) || code == 204 || code == 304 {
            Framing::None
        } else {
            match body::framing(pairs(), false) {
                Ok(framing) => framing,
                Err(e) => {
                    let message = format!("bun-sandbox: the upstream server sent a bad response ({e})\n");
                    return answer(client, &message).await;
                }
            }
        };
        let mut outgoing = ResponseHead {
            status: code,
            reason,
            headers: headers
                .iter()
                .filter(|(n, _)| !body::is_framing(n) && !body::is_hop_by_hop(n, &connection))
                .cloned()
                .collect(),
        };
        let mut rewrite = None;
        if let Some(exchange) = exchange.as_mut() {
            if let Err(reason) = exchange.response_head(&mut outgoing) {
                return answer(client, &format!("bun-sandbox: {reason}\n")).await;
            }
            rewrite = exchange.response_body();
        }
        let mut wire = format!("HTTP/1.1 {} {}\r\n", outgoing.status, outgoing.reason).into_bytes();
        for (name, value) in &outgoing.headers {
            body::push_header(&mut wire, name, value);
        }
        push_response_framing(&mut wire, framing, &headers);
        body::push_header(&mut wire, "Connection", b"close");
        wire.extend_from_slice(b"\r\n");
        if client.write_all(&wire).await.is_err() {
            return false;
        }
        let rewriter = rewrite.as_deref_mut().map(|r| r as &mut dyn BodyRewrite);
        return body::copy(upstream, client, framing, rewriter, None).await.is_ok();
    }
}

/// The framing headers of a relayed response. A body the proxy de-chunks is
/// chunked again with the upstream's transfer codings; a body without one
/// (HEAD, 204, 304) keeps the upstream's headers, which there describe the
/// body a GET would have had. With a Transfer-Encoding, a Content-Length is
/// wrong (RFC 9112 §6.3) and dropped.
fn push_response_framing(wire: &mut Vec<u8>, framing: Framing, headers: &[(String, Vec<u8>)]) {
    let named = |name: &'static str| headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name));
    let has_te = named("transfer-encoding").next().is_some();
    match framing {
        Framing::Length(n) => body::push_header(wire, "Content-Length", n.to_string().as_bytes()),
        Framing::Chunked | Framing::Close => {
            for (name, value) in named("transfer-encoding") {
                body::push_header(wire, name, value);
            }
        }
        Framing::None => {
            for (name, value) in named(if has_te { "transfer-encoding" } else { "content-length" }) {
                body::push_header(wire, name, value);
            }
        }
    }
}

/// Sends a 502 with `message` as the final response; true when it was sent.
async fn answer<W: AsyncWrite + Unpin>(client: &mut W, message: &str) -> bool {
    client.write_all(&responses::text(502, message)).await.is_ok()
}

type ParsedResponse = (u16, String, Vec<(String, Vec<u8>)>);

async fn read_response_head<R: AsyncRead + Unpin>(upstream: &mut Buffered<R>) -> io::Result<ParsedResponse> {
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

//! Reading heads and streaming HTTP/1.1 message bodies (RFC 9112 §6–7).
//!
//! Bodies are decoded and encoded again rather than copied raw: the proxy
//! knows exactly where each message ends (so nothing the client sends after
//! its request reaches the upstream unchecked), the framing the upstream sees
//! is always well formed (no request smuggling through odd chunk lines), and
//! a [`BodyRewrite`] sees only payload bytes. The syntax itself is httparse's.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::BodyRewrite;

/// Heads (request line or status line plus headers) and chunk-size lines
/// larger than this are refused.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Header lines per head.
pub(crate) const MAX_HEADERS: usize = 128;
/// How much one read of a message body may take.
const BODY_READ: usize = 64 * 1024;

/// A reader with the bytes read but not consumed yet.
pub(crate) struct Buffered<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
}

impl<R: AsyncRead + Unpin> Buffered<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self::with(inner, Vec::new())
    }

    /// `pending` bytes were already read from `inner`.
    pub(crate) fn with(inner: R, pending: Vec<u8>) -> Self {
        Buffered { inner, buf: pending, start: 0 }
    }

    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads more (up to 16 KiB: heads are small); 0 at end of stream.
    pub(crate) async fn fill(&mut self) -> io::Result<usize> {
        self.fill_up_to(16 * 1024).await
    }

    async fn fill_up_to(&mut self, room: usize) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(room);
        self.inner.read_buf(&mut self.buf).await
    }

    /// As `fill`, failing with `TimedOut` after `timeout` and with
    /// `UnexpectedEof` at end of stream.
    pub(crate) async fn fill_more(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        // Bodies: large reads, few system calls.
        let n = match timeout {
            Some(t) => tokio::time::timeout(t, self.fill_up_to(BODY_READ))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no data in time"))??,
            None => self.fill_up_to(BODY_READ).await?,
        };
        if n == 0 { Err(io::ErrorKind::UnexpectedEof.into()) } else { Ok(()) }
    }

    pub(crate) fn into_parts(mut self) -> (R, Vec<u8>) {
        self.buf.drain(..self.start);
        (self.inner, self.buf)
    }

    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the sender closes (responses only).
    Close,
}

fn bad(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Streams one body from `from` to `to`, decoding `framing` and encoding it
/// again, through `rewrite` when given. `idle` bounds each wait for data.
pub(crate) async fn copy<R, W>(
    from: &mut Buffered<R>,
    to: &mut W,
    framing: Framing,
    mut rewrite: Option<&mut dyn BodyRewrite>,
    idle: Option<Duration>,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = Vec::new();
    match framing {
        Framing::None => Ok(()),
        Framing::Length(len) => {
            let mut left = len;
            let mut sent: u64 = 0;
            while left > 0 {
                if from.pending().is_empty() {
                    from.fill_more(idle).await?;
                }
                let take = (from.pending().len() as u64).min(left) as usize;
                sent += pass(&from.pending()[..take], &mut rewrite, &mut out, to).await?;
                from.consume(take);
                left -= take as u64;
            }
            if let Some(r) = rewrite.as_mut() {
                out.clear();
                r.finish(&mut out);
                sent += out.len() as u64;
                to.write_all(&out).await?;
            }
            if sent != len {
                return Err(bad("a body rewrite changed the length of a Content-Length body"));
            }
            to.flush().await
        }
        Framing::Chunked => {
            loop {
                let size = read_chunk_size(from, idle).await?;
                if size == 0 {
                    break;
                }
                let mut left = size;
                while left > 0 {
                    if from.pending().is_empty() {
                        from.fill_more(idle).await?;
                    }
                    let take = (from.pending().len() as u64).min(left) as usize;
                    match rewrite.as_mut() {
                        Some(r) => {
                            out.clear();
                            r.feed(&from.pending()[..take], &mut out);
                            write_chunk(to, &out).await?;
                        }
                        None => write_chunk(to, &from.pending()[..take]).await?,
                    }
                    from.consume(take);
                    left -= take as u64;
                }
                while from.pending().len() < 2 {
                    from.fill_more(idle).await?;
                }
                if &from.pending()[..2] != b"\r\n" {
                    return Err(bad("chunk data not followed by CRLF"));
                }
                from.consume(2);
            }
            if let Some(r) = rewrite.as_mut() {
                out.clear();
                r.finish(&mut out);
                write_chunk(to, &out).await?;
            }
            let trailers = read_trailers(from, idle).await?;
            let mut last = b"0\r\n".to_vec();
            for (name, value) in trailers {
                push_header(&mut last, &name, &value);
            }
            last.extend_from_slice(b"\r\n");
            to.write_all(&last).await?;
            to.flush().await
        }
        Framing::Close => {
            loop {
                if from.pending().is_empty() {
                    let n = match idle {
                        Some(t) => tokio::time::timeout(t, from.fill())
                            .await
                            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no data in time"))??,
                        None => from.fill().await?,
                    };
                    if n == 0 {
                        break;
                    }
                }
                let n = from.pending().len();
                pass(from.pending(), &mut rewrite, &mut out, to).await?;
                from.consume(n);
            }
            if let Some(r) = rewrite.as_mut() {
                out.clear();
                r.finish(&mut out);
                to.write_all(&out).await?;
            }
            to.flush().await
        }
    }
}

/// Puts `input` through the rewriter (or not) into `out`; returns the length.
/// Sends `input` on, through `rewrite` when there is one; how many bytes went.
async fn pass<W: AsyncWrite + Unpin>(
    input: &[u8],
    rewrite: &mut Option<&mut dyn BodyRewrite>,
    out: &mut Vec<u8>,
    to: &mut W,
) -> io::Result<u64> {
    let sent = match rewrite.as_mut() {
        Some(r) => {
            out.clear();
            r.feed(input, out);
            out.as_slice()
        }
        None => input,
    };
    to.write_all(sent).await?;
    Ok(sent.len() as u64)
}

async fn write_chunk<W: AsyncWrite + Unpin>(to: &mut W, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(()); // an empty chunk would end the body
    }
    let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\r\n");
    to.write_all(&frame).await
}

async fn read_chunk_size<R: AsyncRead + Unpin>(from: &mut Buffered<R>, idle: Option<Duration>) -> io::Result<u64> {
    loop {
        let pending = from.pending();
        // httparse reads an empty size as 0; an empty line is not a chunk size.
        if matches!(pending.first(), Some(b'\r' | b';' | b' ' | b'\t')) {
            return Err(bad("empty chunk size"));
        }
        match httparse::parse_chunk_size(pending) {
            Ok(httparse::Status::Complete((n, size))) => {
                from.consume(n);
                return Ok(size);
            }
            Ok(httparse::Status::Partial) if pending.len() < MAX_HEAD => from.fill_more(idle).await?,
            Ok(httparse::Status::Partial) => return Err(bad("chunk size line too long")),
            Err(_) => return Err(bad("invalid chunk size")),
        }
    }
}

async fn read_trailers<R: AsyncRead + Unpin>(
    from: &mut Buffered<R>,
    idle: Option<Duration>,
) -> io::Result<Vec<(String, Vec<u8>)>> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::parse_headers(from.pending(), &mut headers) {
            Ok(httparse::Status::Complete((n, parsed))) => {
                let owned = parsed
                    .iter()
                    .filter(|h| !is_framing(h.name))
                    .map(|h| (h.name.to_string(), h.value.to_vec()))
                    .collect();
                from.consume(n);
                return Ok(owned);
            }
            Ok(httparse::Status::Partial) if from.pending().len() < MAX_HEAD => from.fill_more(idle).await?,
            Ok(httparse::Status::Partial) => return Err(bad("trailers too large")),
            Err(_) => return Err(bad("invalid trailers")),
        }
    }
}

pub(crate) fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Headers that describe the framing, which the proxy writes itself.
pub(crate) fn is_framing(name: &str) -> bool {
    name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
}

/// Whether a header concerns only this hop (RFC 9110 §7.6.1), including the
/// ones a `Connection` header names, and `Proxy-*` (meant for this proxy).
pub(crate) fn is_hop_by_hop(name: &str, connection_names: &[String]) -> bool {
    const HOP: [&str; 6] = ["connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection"];
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || name.len() >= 6 && name[..6].eq_ignore_ascii_case("proxy-")
        || connection_names.iter().any(|c| name.eq_ignore_ascii_case(c))
}

/// The header names a `Connection` header lists (except `close`/`keep-alive`).
pub(crate) fn connection_names<'a>(headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> Vec<String> {
    headers
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| String::from_utf8_lossy(v).split(',').map(|t| t.trim().to_string()).collect::<Vec<_>>())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The framing a message's headers declare (RFC 9112 §6.3). `Err` for what a
/// proxy must not forward: both `Transfer-Encoding` and `Content-Length`,
/// disagreeing or invalid lengths, or (for requests) a transfer coding that
/// does not end in `chunked`.
pub(crate) fn framing<'a>(
    headers: impl Iterator<Item = (&'a str, &'a [u8])> + Clone,
    request: bool,
) -> Result<Framing, &'static str> {
    let mut codings = headers
        .clone()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(|c| String::from_utf8_lossy(c).trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .peekable();
    let has_te = codings.peek().is_some();
    let chunked_last = codings.last().is_some_and(|c| c == "chunked");
    let mut length: Option<u64> = None;
    for (_, v) in headers.filter(|(n, _)| n.eq_ignore_ascii_case("content-length")) {
        for part in v.split(|&b| b == b',') {
            let part = std::str::from_utf8(part).map_err(|_| "invalid Content-Length")?.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err("invalid Content-Length");
            }
            let n: u64 = part.parse().map_err(|_| "invalid Content-Length")?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length headers");
            }
            length = Some(n);
        }
    }
    match (has_te, length) {
        (true, Some(_)) if request => Err("both Transfer-Encoding and Content-Length"),
        (true, _) if chunked_last => Ok(Framing::Chunked),
        (true, _) if request => Err("a Transfer-Encoding that does not end in chunked"),
        (true, _) => Ok(Framing::Close),
        (false, Some(n)) => Ok(Framing::Length(n)),
        (false, None) if request => Ok(Framing::None),
        (false, None) => Ok(Framing::Close),
    }
}

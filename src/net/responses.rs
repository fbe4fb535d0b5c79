//! What a client is told, in its own protocol: HTTP responses with a plain
//! text body, and SOCKS5 reply codes (RFC 1928 §6).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::reasons::Refusal;

pub(crate) const CONNECTED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// A complete response that closes the connection.
pub(crate) fn text(status: u16, body: &str) -> Vec<u8> {
    let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// 403 for a refusal by policy, 400 for a host that is not one, 502/504 when
/// the destination could not be reached.
pub(crate) fn refusal(refusal: &Refusal) -> Vec<u8> {
    let status = match refusal {
        Refusal::NotAllowed { .. } | Refusal::NonPublic { .. } => 403,
        Refusal::BadHost { .. } => 400,
        Refusal::Resolve { .. } | Refusal::NoAddress { .. } | Refusal::Connect { .. } => 502,
        Refusal::Timeout { .. } => 504,
    };
    text(status, &refusal.message())
}

pub(crate) mod socks {
    pub(crate) const SUCCEEDED: u8 = 0x00;
    pub(crate) const GENERAL_FAILURE: u8 = 0x01;
    pub(crate) const NOT_ALLOWED: u8 = 0x02;
    pub(crate) const NETWORK_UNREACHABLE: u8 = 0x03;
    pub(crate) const HOST_UNREACHABLE: u8 = 0x04;
    pub(crate) const CONNECTION_REFUSED: u8 = 0x05;
    pub(crate) const TTL_EXPIRED: u8 = 0x06;
    pub(crate) const COMMAND_NOT_SUPPORTED: u8 = 0x07;
    pub(crate) const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;
    /// Method selection: no acceptable methods.
    pub(crate) const NO_ACCEPTABLE_METHODS: u8 = 0xff;
}

pub(crate) fn socks_code(refusal: &Refusal) -> u8 {
    match refusal {
        Refusal::NotAllowed { .. } | Refusal::NonPublic { .. } => socks::NOT_ALLOWED,
        Refusal::BadHost { .. } => socks::GENERAL_FAILURE,
        Refusal::Resolve { .. } | Refusal::NoAddress { .. } => socks::HOST_UNREACHABLE,
        Refusal::Connect { source, .. } => match source.kind() {
            io::ErrorKind::ConnectionRefused => socks::CONNECTION_REFUSED,
            io::ErrorKind::NetworkUnreachable => socks::NETWORK_UNREACHABLE,
            _ => socks::HOST_UNREACHABLE,
        },
        Refusal::Timeout { .. } => socks::TTL_EXPIRED,
    }
}

/// A SOCKS5 reply. The bound address is always 0.0.0.0:0: the host's own
/// addresses are none of the sandbox's business, and clients ignore it.
pub(crate) fn socks_reply(code: u8) -> [u8; 10] {
    [5, code, 0, 1, 0, 0, 0, 0, 0, 0]
}

/// Sends a last message and closes without losing it: after shutting down
/// the write side, what the client still sends is read and dropped for a
/// moment, since closing with unread data would reset the connection and the
/// client might never see the message (a "lingering close").
pub(crate) async fn send_and_close(stream: &mut TcpStream, message: &[u8]) {
    let _ = write_and_shutdown(stream, message).await;
    drain(stream).await;
}

/// [`send_and_close`] over the two halves of any stream (a TLS stream inside
/// a tunnel): the message, the close, then what the client still sends is
/// read and dropped for a moment.
pub(crate) async fn send_and_close_halves<R, W>(read: &mut R, write: &mut W, message: &[u8])
where
    R: tokio::io::AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let _ = write_and_shutdown(write, message).await;
    drain(read).await;
}

async fn write_and_shutdown<W: AsyncWrite + Unpin>(w: &mut W, message: &[u8]) -> io::Result<()> {
    w.write_all(message).await?;
    w.flush().await?;
    w.shutdown().await
}

pub(crate) async fn drain<R: tokio::io::AsyncRead + Unpin>(r: &mut R) {
    let mut sink = [0u8; 8192];
    let mut budget: usize = 1 << 20;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while budget > 0 {
            match r.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => budget = budget.saturating_sub(n),
            }
        }
    })
    .await;
}

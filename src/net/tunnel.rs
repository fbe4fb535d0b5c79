//! Byte tunnels: CONNECT and SOCKS5 to destinations whose traffic the proxy
//! does not look into.
//!
//! Each direction waits for data, reads up to 64 KiB into a buffer that
//! exists only until it is written on, and waits again. Large reads keep the
//! system calls per byte low (a download through the tunnel costs about what
//! it costs the two ends); buffers that live only while data moves keep an
//! idle tunnel at its two sockets (a sandbox may hold a thousand open).
//! End of stream in one direction is passed on as a half-close, and the
//! tunnel ends when both directions have, or either fails.

use std::io;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};

/// The most one read takes.
const CHUNK: usize = 64 * 1024;

/// Sends `early` (what the client sent before the tunnel was up) upstream,
/// then relays both ways until both sides are done.
pub(crate) async fn relay(mut client: TcpStream, early: Vec<u8>, mut upstream: TcpStream) {
    if !early.is_empty() && upstream.write_all(&early).await.is_err() {
        return;
    }
    drop(early);
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let _: io::Result<_> = tokio::try_join!(one_way(client_read, upstream_write), one_way(upstream_read, client_write));
}

async fn one_way(from: ReadHalf<'_>, mut to: WriteHalf<'_>) -> io::Result<()> {
    loop {
        from.readable().await?;
        let mut buf = Vec::with_capacity(CHUNK);
        match from.try_read_buf(&mut buf) {
            Ok(0) => return to.shutdown().await,
            Ok(_) => to.write_all(&buf).await?,
            // Readiness can be spurious.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

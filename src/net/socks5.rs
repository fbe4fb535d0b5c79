//! SOCKS5 (RFC 1928): no authentication, CONNECT only. Clients inside the
//! sandbox have no DNS, so they send names (`socks5h://`, ATYP domain); IPv4
//! and IPv6 addresses are accepted too and judged as IP literals. The reply
//! to a refusal is 0x02 "connection not allowed by ruleset" (SOCKS has no
//! room for text: the violation report carries it).
//!
//! After a CONNECT, a destination the hook intercepts is served by
//! [`intercept`] instead of a byte tunnel, as for HTTP CONNECT.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::body::Buffered;
use super::responses::{self, socks};
use super::{ProxyConfig, intercept, policy, tunnel};

pub(crate) const VERSION: u8 = 0x05;
const NO_AUTH: u8 = 0x00;
const CMD_CONNECT: u8 = 0x01;
const ATYP_V4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_V6: u8 = 0x04;

enum Handshake {
    Connect {
        host: String,
        port: u16,
    },
    /// Answer with this reply code, then close.
    Reply(u8),
    /// Close without a word (bad version, no acceptable method already said).
    Close,
}

pub(crate) async fn serve(mut client: Buffered<TcpStream>, config: &ProxyConfig) {
    let handshake = match tokio::time::timeout(config.request_timeout, handshake(&mut client)).await {
        Ok(Ok(h)) => h,
        _ => return, // timed out, closed or reset mid-handshake
    };
    let (host, port) = match handshake {
        Handshake::Connect { host, port } => (host, port),
        Handshake::Reply(code) => {
            return responses::send_and_close(client.get_mut(), &responses::socks_reply(code)).await;
        }
        Handshake::Close => return,
    };
    let (upstream, dest) = match policy::connect(config, &host, port).await {
        Ok(connected) => connected,
        Err(refusal) => {
            let reply = responses::socks_reply(responses::socks_code(&refusal));
            return responses::send_and_close(client.get_mut(), &reply).await;
        }
    };
    if let Some(interception) = intercept::wanted(config, &dest) {
        if client.get_mut().write_all(&responses::socks_reply(socks::SUCCEEDED)).await.is_ok() {
            intercept::serve(client, upstream, &dest, interception, config).await;
        }
        return;
    }
    let (mut client, early) = client.into_parts();
    if client.write_all(&responses::socks_reply(socks::SUCCEEDED)).await.is_ok() {
        tunnel::relay(client, early, upstream).await;
    }
}

/// Reads until `pending` holds `n` bytes.
async fn need(client: &mut Buffered<TcpStream>, n: usize) -> io::Result<()> {
    while client.pending().len() < n {
        client.fill_more(None).await?;
    }
    Ok(())
}

async fn handshake(client: &mut Buffered<TcpStream>) -> io::Result<Handshake> {
    need(client, 2).await?;
    let methods = client.pending()[1] as usize;
    need(client, 2 + methods).await?;
    let no_auth = client.pending()[2..2 + methods].contains(&NO_AUTH);
    client.consume(2 + methods);
    if !no_auth {
        client.get_mut().write_all(&[VERSION, socks::NO_ACCEPTABLE_METHODS]).await?;
        return Ok(Handshake::Close);
    }
    client.get_mut().write_all(&[VERSION, NO_AUTH]).await?;

    need(client, 4).await?;
    let [version, command, _reserved, atyp] = client.pending()[..4] else { return Ok(Handshake::Close) };
    if version != VERSION {
        return Ok(Handshake::Close);
    }
    let (host, len) = match atyp {
        ATYP_V4 => {
            need(client, 4 + 4 + 2).await?;
            let o = &client.pending()[4..8];
            (Ipv4Addr::new(o[0], o[1], o[2], o[3]).to_string(), 4 + 4)
        }
        ATYP_V6 => {
            need(client, 4 + 16 + 2).await?;
            let mut o = [0u8; 16];
            o.copy_from_slice(&client.pending()[4..20]);
            (format!("[{}]", Ipv6Addr::from(o)), 4 + 16)
        }
        ATYP_DOMAIN => {
            need(client, 5).await?;
            let n = client.pending()[4] as usize;
            need(client, 5 + n + 2).await?;
            match std::str::from_utf8(&client.pending()[5..5 + n]) {
                Ok(name) => (name.to_string(), 5 + n),
                Err(_) => return Ok(Handshake::Reply(socks::GENERAL_FAILURE)),
            }
        }
        _ => return Ok(Handshake::Reply(socks::ADDRESS_TYPE_NOT_SUPPORTED)),
    };
    let port = u16::from_be_bytes([client.pending()[len], client.pending()[len + 1]]);
    client.consume(len + 2);
    if command != CMD_CONNECT {
        return Ok(Handshake::Reply(socks::COMMAND_NOT_SUPPORTED));
    }
    Ok(Handshake::Connect { host, port })
}

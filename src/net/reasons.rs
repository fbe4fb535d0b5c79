//! Why a destination was not reached, in words a person can act on. The
//! program inside the sandbox sees [`Refusal::message`] (HTTP bodies); the
//! host sees [`Refusal::detail`] (`onViolation`, the CLI line).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::policy::net::Host;

/// The kinds of address a name may not resolve to (SPEC §3): reaching them
/// through a name would let DNS point the sandbox into the host's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrKind {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    Multicast,
    Broadcast,
    Reserved,
}

impl fmt::Display for AddrKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrKind::Unspecified => "an unspecified address",
            AddrKind::Loopback => "a loopback address",
            AddrKind::Private => "a private-network address",
            AddrKind::LinkLocal => "a link-local address",
            AddrKind::SharedCgnat => "a carrier-grade NAT (100.64.0.0/10) address",
            AddrKind::Multicast => "a multicast address",
            AddrKind::Broadcast => "the broadcast address",
            AddrKind::Reserved => "a reserved address",
        })
    }
}

/// Why a request did not reach its destination. The first three are
/// refusals by policy (reported as violations); the others are failures.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No NET line allows the host on that port. `suggestion` is the NET line
    /// that would.
    #[error("{}:{port} is not allowed by NET", display(.host))]
    NotAllowed { host: Host, port: u16, suggestion: String },
    /// NET allows the name, but it resolves only to addresses a name may not
    /// reach (and `network.resolve` does not map it).
    #[error("{}:{port} resolves to {addr}, {kind}", display(.host))]
    NonPublic { host: Host, port: u16, line: String, addr: IpAddr, kind: AddrKind },
    /// Not a host name or IP address at all.
    #[error("\"{host}\" is not a valid host name")]
    BadHost { host: String },
    #[error("could not resolve {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("{host} has no address")]
    NoAddress { host: String },
    #[error("could not connect to {}:{port} ({addr}): {source}", display(.host))]
    Connect {
        host: Host,
        port: u16,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("connecting to {}:{port} timed out after {}", display(.host), secs(.after))]
    Timeout { host: Host, port: u16, after: Duration },
}

fn display(host: &Host) -> String {
    host.to_string()
}

fn secs(d: &Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

impl Refusal {
    /// True for the refusals NET (or the address rule) made: these are reported.
    pub fn is_violation(&self) -> bool {
        matches!(self, Refusal::NotAllowed { .. } | Refusal::NonPublic { .. })
    }

    /// The text the program inside the sandbox gets (an HTTP response body).
    pub fn message(&self) -> String {
        match self {
            Refusal::NotAllowed { host, port, suggestion } => {
                let why = match host {
                    Host::Ip(_) => " (an IP address is allowed only when a NET line lists it)",
                    Host::Name(_) => "",
                };
                format!(
                    "bun-sandbox: {host}:{port} is not allowed by the Sandboxfile{why}. \
                     Add this line to allow it:\n\nNET {suggestion}\n"
                )
            }
            Refusal::NonPublic { host, port, line, addr, kind } => format!(
                "bun-sandbox: {host}:{port} is allowed by the Sandboxfile line \"NET {line}\", but {host} \
                 resolves to {addr}, {kind}. A name may not lead the sandbox into loopback, private or \
                 link-local networks (DNS rebinding). To send {host} to a local address on purpose, map \
                 it in network.resolve, e.g. \"{host}\": \"{}\".\n",
                SocketAddr::new(*addr, *port)
            ),
            other => format!("bun-sandbox: {other}\n"),
        }
    }

    /// One line for the host's report.
    pub fn detail(&self) -> String {
        match self {
            Refusal::NotAllowed { host, port, suggestion } => {
                format!("{host}:{port} is not allowed by the Sandboxfile; add \"NET {suggestion}\" to allow it")
            }
            Refusal::NonPublic { host, port, addr, kind, .. } => format!(
                "{host}:{port} resolves to {addr}, {kind}, which a name may not reach; \
                 map {host} in network.resolve to allow it"
            ),
            other => other.to_string(),
        }
    }
}

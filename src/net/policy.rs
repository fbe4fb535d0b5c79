//! The decision for one destination, and the connection to exactly the
//! address that was checked.
//!
//! 1. NET must allow the host on that port (`NetPolicy::allows_host`); the
//!    line that did is kept. `*` and wildcards never match IP literals, so an
//!    IP literal passes only when a NET line lists it.
//! 2. The address: a `network.resolve` mapping if there is one (explicit
//!    consent, used as is); an IP literal NET listed (explicit consent, even
//!    loopback: note that the proxy dials from the host's network namespace,
//!    so `NET 127.0.0.1` reaches the *host's* loopback); otherwise the name
//!    is resolved here, and addresses a name may not reach (loopback,
//!    private, link-local, CGNAT, unspecified, multicast, broadcast,
//!    reserved; IPv4 inside IPv6 judged as IPv4) are dropped. None left: refused.
//! 3. Connect to those addresses in order, with no second resolution.
//!
//! DNS is `tokio::net::lookup_host`, the system resolver (getaddrinfo): the
//! proxy runs in the host's namespace and should resolve exactly as the
//! host's own tools do (/etc/hosts, nsswitch, a VPN's resolver), with no
//! extra dependency. It runs on tokio's blocking pool; the connect timeout
//! bounds it.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::reasons::{AddrKind, Refusal};
use super::{Destination, ProxyConfig, Violation};
use crate::policy::net::{Host, NetPolicy};

/// A `network.resolve` key that is neither `host` nor `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "network.resolve key \"{key}\" is not a host or host:port; write e.g. \"api.example.com\" or \"api.example.com:443\""
)]
pub struct ResolveKeyError {
    pub key: String,
}

/// `network.resolve`, normalised.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResolveMap {
    by_port: HashMap<(Host, u16), SocketAddr>,
    any_port: HashMap<Host, SocketAddr>,
}

impl ResolveMap {
    pub(crate) fn new(entries: &HashMap<String, SocketAddr>) -> Result<ResolveMap, ResolveKeyError> {
        let mut map = ResolveMap::default();
        for (key, addr) in entries {
            let bad = || ResolveKeyError { key: key.clone() };
            let (host, port) = split_host_port(key).ok_or_else(bad)?;
            let host = Host::parse(host).ok_or_else(bad)?;
            match port {
                Some(0) => return Err(bad()),
                Some(port) => map.by_port.insert((host, port), *addr),
                None => map.any_port.insert(host, *addr),
            };
        }
        Ok(map)
    }

    pub(crate) fn get(&self, host: &Host, port: u16) -> Option<SocketAddr> {
        self.by_port.get(&(host.clone(), port)).or_else(|| self.any_port.get(host)).copied()
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`; `None` when what
/// follows the host is not a port.
pub(crate) fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, rest) = if s.starts_with('[') {
        let end = s.find(']')? + 1;
        (&s[..end], &s[end..])
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => (s, ""), // bare IPv6
            Some((h, _)) => (h, &s[h.len()..]),
            None => (s, ""),
        }
    };
    let port = match rest {
        "" => None,
        _ => {
            let digits = rest.strip_prefix(':')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(digits.parse().ok()?)
        }
    };
    Some((host, port))
}

/// What kind of address `ip` is, when it is one a name may not lead to.
pub fn classify(ip: IpAddr) -> Option<AddrKind> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddrKind> {
    let [a, b, ..] = ip.octets();
    Some(match (a, b) {
        _ if ip.is_broadcast() => AddrKind::Broadcast,
        (0, _) => AddrKind::Unspecified, // "this network", 0.0.0.0/8
        (127, _) => AddrKind::Loopback,
        (10, _) | (172, 16..=31) | (192, 168) => AddrKind::Private,
        (169, 254) => AddrKind::LinkLocal,
        (100, 64..=127) => AddrKind::SharedCgnat,
        (224..=239, _) => AddrKind::Multicast,
        (240..=255, _) => AddrKind::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddrKind> {
    let seg = ip.segments();
    // IPv4-mapped (::ffff:a.b.c.d) reaches the IPv4 address itself.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    // The NAT64 well-known prefix 64:ff9b::/96 is translated to the IPv4 address it embeds.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., a, b, c, d] = ip.octets();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    Some(match seg[0] {
        _ if ip.is_unspecified() => AddrKind::Unspecified,
        _ if ip.is_loopback() => AddrKind::Loopback,
        // ::/96 other than the above: deprecated IPv4-compatible addresses.
        0 if seg[1..6] == [0; 5] => AddrKind::Reserved,
        // 64:ff9b:1::/48, local-use NAT64 (RFC 8215).
        0x64 if seg[1] == 0xff9b && seg[2] == 1 => AddrKind::Private,
        s if s & 0xfe00 == 0xfc00 => AddrKind::Private, // fc00::/7 unique local
        s if s & 0xffc0 == 0xfe80 => AddrKind::LinkLocal, // fe80::/10
        s if s & 0xffc0 == 0xfec0 => AddrKind::Private, // fec0::/10, deprecated site-local
        s if s & 0xff00 == 0xff00 => AddrKind::Multicast,
        _ => return None,
    })
}

/// The NET line to suggest for a refused host: with the port when a line
/// already names the host on other ports (the Sandboxfile restricts it).
fn suggestion(policy: &NetPolicy, host: &Host, port: u16) -> String {
    let port_restricted = policy.patterns().iter().any(|p| p.port().is_some() && p.matches(host, p.port()));
    if port_restricted { format!("{host}:{port}") } else { host.to_string() }
}

fn violation_host(host: &Host) -> String {
    match host {
        Host::Name(name) => name.clone(),
        Host::Ip(ip) => ip.to_string(),
    }
}

/// Decides and connects: the stream to the checked destination, or why not.
/// A refusal by policy is reported through `on_violation` here, once.
pub(crate) async fn connect(config: &ProxyConfig, host: &str, port: u16) -> Result<(TcpStream, Destination), Refusal> {
    let result = decide_and_connect(config, host, port).await;
    if let Err(refusal) = &result
        && refusal.is_violation()
    {
        let (host, port) = match refusal {
            Refusal::NotAllowed { host, port, .. } | Refusal::NonPublic { host, port, .. } => (host, *port),
            _ => return result,
        };
        config.report(Violation { host: violation_host(host), port, detail: refusal.detail() });
    }
    result
}

async fn decide_and_connect(config: &ProxyConfig, host: &str, port: u16) -> Result<(TcpStream, Destination), Refusal> {
    let parsed = Host::parse(host).filter(|_| port != 0);
    let Some(host) = parsed else {
        return Err(Refusal::BadHost { host: host.chars().take(300).collect() });
    };
    let Some(line) = config.policy.allows_host(&host, Some(port)) else {
        let suggestion = suggestion(&config.policy, &host, port);
        return Err(Refusal::NotAllowed { host, port, suggestion });
    };
    let line = line.to_string();
    let deadline = Instant::now() + config.connect_timeout;
    let timed_out = |host: &Host| Refusal::Timeout { host: host.clone(), port, after: config.connect_timeout };

    let addrs: Vec<SocketAddr> = match (config.resolve.get(&host, port), &host) {
        (Some(mapped), _) => vec![mapped],
        (None, Host::Ip(ip)) => vec![SocketAddr::new(*ip, port)],
        (None, Host::Name(name)) => {
            let found = tokio::time::timeout_at(deadline, tokio::net::lookup_host((name.as_str(), port)))
                .await
                .map_err(|_| timed_out(&host))?
                .map_err(|source| Refusal::Resolve { host: name.clone(), source })?;
            let mut public = Vec::new();
            let mut refused = None;
            for addr in found {
                match classify(addr.ip()) {
                    None => public.push(addr),
                    Some(kind) => {
                        refused.get_or_insert((addr.ip(), kind));
                    }
                }
            }
            if public.is_empty() {
                return Err(match refused {
                    Some((addr, kind)) => Refusal::NonPublic { host, port, line, addr, kind },
                    None => Refusal::NoAddress { host: name.clone() },
                });
            }
            public
        }
    };

    let mut last_error = None;
    for addr in addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, Destination { host, port, line, addr }));
            }
            Ok(Err(source)) => last_error = Some((addr, source)),
            Err(_) => return Err(timed_out(&host)),
        }
    }
    let (addr, source) = last_error
        .unwrap_or_else(|| (SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port), io::ErrorKind::NotFound.into()));
    Err(Refusal::Connect { host, port, addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Option<AddrKind> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn addresses_a_name_may_not_reach() {
        for (ip, expected) in [
            ("127.0.0.1", AddrKind::Loopback),
            ("127.255.0.9", AddrKind::Loopback),
            ("10.1.2.3", AddrKind::Private),
            ("172.16.0.1", AddrKind::Private),
            ("172.31.255.255", AddrKind::Private),
            ("192.168.1.1", AddrKind::Private),
            ("169.254.169.254", AddrKind::LinkLocal),
            ("100.64.0.1", AddrKind::SharedCgnat),
            ("100.127.255.255", AddrKind::SharedCgnat),
            ("0.0.0.0", AddrKind::Unspecified),
            ("0.1.2.3", AddrKind::Unspecified),
            ("224.0.0.1", AddrKind::Multicast),
            ("255.255.255.255", AddrKind::Broadcast),
            ("240.0.0.1", AddrKind::Reserved),
            ("::", AddrKind::Unspecified),
            ("::1", AddrKind::Loopback),
            ("::ffff:127.0.0.1", AddrKind::Loopback),
            ("::ffff:10.0.0.1", AddrKind::Private),
            ("64:ff9b::a9fe:a9fe", AddrKind::LinkLocal),
            ("::127.0.0.1", AddrKind::Reserved),
            ("fc00::1", AddrKind::Private),
            ("fd12:3456::1", AddrKind::Private),
            ("fe80::1", AddrKind::LinkLocal),
            ("febf::1", AddrKind::LinkLocal),
            ("fec0::1", AddrKind::Private),
            ("ff02::1", AddrKind::Multicast),
        ] {
            assert_eq!(kind(ip), Some(expected), "{ip}");
        }
        for ip in [
            "93.184.215.14",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.0.2.1",
            "2001:db8::1",
            "2606:4700::1111",
            "::ffff:93.184.215.14",
            "64:ff9b::808:808",
        ] {
            assert_eq!(kind(ip), None, "{ip}");
        }
    }

    #[test]
    fn resolve_keys() {
        let addr: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        let entries = |k: &str| HashMap::from([(k.to_string(), addr)]);
        let map = ResolveMap::new(&entries("API.Example.com.")).unwrap();
        assert_eq!(map.get(&Host::parse("api.example.com").unwrap(), 443), Some(addr));
        assert_eq!(map.get(&Host::parse("api.example.com").unwrap(), 80), Some(addr));
        let map = ResolveMap::new(&entries("api.example.com:443")).unwrap();
        assert_eq!(map.get(&Host::parse("api.example.com").unwrap(), 443), Some(addr));
        assert_eq!(map.get(&Host::parse("api.example.com").unwrap(), 80), None);
        let map = ResolveMap::new(&entries("[::1]:443")).unwrap();
        assert_eq!(map.get(&Host::parse("::1").unwrap(), 443), Some(addr));
        for bad in ["", "a b", "api.example.com:", "api.example.com:0", "api.example.com:x", "http://a.test", "[::1"] {
            assert!(ResolveMap::new(&entries(bad)).is_err(), "{bad:?}");
        }
        let both =
            HashMap::from([("a.test".to_string(), addr), ("a.test:80".to_string(), "127.0.0.2:80".parse().unwrap())]);
        let map = ResolveMap::new(&both).unwrap();
        assert_eq!(map.get(&Host::parse("a.test").unwrap(), 80), Some("127.0.0.2:80".parse().unwrap()));
        assert_eq!(map.get(&Host::parse("a.test").unwrap(), 81), Some(addr));
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("a.test:443"), Some(("a.test", Some(443))));
        assert_eq!(split_host_port("a.test"), Some(("a.test", None)));
        assert_eq!(split_host_port("[::1]:80"), Some(("[::1]", Some(80))));
        assert_eq!(split_host_port("::1"), Some(("::1", None)));
        assert_eq!(split_host_port("a.test:99999"), None);
        assert_eq!(split_host_port("[::1]x"), None);
    }
}

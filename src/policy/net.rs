//! The NET host matcher (SPEC §1.2): the one implementation that `validate`,
//! `Sandbox.isNetworkAllowed` and the egress proxy use.
//!
//! A NET line is one of
//! - `api.example.com`: exactly that host;
//! - `*.example.com`: any host under `example.com` at a label boundary
//!   (`a.example.com`, `a.b.example.com`), never `example.com` itself and never
//!   `evilexample.com`;
//! - `*`: every host *name* (IP literals are allowed only when a NET line
//!   lists them, SPEC §3);
//! - an IPv4 literal `192.0.2.1` or a bracketed IPv6 literal `[2001:db8::1]`;
//!
//! each with an optional `:port` (1..65535); a line with a port allows only
//! that port, one without allows every port. Matching is ASCII
//! case-insensitive and ignores one trailing dot, on lines and hosts alike.
//!
//! Host names are letters, digits, `-` and `_` in labels of at most 63
//! characters (no label starts or ends with `-`), at most 253 characters in
//! all. `_` is accepted because real service names use it; anything else,
//! including non-ASCII (write the `xn--` form), is refused.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a NET line (or a SECRET host) is not a host pattern. Each message is a
/// clause that follows the quoted pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetPatternProblem {
    #[error("is empty; write a host such as \"api.example.com\"")]
    Empty,
    #[error("contains a blank; write one host per NET line")]
    Blank,
    #[error("is a URL; write just the host{}", suggest(.host))]
    Url { host: String },
    #[error("has a path; write just the host{}", suggest(.host))]
    Path { host: String },
    #[error("has no host before the port; write e.g. \"api.example.com{port}\"")]
    NoHost { port: String },
    #[error("has an invalid port \"{port}\"; a port is a number from 1 to 65535")]
    BadPort { port: String },
    #[error("has more than one \":\"; write one host with at most one port, e.g. \"api.example.com:443\"")]
    ExtraColon,
    #[error("is an IPv6 address without brackets; write \"[{addr}]\", or \"[{addr}]:443\" with a port")]
    UnbracketedIpv6 { addr: String },
    #[error("is not a valid IPv6 address in brackets, e.g. \"[2001:db8::1]\" or \"[::1]:443\"")]
    BadIpv6,
    #[error("looks like an IP address but is not a valid IPv4 address")]
    BadIpv4,
    #[error("puts a wildcard over an IP address; list IP addresses one by one")]
    WildcardOverIp,
    #[error("has no domain after \"*.\"; write e.g. \"*.example.com\"")]
    BareWildcard,
    #[error(
        "has \"*\" where only a whole first label may be; write \"*.example.com\" for every subdomain, or \"*\" for every host"
    )]
    MisplacedWildcard,
    #[error("starts with a dot; write \"*.{rest}\" for its subdomains or \"{rest}\" for the host itself")]
    LeadingDot { rest: String },
    #[error("has an empty label (two dots in a row)")]
    EmptyLabel,
    #[error("contains \"{ch}\", which is not allowed in a host name (letters, digits, \"-\", \"_\" and \".\" are)")]
    BadChar { ch: char },
    #[error("contains \"{ch}\"; write an internationalised name in its ASCII \"xn--\" form")]
    NonAscii { ch: char },
    #[error("has a label \"{label}\" that starts or ends with \"-\"")]
    Hyphen { label: String },
    #[error("has a label longer than 63 characters")]
    LabelTooLong,
    #[error("is longer than 253 characters")]
    TooLong,
}

/// `, e.g. "host"` when there is a host to suggest.
fn suggest(host: &str) -> String {
    if host.is_empty() { String::new() } else { format!(", e.g. \"{host}\"") }
}

/// A NET line that is not a host pattern: `NET "<line>" <problem>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("NET \"{pattern}\" {problem}")]
pub struct NetPatternError {
    pub pattern: String,
    pub problem: NetPatternProblem,
}

/// A host as a client names it, normalised: a lower-case DNS name without a
/// trailing dot, or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    /// Parses a host without a port: a name, an IPv4 address, or an IPv6
    /// address with or without brackets. `None` for anything else, which no
    /// NET line allows.
    pub fn parse(host: &str) -> Option<Host> {
        let unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        if let Some(v6) = unbracketed {
            return v6.parse::<Ipv6Addr>().ok().map(|ip| Host::Ip(ip.into()));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(Host::Ip(ip));
        }
        let name = host.strip_suffix('.').unwrap_or(host);
        if let Ok(ip) = name.parse::<Ipv4Addr>() {
            return Some(Host::Ip(ip.into()));
        }
        parse_name(host).ok().filter(|n| !looks_numeric(n)).map(Host::Name)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// `*`: every host name.
    Any,
    /// `*.suffix`: names strictly under `suffix` (stored without `*.`).
    Subdomains(String),
    Exact(Host),
}

/// One compiled NET line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPattern {
    line: String,
    target: Target,
    port: Option<u16>,
}

impl NetPattern {
    pub fn parse(line: &str) -> Result<NetPattern, NetPatternError> {
        let fail = |problem| NetPatternError { pattern: line.to_string(), problem };
        let (target, port) = parse_pattern(line).map_err(fail)?;
        Ok(NetPattern { line: line.to_string(), target, port })
    }

    /// The line as written.
    pub fn as_str(&self) -> &str {
        &self.line
    }

    /// The only port this line allows, if it names one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The address, for a line that names one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.target {
            Target::Exact(Host::Ip(ip)) => Some(ip),
            _ => None,
        }
    }

    /// True for `*` (with or without a port).
    pub fn is_any(&self) -> bool {
        self.target == Target::Any
    }

    /// Whether this line allows `host` on `port` (`None`: the port is not
    /// known, which only a line without a port allows).
    pub fn matches(&self, host: &Host, port: Option<u16>) -> bool {
        let port_ok = self.port.is_none() || self.port == port;
        port_ok
            && match (&self.target, host) {
                (Target::Any, Host::Name(_)) => true,
                (Target::Exact(exact), host) => exact == host,
                (Target::Subdomains(suffix), Host::Name(name)) => is_under(name, suffix),
                // IP literals only where a line names them (SPEC §3).
                (Target::Any | Target::Subdomains(_), Host::Ip(_)) => false,
            }
    }

    /// Whether every host and port `other` allows is also allowed by this
    /// line (used to check that a SECRET's hosts are within NET).
    pub fn covers(&self, other: &NetPattern) -> bool {
        let port_ok = self.port.is_none() || self.port == other.port;
        port_ok
            && match (&self.target, &other.target) {
                (Target::Any, Target::Exact(Host::Ip(_))) => false,
                (Target::Any, _) => true,
                (_, Target::Any) => false,
                (Target::Exact(a), Target::Exact(b)) => a == b,
                (Target::Exact(_), Target::Subdomains(_)) => false,
                (Target::Subdomains(s), Target::Exact(Host::Name(n))) => is_under(n, s),
                (Target::Subdomains(_), Target::Exact(Host::Ip(_))) => false,
                (Target::Subdomains(s), Target::Subdomains(t)) => t == s || is_under(t, s),
            }
    }

    /// For a wildcard over a bare public suffix (`*.com`, `*.co.uk`,
    /// `*.github.io`), that suffix.
    pub fn public_suffix(&self) -> Option<&str> {
        let Target::Subdomains(rest) = &self.target else { return None };
        let suffix = psl::suffix(rest.as_bytes())?;
        // Unknown TLDs (`*.test`) fall under the list's default rule: not flagged.
        (suffix.is_known() && suffix.as_bytes() == rest.as_bytes()).then_some(rest.as_str())
    }
}

/// True for a NET pattern that is a wildcard over a bare public suffix, such
/// as `*.com`, `*.co.uk` or `*.github.io`: it would allow every site there.
pub fn is_public_suffix_wildcard(pattern: &str) -> bool {
    NetPattern::parse(pattern).is_ok_and(|p| p.public_suffix().is_some())
}

/// All NET lines of a Sandboxfile, compiled once. Empty: no network at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPolicy {
    patterns: Vec<NetPattern>,
}

impl NetPolicy {
    /// Compiles every line; the first line that is not a pattern is the error.
    pub fn new(lines: &[String]) -> Result<NetPolicy, NetPatternError> {
        lines.iter().map(|l| NetPattern::parse(l)).collect()
    }

    /// The NET line that allows `host` on `port`, or `None` when it is denied.
    /// `host` is normalised first (case, one trailing dot, IPv6 brackets); a
    /// string that is not a host is denied.
    pub fn allows(&self, host: &str, port: Option<u16>) -> Option<&str> {
        self.allows_host(&Host::parse(host)?, port)
    }

    /// As `allows`, for a host already parsed.
    pub fn allows_host(&self, host: &Host, port: Option<u16>) -> Option<&str> {
        self.patterns.iter().find(|p| p.matches(host, port)).map(NetPattern::as_str)
    }

    /// The NET line that alone allows everything `pattern` allows, if one
    /// does. Lines are not combined: `a.example.com:80` and `:443` together do
    /// not cover `a.example.com`.
    pub fn covering(&self, pattern: &NetPattern) -> Option<&str> {
        self.patterns.iter().find(|p| p.covers(pattern)).map(NetPattern::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn patterns(&self) -> &[NetPattern] {
        &self.patterns
    }
}

impl FromIterator<NetPattern> for NetPolicy {
    fn from_iter<I: IntoIterator<Item = NetPattern>>(iter: I) -> Self {
        NetPolicy { patterns: iter.into_iter().collect() }
    }
}

/// `name` is strictly under `suffix` at a label boundary.
fn is_under(name: &str, suffix: &str) -> bool {
    name.strip_suffix(suffix).and_then(|head| head.strip_suffix('.')).is_some_and(|label| !label.is_empty())
}

fn parse_pattern(line: &str) -> Result<(Target, Option<u16>), NetPatternProblem> {
    use NetPatternProblem as P;
    if line.is_empty() {
        return Err(P::Empty);
    }
    if line.contains(char::is_whitespace) {
        return Err(P::Blank);
    }
    if let Some((_, rest)) = line.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit('@').next().unwrap_or_default();
        return Err(P::Url { host: host.to_string() });
    }
    if let Some((host, _)) = line.split_once('/') {
        return Err(P::Path { host: host.to_string() });
    }
    if let Some(bracketed) = line.strip_prefix('[') {
        let (inner, after) = bracketed.split_once(']').ok_or(P::BadIpv6)?;
        let ip: Ipv6Addr = inner.parse().map_err(|_| P::BadIpv6)?;
        let port = match after {
            "" => None,
            _ => Some(parse_port(after.strip_prefix(':').ok_or(P::BadIpv6)?)?),
        };
        return Ok((Target::Exact(Host::Ip(ip.into())), port));
    }
    let (host, port) = match line.matches(':').count() {
        0 => (line, None),
        1 => {
            let (host, port) = line.split_once(':').unwrap_or((line, ""));
            if host.is_empty() {
                let port = parse_port(port).map(|p| format!(":{p}")).unwrap_or_default();
                return Err(P::NoHost { port });
            }
            (host, Some(parse_port(port)?))
        }
        _ if line.parse::<Ipv6Addr>().is_ok() => {
            return Err(P::UnbracketedIpv6 { addr: line.to_string() });
        }
        _ => return Err(P::ExtraColon),
    };
    Ok((parse_target(host)?, port))
}

fn parse_target(host: &str) -> Result<Target, NetPatternProblem> {
    use NetPatternProblem as P;
    if host == "*" {
        return Ok(Target::Any);
    }
    if let Some(rest) = host.strip_prefix("*.") {
        if rest.is_empty() || rest == "." {
            return Err(P::BareWildcard);
        }
        if rest.contains('*') {
            return Err(P::MisplacedWildcard);
        }
        let name = parse_name(rest)?;
        if looks_numeric(&name) {
            return Err(P::WildcardOverIp);
        }
        return Ok(Target::Subdomains(name));
    }
    if host.contains('*') {
        return Err(P::MisplacedWildcard);
    }
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    if let Ok(ip) = trimmed.parse::<Ipv4Addr>() {
        return Ok(Target::Exact(Host::Ip(ip.into())));
    }
    let name = parse_name(host)?;
    // A name whose last label is a number is a mistyped IPv4 address (no TLD is numeric).
    if looks_numeric(&name) {
        return Err(P::BadIpv4);
    }
    Ok(Target::Exact(Host::Name(name)))
}

/// The last label is a number (decimal, or hex as `inet_aton` reads it): such
/// a "name" is an IP address to many resolvers, and no top-level domain is one.
fn looks_numeric(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or_default();
    let hex = last.strip_prefix("0x").is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    hex || last.bytes().all(|b| b.is_ascii_digit())
}

/// Checks a DNS name and returns it lower-cased without one trailing dot.
fn parse_name(host: &str) -> Result<String, NetPatternProblem> {
    use NetPatternProblem as P;
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() {
        return Err(P::EmptyLabel);
    }
    if name.len() > 253 {
        return Err(P::TooLong);
    }
    let bad = |c: &char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if let Some(ch) = name.chars().find(bad) {
        return Err(if ch.is_ascii() { P::BadChar { ch } } else { P::NonAscii { ch } });
    }
    if let Some(rest) = name.strip_prefix('.') {
        let rest = rest.trim_start_matches('.');
        return Err(P::LeadingDot { rest: if rest.is_empty() { "example.com".into() } else { rest.to_string() } });
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(P::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(P::LabelTooLong);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(P::Hyphen { label: label.to_string() });
        }
    }
    Ok(name.to_ascii_lowercase())
}

/// A port is 1..=65535 in decimal.
fn parse_port(port: &str) -> Result<u16, NetPatternProblem> {
    let bad = || NetPatternProblem::BadPort { port: port.to_string() };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match port.trim_start_matches('0').parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests;

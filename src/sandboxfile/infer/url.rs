//! From a registry URL to a NET line: the host, with `:port` when the port is
//! not the scheme's default.

use super::Env;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The `host[:port]` of an `http`/`https` URL (also with Cargo's `sparse+`
/// or `registry+` prefix, or `git+`). None for anything else, or a host name
/// with characters a NET line should not hold.
pub fn host_of(url: &str) -> Option<String> {
    let url = url.trim().trim_matches(['"', '\'']);
    let url = ["sparse+", "registry+", "git+"].iter().find_map(|p| url.strip_prefix(p)).unwrap_or(url);
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = split_port(host_port)?;
    let host = normal_host(host)?;
    match port {
        Some(p) if p != default_port => Some(format!("{host}:{p}")),
        _ => Some(host),
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_port(host_port: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if host_port.starts_with('[') {
        let end = host_port.find(']')?;
        let (host, after) = host_port.split_at(end + 1);
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(super::parse_port(p)?),
    };
    Some((host, port))
}

/// A host as a NET line writes it: an IP literal (`[v6]` bracketed), or a DNS
/// name lower-cased without its trailing dot, whose labels are 1 to 63
/// letters, digits or inner hyphens and whose last label is not a number.
fn normal_host(host: &str) -> Option<String> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(|ip| format!("[{ip}]"));
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Some(ip.to_string());
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let last = name.rsplit('.').next().unwrap_or_default();
    let numeric = last.chars().all(|c| c.is_ascii_digit());
    (name.len() <= 253 && name.split('.').all(label_ok) && !numeric).then_some(name)
}

/// Replaces `${NAME}` and `$NAME` with variables from `env`, as npm, bun and
/// pip configuration files allow. None when a named variable is not set (the
/// value cannot be known).
pub fn expand(value: &str, env: &Env) -> Option<String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail) = match after.strip_prefix('{') {
            Some(braced) => {
                let end = braced.find('}')?;
                (&braced[..end], &braced[end + 1..])
            }
            None => {
                let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        if name.is_empty() {
            out.push('$');
        } else {
            out.push_str(env.vars.get(name)?);
        }
        rest = tail;
    }
    out.push_str(rest);
    Some(out)
}

/// Adds the host of each URL to `net`, skipping repeats and non-URLs.
pub fn add_hosts<'u>(net: &mut Vec<String>, env: &Env, urls: impl IntoIterator<Item = &'u str>) {
    for url in urls {
        if let Some(host) = expand(url, env).as_deref().and_then(host_of) {
            super::push_unique(net, host);
        }
    }
}

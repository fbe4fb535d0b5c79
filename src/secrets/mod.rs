//! SECRET (SPEC §4, DESIGN "Secrets and TLS"): values the sandbox may use but
//! never inspect.
//!
//! [`Secrets`] holds one sandbox's values and their placeholders. In
//! `secretMode: "proxy"` (the default) the sandbox's environment holds the
//! placeholders ([`Secrets::env`]) and the egress proxy, through
//! [`Secrets::hook`], puts the real values in their place in requests to the
//! secret's hosts, over HTTPS only unless plaintext is allowed. In
//! `secretMode: "env"` the environment holds the values themselves.
//!
//! In both modes the values never reach what the agent reads: responses that
//! echo one get its placeholder back in its place (same length, so framing
//! holds), and every text stream passes through the [`Redactor`], which
//! writes `[secret NAME]`.

mod error;
mod inject;
mod matcher;
mod placeholder;
mod redact;

use std::fmt;
use std::sync::Arc;

use crate::net::{Destination, RequestHook, ViolationFn};
use crate::policy::net::NetPattern;

pub use error::{MIN_PROXY_LEN, SecretError};
pub use redact::{RedactStr, RedactStream, Redactor};

use matcher::Matcher;
use placeholder::Drawn;
pub(crate) use placeholder::fill_random;

/// One SECRET line with its value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// The environment variable's name.
    pub name: String,
    pub value: String,
    /// NET host patterns from the SECRET line; empty: every NET host.
    pub hosts: Vec<String>,
}

impl fmt::Debug for SecretSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug output ends up in logs and panics; the value stays out.
        f.debug_struct("SecretSpec")
            .field("name", &self.name)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("hosts", &self.hosts)
            .finish()
    }
}

/// `secretMode`: what the sandbox's environment holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SecretMode {
    /// Placeholders; the proxy injects the values (SPEC §4).
    #[default]
    Proxy,
    /// The values themselves, for tools that need them locally. Output is
    /// still redacted and echoes still removed; nothing is injected.
    Env,
}

/// The secrets of one sandbox.
pub struct Secrets {
    mode: SecretMode,
    list: Vec<Secret>,
    /// Also finds the values in responses (ids index `list`).
    redactor: Arc<Redactor>,
    /// The placeholders, ids indexing `list`. Empty in env mode, where the
    /// sandbox never sees them.
    placeholders: Matcher,
}

struct Secret {
    name: String,
    value: String,
    /// As long as `value` (empty with it).
    placeholder: String,
    /// Empty: every NET host.
    hosts: Vec<NetPattern>,
}

impl Secret {
    /// Whether the value may be sent to `dest` (transport aside).
    fn in_scope(&self, dest: &Destination) -> bool {
        self.hosts.is_empty() || self.hosts.iter().any(|h| h.matches(&dest.host, Some(dest.port)))
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets").field("mode", &self.mode).field("names", &self.names()).finish_non_exhaustive()
    }
}

impl Secrets {
    /// Checks every spec and draws a fresh placeholder for each value.
    pub fn new(specs: Vec<SecretSpec>, mode: SecretMode) -> Result<Secrets, SecretError> {
        let mut list: Vec<Secret> = Vec::with_capacity(specs.len());
        for spec in specs {
            list.push(check(spec, mode, &list)?);
        }
        for i in 0..list.len() {
            let taken: Vec<&str> = list.iter().flat_map(|s| [s.value.as_str(), s.placeholder.as_str()]).collect();
            let placeholder = match placeholder::generate(list[i].value.len(), &taken).map_err(SecretError::Random)? {
                Drawn::Clear(p) => p,
                // In env mode nothing searches for placeholders: any will do.
                Drawn::Clashing(p) if mode == SecretMode::Env => p,
                Drawn::Clashing(_) => return Err(SecretError::Placeholder { name: list[i].name.clone() }),
            };
            list[i].placeholder = placeholder;
        }
        let search = |e: aho_corasick::BuildError| SecretError::Search(e.to_string());
        let redactor = Redactor::new(list.iter().map(|s| (s.name.as_str(), s.value.as_str()))).map_err(search)?;
        let placeholders = match mode {
            SecretMode::Proxy => Matcher::new(list.iter().map(|s| s.placeholder.as_bytes().to_vec()).enumerate()),
            SecretMode::Env => Matcher::new([]),
        }
        .map_err(search)?;
        Ok(Secrets { mode, list, redactor: Arc::new(redactor), placeholders })
    }

    pub fn mode(&self) -> SecretMode {
        self.mode
    }

    /// The variables to set inside the sandbox: each name with its
    /// placeholder (proxy mode) or its value (env mode), in spec order.
    pub fn env(&self) -> Vec<(String, String)> {
        self.list
            .iter()
            .map(|s| {
                let shown = match self.mode {
                    SecretMode::Proxy => &s.placeholder,
                    SecretMode::Env => &s.value,
                };
                (s.name.clone(), shown.clone())
            })
            .collect()
    }

    /// No secret at all.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|s| s.name.as_str()).collect()
    }

    /// Redacts the values from everything the agent reads.
    pub fn redactor(&self) -> Arc<Redactor> {
        self.redactor.clone()
    }

    /// The proxy's [`RequestHook`] for this sandbox. `plaintext_allowed`
    /// (`network.allowPlaintextSecrets`) lets values go over plain HTTP;
    /// placeholders sent where their value may not go are reported through
    /// `on_violation`.
    pub fn hook(self: &Arc<Self>, plaintext_allowed: bool, on_violation: ViolationFn) -> Arc<dyn RequestHook> {
        Arc::new(inject::SecretHook::new(self.clone(), plaintext_allowed, on_violation))
    }

    /// Writes the placeholder for a value found in a response.
    fn echo(&self, id: usize, matched: &[u8], out: &mut Vec<u8>) {
        match self.list.get(id) {
            Some(s) if s.placeholder.len() == matched.len() => out.extend_from_slice(s.placeholder.as_bytes()),
            // Every id comes from `new`, with a placeholder of the value's
            // length; the fallback still hides the value and keeps the length.
            _ => out.resize(out.len() + matched.len(), b'*'),
        }
    }
}

/// Checks one spec against the rules and the secrets before it.
fn check(spec: SecretSpec, mode: SecretMode, before: &[Secret]) -> Result<Secret, SecretError> {
    let SecretSpec { name, value, hosts } = spec;
    if before.iter().any(|s| s.name == name) {
        return Err(SecretError::Duplicate { name });
    }
    if value.contains('\0') {
        return Err(SecretError::Nul { name });
    }
    if mode == SecretMode::Proxy && !value.is_empty() && value.len() < MIN_PROXY_LEN {
        return Err(SecretError::TooShort { name, len: value.len() });
    }
    let mut patterns = Vec::with_capacity(hosts.len());
    for host in hosts {
        match NetPattern::parse(&host) {
            Ok(p) => patterns.push(p),
            Err(e) => return Err(SecretError::Host { name, host, problem: e.problem }),
        }
    }
    Ok(Secret { name, value, placeholder: String::new(), hosts: patterns })
}

#[cfg(test)]
mod tests;

//! The proxy side of SECRET (SPEC §4): placeholders become values on the way
//! out, values become placeholders on the way back.
//!
//! A secret is *in scope* of a destination when it names no hosts or one of
//! its host patterns matches the destination's host and port. Its value is
//! injected only in scope and only over TLS the proxy terminated, unless
//! plaintext is allowed; anywhere else its placeholder goes as written and
//! the attempt is reported once per exchange. So that echoes of an injected
//! value can be found in the response, such requests ask for
//! `Accept-Encoding: identity`, and a compressed answer is withheld.
//!
//! Responses lose every value (it becomes its placeholder, same length) in
//! every exchange, in both modes.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::net::{
    BodyRewrite, Destination, Exchange, RequestHead, RequestHook, ResponseHead, Transport, Violation, ViolationFn,
};
use crate::policy::net::Host;

use super::{Secret, SecretMode, Secrets};

pub(super) struct SecretHook {
    secrets: Arc<Secrets>,
    plaintext_allowed: bool,
    on_violation: ViolationFn,
}

impl SecretHook {
    pub(super) fn new(secrets: Arc<Secrets>, plaintext_allowed: bool, on_violation: ViolationFn) -> SecretHook {
        SecretHook { secrets, plaintext_allowed, on_violation }
    }
}

impl RequestHook for SecretHook {
    fn intercept(&self, dest: &Destination) -> bool {
        self.secrets.mode == SecretMode::Proxy
            && self.secrets.list.iter().any(|s| !s.value.is_empty() && s.in_scope(dest))
    }

    fn exchange(&self, dest: &Destination, transport: Transport) -> Option<Box<dyn Exchange>> {
        if self.secrets.redactor.is_empty() {
            return None;
        }
        let plans: Vec<Plan> = self
            .secrets
            .list
            .iter()
            .map(|s| match self.secrets.mode {
                SecretMode::Env => Plan::Ignore,
                SecretMode::Proxy if !s.in_scope(dest) => Plan::OutOfScope,
                SecretMode::Proxy if transport == Transport::Plain && !self.plaintext_allowed => Plan::Plaintext,
                SecretMode::Proxy => Plan::Inject,
            })
            .collect();
        let injecting = self.secrets.list.iter().zip(&plans).any(|(s, p)| *p == Plan::Inject && !s.value.is_empty());
        let shared = Arc::new(Shared {
            reported: plans.iter().map(|_| AtomicBool::new(false)).collect(),
            plans,
            secrets: self.secrets.clone(),
            dest: dest.clone(),
            on_violation: self.on_violation.clone(),
        });
        Some(Box::new(SecretExchange { shared, injecting }))
    }
}

/// What becomes of one secret's placeholder in one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Inject,
    /// The destination is not one of the secret's hosts.
    OutOfScope,
    /// In scope, but plain HTTP and plaintext is not allowed.
    Plaintext,
    /// Env mode: the sandbox has the value; placeholders mean nothing.
    Ignore,
}

/// Where in a request a placeholder was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Target,
    Header,
    Body,
}

impl Place {
    /// Why `value` cannot go here, if it cannot: a blank or line break would
    /// end the request line or header early and let the rest be read as
    /// more of the request.
    fn refuses(self, value: &str) -> Option<&'static str> {
        match self {
            Place::Target if value.bytes().any(|b| b <= b' ' || b == 0x7f) => Some(
                "in the request line: its value contains a blank or control character, which a request target cannot hold",
            ),
            Place::Header if value.bytes().any(|b| b == b'\r' || b == b'\n') => {
                Some("in a header: its value contains a line break, which a header cannot hold")
            }
            _ => None,
        }
    }
}

/// One exchange's decisions, shared with its body rewriters.
struct Shared {
    secrets: Arc<Secrets>,
    /// One per secret.
    plans: Vec<Plan>,
    /// One per secret: already reported in this exchange.
    reported: Vec<AtomicBool>,
    dest: Destination,
    on_violation: ViolationFn,
}

impl Shared {
    /// The replacement for placeholder `id` found at `place`.
    fn inject(&self, id: usize, matched: &[u8], out: &mut Vec<u8>, place: Place) {
        let (Some(secret), Some(plan)) = (self.secrets.list.get(id), self.plans.get(id)) else {
            out.extend_from_slice(matched);
            return;
        };
        let refusal = match plan {
            Plan::Ignore => None,
            Plan::Inject => match place.refuses(&secret.value) {
                None => {
                    out.extend_from_slice(secret.value.as_bytes());
                    return;
                }
                Some(why) => Some(format!(
                    "SECRET {} was not sent to {} {why}; the placeholder went instead",
                    secret.name,
                    self.shown(secret)
                )),
            },
            Plan::OutOfScope => Some(format!(
                "SECRET {} was not sent to {}: it is only for {}; the placeholder went instead",
                secret.name,
                self.shown(secret),
                secret.hosts.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", ")
            )),
            Plan::Plaintext => Some(format!(
                "SECRET {} was not sent to {} over plain http: secrets are only injected over https; the placeholder went instead (network.allowPlaintextSecrets allows it)",
                secret.name,
                self.shown(secret)
            )),
        };
        if let Some(detail) = refusal {
            self.report(id, detail);
        }
        out.extend_from_slice(matched);
    }

    /// The destination as a message names it: with the port when one of the
    /// secret's hosts names a port (else the port made no difference).
    fn shown(&self, secret: &Secret) -> String {
        if secret.hosts.iter().any(|h| h.port().is_some()) {
            format!("{}:{}", self.dest.host, self.dest.port)
        } else {
            self.dest.host.to_string()
        }
    }

    fn report(&self, id: usize, detail: String) {
        let Some(reported) = self.reported.get(id) else { return };
        if reported.swap(true, Ordering::Relaxed) {
            return;
        }
        let host = match &self.dest.host {
            Host::Name(name) => name.clone(),
            Host::Ip(ip) => ip.to_string(),
        };
        let violation = Violation { host, port: self.dest.port, detail };
        let on_violation = &self.on_violation;
        // A panicking callback must not take the connection down with it.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| on_violation(violation)));
    }

    /// `bytes` with each placeholder replaced as [`Shared::inject`] decides.
    fn inject_all(&self, bytes: &[u8], place: Place) -> Option<Vec<u8>> {
        self.secrets.placeholders.replace_all(bytes, &mut |id, m, out| self.inject(id, m, out, place))
    }
}

struct SecretExchange {
    shared: Arc<Shared>,
    /// Some value may be injected into this request.
    injecting: bool,
}

impl SecretExchange {
    /// `Authorization: Basic base64(user:password)`, where a token is the
    /// password (`git clone https://user:$TOKEN@host/`, `curl -u`): the
    /// placeholder is inside the base64, so it is decoded, injected and
    /// encoded again (base64 of the same length has the same length).
    fn inject_basic(&self, value: &[u8]) -> Option<Vec<u8>> {
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let text = std::str::from_utf8(value).ok()?.trim();
        let (scheme, credentials) = text.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = engine.decode(credentials.trim()).ok()?;
        let injected = self.shared.inject_all(&decoded, Place::Header)?;
        let mut out = format!("{scheme} ").into_bytes();
        out.extend_from_slice(engine.encode(injected).as_bytes());
        Some(out)
    }
}

impl Exchange for SecretExchange {
    fn request_head(&mut self, head: &mut RequestHead) {
        if self.shared.secrets.mode == SecretMode::Env {
            return;
        }
        if let Some(target) = self.shared.inject_all(head.target.as_bytes(), Place::Target) {
            // Placeholders are ASCII and values UTF-8: still UTF-8.
            head.target = String::from_utf8_lossy(&target).into_owned();
        }
        for (name, value) in &mut head.headers {
            if let Some(injected) = self.shared.inject_all(value, Place::Header) {
                *value = injected;
            } else if name.eq_ignore_ascii_case("authorization")
                && let Some(injected) = self.inject_basic(value)
            {
                *value = injected;
            }
        }
        if self.injecting {
            // Without the header any coding is acceptable (RFC 9110 §12.5.3).
            head.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("accept-encoding"));
            head.headers.push(("Accept-Encoding".to_string(), b"identity".to_vec()));
        }
    }

    fn request_body(&mut self) -> Option<Box<dyn BodyRewrite>> {
        match self.shared.secrets.mode {
            SecretMode::Proxy => Some(Box::new(InjectBody { shared: self.shared.clone(), held: Vec::new() })),
            SecretMode::Env => None,
        }
    }

    fn response_head(&mut self, head: &mut ResponseHead) -> Result<(), String> {
        let secrets = &self.shared.secrets;
        let mut echo = |id: usize, matched: &[u8], out: &mut Vec<u8>| secrets.echo(id, matched, out);
        let values = secrets.redactor.matcher();
        if self.injecting
            && let Some(coding) = compression(&head.headers)
        {
            let coding = values.replace_all(coding.as_bytes(), &mut echo).map_or(coding, |c| lossy(&c));
            return Err(format!(
                "the response from {} is compressed (Content-Encoding: {coding}) although identity was asked for; bun-sandbox cannot check it for SECRET values, so it is withheld",
                self.shared.dest.host
            ));
        }
        if let Some(reason) = values.replace_all(head.reason.as_bytes(), &mut echo) {
            head.reason = lossy(&reason);
        }
        for (_, value) in &mut head.headers {
            if let Some(replaced) = values.replace_all(value, &mut echo) {
                *value = replaced;
            }
        }
        Ok(())
    }

    fn response_body(&mut self) -> Option<Box<dyn BodyRewrite>> {
        Some(Box::new(EchoBody { secrets: self.shared.secrets.clone(), held: Vec::new() }))
    }
}

/// The `Content-Encoding` of a response, when it names a coding other than
/// `identity`.
fn compression(headers: &[(String, Vec<u8>)]) -> Option<String> {
    headers.iter().filter(|(name, _)| name.eq_ignore_ascii_case("content-encoding")).find_map(|(_, value)| {
        let value = lossy(value);
        let coded = value.split(',').map(str::trim).any(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"));
        coded.then(|| value.trim().to_string())
    })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Injects into a request body as it streams.
struct InjectBody {
    shared: Arc<Shared>,
    held: Vec<u8>,
}

impl BodyRewrite for InjectBody {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let shared = &*self.shared;
        let mut inject = |id: usize, m: &[u8], out: &mut Vec<u8>| shared.inject(id, m, out, Place::Body);
        shared.secrets.placeholders.feed(&mut self.held, input, out, &mut inject);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        let shared = &*self.shared;
        let mut inject = |id: usize, m: &[u8], out: &mut Vec<u8>| shared.inject(id, m, out, Place::Body);
        shared.secrets.placeholders.finish(&mut self.held, out, &mut inject);
    }
}

/// Puts placeholders back for values echoed in a response body.
struct EchoBody {
    secrets: Arc<Secrets>,
    held: Vec<u8>,
}

impl BodyRewrite for EchoBody {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let secrets = &*self.secrets;
        secrets.redactor.matcher().feed(&mut self.held, input, out, &mut |id, m, out| secrets.echo(id, m, out));
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        let secrets = &*self.secrets;
        secrets.redactor.matcher().finish(&mut self.held, out, &mut |id, m, out| secrets.echo(id, m, out));
    }
}

#[cfg(test)]
mod tests;

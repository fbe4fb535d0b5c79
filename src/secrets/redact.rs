//! Redaction: the real SECRET values never reach anything the agent reads
//! (process output, callbacks, LOGS, errors; SPEC §4). Each occurrence of a
//! value becomes `[secret NAME]`.
//!
//! Of two values where one starts with the other, the longer is redacted (the
//! leftmost-longest rule of [`super::matcher`]). The streaming forms give
//! exactly what redacting the whole text at once would, however it arrives
//! in pieces, and hold back only the tail that could still become a value.

use std::borrow::Cow;
use std::sync::Arc;

use super::matcher::Matcher;

/// Knows the real values of one sandbox's secrets. Cheap to share; see
/// [`super::Secrets::redactor`].
pub struct Redactor {
    /// The non-empty values; ids index `labels`.
    matcher: Matcher,
    /// `[secret NAME]`, one per secret.
    labels: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values.
        f.debug_struct("Redactor").field("secrets", &self.labels.len()).finish_non_exhaustive()
    }
}

impl Redactor {
    /// `(name, value)` per secret; empty values are never redacted, and of
    /// two secrets with one value the first names it.
    pub(super) fn new<'a>(
        secrets: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Redactor, aho_corasick::BuildError> {
        let mut labels = Vec::new();
        let mut values = Vec::new();
        for (id, (name, value)) in secrets.into_iter().enumerate() {
            labels.push(format!("[secret {name}]").into_bytes());
            values.push((id, value.as_bytes().to_vec()));
        }
        Ok(Redactor { matcher: Matcher::new(values)?, labels })
    }

    /// True when there is no value to redact.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_empty()
    }

    /// The values, for the proxy's same-length replacement of echoes.
    pub(super) fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    pub fn redact_bytes<'a>(&self, input: &'a [u8]) -> Cow<'a, [u8]> {
        match self.matcher.replace_all(input, &mut |id, _, out| self.label(id, out)) {
            Some(redacted) => Cow::Owned(redacted),
            None => Cow::Borrowed(input),
        }
    }

    pub fn redact_str<'a>(&self, input: &'a str) -> Cow<'a, str> {
        match self.redact_bytes(input.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(input),
            // A value is UTF-8 and starts and ends on character boundaries
            // wherever it occurs, so replacing it keeps the text UTF-8.
            Cow::Owned(bytes) => Cow::Owned(into_string(bytes)),
        }
    }

    fn label(&self, id: usize, out: &mut Vec<u8>) {
        // Every id comes from `new`; the fallback still hides the value.
        out.extend_from_slice(self.labels.get(id).map_or(&b"[secret]"[..], Vec::as_slice));
    }
}

/// Redacts bytes that arrive in pieces, such as a file being copied out.
/// Holds back at most the longest value less one byte, and only while what
/// it holds could still become a value.
pub struct RedactStream {
    redactor: Arc<Redactor>,
    held: Vec<u8>,
}

impl RedactStream {
    pub fn new(redactor: Arc<Redactor>) -> RedactStream {
        RedactStream { redactor, held: Vec::new() }
    }

    /// The redacted bytes that are decided with `input`.
    pub fn push(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.held.len() + input.len());
        let redactor = &*self.redactor;
        redactor.matcher.feed(&mut self.held, input, &mut out, &mut |id, _, out| redactor.label(id, out));
        out
    }

    /// The rest, at the end of the stream. The stream can be used again.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.held.len());
        let redactor = &*self.redactor;
        redactor.matcher.finish(&mut self.held, &mut out, &mut |id, _, out| redactor.label(id, out));
        out
    }

    /// How many bytes are held back.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

/// Redacts text that arrives in pieces and gives back text, never cutting a
/// UTF-8 character. Raw bytes ([`RedactStr::push_bytes`]) may cut one
/// anywhere; bytes that are not UTF-8 become U+FFFD, as
/// `String::from_utf8_lossy` of the whole would have it.
pub struct RedactStr {
    bytes: RedactStream,
    /// The start of a character whose other bytes have not come yet.
    partial: Vec<u8>,
}

impl RedactStr {
    pub fn new(redactor: Arc<Redactor>) -> RedactStr {
        RedactStr { bytes: RedactStream::new(redactor), partial: Vec::new() }
    }

    pub fn push(&mut self, text: &str) -> String {
        self.push_bytes(text.as_bytes())
    }

    pub fn push_bytes(&mut self, input: &[u8]) -> String {
        let redacted = self.bytes.push(input);
        self.decode(&redacted, false)
    }

    /// The rest, at the end of the stream. The stream can be used again.
    pub fn finish(&mut self) -> String {
        let redacted = self.bytes.finish();
        self.decode(&redacted, true)
    }

    fn decode(&mut self, bytes: &[u8], last: bool) -> String {
        let mut pending = std::mem::take(&mut self.partial);
        pending.extend_from_slice(bytes);
        let mut text = String::with_capacity(pending.len());
        let mut rest = pending.as_slice();
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    rest = &[];
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = after.get(bad..).unwrap_or_default();
                        }
                        None if last => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &[];
                        }
                        None => {
                            self.partial = after.to_vec();
                            rest = &[];
                        }
                    }
                }
            }
        }
        text
    }
}

fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests;

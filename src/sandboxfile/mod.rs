//! The Sandboxfile: its data model, parser, formatter, validator and inference.
//!
//! Everything here is pure (no I/O except `infer`, which reads the project) and
//! knows nothing about JavaScript; `src/binding/` converts to and from JS.

#[cfg(test)]
mod fixtures;
mod format;
pub mod infer;
mod parse;
pub mod validate;

pub use format::{FormatError, format};
pub use parse::{ParseError, parse};
pub use validate::{Report, validate};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A DEV or TEST process. `name` is never set by the parser (the file has no
/// syntax for it) but may be given through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Process {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<String>,
}

/// A SERVICE: always named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<String>,
}

/// A parsed Sandboxfile, in the shape of the JS API (SPEC §2): optional fields
/// are absent when unset, lists are always present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sandboxfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default)]
    pub run_commands: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<Process>,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default)]
    pub tests: Vec<Process>,
    #[serde(default)]
    pub outputs: Vec<String>,
    #[serde(default)]
    pub logs: Vec<String>,
    #[serde(default)]
    pub net: Vec<String>,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infer: Option<String>,
    /// Hosts each secret is scoped to; present only when a SECRET line names hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hosts: Option<BTreeMap<String, Vec<String>>>,
}

impl Sandboxfile {
    /// The hosts a secret may be sent to, if its SECRET line scoped it.
    pub fn hosts_of_secret(&self, name: &str) -> Option<&[String]> {
        self.secret_hosts.as_ref()?.get(name).map(Vec::as_slice)
    }
}

/// True for a name `SECRET` accepts: `[A-Za-z0-9_]+`.
pub fn is_env_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

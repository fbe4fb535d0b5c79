//! Checks a Sandboxfile for mistakes the parser cannot see (SPEC §1.2).

use super::Sandboxfile;
use serde::Serialize;

/// What `validate` found: errors stop a Sandbox from starting, warnings do not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

pub fn validate(_file: &Sandboxfile) -> Report {
    Report::default()
}

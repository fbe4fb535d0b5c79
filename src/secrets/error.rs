//! Why a set of SECRET values cannot be used. Every message names the secret
//! (never its value) and says what to change.

use std::io;

use crate::policy::net::NetPatternProblem;

/// The shortest value a placeholder can stand for in `secretMode: "proxy"`:
/// a shorter random string would turn up in ordinary text (a request body, a
/// hash) and be replaced there by the real value.
pub const MIN_PROXY_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Environment variables are C strings; a NUL would cut the value short.
    #[error("SECRET {name} contains a NUL byte, which an environment variable cannot hold; remove it from the value")]
    Nul { name: String },
    #[error(
        "SECRET {name} is {len} bytes long; placeholders for values shorter than {MIN_PROXY_LEN} bytes would be mistaken for ordinary text; use a longer value or secretMode: \"env\""
    )]
    TooShort { name: String, len: usize },
    #[error("SECRET {name} host \"{host}\" {problem}")]
    Host { name: String, host: String, problem: NetPatternProblem },
    /// Two specs with one name: which hosts and value apply would be a guess.
    #[error("SECRET {name} is given twice; give each secret once, with all of its hosts")]
    Duplicate { name: String },
    #[error("could not read random bytes for the SECRET placeholders: {0}")]
    Random(#[source] io::Error),
    /// Practically unreachable for values of 8 bytes or more; kept so that
    /// placeholder generation always ends.
    #[error(
        "could not make a placeholder for SECRET {name} that differs from every other SECRET value and placeholder; use a longer value"
    )]
    Placeholder { name: String },
    #[error("the SECRET values cannot be searched for: {0}")]
    Search(String),
}

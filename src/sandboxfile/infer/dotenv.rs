//! SECRET names from `.env` files. Only the names are read into the result,
//! never a value.

use super::project::Project;
use super::push_unique;
use crate::sandboxfile::is_env_name;

/// Read in this order; `.env` is the reference's, the others list the same
/// kind of names (`.env.example` is often the only one committed).
const FILES: &[&str] = &[".env", ".env.local", ".env.example"];
/// `_API_KEY` is covered by `_KEY`, and listed for the record.
const SUFFIXES: &[&str] = &["_KEY", "_SECRET", "_TOKEN", "_PASSWORD", "_API_KEY"];

pub fn secrets(project: &Project) -> Vec<String> {
    let mut names = Vec::new();
    for file in FILES {
        for name in project.read(file).as_deref().map(names_in).unwrap_or_default() {
            push_unique(&mut names, name.to_string());
        }
    }
    names
}

/// The secret-looking variable names assigned in a dotenv text: `NAME=…` or
/// `export NAME=…`; comments and blank lines skipped.
fn names_in(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("export").filter(|rest| rest.starts_with([' ', '\t'])).unwrap_or(line);
            let (name, _value) = line.split_once('=')?;
            let name = name.trim();
            (is_env_name(name) && SUFFIXES.iter().any(|s| name.ends_with(s))).then_some(name)
        })
        .collect()
}

//! Writes a Sandboxfile back as text, so that `parse(format(x)) == x`.
//!
//! Values the file format cannot express (a newline in a command, a TEST
//! name, a command that starts with `PORT=`) are refused with an error naming
//! the field, rather than written in a form that parses to something else.

use super::parse::is_js_space;
use super::{Sandboxfile, is_env_name};
use std::collections::HashSet;
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FormatError {
    pub field: String,
    pub reason: String,
}

fn refuse(field: impl Into<String>, reason: impl Into<String>) -> FormatError {
    FormatError { field: field.into(), reason: reason.into() }
}

/// The name of the field being written (`services[2].command`), spelled only
/// when a value is refused: a large file has tens of thousands of values.
type Field<'a> = &'a dyn Fn() -> String;

/// A single-line argument as the parser will read it back: non-empty, no line
/// break, no white space at either end (the parser trims what JavaScript's
/// `trim()` does, as the reference does).
fn arg<'a>(field: Field, value: &'a str) -> Result<&'a str, FormatError> {
    if value.is_empty() {
        return Err(refuse(field(), "must not be empty"));
    }
    if value.contains('\n') {
        return Err(refuse(field(), "must be a single line"));
    }
    if value.trim_matches(is_js_space) != value {
        return Err(refuse(field(), "must not start or end with white space"));
    }
    Ok(value)
}

/// One token: an argument without blanks.
fn token<'a>(field: Field, value: &'a str) -> Result<&'a str, FormatError> {
    if value.contains([' ', '\t', '\n']) {
        return Err(refuse(field(), "must not contain spaces, tabs or line breaks"));
    }
    Ok(value)
}

fn is_option(word: &str) -> bool {
    word.starts_with("PORT=") || word.starts_with("WATCH=")
}

/// The text being written, in sections separated by a blank line.
struct Out {
    text: String,
    /// The next line starts a new section.
    fresh: bool,
}

impl Out {
    /// Starts a line with `directive` and a space; the caller writes the rest.
    fn line(&mut self, directive: &str) -> &mut String {
        if self.fresh {
            if !self.text.is_empty() {
                self.text.push('\n');
            }
            self.fresh = false;
        }
        self.text.push_str(directive);
        self.text.push(' ');
        &mut self.text
    }

    fn end_line(&mut self) {
        self.text.push('\n');
    }

    fn section(&mut self) {
        self.fresh = true;
    }

    /// `DIRECTIVE value` for each value of a list.
    fn args(&mut self, directive: &str, name: &str, values: &[String]) -> Result<(), FormatError> {
        self.section();
        for (i, value) in values.iter().enumerate() {
            let value = arg(&|| format!("{name}[{i}]"), value)?;
            self.line(directive).push_str(value);
            self.end_line();
        }
        Ok(())
    }

    /// `DIRECTIVE [name] [PORT=n] [WATCH=glob] command`, with the checks that
    /// make it parse back. `field("command")` names a part of the process.
    fn process(
        &mut self,
        directive: &str,
        field: &dyn Fn(&str) -> String,
        name: Option<&str>,
        port: Option<u16>,
        watch: Option<&str>,
        command: &str,
    ) -> Result<(), FormatError> {
        if let Some(name) = name {
            // The name is followed by the rest of the line, so only its start
            // is trimmed away: it may end with white space that is not a blank.
            let name = token(&|| field("name"), name)?;
            if name.is_empty() || name.starts_with(is_js_space) {
                return Err(refuse(field("name"), "must not be empty or start with white space"));
            }
            if is_option(name) {
                return Err(refuse(field("name"), "must not start with PORT= or WATCH="));
            }
        }
        if port == Some(0) {
            return Err(refuse(field("port"), "must be in 1..65535"));
        }
        let watch = watch.map(|watch| token(&|| field("watch"), watch)).transpose()?;
        let command = arg(&|| field("command"), command)?;
        let first = command.split([' ', '\t']).next().unwrap_or_default();
        if is_option(first) {
            return Err(refuse(field("command"), "must not start with PORT= or WATCH="));
        }
        let line = self.line(directive);
        if let Some(name) = name {
            line.push_str(name);
            line.push(' ');
        }
        if let Some(port) = port {
            write!(line, "PORT={port} ").unwrap();
        }
        if let Some(watch) = watch {
            line.push_str("WATCH=");
            line.push_str(watch);
            line.push(' ');
        }
        line.push_str(command);
        self.end_line();
        Ok(())
    }
}

pub fn format(file: &Sandboxfile) -> Result<String, FormatError> {
    let mut out = Out { text: String::new(), fresh: true };

    for (directive, name, value) in
        [("FROM", "from", &file.from), ("WORKDIR", "workdir", &file.workdir), ("INFER", "infer", &file.infer)]
    {
        if let Some(value) = value {
            let value = arg(&|| name.to_string(), value)?;
            out.line(directive).push_str(value);
            out.end_line();
        }
    }

    out.args("RUN", "runCommands", &file.run_commands)?;

    out.section();
    if let Some(dev) = &file.dev {
        if dev.name.is_some() {
            return Err(refuse("dev.name", "a Sandboxfile has no syntax for naming DEV"));
        }
        out.process("DEV", &|part| format!("dev.{part}"), None, dev.port, dev.watch.as_deref(), &dev.command)?;
    }
    for (i, s) in file.services.iter().enumerate() {
        let field = |part: &str| format!("services[{i}].{part}");
        out.process("SERVICE", &field, Some(&s.name), s.port, s.watch.as_deref(), &s.command)?;
    }
    for (i, t) in file.tests.iter().enumerate() {
        if t.name.is_some() {
            return Err(refuse(format!("tests[{i}].name"), "a Sandboxfile has no syntax for naming TEST"));
        }
        let field = |part: &str| format!("tests[{i}].{part}");
        out.process("TEST", &field, None, t.port, t.watch.as_deref(), &t.command)?;
    }

    out.args("OUTPUT", "outputs", &file.outputs)?;
    out.args("LOGS", "logs", &file.logs)?;
    out.args("NET", "net", &file.net)?;

    out.section();
    secret_lines(file, &mut out)?;
    Ok(out.text)
}

/// `SECRET NAME [HOST ...]`: a secret's hosts go on its first line.
fn secret_lines(file: &Sandboxfile, out: &mut Out) -> Result<(), FormatError> {
    let scoped = file.secret_hosts.as_ref();
    let secrets: HashSet<&str> = file.secrets.iter().map(String::as_str).collect();
    if let Some(map) = scoped {
        if map.is_empty() {
            return Err(refuse("secretHosts", "must name at least one secret, or be left out"));
        }
        for (name, hosts) in map {
            if !secrets.contains(name.as_str()) {
                return Err(refuse(format!("secretHosts.{name}"), "names a secret that is not in secrets"));
            }
            if hosts.is_empty() {
                return Err(refuse(format!("secretHosts.{name}"), "must list at least one host"));
            }
            for (i, host) in hosts.iter().enumerate() {
                let field = || format!("secretHosts.{name}[{i}]");
                if arg(&field, host)?.contains(is_js_space) {
                    return Err(refuse(field(), "must not contain white space"));
                }
            }
        }
    }
    let mut written = HashSet::with_capacity(secrets.len());
    for (i, name) in file.secrets.iter().enumerate() {
        if !is_env_name(name) {
            return Err(refuse(format!("secrets[{i}]"), "must be a valid environment variable name"));
        }
        let line = out.line("SECRET");
        line.push_str(name);
        // Only the first line of a secret carries its hosts.
        if let (true, Some(hosts)) = (written.insert(name.as_str()), scoped.and_then(|m| m.get(name))) {
            for host in hosts {
                line.push(' ');
                line.push_str(host);
            }
        }
        out.end_line();
    }
    Ok(())
}

#[cfg(test)]
mod tests;

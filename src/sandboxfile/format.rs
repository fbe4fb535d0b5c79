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

/// A single-line argument as the parser will read it back: non-empty, no line
/// break, no white space at either end (the parser trims what JavaScript's
/// `trim()` does, as the reference does).
fn arg<'a>(field: &str, value: &'a str) -> Result<&'a str, FormatError> {
    if value.is_empty() {
        return Err(refuse(field, "must not be empty"));
    }
    if value.contains('\n') {
        return Err(refuse(field, "must be a single line"));
    }
    if value.trim_matches(is_js_space) != value {
        return Err(refuse(field, "must not start or end with white space"));
    }
    Ok(value)
}

/// One token: an argument without blanks.
fn token<'a>(field: &str, value: &'a str) -> Result<&'a str, FormatError> {
    if value.contains([' ', '\t', '\n']) {
        return Err(refuse(field, "must not contain spaces, tabs or line breaks"));
    }
    Ok(value)
}

fn is_option(word: &str) -> bool {
    word.starts_with("PORT=") || word.starts_with("WATCH=")
}

/// `[PORT=n] [WATCH=glob] command`, with the checks that make it parse back.
fn process_line(
    field: &str,
    port: Option<u16>,
    watch: Option<&str>,
    command: &str,
) -> Result<String, FormatError> {
    let mut line = String::new();
    if let Some(port) = port {
        if port == 0 {
            return Err(refuse(format!("{field}.port"), "must be in 1..65535"));
        }
        write!(line, "PORT={port} ").unwrap();
    }
    if let Some(watch) = watch {
        write!(line, "WATCH={} ", token(&format!("{field}.watch"), watch)?).unwrap();
    }
    let command = arg(&format!("{field}.command"), command)?;
    let first = command.split([' ', '\t']).next().unwrap_or_default();
    if is_option(first) {
        return Err(refuse(format!("{field}.command"), "must not start with PORT= or WATCH="));
    }
    line.push_str(command);
    Ok(line)
}

pub fn format(file: &Sandboxfile) -> Result<String, FormatError> {
    let mut out = String::new();
    let mut section = |lines: Vec<String>| {
        if lines.is_empty() {
            return;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
    };

    let mut head = Vec::new();
    if let Some(from) = &file.from {
        head.push(format!("FROM {}", arg("from", from)?));
    }
    if let Some(workdir) = &file.workdir {
        head.push(format!("WORKDIR {}", arg("workdir", workdir)?));
    }
    if let Some(infer) = &file.infer {
        head.push(format!("INFER {}", arg("infer", infer)?));
    }
    section(head);

    let run = file.run_commands.iter().enumerate();
    section(run.map(|(i, c)| Ok(format!("RUN {}", arg(&format!("runCommands[{i}]"), c)?))).collect::<Result<_, _>>()?);

    let mut processes = Vec::new();
    if let Some(dev) = &file.dev {
        if dev.name.is_some() {
            return Err(refuse("dev.name", "a Sandboxfile has no syntax for naming DEV"));
        }
        processes.push(format!("DEV {}", process_line("dev", dev.port, dev.watch.as_deref(), &dev.command)?));
    }
    for (i, s) in file.services.iter().enumerate() {
        let field = format!("services[{i}]");
        // The name is followed by the rest of the line, so only its start is
        // trimmed away: it may end with white space that is not a blank.
        let name = token(&format!("{field}.name"), &s.name)?;
        if name.is_empty() || name.starts_with(is_js_space) {
            return Err(refuse(format!("{field}.name"), "must not be empty or start with white space"));
        }
        if is_option(name) {
            return Err(refuse(format!("{field}.name"), "must not start with PORT= or WATCH="));
        }
        let rest = process_line(&field, s.port, s.watch.as_deref(), &s.command)?;
        processes.push(format!("SERVICE {name} {rest}"));
    }
    for (i, t) in file.tests.iter().enumerate() {
        let field = format!("tests[{i}]");
        if t.name.is_some() {
            return Err(refuse(format!("{field}.name"), "a Sandboxfile has no syntax for naming TEST"));
        }
        processes.push(format!("TEST {}", process_line(&field, t.port, t.watch.as_deref(), &t.command)?));
    }
    section(processes);

    for (directive, field, values) in [
        ("OUTPUT", "outputs", &file.outputs),
        ("LOGS", "logs", &file.logs),
        ("NET", "net", &file.net),
    ] {
        let lines = values.iter().enumerate();
        section(lines.map(|(i, v)| Ok(format!("{directive} {}", arg(&format!("{field}[{i}]"), v)?))).collect::<Result<_, _>>()?);
    }

    section(secret_lines(file)?);
    Ok(out)
}

/// `SECRET NAME [HOST ...]`: a secret's hosts go on its first line.
fn secret_lines(file: &Sandboxfile) -> Result<Vec<String>, FormatError> {
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
                let field = format!("secretHosts.{name}[{i}]");
                if arg(&field, host)?.contains(is_js_space) {
                    return Err(refuse(field, "must not contain white space"));
                }
            }
        }
    }
    let mut lines = Vec::with_capacity(file.secrets.len());
    let mut written = HashSet::with_capacity(secrets.len());
    for (i, name) in file.secrets.iter().enumerate() {
        if !is_env_name(name) {
            return Err(refuse(format!("secrets[{i}]"), "must be a valid environment variable name"));
        }
        let mut line = format!("SECRET {name}");
        let first = written.insert(name.as_str());
        if let (true, Some(hosts)) = (first, scoped.and_then(|m| m.get(name))) {
            line.push(' ');
            line.push_str(&hosts.join(" "));
        }
        lines.push(line);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests;

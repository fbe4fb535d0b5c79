//! The Sandboxfile parser: the lexical rules of SPEC §1.1, message for message.

use super::{Process, Sandboxfile, Service, is_env_name};
use std::fmt;

/// A parse error: `Line N: message`, with the line (1-based) and the directive
/// of the offending line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub directive: String,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

const BLANKS: &[char] = &[' ', '\t'];

/// What JavaScript's `trim()`/`trimStart()` remove (ECMAScript WhiteSpace and
/// LineTerminator). The reference trims each line and each argument with them,
/// so a line may also start or end with a no-break space, `\u{3000}`, a BOM,
/// a vertical tab... Spaces, tabs and `\r` are the ones that matter in practice.
pub(super) fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
    )
}

/// Parses Sandboxfile text. Never panics, whatever the input.
pub fn parse(src: &str) -> Result<Sandboxfile, ParseError> {
    // A byte-order mark is not part of the first directive (editors on some
    // platforms write one; the reference's `trim()` drops it too).
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut file = Sandboxfile::default();
    for (index, raw) in src.split('\n').enumerate() {
        let line = raw.trim_matches(is_js_space);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (directive, arg) = match line.find(BLANKS) {
            Some(at) => (&line[..at], line[at..].trim_start_matches(is_js_space)),
            None => (line, ""),
        };
        let fail = |message: String| ParseError { line: index + 1, directive: directive.to_string(), message };
        apply(&mut file, directive, arg).map_err(fail)?;
    }
    Ok(file)
}

/// Applies one directive line. The order of checks is the reference's: a
/// missing argument is reported before a duplicate.
fn apply(file: &mut Sandboxfile, directive: &str, arg: &str) -> Result<(), String> {
    let required = |message: &str| {
        if arg.is_empty() { Err(message.to_string()) } else { Ok(arg.to_string()) }
    };
    match directive {
        "FROM" => {
            let value = required("FROM requires an argument")?;
            once(&file.from, directive)?;
            file.from = Some(value);
        }
        "WORKDIR" => {
            let value = required("WORKDIR requires a path argument")?;
            once(&file.workdir, directive)?;
            file.workdir = Some(value);
        }
        "RUN" => file.run_commands.push(required("RUN requires a command argument")?),
        "DEV" => {
            required("DEV requires a command argument")?;
            once(&file.dev, directive)?;
            file.dev = Some(parse_process(arg, false)?);
        }
        "SERVICE" => {
            required("SERVICE requires a name and command")?;
            let p = parse_process(arg, true)?;
            let Some(name) = p.name else {
                return Err("SERVICE requires a name".into());
            };
            file.services.push(Service { name, command: p.command, port: p.port, watch: p.watch });
        }
        "TEST" => {
            required("TEST requires a command argument")?;
            file.tests.push(parse_process(arg, false)?);
        }
        "OUTPUT" => file.outputs.push(required("OUTPUT requires a path argument")?),
        "LOGS" => file.logs.push(required("LOGS requires a path pattern argument")?),
        "NET" => file.net.push(required("NET requires a hostname argument")?),
        "SECRET" => {
            required("SECRET requires an environment variable name")?;
            parse_secret(file, arg)?;
        }
        "INFER" => {
            let value = required("INFER requires a pattern argument")?;
            once(&file.infer, directive)?;
            file.infer = Some(value);
        }
        _ => return Err(format!("Unknown directive: {directive}")),
    }
    Ok(())
}

/// FROM, WORKDIR, DEV and INFER may appear once.
fn once<T>(slot: &Option<T>, directive: &str) -> Result<(), String> {
    match slot {
        Some(_) => Err(format!("Duplicate {directive} directive")),
        None => Ok(()),
    }
}

/// `SECRET NAME [HOST ...]`. The hosts are this project's superset extension;
/// a line without them is exactly the reference form.
fn parse_secret(file: &mut Sandboxfile, arg: &str) -> Result<(), String> {
    let mut words = arg.split(is_js_space).filter(|w| !w.is_empty());
    let name = words.next().unwrap_or_default();
    if !is_env_name(name) {
        return Err("SECRET name must be a valid environment variable name".into());
    }
    file.secrets.push(name.to_string());
    let hosts: Vec<String> = words.map(str::to_string).collect();
    if !hosts.is_empty() {
        let scoped = file.secret_hosts.get_or_insert_with(Default::default);
        scoped.entry(name.to_string()).or_default().extend(hosts);
    }
    Ok(())
}

/// Options (`PORT=`, `WATCH=`) come before the command, in any order. For a
/// SERVICE the first other token is the name and the rest is the command; for
/// DEV and TEST the first other token starts the command, kept verbatim.
fn parse_process(input: &str, named: bool) -> Result<Process, String> {
    let mut process = Process::default();
    let mut rest = input;
    while !rest.is_empty() {
        let (token, after) = match rest.find(BLANKS) {
            Some(at) => (&rest[..at], rest[at..].trim_start_matches(is_js_space)),
            None => (rest, ""),
        };
        if let Some(value) = token.strip_prefix("PORT=") {
            process.port = Some(parse_port(value)?);
        } else if let Some(glob) = token.strip_prefix("WATCH=") {
            process.watch = Some(glob.to_string());
        } else if named && process.name.is_none() {
            process.name = Some(token.to_string());
        } else {
            process.command = rest.to_string();
            break;
        }
        rest = after;
    }
    if process.command.is_empty() {
        return Err("Missing command in process definition".into());
    }
    Ok(process)
}

/// A port is a decimal integer in 1..=65535, nothing else.
fn parse_port(value: &str) -> Result<u16, String> {
    let invalid = || format!("Invalid PORT value: {value}");
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match value.trim_start_matches('0').parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests;

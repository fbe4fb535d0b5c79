//! Infers a Sandboxfile from a project directory (SPEC §1.3).
//!
//! Each ecosystem (package.json, Cargo, Python, Go, Makefile) is read by its
//! own module and reports what it [`Found`]; this module puts the pieces
//! together in a fixed order, adds services from a compose file, LOGS and
//! SECRET names from `.env`. The rules, and where registry hosts come from,
//! are written down in `docs/INFERENCE.md`.
//!
//! Inference never fails because of a project's own files: a file that cannot
//! be read or parsed is skipped, and the reason is kept in
//! [`Inference::notes`].

mod cargo;
mod cargo_registry;
mod compose;
mod dotenv;
mod env;
mod go;
mod make;
mod node;
mod node_registry;
mod project;
mod python;
mod python_registry;
mod url;
mod yaml;

pub use env::{AskRegistry, Env};

use super::{Process, Sandboxfile};
use project::Project;
use std::io;
use std::path::Path;

/// An inferred Sandboxfile and what inference skipped on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inference {
    pub file: Sandboxfile,
    /// One line per source that was skipped, and why (`package.json: …`).
    /// For people; the wording may change.
    pub notes: Vec<String>,
}

/// Infers a Sandboxfile for the project in `dir`, reading the user's registry
/// configuration from the real environment (home directory, variables, npm).
pub fn infer(dir: &Path) -> io::Result<Sandboxfile> {
    infer_with(dir, &Env::from_process()).map(|inference| inference.file)
}

/// [`infer`] with an explicit environment, and the notes.
pub fn infer_with(dir: &Path, env: &Env) -> io::Result<Inference> {
    check_dir(dir)?;
    let project = Project::new(dir, env);
    let file = assemble(&project);
    Ok(Inference { file, notes: project.into_notes() })
}

fn check_dir(dir: &Path) -> io::Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(io::ErrorKind::NotADirectory, "not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"))
        }
        Err(e) => Err(e),
    }
}

/// What one ecosystem contributes. Commands are complete shell lines.
#[derive(Debug, Default)]
struct Found {
    /// Dependency installation; all installs run before any build.
    install: Vec<String>,
    build: Vec<String>,
    dev: Option<Process>,
    tests: Vec<String>,
    outputs: Vec<String>,
    net: Vec<String>,
}

/// The roles already taken when the Makefile is read.
#[derive(Debug, Clone, Copy)]
struct Taken {
    build: bool,
    test: bool,
    dev: bool,
}

fn assemble(project: &Project) -> Sandboxfile {
    let mut found: Vec<Found> =
        [node::infer(project), cargo::infer(project), python::infer(project), go::infer(project)]
            .into_iter()
            .flatten()
            .collect();
    let taken = Taken {
        build: found.iter().any(|f| !f.build.is_empty()),
        test: found.iter().any(|f| !f.tests.is_empty()),
        dev: found.iter().any(|f| f.dev.is_some()),
    };
    let alone = found.is_empty();
    found.extend(make::infer(project, taken, alone));

    let mut file = Sandboxfile { from: Some("host".into()), workdir: Some(".".into()), ..Sandboxfile::default() };
    for f in &found {
        file.run_commands.extend(f.install.iter().cloned());
    }
    for f in found {
        file.run_commands.extend(f.build);
        if file.dev.is_none() {
            file.dev = f.dev;
        }
        file.tests.extend(f.tests.into_iter().map(|command| Process { command, ..Process::default() }));
        f.outputs.into_iter().for_each(|o| push_unique(&mut file.outputs, o));
        f.net.into_iter().for_each(|n| push_unique(&mut file.net, n));
    }
    let dev_port: Vec<u16> = file.dev.iter().filter_map(|d| d.port).collect();
    file.services = compose::services(project, &dev_port);
    if project.is_dir("logs") {
        file.logs.push("logs/*".into());
    }
    file.secrets = dotenv::secrets(project);
    file
}

/// Appends `value` unless an equal one is already there (order of first
/// appearance is kept).
fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// A port stated in a command line: `--port 3000`, `--port=3000`, `-p 3000`
/// or `PORT=3000` (the first one found).
fn port_in(command: &str) -> Option<u16> {
    let words: Vec<&str> = command.split_whitespace().collect();
    words.iter().enumerate().find_map(|(i, word)| {
        let word = word.trim_matches(['"', '\'']);
        let value = match word {
            "--port" | "-p" => words.get(i + 1).copied(),
            _ => word.strip_prefix("--port=").or_else(|| word.strip_prefix("PORT=")),
        }?;
        parse_port(value.trim_matches(['"', '\'', ';']))
    })
}

/// A decimal port in 1..=65535.
fn parse_port(value: &str) -> Option<u16> {
    if value.is_empty() || value.len() > 5 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<u16>().ok().filter(|&p| p != 0)
}

/// The directory a workspace pattern names, as an OUTPUT (`packages/*` →
/// `packages/`, `apps/web` → `apps/web/`): the part before the first glob
/// component. None for patterns that leave the project or name it whole.
fn workspace_dir(pattern: &str) -> Option<String> {
    let pattern = pattern.trim().trim_start_matches("./");
    if pattern.starts_with(['/', '!']) {
        return None;
    }
    let mut parts = Vec::new();
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        if part.contains(['*', '?', '[', '{']) {
            break;
        }
        if part == ".." || !project::is_plain(part) {
            return None;
        }
        if part != "." {
            parts.push(part);
        }
    }
    (!parts.is_empty()).then(|| format!("{}/", parts.join("/")))
}

#[cfg(test)]
mod tests;

//! Checks a Sandboxfile for mistakes the parser cannot see (SPEC §1.2).
//!
//! Every message is a sentence that quotes the offending value and says what
//! to write instead. Errors stop a Sandbox from starting; warnings do not.
//!
//! Process names, as used for uniqueness: a SERVICE by its name, DEV as `dev`
//! and the i-th TEST (0-based, in file order, as the reference runtime names them) as `test-i`, unless the API gave
//! them a name.
//!
//! With `INFER *` the warnings about absent commands, OUTPUT and NET are left
//! out: inference fills those in, and the inferred file is what runs.

use super::{Sandboxfile, is_env_name};
use crate::policy::net::{NetPattern, NetPolicy};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What `validate` found: errors stop a Sandbox from starting, warnings do not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

impl Report {
    fn error(&mut self, message: String) {
        self.errors.push(message);
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }
}

pub fn validate(file: &Sandboxfile) -> Report {
    let mut report = Report::default();
    check_from(file, &mut report);
    check_infer(file, &mut report);
    check_missing(file, &mut report);
    let policy = check_net(file, &mut report);
    check_secrets(file, &policy, &mut report);
    check_processes(file, &mut report);
    check_paths(file, &mut report);
    report
}

fn check_from(file: &Sandboxfile, report: &mut Report) {
    match file.from.as_deref() {
        None => report.warn(
            "No FROM line: the sandbox starts from the host's filesystem (copy-on-write), as with \"FROM host\"".into(),
        ),
        Some("host") => {}
        Some(path) if is_path(path) => {}
        Some(other) => report.error(format!(
            "FROM \"{other}\" is not supported: write \"FROM host\" for the host's filesystem, or a path to a \
             directory holding a root filesystem (starting with \"/\", \"./\" or \"../\", e.g. \"FROM ./rootfs\"); \
             image references are not supported"
        )),
    }
}

/// A FROM path: absolute, or explicitly relative.
fn is_path(s: &str) -> bool {
    s == "." || s == ".." || s.starts_with('/') || s.starts_with("./") || s.starts_with("../")
}

fn check_infer(file: &Sandboxfile, report: &mut Report) {
    if let Some(infer) = file.infer.as_deref().filter(|i| *i != "*") {
        report.error(format!(
            "INFER \"{infer}\" is not supported; write \"INFER *\" to infer everything the file does not declare"
        ));
    }
}

fn check_missing(file: &Sandboxfile, report: &mut Report) {
    if file.workdir.is_none() {
        report.warn(
            "No WORKDIR line: the project root is the Sandboxfile's directory (or options.cwd); write \"WORKDIR .\" to say so"
                .into(),
        );
    }
    // INFER * fills in what follows; the inferred file is what runs.
    if file.infer.as_deref() == Some("*") {
        return;
    }
    let no_commands =
        file.run_commands.is_empty() && file.dev.is_none() && file.services.is_empty() && file.tests.is_empty();
    if no_commands {
        report.warn(
            "No RUN, DEV, SERVICE or TEST line: the sandbox runs nothing until a command is executed in it".into(),
        );
    }
    if file.outputs.is_empty() {
        report.warn(
            "No OUTPUT line: nothing leaves the sandbox, every change is discarded at stop(); add e.g. \"OUTPUT src/\""
                .into(),
        );
    }
    if file.net.is_empty() {
        report.warn(
            "No NET line: the sandbox has no network access; add e.g. \"NET api.example.com\" for each host it needs"
                .into(),
        );
    }
}

/// Reports every NET line that is not a pattern or is too broad, and returns
/// the policy of the lines that parse (so SECRET checks see them).
fn check_net(file: &Sandboxfile, report: &mut Report) -> NetPolicy {
    let mut patterns = Vec::new();
    for line in &file.net {
        let pattern = match NetPattern::parse(line) {
            Ok(pattern) => pattern,
            Err(e) => {
                report.error(e.to_string());
                continue;
            }
        };
        if let Some(suffix) = pattern.public_suffix() {
            report.error(format!(
                "NET \"{line}\" allows every host under the public suffix \"{suffix}\"; \
                 name the hosts you need, e.g. \"api.example.{suffix}\""
            ));
        } else if pattern.ip().is_some_and(|ip| ip.to_canonical().is_loopback() || ip.is_unspecified()) {
            // Listed literally, it is allowed: the proxy dials it from the host.
            report.warn(format!(
                "NET \"{line}\" lets the sandbox reach services on the host's own loopback interface; to reach a \
                 local test server under a name, list the name and map it with network.resolve instead"
            ));
        } else if pattern.is_any() {
            let on_port = pattern.port().map(|p| format!(" on port {p}")).unwrap_or_default();
            report.warn(format!(
                "NET \"{line}\" allows every host{on_port}; list the hosts the sandbox needs, e.g. \"NET api.example.com\""
            ));
        }
        patterns.push(pattern);
    }
    patterns.into_iter().collect()
}

fn check_secrets(file: &Sandboxfile, policy: &NetPolicy, report: &mut Report) {
    let mut unique: Vec<&String> = Vec::new();
    let mut repeated = BTreeSet::new();
    for name in &file.secrets {
        if !is_env_name(name) {
            report.error(format!(
                "SECRET \"{name}\" is not a valid environment variable name (letters, digits and \"_\" only)"
            ));
        }
        if !unique.contains(&name) {
            unique.push(name);
        } else if repeated.insert(name) {
            report.warn(format!("SECRET {name} is declared more than once; declare it once, with all its hosts"));
        }
    }
    for name in unique {
        match file.hosts_of_secret(name) {
            None if !file.net.is_empty() => report.warn(format!(
                "SECRET {name} names no hosts, so it may be sent to any NET host; scope it with \"SECRET {name} {}\"",
                example_host(policy)
            )),
            None => {}
            Some([]) => report.error(format!(
                "secretHosts lists no hosts for {name}; name the hosts it may be sent to, or remove the entry"
            )),
            Some(hosts) => {
                for host in hosts {
                    check_secret_host(name, host, policy, report);
                }
            }
        }
    }
    for name in file.secret_hosts.iter().flat_map(BTreeMap::keys) {
        if !file.secrets.contains(name) {
            report.error(format!(
                "secretHosts has hosts for \"{name}\", which is not in secrets; add it to secrets or remove the entry"
            ));
        }
    }
}

/// Each host a secret is scoped to must be one NET allows (SPEC §4).
fn check_secret_host(name: &str, host: &str, policy: &NetPolicy, report: &mut Report) {
    match NetPattern::parse(host) {
        Err(e) => report.error(format!("SECRET {name} host \"{host}\" {}", e.problem)),
        Ok(pattern) if policy.covering(&pattern).is_none() => report.error(format!(
            "SECRET {name} may be sent to \"{host}\", but no NET line allows that host; add \"NET {host}\""
        )),
        Ok(_) => {}
    }
}

/// A host from NET to show in a suggestion: the first exact name.
fn example_host(policy: &NetPolicy) -> &str {
    let exact = |p: &&NetPattern| !p.is_any() && !p.as_str().starts_with("*.");
    policy.patterns().iter().find(exact).map_or("api.example.com", NetPattern::as_str)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dev,
    Service,
    Test,
}

/// A DEV, SERVICE or TEST, seen the same way.
struct Proc<'a> {
    kind: Kind,
    /// The process name (see the module doc).
    name: String,
    command: &'a str,
    port: Option<u16>,
    watch: Option<&'a str>,
}

impl Proc<'_> {
    /// How messages name the process: `DEV`, `SERVICE db`, `TEST test-0 ("bun test")`.
    fn label(&self) -> String {
        match self.kind {
            Kind::Dev if self.name == "dev" => "DEV".into(),
            Kind::Dev => format!("DEV {}", self.name),
            Kind::Service => format!("SERVICE {}", self.name),
            Kind::Test => format!("TEST {} (\"{}\")", self.name, self.command),
        }
    }
}

fn processes(file: &Sandboxfile) -> Vec<Proc<'_>> {
    let mut all = Vec::new();
    if let Some(dev) = &file.dev {
        let name = dev.name.clone().unwrap_or_else(|| "dev".into());
        all.push(Proc { kind: Kind::Dev, name, command: &dev.command, port: dev.port, watch: dev.watch.as_deref() });
    }
    for s in &file.services {
        let (name, command) = (s.name.clone(), s.command.as_str());
        all.push(Proc { kind: Kind::Service, name, command, port: s.port, watch: s.watch.as_deref() });
    }
    for (i, t) in file.tests.iter().enumerate() {
        let name = t.name.clone().unwrap_or_else(|| format!("test-{i}"));
        all.push(Proc { kind: Kind::Test, name, command: &t.command, port: t.port, watch: t.watch.as_deref() });
    }
    all
}

/// Programs people write first on a SERVICE line, forgetting the name.
const PROGRAMS: &[&str] = &[
    "bash",
    "bun",
    "bunx",
    "cargo",
    "deno",
    "docker",
    "docker-compose",
    "dotnet",
    "env",
    "exec",
    "go",
    "gradle",
    "java",
    "make",
    "mvn",
    "nice",
    "node",
    "nohup",
    "npm",
    "npx",
    "perl",
    "php",
    "pip",
    "pip3",
    "pnpm",
    "podman",
    "poetry",
    "python",
    "python3",
    "ruby",
    "sh",
    "sudo",
    "timeout",
    "uv",
    "uvx",
    "yarn",
    "zsh",
];

fn check_processes(file: &Sandboxfile, report: &mut Report) {
    let all = processes(file);
    let mut names: BTreeMap<&str, String> = BTreeMap::new();
    let mut ports: BTreeMap<u16, String> = BTreeMap::new();
    for p in &all {
        let label = p.label();
        if p.name.trim().is_empty() {
            report.error(match p.kind {
                Kind::Service => format!("SERVICE requires a name: the service running \"{}\" has none", p.command),
                Kind::Dev => format!("DEV name must not be empty (DEV running \"{}\")", p.command),
                Kind::Test => format!("TEST name must not be empty (TEST running \"{}\")", p.command),
            });
        } else if let Some(first) = names.get(p.name.as_str()) {
            report.error(format!(
                "Two processes are named \"{}\": {first} and {label}; give each process its own name",
                p.name
            ));
        } else {
            names.insert(&p.name, label.clone());
        }
        if p.kind == Kind::Service && (PROGRAMS.contains(&p.name.as_str()) || p.name.contains('/')) {
            report.warn(format!(
                "SERVICE {0} looks like a program, but the first word after PORT= and WATCH= is the service's name, \
                 so it runs \"{1}\"; write \"SERVICE NAME {0} {1}\" to run \"{0} {1}\"",
                p.name, p.command
            ));
        }
        match p.port {
            Some(0) => report.error(format!("{label} has PORT=0; a process listens on a port from 1 to 65535")),
            Some(port) => match ports.get(&port) {
                Some(first) => report
                    .error(format!("PORT={port} is used by both {first} and {label}; give each process its own port")),
                None => {
                    ports.insert(port, label.clone());
                }
            },
            None => {}
        }
        match (p.kind, p.watch) {
            (_, None) => {}
            (Kind::Test, Some(glob)) => {
                report.warn(format!("{label} has WATCH=\"{glob}\", which is ignored: tests are not restarted"))
            }
            (_, Some("")) => {
                report.error(format!("{label} has an empty WATCH=; give it a glob such as \"src/**\", or remove it"))
            }
            (_, Some(glob)) => {
                if let Some(problem) = glob_problem(glob) {
                    report.error(format!("{label} WATCH=\"{glob}\" {problem}"));
                }
            }
        }
    }
}

fn check_paths(file: &Sandboxfile, report: &mut Report) {
    for (directive, globs) in [("OUTPUT", &file.outputs), ("LOGS", &file.logs)] {
        for glob in globs {
            if let Some(problem) = glob_problem(glob) {
                report.error(format!("{directive} \"{glob}\" {problem}"));
            }
        }
    }
}

/// Why a glob relative to WORKDIR is unusable, as a clause after the glob.
fn glob_problem(glob: &str) -> Option<String> {
    if glob.is_empty() {
        return Some("is empty; write a path relative to WORKDIR, e.g. \"src/\"".into());
    }
    if glob.starts_with('/') {
        return Some("is an absolute path; write it relative to WORKDIR, e.g. \"src/\"".into());
    }
    // Globs are matched inside WORKDIR only; ".." would name files outside it.
    if glob.split('/').any(|part| part == "..") {
        return Some("contains \"..\"; paths are relative to WORKDIR and stay inside it".into());
    }
    // A trailing "/" means the whole directory (SPEC §1.2), not part of the glob.
    let pattern = glob.strip_suffix('/').unwrap_or(glob);
    match globset::Glob::new(pattern) {
        Ok(_) => None,
        Err(e) => Some(format!("is not a valid glob: {}", e.kind())),
    }
}

#[cfg(test)]
mod tests;

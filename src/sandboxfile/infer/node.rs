//! package.json projects: the reference rules, with the package manager
//! chosen from `packageManager` or the lockfile.

use super::project::Project;
use super::{Found, Process, node_registry, port_in, push_unique, workspace_dir};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Bun,
    Npm,
    Pnpm,
    /// `berry`: Yarn 2 or later.
    Yarn {
        berry: bool,
    },
}

impl Manager {
    fn name(self) -> &'static str {
        match self {
            Manager::Bun => "bun",
            Manager::Npm => "npm",
            Manager::Pnpm => "pnpm",
            Manager::Yarn { .. } => "yarn",
        }
    }

    fn lockfiles(self) -> &'static [&'static str] {
        match self {
            Manager::Bun => &["bun.lock", "bun.lockb"],
            Manager::Npm => &["package-lock.json", "npm-shrinkwrap.json"],
            Manager::Pnpm => &["pnpm-lock.yaml"],
            Manager::Yarn { .. } => &["yarn.lock"],
        }
    }

    /// The install command; the frozen form when a lockfile is there to
    /// freeze (without one, `npm ci` and the frozen flags fail).
    fn install(self, locked: bool) -> &'static str {
        match (self, locked) {
            (Manager::Bun, _) => "bun install",
            (Manager::Npm, true) => "npm ci",
            (Manager::Npm, false) => "npm install",
            (Manager::Pnpm, true) => "pnpm install --frozen-lockfile",
            (Manager::Pnpm, false) => "pnpm install",
            (Manager::Yarn { berry: false }, true) => "yarn install --frozen-lockfile",
            (Manager::Yarn { berry: true }, true) => "yarn install --immutable",
            (Manager::Yarn { .. }, false) => "yarn install",
        }
    }
}

/// Lockfiles in the order they are looked for, when `packageManager` does
/// not say.
const LOCKS: &[(&str, Manager)] = &[
    ("bun.lock", Manager::Bun),
    ("bun.lockb", Manager::Bun),
    ("pnpm-lock.yaml", Manager::Pnpm),
    ("yarn.lock", Manager::Yarn { berry: false }),
    ("package-lock.json", Manager::Npm),
    ("npm-shrinkwrap.json", Manager::Npm),
];

/// npm init's placeholder test script, which always fails.
const NO_TEST: &str = "no test specified";

pub fn infer(project: &Project) -> Option<Found> {
    if !project.is_file("package.json") {
        return None;
    }
    let pkg = project.read_json("package.json").filter(|v| {
        v.is_object() || {
            project.note("package.json", "not a JSON object, skipped");
            false
        }
    });
    let manager = manager(project, pkg.as_ref());
    let locks: Vec<&str> = manager.lockfiles().iter().copied().filter(|l| project.is_file(l)).collect();

    let mut found = Found::default();
    found.outputs.push("package.json".into());
    for dir in ["src", "lib"] {
        if project.is_dir(dir) {
            found.outputs.push(format!("{dir}/"));
        }
    }
    let Some(pkg) = pkg else {
        found.outputs.extend(locks.iter().map(|l| l.to_string()));
        return Some(found);
    };
    for dir in workspaces(&pkg).iter().filter_map(|w| workspace_dir(w)) {
        push_unique(&mut found.outputs, dir);
    }
    found.outputs.extend(locks.iter().map(|l| l.to_string()));

    if needs_install(&pkg) {
        found.install.push(manager.install(!locks.is_empty()).into());
        found.net = node_registry::hosts(project, manager);
    }
    let script = |name: &str| pkg.get("scripts")?.get(name)?.as_str().map(str::trim).filter(|s| !s.is_empty());
    let run = |name: &str| format!("{} run {name}", manager.name());
    found.dev = ["dev", "start"].into_iter().find_map(|name| {
        let text = script(name)?;
        Some(Process { command: run(name), port: port_in(text), ..Process::default() })
    });
    if script("test").is_some_and(|t| !t.contains(NO_TEST)) {
        found.tests.push(run("test"));
    }
    if script("build").is_some() {
        found.build.push(run("build"));
    }
    Some(found)
}

/// `packageManager` (corepack's field) first, then the lockfile, else bun.
fn manager(project: &Project, pkg: Option<&Value>) -> Manager {
    let declared = pkg.and_then(|p| p.get("packageManager")?.as_str()).and_then(|spec| {
        let (name, version) = spec.trim().split_once('@').unwrap_or((spec.trim(), ""));
        let major: u32 = version.split('.').next()?.parse().unwrap_or(0);
        match name {
            "bun" => Some(Manager::Bun),
            "npm" => Some(Manager::Npm),
            "pnpm" => Some(Manager::Pnpm),
            "yarn" => Some(Manager::Yarn { berry: major >= 2 }),
            _ => None,
        }
    });
    if let Some(declared) = declared {
        return declared;
    }
    match LOCKS.iter().find(|(file, _)| project.is_file(file)).map(|(_, m)| *m) {
        Some(Manager::Yarn { .. }) => Manager::Yarn { berry: is_berry(project) },
        Some(found) => found,
        None => Manager::Bun,
    }
}

/// Yarn 2+ leaves a `.yarnrc.yml` or a lockfile with `__metadata`.
fn is_berry(project: &Project) -> bool {
    project.is_file(".yarnrc.yml")
        || project.read("yarn.lock").is_some_and(|lock| lock.lines().take(20).any(|l| l.starts_with("__metadata:")))
}

/// Dependencies (the reference's rule), optional dependencies, or workspaces
/// whose packages have theirs.
fn needs_install(pkg: &Value) -> bool {
    let non_empty = |key: &str| pkg.get(key).and_then(Value::as_object).is_some_and(|m| !m.is_empty());
    ["dependencies", "devDependencies", "optionalDependencies"].into_iter().any(non_empty)
        || !workspaces(pkg).is_empty()
}

/// `workspaces: [...]` or `workspaces: { packages: [...] }`.
fn workspaces(pkg: &Value) -> Vec<&str> {
    let list = match pkg.get("workspaces") {
        Some(Value::Array(list)) => list,
        Some(Value::Object(map)) => match map.get("packages") {
            Some(Value::Array(list)) => list,
            _ => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    list.iter().filter_map(Value::as_str).collect()
}

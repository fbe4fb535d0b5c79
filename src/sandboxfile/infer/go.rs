//! Go modules (`go.mod`).

use super::Found;
use super::project::Project;
use super::url::add_hosts;
use std::path::Path;

/// Directories never searched for Go files.
const SKIP: &[&str] = &["vendor", "testdata", "node_modules"];
/// How deep, and through how many entries, a directory is searched for `.go`
/// files before it is given up (large trees stay fast).
const MAX_DEPTH: usize = 6;
const MAX_ENTRIES: usize = 5_000;

pub fn infer(project: &Project) -> Option<Found> {
    if !project.is_file("go.mod") {
        return None;
    }
    let mut found =
        Found { install: vec!["go mod download".into()], tests: vec!["go test ./...".into()], ..Found::default() };
    found.outputs = ["go.mod", "go.sum", "go.work", "go.work.sum"]
        .iter()
        .filter(|f| project.is_file(f))
        .map(|f| f.to_string())
        .collect();
    let entries = project.entries();
    for (name, _) in entries.iter().filter(|(name, dir)| *dir && searched(name)) {
        if has_go(&project.path(name), MAX_DEPTH, &mut { MAX_ENTRIES }) {
            found.outputs.push(format!("{name}/"));
        }
    }
    for (name, _) in entries.iter().filter(|(name, dir)| !dir && name.ends_with(".go")) {
        found.outputs.push(name.clone());
    }
    found.net = proxy_hosts(project);
    Some(found)
}

/// Whether `dir` holds a `.go` file, looking `depth` levels down and at no
/// more than `budget` entries. Symlinks are not followed.
fn has_go(dir: &Path, depth: usize, budget: &mut usize) -> bool {
    let Ok(read) = std::fs::read_dir(dir) else { return false };
    let mut subdirs = Vec::new();
    for entry in read.flatten() {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        let Ok(kind) = entry.file_type() else { continue };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_file() && name.ends_with(".go") {
            return true;
        }
        if kind.is_dir() && depth > 1 && searched(&name) {
            subdirs.push(entry.path());
        }
    }
    subdirs.into_iter().any(|d| has_go(&d, depth - 1, budget))
}

/// Hidden, `_`-prefixed, vendored and test-data directories are not the
/// module's own packages (the go tool ignores the first two as well).
fn searched(name: &str) -> bool {
    !name.starts_with(['.', '_']) && !SKIP.contains(&name)
}

/// GOPROXY from the environment, else from Go's own environment file
/// (`$GOENV`, default `~/.config/go/env`, written by `go env -w`). Its
/// entries are separated by `,` or `|`; `direct` and `off` are not hosts.
fn proxy_hosts(project: &Project) -> Vec<String> {
    let env = project.env;
    let from_file = || {
        let path = match env.var("GOENV") {
            Some("off") => None,
            Some(path) => Some(path.into()),
            None => env.config_path("go/env"),
        }?;
        let text = project.read_path(&path)?;
        text.lines().find_map(|l| l.trim().strip_prefix("GOPROXY=").map(str::to_string))
    };
    let value = env.var("GOPROXY").map(str::to_string).or_else(from_file).unwrap_or_default();
    let mut net = Vec::new();
    let entries = value.split([',', '|']).map(str::trim).filter(|e| !matches!(*e, "" | "direct" | "off"));
    add_hosts(&mut net, env, entries);
    net
}

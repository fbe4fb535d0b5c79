//! Registry hosts of a Cargo project, from Cargo's configuration files: the
//! `.cargo/config.toml` (or `config`) of the project and each ancestor, then
//! `$CARGO_HOME/config.toml` (default `~/.cargo`), nearer files first — the
//! way Cargo merges them.
//!
//! - crates-io's replacement: follow `[source.crates-io] replace-with` through
//!   `[source.*]` (`registry = "sparse+https://…"`) and `[registries.*]`
//!   (`index`); crates-io itself is never named (no built-in host).
//! - registries the manifest's dependencies name (`registry = "name"`).
//! - hosts of git dependencies (`git = "https://…"`).

use super::project::{Project, toml_get};
use super::url::add_hosts;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Guards against `replace-with` cycles.
const MAX_CHAIN: usize = 16;

#[derive(Debug, Default)]
struct Source {
    replace_with: Option<String>,
    registry: Option<String>,
}

#[derive(Debug, Default)]
struct Config {
    sources: BTreeMap<String, Source>,
    registries: BTreeMap<String, String>,
}

pub fn hosts(project: &Project, manifest: Option<&toml::Table>) -> Vec<String> {
    let config = load(project);
    let index = |name: &str| -> Option<String> {
        let var = format!("CARGO_REGISTRIES_{}_INDEX", name.to_ascii_uppercase().replace('-', "_"));
        project.env.var(&var).map(str::to_string).or_else(|| config.registries.get(name).cloned())
    };
    let mut urls: Vec<String> = Vec::new();
    urls.extend(crates_io_replacement(&config, &index));
    let mut git = Vec::new();
    for dep in manifest.map(dependencies).unwrap_or_default() {
        urls.extend(dep.get("registry").and_then(toml::Value::as_str).and_then(&index));
        git.extend(dep.get("git").and_then(toml::Value::as_str).map(str::to_string));
    }
    urls.extend(git);
    let mut net = Vec::new();
    add_hosts(&mut net, project.env, urls.iter().map(String::as_str));
    net
}

/// Where crates-io's packages come from, when configuration replaces it.
fn crates_io_replacement(config: &Config, index: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let mut name = "crates-io";
    for _ in 0..MAX_CHAIN {
        let source = config.sources.get(name);
        match source.and_then(|s| s.replace_with.as_deref()) {
            Some(next) => name = next,
            None if name == "crates-io" => return None,
            None => return source.and_then(|s| s.registry.clone()).or_else(|| index(name)),
        }
    }
    None
}

/// Configuration files, nearest first.
fn files(project: &Project) -> Vec<PathBuf> {
    let config_in = |dir: PathBuf| ["config", "config.toml"].map(|n| dir.join(n)).into_iter().find(|p| p.is_file());
    let dir = std::fs::canonicalize(project.dir).unwrap_or_else(|_| project.dir.to_path_buf());
    let mut files: Vec<PathBuf> = dir.ancestors().filter_map(|d| config_in(d.join(".cargo"))).collect();
    let home = match project.env.var("CARGO_HOME") {
        Some(home) => Some(PathBuf::from(home)),
        None => project.env.home_path(".cargo"),
    };
    if let Some(file) = home.and_then(config_in) {
        let canonical = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
        if !files.iter().any(|f| std::fs::canonicalize(f).is_ok_and(|f| f == canonical)) {
            files.push(file);
        }
    }
    files
}

/// The `[source]` and `[registries]` tables merged, nearer files winning.
fn load(project: &Project) -> Config {
    let mut config = Config::default();
    for table in files(project).iter().filter_map(|f| project.toml_at(f)) {
        let sources = table.get("source").and_then(toml::Value::as_table);
        for (name, source) in sources.into_iter().flatten() {
            let entry = config.sources.entry(name.clone()).or_default();
            let get = |key: &str| source.get(key)?.as_str().map(str::to_string);
            if entry.replace_with.is_none() {
                entry.replace_with = get("replace-with");
            }
            if entry.registry.is_none() {
                entry.registry = get("registry");
            }
        }
        let registries = table.get("registries").and_then(toml::Value::as_table);
        for (name, registry) in registries.into_iter().flatten() {
            if let Some(url) = registry.get("index").and_then(toml::Value::as_str) {
                config.registries.entry(name.clone()).or_insert_with(|| url.to_string());
            }
        }
    }
    config
}

/// Every dependency given as a table, wherever the manifest declares them.
fn dependencies(manifest: &toml::Table) -> Vec<&toml::Table> {
    const KINDS: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];
    let targets = toml_get(manifest, &["target"]).and_then(toml::Value::as_table);
    let holders =
        std::iter::once(manifest).chain(targets.into_iter().flat_map(|t| t.values().filter_map(toml::Value::as_table)));
    let mut tables: Vec<&toml::Table> =
        holders.flat_map(|h| KINDS.iter().filter_map(|k| h.get(*k)?.as_table())).collect();
    tables.extend(toml_get(manifest, &["workspace", "dependencies"]).and_then(toml::Value::as_table));
    let patches = toml_get(manifest, &["patch"]).and_then(toml::Value::as_table);
    tables.extend(patches.into_iter().flat_map(|p| p.values().filter_map(toml::Value::as_table)));
    tables.into_iter().flat_map(|t| t.values().filter_map(toml::Value::as_table)).collect()
}

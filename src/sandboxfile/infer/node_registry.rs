//! Registry hosts of an npm-family project, from its own configuration and the
//! user's; when none names a default registry, npm is asked.
//!
//! Default registry, first that names one:
//! - bun: `bunfig.toml` `[install] registry`, `~/.bunfig.toml`,
//!   `$BUN_CONFIG_REGISTRY`, then npm's chain;
//! - yarn 2+: `$YARN_NPM_REGISTRY_SERVER`, `.yarnrc.yml` `npmRegistryServer`
//!   in the project then home, then npm's chain;
//! - npm's chain (npm, pnpm, yarn 1, and the fallback of the others):
//!   `$npm_config_registry`, the project's `.npmrc`, the user's `.npmrc`
//!   (npm's own precedence), then `npm config get registry`.
//!
//! Scoped registries (`@scope:registry=`, `[install.scopes]`, `npmScopes`)
//! are all added after the default.

use super::node::Manager;
use super::project::{Project, toml_get};
use super::url::{add_hosts, expand, host_of};
use super::yaml;
use yaml_rust2::Yaml;

/// A registry configuration: a default URL and scoped ones.
#[derive(Debug, Default)]
struct Registries {
    default: Option<String>,
    scopes: Vec<String>,
}

pub fn hosts(project: &Project, manager: Manager) -> Vec<String> {
    let env = project.env;
    let own: Vec<Registries> = match manager {
        Manager::Bun => {
            let mut list = vec![bunfig(project, &project.path("bunfig.toml"))];
            list.extend(env.home_path(".bunfig.toml").map(|p| bunfig(project, &p)));
            list.push(from_var(env.var("BUN_CONFIG_REGISTRY")));
            list
        }
        Manager::Yarn { berry: true } => {
            let mut list = vec![from_var(env.var("YARN_NPM_REGISTRY_SERVER"))];
            list.push(yarnrc(project, &project.path(".yarnrc.yml")));
            list.extend(env.home_path(".yarnrc.yml").map(|p| yarnrc(project, &p)));
            list
        }
        _ => Vec::new(),
    };
    let user_npmrc = match env.var("npm_config_userconfig").or(env.var("NPM_CONFIG_USERCONFIG")) {
        Some(path) => Some(path.into()),
        None => env.home_path(".npmrc"),
    };
    let mut npm = vec![from_var(env.var("npm_config_registry").or(env.var("NPM_CONFIG_REGISTRY")))];
    npm.push(npmrc(project, &project.path(".npmrc")));
    npm.extend(user_npmrc.map(|p| npmrc(project, &p)));

    let configs = || own.iter().chain(&npm);
    let usable = |url: &&String| expand(url, env).as_deref().and_then(host_of).is_some();
    let default =
        configs().filter_map(|r| r.default.as_ref()).find(usable).cloned().or_else(|| (env.npm_registry)(project.dir));
    let mut net = Vec::new();
    add_hosts(&mut net, env, default.as_deref());
    add_hosts(&mut net, env, configs().flat_map(|r| r.scopes.iter().map(String::as_str)));
    net
}

fn from_var(value: Option<&str>) -> Registries {
    Registries { default: value.map(str::to_string), scopes: Vec::new() }
}

/// `.npmrc`: `registry=URL` and `@scope:registry=URL` lines (never the
/// `//host/:_authToken=` lines' values).
fn npmrc(project: &Project, path: &std::path::Path) -> Registries {
    let mut found = Registries::default();
    for line in project.read_path(path).unwrap_or_default().lines() {
        let line = line.trim();
        if line.starts_with(['#', ';']) {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = value.trim().trim_matches(['"', '\'']).to_string();
        match key.trim() {
            "registry" => found.default = Some(value),
            key if key.starts_with('@') && key.ends_with(":registry") => found.scopes.push(value),
            _ => {}
        }
    }
    found
}

/// `bunfig.toml`: `[install] registry` and `[install.scopes]`, each a URL
/// string or a table with `url`.
fn bunfig(project: &Project, path: &std::path::Path) -> Registries {
    let Some(table) = project.toml_at(path) else { return Registries::default() };
    let url = |v: &toml::Value| match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Table(t) => t.get("url")?.as_str().map(str::to_string),
        _ => None,
    };
    let scopes = toml_get(&table, &["install", "scopes"]).and_then(toml::Value::as_table);
    Registries {
        default: toml_get(&table, &["install", "registry"]).and_then(url),
        scopes: scopes.into_iter().flat_map(|t| t.values().filter_map(url)).collect(),
    }
}

/// `.yarnrc.yml`: `npmRegistryServer` and `npmScopes.<scope>.npmRegistryServer`.
fn yarnrc(project: &Project, path: &std::path::Path) -> Registries {
    let label = path.display().to_string();
    let Some(doc) = project.read_path(path).and_then(|text| yaml::load(project, &label, &text)) else {
        return Registries::default();
    };
    let server = |y: &Yaml| y["npmRegistryServer"].as_str().map(str::to_string);
    let scopes = match &doc["npmScopes"] {
        Yaml::Hash(map) => map.values().filter_map(server).collect(),
        _ => Vec::new(),
    };
    Registries { default: server(&doc), scopes }
}

//! Package index hosts of a Python project. pip, uv and Poetry each read
//! different files and combine extra indexes, so every index configured in
//! any of them is allowed, in this order:
//! 1. the project: `-i`/`--index-url`/`--extra-index-url`/`--find-links` in
//!    requirement files, `[tool.uv]` `index-url`/`extra-index-url`,
//!    `[[tool.uv.index]] url`, `[[tool.poetry.source]] url`, `uv.toml`;
//! 2. variables: `PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL`, `UV_DEFAULT_INDEX`,
//!    `UV_INDEX_URL`, `UV_INDEX`, `UV_EXTRA_INDEX_URL`;
//! 3. the user's and the system's files: `$PIP_CONFIG_FILE`,
//!    `~/.config/pip/pip.conf`, `~/.pip/pip.conf`, `/etc/xdg/pip/pip.conf`,
//!    `/etc/pip.conf` (and `pip.ini` beside each), `~/.config/uv/uv.toml`,
//!    `/etc/uv/uv.toml`.

use super::project::{Project, toml_get};
use super::url::add_hosts;
use std::path::PathBuf;

const PIP_KEYS: &[&str] = &["index-url", "extra-index-url", "find-links"];
const VARS: &[&str] =
    &["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL", "UV_INDEX", "UV_EXTRA_INDEX_URL"];

pub fn hosts(project: &Project, pyproject: Option<&toml::Table>, requirements: &[&str]) -> Vec<String> {
    let env = project.env;
    let mut urls: Vec<String> = Vec::new();
    for file in requirements {
        urls.extend(requirement_options(&project.read(file).unwrap_or_default()));
    }
    if let Some(p) = pyproject {
        urls.extend(toml_get(p, &["tool", "uv"]).and_then(toml::Value::as_table).map(uv_settings).unwrap_or_default());
        urls.extend(array_of_urls(toml_get(p, &["tool", "poetry", "source"])));
    }
    urls.extend(project.read_toml("uv.toml").map(|t| uv_settings(&t)).unwrap_or_default());
    for var in VARS {
        // Lists are separated by blanks; UV_INDEX entries may be `name=url`.
        let words = env.var(var).unwrap_or_default().split_whitespace();
        urls.extend(words.map(|w| match w.split_once('=') {
            Some((name, url)) if !name.contains([':', '/']) => url.to_string(),
            _ => w.to_string(),
        }));
    }
    for path in pip_files(project) {
        urls.extend(pip_conf(&project.read_path(&path).unwrap_or_default()));
    }
    for path in [env.config_path("uv/uv.toml"), env.system_path("uv/uv.toml")].into_iter().flatten() {
        urls.extend(project.toml_at(&path).map(|t| uv_settings(&t)).unwrap_or_default());
    }
    let mut net = Vec::new();
    add_hosts(&mut net, env, urls.iter().map(String::as_str));
    net
}

/// `-i URL`, `--index-url=URL`, `--extra-index-url URL`, `-f URL`, ….
fn requirement_options(text: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        while let Some(word) = words.next() {
            let (flag, inline) = word.split_once('=').map_or((word, None), |(f, v)| (f, Some(v)));
            if matches!(flag, "-i" | "--index-url" | "--extra-index-url" | "-f" | "--find-links") {
                urls.extend(inline.or_else(|| words.next()).map(str::to_string));
            }
        }
    }
    urls
}

/// uv's settings: `index-url`, `extra-index-url`, `[[index]] url` (the same
/// keys in `[tool.uv]` and `uv.toml`).
fn uv_settings(table: &toml::Table) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    urls.extend(table.get("index-url").and_then(toml::Value::as_str).map(str::to_string));
    let extra = table.get("extra-index-url").and_then(toml::Value::as_array);
    urls.extend(extra.into_iter().flatten().filter_map(toml::Value::as_str).map(str::to_string));
    urls.extend(array_of_urls(table.get("index")));
    urls
}

/// The `url` of each table in an array of tables.
fn array_of_urls(value: Option<&toml::Value>) -> Vec<String> {
    let tables = value.and_then(toml::Value::as_array).into_iter().flatten();
    tables.filter_map(|t| t.get("url")?.as_str().map(str::to_string)).collect()
}

fn pip_files(project: &Project) -> Vec<PathBuf> {
    let env = project.env;
    let standard = [
        env.config_path("pip/pip.conf"),
        env.home_path(".pip/pip.conf"),
        env.system_path("xdg/pip/pip.conf"),
        env.system_path("pip.conf"),
    ];
    let mut files: Vec<PathBuf> = env.var("PIP_CONFIG_FILE").map(PathBuf::from).into_iter().collect();
    for conf in standard.into_iter().flatten() {
        let ini = conf.with_extension("ini");
        files.extend([conf, ini]);
    }
    files
}

/// The URL values of pip's `index-url`, `extra-index-url` and `find-links`,
/// in any section, with continuation lines (several URLs, one a line).
fn pip_conf(text: &str) -> Vec<String> {
    let mut urls = Vec::new();
    let mut in_url_key = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if in_url_key {
                urls.extend(trimmed.split_whitespace().map(str::to_string));
            }
            continue;
        }
        in_url_key = false;
        let Some(at) = trimmed.find(['=', ':']) else { continue };
        let key = trimmed[..at].trim().replace('_', "-");
        if PIP_KEYS.contains(&key.as_str()) {
            in_url_key = true;
            urls.extend(trimmed[at + 1..].split_whitespace().map(str::to_string));
        }
    }
    urls
}

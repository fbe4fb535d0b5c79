//! What inference reads from outside the project: the user's home directory,
//! environment variables, system configuration and npm's own answer. Tests
//! build an [`Env`] by hand so that results do not depend on the machine.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Asks the package manager's own configuration for the default registry URL,
/// running in the given project directory.
pub type AskRegistry = Box<dyn Fn(&Path) -> Option<String> + Send + Sync>;

/// The environment inference reads besides the project.
pub struct Env {
    /// The user's home directory (`$HOME`), for `~/.npmrc`, `~/.cargo`, ….
    pub home: Option<PathBuf>,
    /// Environment variables (`npm_config_registry`, `PIP_INDEX_URL`, …).
    pub vars: BTreeMap<String, String>,
    /// The system configuration directory (`/etc`), for `/etc/pip.conf`.
    pub system: Option<PathBuf>,
    /// `npm config get registry`, asked only for an npm-family project whose
    /// files and variables name no registry.
    pub npm_registry: AskRegistry,
}

/// How long `npm config get registry` may take before it is given up.
const NPM_TIMEOUT: Duration = Duration::from_secs(10);

impl Env {
    /// The real environment of this process.
    pub fn from_process() -> Env {
        let vars: BTreeMap<String, String> =
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
        let home = vars.get("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        Env { home, vars, system: Some(PathBuf::from("/etc")), npm_registry: Box::new(ask_npm) }
    }

    /// An environment with only the given home: no variables, no system
    /// configuration, and an npm that answers nothing.
    pub fn isolated(home: Option<PathBuf>) -> Env {
        Env { home, vars: BTreeMap::new(), system: None, npm_registry: Box::new(|_| None) }
    }

    /// A variable's value, when set and not empty.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    /// `$HOME/<rel>`.
    pub fn home_path(&self, rel: &str) -> Option<PathBuf> {
        self.home.as_ref().map(|h| h.join(rel))
    }

    /// `$XDG_CONFIG_HOME/<rel>`, by default `$HOME/.config/<rel>`.
    pub fn config_path(&self, rel: &str) -> Option<PathBuf> {
        match self.var("XDG_CONFIG_HOME") {
            Some(dir) => Some(Path::new(dir).join(rel)),
            None => self.home_path(&format!(".config/{rel}")),
        }
    }

    /// `<system>/<rel>` (`/etc/<rel>` for the real environment).
    pub fn system_path(&self, rel: &str) -> Option<PathBuf> {
        self.system.as_ref().map(|s| s.join(rel))
    }
}

/// Runs `npm config get registry` in `dir`, with a timeout. None when npm is
/// missing, fails, is too slow or prints nothing useful.
fn ask_npm(dir: &Path) -> Option<String> {
    let mut child = Command::new("npm")
        .args(["config", "get", "registry"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < NPM_TIMEOUT => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    let mut out = String::new();
    child.stdout.take()?.take(64 * 1024).read_to_string(&mut out).ok()?;
    let line = out.lines().map(str::trim).find(|l| !l.is_empty())?;
    (status.success() && line != "undefined").then(|| line.to_string())
}

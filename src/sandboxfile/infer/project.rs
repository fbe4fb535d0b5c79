//! Reading the project (and configuration files) without ever failing: a file
//! that is missing is `None`; one that cannot be read or parsed is `None` and
//! a note saying why.

use super::Env;
use std::cell::RefCell;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Configuration files larger than this are not read.
const MAX_FILE: u64 = 4 * 1024 * 1024;

pub struct Project<'a> {
    pub dir: &'a Path,
    pub env: &'a Env,
    notes: RefCell<Vec<String>>,
}

impl<'a> Project<'a> {
    pub fn new(dir: &'a Path, env: &'a Env) -> Self {
        Project { dir, env, notes: RefCell::new(Vec::new()) }
    }

    pub fn into_notes(self) -> Vec<String> {
        self.notes.into_inner()
    }

    /// Records why a source was skipped.
    pub fn note(&self, what: impl std::fmt::Display, why: impl std::fmt::Display) {
        self.notes.borrow_mut().push(format!("{what}: {why}"));
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn is_file(&self, rel: &str) -> bool {
        self.path(rel).is_file()
    }

    pub fn is_dir(&self, rel: &str) -> bool {
        self.path(rel).is_dir()
    }

    /// The first of `names` that is a file in the project.
    pub fn first_file<'n>(&self, names: &[&'n str]) -> Option<&'n str> {
        names.iter().copied().find(|n| self.is_file(n))
    }

    /// A file's text (invalid UTF-8 replaced). None when it does not exist.
    pub fn read(&self, rel: &str) -> Option<String> {
        self.read_path(&self.path(rel))
    }

    /// The same for any path (user and system configuration).
    pub fn read_path(&self, path: &Path) -> Option<String> {
        match read_text(path) {
            Ok(text) => text,
            Err(why) => {
                self.note(path.display(), why);
                None
            }
        }
    }

    pub fn read_toml(&self, rel: &str) -> Option<toml::Table> {
        self.toml_at(&self.path(rel))
    }

    pub fn toml_at(&self, path: &Path) -> Option<toml::Table> {
        let text = self.read_path(path)?;
        text.parse::<toml::Table>()
            .map_err(|e| self.note(path.display(), format!("not valid TOML, skipped: {}", first_line(&e.to_string()))))
            .ok()
    }

    pub fn read_json(&self, rel: &str) -> Option<serde_json::Value> {
        let text = self.read(rel)?;
        serde_json::from_str(&text).map_err(|e| self.note(rel, format!("not valid JSON, skipped: {e}"))).ok()
    }

    /// The names in the project's top directory that can be written as
    /// OUTPUT lines, sorted, each with whether it is a directory.
    pub fn entries(&self) -> Vec<(String, bool)> {
        entries(self.dir)
    }
}

/// Plain names of a directory's entries, sorted, with whether each is a
/// directory (symlinks followed). Unreadable directories have none.
pub fn entries(dir: &Path) -> Vec<(String, bool)> {
    let Ok(read) = fs::read_dir(dir) else { return Vec::new() };
    let mut list: Vec<(String, bool)> = read
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            is_plain(&name).then(|| (name, e.path().is_dir()))
        })
        .collect();
    list.sort();
    list
}

/// A name that can stand in an OUTPUT line as itself: no blanks or control
/// characters, nothing a glob would read as a pattern.
pub fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c.is_whitespace() || c.is_control() || "*?[]{}!\\".contains(c))
}

/// Ok(None) for a missing file; Err(reason) when it exists but cannot be read.
fn read_text(path: &Path) -> Result<Option<String>, String> {
    // stat first: opening a FIFO would block, and devices are not files.
    match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot be read, skipped: {e}")),
        Ok(meta) if !meta.is_file() => return Ok(None),
        Ok(meta) if meta.len() > MAX_FILE => return Err(TOO_LARGE.into()),
        Ok(_) => {}
    }
    let file = fs::File::open(path).map_err(|e| format!("cannot be read, skipped: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot be read, skipped: {e}"))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(TOO_LARGE.into());
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

const TOO_LARGE: &str = "larger than 4 MiB, skipped";

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}

/// The value at a dotted path in a TOML table (`["tool", "uv", "index-url"]`).
pub fn toml_get<'t>(table: &'t toml::Table, path: &[&str]) -> Option<&'t toml::Value> {
    let (last, init) = path.split_last()?;
    let mut table = table;
    for key in init {
        table = table.get(*key)?.as_table()?;
    }
    table.get(*last)
}

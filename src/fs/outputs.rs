//! The OUTPUT matcher (SPEC §1.2): which paths, relative to WORKDIR, may leave
//! the sandbox. Compiled once from the OUTPUT lines; `diff()` and
//! `extractOutputs()` ask it about every changed file.
//!
//! An OUTPUT line is one of
//! - `src/` — a trailing `/`: that directory and everything below it;
//! - `package.json`, `dist` — a literal path (no glob characters): that path,
//!   and everything below it when it is a directory;
//! - `src/**/*.ts`, `*.md` — a glob: the paths it matches, nothing below them
//!   (`*` and `?` stop at `/`, `**` crosses directories; `src/*/` is every
//!   directory `src/*` matches, with everything below);
//! - `.` or `./` — the whole WORKDIR.
//!
//! A leading `./` and `.` components are dropped; an absolute path, `..`,
//! or an invalid glob is an error (the same rules `validateSandboxfile`
//! reports). Paths asked about are relative, `/`-separated, without `./`.
//!
//! A protected path ([`super::protected()`]) is withheld even when a line
//! covers it, unless a line without glob characters and without a trailing
//! `/` names that very path: `OUTPUT .vscode/settings.json` extracts that
//! file, `OUTPUT .vscode/` and `OUTPUT .vscode` extract nothing inside it.

use std::collections::HashSet;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::protected::{Protected, protected};

/// An OUTPUT line that cannot be used: `OUTPUT "<line>" <problem>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OUTPUT \"{line}\" {problem}")]
pub struct OutputPatternError {
    pub line: String,
    pub problem: String,
}

/// What the OUTPUT lines say about one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMatch {
    /// No OUTPUT line covers it: it never leaves the sandbox.
    Outside,
    /// Covered: changes to it are reported and extracted.
    Included,
    /// Covered, but protected and not named literally: reported as withheld,
    /// never extracted.
    Withheld(&'static Protected),
}

/// The compiled OUTPUT lines.
#[derive(Debug, Clone)]
pub struct OutputMatcher {
    covered: GlobSet,
    /// For each line, the directories before its first glob character
    /// (`""` for the whole WORKDIR): nothing outside them can match, so walks
    /// skip other subtrees (a large `node_modules/` in the upper, for one).
    bases: Vec<String>,
    /// Lines that name one path exactly: they unlock a protected path.
    literals: HashSet<String>,
}

pub(crate) const GLOB_CHARS: &[char] = &['*', '?', '[', ']', '{', '}', '\\'];

/// One glob line of the Sandboxfile (OUTPUT, LOGS, WATCH) as its parts.
pub(crate) struct GlobLine {
    /// Path components, without empty ones and `.`.
    pub parts: Vec<String>,
    pub path: String,
    /// A trailing `/` (or nothing at all, i.e. WORKDIR itself).
    pub whole_dir: bool,
    /// No glob characters: a path, which also means everything below it.
    pub literal: bool,
}

/// Checks a glob line relative to WORKDIR and adds what it matches to
/// `builder`: `*` and `?` stop at `/`, `**` crosses directories, a trailing
/// `/` or a literal directory means everything below it. The error is the
/// problem, to be put after the line.
pub(crate) fn compile_line(line: &str, builder: &mut GlobSetBuilder) -> Result<GlobLine, String> {
    if line.is_empty() {
        return Err("is empty; write a path relative to WORKDIR, e.g. \"src/\"".into());
    }
    if line.starts_with('/') {
        return Err("is an absolute path; write it relative to WORKDIR, e.g. \"src/\"".into());
    }
    let parts: Vec<String> = line.split('/').filter(|p| !p.is_empty() && *p != ".").map(str::to_string).collect();
    // ".." would name files outside WORKDIR.
    if parts.iter().any(|p| p == "..") {
        return Err("contains \"..\"; paths are relative to WORKDIR and stay inside it".into());
    }
    let whole_dir = line.ends_with('/') || parts.is_empty();
    let path = parts.join("/");
    let literal = !path.contains(GLOB_CHARS);
    let mut globs = Vec::new();
    if path.is_empty() {
        globs.push("**".to_string());
    } else if literal {
        let escaped = globset::escape(&path);
        globs.push(format!("{escaped}/**"));
        globs.push(escaped);
    } else {
        if whole_dir {
            globs.push(format!("{path}/**"));
        }
        globs.push(path.clone());
    }
    for glob in globs {
        let glob = GlobBuilder::new(&glob)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("is not a valid glob: {}", e.kind()))?;
        builder.add(glob);
    }
    Ok(GlobLine { parts, path, whole_dir, literal })
}

fn problem(line: &str, problem: impl Into<String>) -> OutputPatternError {
    OutputPatternError { line: line.to_string(), problem: problem.into() }
}

impl OutputMatcher {
    /// Compiles OUTPUT lines. No lines: nothing is ever extracted.
    pub fn new<I, S>(lines: I) -> Result<OutputMatcher, OutputPatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut builder = GlobSetBuilder::new();
        let mut bases = Vec::new();
        let mut literals = HashSet::new();
        for line in lines {
            let line = line.as_ref();
            let compiled = compile_line(line, &mut builder).map_err(|p| problem(line, p))?;
            let GlobLine { parts, path, whole_dir, literal } = compiled;
            let base: Vec<&str> = parts.iter().map(String::as_str).take_while(|p| !p.contains(GLOB_CHARS)).collect();
            bases.push(base.join("/"));
            if literal && !whole_dir {
                literals.insert(path);
            }
        }
        let covered = builder.build().map_err(|e| problem("", format!("cannot be compiled: {e}")))?;
        Ok(OutputMatcher { covered, bases, literals })
    }

    /// What the OUTPUT lines say about `path`.
    pub fn classify(&self, path: &str) -> OutputMatch {
        if !self.covered.is_match(path) {
            return OutputMatch::Outside;
        }
        match protected(path) {
            Some(entry) if !self.literals.contains(path) => OutputMatch::Withheld(entry),
            _ => OutputMatch::Included,
        }
    }

    /// Whether changes to `path` leave the sandbox.
    pub fn is_match(&self, path: &str) -> bool {
        self.classify(path) == OutputMatch::Included
    }

    /// Whether `path`, or anything below it, could be covered by a line. A
    /// walk that gets `false` for a directory skips it whole.
    pub fn may_cover(&self, path: &str) -> bool {
        self.bases.iter().any(|base| base.is_empty() || path == base || is_below(base, path) || is_below(path, base))
    }
}

/// `inner` is strictly below `outer` (`a/b` is below `a`, `ab` is not).
fn is_below(inner: &str, outer: &str) -> bool {
    inner.len() > outer.len() && inner.starts_with(outer) && inner.as_bytes()[outer.len()] == b'/'
}

#[cfg(test)]
mod tests;
